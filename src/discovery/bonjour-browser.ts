/**
 * Browses `_apple-mobdev2._tcp` (reference §8.1) with bonjour-service and turns each advert into
 * a plain, bounded record: instance name, the MAC before its '@', the TXT identifier/authTags,
 * SRV port and addresses. Emits 'up', 'update' (TXT, port or addresses changed) and 'down'
 * (goodbye, or not heard from for `staleAfterMs`).
 *
 * The caller chooses the mDNS socket options: production passes {} (every interface); tests pass
 * {interface: '127.0.0.1', bind: '0.0.0.0'} (docs/DECISIONS.md D10) or run inside a network
 * namespace, so nothing is multicast on the machine's outside network.
 *
 * bonjour-service never refreshes `lastSeen` for a service it already knows and only expires
 * on its own PTR TTL (hours), so we re-query every `requeryIntervalMs`, note every answer that
 * names a known advert, and drop adverts that stopped answering.
 */
import { EventEmitter } from 'node:events';
import net from 'node:net';
import { Bonjour, type Browser, type Service } from 'bonjour-service';
import {
  macFromInstanceName,
  parseTxtEntries,
  readMobdev2Txt,
  txtEntriesFromObject,
  type Mobdev2Txt,
  type TxtEntries,
} from './txt-auth';

export const MOBDEV2_SERVICE_TYPE = 'apple-mobdev2';
const MOBDEV2_SUFFIX = `._${MOBDEV2_SERVICE_TYPE}._tcp.local`;

/** Adverts tracked at once; more than this on one network is a flood, not iPhones. */
export const MAX_ADVERTS = 256;
/** Addresses kept per advert. */
export const MAX_ADVERT_ADDRESSES = 16;
/** Longest DNS name. */
const MAX_DNS_NAME = 255;
/** Resource records looked at per mDNS packet when refreshing lastSeen. */
const MAX_RECORDS_PER_PACKET = 256;

/** How often to ask again who is there (an idle network costs one small packet per interval). */
export const DEFAULT_REQUERY_INTERVAL_MS = 60_000;
/** An advert not heard from for this long is gone (a device that left without a goodbye). */
export const DEFAULT_STALE_AFTER_MS = 4 * 60_000;

/** multicast-dns socket options as bonjour-service passes them through. */
export interface MdnsSocketOptions {
  /** Interface address for multicast membership and sending (e.g. 127.0.0.1). */
  interface?: string;
  /** Address to bind; '0.0.0.0' with interface 127.0.0.1 on loopback (D10). */
  bind?: string;
  port?: number;
  ip?: string;
  ttl?: number;
  loopback?: boolean;
  reuseAddr?: boolean;
}

export interface Mobdev2BrowserOptions {
  mdns: MdnsSocketOptions;
  /** 0 disables re-querying (and then staleness too). */
  requeryIntervalMs?: number;
  staleAfterMs?: number;
  /** Clock, for tests of expiry. */
  now?: () => number;
}

export interface Mobdev2Advert {
  /** Full service name, e.g. `dd:1c:…@fe80::…._apple-mobdev2._tcp.local`. */
  fqdn: string;
  /** The instance label (`<mac>@<suffix>`). */
  instanceName: string;
  /** Lower-case MAC before the '@', when the instance name has one. */
  mac?: string;
  txt: Mobdev2Txt;
  txtEntries: TxtEntries;
  /** SRV target host name. */
  hostName: string;
  /** SRV port (a real device's lockdownd is on 62078 whatever this says). */
  port: number;
  /** A/AAAA addresses of the SRV target, as announced. */
  addresses: string[];
  /** Source address of the packet that announced it. */
  referer?: string;
  firstSeen: number;
  lastSeen: number;
}

export type AdvertDownReason = 'goodbye' | 'expired';

export interface Mobdev2BrowserEvents {
  up: [Mobdev2Advert];
  update: [Mobdev2Advert];
  down: [Mobdev2Advert, AdvertDownReason];
  /** An answer named a known advert (lastSeen refreshed). */
  seen: [Mobdev2Advert];
  /** Socket errors and dropped adverts; never fatal. */
  warning: [Error];
}

/**
 * Where to connect: the packet's source address when the advert lists it (it is known to be on
 * our link), else the first IPv4 address (netmuxd prefers IPv4), else any address, else the
 * source address.
 */
export function pickAdvertAddress(
  advert: Pick<Mobdev2Advert, 'addresses' | 'referer'>,
): string | undefined {
  const { addresses, referer } = advert;
  if (referer !== undefined && addresses.includes(referer)) return referer;
  return addresses.find((a) => net.isIPv4(a)) ?? addresses[0] ?? referer;
}

