/**
 * The rows of a Manifest.db for a verify, read and validated on another thread when the file is
 * large (store/manifest-rows.worker says why), on this one when it is small (starting a thread
 * costs more than reading a few thousand rows).
 *
 * Either way the rows, and the invalid rows' problems among them, come in the order and with the
 * errors iterateManifestDb gives. If the thread cannot start, or ends before the last row, the
 * rest of the file is read here, from the row it had reached: a verify never fails for want of a
 * thread.
 *
 * So do the rows of an incremental's comparison with the previous snapshot (`comparedRows`, D33).
 *
 * Either may begin before the verify, as soon as the device has sent its Manifest.db (D34,
 * `RowsReadAhead`): the thread reads while the device still moves its files into place, and the
 * verify takes what it read if it is of the very file, and of the request, it reads then.
 */
import { linkSync, lstatSync, rmSync, statSync, unlinkSync } from 'node:fs';
import type { Worker } from 'node:worker_threads';
import {
  compareManifestDbRows,
  iterateManifestDb,
  MAX_MANIFEST_ROWS,
  type ManifestRowProblem,
  type ManifestRowFacts,
} from '../format/manifest-db';
import { MooringError } from '../util/errors';
import { startWorker } from '../util/worker-file';
import {
  BATCHES_AHEAD,
  batchArrays,
  fileIdsOf,
  MANIFEST_ROWS_JOB,
  packComparedRows,
  type ManifestRowsJob,
  type ComparedBatch,
  type ManifestRowsMessage,
  type RowBatch,
} from './manifest-rows.worker';

/**
 * From this size of Manifest.db the rows are read on another thread: ~16,000 rows of a phone's
 * (~1 KiB a row), ~0.4 s of reading here, against ~50–150 ms for a thread to start.
 */
export const ROWS_OFF_THREAD_BYTES = 16 * 1024 * 1024;

/**
 * The thread's young generation: what each row allocates dies within its batch, and V8's default
 * let it grow to ~35 MB more RSS for no gain in speed (4 MB measured as fast, 100,000 rows).
 */
const ROWS_YOUNG_GENERATION_MB = 4;

export interface ManifestRowsOptions {
  maxRows?: number;
  onInvalid: (p: ManifestRowProblem) => void;
  /** Manifest.db size from which the rows are read on another thread (tests set 0). */
  offThreadBytes?: number;
  /** Tests: told of the thread once started (to end it early). */
  onWorker?: (w: Worker) => void;
  /** Rows of this file perhaps already being read (RowsReadAhead.take says). */
  readAhead?: RowsReadAhead;
  /** Told when the rows come from `readAhead`. */
  onReadAhead?: () => void;
}

export async function* manifestRows(
  file: string,
  opts: ManifestRowsOptions,
): AsyncGenerator<ManifestRowFacts> {
  const maxRows = opts.maxRows ?? MAX_MANIFEST_ROWS;
  let scanned = 0;
  const ahead = await taken(opts, file, undefined, maxRows);
  if (ahead !== undefined || largeEnough(file, opts.offThreadBytes)) {
    const reader = ahead ?? RowsThread.start(file, maxRows);
    if (reader !== undefined) {
      opts.onWorker?.(reader.worker);
      try {
        for (let m = await reader.next(); m !== undefined; m = await reader.next()) {
          if (m.kind === 'error') throw new MooringError(m.code ?? 'IO', m.message);
          if (m.kind === 'end') return;
          if (m.kind !== 'rows') throw unexpected(m);
          yield* rowsOf(m, opts.onInvalid);
          scanned = m.scanned;
          reader.used();
        }
      } finally {
        await reader.end();
      }
    }
  }
  // Small, or the thread is gone: here, from where it was.
  yield* iterateManifestDb(file, { maxRows, onInvalid: opts.onInvalid, skipRows: scanned });
}

export type ComparedRowsOptions = Omit<ManifestRowsOptions, 'onInvalid'>;

