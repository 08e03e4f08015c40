/**
 * The main-process side of the renderer bridge, kept free of Electron so it can be tested under
 * Node: which channels exist, who may send on them, and what each AgentService method accepts.
 *
 * The renderer is treated as untrusted input (a compromised page must not reach more than the UI
 * could anyway): the method name must be one of BRIDGE_METHODS, every argument is checked for
 * shape and size before the agent sees it, and only the main frame of our own window showing our
 * own app:// page may call at all. Answers travel as a plain envelope so the renderer gets the
 * MooringError code and message intact (a thrown error would reach it re-worded by Electron).
 */
import {
  BRIDGE_METHODS,
  MAX_FILE_PAGE,
  type AgentService,
  type BridgeMethod,
  type FileQuery,
  type SnapshotBrowsing,
} from '../agent/types';
import {
  ATTEMPT_OUTCOMES,
  type AttemptQuery,
  type HistoryQuery,
  type MarkReadOptions,
} from '../history/types';
import { MAX_PAGE_SIZE } from '../history/queries';
import { NOTIFICATION_KINDS, SEVERITIES } from '../history/reasons';
import { isMooringError } from '../util/errors';
import { isUdid, UDID_EXAMPLE } from '../util/udid';
import { MAX_LOG_TAIL_BYTES } from '../util/log-file';
import { isPlainObject } from '../api/body';
import { checkConfigChanges } from '../api/config-changes';
import { checkEncryptionRequest, checkStorePasswordBody } from '../api/encryption-routes'; // H8c
import { APP_SCHEME } from './app-protocol';

/** ipcRenderer.invoke(CALL_CHANNEL, method, args) → CallResult. Repeated in preload.ts (sandboxed: it can require nothing but electron). */
export const CALL_CHANNEL = 'mooring:call';
/** ipcRenderer.invoke(SAVE_FILE_CHANNEL, udid, snapshotId, domain, path) → CallResult of SaveFileResult. */
export const SAVE_FILE_CHANNEL = 'mooring:save-file';
/** webContents.send(EVENT_CHANNEL, AgentEvent) from main to our window. */
export const EVENT_CHANNEL = 'mooring:event';

/** Most settings one setConfig call may change, and the longest value: as the HTTP API allows. */
export { MAX_CONFIG_KEYS, MAX_CONFIG_VALUE_CHARS } from '../api/config-changes';
/** Largest id or cursor accepted (rows are numbered from 1). */
const MAX_ID = Number.MAX_SAFE_INTEGER;

export type CallResult =
  { ok: true; value: unknown } | { ok: false; error: { code: string; message: string } };

/** A refused call: bad method, bad arguments or a sender that is not our page. */
export class BridgeError extends Error {
  constructor(
    readonly code: 'USAGE' | 'FORBIDDEN',
    message: string,
  ) {
    super(message);
    this.name = 'BridgeError';
  }
}

const usage = (message: string): BridgeError => new BridgeError('USAGE', message);

function show(v: unknown): string {
  if (typeof v === 'string') return `"${v.slice(0, 60)}"`;
  if (v === null || typeof v !== 'object') return String(v).slice(0, 60);
  return Array.isArray(v) ? 'an array' : 'an object';
}

function udid(v: unknown, what = 'udid'): string {
  if (typeof v !== 'string' || !isUdid(v)) {
    throw usage(`${what}: expected a UDID such as ${UDID_EXAMPLE}, got ${show(v)}`);
  }
  return v;
}

function positiveInt(v: unknown, what: string, max: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1 || v > max) {
    throw usage(`${what}: expected an integer from 1 to ${max}, got ${show(v)}`);
  }
  return v;
}

function oneOf<T extends string>(v: unknown, what: string, values: readonly T[]): T {
  if (typeof v !== 'string' || !(values as readonly string[]).includes(v)) {
    throw usage(`${what}: expected one of ${values.join(', ')}, got ${show(v)}`);
  }
  return v as T;
}