function instanceNameOf(fqdn: string, fallback: string): string {
  return fqdn.toLowerCase().endsWith(MOBDEV2_SUFFIX)
    ? fqdn.slice(0, -MOBDEV2_SUFFIX.length)
    : fallback;
}

/** bonjour-service's Service as it arrives from the wire, defensively read. */
function toAdvert(s: Service, now: number, firstSeen?: number): Mobdev2Advert | undefined {
  const fqdn = typeof s.fqdn === 'string' ? s.fqdn : '';
  if (fqdn === '' || fqdn.length > MAX_DNS_NAME) return undefined;
  const port = s.port;
  if (!Number.isInteger(port) || port < 1 || port > 65535) return undefined;
  const instanceName = instanceNameOf(fqdn, typeof s.name === 'string' ? s.name : '');
  if (instanceName === '') return undefined;
  const rawTxt = (s as Service & { rawTxt?: unknown }).rawTxt;
  const txtEntries = Array.isArray(rawTxt) ? parseTxtEntries(rawTxt) : txtEntriesFromObject(s.txt);
  const addresses = (Array.isArray(s.addresses) ? s.addresses : [])
    .filter((a): a is string => typeof a === 'string' && net.isIP(a) !== 0)
    .slice(0, MAX_ADVERT_ADDRESSES);
  const referer =
    s.referer && typeof s.referer.address === 'string' && net.isIP(s.referer.address) !== 0
      ? s.referer.address
      : undefined;
  const mac = macFromInstanceName(instanceName);
  return {
    fqdn,
    instanceName,
    ...(mac === undefined ? {} : { mac }),
    txt: readMobdev2Txt(txtEntries),
    txtEntries,
    hostName: typeof s.host === 'string' ? s.host.slice(0, MAX_DNS_NAME) : '',
    port,
    addresses: [...new Set(addresses)],
    ...(referer === undefined ? {} : { referer }),
    firstSeen: firstSeen ?? now,
    lastSeen: now,
  };
}

function sameEntries(a: TxtEntries, b: TxtEntries): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) {
    const w = b.get(k);
    if (!w || !w.equals(v)) return false;
  }
  return true;
}

function sameWhere(a: Mobdev2Advert, b: Mobdev2Advert): boolean {
  return (
    a.port === b.port &&
    a.hostName === b.hostName &&
    a.addresses.join(',') === b.addresses.join(',') &&
    sameEntries(a.txtEntries, b.txtEntries)
  );
}

interface MdnsPacketRecord {
  name?: unknown;
  type?: unknown;
  ttl?: unknown;
  data?: unknown;
}

export class Mobdev2Browser extends EventEmitter<Mobdev2BrowserEvents> {
  private bonjour: Bonjour | undefined;
  private browser: Browser | undefined;
  private readonly byFqdn = new Map<string, Mobdev2Advert>();
  private requeryTimer: NodeJS.Timeout | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  private floodWarned = false;
  private readonly now: () => number;
  readonly requeryIntervalMs: number;
  readonly staleAfterMs: number;

  constructor(private readonly opts: Mobdev2BrowserOptions) {
    super();
    this.now = opts.now ?? Date.now;
    this.requeryIntervalMs = opts.requeryIntervalMs ?? DEFAULT_REQUERY_INTERVAL_MS;
    this.staleAfterMs = opts.staleAfterMs ?? DEFAULT_STALE_AFTER_MS;
  }

  get running(): boolean {
    return this.bonjour !== undefined;
  }

  /** Adverts seen and not gone. */
  adverts(): Mobdev2Advert[] {
    return [...this.byFqdn.values()];
  }

  start(): void {
    if (this.bonjour) return;
    const bonjour = new Bonjour(this.opts.mdns as never, (err: unknown) =>
      this.emit('warning', err instanceof Error ? err : new Error(String(err))),
    );
    this.bonjour = bonjour;
    const browser = bonjour.find({ type: MOBDEV2_SERVICE_TYPE, protocol: 'tcp' });
    this.browser = browser;
    browser.on('up', (s) => this.onService(s));
    browser.on('txt-update', (s) => this.onService(s));
    browser.on('srv-update', (s) => this.onService(s));
    browser.on('down', (s) => this.onGoodbye(s));
    const socket = this.mdnsSocket();
    socket?.on('response', this.onResponse);
    // multicast-dns emits 'error' (EADDRINUSE, EACCES) with nobody listening: that would crash.
    socket?.on('error', this.onSocketProblem);
    socket?.on('warning', this.onSocketProblem);
    if (this.requeryIntervalMs > 0) {
      this.requeryTimer = setInterval(() => this.requery(), this.requeryIntervalMs).unref();
      if (this.mdnsSocket()) {
        const every = Math.max(1000, Math.min(this.requeryIntervalMs, this.staleAfterMs / 2));
        this.sweepTimer = setInterval(() => this.sweep(), every).unref();
      }
    }
  }

