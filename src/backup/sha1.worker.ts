/**
 * The worker thread of OffThreadSha1 (sha1-off-thread.ts): writes the files a device uploads and
 * takes their SHA-1 on the way (D26, D30), so the thread reading the device's stream only copies
 * their bytes. Creating a file is the largest cost of a small one (`open` with O_CREAT alone is
 * tens of microseconds of kernel time); here it runs beside that thread instead of inside it.
 * Imports nothing but Node's own modules (util/worker-file.ts says why).
 *
 * In: a batch `{ buf, ops, paths }`: `ops` holds triples (stream id, offset in buf, length); a
 * length of OPEN opens the stream's file (offset: its index in `paths`), END asks for the stream's
 * digest (and commits its file), DROP forgets the stream (and deletes its file).
 * Out: `{ buf, digests, files, errors }`: the batch's buffer back for reuse; per stream ended in
 * it, in the order they were ended, a 20-byte digest and FILE_FIELDS numbers (status, then the
 * written file's dev, ino, size, mtimeMs); and a code and a message per FAILED stream.
 */
import { createHash, randomBytes, type Hash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';

export const OPEN = -3;
export const END = -1;
export const DROP = -2;
export const SHA1_BYTES = 20;

/** Status of an ended stream: written and committed, or its file failed. */
export const WRITTEN = 1;
export const FAILED = 2;
export const FILE_FIELDS = 5;

/** Names of our in-progress files; hidden from the device's directory listings (atomic-file). */
export const TEMP_FILE_PREFIX = '.mooring-tmp-';

export interface Sha1Batch {
  buf: ArrayBuffer;
  ops: Float64Array;
  /** Final paths of the files opened in this batch (OPEN ops index them). */
  paths: string[];
}

export interface Sha1Results {
  buf: ArrayBuffer;
  digests: ArrayBuffer;
  files: Float64Array;
  /** Code, message, code, message, … of the FAILED streams, in order. */
  errors: string[];
}

// Temp names: random per thread, then a counter; O_EXCL refuses any name that exists anyway.
const TEMP_NAME_RUN = `${randomBytes(6).toString('hex')}-w`;
let tempNameCounter = 0;

/**
 * Past its first DIRECT_AFTER bytes, a file is written with O_DIRECT (Linux), from a buffer of our
 * own, in SLOT_BYTES writes: its bytes skip the page cache. Putting 2 GB into the page cache cost
 * this thread 1–6 s of kernel time on our build machines, most of it touching memory not used
 * since boot (docs/BENCHMARKS.md, twenty-second pass), and it pushes the user's own files out of
 * memory. Smaller files, a file's last partial block, a third large file open at once and a file
 * system that refuses O_DIRECT go through the page cache as before.
 */
export const DIRECT_AFTER = 256 * 1024;
export const SLOT_BYTES = 1024 * 1024;
export const SLOTS = 2;
/** O_DIRECT wants the memory, the offset and the length aligned: 4096 covers every common disk. */
const DIRECT_ALIGN = 4096;

/** `MOORING_DIRECT_IO=0` turns it off (and tests compare both ways). */
let directOn = fs.constants.O_DIRECT !== undefined && process.env.MOORING_DIRECT_IO !== '0';
/**
 * A WebAssembly memory is page-aligned, which O_DIRECT needs and an ArrayBuffer does not promise;
 * made on first use, cut into SLOTS buffers.
 */
let freeSlots: Buffer[] | undefined;
/** Node's global WebAssembly, which this project's TypeScript libraries do not declare. */
const wasm = (
  globalThis as unknown as {
    WebAssembly: { Memory: new (d: { initial: number }) => { buffer: ArrayBuffer } };
  }
).WebAssembly;

function takeSlot(): Buffer | undefined {
  if (freeSlots === undefined) {
    const memory = new wasm.Memory({ initial: (SLOTS * SLOT_BYTES) / 65_536 });
    const all = Buffer.from(memory.buffer);
    freeSlots = [];
    for (let i = 0; i < SLOTS; i++)
      freeSlots.push(all.subarray(i * SLOT_BYTES, (i + 1) * SLOT_BYTES));
  }
  return freeSlots.pop();
}

interface DirectWrite {
  fd: number;
  slot: Buffer;
  /** Bytes in `slot`, to be written at the stream's `pos`. */
  fill: number;
}

interface Stream {
  hash: Hash;
  /** The file being written (OPEN), until it is committed or deleted. */
  fd?: number;
  /** Bytes written to the file so far. */
  pos: number;
  /** Its O_DIRECT descriptor and buffer, once it is past DIRECT_AFTER. */
  direct?: DirectWrite;
  /** O_DIRECT could not begin where it must (DIRECT_AFTER): the whole file goes the other way. */
  pageCacheOnly?: boolean;
  /** Where the bytes go: the final name, or a temp file beside it when something was there. */
  writing?: string;
  final?: string;
  /** The file failed: its bytes are still hashed (cheap) but go nowhere. */
  error?: NodeJS.ErrnoException;
}

/**
 * THE RULE (atomic-file.ts), as TempFile.freshSync keeps it: a new inode under the final name when
 * nothing is there, else a temp file beside it, renamed over it at the end.
 */
function openFile(s: Stream, final: string): void {
  s.final = final;
  try {
    s.fd = fs.openSync(final, 'wx', 0o644);
    s.writing = final;
    return;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') {
      s.error = e as NodeJS.ErrnoException;
      return;
    }
  }
  const temp = path.join(
    path.dirname(final),
    `${TEMP_FILE_PREFIX}${TEMP_NAME_RUN}${(tempNameCounter++).toString(36)}`,
  );
  try {
    s.fd = fs.openSync(temp, 'wx', 0o644);
    s.writing = temp;
  } catch (e) {
    s.error = e as NodeJS.ErrnoException;
  }
}

