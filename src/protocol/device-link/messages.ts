/**
 * Device Link (DL) message shapes, both directions (reference §4.1, §4.4).
 *
 * A DL message is a plist array whose first element names it ("DLMessage…" or "DLContentsOfDirectory").
 * Builders produce exactly what hosts/devices send; parsers validate what arrives from an untrusted
 * peer (element types, minimum lengths, bounded lists and path lengths) and return a typed union.
 */
import { MooringError } from '../../util/errors';
import { isPlistDict, PlistReal, type PlistDict, type PlistValue } from '../plist/types';
import { setDictEntry } from '../plist/xml';

/** The placeholder DL uses for "no value" in string slots. */
export const DL_EMPTY_PARAMETER = '___EmptyParameterString___';

export const DlMessageName = {
  VERSION_EXCHANGE: 'DLMessageVersionExchange',
  DEVICE_READY: 'DLMessageDeviceReady',
  PROCESS_MESSAGE: 'DLMessageProcessMessage',
  DISCONNECT: 'DLMessageDisconnect',
  PING: 'DLMessagePing',
  STATUS_RESPONSE: 'DLMessageStatusResponse',
  DOWNLOAD_FILES: 'DLMessageDownloadFiles',
  UPLOAD_FILES: 'DLMessageUploadFiles',
  GET_FREE_DISK_SPACE: 'DLMessageGetFreeDiskSpace',
  PURGE_DISK_SPACE: 'DLMessagePurgeDiskSpace',
  CONTENTS_OF_DIRECTORY: 'DLContentsOfDirectory',
  CREATE_DIRECTORY: 'DLMessageCreateDirectory',
  MOVE_ITEMS: 'DLMessageMoveItems',
  MOVE_FILES: 'DLMessageMoveFiles',
  REMOVE_ITEMS: 'DLMessageRemoveItems',
  REMOVE_FILES: 'DLMessageRemoveFiles',
  COPY_ITEM: 'DLMessageCopyItem',
} as const;

/** The host's answer in the version exchange. */
export const DL_VERSIONS_OK = 'DLVersionsOk';

/** Most elements a DL array may have (the longest real message has 5). */
export const MAX_DL_MESSAGE_ELEMENTS = 16;
/** Longest DL message name accepted. */
export const MAX_DL_NAME_LENGTH = 64;
/** Longest path (UTF-8 bytes) in any DL message or file stream, as LIMD's filename check. */
export const MAX_DL_PATH_BYTES = 4096;
/** Most paths (or move pairs) in one DownloadFiles / RemoveItems / MoveItems message. */
export const MAX_DL_PATHS_PER_MESSAGE = 100_000;
/** Longest status / error text accepted. */
export const MAX_DL_TEXT_LENGTH = 64 * 1024;

/** Multi-status reply: code −13, text "Multi status", payload {path: {DLFileErrorCode, DLFileErrorString}}. */
export const DL_MULTI_STATUS_CODE = -13;
export const DL_MULTI_STATUS_TEXT = 'Multi status';

/** errno → DL status code (LIMD errno_to_device_error, PMD3 ERRNO_TO_DEVICE_ERROR); anything else is −1. */
export const DL_ERRNO_CODES: Readonly<Record<string, number>> = {
  ENOENT: -6,
  EEXIST: -7,
  ENOTDIR: -8,
  EISDIR: -9,
  ELOOP: -10,
  EIO: -11,
  ENOSPC: -15,
};
export const DL_GENERIC_ERROR_CODE = -1;

/** Maps a Node error code (`err.code`, e.g. 'ENOENT') to the DL status code a device expects. */
export function dlCodeForErrno(errnoCode: string | undefined): number {
  return (errnoCode !== undefined ? DL_ERRNO_CODES[errnoCode] : undefined) ?? DL_GENERIC_ERROR_CODE;
}

/** DLContentsOfDirectory entry types. */
export const DlFileType = {
  DIRECTORY: 'DLFileTypeDirectory',
  REGULAR: 'DLFileTypeRegular',
  UNKNOWN: 'DLFileTypeUnknown',
} as const;

export type DlArray = [string, ...PlistValue[]];

// ---------------------------------------------------------------------------------------------
// Generic validation

function malformed(message: string): MooringError {
  return new MooringError('MALFORMED', message);
}

