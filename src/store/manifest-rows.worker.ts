/**
 * A Manifest.db's rows read and validated on a thread of their own, for a verify
 * (store/manifest-rows-off-thread drives it). Reading, validating and decoding 100,000 rows is
 * ~2 s of one thread, while the verify's own work on them (an lstat each, the digest taken while
 * receiving) is ~1 s: side by side, the verify takes the longer of the two instead of the sum.
 *
 * It posts the rows in batches, only what a verify reads of them: the fileID as its 20 bytes,
 * flags, the MBFile's Size and its 20-byte Digest, packed into a few arrays: ~50 bytes a row,
 * against ~200 with the row's domain and relativePath as strings, which the verify needs only to
 * name a problem (it looks them up by fileID then, manifestNamesOf). An invalid row travels as its
 * problem, with the names it has, at its place among the rows. A batch is posted only against a
 * credit the reading side returns as it uses one, so at most BATCHES_AHEAD batches wait in memory
 * whatever the size of the file; their arrays lie in a ring of shared slots, one more than the
 * credit, written again once the reading side has used the batch (batchArrays says why).
 *
 * With a base (a verified Manifest.db of the previous snapshot), it compares the file with it
 * instead (compareManifestDbRows, D33): an incremental's verify reads only the rows that differ,
 * after ~0.35 s of SQLite's comparison for 100,000 rows, and lstat's the payloads of the others,
 * ~0.5 s: side by side here too. Those rows travel as rowid, fileID, flags and the verdict.
 *
 * Either may be a read ahead (D34, `ahead`): begun before the verify, through a link of its own
 * to the device's new Manifest.db; it checks first that the file can be read ahead at all, and
 * says when SQLite has it open.
 *
 * It loads the format modules and better-sqlite3, so the packaged app starts it from app.asar
 * (util/worker-file); where that fails, the verify reads the rows on its own thread.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import {
  compareManifestDbRows,
  iterateManifestDb,
  type ComparedRow,
  type ManifestRowProblem,
} from '../format/manifest-db';
import { isMooringError, MooringError, type MooringErrorCode } from '../util/errors';

export const MANIFEST_ROWS_JOB = 'manifest-rows';
/** Rows a batch holds. */
export const BATCH_ROWS = 1024;
/** Batches posted before the reading side has used one (the credit it starts with). */
export const BATCHES_AHEAD = 4;
const DIGEST_BYTES = 20;
/** A fileID's bytes: SHA-1, 40 lowercase hex digits as text (decodeManifestRow checked it). */
export const FILE_ID_BYTES = 20;

/** A batch's slot: its arrays' bytes (batchArrays). */
const SLOT_BYTES = BATCH_ROWS * (8 + FILE_ID_BYTES + DIGEST_BYTES + 2);

/**
 * A batch's arrays, laid out in a slot of SLOT_BYTES; the reading side sees the first `rows`.
 *
 * Shared and reused, not a batch's own arrays moved to the reading side (D52): those ~50 KiB
 * outside the heap were freed only when that side collected the arrays, and its heap grows so
 * little while it checks a batch's payloads (its young generation is small, job/thread-start) that
 * they waited for a full collection: ~24 MiB more RSS at 500,000 rows.
 */
export function batchArrays(slot: SharedArrayBuffer, rows = BATCH_ROWS): BatchArrays {
  const n = BATCH_ROWS;
  return {
    sizes: new Float64Array(slot, 0, rows), // first: a Float64Array starts at a multiple of 8
    fileIds: new Uint8Array(slot, 8 * n, rows * FILE_ID_BYTES),
    digests: new Uint8Array(slot, (8 + FILE_ID_BYTES) * n, rows * DIGEST_BYTES),
    flags: new Uint8Array(slot, (8 + FILE_ID_BYTES + DIGEST_BYTES) * n, rows),
    hasDigest: new Uint8Array(slot, (9 + FILE_ID_BYTES + DIGEST_BYTES) * n, rows),
  };
}