/** An options object whose keys are all known; each value goes through its checker. */
function options<T extends object>(
  v: unknown,
  what: string,
  fields: { [K in keyof T]-?: (x: unknown) => T[K] },
): T {
  if (v === undefined) return {} as T;
  if (!isPlainObject(v)) throw usage(`${what}: expected an object, got ${show(v)}`);
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) {
    const check = (fields as Record<string, (x: unknown) => unknown>)[k];
    if (!Object.prototype.hasOwnProperty.call(fields, k) || check === undefined) {
      throw usage(
        `${what}: unknown field "${k.slice(0, 40)}" (accepted: ${Object.keys(fields).join(', ')})`,
      );
    }
    if (x !== undefined) out[k] = check(x);
  }
  return out as T;
}

const optionalUdid = (v: unknown): string | undefined => (v === undefined ? v : udid(v));

type ArgCheckers = {
  [M in BridgeMethod]: (args: readonly unknown[]) => Parameters<AgentService[M]>;
};

type SnapshotMethod = 'snapshots' | 'files' | 'diff';

/** Trailing undefined arguments are dropped first (an optional udid left out). */
function arity(method: string, args: readonly unknown[], min: number, max: number): void {
  if (args.length < min || args.length > max) {
    const want = min === max ? `${min}` : `${min} to ${max}`;
    throw usage(`${method}: expected ${want} argument(s), got ${args.length}`);
  }
}

const BASE_CHECKS: Omit<ArgCheckers, SnapshotMethod> = {
  status: (a) => (arity('status', a, 0, 0), []),
  devices: (a) => (arity('devices', a, 0, 0), []),
  device: (a) => (arity('device', a, 1, 1), [udid(a[0])]),
  history: (a) => {
    arity('history', a, 1, 1);
    return [
      options<HistoryQuery>(a[0], 'history query', {
        udid: optionalUdid,
        severity: (x) => oneOf(x, 'severity', SEVERITIES),
        kind: (x) => oneOf(x, 'kind', NOTIFICATION_KINDS),
        before: (x) => positiveInt(x, 'before', MAX_ID),
        limit: (x) => positiveInt(x, 'limit', MAX_PAGE_SIZE),
      }),
    ];
  },
  attempts: (a) => {
    arity('attempts', a, 1, 1);
    return [
      options<AttemptQuery>(a[0], 'attempts query', {
        udid: optionalUdid,
        outcome: (x) => oneOf(x, 'outcome', ATTEMPT_OUTCOMES),
        before: (x) => positiveInt(x, 'before', MAX_ID),
        limit: (x) => positiveInt(x, 'limit', MAX_PAGE_SIZE),
      }),
    ];
  },
  markRead: (a) => {
    arity('markRead', a, 1, 1);
    return [
      options<MarkReadOptions>(a[0], 'markRead', {
        udid: (x) => (x === null ? null : optionalUdid(x)),
        upTo: (x) => positiveInt(x, 'upTo', MAX_ID),
        ids: (x) => {
          if (!Array.isArray(x) || x.length > MAX_PAGE_SIZE) {
            throw usage(`ids: expected an array of at most ${MAX_PAGE_SIZE} ids, got ${show(x)}`);
          }
          return x.map((id) => positiveInt(id, 'ids', MAX_ID));
        },
      }),
    ];
  },
  backupNow: (a) => (arity('backupNow', a, 1, 1), [udid(a[0])]),
  cancel: (a) => (arity('cancel', a, 1, 1), [udid(a[0])]),
  getConfig: (a) => {
    arity('getConfig', a, 0, 1);
    const u = optionalUdid(a[0]);
    return u === undefined ? [] : [u];
  },
  setConfig: (a) => {
    arity('setConfig', a, 1, 2);
    const changes = checkConfigChanges(a[0], usage);
    const u = optionalUdid(a[1]);
    return u === undefined ? [changes] : [changes, u];
  },
  readLog: (a) => {
    arity('readLog', a, 1, 1);
    return [
      options<{ maxBytes?: number }>(a[0], 'readLog', {
        maxBytes: (x) => positiveInt(x, 'maxBytes', MAX_LOG_TAIL_BYTES),
      }),
    ];
  },
  pause: (a) => (arity('pause', a, 0, 0), []),
  resume: (a) => (arity('resume', a, 0, 0), []),
  setWifi: (a) => {
    arity('setWifi', a, 2, 2);
    if (typeof a[1] !== 'boolean') throw usage(`on: expected true or false, got ${show(a[1])}`);
    return [udid(a[0]), a[1]];
  },
  pair: (a) => (arity('pair', a, 1, 1), [udid(a[0])]),
  pinSnapshot: (a) => {
    arity('pinSnapshot', a, 3, 3);
    if (typeof a[2] !== 'boolean') throw usage(`pinned: expected true or false, got ${show(a[2])}`);
    return [udid(a[0]), snapshotId(a[1], 'snapshot'), a[2]];
  },
  // H8c: backup encryption; password checks never echo the value (no show()).
  setEncryption: (a) => {
    arity('setEncryption', a, 2, 2);
    return [udid(a[0]), checkEncryptionRequest(a[1], usage)];
  },
  storeBackupPassword: (a) => {
    arity('storeBackupPassword', a, 2, 2);
    return [udid(a[0]), checkStorePasswordBody({ password: a[1] }, usage)];
  },
  recoverySheet: (a) => (arity('recoverySheet', a, 1, 1), [udid(a[0])]),
};

