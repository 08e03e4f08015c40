/**
 * The API from the other side: what the CLI (and tests) use to talk to a running agent. One
 * typed method per route; the server's error message becomes the MooringError's message.
 */
import http, { type IncomingMessage } from 'node:http';
import type {
  AgentLogTail,
  AgentEvent,
  AgentStatus,
  BackupNowResult,
  ConfigValues,
  DeviceStatus,
  DiffSummary,
  FilePage,
  FileQuery,
  OpenedFile,
  PairResult,
  SnapshotSummary,
  WifiResult,
} from '../agent/types';
import type {
  AttemptQuery,
  AttemptRow,
  HistoryQuery,
  MarkReadOptions,
  NotificationRow,
  Page,
} from '../history';
import { MooringError, type MooringErrorCode } from '../util/errors';

/** Largest JSON answer accepted (a full page of history is far smaller). */
const MAX_RESPONSE_BYTES = 32 * 1024 * 1024;
/** Largest single event on the stream. */
const MAX_EVENT_BYTES = 4 * 1024 * 1024;
const REQUEST_TIMEOUT_MS = 60_000;
/** pair() waits for a person to answer on the device (the agent gives up after 2 minutes). */
const PAIR_TIMEOUT_MS = 180_000;

/** An answer other than 2xx; `status` 0 when the agent could not be reached at all. */
export class AgentApiError extends MooringError {
  constructor(
    readonly status: number,
    readonly apiCode: string,
    message: string,
    cause?: unknown,
  ) {
    const code: MooringErrorCode = status === 0 ? 'CLOSED' : status < 500 ? 'USAGE' : 'PROTOCOL';
    super(code, message, { detail: apiCode, cause });
    this.name = 'AgentApiError';
  }
}

function queryString(q: object): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) if (v !== undefined) p.set(k, String(v));
  const s = p.toString();
  return s ? `?${s}` : '';
}

export class AgentClient {
  private readonly base: URL;

  constructor(
    url: string,
    private readonly token: string,
  ) {
    this.base = new URL(url);
    if (this.base.protocol !== 'http:') {
      throw new MooringError('USAGE', `agent URL must be http://HOST:PORT, got "${url}"`);
    }
  }

  get url(): string {
    return this.base.origin;
  }

  status(): Promise<AgentStatus> {
    return this.json('GET', '/api/status');
  }

  devices(): Promise<DeviceStatus[]> {
    return this.json('GET', '/api/devices');
  }

  /** undefined when the agent knows no such device. */
  async device(udid: string): Promise<DeviceStatus | undefined> {
    try {
      return await this.json<DeviceStatus>('GET', `/api/devices/${encodeURIComponent(udid)}`);
    } catch (e) {
      if (e instanceof AgentApiError && e.status === 404) return undefined;
      throw e;
    }
  }

  history(q: HistoryQuery = {}): Promise<Page<NotificationRow>> {
    return this.json('GET', `/api/history${queryString(q)}`);
  }

  attempts(q: AttemptQuery = {}): Promise<Page<AttemptRow>> {
    return this.json('GET', `/api/attempts${queryString(q)}`);
  }

  /** A new one-time browser login link (`URL/login?code=…`; the token never goes in a URL). */
  async loginLink(): Promise<string> {
    return (await this.json<{ url: string }>('POST', '/api/login-link')).url;
  }

  async markRead(opts: MarkReadOptions = {}): Promise<number> {
    return (await this.json<{ marked: number }>('POST', '/api/history/read', opts)).marked;
  }

  /** Started (202) or refused (409): both answer a BackupNowResult. */
  backupNow(udid: string): Promise<BackupNowResult> {
    return this.json('POST', `/api/devices/${encodeURIComponent(udid)}/backup`, undefined, [409]);
  }

  async cancel(udid: string): Promise<boolean> {
    const r = await this.json<{ cancelled: boolean }>(
      'POST',
      `/api/devices/${encodeURIComponent(udid)}/cancel`,
    );
    return r.cancelled;
  }

  getConfig(udid?: string): Promise<ConfigValues> {
    return this.json('GET', `/api/config${queryString({ udid })}`);
  }