/** Checks the DL envelope: an array of 1..16 elements whose first is a "DL…" name. */
export function validateDlArray(v: PlistValue): DlArray {
  if (!Array.isArray(v)) throw malformed('Device Link message is not an array');
  if (v.length === 0) throw malformed('Device Link message is an empty array');
  if (v.length > MAX_DL_MESSAGE_ELEMENTS) {
    throw new MooringError(
      'LIMIT',
      `Device Link message has ${v.length} elements, more than ${MAX_DL_MESSAGE_ELEMENTS}`,
    );
  }
  const name = v[0];
  // LIMD rejects names shorter than 9 characters or not starting with "DL".
  if (
    typeof name !== 'string' ||
    !name.startsWith('DL') ||
    name.length < 9 ||
    name.length > MAX_DL_NAME_LENGTH
  ) {
    throw malformed(
      `Device Link message does not start with a DL message name (${describe(name)})`,
    );
  }
  return v as DlArray;
}

function describe(v: PlistValue | undefined): string {
  if (v === undefined) return 'missing';
  if (typeof v === 'string') return JSON.stringify(v.length > 80 ? `${v.slice(0, 80)}…` : v);
  if (Array.isArray(v)) return 'an array';
  if (Buffer.isBuffer(v)) return 'data';
  return typeof v === 'object' ? (isPlistDict(v) ? 'a dict' : 'an object') : typeof v;
}

function requireLength(msg: DlArray, min: number): void {
  if (msg.length < min)
    throw malformed(`${msg[0]} needs at least ${min} elements, got ${msg.length}`);
}

function uint(v: PlistValue | undefined, what: string): number {
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return v;
  if (typeof v === 'bigint' && v >= 0n && v <= BigInt(Number.MAX_SAFE_INTEGER)) return Number(v);
  throw malformed(`${what} is not a non-negative integer (${describe(v)})`);
}

function text(v: PlistValue | undefined, what: string): string {
  if (typeof v !== 'string') throw malformed(`${what} is not a string (${describe(v)})`);
  if (v.length > MAX_DL_TEXT_LENGTH)
    throw new MooringError('LIMIT', `${what} is longer than ${MAX_DL_TEXT_LENGTH} characters`);
  return v;
}

/** A device-controlled path: a non-empty string of at most MAX_DL_PATH_BYTES UTF-8 bytes without NUL. */
export function dlPath(v: PlistValue | undefined, what: string): string {
  if (typeof v !== 'string') throw malformed(`${what} is not a string (${describe(v)})`);
  // dlPathAcceptable is this rule from a string's measurements: change both together.
  if (v.length === 0) throw malformed(`${what} is empty`);
  if (v.includes('\0')) throw malformed(`${what} contains a NUL character`);
  if (Buffer.byteLength(v, 'utf8') > MAX_DL_PATH_BYTES) {
    throw new MooringError('LIMIT', `${what} is longer than ${MAX_DL_PATH_BYTES} bytes`);
  }
  return v;
}

/** Whether `dlPath` accepts a string of `utf8Bytes` UTF-8 bytes, with a NUL character or not. */
export function dlPathAcceptable(utf8Bytes: number, nul: boolean): boolean {
  return utf8Bytes > 0 && !nul && utf8Bytes <= MAX_DL_PATH_BYTES;
}

function pathList(v: PlistValue | undefined, what: string): string[] {
  if (!Array.isArray(v)) throw malformed(`${what} is not an array (${describe(v)})`);
  if (v.length > MAX_DL_PATHS_PER_MESSAGE) {
    throw new MooringError(
      'LIMIT',
      `${what} lists ${v.length} paths, more than ${MAX_DL_PATHS_PER_MESSAGE}`,
    );
  }
  return v.map((p, i) => dlPath(p, `${what}[${i}]`));
}

function dict(v: PlistValue | undefined, what: string): PlistDict {
  if (!isPlistDict(v)) throw malformed(`${what} is not a dict (${describe(v)})`);
  return v;
}

/** Progress is a real 0–100 in practice; anything else is reported as undefined rather than fatal. */
export function dlProgress(v: PlistValue | undefined): number | undefined {
  const n = v instanceof PlistReal ? v.value : v;
  return typeof n === 'number' && Number.isFinite(n) ? Math.min(100, Math.max(0, n)) : undefined;
}

/** Optional string slot: the empty-parameter placeholder and non-strings read as undefined. */
export function dlOptionalString(v: PlistValue | undefined): string | undefined {
  return typeof v === 'string' && v !== DL_EMPTY_PARAMETER ? v : undefined;
}