export interface BatchArrays {
  /** The rows' fileIDs, FILE_ID_BYTES each (fileIdsOf reads them). */
  fileIds: Uint8Array;
  flags: Uint8Array;
  sizes: Float64Array;
  /** 1 where the MBFile has a 20-byte Digest, which is then at 20 × the row's index in `digests`. */
  hasDigest: Uint8Array;
  digests: Uint8Array;
}

/** The fileIDs of a batch's `fileIds`, by the row's index: as text again. */
export function fileIdsOf(bytes: Uint8Array): (i: number) => string {
  const ids = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return (i) => ids.toString('hex', i * FILE_ID_BYTES, (i + 1) * FILE_ID_BYTES);
}

export interface ManifestRowsJob {
  kind: typeof MANIFEST_ROWS_JOB;
  file: string;
  maxRows: number;
  /** Int32: batches the worker may still post; the reading side adds one per batch it used. */
  credit: SharedArrayBuffer;
  /** The credit it starts with. */
  batches: number;
  /** Compare with this Manifest.db (compareManifestDbRows) instead of reading every row. */
  base?: string;
  /**
   * A read ahead of the verify (D34): first make sure the file can be read ahead (checkReadAhead),
   * and say when it is open, before any row.
   */
  ahead?: true;
}

export interface RowBatch {
  kind: 'rows';
  /** Its arrays (batchArrays): read them before the batch is used, and keep no view of them. */
  slot: SharedArrayBuffer;
  rows: number;
  /** Invalid rows: each problem comes before the row at `before` (the row count: after the last). */
  invalid: Array<[before: number, problem: ManifestRowProblem]>;
  /** Rows of the file read so far, invalid ones included (where the reading side resumes). */
  scanned: number;
}

/** Rows compared with the base: ComparedRow, packed. */
export interface ComparedBatch {
  kind: 'compared';
  rowids: Float64Array;
  /**
   * The fileID's FILE_ID_BYTES where `same` is 1 (fileIdsOf reads them; a row that differs is read in full by its rowid;
   * its fileID is not needed).
   */
  fileIds: Uint8Array;
  /** NaN where the row's flags are not a number. */
  flags: Float64Array;
  /**
   * 1: identical to the base's row of the same fileID, which is 40 lowercase hex digits (any other
   * is not a fileID the base's verify let pass: such a row is read in full, as one that differs).
   */
  same: Uint8Array;
  /** Rows compared so far (where the reading side resumes). */
  scanned: number;
}

export type ManifestRowsMessage =
  /** A read ahead's first message: SQLite has the file open (ManifestRowsJob.ahead). */
  | { kind: 'opened' }
  | RowBatch
  | ComparedBatch
  /** The base could not be attached: nothing was compared. */
  | { kind: 'no-base' }
  | { kind: 'end' }
  | { kind: 'error'; code?: MooringErrorCode; message: string };

/** Waits until the reading side has room for another batch, and takes it. */
function takeCredit(credit: Int32Array): void {
  for (;;) {
    const c = Atomics.load(credit, 0);
    if (c > 0) {
      Atomics.sub(credit, 0, 1); // only this thread takes: no race between load and sub
      return;
    }
    Atomics.wait(credit, 0, c);
  }
}

function errorMessage(e: unknown): ManifestRowsMessage {
  return isMooringError(e)
    ? { kind: 'error', code: e.code, message: e.message }
    : { kind: 'error', message: e instanceof Error ? e.message : String(e) };
}

class Batcher {
  /** The ring: batch k is written in slot k mod its length, allocated when first needed. */
  private readonly slots: SharedArrayBuffer[] = [];
  private readonly ring: number;
  private batch = 0;
  private count = 0;
  private arrays!: BatchArrays;
  /** `arrays.fileIds`, as a Buffer for its hex writes. */
  private fileIdBytes!: Buffer;
  private invalid: RowBatch['invalid'] = [];
  scanned = 0;

  constructor(
    private readonly post: (b: RowBatch) => void,
    private readonly credit: Int32Array,
    batches: number,
  ) {
    // Writing batch k begins once k − 1 is posted, against a credit: batch k − 1 − batches, the
    // last in this slot, has been used then.
    this.ring = batches + 1;
    this.begin();
  }