  setConfig(changes: Record<string, string | null>, udid?: string): Promise<ConfigValues> {
    return this.json('PATCH', `/api/config${queryString({ udid })}`, changes);
  }

  async pause(): Promise<boolean> {
    return (await this.json<{ paused: boolean }>('POST', '/api/pause')).paused;
  }

  async resume(): Promise<boolean> {
    return (await this.json<{ paused: boolean }>('POST', '/api/resume')).paused;
  }

  /** Switches the device's Wi-Fi connections; the switch as the device now has it. */
  setWifi(udid: string, on: boolean): Promise<WifiResult> {
    return this.json('POST', `/api/devices/${encodeURIComponent(udid)}/wifi`, { on });
  }

  /** The end of the agent's log file. */
  readLog(q: { maxBytes?: number } = {}): Promise<AgentLogTail> {
    return this.json('GET', `/api/log${queryString({ bytes: q.maxBytes })}`);
  }

  pinSnapshot(udid: string, snapshotId: string, pinned: boolean): Promise<SnapshotSummary[]> {
    const at = `/api/devices/${encodeURIComponent(udid)}/snapshots/${encodeURIComponent(snapshotId)}`;
    return this.json('POST', `${at}/pin`, { pinned });
  }

  /**
   * Pairs a USB-attached device; resolves once someone answers the Trust dialog (paired, 200)
   * or it ended without pairing (409): both answer a PairResult. Waits up to the agent's wait.
   */
  pair(udid: string): Promise<PairResult> {
    return this.json(
      'POST',
      `/api/devices/${encodeURIComponent(udid)}/pair`,
      undefined,
      [409],
      PAIR_TIMEOUT_MS,
    );
  }

  snapshots(udid: string): Promise<SnapshotSummary[]> {
    return this.json('GET', `/api/devices/${encodeURIComponent(udid)}/snapshots`);
  }

  files(udid: string, snapshotId: string, q: FileQuery = {}): Promise<FilePage> {
    return this.json('GET', `${snapshotPath(udid, snapshotId)}/files${queryString(q)}`);
  }

  diff(udid: string, from: string, to: string): Promise<DiffSummary> {
    return this.json(
      'GET',
      `/api/devices/${encodeURIComponent(udid)}/diff${queryString({ from, to })}`,
    );
  }

  /** A file of a snapshot as a stream (its name from Content-Disposition). */
  async openFile(
    udid: string,
    snapshotId: string,
    domain: string,
    relativePath: string,
  ): Promise<OpenedFile> {
    const res = await this.open(
      'GET',
      `${snapshotPath(udid, snapshotId)}/file${queryString({ domain, path: relativePath })}`,
    );
    if (res.statusCode !== 200) throw await this.failure(res);
    const size = Number(res.headers['content-length']);
    return {
      size: Number.isSafeInteger(size) ? size : -1,
      name: attachmentName(res.headers['content-disposition']) ?? relativePath.split('/').pop()!,
      stream: res,
    };
  }

  /**
   * The agent's events from now on, until `signal` aborts or the agent closes the stream.
   * The first value is yielded only after the stream is open, so a caller that opens it, then
   * triggers something, sees every event that follows.
   */
  async *events(signal?: AbortSignal): AsyncGenerator<AgentEvent> {
    const res = await this.open('GET', '/api/events', undefined, signal);
    if (res.statusCode !== 200) throw await this.failure(res);
    yield* parseEventStream(res, signal);
  }

  /** Opens the event stream and returns it once connected (for "subscribe, then act"). */
  async openEvents(signal?: AbortSignal): Promise<AsyncGenerator<AgentEvent>> {
    const res = await this.open('GET', '/api/events', undefined, signal);
    if (res.statusCode !== 200) throw await this.failure(res);
    return parseEventStream(res, signal);
  }

  private async json<T>(
    method: string,
    path: string,
    body?: unknown,
    alsoOk: number[] = [],
    timeoutMs = REQUEST_TIMEOUT_MS,
  ): Promise<T> {
    const res = await this.open(method, path, body, undefined, timeoutMs);
    const status = res.statusCode ?? 0;
    if ((status < 200 || status > 299) && !alsoOk.includes(status)) throw await this.failure(res);
    const text = await readAll(res);
    try {
      return JSON.parse(text) as T;
    } catch (cause) {
      throw new AgentApiError(
        status,
        'MALFORMED',
        `the agent sent an answer that is not JSON`,
        cause,
      );
    }
  }

