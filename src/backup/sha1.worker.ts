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
 * Past its first DIRECT_AFTER bytes, a file is written with O_DIRECT (Linux, D39), from buffers of
 * our own, in SLOT_BYTES writes that run while the next buffer fills: its bytes skip the page
 * cache. Putting 2 GB into the page cache cost this thread 1–6 s of kernel time on our build
 * machines, most of it touching memory not used since boot (docs/BENCHMARKS.md, twenty-second
 * pass), and it pushes the user's own files out of memory. Smaller files, a file's last partial
 * block, a large file that finds no free buffer at DIRECT_AFTER and a file system that refuses
 * O_DIRECT go through the page cache as before.
 */
export const DIRECT_AFTER = 256 * 1024;
export const SLOT_BYTES = 1024 * 1024;
export const SLOTS = 4;
/** O_DIRECT wants the memory, the offset and the length aligned: 4096 covers every common disk. */
const DIRECT_ALIGN = 4096;

/** `MOORING_DIRECT_IO=0` turns it off (and tests compare both ways). */
let directOn = fs.constants.O_DIRECT !== undefined && process.env.MOORING_DIRECT_IO !== '0';
/**
 * A WebAssembly memory is page-aligned, which O_DIRECT needs and an ArrayBuffer does not promise;
 * made on first use, cut into SLOTS buffers. A buffer being written is busy until its write ends.
 */
interface Slot {
  buf: Buffer;
  busy?: Promise<void>;
}
let freeSlots: Slot[] | undefined;
/** Busy slots, oldest write first. */
const busySlots: Slot[] = [];
/** Node's global WebAssembly, which this project's TypeScript libraries do not declare. */
const wasm = (
  globalThis as unknown as {
    WebAssembly: { Memory: new (d: { initial: number }) => { buffer: ArrayBuffer } };
  }
).WebAssembly;

function freeSlot(): Slot | undefined {
  if (freeSlots === undefined) {
    const memory = new wasm.Memory({ initial: (SLOTS * SLOT_BYTES) / 65_536 });
    const all = Buffer.from(memory.buffer);
    freeSlots = [];
    for (let i = 0; i < SLOTS; i++)
      freeSlots.push({ buf: all.subarray(i * SLOT_BYTES, (i + 1) * SLOT_BYTES) });
  }
  return freeSlots.pop();
}

/** A free slot, once the oldest write in flight has ended if none is free now. */
async function slotSoon(): Promise<Slot> {
  for (;;) {
    const slot = freeSlot();
    if (slot !== undefined) return slot;
    // None free: wait for the oldest write. The caller has just started one, so there is one.
    const oldest = busySlots[0];
    if (oldest === undefined)
      throw new Error('no O_DIRECT buffer is free and none is being written');
    await oldest.busy;
  }
}

interface DirectWrite {
  fd: number;
  /** The buffer being filled; undefined while waiting for one. */
  slot: Slot | undefined;
  /** Bytes in `slot`, to be written at the stream's `pos`. */
  fill: number;
  /** Its writes in flight; each settles (never rejects) once its bytes are written or failed. */
  writes: Set<Promise<void>>;
}

