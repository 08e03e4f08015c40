/**
 * AFC (Apple File Conduit) wire constants: packet header, operation codes, status codes,
 * open modes and lock operations. Numbers are the device's (reference §6.3).
 */

/** Every AFC packet starts with these 8 ASCII bytes. */
export const AFC_MAGIC = Buffer.from('CFA6LPAA', 'ascii');

/** magic(8) + entire_length(8) + this_length(8) + packet_num(8) + operation(8). */
export const AFC_HEADER_BYTES = 40;

/** Operation codes (u64 LE at offset 32). Requests and replies share the space. */
export const AfcOp = {
  STATUS: 0x01,
  DATA: 0x02,
  READ_DIR: 0x03,
  READ_FILE: 0x04,
  WRITE_FILE: 0x05,
  WRITE_PART: 0x06,
  TRUNCATE: 0x07,
  REMOVE_PATH: 0x08,
  MAKE_DIR: 0x09,
  GET_FILE_INFO: 0x0a,
  GET_DEVINFO: 0x0b,
  WRITE_FILE_ATOM: 0x0c,
  FILE_OPEN: 0x0d,
  FILE_OPEN_RES: 0x0e,
  FILE_READ: 0x0f,
  FILE_WRITE: 0x10,
  FILE_SEEK: 0x11,
  FILE_TELL: 0x12,
  FILE_TELL_RES: 0x13,
  FILE_CLOSE: 0x14,
  FILE_SET_SIZE: 0x15,
  GET_CON_INFO: 0x16,
  SET_CON_OPTIONS: 0x17,
  RENAME_PATH: 0x18,
  SET_FS_BS: 0x19,
  SET_SOCKET_BS: 0x1a,
  FILE_LOCK: 0x1b,
  MAKE_LINK: 0x1c,
  GET_FILE_HASH: 0x1d,
  SET_FILE_MOD_TIME: 0x1e,
  GET_FILE_HASH_RANGE: 0x1f,
  FILE_SET_IMMUTABLE_HINT: 0x20,
  GET_SIZE_OF_PATH_CONTENTS: 0x21,
  REMOVE_PATH_AND_CONTENTS: 0x22,
  DIR_OPEN: 0x23,
  DIR_OPEN_RESULT: 0x24,
  DIR_READ: 0x25,
  DIR_CLOSE: 0x26,
  FILE_READ_OFFSET: 0x27,
  FILE_WRITE_OFFSET: 0x28,
} as const;
export type AfcOpCode = (typeof AfcOp)[keyof typeof AfcOp];

/** Largest operation code we know; anything above is reported as unknown. */
export const AFC_MAX_KNOWN_OP = 0x28;

/** Status codes carried by an op-0x01 STATUS packet (8-byte LE). */
export const AfcStatus = {
  SUCCESS: 0,
  UNKNOWN_ERROR: 1,
  OP_HEADER_INVALID: 2,
  NO_RESOURCES: 3,
  READ_ERROR: 4,
  WRITE_ERROR: 5,
  UNKNOWN_PACKET_TYPE: 6,
  INVALID_ARG: 7,
  OBJECT_NOT_FOUND: 8,
  OBJECT_IS_DIR: 9,
  PERM_DENIED: 10,
  SERVICE_NOT_CONNECTED: 11,
  OP_TIMEOUT: 12,
  TOO_MUCH_DATA: 13,
  END_OF_DATA: 14,
  OP_NOT_SUPPORTED: 15,
  OBJECT_EXISTS: 16,
  OBJECT_BUSY: 17,
  NO_SPACE_LEFT: 18,
  OP_WOULD_BLOCK: 19,
  IO_ERROR: 20,
  OP_INTERRUPTED: 21,
  OP_IN_PROGRESS: 22,
  INTERNAL_ERROR: 23,
} as const;
export type AfcStatusCode = (typeof AfcStatus)[keyof typeof AfcStatus];

/** FileRefOpen modes (fopen equivalents). */
export const AfcFileMode = {
  /** r: read only. */
  RDONLY: 1,
  /** r+: read-write, created if missing (what the sync lock uses). */
  RW: 2,
  /** w: write only, created, truncated. */
  WRONLY: 3,
  /** w+: read-write, created, truncated. */
  WR: 4,
  /** a: append. */
  APPEND: 5,
  /** a+: read-append, created. */
  RDAPPEND: 6,
} as const;
export type AfcFileModeCode = (typeof AfcFileMode)[keyof typeof AfcFileMode];

/** FileRefLock operations: flock(2) values, 4 = LOCK_NB (non-blocking) always set by hosts. */
export const AfcLockOp = {
  SHARED: 1 | 4,
  EXCLUSIVE: 2 | 4,
  UNLOCK: 8 | 4,
} as const;
export type AfcLockOpCode = (typeof AfcLockOp)[keyof typeof AfcLockOp];

/** Human text for each status code, used in error messages. */
const STATUS_TEXT: Record<number, string> = {
  0: 'success',
  1: 'unknown error',
  2: 'operation header invalid',
  3: 'no resources',
  4: 'read error',
  5: 'write error',
  6: 'unknown packet type',
  7: 'invalid argument',
  8: 'object not found',
  9: 'object is a directory',
  10: 'permission denied',
  11: 'service not connected',
  12: 'operation timed out',
  13: 'too much data',
  14: 'end of data',
  15: 'operation not supported',
  16: 'object exists',
  17: 'object busy',
  18: 'no space left on device',
  19: 'operation would block',
  20: 'I/O error',
  21: 'operation interrupted',
  22: 'operation in progress',
  23: 'internal error',
};

/** "object not found (8)" for a known code, "AFC status 99" otherwise. */
export function afcStatusMessage(code: number): string {
  const text = STATUS_TEXT[code];
  return text === undefined ? `AFC status ${code}` : `${text} (${code})`;
}

const OP_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(AfcOp).map(([name, code]) => [code, name]),
);

/** "FILE_LOCK" for 0x1b, "op 0x99" for an unknown one. */
export function afcOpName(op: number): string {
  return OP_NAMES[op] ?? `op 0x${op.toString(16)}`;
}
