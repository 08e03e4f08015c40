/**
 * The device's Wi-Fi sync advert (reference §8.1): `_apple-mobdev2._tcp`, instance name
 * `<wifi-mac>@<address>`, SRV to the lockdownd port, A/AAAA to the Wi-Fi address. Multicast
 * goes out of one interface only, so tests (interface 127.0.0.1) never multicast on the
 * machine's outside network.
 */
import net from 'node:net';
import { Bonjour, type Service } from 'bonjour-service';

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

  constructor(private readonly opts: AdvertOptions) {}

  get instanceName(): string {
    return bonjourInstanceName(this.opts.wifiMac, this.opts.address);
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
    // bonjour-service would announce every address of this machine; the device has one.
    const all = service.records.bind(service);
    service.records = () => [
      ...all().filter((r) => r.type !== 'A' && r.type !== 'AAAA'),
      { name: host, type: net.isIPv6(address) ? 'AAAA' : 'A', ttl: 120, data: address },
    ];
    this.service = service;
    log('bonjour-published', { name: this.instanceName, iface, port });
  }

  /** Withdraws the advert (sends goodbyes) and closes the mDNS socket. */
  async stop(): Promise<void> {
    const b = this.bonjour;
    if (!b) return;
    this.bonjour = undefined;
    this.service = undefined;
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