/**
 * A DL status code as int64: LIMD puts a negative C int in an unsigned node, PMD3 sends the
 * 2^64-wrapped value, so values ≥ 2^63 wrap to negative. Codes beyond ±2^53 are MALFORMED.
 */
export function normalizeDlStatusCode(v: PlistValue | undefined): number {
  let big: bigint;
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) throw malformed(`status code ${v} is not an integer in range`);
    big = BigInt(v);
  } else if (typeof v === 'bigint') {
    big = v;
  } else {
    throw malformed(`status code is not an integer (${describe(v)})`);
  }
  if (big >= 1n << 64n || big < -(1n << 63n))
    throw malformed(`status code ${big} does not fit in 64 bits`);
  if (big >= 1n << 63n) big -= 1n << 64n;
  if (big > BigInt(Number.MAX_SAFE_INTEGER) || big < BigInt(Number.MIN_SAFE_INTEGER)) {
    throw malformed(`status code ${big} is out of range`);
  }
  return Number(big);
}

// ---------------------------------------------------------------------------------------------
// Builders: host → device

/** `["DLMessageVersionExchange", "DLVersionsOk", major]`. */
export function dlVersionsOk(major: number): DlArray {
  return [DlMessageName.VERSION_EXCHANGE, DL_VERSIONS_OK, major];
}

/** `["DLMessageProcessMessage", {…}]`, in both directions. */
export function dlProcessMessage(message: PlistDict): DlArray {
  return [DlMessageName.PROCESS_MESSAGE, message];
}

/** `["DLMessageDisconnect", reason]`, empty-parameter placeholder when there is no reason. */
export function dlDisconnect(reason?: string): DlArray {
  return [
    DlMessageName.DISCONNECT,
    reason === undefined || reason === '' ? DL_EMPTY_PARAMETER : reason,
  ];
}

export function dlPing(message?: string): DlArray {
  return [
    DlMessageName.PING,
    message === undefined || message === '' ? DL_EMPTY_PARAMETER : message,
  ];
}

/**
 * `["DLMessageStatusResponse", code, text, payload]`. The code is written as a signed integer;
 * text defaults to the empty-parameter placeholder and payload to `{}`.
 */
export function dlStatusResponse(code: number, statusText?: string, payload?: PlistValue): DlArray {
  if (!Number.isSafeInteger(code))
    throw new MooringError('USAGE', `DL status code must be an integer, got ${code}`);
  return [
    DlMessageName.STATUS_RESPONSE,
    code,
    statusText === undefined || statusText === '' ? DL_EMPTY_PARAMETER : statusText,
    payload ?? {},
  ];
}

export interface DlFileError {
  code: number;
  text: string;
}

/** The payload of a −13 "Multi status" reply. */
export function dlMultiStatusPayload(
  errors: ReadonlyMap<string, DlFileError> | Record<string, DlFileError>,
): PlistDict {
  const entries = errors instanceof Map ? [...errors.entries()] : Object.entries(errors);
  const out: PlistDict = {};
  // setDictEntry (fuzz regression): `out[path] =` with a device-named path "__proto__" replaced
  // the payload's prototype instead of adding the entry, so that file's error was never reported.
  for (const [path, e] of entries)
    setDictEntry(out, path, { DLFileErrorCode: e.code, DLFileErrorString: e.text });
  return out;
}

// ---------------------------------------------------------------------------------------------
// Builders: device → host (used by the simulator)

export function dlVersionExchange(major: number, minor: number): DlArray {
  return [DlMessageName.VERSION_EXCHANGE, major, minor];
}

export function dlDeviceReady(): DlArray {
  return [DlMessageName.DEVICE_READY];
}

/** Progress is always real-typed: LIMD only reads a real node. */
function real(p: number): PlistReal {
  return new PlistReal(p);
}

export function dlDownloadFiles(paths: string[], progressPercent = 0): DlArray {
  return [DlMessageName.DOWNLOAD_FILES, paths, {}, real(progressPercent), 0];
}

export function dlUploadFiles(
  progressPercent: number,
  totalBytes: number,
  ioCallbacks = 0,
): DlArray {
  return [
    DlMessageName.UPLOAD_FILES,
    { DLDeviceIOCallbacks: ioCallbacks },
    real(progressPercent),
    totalBytes,
  ];
}

export function dlGetFreeDiskSpace(): DlArray {
  return [DlMessageName.GET_FREE_DISK_SPACE];
}