/**
 * compareManifestDbRows(file, base), in batches by column (ComparedBatch): on another thread when
 * `file` is large, so the verify checks the payloads of the rows already compared while the rest
 * are. Undefined when the base cannot be attached (nothing was compared); MALFORMED and LIMIT are
 * thrown as compareManifestDbRows throws them. If the thread cannot start, or ends before the last
 * row, the rest is compared here. Iterate what it returns: the thread ends with that iteration.
 */
export async function comparedRows(
  file: string,
  base: string,
  opts: ComparedRowsOptions = {},
): Promise<AsyncIterable<ComparedBatch> | Iterable<ComparedBatch> | undefined> {
  const maxRows = opts.maxRows ?? MAX_MANIFEST_ROWS;
  const reader =
    (await taken(opts, file, base, maxRows)) ??
    (largeEnough(file, opts.offThreadBytes) ? RowsThread.start(file, maxRows, base) : undefined);
  if (reader !== undefined) {
    opts.onWorker?.(reader.worker);
    const first = await reader.next();
    if (first?.kind === 'compared' || first?.kind === 'end')
      return comparedFrom(reader, first, file, base, maxRows);
    await reader.end();
    if (first?.kind === 'no-base') return undefined;
    if (first?.kind === 'error') throw new MooringError(first.code ?? 'IO', first.message);
    if (first !== undefined) throw unexpected(first);
    // Gone before its first message (it could not start): here.
  }
  const rows = compareManifestDbRows(file, base, { maxRows });
  return rows && packComparedRows(rows);
}

async function* comparedFrom(
  reader: RowsThread,
  first: ManifestRowsMessage,
  file: string,
  base: string,
  maxRows: number,
): AsyncGenerator<ComparedBatch> {
  let scanned = 0;
  try {
    for (let m: ManifestRowsMessage | undefined = first; m !== undefined; m = await reader.next()) {
      if (m.kind === 'error') throw new MooringError(m.code ?? 'IO', m.message);
      if (m.kind === 'end') return;
      if (m.kind !== 'compared') throw unexpected(m);
      yield m;
      scanned = m.scanned;
      reader.used();
    }
  } finally {
    await reader.end();
  }
  // The thread is gone: the rest here, from where it was.
  const rest = compareManifestDbRows(file, base, { maxRows, skipRows: scanned });
  if (rest === undefined) {
    throw new MooringError(
      'IO',
      `the previous snapshot's Manifest.db (${base}) could no longer be read to compare ${file} with it`,
    );
  }
  yield* packComparedRows(rest, scanned);
}

/** The thread of `opts.readAhead` when it reads what is asked; it is ended otherwise. */
async function taken(
  opts: ManifestRowsOptions | ComparedRowsOptions,
  file: string,
  base: string | undefined,
  maxRows: number,
): Promise<RowsThread | undefined> {
  const reader = await opts.readAhead?.take(file, base, maxRows);
  if (reader !== undefined) opts.onReadAhead?.();
  return reader;
}

/**
 * Where an open file cannot be renamed (Windows, whose SQLite opens without FILE_SHARE_DELETE),
 * a thread holding the device's Manifest.db would make the device's move of it fail.
 */
const CAN_READ_AHEAD = process.platform !== 'win32';

/**
 * Batches a read ahead posts before the verify takes any: 64 × 1,024 rows, ~3.3 MB (~50 bytes a
 * row: a fileID as its 20 bytes, not as text with the row's names), so that most of a
 * 100,000-file backup's rows are read while the device moves its files; the rest as the verify
 * uses them. With the names as strings (~200 bytes a row), 64 took ~10 MiB more of the peak RSS
 * of a 100,000-file backup, near its 200 MB bound.
 */
export const READ_AHEAD_BATCHES = 64;

/** Which file a read ahead read: what lstat says of it, to the nanosecond. */
interface FileIdentity {
  dev: bigint;
  ino: bigint;
  size: bigint;
  mtimeNs: bigint;
}

