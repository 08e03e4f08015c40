/**
 * One presence per device (UDID), merging what usbmuxd's Listen says (attached over USB, or
 * listed as a Network device by a muxer that does Wi-Fi itself) with `_apple-mobdev2._tcp`
 * adverts matched to our pair records. The agent asks it who is reachable and for a
 * DeviceEndpoint to reach them; it never decides anything about backups.
 *
 * Events: 'appeared' (not reachable → reachable), 'disappeared' (reachable → not), 'changed'
 * (any change of transports, address, port or pairing; also fired alongside the other two),
 * 'usbmuxd' (Listen state), 'advert-ignored' (an advert that is not one of our devices) and
 * 'warning' (problems that discovery survives). Refreshes of lastSeen alone emit nothing.
 */
import { EventEmitter } from 'node:events';
import {
  TcpEndpoint,
  UsbmuxEndpoint,
  type DeviceEndpoint,
  type MuxConnector,
} from '../lockdown/endpoint';
import type { PairRecordReader } from '../lockdown/pair-records';
import { normaliseUdid } from '../protocol/usbmux/udid';
import type { MuxDevice, MuxListener } from '../transport/usbmuxd-client';
import { MooringError } from '../util/errors';
import type { AdvertMatch, MatchRule } from './advert-match';
import {
  Mobdev2Browser,
  pickAdvertAddress,
  type Mobdev2Advert,
  type Mobdev2BrowserEvents,
  type Mobdev2BrowserOptions,
} from './bonjour-browser';
import type { PairRecordIndex } from './pair-record-index';

/** lockdownd's port on a real device; hosts dial it whatever the SRV record says (§8.1). */
export const DEVICE_LOCKDOWN_PORT = 62078;
export const DEFAULT_RELISTEN_INITIAL_MS = 500;
export const DEFAULT_RELISTEN_MAX_MS = 30_000;
/** An advert we cannot place re-reads the pair records at most this often. */
export const DEFAULT_UNMATCHED_REFRESH_MS = 60_000;

export interface DevicePresence {
  udid: string;
  /** We hold a usable pair record for it. */
  paired: boolean;
  /** Attached over USB (usbmuxd connection type "USB"). */
  usb?: { deviceId: number; since: Date };
  /** Listed by usbmuxd as a Network device (macOS usbmuxd, usbmuxd2, netmuxd). */
  network?: { deviceId: number; since: Date };
  /** Advertised over Bonjour and matched to our pair record. */
  wifi?: {
    /** Address we would dial. */
    host: string;
    /** Port we would dial for lockdownd (62078, or the SRV port with wifiPort 'advertised'). */
    port: number;
    addresses: string[];
    instanceName: string;
    matchedBy: MatchRule;
    since: Date;
    lastSeen: Date;
  };
  /** Last time any transport showed the device (now, while attached over USB). */
  lastSeen: Date;
  reachable: boolean;
}

export type UsbmuxdListenState =
  | { state: 'listening' }
  | { state: 'lost'; error: Error; retryInMs: number }
  | { state: 'unavailable'; error: Error; retryInMs: number };

export type IgnoredAdvertReason = 'unknown' | 'ambiguous' | 'no-address';

export interface DeviceRegistryEvents {
  appeared: [DevicePresence];
  disappeared: [DevicePresence];
  changed: [DevicePresence];
  usbmuxd: [UsbmuxdListenState];
  'advert-ignored': [{ advert: Mobdev2Advert; reason: IgnoredAdvertReason; udids?: string[] }];
  warning: [Error];
}

/** What the registry needs from usbmuxd (UsbmuxdClient satisfies it). */
export interface UsbmuxdSource extends MuxConnector, PairRecordReader {
  listen(): Promise<MuxListener>;
}