export function dlPurgeDiskSpace(bytesToFree: number, urgency = 4): DlArray {
  return [DlMessageName.PURGE_DISK_SPACE, bytesToFree, urgency];
}

export function dlContentsOfDirectory(path: string): DlArray {
  return [DlMessageName.CONTENTS_OF_DIRECTORY, path];
}

export function dlCreateDirectory(path: string): DlArray {
  return [DlMessageName.CREATE_DIRECTORY, path];
}

export function dlMoveItems(moves: Record<string, string>, progressPercent = 0): DlArray {
  return [DlMessageName.MOVE_ITEMS, { ...moves }, {}, real(progressPercent)];
}

export function dlRemoveItems(paths: string[], progressPercent = 0): DlArray {
  return [DlMessageName.REMOVE_ITEMS, paths, {}, real(progressPercent)];
}

export function dlCopyItem(source: string, destination: string): DlArray {
  return [DlMessageName.COPY_ITEM, source, destination];
}

// ---------------------------------------------------------------------------------------------
// Parsers: what the host receives from the device

export type DeviceDlMessage =
  | { type: 'VersionExchange'; major: number; minor: number }
  | { type: 'DeviceReady' }
  | { type: 'ProcessMessage'; message: PlistDict }
  | { type: 'Disconnect'; reason: string | undefined }
  | { type: 'DownloadFiles'; paths: string[]; progress: number | undefined }
  | { type: 'UploadFiles'; progress: number | undefined; totalBytes: number | undefined }
  | { type: 'GetFreeDiskSpace' }
  | { type: 'PurgeDiskSpace'; bytesToFree: number | undefined; urgency: number | undefined }
  | { type: 'ContentsOfDirectory'; path: string }
  | { type: 'CreateDirectory'; path: string }
  | { type: 'MoveItems'; name: string; moves: DlMoves; progress: number | undefined }
  | { type: 'RemoveItems'; name: string; paths: string[]; progress: number | undefined }
  | { type: 'CopyItem'; source: string; destination: string }
  | { type: 'Unknown'; name: string; raw: DlArray };

/**
 * A MoveItems message's moves in the device's order, iterable more than once: from a decoded
 * message, or read a pair at a time from its frame (frame.ts, D51).
 */
export type DlMoves = Iterable<[from: string, to: string]>;

function optionalUint(v: PlistValue | undefined): number | undefined {
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return v;
  if (typeof v === 'bigint' && v >= 0n && v <= BigInt(Number.MAX_SAFE_INTEGER)) return Number(v);
  return undefined;
}

/** Validates a message the device sent. Minimum lengths follow reference §4.4. */
export function parseDeviceDlMessage(v: PlistValue): DeviceDlMessage {
  const msg = validateDlArray(v);
  const name = msg[0];
  switch (name) {
    case DlMessageName.VERSION_EXCHANGE:
      requireLength(msg, 3);
      return {
        type: 'VersionExchange',
        major: uint(msg[1], 'DL version major'),
        minor: uint(msg[2], 'DL version minor'),
      };
    case DlMessageName.DEVICE_READY:
      return { type: 'DeviceReady' };
    case DlMessageName.PROCESS_MESSAGE:
      requireLength(msg, 2);
      return { type: 'ProcessMessage', message: dict(msg[1], 'DLMessageProcessMessage payload') };
    case DlMessageName.DISCONNECT:
      return { type: 'Disconnect', reason: dlOptionalString(msg[1]) };
    case DlMessageName.DOWNLOAD_FILES:
      requireLength(msg, 4);
      return {
        type: 'DownloadFiles',
        paths: pathList(msg[1], 'DownloadFiles paths'),
        progress: dlProgress(msg[3]),
      };
    case DlMessageName.UPLOAD_FILES:
      requireLength(msg, 3);
      return {
        type: 'UploadFiles',
        progress: dlProgress(msg[2]),
        totalBytes: optionalUint(msg[3]),
      };
    case DlMessageName.GET_FREE_DISK_SPACE:
      return { type: 'GetFreeDiskSpace' };
    case DlMessageName.PURGE_DISK_SPACE:
      return {
        type: 'PurgeDiskSpace',
        bytesToFree: optionalUint(msg[1]),
        urgency: optionalUint(msg[2]),
      };
    case DlMessageName.CONTENTS_OF_DIRECTORY:
      requireLength(msg, 2);
      return { type: 'ContentsOfDirectory', path: dlPath(msg[1], 'ContentsOfDirectory path') };
    case DlMessageName.CREATE_DIRECTORY:
      requireLength(msg, 2);
      return { type: 'CreateDirectory', path: dlPath(msg[1], 'CreateDirectory path') };
    case DlMessageName.MOVE_ITEMS:
    case DlMessageName.MOVE_FILES: {
      requireLength(msg, 4);
      const d = dict(msg[1], `${name} map`);
      const keys = Object.keys(d);
      if (keys.length > MAX_DL_PATHS_PER_MESSAGE) {
        throw new MooringError(
          'LIMIT',
          `${name} lists ${keys.length} moves, more than ${MAX_DL_PATHS_PER_MESSAGE}`,
        );
      }
      const moves = keys.map((from): [string, string] => [
        dlPath(from, `${name} source`),
        dlPath(d[from], `${name} destination`),
      ]);
      return { type: 'MoveItems', name, moves, progress: dlProgress(msg[3]) };
    }
    case DlMessageName.REMOVE_ITEMS:
    case DlMessageName.REMOVE_FILES:
      requireLength(msg, 4);
      return {
        type: 'RemoveItems',
        name,
        paths: pathList(msg[1], `${name} paths`),
        progress: dlProgress(msg[3]),
      };
    case DlMessageName.COPY_ITEM:
      requireLength(msg, 3);
      return {
        type: 'CopyItem',
        source: dlPath(msg[1], 'CopyItem source'),
        destination: dlPath(msg[2], 'CopyItem destination'),
      };
    default:
      return { type: 'Unknown', name, raw: msg };
  }
}

