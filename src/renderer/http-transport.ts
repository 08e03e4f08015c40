/**
 * The bridge over the agent's HTTP API, for the UI served by `mooring agent`: same-origin fetch
 * (the HttpOnly token cookie goes along by itself) and EventSource on /api/events. One function
 * per method maps its arguments to the REST route; the agent's error message comes back as a
 * BridgeError so forms can show it as it is.
 */
import type {
  AgentEvent,
  AgentService,
  DiffSummary,
  FilePage,
  FileQuery,
  SnapshotSummary,
} from '../agent/types';
import { snapshotPaths, type SnapshotSource } from './snapshot-source.js';
import { BridgeError, type BridgeMethod, type MooringBridge } from './transport.js';

type Args<M extends BridgeMethod> = Parameters<AgentService[M]>;
type Result<M extends BridgeMethod> = Awaited<ReturnType<AgentService[M]>>;

/** The SSE event names to listen for: every AgentEvent type (a new one fails to compile here). */
const EVENT_TYPES = Object.keys({
  device: true,
  'device-removed': true,
  notification: true,
  attempt: true,
  progress: true,
  agent: true,
  usbmuxd: true,
} satisfies Record<AgentEvent['type'], true>) as ReadonlyArray<AgentEvent['type']>;

function query(q: object): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) if (v !== undefined && v !== null) p.set(k, String(v));
  const s = p.toString();
  return s ? `?${s}` : '';
}

const dev = (udid: string): string => `/api/devices/${encodeURIComponent(udid)}`;
const scope = (udid: string | undefined): string =>
  udid === undefined ? '' : `?udid=${encodeURIComponent(udid)}`;

export class HttpBridge implements MooringBridge, SnapshotSource {
  private source: EventSource | undefined;
  private readonly listeners = new Set<(e: AgentEvent) => void>();

  constructor(private readonly base = '') {}

  private async request<T>(
    method: string,
    path: string,
    body?: unknown,
    accept: number[] = [],
  ): Promise<T> {
    let res: Response;
    try {
      res = await fetch(`${this.base}${path}`, {
        method,
        credentials: 'same-origin',
        headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    } catch (e) {
      throw new BridgeError(
        `The Mooring agent cannot be reached (${e instanceof Error ? e.message : String(e)}). Is it still running?`,
        'UNREACHABLE',
      );
    }
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text === '' ? undefined : JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    if (res.ok || accept.includes(res.status)) return parsed as T;
    const err = (parsed as { error?: { code?: string; message?: string } } | undefined)?.error;
    throw new BridgeError(
      err?.message ?? `The agent answered HTTP ${res.status}`,
      err?.code ?? 'HTTP',
      res.status,
    );
  }

  private readonly routes: { [M in BridgeMethod]: (...a: Args<M>) => Promise<Result<M>> } = {
    status: () => this.request('GET', '/api/status'),
    devices: () => this.request('GET', '/api/devices'),
    device: async (udid) => {
      try {
        return await this.request('GET', dev(udid));
      } catch (e) {
        if (e instanceof BridgeError && e.status === 404) return undefined;
        throw e;
      }
    },
    history: (q) => this.request('GET', `/api/history${query(q)}`),
    attempts: (q) => this.request('GET', `/api/attempts${query(q)}`),
    markRead: async (opts) =>
      (await this.request<{ marked: number }>('POST', '/api/history/read', opts)).marked,
    // 409 carries the reason it did not start, as a result rather than an error.
    backupNow: (udid) => this.request('POST', `${dev(udid)}/backup`, {}, [409]),
    cancel: async (udid) =>
      (await this.request<{ cancelled: boolean }>('POST', `${dev(udid)}/cancel`, {})).cancelled,
    getConfig: (udid) => this.request('GET', `/api/config${scope(udid)}`),
    setConfig: (changes, udid) => this.request('PATCH', `/api/config${scope(udid)}`, changes),
    pause: async () => {
      await this.request('POST', '/api/pause', {});
    },
    resume: async () => {
      await this.request('POST', '/api/resume', {});
    },
    setWifi: (udid, on) => this.request('POST', `${dev(udid)}/wifi`, { on }),
    // 409 carries why it did not pair (refused, nobody answered), as a result.
    pair: (udid) => this.request('POST', `${dev(udid)}/pair`, {}, [409]),
    readLog: (q) => this.request('GET', `/api/log${query({ bytes: q.maxBytes })}`),
    pinSnapshot: (udid, snapshotId, pinned) =>
      this.request('POST', `${dev(udid)}/snapshots/${encodeURIComponent(snapshotId)}/pin`, {
        pinned,
      }),
    snapshots: (udid) => this.request('GET', snapshotPaths(udid).list),
    files: (udid, snapshotId, q) => this.request('GET', snapshotPaths(udid, snapshotId).files(q)),
    diff: (udid, from, to) => this.request('GET', snapshotPaths(udid).diff(from, to)),
    // Passwords go in bodies only; 409 carries a refusal the person can act on, as a result.
    setEncryption: (udid, req) => this.request('POST', `${dev(udid)}/encryption`, req, [409]),
    storeBackupPassword: (udid, password) =>
      this.request('POST', `${dev(udid)}/encryption/password`, { password }, [409]),
    recoverySheet: (udid) => this.request('POST', `${dev(udid)}/encryption/recovery-sheet`, {}),
  };

  call<M extends BridgeMethod>(method: M, ...args: Args<M>): Promise<Result<M>> {
    const route = this.routes[method] as (...a: Args<M>) => Promise<Result<M>>;
    return route(...args);
  }

  snapshots(udid: string): Promise<SnapshotSummary[]> {
    return this.call('snapshots', udid);
  }

  files(udid: string, snapshotId: string, q: FileQuery): Promise<FilePage> {
    return this.call('files', udid, snapshotId, q);
  }

  diff(udid: string, from: string, to: string): Promise<DiffSummary> {
    return this.call('diff', udid, from, to);
  }

  fileUrl(udid: string, snapshotId: string, domain: string, relativePath: string): string {
    return `${this.base}${snapshotPaths(udid, snapshotId).file(domain, relativePath)}`;
  }

  onEvent(listener: (e: AgentEvent) => void): () => void {
    this.listeners.add(listener);
    this.open();
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0) {
        this.source?.close();
        this.source = undefined;
      }
    };
  }

  /** One EventSource for every listener; it reconnects by itself after a drop. */
  private open(): void {
    if (this.source) return;
    const source = new EventSource(`${this.base}/api/events`);
    this.source = source;
    for (const type of EVENT_TYPES) {
      source.addEventListener(type, (m: MessageEvent<string>) => {
        let e: AgentEvent;
        try {
          e = JSON.parse(m.data) as AgentEvent;
        } catch {
          return;
        }
        for (const l of [...this.listeners]) l(e);
      });
    }
    // Events sent while the stream was down are lost: whoever cares reloads on a reconnect.
    let opened = false;
    source.addEventListener('open', () => {
      if (opened) for (const l of [...this.reconnectListeners]) l();
      opened = true;
    });
    source.addEventListener('error', () => {
      for (const l of [...this.downListeners]) l();
    });
  }

  private readonly reconnectListeners = new Set<() => void>();
  private readonly downListeners = new Set<() => void>();

  /** `up` after the event stream came back (state may be stale), `down` when it dropped. */
  onConnection(up: () => void, down: () => void): void {
    this.reconnectListeners.add(up);
    this.downListeners.add(down);
  }
}