/** A source of mobdev2 adverts (Mobdev2Browser satisfies it; tests may feed their own). */
export interface AdvertSource {
  start(): void;
  stop(): Promise<void>;
  adverts(): Mobdev2Advert[];
  on<K extends keyof Mobdev2BrowserEvents>(
    event: K,
    listener: (...args: Mobdev2BrowserEvents[K]) => void,
  ): unknown;
  off<K extends keyof Mobdev2BrowserEvents>(
    event: K,
    listener: (...args: Mobdev2BrowserEvents[K]) => void,
  ): unknown;
}

export interface DeviceRegistryOptions {
  /** usbmuxd to Listen to (and to read pair records from); null: no USB. */
  usbmuxd: UsbmuxdSource | null;
  /** Browser options (the mDNS socket: see Mobdev2BrowserOptions), a ready source, or null: no Wi-Fi. */
  bonjour: Mobdev2BrowserOptions | AdvertSource | null;
  /** Pair records to match adverts against (built with the same usbmuxd). */
  pairRecords: PairRecordIndex;
  /**
   * 'lockdown' (default): dial 62078 as every host does; 'advertised': dial the SRV port (a test
   * simulator listening elsewhere).
   */
  wifiPort?: 'lockdown' | 'advertised';
  /** Re-Listen backoff after usbmuxd goes away or refuses. */
  relisten?: { initialDelayMs?: number; maxDelayMs?: number };
  unmatchedRefreshMs?: number;
  /** TCP connect deadline of the Wi-Fi endpoints handed out. */
  connectTimeoutMs?: number;
  now?: () => number;
}

interface UsbAttachment {
  udid: string;
  network: boolean;
  since: number;
}

interface Tracked {
  lastSeen: number;
  /** The last snapshot's shape, to tell real changes from lastSeen refreshes. */
  shape: string;
  reachable: boolean;
}

interface AdvertPlacement {
  udid: string;
  by: MatchRule;
}

function isAdvertSource(b: Mobdev2BrowserOptions | AdvertSource): b is AdvertSource {
  return typeof (b as AdvertSource).start === 'function';
}

export class DeviceRegistry extends EventEmitter<DeviceRegistryEvents> {
  private readonly usbmuxd: UsbmuxdSource | null;
  private readonly adverts: AdvertSource | null;
  readonly pairRecords: PairRecordIndex;
  private readonly now: () => number;
  private readonly attachments = new Map<number, UsbAttachment>();
  private readonly placements = new Map<string, AdvertPlacement>();
  private readonly tracked = new Map<string, Tracked>();
  private listener: MuxListener | undefined;
  private relistenTimer: NodeJS.Timeout | undefined;
  private relistenDelay: number;
  private started = false;
  private stopped = false;
  private lastUnmatchedRefresh = 0;

  constructor(private readonly opts: DeviceRegistryOptions) {
    super();
    this.usbmuxd = opts.usbmuxd;
    this.pairRecords = opts.pairRecords;
    this.now = opts.now ?? Date.now;
    this.relistenDelay = opts.relisten?.initialDelayMs ?? DEFAULT_RELISTEN_INITIAL_MS;
    this.adverts =
      opts.bonjour === null
        ? null
        : isAdvertSource(opts.bonjour)
          ? opts.bonjour
          : new Mobdev2Browser(opts.bonjour);
  }