// ---------------------------------------------------------------------------------------------
// Parsers: what the device (simulator) receives from the host

export type HostDlMessage =
  | { type: 'VersionExchange'; status: string; major: number }
  | { type: 'ProcessMessage'; message: PlistDict }
  | {
      type: 'StatusResponse';
      code: number;
      text: string | undefined;
      payload: PlistValue | undefined;
    }
  | { type: 'Disconnect'; reason: string | undefined }
  | { type: 'Ping'; message: string | undefined }
  | { type: 'Unknown'; name: string; raw: DlArray };

/** Validates a message the host sent (the simulator's side of the conversation). */
export function parseHostDlMessage(v: PlistValue): HostDlMessage {
  const msg = validateDlArray(v);
  const name = msg[0];
  switch (name) {
    case DlMessageName.VERSION_EXCHANGE:
      requireLength(msg, 3);
      return {
        type: 'VersionExchange',
        status: text(msg[1], 'version exchange status'),
        major: uint(msg[2], 'DL version major'),
      };
    case DlMessageName.PROCESS_MESSAGE:
      requireLength(msg, 2);
      return { type: 'ProcessMessage', message: dict(msg[1], 'DLMessageProcessMessage payload') };
    case DlMessageName.STATUS_RESPONSE: {
      requireLength(msg, 2);
      const statusText =
        msg[2] === undefined ? undefined : dlOptionalString(text(msg[2], 'status text'));
      return {
        type: 'StatusResponse',
        code: normalizeDlStatusCode(msg[1]),
        text: statusText,
        payload: msg[3],
      };
    }
    case DlMessageName.DISCONNECT:
      return { type: 'Disconnect', reason: dlOptionalString(msg[1]) };
    case DlMessageName.PING:
      return { type: 'Ping', message: dlOptionalString(msg[1]) };
    default:
      return { type: 'Unknown', name, raw: msg };
  }
}

/** Reads a −13 multi-status payload back into path → error (device side). Bounded like path lists. */
export function parseDlMultiStatus(payload: PlistValue | undefined): Map<string, DlFileError> {
  const out = new Map<string, DlFileError>();
  if (payload === undefined || !isPlistDict(payload)) return out;
  const keys = Object.keys(payload);
  if (keys.length > MAX_DL_PATHS_PER_MESSAGE) {
    throw new MooringError(
      'LIMIT',
      `multi-status lists ${keys.length} paths, more than ${MAX_DL_PATHS_PER_MESSAGE}`,
    );
  }
  for (const path of keys) {
    const entry = payload[path];
    if (!isPlistDict(entry))
      throw malformed(`multi-status entry for ${JSON.stringify(path)} is not a dict`);
    out.set(path, {
      code: normalizeDlStatusCode(entry.DLFileErrorCode),
      text: typeof entry.DLFileErrorString === 'string' ? entry.DLFileErrorString : '',
    });
  }
  return out;
}