/** Writes one received piece: through the page cache, or into the stream's O_DIRECT buffer. */
function writePiece(s: Stream, data: Buffer): void {
  let off = 0;
  if (s.direct === undefined) {
    if (s.pos < DIRECT_AFTER) {
      off = Math.min(data.length, DIRECT_AFTER - s.pos);
      writeAt(s, data.subarray(0, off));
      if (off === data.length) return;
    }
    if (s.pageCacheOnly === true || !startDirect(s)) {
      s.pageCacheOnly = true; // O_DIRECT begins at DIRECT_AFTER, aligned, or never in this file
      writeAt(s, data.subarray(off));
      return;
    }
  }
  while (off < data.length) {
    const d = s.direct;
    if (d === undefined) {
      writeAt(s, data.subarray(off)); // fell back to the page cache (or failed: writes nothing)
      return;
    }
    const n = data.copy(d.slot, d.fill, off);
    d.fill += n;
    off += n;
    if (d.fill === SLOT_BYTES) flushDirect(s, SLOT_BYTES);
  }
}

/** Opens the file a second time, with O_DIRECT, for the rest of it; false where it cannot be. */
function startDirect(s: Stream): boolean {
  if (!directOn || s.error || s.writing === undefined) return false;
  const slot = takeSlot();
  if (slot === undefined) return false;
  try {
    const fd = fs.openSync(s.writing, fs.constants.O_WRONLY | fs.constants.O_DIRECT);
    s.direct = { fd, slot, fill: 0 };
    return true;
  } catch (e) {
    // EINVAL: this file system refuses O_DIRECT; the page cache for the rest of the run.
    if ((e as NodeJS.ErrnoException).code === 'EINVAL') directOn = false;
    freeSlots!.push(slot);
    return false;
  }
}

/** Writes the first `n` bytes of the O_DIRECT buffer (n aligned) and keeps the rest at its start. */
function flushDirect(s: Stream, n: number): void {
  const d = s.direct!;
  try {
    let off = 0;
    while (off < n) off += fs.writeSync(d.fd, d.slot, off, n - off, s.pos + off);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EINVAL') {
      fail(s, e);
      return;
    }
    // Alignment this disk does not accept after all: these bytes, and all after, via the page cache.
    directOn = false;
    const rest = Buffer.from(d.slot.subarray(0, d.fill));
    endDirect(s);
    writeAt(s, rest);
    return;
  }
  s.pos += n;
  d.slot.copy(d.slot, 0, n, d.fill);
  d.fill -= n;
}

/** At the file's end: the aligned part of the buffer with O_DIRECT, its last partial block not. */
function finishDirect(s: Stream): void {
  const d = s.direct;
  if (d === undefined) return;
  const aligned = d.fill - (d.fill % DIRECT_ALIGN);
  if (aligned > 0) flushDirect(s, aligned);
  if (s.direct === undefined) return; // fell back, or failed: written or recorded already
  const tail = Buffer.from(d.slot.subarray(0, d.fill));
  endDirect(s);
  if (tail.length > 0) writeAt(s, tail);
}