  /**
   * Reads the pair records, starts listening to usbmuxd (retrying with backoff while it is
   * unavailable: this never rejects for that) and browsing Bonjour.
   */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    await this.refreshPairRecords();
    if (this.stopped) return;
    if (this.adverts) {
      this.adverts.on('up', this.onAdvert);
      this.adverts.on('update', this.onAdvert);
      this.adverts.on('down', this.onAdvertDown);
      this.adverts.on('warning', this.onWarning);
      this.adverts.start();
    }
    if (this.usbmuxd) await this.listen();
  }

  /** Stops everything; no events after it resolves. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.relistenTimer);
    this.listener?.removeAllListeners();
    this.listener?.close();
    this.listener = undefined;
    if (this.adverts) {
      this.adverts.off('up', this.onAdvert);
      this.adverts.off('update', this.onAdvert);
      this.adverts.off('down', this.onAdvertDown);
      this.adverts.off('warning', this.onWarning);
      await this.adverts.stop();
    }
  }

  /** Every device seen since start (reachable or not), as snapshots. */
  list(): DevicePresence[] {
    return [...this.tracked.keys()].map((udid) => this.snapshot(udid));
  }

  get(udid: string): DevicePresence | undefined {
    const key = normaliseUdid(udid);
    return this.tracked.has(key) ? this.snapshot(key) : undefined;
  }

  /**
   * How to reach the device now: USB through usbmuxd first, then the Bonjour address over TCP,
   * then a usbmuxd Network listing. Undefined when it is not reachable.
   */
  endpoint(udid: string, opts: { prefer?: 'usb' | 'wifi' } = {}): DeviceEndpoint | undefined {
    const key = normaliseUdid(udid);
    const p = this.tracked.has(key) ? this.snapshot(key) : undefined;
    if (!p) return undefined;
    const usb = (): DeviceEndpoint | undefined =>
      p.usb && this.usbmuxd ? new UsbmuxEndpoint(this.usbmuxd, p.usb.deviceId, key) : undefined;
    const wifi = (): DeviceEndpoint | undefined =>
      p.wifi
        ? new TcpEndpoint({
            udid: key,
            host: p.wifi.host,
            lockdownPort: p.wifi.port,
            ...(this.opts.connectTimeoutMs === undefined
              ? {}
              : { connectTimeoutMs: this.opts.connectTimeoutMs }),
          })
        : undefined;
    const network = (): DeviceEndpoint | undefined =>
      p.network && this.usbmuxd
        ? new UsbmuxEndpoint(this.usbmuxd, p.network.deviceId, key, 'wifi')
        : undefined;
    return opts.prefer === 'wifi' ? (wifi() ?? network() ?? usb()) : (usb() ?? wifi() ?? network());
  }

  /**
   * Re-reads the pair records (after `mooring pair`, or when records changed on disk) and
   * re-matches every advert. Problems with single records are reported as 'warning'.
   */
  async refreshPairRecords(): Promise<void> {
    const problems = await this.pairRecords.refresh();
    for (const p of problems) {
      this.onWarning(
        new MooringError('PAIRING', `pair record for ${p.udid} skipped: ${p.error.message}`, {
          cause: p.error,
        }),
      );
    }
    if (this.stopped) return;
    this.rematchAll();
    // A record may also have come or gone for a device on USB.
    for (const udid of [...this.tracked.keys()]) this.update(udid);
  }

  // ---- usbmuxd ----------------------------------------------------------------------------

  private async listen(): Promise<void> {
    const mux = this.usbmuxd;
    if (!mux || this.stopped) return;
    let listener: MuxListener;
    try {
      listener = await mux.listen();
    } catch (e) {
      if (this.stopped) return;
      const retryInMs = this.scheduleRelisten();
      this.emit('usbmuxd', { state: 'unavailable', error: asError(e), retryInMs });
      return;
    }
    if (this.stopped) {
      listener.close();
      return;
    }
    this.listener = listener;
    this.relistenDelay = this.opts.relisten?.initialDelayMs ?? DEFAULT_RELISTEN_INITIAL_MS;
    listener.on('attached', (d) => this.onAttached(d));
    listener.on('detached', ({ deviceId }) => this.onDetached(deviceId));
    listener.on('paired', ({ deviceId }) => {
      const a = this.attachments.get(deviceId);
      if (a) void this.loadRecord(a.udid);
    });
    listener.on('close', (error) => {
      if (this.listener === listener) this.listener = undefined;
      if (this.stopped) return;
      // A failed Listen has reported its devices detached already; this covers any other end.
      for (const id of [...this.attachments.keys()]) this.onDetached(id);
      const retryInMs = this.scheduleRelisten();
      this.emit('usbmuxd', {
        state: 'lost',
        error: error ?? new MooringError('USBMUXD', 'the usbmuxd Listen connection ended'),
        retryInMs,
      });
    });
    this.emit('usbmuxd', { state: 'listening' });
  }

  /** Returns the delay chosen; doubles it for next time, up to the maximum. */
  private scheduleRelisten(): number {
    const delay = this.relistenDelay;
    const max = this.opts.relisten?.maxDelayMs ?? DEFAULT_RELISTEN_MAX_MS;
    this.relistenDelay = Math.min(delay * 2, max);
    clearTimeout(this.relistenTimer);
    this.relistenTimer = setTimeout(() => void this.listen(), delay);
    this.relistenTimer.unref();
    return delay;
  }

  private onAttached(d: MuxDevice): void {
    const udid = normaliseUdid(d.udid, d.deviceId);
    this.attachments.set(d.deviceId, {
      udid,
      network: d.connectionType === 'Network',
      since: this.now(),
    });
    this.update(udid);
    if (!this.pairRecords.get(udid)) void this.loadRecord(udid);
  }

  private onDetached(deviceId: number): void {
    const a = this.attachments.get(deviceId);
    if (!a) return;
    this.attachments.delete(deviceId);
    // It was there until now.
    const t = this.tracked.get(a.udid);
    if (t) t.lastSeen = Math.max(t.lastSeen, this.now());
    this.update(a.udid);
  }

  /** A device usbmuxd knows may have a record only usbmuxd holds: index it, then re-match. */
  private async loadRecord(udid: string): Promise<void> {
    try {
      await this.pairRecords.loadUdid(udid);
    } catch (e) {
      this.onWarning(asError(e));
    }
    if (this.stopped) return;
    this.update(udid);
    this.rematchAll();
  }

  // ---- Bonjour ----------------------------------------------------------------------------

  private readonly onAdvert = (advert: Mobdev2Advert): void => {
    if (this.stopped) return;
    this.place(advert, true);
  };

  private readonly onAdvertDown = (advert: Mobdev2Advert): void => {
    if (this.stopped) return;
    const key = advert.fqdn.toLowerCase();
    const placed = this.placements.get(key);
    this.placements.delete(key);
    if (placed) this.update(placed.udid);
  };

  private readonly onWarning = (e: Error): void => {
    if (!this.stopped) this.emit('warning', e);
  };

  private rematchAll(): void {
    if (!this.adverts) return;
    for (const advert of this.adverts.adverts()) this.place(advert, false);
  }

  /** Matches one advert to a UDID and updates the presences it touches. */
  private place(advert: Mobdev2Advert, mayRefresh: boolean): void {
    const key = advert.fqdn.toLowerCase();
    const before = this.placements.get(key);
    const match: AdvertMatch = this.pairRecords.match(advert);
    let reason: IgnoredAdvertReason | undefined;
    if (match.kind === 'matched' && pickAdvertAddress(advert) === undefined) reason = 'no-address';
    else if (match.kind !== 'matched') reason = match.kind;

    if (reason === undefined && match.kind === 'matched') {
      const udid = normaliseUdid(match.udid);
      this.placements.set(key, { udid, by: match.by });
      if (before && before.udid !== udid) this.update(before.udid);
      this.update(udid);
      return;
    }
    this.placements.delete(key);
    if (before) this.update(before.udid);
    this.emit('advert-ignored', {
      advert,
      reason: reason ?? 'unknown',
      ...(match.kind === 'ambiguous' ? { udids: match.udids } : {}),
    });
    // Perhaps it was paired by another tool since we last looked: re-read, but not too often.
    const every = this.opts.unmatchedRefreshMs ?? DEFAULT_UNMATCHED_REFRESH_MS;
    if (mayRefresh && reason === 'unknown' && this.now() - this.lastUnmatchedRefresh >= every) {
      this.lastUnmatchedRefresh = this.now();
      this.refreshPairRecords().catch((e: unknown) => this.onWarning(asError(e)));
    }
  }

  // ---- presence ---------------------------------------------------------------------------

  /** Recomputes one device's presence and emits what changed. */
  private update(udid: string): void {
    if (this.stopped) return;
    const t = this.tracked.get(udid);
    const p = this.compute(udid, t);
    if (!t && !p.reachable) return; // never seen: nothing to say
    const shape = shapeOf(p);
    const wasReachable = t?.reachable ?? false;
    this.tracked.set(udid, { lastSeen: p.lastSeen.getTime(), shape, reachable: p.reachable });
    if (t && t.shape === shape) return;
    if (p.reachable && !wasReachable) this.emit('appeared', p);
    if (!p.reachable && wasReachable) this.emit('disappeared', p);
    this.emit('changed', p);
  }

  private snapshot(udid: string): DevicePresence {
    return this.compute(udid, this.tracked.get(udid));
  }

  /** The advert currently standing for a device: the most recently heard of its adverts. */
  private advertFor(udid: string): { advert: Mobdev2Advert; by: MatchRule } | undefined {
    if (!this.adverts) return undefined;
    let best: { advert: Mobdev2Advert; by: MatchRule } | undefined;
    for (const advert of this.adverts.adverts()) {
      const placed = this.placements.get(advert.fqdn.toLowerCase());
      if (!placed || placed.udid !== udid) continue;
      if (!best || advert.lastSeen > best.advert.lastSeen) best = { advert, by: placed.by };
    }
    return best;
  }

  private compute(udid: string, t: Tracked | undefined): DevicePresence {
    const now = this.now();
    let usb: (UsbAttachment & { deviceId: number }) | undefined;
    let network: (UsbAttachment & { deviceId: number }) | undefined;
    for (const [deviceId, a] of this.attachments) {
      if (a.udid !== udid) continue;
      if (a.network) network ??= { ...a, deviceId };
      else usb ??= { ...a, deviceId };
    }
    const placed = this.advertFor(udid);
    const host = placed ? pickAdvertAddress(placed.advert) : undefined;
    let wifi: DevicePresence['wifi'];
    if (placed && host !== undefined) {
      const a = placed.advert;
      wifi = {
        host,
        port: this.opts.wifiPort === 'advertised' ? a.port : DEVICE_LOCKDOWN_PORT,
        addresses: [...a.addresses],
        instanceName: a.instanceName,
        matchedBy: placed.by,
        since: new Date(a.firstSeen),
        lastSeen: new Date(a.lastSeen),
      };
    }
    const reachable = usb !== undefined || network !== undefined || wifi !== undefined;
    const lastSeen = Math.max(
      t?.lastSeen ?? 0,
      usb || network ? now : 0,
      wifi ? wifi.lastSeen.getTime() : 0,
    );
    return {
      udid,
      paired: this.pairRecords.get(udid) !== undefined,
      ...(usb ? { usb: { deviceId: usb.deviceId, since: new Date(usb.since) } } : {}),
      ...(network
        ? { network: { deviceId: network.deviceId, since: new Date(network.since) } }
        : {}),
      ...(wifi ? { wifi } : {}),
      lastSeen: new Date(lastSeen),
      reachable,
    };
  }
}

/** Everything but the clocks: two presences with the same shape are the same news. */
function shapeOf(p: DevicePresence): string {
  return JSON.stringify([
    p.paired,
    p.reachable,
    p.usb?.deviceId ?? null,
    p.network?.deviceId ?? null,
    p.wifi
      ? [p.wifi.host, p.wifi.port, p.wifi.instanceName, p.wifi.matchedBy, p.wifi.addresses]
      : null,
  ]);
}

function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}