/** Longest domain or pattern text, and cursor, a files() query may carry (as the store allows). */
export const MAX_QUERY_TEXT_CHARS = 512;
export const MAX_CURSOR_CHARS = 4096;
/** `YYYYMMDDTHHMMSSZ` with `-N` for a second one in the same second, or 'latest'. */
const SNAPSHOT_ID_SHAPE = /^(?:\d{8}T\d{6}Z(?:-[1-9]\d{0,3})?|latest)$/;

function snapshotId(v: unknown, what: string): string {
  if (typeof v !== 'string' || !SNAPSHOT_ID_SHAPE.test(v)) {
    throw usage(
      `${what}: expected a snapshot id such as 20260115T090000Z or latest, got ${show(v)}`,
    );
  }
  return v;
}

function text(v: unknown, what: string, max: number): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > max) {
    throw usage(`${what}: expected text of 1 to ${max} characters, got ${show(v)}`);
  }
  return v;
}

/** Snapshot browsing (openFile stays out: it returns a stream; see checkSaveFile). */
export const SNAPSHOT_CHECKS: {
  [M in SnapshotMethod]: (args: readonly unknown[]) => Parameters<SnapshotBrowsing[M]>;
} = {
  snapshots: (a) => (arity('snapshots', a, 1, 1), [udid(a[0])]),
  files: (a) => {
    arity('files', a, 2, 3);
    return [
      udid(a[0]),
      snapshotId(a[1], 'snapshot'),
      options<FileQuery>(a[2], 'files query', {
        domain: (x) => text(x, 'domain', MAX_QUERY_TEXT_CHARS),
        pattern: (x) => text(x, 'pattern', MAX_QUERY_TEXT_CHARS),
        limit: (x) => positiveInt(x, 'limit', MAX_FILE_PAGE),
        after: (x) => text(x, 'after', MAX_CURSOR_CHARS),
      }),
    ];
  },
  diff: (a) => {
    arity('diff', a, 3, 3);
    return [udid(a[0]), snapshotId(a[1], 'from'), snapshotId(a[2], 'to')];
  },
};

/** Per method: its argument checker (isBridgeMethod gates every call first). */
const CHECKS: ArgCheckers = { ...SNAPSHOT_CHECKS, ...BASE_CHECKS };

/** Longest relative path a save-file request may name. */
export const MAX_PATH_CHARS = 4096;

export interface SaveFileRequest {
  udid: string;
  snapshotId: string;
  domain: string;
  relativePath: string;
}

/** The arguments of a SAVE_FILE_CHANNEL message; throws BridgeError('USAGE') saying what is wrong. */
export function checkSaveFile(args: unknown): SaveFileRequest {
  if (!Array.isArray(args)) throw usage('saveFile: expected its arguments in an array');
  arity('saveFile', args, 4, 4);
  const a = args as unknown[];
  return {
    udid: udid(a[0]),
    snapshotId: snapshotId(a[1], 'snapshot'),
    domain: text(a[2], 'domain', MAX_QUERY_TEXT_CHARS),
    relativePath: text(a[3], 'path', MAX_PATH_CHARS),
  };
}

