/**
 * The device's Wi-Fi sync advert (reference §8.1): `_apple-mobdev2._tcp`, instance name
 * `<wifi-mac>@<address>`, SRV to the lockdownd port, A/AAAA to the Wi-Fi address. Multicast
 * goes out of one interface only, so tests (interface 127.0.0.1) never multicast on the
 * machine's outside network.
 *
 * Optionally the iOS 26.4+ form (§8.2): TXT `identifier` plus one `authTag` per paired host,
 * and a private (random) MAC in the instance name so only the tags tell who the device is.
 */
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import { Bonjour, type Service } from 'bonjour-service';
import { computeAuthTag, encodeAuthTag } from '../discovery/txt-auth';

export const MOBDEV2_TYPE = 'apple-mobdev2';

export interface AdvertOptions {
  /** Interface address to multicast on (e.g. 127.0.0.1). */
  iface: string;
  wifiMac: string;
  /** The device's address as it appears after the '@'. */
  address: string;
  port: number;
  /** Host name for the SRV target (".local" is appended). */
  hostName: string;
  log: (event: string, fields?: Record<string, unknown>) => void;
  /** TXT identifier/authTags: the identifier, and the HostIDs of the paired hosts, newest first. */
  txtAuth?: { identifier: string; hostIds: () => string[] };
  /** A random MAC in the instance name instead of the real one (iOS 26.4+). */
  hideMac?: boolean;
}

type ServiceRecord = ReturnType<Service['records']>[number];
interface MdnsResponder {
  respond(records: ServiceRecord[], cb: () => void): void;
}

/** Tags advertised at most: one packet must hold them (a device remembers few hosts anyway). */
export const MAX_ADVERTISED_AUTH_TAGS = 16;

/** A stable TXT identifier for a device: a UUID-shaped digest of its UDID. */
export function bonjourIdentifier(udid: string): string {
  const h = createHash('sha256').update(`mooring-sim bonjour identifier ${udid}`).digest('hex');
  return [h.slice(0, 8), h.slice(8, 12), h.slice(12, 16), h.slice(16, 20), h.slice(20, 32)]
    .join('-')
    .toUpperCase();
}

/** TXT strings: `identifier=…`, `authTag=…` for the first host, `authTag#1=…` and on for the rest. */
export function authTxtStrings(identifier: string, hostIds: readonly string[]): Buffer[] {
  const out = [Buffer.from(`identifier=${identifier}`)];
  hostIds.slice(0, MAX_ADVERTISED_AUTH_TAGS).forEach((hostId, i) => {
    const tag = encodeAuthTag(computeAuthTag(hostId, identifier));
    out.push(Buffer.from(`${i === 0 ? 'authTag' : `authTag#${i}`}=${tag}`));
  });
  return out;
}

/** A locally administered unicast MAC, as a privacy address looks. */
function randomMac(): string {
  const b = randomBytes(6);
  b[0] = (b[0]! & 0xfc) | 0x02;
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

/**
 * `<mac>@<address>`. bonjour-service cannot put a dot in an instance name (it turns '.' into
 * '-'), so an IPv4 address appears as 127-0-0-1; hosts only read the MAC before the '@'.
 */
export function bonjourInstanceName(wifiMac: string, address: string): string {
  return `${wifiMac}@${address}`.split('.').join('-');
}

/** A DNS-safe host label from a device name ("Mooring Test iPhone" → "Mooring-Test-iPhone"). */
export function hostLabel(deviceName: string): string {
  const label = deviceName
    .replace(/[^A-Za-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 63);
  return label || 'iPhone';
}

export class BonjourAdvert {
  private bonjour: Bonjour | undefined;
  private service: Service | undefined;
  /** The current service's records, once built; refreshTxt() edits the TXT one in place. */
  private records: () => ServiceRecord[] | undefined = () => undefined;
  private readonly advertisedMac: string;

  constructor(private readonly opts: AdvertOptions) {
    this.advertisedMac = opts.hideMac ? randomMac() : opts.wifiMac;
  }

  get instanceName(): string {
    return bonjourInstanceName(this.advertisedMac, this.opts.address);
  }

  private txtData(): Buffer[] | undefined {
    const t = this.opts.txtAuth;
    return t ? authTxtStrings(t.identifier, t.hostIds()) : undefined;
  }

  /**
   * Pairings changed: new tags in the same TXT record object (bonjour-service re-announces and
   * answers queries from that object), announced at once.
   */
  refreshTxt(): void {
    const records = this.records();
    const txt = records?.find((r) => r.type === 'TXT');
    const data = this.txtData();
    const mdns = (this.bonjour as unknown as { server?: { mdns?: MdnsResponder } } | undefined)
      ?.server?.mdns;
    if (!records || !txt || !data || !mdns) return;
    txt.data = data;
    mdns.respond(records, () => undefined);
    this.opts.log('bonjour-txt-refreshed', { tags: data.length - 1 });
  }

  get published(): boolean {
    return this.service !== undefined;
  }

  start(): void {
    if (this.service) return;
    const { log, iface, address, port } = this.opts;
    // Bound to all addresses, because a socket bound to 127.0.0.1 never receives multicast;
    // group membership and outgoing multicast stay on `iface`.
    this.bonjour = new Bonjour({ interface: iface, bind: '0.0.0.0' } as never, (err: Error) =>
      log('bonjour-error', { error: err.message }),
    );
    const host = `${this.opts.hostName}.local`;
    // Probing delays the first announcement, which lets us fix the records before it goes out.
    const service = this.bonjour.publish({
      name: this.instanceName,
      type: MOBDEV2_TYPE,
      protocol: 'tcp',
      port,
      host,
      probe: true,
    });
    // bonjour-service would announce every address of this machine; the device has one. The
    // same record objects serve every announcement and answer, so the TXT can be refreshed.
    const all = service.records.bind(service);
    let cached: ServiceRecord[] | undefined;
    const build = (): ServiceRecord[] => {
      const txt = this.txtData();
      return [
        ...all()
          .filter((r) => r.type !== 'A' && r.type !== 'AAAA')
          .map((r) => (r.type === 'TXT' && txt ? { ...r, data: txt } : r)),
        { name: host, type: net.isIPv6(address) ? 'AAAA' : 'A', ttl: 120, data: address },
      ];
    };
    service.records = () => (cached ??= build());
    this.records = () => cached;
    this.service = service;
    log('bonjour-published', { name: this.instanceName, iface, port });
  }

  /** Withdraws the advert (sends goodbyes) and closes the mDNS socket. */
  async stop(): Promise<void> {
    const b = this.bonjour;
    if (!b) return;
    this.bonjour = undefined;
    this.service = undefined;
    this.records = () => undefined;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 1000);
      b.unpublishAll(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    await new Promise<void>((resolve) => b.destroy(() => resolve()));
    this.opts.log('bonjour-withdrawn', { name: this.instanceName });
  }
}