/**
 * Manifest.db's rows read, or compared with the base's, before the verify asks for them (D34):
 * begun when the device has sent the file (under Snapshot/, before it moves it into place). The
 * thread reads it through a hard link of its own (`linkAt`), so the device may move the file
 * meanwhile, whenever it likes. The verify takes the thread only if the file it reads then is the
 * very inode read here (a move keeps it; an inode's bytes are never rewritten, THE RULE), with the
 * same base and bound, and no rollback journal lies beside it (SQLite would refuse to read it, or
 * read it otherwise); else the thread is ended and the verify reads the file itself, as it would
 * have.
 */
export class RowsReadAhead {
  private reader: RowsThread | undefined;

  private constructor(
    reader: RowsThread,
    private readonly linkAt: string,
    private readonly identity: FileIdentity,
    private readonly base: string | undefined,
    private readonly maxRows: number,
  ) {
    this.reader = reader;
  }

  /**
   * Begins reading `file` (compared with `base`, when given) through a hard link made at `linkAt`
   * (on the same file system, a name nothing else uses; removed when the read is taken or ended),
   * when it is large enough to be read on another thread at all (ManifestRowsOptions
   * .offThreadBytes) and the platform and the file system allow.
   */
  static start(
    file: string,
    opts: {
      linkAt: string;
      base?: string;
      maxRows?: number;
      offThreadBytes?: number;
      /** Batches posted before it is taken (tests; READ_AHEAD_BATCHES). */
      batches?: number;
    },
  ): RowsReadAhead | undefined {
    if (!CAN_READ_AHEAD || !largeEnough(file, opts.offThreadBytes)) return undefined;
    const { linkAt } = opts;
    let identity: FileIdentity;
    try {
      rmSync(linkAt, { force: true });
      linkSync(file, linkAt);
      const st = lstatSync(linkAt, { bigint: true });
      identity = { dev: st.dev, ino: st.ino, size: st.size, mtimeNs: st.mtimeNs };
    } catch {
      unlinkQuietly(linkAt);
      return undefined; // no hard links here (FAT), or the file is gone: the verify reads it
    }
    const maxRows = opts.maxRows ?? MAX_MANIFEST_ROWS;
    const reader = RowsThread.start(linkAt, maxRows, opts.base, opts.batches ?? READ_AHEAD_BATCHES);
    if (reader === undefined) unlinkQuietly(linkAt);
    return reader && new RowsReadAhead(reader, linkAt, identity, opts.base, maxRows);
  }

  /** Tests: the thread. */
  get worker(): Worker | undefined {
    return this.reader?.worker;
  }

  /**
   * The thread, positioned after its 'opened' message, if it reads `file` as asked; otherwise it
   * is ended. Only once: later calls have nothing.
   */
  async take(
    file: string,
    base: string | undefined,
    maxRows: number,
  ): Promise<RowsThread | undefined> {
    const reader = this.reader;
    this.reader = undefined;
    if (reader === undefined) return undefined;
    if (base === this.base && maxRows === this.maxRows && this.isReadFile(file)) {
      // Once SQLite has the file open, the link is no longer needed.
      const first = await reader.next();
      unlinkQuietly(this.linkAt);
      if (first?.kind === 'opened') return reader;
    }
    await this.endReader(reader);
    return undefined;
  }

  /** Ends the thread if it was not taken. */
  async end(): Promise<void> {
    const reader = this.reader;
    this.reader = undefined;
    if (reader !== undefined) await this.endReader(reader);
  }

  private async endReader(reader: RowsThread): Promise<void> {
    // The link first, at once: a read begun again (a second Manifest.db) makes it anew.
    unlinkQuietly(this.linkAt);
    await reader.end();
  }

  /** `file` is the inode read, and no journal lies beside it. */
  private isReadFile(file: string): boolean {
    const st = lstatSync(file, { bigint: true, throwIfNoEntry: false });
    const id = this.identity;
    return (
      st !== undefined &&
      st.isFile() &&
      st.dev === id.dev &&
      st.ino === id.ino &&
      st.size === id.size &&
      st.mtimeNs === id.mtimeNs &&
      lstatSync(`${file}-journal`, { throwIfNoEntry: false }) === undefined
    );
  }
}

