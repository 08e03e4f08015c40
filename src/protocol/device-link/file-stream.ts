/**
 * The raw file stream that follows DLMessageDownloadFiles / DLMessageUploadFiles (reference §4.5).
 * Not plist-framed: u32 BE lengths, and blocks `[u32 len][u8 code][len−1 bytes]` where len counts the
 * code byte. Per file: path(s), then data blocks, then a SUCCESS (or error) block; a zero path length
 * ends the stream.
 */
import { MooringError } from '../../util/errors';
import { DEFAULT_READ_TIMEOUT_MS, type StreamReader } from '../../util/stream-reader';
import { BodyWithin, readWithin } from '../../util/read-within';
import { MAX_DL_PATH_BYTES } from './messages';

export const DlFileCode = {
  SUCCESS: 0x00,
  /** The sender could not read the file; payload is UTF-8 error text. */
  LOCAL_ERROR: 0x06,
  REMOTE_ERROR: 0x0b,
  FILE_DATA: 0x0c,
} as const;

/** Bound on one block's length field (code byte included). Real senders use 32 KiB chunks. */
export const MAX_DL_BLOCK_BYTES = 64 * 1024 * 1024;
/** Bound on the text of an error block. */
export const MAX_DL_ERROR_TEXT_BYTES = 64 * 1024;
/** Chunk size for data blocks we send: what LIMD, PMD3 and Apple's DeviceLink use. */
export const DL_FILE_CHUNK_BYTES = 32 * 1024;

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n, 0);
  return b;
}

/** `[u32 len][path bytes]`: a file name in the stream. */
export function encodeDlPath(path: string): Buffer {
  const bytes = Buffer.from(path, 'utf8');
  if (bytes.length === 0)
    throw new MooringError('USAGE', 'a Device Link file-stream path cannot be empty');
  if (bytes.length > MAX_DL_PATH_BYTES) {
    throw new MooringError(
      'LIMIT',
      `file-stream path is ${bytes.length} bytes, more than ${MAX_DL_PATH_BYTES}`,
    );
  }
  return Buffer.concat([u32(bytes.length), bytes]);
}

/** `[u32 n+1][0x0C][n bytes]`. */
export function encodeDlDataBlock(data: Buffer): Buffer {
  if (data.length + 1 > MAX_DL_BLOCK_BYTES) {
    throw new MooringError(
      'LIMIT',
      `data block of ${data.length} bytes exceeds ${MAX_DL_BLOCK_BYTES - 1}`,
    );
  }
  return Buffer.concat([u32(data.length + 1), Buffer.from([DlFileCode.FILE_DATA]), data]);
}

/**
 * `data` as consecutive data blocks of at most `chunk` bytes each, in one buffer: a sender reads
 * a file in large pieces and writes each piece once, while the blocks on the wire keep the size
 * devices expect.
 */
export function encodeDlDataBlocks(data: Buffer, chunk = DL_FILE_CHUNK_BYTES): Buffer {
  if (!Number.isInteger(chunk) || chunk < 1 || chunk + 1 > MAX_DL_BLOCK_BYTES)
    throw new MooringError('USAGE', `not a usable data block size: ${chunk}`);
  const blocks = Math.ceil(data.length / chunk);
  const out = Buffer.allocUnsafe(data.length + blocks * 5);
  let o = 0;
  for (let off = 0; off < data.length; off += chunk) {
    const n = Math.min(chunk, data.length - off);
    out.writeUInt32BE(n + 1, o);
    out[o + 4] = DlFileCode.FILE_DATA;
    data.copy(out, o + 5, off, off + n);
    o += 5 + n;
  }
  return out;
}

/** `[00 00 00 01][00]`: the file ended well. */
export function encodeDlSuccessBlock(): Buffer {
  return Buffer.from([0, 0, 0, 1, DlFileCode.SUCCESS]);
}