  row(fileId: string, flags: number, size: number, digest: Buffer | undefined): void {
    const i = this.count++;
    const a = this.arrays;
    // Whole: a valid row's fileID is 40 lowercase hex digits (decodeManifestRow).
    this.fileIdBytes.write(fileId, i * FILE_ID_BYTES, FILE_ID_BYTES, 'hex');
    a.flags[i] = flags;
    a.sizes[i] = size;
    if (digest !== undefined && digest.length === DIGEST_BYTES) {
      a.hasDigest[i] = 1;
      a.digests.set(digest, i * DIGEST_BYTES);
    }
    this.scanned++;
    if (i + 1 === BATCH_ROWS) this.flush();
  }

  problem(p: ManifestRowProblem): void {
    this.invalid.push([this.count, p]);
    this.scanned++;
    if (this.invalid.length >= BATCH_ROWS) this.flush();
  }

  flush(): void {
    const n = this.count;
    if (n === 0 && this.invalid.length === 0) return;
    takeCredit(this.credit);
    const slot = this.slots[this.batch % this.ring]!;
    this.post({ kind: 'rows', slot, rows: n, invalid: this.invalid, scanned: this.scanned });
    this.batch++;
    this.count = 0;
    this.invalid = [];
    this.begin();
  }

  private begin(): void {
    const k = this.batch % this.ring;
    const slot = (this.slots[k] ??= new SharedArrayBuffer(SLOT_BYTES));
    this.arrays = batchArrays(slot);
    this.arrays.hasDigest.fill(0);
    const ids = this.arrays.fileIds;
    this.fileIdBytes = Buffer.from(ids.buffer, ids.byteOffset, ids.byteLength);
  }
}

function work(
  job: ManifestRowsJob,
  port: NonNullable<typeof parentPort>,
  opened: () => void,
): void {
  const batcher = new Batcher((b) => port.postMessage(b), new Int32Array(job.credit), job.batches);
  let last: ManifestRowsMessage;
  try {
    const rows = iterateManifestDb(job.file, {
      maxRows: job.maxRows,
      onInvalid: (p) => batcher.problem(p),
    });
    for (const r of afterOpen(rows, opened)) {
      batcher.row(r.fileId, r.flags, r.file.size, r.file.digest);
    }
    last = { kind: 'end' };
  } catch (e) {
    last = errorMessage(e);
  }
  // The rows before an error are posted first, as iterating in-thread would have yielded them.
  batcher.flush();
  port.postMessage(last);
}

function compare(
  job: ManifestRowsJob,
  base: string,
  port: NonNullable<typeof parentPort>,
  opened: () => void,
): void {
  const credit = new Int32Array(job.credit);
  let last: ManifestRowsMessage;
  try {
    const rows = compareManifestDbRows(job.file, base, { maxRows: job.maxRows });
    if (rows === undefined) {
      port.postMessage({ kind: 'no-base' } satisfies ManifestRowsMessage);
      return;
    }
    for (const batch of packComparedRows(afterOpen(rows, opened))) {
      takeCredit(credit);
      // Moved, not copied: the packer starts new arrays for the next batch.
      const arrays = [batch.rowids, batch.fileIds, batch.flags, batch.same];
      port.postMessage(
        batch,
        arrays.map((a) => a.buffer as ArrayBuffer),
      );
    }
    last = { kind: 'end' };
  } catch (e) {
    last = errorMessage(e);
  }
  port.postMessage(last);
}

/**
 * Rows of compareManifestDbRows packed as ComparedBatch, BATCH_ROWS at a time: what this thread
 * posts, and what the verify's own thread takes when it compares itself. The rows before an error
 * come in a last batch, then the error. `scanned`: rows compared before these.
 */