export function isBridgeMethod(v: unknown): v is BridgeMethod {
  return typeof v === 'string' && (BRIDGE_METHODS as readonly string[]).includes(v);
}

/** Most arguments any bridge method takes; longer lists are refused before anything is read. */
const MAX_ARGS = 3;

/** The validated call, ready for the agent; throws BridgeError('USAGE') saying what is wrong. */
export function checkCall(
  method: unknown,
  args: unknown,
): { method: BridgeMethod; args: unknown[] } {
  if (!isBridgeMethod(method)) {
    throw usage(`unknown method ${show(method)} (accepted: ${BRIDGE_METHODS.join(', ')})`);
  }
  if (!Array.isArray(args) || args.length > MAX_ARGS) {
    throw usage(`${method}: expected at most ${MAX_ARGS} arguments in an array`);
  }
  const trimmed = [...(args as unknown[])];
  while (trimmed.length > 0 && trimmed[trimmed.length - 1] === undefined) trimmed.pop();
  return { method, args: CHECKS[method](trimmed) as unknown[] };
}

/** What main knows about an IPC message's sender (from IpcMainInvokeEvent). */
export interface SenderFacts {
  /** event.sender.id */
  webContentsId: number;
  /** event.senderFrame: null when the frame has gone or navigated away. */
  frame: { url: string; isMainFrame: boolean } | null;
}

/** Our window and the page it must be showing. */
export interface ExpectedSender {
  webContentsId: number;
  /** app://mooring/index.html: the page app-protocol.ts serves from dist/renderer. */
  pageUrl: string;
}

/** Same file, ignoring the #route and any ?query the renderer adds. */
function samePage(url: string, pageUrl: string): boolean {
  let a: URL;
  let b: URL;
  try {
    a = new URL(url);
    b = new URL(pageUrl);
  } catch {
    return false;
  }
  return (
    a.protocol === b.protocol &&
    a.protocol === APP_SCHEME + ':' &&
    a.host === b.host &&
    a.pathname === b.pathname
  );
}

/** Throws BridgeError('FORBIDDEN') unless the message comes from our page's main frame in our window. */
export function checkSender(sender: SenderFacts, expected: ExpectedSender | undefined): void {
  if (expected === undefined) throw new BridgeError('FORBIDDEN', 'no Mooring window is open');
  if (sender.webContentsId !== expected.webContentsId) {
    throw new BridgeError('FORBIDDEN', 'message from a window that is not Mooring');
  }
  if (sender.frame === null || !sender.frame.isMainFrame) {
    throw new BridgeError('FORBIDDEN', 'message from a frame that is not the main frame');
  }
  if (!samePage(sender.frame.url, expected.pageUrl)) {
    throw new BridgeError('FORBIDDEN', 'message from a page that is not Mooring');
  }
}

export function errorResult(e: unknown): CallResult {
  if (e instanceof BridgeError) return { ok: false, error: { code: e.code, message: e.message } };
  if (isMooringError(e)) return { ok: false, error: { code: e.code, message: e.message } };
  // Anything else is a bug on our side: say so without handing internals to the page.
  return { ok: false, error: { code: 'INTERNAL', message: 'Mooring hit an internal error' } };
}

/**
 * One renderer call, end to end: sender check, validation, the agent call, the envelope. Never
 * throws; `onInternal` sees unexpected errors (for the log).
 */
export async function handleCall(
  service: AgentService,
  sender: SenderFacts,
  expected: ExpectedSender | undefined,
  method: unknown,
  args: unknown,
  onInternal?: (e: unknown) => void,
): Promise<CallResult> {
  try {
    checkSender(sender, expected);
    const call = checkCall(method, args);
    const fn = service[call.method] as (...a: unknown[]) => unknown;
    // Structured clone carries undefined (device() of an unknown udid) as it is.
    return { ok: true, value: await fn.apply(service, call.args) };
  } catch (e) {
    const r = errorResult(e);
    if (!r.ok && r.error.code === 'INTERNAL') onInternal?.(e);
    return r;
  }
}
