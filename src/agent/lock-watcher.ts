/**
 * Watches for signs that a device is in someone's hand: SpringBoard posts a lock-state
 * notification whenever the screen locks or unlocks. The agent uses these moments to start a
 * backup while the user can answer the passcode prompt (iOS 16.1+ asks at every backup).
 *
 * One notification_proxy connection per watched device observes the notification. The lockdown
 * session that started the service is closed once the service is up. When the connection drops
 * (device gone, Wi-Fi lost), the watcher reconnects after a delay that doubles up to a bound and
 * resets once a connection has lasted a while; nothing spins while the device is away.
 */
import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import type { DeviceSession } from '../lockdown/session';
import {
  NOTIFICATION_PROXY_SERVICE_NAME,
  NotificationProxyClient,
} from '../services/notification-proxy';

export const LOCKSTATE_NOTIFICATION = 'com.apple.springboard.lockstate';
/**
 * Observe has no reply; to learn that the device registered our observer we also observe this
 * name of our own, post it, and wait for its relay ('watching'). Nothing depends on it arriving.
 */
export const WATCH_READY_NOTIFICATION = 'org.mooring.lock-watcher.ready';

export const DEFAULT_LOCK_WATCH_RETRY_MS = 15_000;
/** The reconnect delay doubles at most this many times (15 s → 16 min by default). */
const MAX_BACKOFF_DOUBLINGS = 6;
/** A connection that lasted this long counts as healthy: the next reconnect starts from retryMs. */
const HEALTHY_CONNECTION_MS = 60_000;

interface Watch {
  udid: string;
  open: () => Promise<DeviceSession>;
  stopped: boolean;
  /** The live observer, to close on unwatch. */
  client: NotificationProxyClient | undefined;
  /** Wakes the backoff sleep early on unwatch. */
  wake: (() => void) | undefined;
  done: Promise<void>;
  /** `now()` when the current observer started; undefined while none runs. */
  since: number | undefined;
}

export class LockWatcher extends EventEmitter<{
  activity: [udid: string, at: number];
  error: [udid: string, err: Error];
  /** The device confirmed the observer (informational; tests and logs). */
  watching: [udid: string];
}> {
  private readonly retryMs: number;
  private readonly now: () => number;
  private readonly watches = new Map<string, Watch>();
  /** Loops still winding down after unwatch (stop() waits for them too). */
  private readonly ending = new Set<Promise<void>>();

  constructor(opts: { retryMs?: number; now?: () => number } = {}) {
    super();
    this.retryMs = Math.max(1, opts.retryMs ?? DEFAULT_LOCK_WATCH_RETRY_MS);
    this.now = opts.now ?? Date.now;
  }

  /** Watched devices. */
  get udids(): string[] {
    return [...this.watches.keys()];
  }

  /**
   * Keeps one notification_proxy observer on the device while watched; reconnects (bounded
   * backoff) after drops. Watching a device already watched only replaces how it is opened.
   */
  watch(udid: string, open: () => Promise<DeviceSession>): void {
    const existing = this.watches.get(udid);
    if (existing !== undefined) {
      existing.open = open;
      return;
    }
    const w: Watch = {
      udid,
      open,
      stopped: false,
      client: undefined,
      wake: undefined,
      done: Promise.resolve(),
      since: undefined,
    };
    this.watches.set(udid, w);
    w.done = this.run(w);
  }

  /**
   * Since when the device's lock state has been observed without a break (undefined while it is
   * not): no lock-state notification since then means nobody unlocked or locked it meanwhile.
   */
  observedSince(udid: string): number | undefined {
    return this.watches.get(udid)?.since;
  }

  unwatch(udid: string): void {
    const w = this.watches.get(udid);
    if (w === undefined) return;
    this.watches.delete(udid);
    w.stopped = true;
    w.client?.close();
    w.wake?.();
    this.ending.add(w.done);
    void w.done.finally(() => this.ending.delete(w.done));
  }

  /** Unwatches every device; resolves when every connection is closed. */
  async stop(): Promise<void> {
    for (const udid of [...this.watches.keys()]) this.unwatch(udid);
    await Promise.all([...this.ending]);
  }

  private async run(w: Watch): Promise<void> {
    let failures = 0;
    while (!w.stopped) {
      const connectedAt = await this.observeOnce(w);
      if (w.stopped) break;
      const lasted = connectedAt === undefined ? 0 : performance.now() - connectedAt;
      failures = lasted >= HEALTHY_CONNECTION_MS ? 0 : failures + 1;
      const delay = this.retryMs * 2 ** Math.min(Math.max(0, failures - 1), MAX_BACKOFF_DOUBLINGS);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          w.wake = undefined;
          resolve();
        }, delay);
        w.wake = () => {
          clearTimeout(timer);
          w.wake = undefined;
          resolve();
        };
      });
    }
  }

  /**
   * One connection: open a session, start notification_proxy, observe, relay until it ends.
   * Returns when (monotonic clock) the observer started, undefined if it never did. Never throws.
   */
  private async observeOnce(w: Watch): Promise<number | undefined> {
    let session: DeviceSession | undefined;
    let client: NotificationProxyClient | undefined;
    let connectedAt: number | undefined;
    try {
      session = await w.open();
      if (w.stopped) return undefined;
      const conn = await session.startService(NOTIFICATION_PROXY_SERVICE_NAME);
      client = new NotificationProxyClient(conn);
      let ended: Error | undefined;
      client.on('end', (e) => (ended = e));
      w.client = client;
      if (w.stopped) return undefined;
      client.on('notification', (name) => {
        if (w.stopped) return;
        try {
          if (name === LOCKSTATE_NOTIFICATION) this.emit('activity', w.udid, this.now());
          else if (name === WATCH_READY_NOTIFICATION) this.emit('watching', w.udid);
        } catch (e) {
          // A listener's bug must not tear down the device connection.
          this.report(w.udid, e instanceof Error ? e : new Error(String(e)));
        }
      });
      await client.observe(LOCKSTATE_NOTIFICATION);
      await client.observe(WATCH_READY_NOTIFICATION);
      await client.post(WATCH_READY_NOTIFICATION);
      // The service connection lives on its own; the lockdown session is not needed any more.
      const s = session;
      session = undefined;
      await s.close();
      connectedAt = performance.now();
      w.since = this.now();
      await client.finished;
      if (ended !== undefined && !w.stopped) this.report(w.udid, ended);
    } catch (e) {
      if (!w.stopped) this.report(w.udid, e instanceof Error ? e : new Error(String(e)));
    } finally {
      w.since = undefined;
      if (client !== undefined) {
        client.close();
        await client.finished.catch(() => undefined);
      }
      if (w.client === client) w.client = undefined;
      if (session !== undefined) await session.close().catch(() => undefined);
    }
    return connectedAt;
  }

  private report(udid: string, err: Error): void {
    // An 'error' event without a listener would throw; a watcher's trouble is never fatal.
    if (this.listenerCount('error') > 0) this.emit('error', udid, err);
  }
}