/** `[u32 len+1][0x06 or 0x0B][text]`. */
export function encodeDlErrorBlock(
  code: typeof DlFileCode.LOCAL_ERROR | typeof DlFileCode.REMOTE_ERROR,
  message: string,
): Buffer {
  let bytes = Buffer.from(message, 'utf8');
  if (bytes.length > MAX_DL_ERROR_TEXT_BYTES) bytes = bytes.subarray(0, MAX_DL_ERROR_TEXT_BYTES);
  return Buffer.concat([u32(bytes.length + 1), Buffer.from([code]), bytes]);
}

/** `[00 00 00 00]` where the next path length would be: no more files. */
export function encodeDlStreamEnd(): Buffer {
  return u32(0);
}

/** One whole file as the host sends it for DownloadFiles: path, data in chunks, success. */
export function encodeDlFile(
  path: string,
  data: Buffer,
  chunkBytes = DL_FILE_CHUNK_BYTES,
): Buffer[] {
  const parts = [encodeDlPath(path)];
  for (let off = 0; off < data.length; off += chunkBytes) {
    parts.push(encodeDlDataBlock(data.subarray(off, Math.min(data.length, off + chunkBytes))));
  }
  parts.push(encodeDlSuccessBlock());
  return parts;
}

export type DlBlock =
  | { kind: 'data'; data: Buffer }
  | { kind: 'success' }
  | { kind: 'local-error'; message: string }
  | { kind: 'remote-error'; message: string };

/** A block as `readBlockHead` gives it: a data block's payload is left to `readData`. */
export type DlBlockHead = { kind: 'data'; length: number } | Exclude<DlBlock, { kind: 'data' }>;

export interface DlFileStreamOptions {
  timeoutMs?: number;
  maxBlockBytes?: number;
  maxPathBytes?: number;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** What the decoder's `…Now` readers return when the element has not wholly arrived yet. */
export const NOT_BUFFERED: unique symbol = Symbol('not buffered');
export type NotBuffered = typeof NOT_BUFFERED;

/**
 * Pull decoder over a StreamReader. Each call reads exactly one element of the stream, so the
 * caller (the host's upload handler, the simulator's download handler) keeps the file logic.
 *
 * Each element can be read two ways: `readPath`/`readBlock` wait for it (with deadlines), and
 * `readPathNow`/`readBlockNow` take it only if all of it has already arrived, without an await or
 * a timer. A backup of small files gets many whole files per socket read: the waits' promises and
 * timers were most of the job thread's work per file (docs/BENCHMARKS.md, fourteenth pass). Both
 * ways make the same checks and throw the same errors.
 */
export class DlFileStreamDecoder {
  private readonly timeoutMs: number;
  private readonly maxBlockBytes: number;
  private readonly maxPathBytes: number;
  /** The payload of the data block whose head `readBlockHead` gave, while some is unread. */
  private body: BodyWithin | undefined;

  constructor(
    private readonly reader: StreamReader,
    opts: DlFileStreamOptions = {},
  ) {
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_READ_TIMEOUT_MS;
    this.maxBlockBytes = Math.min(opts.maxBlockBytes ?? MAX_DL_BLOCK_BYTES, MAX_DL_BLOCK_BYTES);
    this.maxPathBytes = Math.min(opts.maxPathBytes ?? MAX_DL_PATH_BYTES, MAX_DL_PATH_BYTES);
  }

  /** A `[u32 len][bytes]` path, or null for the `[00 00 00 00]` end marker. */
  async readPath(what = 'file-stream path', timeoutMs = this.timeoutMs): Promise<string | null> {
    const now = this.readPathNow(what);
    if (now !== NOT_BUFFERED) return now;
    const len = (await this.reader.read(4, timeoutMs, `${what} length`)).readUInt32BE(0);
    if (len === 0) return null;
    this.checkPathLength(len, what);
    const bytes = await readWithin(this.reader, len, this.timeoutMs, what); // H7h: no trickle
    return decodePath(bytes, what);
  }