function unlinkQuietly(file: string): void {
  try {
    unlinkSync(file);
  } catch {
    // already gone
  }
}

function largeEnough(file: string, offThreadBytes = ROWS_OFF_THREAD_BYTES): boolean {
  try {
    return statSync(file).size >= offThreadBytes;
  } catch {
    return false; // what is wrong with it is said by reading it here
  }
}

function unexpected(m: ManifestRowsMessage): Error {
  return new MooringError(
    'IO',
    `the thread reading Manifest.db posted a "${m.kind}" message out of place`,
  );
}

function* rowsOf(
  b: RowBatch,
  onInvalid: (p: ManifestRowProblem) => void,
): Generator<ManifestRowFacts> {
  const { fileIds, flags, sizes, hasDigest, digests } = batchArrays(b.slot, b.rows);
  const fileIdAt = fileIdsOf(fileIds);
  let k = 0;
  for (let i = 0; i < b.rows; i++) {
    for (; k < b.invalid.length && b.invalid[k]![0] <= i; k++) onInvalid(b.invalid[k]![1]);
    yield {
      fileId: fileIdAt(i),
      flags: flags[i]!,
      file: {
        size: sizes[i]!,
        // A copy: the slot is written again once the batch is used, and a row may be kept.
        ...(hasDigest[i] === 1 ? { digest: Buffer.copyBytesFrom(digests, i * 20, 20) } : {}),
      },
    };
  }
  for (; k < b.invalid.length; k++) onInvalid(b.invalid[k]![1]);
}

/** The worker and the messages it posted, taken one at a time. */
class RowsThread {
  private readonly queue: ManifestRowsMessage[] = [];
  private wake: (() => void) | undefined;
  private gone = false;

  private constructor(
    readonly worker: Worker,
    private readonly credit: Int32Array,
  ) {
    worker.on('message', (m: ManifestRowsMessage) => this.push(m));
    // A thread that cannot load its modules errors, then exits: both end the messages.
    worker.on('error', () => this.stop());
    worker.on('exit', () => this.stop());
  }

  /**
   * With `base`, the thread compares `file` with it (compareManifestDbRows). With `ahead`
   * batches of credit rather than BATCHES_AHEAD, it is a read ahead (RowsReadAhead): its first
   * message says when it has the file open.
   */
  static start(
    file: string,
    maxRows: number,
    base?: string,
    ahead?: number,
  ): RowsThread | undefined {
    const credit = new SharedArrayBuffer(4);
    const batches = ahead ?? BATCHES_AHEAD;
    new Int32Array(credit)[0] = batches;
    const job: ManifestRowsJob = {
      kind: MANIFEST_ROWS_JOB,
      file,
      maxRows,
      credit,
      batches,
      ...(base !== undefined ? { base } : {}),
      ...(ahead !== undefined ? { ahead: true as const } : {}),
    };
    try {
      return new RowsThread(
        startWorker(__filename, 'manifest-rows.worker', {
          workerData: job,
          resourceLimits: { maxYoungGenerationSizeMb: ROWS_YOUNG_GENERATION_MB },
        }),
        new Int32Array(credit),
      );
    } catch {
      return undefined;
    }
  }

  /** The next message; undefined once the thread is gone without a last one. */
  async next(): Promise<ManifestRowsMessage | undefined> {
    while (this.queue.length === 0 && !this.gone)
      await new Promise<void>((resolve) => (this.wake = resolve));
    return this.queue.shift();
  }

  /** A batch was used: the thread may post another. */
  used(): void {
    Atomics.add(this.credit, 0, 1);
    Atomics.notify(this.credit, 0);
  }

  async end(): Promise<void> {
    // Wake it if it waits for credit, so that it sees the termination at once.
    Atomics.store(this.credit, 0, 1 << 30);
    Atomics.notify(this.credit, 0);
    await this.worker.terminate();
  }

  private push(m: ManifestRowsMessage): void {
    this.queue.push(m);
    this.wake?.();
  }

  private stop(): void {
    this.gone = true;
    this.wake?.();
  }
}
