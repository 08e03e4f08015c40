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
 */
import { statSync } from 'node:fs';
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
}

export async function* manifestRows(
  file: string,
  opts: ManifestRowsOptions,
): AsyncGenerator<ManifestRowFacts> {
  const maxRows = opts.maxRows ?? MAX_MANIFEST_ROWS;
  let scanned = 0;
  if (largeEnough(file, opts.offThreadBytes)) {
    const reader = RowsThread.start(file, maxRows);
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
  const reader = largeEnough(file, opts.offThreadBytes)
    ? RowsThread.start(file, maxRows, base)
    : undefined;
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
  const digests = Buffer.from(b.digests.buffer, b.digests.byteOffset, b.digests.byteLength);
  let k = 0;
  for (let i = 0; i < b.fileIds.length; i++) {
    for (; k < b.invalid.length && b.invalid[k]![0] <= i; k++) onInvalid(b.invalid[k]![1]);
    yield {
      fileId: b.fileIds[i]!,
      domain: b.domains[i]!,
      relativePath: b.relativePaths[i]!,
      flags: b.flags[i]!,
      file: {
        size: b.sizes[i]!,
        ...(b.hasDigest[i] === 1 ? { digest: digests.subarray(i * 20, i * 20 + 20) } : {}),
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

  /** With `base`, the thread compares `file` with it (compareManifestDbRows). */
  static start(file: string, maxRows: number, base?: string): RowsThread | undefined {
    const credit = new SharedArrayBuffer(4);
    new Int32Array(credit)[0] = BATCHES_AHEAD;
    const job: ManifestRowsJob = {
      kind: MANIFEST_ROWS_JOB,
      file,
      maxRows,
      credit,
      ...(base !== undefined ? { base } : {}),
    };
    try {
      return new RowsThread(
        startWorker(
          __filename,
          'manifest-rows.worker',
          {
            workerData: job,
            resourceLimits: { maxYoungGenerationSizeMb: ROWS_YOUNG_GENERATION_MB },
          },
          true,
        ),
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