  /** readPath if the whole path has arrived; NOT_BUFFERED (nothing consumed) if not. */
  readPathNow(what = 'file-stream path'): string | null | NotBuffered {
    this.checkNoBody();
    const len = this.reader.peekUInt32BE();
    if (len === undefined) return NOT_BUFFERED;
    if (len !== 0) {
      this.checkPathLength(len, what);
      if (this.reader.available < 4 + len) return NOT_BUFFERED;
    }
    this.reader.readNow(4);
    return len === 0 ? null : decodePath(this.reader.readNow(len)!, what);
  }

  private checkPathLength(len: number, what: string): void {
    if (len > this.maxPathBytes) {
      throw new MooringError('LIMIT', `${what} is ${len} bytes, more than ${this.maxPathBytes}`, {
        detail: len,
      });
    }
  }

  /** Like readPath, but the end marker is not allowed here (e.g. the host path after a device path). */
  async readRequiredPath(what = 'file-stream path'): Promise<string> {
    return requirePath(await this.readPath(what), what);
  }

  /** readRequiredPath if the whole path has arrived; NOT_BUFFERED (nothing consumed) if not. */
  readRequiredPathNow(what = 'file-stream path'): string | NotBuffered {
    const p = this.readPathNow(what);
    return p === NOT_BUFFERED ? p : requirePath(p, what);
  }

  /** One `[u32 len][code][payload]` block. */
  async readBlock(): Promise<DlBlock> {
    const now = this.readBlockNow();
    if (now !== NOT_BUFFERED) return now;
    const head = await this.readBlockHead();
    if (head.kind !== 'data') return head;
    const parts: Buffer[] = [];
    while (this.dataLeft > 0) parts.push(this.readDataNow() ?? (await this.readData()));
    return {
      kind: 'data',
      data: parts.length === 1 ? parts[0]! : Buffer.concat(parts, head.length),
    };
  }

  /** readBlock if the whole block has arrived; NOT_BUFFERED (nothing consumed) if not. */
  readBlockNow(): DlBlock | NotBuffered {
    this.checkNoBody();
    const len = this.reader.peekUInt32BE();
    if (len === undefined) return NOT_BUFFERED;
    this.checkBlockLength(len);
    if (this.reader.available < 4 + len) return NOT_BUFFERED;
    this.reader.readNow(4);
    const code = this.reader.readNow(1)![0]!;
    checkBlockHead(len, code);
    return blockOf(code, this.reader.readNow(len - 1)!);
  }

  /**
   * The next block, a data block's payload left unread: its pieces come from `readDataNow` and
   * `readData` as they arrived (views, never joined), so a receiver that copies them on anyway
   * copies each byte once. A data block's whole payload must be read before the next element.
   */
  async readBlockHead(): Promise<DlBlockHead> {
    const now = this.readBlockHeadNow();
    if (now !== NOT_BUFFERED) return now;
    const len = (
      await this.reader.read(4, this.timeoutMs, 'file-stream block length')
    ).readUInt32BE(0);
    this.checkBlockLength(len);
    const code = (await this.reader.read(1, this.timeoutMs, 'file-stream block code'))[0]!;
    checkBlockHead(len, code);
    if (code === DlFileCode.FILE_DATA) return this.startBody(len - 1);
    const body =
      len === 1
        ? Buffer.alloc(0)
        : await this.reader.read(len - 1, this.timeoutMs, 'file-stream error text');
    return endBlockOf(code, body);
  }

  /** readBlockHead if the head (and a non-data block's text) has arrived; else NOT_BUFFERED. */
  readBlockHeadNow(): DlBlockHead | NotBuffered {
    this.checkNoBody();
    const len = this.reader.peekUInt32BE();
    if (len === undefined) return NOT_BUFFERED;
    this.checkBlockLength(len);
    if (this.reader.available < 5) return NOT_BUFFERED;
    const code = this.reader.peekByte(4)!;
    checkBlockHead(len, code);
    if (code === DlFileCode.FILE_DATA) {
      this.reader.readNow(5);
      return this.startBody(len - 1);
    }
    if (this.reader.available < 4 + len) return NOT_BUFFERED;
    this.reader.readNow(5);
    return endBlockOf(code, this.reader.readNow(len - 1)!);
  }