function endDirect(s: Stream): void {
  const d = s.direct;
  if (d === undefined) return;
  s.direct = undefined;
  freeSlots!.push(d.slot);
  try {
    fs.closeSync(d.fd);
  } catch {
    // nothing was left unwritten in it: every write above was synchronous
  }
}

/** Writes at the stream's position through its page-cache descriptor. */
function writeAt(s: Stream, data: Buffer): void {
  if (s.fd === undefined || s.error) return;
  try {
    let off = 0;
    while (off < data.length) off += fs.writeSync(s.fd, data, off, data.length - off, s.pos + off);
    s.pos += data.length;
  } catch (e) {
    fail(s, e);
  }
}

function fail(s: Stream, e: unknown): void {
  s.error = e as NodeJS.ErrnoException;
  deleteFile(s);
}

/** Closes and deletes the stream's file, if it has one; never throws. */
function deleteFile(s: Stream): void {
  endDirect(s);
  if (s.fd === undefined) return;
  try {
    fs.closeSync(s.fd);
  } catch {
    // deleting anyway
  }
  s.fd = undefined;
  try {
    if (s.writing) fs.rmSync(s.writing, { force: true });
  } catch {
    // best effort: a stray file is hidden (temp) or fails the verify (final name)
  }
}

/** Closes and renames into place; fstat before the rename, which keeps inode, size and mtime. */
function commitFile(s: Stream): fs.Stats | undefined {
  if (s.fd === undefined) return undefined;
  try {
    const st = fs.fstatSync(s.fd);
    const fd = s.fd;
    s.fd = undefined;
    fs.closeSync(fd);
    if (s.writing !== s.final) fs.renameSync(s.writing!, s.final!);
    return st;
  } catch (e) {
    s.error = e as NodeJS.ErrnoException;
    s.fd = undefined;
    try {
      fs.rmSync(s.writing!, { force: true });
    } catch {
      // the error that matters is s.error
    }
    return undefined;
  }
}

function serve(port: NonNullable<typeof parentPort>): void {
  const open = new Map<number, Stream>();
  port.on('message', ({ buf, ops, paths }: Sha1Batch) => {
    const data = Buffer.from(buf);
    const digests: Buffer[] = [];
    const files: number[] = [];
    const errors: string[] = [];
    for (let i = 0; i < ops.length; i += 3) {
      const id = ops[i]!;
      const len = ops[i + 2]!;
      let s = open.get(id);
      if (len === DROP) {
        if (s) deleteFile(s);
        open.delete(id);
        continue;
      }
      if (s === undefined) {
        s = { hash: createHash('sha1'), pos: 0 };
        open.set(id, s);
      }
      if (len === OPEN) {
        openFile(s, paths[ops[i + 1]!]!);
      } else if (len === END) {
        open.delete(id);
        finishDirect(s);
        const st = s.final !== undefined && !s.error ? commitFile(s) : undefined;
        digests.push(s.hash.digest());
        if (st && !s.error) {
          files.push(WRITTEN, st.dev, st.ino, st.size, st.mtimeMs);
        } else {
          files.push(FAILED, 0, 0, 0, 0);
          errors.push(s.error?.code ?? 'EIO', s.error?.message ?? 'write failed');
        }
      } else {
        const block = data.subarray(ops[i + 1]!, ops[i + 1]! + len);
        s.hash.update(block);
        if (!s.error && s.fd !== undefined) writePiece(s, block);
      }
    }
    const out = new Uint8Array(new ArrayBuffer(digests.length * SHA1_BYTES));
    digests.forEach((d, i) => out.set(d, i * SHA1_BYTES));
    const fileFields = new Float64Array(new ArrayBuffer(files.length * 8));
    fileFields.set(files);
    const results: Sha1Results = { buf, digests: out.buffer, files: fileFields, errors };
    port.postMessage(results, [buf, out.buffer, fileFields.buffer as ArrayBuffer]);
  });
}

/** Passed as workerData by OffThreadSha1: the main thread imports this module for its constants. */
export const SERVE = 'mooring-sha1';

if (parentPort !== null && workerData === SERVE) serve(parentPort);