  private async failure(res: IncomingMessage): Promise<AgentApiError> {
    const status = res.statusCode ?? 0;
    let code = `HTTP_${status}`;
    let message = `the agent answered ${status} ${res.statusMessage ?? ''}`.trim();
    try {
      const parsed = JSON.parse(await readAll(res)) as {
        error?: { code?: unknown; message?: unknown };
      };
      if (typeof parsed.error?.code === 'string') code = parsed.error.code;
      if (typeof parsed.error?.message === 'string') message = parsed.error.message;
    } catch {
      // Not our JSON error shape: the status line says enough.
    }
    return new AgentApiError(status, code, message);
  }

  private open(
    method: string,
    path: string,
    body?: unknown,
    signal?: AbortSignal,
    timeoutMs = REQUEST_TIMEOUT_MS,
  ): Promise<IncomingMessage> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    return new Promise((resolve, reject) => {
      const req = http.request(
        new URL(path, this.base),
        {
          method,
          // One connection per request: nothing lingers to keep a CLI process alive.
          agent: false,
          headers: {
            Authorization: `Bearer ${this.token}`,
            Accept: 'application/json',
            ...(payload
              ? { 'Content-Type': 'application/json', 'Content-Length': payload.length }
              : {}),
          },
          ...(signal ? { signal } : {}),
        },
        resolve,
      );
      req.setTimeout(timeoutMs, () =>
        req.destroy(new MooringError('TIMEOUT', `the agent at ${this.url} did not answer`)),
      );
      req.on('error', (e) => {
        if (signal?.aborted || e instanceof MooringError) reject(e);
        else {
          reject(
            new AgentApiError(
              0,
              'UNREACHABLE',
              `cannot reach the agent at ${this.url}: ${e.message}`,
              e,
            ),
          );
        }
      });
      req.end(payload);
    });
  }
}

function snapshotPath(udid: string, snapshotId: string): string {
  return `/api/devices/${encodeURIComponent(udid)}/snapshots/${encodeURIComponent(snapshotId)}`;
}

/** The RFC 5987 `filename*` of a Content-Disposition header, else its plain `filename`. */
function attachmentName(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const star = /filename\*=UTF-8''([^;]+)/i.exec(header);
  if (star) {
    try {
      return decodeURIComponent(star[1]!);
    } catch {
      // Fall back to the plain name.
    }
  }
  return /filename="([^"]*)"/i.exec(header)?.[1];
}

async function readAll(res: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_RESPONSE_BYTES) {
      res.destroy();
      throw new AgentApiError(
        res.statusCode ?? 0,
        'TOO_LARGE',
        'the agent sent too large an answer',
      );
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function parseEvent(data: string): AgentEvent {
  try {
    const e = JSON.parse(data) as AgentEvent;
    if (typeof e === 'object' && e !== null && typeof e.type === 'string') return e;
  } catch {
    // Reported below.
  }
  throw new AgentApiError(200, 'MALFORMED', 'the agent sent an event that is not JSON');
}

/** text/event-stream frames → AgentEvents (comments and unknown fields skipped). */
async function* parseEventStream(
  res: IncomingMessage,
  signal?: AbortSignal,
): AsyncGenerator<AgentEvent> {
  let buffer = '';
  res.setEncoding('utf8');
  const stop = (): void => {
    res.destroy();
  };
  signal?.addEventListener('abort', stop, { once: true });
  try {
    for await (const chunk of res as AsyncIterable<string>) {
      buffer += chunk;
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const frame = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = frame
          .split('\n')
          .filter((l) => l.startsWith('data:'))
          .map((l) => l.slice(5).replace(/^ /, ''))
          .join('\n');
        if (data) yield parseEvent(data);
      }
      if (buffer.length > MAX_EVENT_BYTES) {
        throw new AgentApiError(200, 'TOO_LARGE', 'the agent sent too large an event');
      }
    }
  } catch (e) {
    if (!signal?.aborted) throw e;
  } finally {
    signal?.removeEventListener('abort', stop);
    res.destroy();
  }
}