  /** Payload bytes of the current data block not yet read. */
  get dataLeft(): number {
    return this.body?.left ?? 0;
  }

  /** The current data block's next piece if it has arrived; undefined if not, or none is left. */
  readDataNow(): Buffer | undefined {
    const body = this.body;
    if (body === undefined) return undefined;
    const piece = body.takeNow();
    if (body.left === 0) this.body = undefined;
    return piece;
  }

  /** The current data block's next piece, the whole block within the read deadline (H7h). */
  async readData(): Promise<Buffer> {
    const body = this.body;
    if (body === undefined) throw new MooringError('PROTOCOL', 'no file-stream data left to read');
    const piece = await body.take();
    if (body.left === 0 && this.body === body) this.body = undefined;
    return piece;
  }

  private startBody(length: number): DlBlockHead {
    // H7h: the whole block within the deadline (a trickling device must not hold us forever).
    if (length > 0)
      this.body = new BodyWithin(this.reader, length, this.timeoutMs, 'file-stream data');
    return { kind: 'data', length };
  }

  private checkNoBody(): void {
    if (this.body !== undefined) {
      throw new MooringError(
        'PROTOCOL',
        `${this.body.left} bytes of a file-stream data block are still to be read`,
      );
    }
  }

  private checkBlockLength(len: number): void {
    if (len === 0)
      throw new MooringError('MALFORMED', 'file-stream block has length 0 (no code byte)');
    if (len > this.maxBlockBytes) {
      throw new MooringError(
        'FRAME_TOO_LARGE',
        `file-stream block of ${len} bytes exceeds ${this.maxBlockBytes}`,
        { detail: len },
      );
    }
  }
}

function decodePath(bytes: Buffer, what: string): string {
  let path: string;
  try {
    path = utf8.decode(bytes);
  } catch (cause) {
    throw new MooringError('MALFORMED', `${what} is not valid UTF-8`, { cause });
  }
  if (path.includes('\0')) throw new MooringError('MALFORMED', `${what} contains a NUL character`);
  return path;
}

function requirePath(p: string | null, what: string): string {
  if (p === null) throw new MooringError('MALFORMED', `${what} has length 0`);
  return p;
}

/** A block's code against its length, before its payload is read. */
function checkBlockHead(len: number, code: number): void {
  switch (code) {
    case DlFileCode.FILE_DATA:
      return;
    case DlFileCode.SUCCESS:
      if (len !== 1)
        throw new MooringError(
          'MALFORMED',
          `file-stream success block carries ${len - 1} extra bytes`,
        );
      return;
    case DlFileCode.LOCAL_ERROR:
    case DlFileCode.REMOTE_ERROR:
      if (len - 1 > MAX_DL_ERROR_TEXT_BYTES) {
        throw new MooringError(
          'LIMIT',
          `file-stream error text of ${len - 1} bytes exceeds ${MAX_DL_ERROR_TEXT_BYTES}`,
        );
      }
      return;
    default:
      throw new MooringError(
        'MALFORMED',
        `file-stream block has unknown code 0x${code.toString(16).padStart(2, '0')}`,
        { detail: code },
      );
  }
}

/** The block of a checked code and its payload. */
function blockOf(code: number, body: Buffer): DlBlock {
  return code === DlFileCode.FILE_DATA ? { kind: 'data', data: body } : endBlockOf(code, body);
}

/** The block of a checked code other than data: how the file ended. */
function endBlockOf(code: number, body: Buffer): Exclude<DlBlock, { kind: 'data' }> {
  if (code === DlFileCode.SUCCESS) return { kind: 'success' };
  return {
    kind: code === DlFileCode.LOCAL_ERROR ? 'local-error' : 'remote-error',
    message: body.toString('utf8'),
  };
}