export function* packComparedRows(
  rows: Iterable<ComparedRow>,
  scanned = 0,
): Generator<ComparedBatch> {
  let rowids = new Float64Array(BATCH_ROWS);
  let fileIds = new Uint8Array(BATCH_ROWS * FILE_ID_BYTES);
  let fileIdBytes = Buffer.from(fileIds.buffer); // for its hex writes
  let flags = new Float64Array(BATCH_ROWS);
  let same = new Uint8Array(BATCH_ROWS);
  let n = 0;
  // Copies (slice), or the arrays themselves when full: moved to the reading side either way.
  const batch = (): ComparedBatch => ({
    kind: 'compared',
    rowids: n === BATCH_ROWS ? rowids : rowids.slice(0, n),
    fileIds: n === BATCH_ROWS ? fileIds : fileIds.slice(0, n * FILE_ID_BYTES),
    flags: n === BATCH_ROWS ? flags : flags.slice(0, n),
    same: n === BATCH_ROWS ? same : same.slice(0, n),
    scanned,
  });
  try {
    for (const [rowid, fileId, flag, identical] of rows) {
      rowids[n] = rowid;
      flags[n] = typeof flag === 'number' ? flag : NaN;
      if (identical && typeof fileId === 'string' && FILE_ID.test(fileId)) {
        fileIdBytes.write(fileId, n * FILE_ID_BYTES, FILE_ID_BYTES, 'hex');
        same[n] = 1;
      }
      n++;
      scanned++;
      if (n === BATCH_ROWS) {
        yield batch();
        rowids = new Float64Array(BATCH_ROWS);
        fileIds = new Uint8Array(BATCH_ROWS * FILE_ID_BYTES);
        fileIdBytes = Buffer.from(fileIds.buffer);
        flags = new Float64Array(BATCH_ROWS);
        same = new Uint8Array(BATCH_ROWS);
        n = 0;
      }
    }
  } catch (e) {
    if (n > 0) yield batch();
    throw e;
  }
  if (n > 0) yield batch();
}

/** A fileID as a verified Manifest.db has it: SHA-1 as 40 lowercase hex digits. */
const FILE_ID = /^[0-9a-f]{40}$/;

/**
 * The rows of `rows`, with `opened` called once the file is open: when the first row, or the
 * end, has come (iterateManifestDb and compareManifestDbRows open it on the first step).
 */
function* afterOpen<T>(rows: Iterable<T>, opened: () => void): Generator<T> {
  const it = rows[Symbol.iterator]();
  try {
    let r = it.next();
    opened();
    for (; r.done !== true; r = it.next()) yield r.value;
  } finally {
    it.return?.();
  }
}

/** SQLite's header: the magic string, then at 18 and 19 the file format versions (1: rollback). */
const SQLITE_MAGIC = Buffer.from('SQLite format 3\0', 'latin1');
const SQLITE_HEADER_BYTES = 100;

/**
 * A read ahead's file must be one whose rows the verify would read the same later from the same
 * inode: a SQLite file in rollback-journal mode, where no file beside it changes what SQLite reads
 * (a WAL would; the verify's side refuses a read ahead when a journal lies beside the file).
 */
function checkReadAhead(file: string): void {
  const header = Buffer.alloc(SQLITE_HEADER_BYTES);
  const fd = openSync(file, 'r');
  let n: number;
  try {
    n = readSync(fd, header, 0, SQLITE_HEADER_BYTES, 0);
  } finally {
    closeSync(fd);
  }
  if (n < SQLITE_HEADER_BYTES || !header.subarray(0, 16).equals(SQLITE_MAGIC))
    throw new MooringError('IO', `${file} is not a SQLite file: not read ahead`);
  if (header[18] !== 1 || header[19] !== 1)
    throw new MooringError('IO', `${file} is not in rollback-journal mode: not read ahead`);
}

const job = workerData as Partial<ManifestRowsJob> | undefined;
if (parentPort !== null && job?.kind === MANIFEST_ROWS_JOB) {
  const j = job as ManifestRowsJob;
  const port = parentPort;
  // A read ahead says when SQLite has the file open: its side may then unlink the name it read.
  const opened =
    j.ahead === true
      ? (): void => port.postMessage({ kind: 'opened' } satisfies ManifestRowsMessage)
      : (): void => undefined;
  try {
    if (j.ahead === true) checkReadAhead(j.file);
    if (j.base === undefined) work(j, port, opened);
    else compare(j, j.base, port, opened);
  } catch (e) {
    port.postMessage(errorMessage(e)); // not read ahead: the verify reads the file itself
  }
}
