/**
 * Encoders/decoders for the pieces inside AFC packets: NUL-terminated paths, u64 arguments,
 * STATUS codes and the `key\0value\0…` dictionaries of GetFileInfo / GetDeviceInfo.
 * Used by the host client and by the simulated device alike.
 */
import { MooringError } from '../../util/errors';

/** Longest path (UTF-8 bytes, without the NUL) either side accepts: PATH_MAX on iOS. */
export const MAX_AFC_PATH_BYTES = 4096;

/** Most key/value pairs accepted in one info reply. */
export const MAX_AFC_INFO_ENTRIES = 256;

/** `path\0`, refusing paths that cannot be represented. */
export function encodeAfcPath(path: string): Buffer {
  if (path.includes('\0'))
    throw new MooringError('USAGE', `AFC path contains a NUL byte: ${JSON.stringify(path)}`);
  const bytes = Buffer.from(path, 'utf8');
  if (bytes.length > MAX_AFC_PATH_BYTES) {
    throw new MooringError(
      'LIMIT',
      `AFC path is ${bytes.length} bytes, more than ${MAX_AFC_PATH_BYTES}`,
    );
  }
  return Buffer.concat([bytes, Buffer.from([0])]);
}

/**
 * Reads a path from `buf` starting at `offset`: up to the first NUL, or to the end when the
 * peer left the terminator out. Returns the path and the offset after it.
 */
export function decodeAfcPath(buf: Buffer, offset = 0): { path: string; end: number } {
  const nul = buf.indexOf(0, offset);
  const stop = nul === -1 ? buf.length : nul;
  if (stop - offset > MAX_AFC_PATH_BYTES) {
    throw new MooringError(
      'LIMIT',
      `AFC path is ${stop - offset} bytes, more than ${MAX_AFC_PATH_BYTES}`,
    );
  }
  const bytes = buf.subarray(offset, stop);
  const path = new TextDecoder('utf-8', { fatal: false }).decode(bytes);
  return { path, end: nul === -1 ? stop : stop + 1 };
}

/** Little-endian u64s, e.g. `(handle, length)` of FileRefRead. */
export function encodeU64s(...values: number[]): Buffer {
  const buf = Buffer.alloc(8 * values.length);
  values.forEach((v, i) => {
    if (!Number.isSafeInteger(v) || v < 0)
      throw new MooringError('USAGE', `AFC u64 argument must be a non-negative integer, got ${v}`);
    buf.writeBigUInt64LE(BigInt(v), 8 * i);
  });
  return buf;
}

/** The u64 at `offset`, as a safe integer (MALFORMED if missing or beyond 2^53). */
export function decodeU64(buf: Buffer, offset: number, what: string): number {
  if (buf.length < offset + 8) {
    throw new MooringError(
      'MALFORMED',
      `AFC ${what} needs 8 bytes at offset ${offset}, packet has ${buf.length}`,
    );
  }
  const v = buf.readBigUInt64LE(offset);
  if (v > BigInt(Number.MAX_SAFE_INTEGER))
    throw new MooringError('MALFORMED', `AFC ${what} ${v} is out of range`);
  return Number(v);
}

/** `key\0value\0…` as sent in GetFileInfo / GetDeviceInfo replies. */
export function encodeKeyValueList(entries: Record<string, string>): Buffer {
  const parts: Buffer[] = [];
  for (const [k, v] of Object.entries(entries)) {
    if (k.includes('\0') || v.includes('\0'))
      throw new MooringError('USAGE', `AFC info entry ${JSON.stringify(k)} contains a NUL byte`);
    parts.push(Buffer.from(`${k}\0${v}\0`, 'utf8'));
  }
  return Buffer.concat(parts);
}

/** Parses `key\0value\0…`; a missing final NUL or an odd number of strings is MALFORMED. */
export function decodeKeyValueList(
  buf: Buffer,
  maxEntries = MAX_AFC_INFO_ENTRIES,
): Record<string, string> {
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  if (buf.length === 0) return out;
  if (buf[buf.length - 1] !== 0)
    throw new MooringError('MALFORMED', 'AFC key/value list does not end with a NUL byte');
  // Count the strings before splitting (fuzz regression): a 16 MiB reply of NULs used to become
  // 16 Mi strings before the entry bound was checked, enough to exhaust the heap.
  let count = 0;
  for (let at = buf.indexOf(0); at !== -1; at = buf.indexOf(0, at + 1)) {
    if (++count > 2 * maxEntries) {
      throw new MooringError('LIMIT', `AFC key/value list has more than ${maxEntries} entries`);
    }
  }
  if (count % 2 !== 0)
    throw new MooringError(
      'MALFORMED',
      `AFC key/value list has an odd number of strings (${count})`,
    );
  const strings = buf
    .subarray(0, buf.length - 1)
    .toString('utf8')
    .split('\0');
  for (let i = 0; i < strings.length; i += 2) out[strings[i]!] = strings[i + 1]!;
  return out;
}

/** The 8-byte body of a STATUS packet. */
export function encodeAfcStatus(code: number): Buffer {
  return encodeU64s(code);
}