interface Stream {
  hash: Hash;
  /** The file being written (OPEN), until it is committed or deleted. */
  fd?: number;
  /** Bytes handed to the file so far (written, or being written with O_DIRECT). */
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

/**
 * Writes one received piece: through the page cache, or into the stream's O_DIRECT buffer. A
 * promise when it must wait for a buffer (every one is being written).
 */
function writePiece(s: Stream, data: Buffer): Promise<void> | undefined {
  let off = 0;
  if (s.direct === undefined) {
    if (s.pos < DIRECT_AFTER) {
      off = Math.min(data.length, DIRECT_AFTER - s.pos);
      writeAt(s, data.subarray(0, off));
      if (off === data.length) return undefined;
    }
    if (s.pageCacheOnly === true || !startDirect(s)) {
      s.pageCacheOnly = true; // O_DIRECT begins at DIRECT_AFTER, aligned, or never in this file
      writeAt(s, data.subarray(off));
      return undefined;
    }
  }
  return copyIn(s, data, off);
}

function copyIn(s: Stream, data: Buffer, from: number): Promise<void> | undefined {
  let off = from;
  while (off < data.length) {
    const d = s.direct;
    if (d === undefined) {
      writeAt(s, data.subarray(off)); // failed meanwhile: writes nothing
      return undefined;
    }
    const n = data.copy(d.slot!.buf, d.fill, off);
    d.fill += n;
    off += n;
    if (d.fill < SLOT_BYTES) continue;
    launch(s, d, SLOT_BYTES);
    d.slot = freeSlot();
    if (d.slot === undefined) {
      return (async () => {
        const slot = await slotSoon();
        if (s.direct !== d) {
          freeSlots!.push(slot); // the file failed meanwhile: its bytes go nowhere
          return;
        }
        d.slot = slot;
        await copyIn(s, data, off);
      })();
    }
  }
  return undefined;
}

/** Opens the file a second time, with O_DIRECT, for the rest of it; false where it cannot be. */
function startDirect(s: Stream): boolean {
  if (!directOn || s.error || s.writing === undefined) return false;
  const slot = freeSlot();
  if (slot === undefined) return false;
  try {
    const fd = fs.openSync(s.writing, fs.constants.O_WRONLY | fs.constants.O_DIRECT);
    s.direct = { fd, slot, fill: 0, writes: new Set() };
    return true;
  } catch (e) {
    // EINVAL: this file system refuses O_DIRECT; the page cache for the rest of the run.
    if ((e as NodeJS.ErrnoException).code === 'EINVAL') directOn = false;
    freeSlots!.push(slot);
    return false;
  }
}

/**
 * Starts writing the first `n` bytes of the stream's buffer (n aligned) at its position, and lets
 * go of the buffer: the caller gives the stream another. While the disk writes, this thread hashes
 * and fills the next buffer. What O_DIRECT refuses as misaligned (EINVAL), or leaves unwritten,
 * goes through the page cache at its place; any other failure fails the file at its end.
 */
function launch(s: Stream, d: DirectWrite, n: number): void {
  const slot = d.slot!;
  d.slot = undefined;
  d.fill = 0;
  const at = s.pos;
  s.pos += n;
  if (!directOn) {
    // A write was refused as misaligned (below): the rest goes through the page cache, not again.
    writeAtPosition(s, slot.buf.subarray(0, n), at);
    freeSlots!.push(slot);
    return;
  }
  const done = new Promise<void>((resolve) => {
    fs.write(d.fd, slot.buf, 0, n, at, (err, written) => {
      if (err && err.code !== 'EINVAL') {
        s.error ??= err;
      } else if (err || written < n) {
        if (err) directOn = false;
        const k = err ? 0 : written;
        writeAtPosition(s, slot.buf.subarray(k, n), at + k);
      }
      busySlots.splice(busySlots.indexOf(slot), 1);
      slot.busy = undefined;
      freeSlots!.push(slot);
      d.writes.delete(done);
      resolve();
    });
  });
  slot.busy = done;
  busySlots.push(slot);
  d.writes.add(done);
}

/** At the file's end: the aligned rest of its buffer with O_DIRECT, the last partial block not. */
async function finishDirect(s: Stream): Promise<void> {
  const d = s.direct;
  if (d === undefined) return;
  const aligned = d.fill - (d.fill % DIRECT_ALIGN);
  const tail = Buffer.from(d.slot!.buf.subarray(aligned, d.fill));
  if (aligned > 0) launch(s, d, aligned);
  await Promise.all(d.writes);
  endDirect(s);
  if (tail.length > 0) writeAt(s, tail);
}

/** Lets go of the stream's buffer, and closes its O_DIRECT descriptor once its writes have ended. */
function endDirect(s: Stream): void {
  const d = s.direct;
  if (d === undefined) return;
  s.direct = undefined;
  if (d.slot !== undefined) freeSlots!.push(d.slot);
  void Promise.all(d.writes).then(() => {
    try {
      fs.closeSync(d.fd);
    } catch {
      // its writes have all ended: there is nothing a failed close could lose
    }
  });
}

/** Writes at the stream's position through its page-cache descriptor. */
function writeAt(s: Stream, data: Buffer): void {
  if (writeAtPosition(s, data, s.pos)) s.pos += data.length;
}

function writeAtPosition(s: Stream, data: Buffer, at: number): boolean {
  if (s.fd === undefined || s.error) return false;
  try {
    let off = 0;
    while (off < data.length) off += fs.writeSync(s.fd, data, off, data.length - off, at + off);
    return true;
  } catch (e) {
    s.error = e as NodeJS.ErrnoException;
    deleteFile(s);
    return false;
  }
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
  // One batch at a time, in order, though one may wait for the disk (finishDirect, copyIn).
  let queue = Promise.resolve();
  port.on('message', (batch: Sha1Batch) => {
    queue = queue.then(() => handle(batch));
    // A bug here ends the thread, as it did when handling was synchronous: the owner fails the run.
    queue.catch((e: unknown) =>
      setImmediate(() => {
        throw e;
      }),
    );
  });
  async function handle({ buf, ops, paths }: Sha1Batch): Promise<void> {
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
        if (s.direct !== undefined) await finishDirect(s);
        if (s.error) deleteFile(s); // a write that failed on the disk's time
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
        if (!s.error && s.fd !== undefined) {
          const wait = writePiece(s, block);
          if (wait) await wait;
        }
      }
    }
    const out = new Uint8Array(new ArrayBuffer(digests.length * SHA1_BYTES));
    digests.forEach((d, i) => out.set(d, i * SHA1_BYTES));
    const fileFields = new Float64Array(new ArrayBuffer(files.length * 8));
    fileFields.set(files);
    const results: Sha1Results = { buf, digests: out.buffer, files: fileFields, errors };
    port.postMessage(results, [buf, out.buffer, fileFields.buffer as ArrayBuffer]);
  }
}

/** Passed as workerData by OffThreadSha1: the main thread imports this module for its constants. */
export const SERVE = 'mooring-sha1';

if (parentPort !== null && workerData === SERVE) serve(parentPort);