  /** Asks the network again (a PTR query); answers refresh lastSeen and bring back the gone. */
  requery(): void {
    this.browser?.update();
  }

  /** Drops adverts not heard from for staleAfterMs (run on a timer; public for tests). */
  sweep(now = this.now()): void {
    for (const [key, advert] of [...this.byFqdn]) {
      if (now - advert.lastSeen <= this.staleAfterMs) continue;
      this.byFqdn.delete(key);
      this.forgetInBonjour(advert.fqdn);
      this.emit('down', advert, 'expired');
    }
  }

  /** Stops browsing and closes the socket. Adverts are forgotten without 'down' events. */
  async stop(): Promise<void> {
    const bonjour = this.bonjour;
    if (!bonjour) return;
    clearInterval(this.requeryTimer);
    clearInterval(this.sweepTimer);
    const socket = this.mdnsSocket();
    socket?.off('response', this.onResponse);
    // Late socket errors while closing have nobody to tell.
    socket?.off('warning', this.onSocketProblem);
    this.browser?.stop();
    this.browser = undefined;
    this.bonjour = undefined;
    this.byFqdn.clear();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 1000);
      bonjour.destroy(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private onService(s: Service): void {
    const key = typeof s.fqdn === 'string' ? s.fqdn.toLowerCase() : '';
    const old = this.byFqdn.get(key);
    const advert = toAdvert(s, this.now(), old?.firstSeen);
    if (!advert) return;
    if (!old) {
      if (this.byFqdn.size >= MAX_ADVERTS) {
        if (!this.floodWarned) {
          this.floodWarned = true;
          this.emit(
            'warning',
            new Error(`more than ${MAX_ADVERTS} _apple-mobdev2 adverts: ignoring the rest`),
          );
        }
        return;
      }
      this.byFqdn.set(key, advert);
      this.emit('up', advert);
      return;
    }
    this.byFqdn.set(key, advert);
    if (!sameWhere(old, advert)) this.emit('update', advert);
  }

  private onGoodbye(s: Service): void {
    const key = typeof s.fqdn === 'string' ? s.fqdn.toLowerCase() : '';
    const advert = this.byFqdn.get(key);
    if (!advert) return;
    this.byFqdn.delete(key);
    this.emit('down', advert, 'goodbye');
  }

  private readonly onSocketProblem = (err: unknown): void => {
    this.emit('warning', err instanceof Error ? err : new Error(String(err)));
  };

  /** Every answer naming a known advert counts as hearing from it. */
  private readonly onResponse = (packet: unknown): void => {
    if (this.byFqdn.size === 0 || typeof packet !== 'object' || packet === null) return;
    const p = packet as { answers?: unknown; additionals?: unknown };
    const records = [
      ...(Array.isArray(p.answers) ? p.answers : []),
      ...(Array.isArray(p.additionals) ? p.additionals : []),
    ].slice(0, MAX_RECORDS_PER_PACKET) as MdnsPacketRecord[];
    const now = this.now();
    const heard = new Set<Mobdev2Advert>();
    for (const rr of records) {
      if (typeof rr !== 'object' || rr === null || typeof rr.ttl !== 'number' || rr.ttl <= 0)
        continue;
      const name =
        rr.type === 'PTR' ? rr.data : rr.type === 'SRV' || rr.type === 'TXT' ? rr.name : undefined;
      if (typeof name !== 'string') continue;
      const advert = this.byFqdn.get(name.toLowerCase());
      if (advert) heard.add(advert);
    }
    for (const advert of heard) {
      advert.lastSeen = now;
      this.emit('seen', advert);
    }
  };

  /**
   * bonjour-service keeps its own list and announces a service it already holds only once;
   * removing an expired one there lets its next answer come back as 'up'.
   */
  private forgetInBonjour(fqdn: string): void {
    const list: unknown = this.browser?.services;
    if (!Array.isArray(list)) return;
    const i = list.findIndex(
      (s: Service) => typeof s.fqdn === 'string' && s.fqdn.toLowerCase() === fqdn.toLowerCase(),
    );
    if (i !== -1) list.splice(i, 1);
  }

  /** bonjour-service's multicast-dns socket (not in its public types). */
  private mdnsSocket(): EventEmitter | undefined {
    const server = (this.bonjour as unknown as { server?: { mdns?: unknown } } | undefined)?.server;
    return server?.mdns instanceof EventEmitter ? server.mdns : undefined;
  }
}
