/**
 * Received files written, and their SHA-1 taken, on a worker thread (D26 needs every byte hashed,
 * ~1 s of CPU per GB; creating, writing and closing many small files is more: D30), while the
 * thread reading the device's stream goes on with the next file.
 *
 * The main thread copies each block into a batch and posts full batches; the worker writes and
 * hashes them in order and sends back, in the order the files were ended, each one's digest and
 * what became of it. Nothing waits for that but the reply to the upload and the verify (`settle`),
 * so a copy and a few numbers are all a file costs here. At
 * most MAX_IN_FLIGHT batches are with the worker: beyond that `update` asks its caller to wait,
 * so memory stays bounded when the disk outruns the hashing.
 *
 * A worker that cannot start, or dies, loses digests, never corrupts them (`onLost`). A file it was
 * writing is then not known to be complete: ReceivedDigests reports it failed, so the device hears
 * of it, and the caller writes the next files itself.
 */
import type { Worker } from 'node:worker_threads';
import { startWorker } from '../util/worker-file';
import {
  DROP,
  END,
  FILE_FIELDS,
  OPEN,
  SERVE,
  SHA1_BYTES,
  WRITTEN,
  type Sha1Batch,
  type Sha1Results,
} from './sha1.worker';

/**
 * A post to the worker costs the posting thread a wake-up of the other (tens of µs on two shared
 * cores): 1 MiB batches post a quarter as often as 256 KiB ones, for at most 8 MiB in flight
 * (BENCHMARKS, twenty-first pass).
 */
export const BATCH_BYTES = 1024 * 1024;
export const MAX_IN_FLIGHT = 8;

/** A worker's own heap is small: it holds a hash state per open file and one batch's results. */
const WORKER_LIMITS = { maxYoungGenerationSizeMb: 2, maxOldGenerationSizeMb: 24 };

/** What became of a file opened with a path (`open`): committed, with what fstat said, or not. */
export type WrittenFile =
  | { ok: true; dev: number; ino: number; size: number; mtimeMs: number }
  | { ok: false; code: string; message: string };

export interface Sha1Delivery {
  /**
   * The digest of the next file ended (in the order of `end` calls) and what became of it (the
   * digest is meaningful only when `written.ok`).
   */
  onDigest(sha1: Buffer, written: WrittenFile): void;
  /** The worker is gone: no digest comes for any file ended and not yet delivered. */
  onLost(): void;
}

export class OffThreadSha1 {
  private worker: Worker | undefined;
  private failed = false;
  private nextId = 1;
  private batch: { buf: ArrayBuffer; view: Buffer } | undefined;
  private used = 0;
  private ops: number[] = [];
  private paths: string[] = [];
  private readonly spare: ArrayBuffer[] = [];
  private inFlight = 0;
  private roomWaiters: Array<() => void> = [];
  private idleWaiters: Array<() => void> = [];

  /** `workerName`: the worker module (tests name a missing one to see a failure handled). */
  constructor(
    private readonly delivery: Sha1Delivery,
    private readonly workerName = 'sha1.worker',
  ) {}

  /**
   * A new file that the worker also writes, to `finalPath` by THE RULE (atomic-file.ts): its id
   * for update, end and drop, or undefined when the worker is gone (the caller writes it itself).
   * `end` commits it, `drop` deletes it; onDigest says how it went.
   */
  open(finalPath: string): number | undefined {
    if (this.failed) return undefined;
    const id = this.nextId++;
    this.ops.push(id, this.paths.length, OPEN);
    this.paths.push(finalPath);
    return id;
  }

  /** Adds `data` to file `id` (copied at once). A promise: wait for it before the next block. */
  update(id: number, data: Buffer): Promise<void> | undefined {
    if (this.failed) return undefined;
    let off = 0;
    while (off < data.length) {
      if (this.batch === undefined || this.used === BATCH_BYTES) {
        this.send();
        const buf = this.spare.pop() ?? new ArrayBuffer(BATCH_BYTES);
        this.batch = { buf, view: Buffer.from(buf) };
      }
      const n = Math.min(data.length - off, BATCH_BYTES - this.used);
      data.copy(this.batch.view, this.used, off, off + n);
      this.ops.push(id, this.used, n);
      this.used += n;
      off += n;
    }
    if (this.used === BATCH_BYTES) this.send();
    if (this.inFlight < MAX_IN_FLIGHT || this.failed) return undefined;
    return new Promise<void>((resolve) => this.roomWaiters.push(resolve));
  }

  /** No more bytes: the digest goes to onDigest later. False when none will (worker lost). */
  end(id: number): boolean {
    if (this.failed) return false;
    this.ops.push(id, 0, END);
    return true;
  }

  /** The file was not kept: no digest. */
  drop(id: number): void {
    if (!this.failed) this.ops.push(id, 0, DROP);
  }

  /** Sends what is batched, without waiting for it (the next `update` waits for room, as ever). */
  flush(): void {
    this.send();
  }

  /** Sends what is batched and resolves once every ended file's digest has been delivered. */
  async settle(): Promise<void> {
    this.send();
    if (this.inFlight === 0) return;
    await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  /** Stops the worker (after settle: nothing is lost). Starts again on the next bytes. */
  async close(): Promise<void> {
    const w = this.worker;
    this.worker = undefined;
    this.batch = undefined;
    this.used = 0;
    this.ops = [];
    this.paths = [];
    this.spare.length = 0;
    if (this.inFlight > 0) this.fail();
    this.failed = false;
    if (w) await w.terminate();
  }

  private send(): void {
    if (this.ops.length === 0 || this.failed) return;
    // Only ends and drops since the last batch: an empty buffer carries them.
    const buf = this.batch?.buf ?? new ArrayBuffer(0);
    const batch: Sha1Batch = { buf, ops: Float64Array.from(this.ops), paths: this.paths };
    this.batch = undefined;
    this.used = 0;
    this.ops = [];
    this.paths = [];
    this.inFlight++;
    this.workerNow().postMessage(batch, [buf]);
  }

  private workerNow(): Worker {
    if (this.worker) return this.worker;
    const w = startWorker(__filename, this.workerName, {
      workerData: SERVE,
      resourceLimits: WORKER_LIMITS,
    });
    // Never what keeps a process alive; close() ends it.
    w.unref();
    // A worker stopped by close() or lost still delivers what it posted before: those results are
    // its files', already reported lost, and counting them would let the next settle() return early.
    w.on('message', (r: Sha1Results) => {
      if (this.worker === w) this.received(r);
    });
    w.on('error', () => {
      if (this.worker === w) this.fail();
    });
    w.on('exit', () => {
      if (this.worker === w) this.fail();
    });
    this.worker = w;
    return w;
  }

  private received({ buf, digests, files, errors }: Sha1Results): void {
    if (buf.byteLength === BATCH_BYTES) this.spare.push(buf);
    const all = Buffer.from(digests);
    let failures = 0;
    for (let off = 0, f = 0; off < all.length; off += SHA1_BYTES, f += FILE_FIELDS) {
      const sha1 = all.subarray(off, off + SHA1_BYTES);
      const status = files[f];
      if (status === WRITTEN) {
        this.delivery.onDigest(sha1, {
          ok: true,
          dev: files[f + 1]!,
          ino: files[f + 2]!,
          size: files[f + 3]!,
          mtimeMs: files[f + 4]!,
        });
      } else {
        const code = errors[2 * failures] ?? 'EIO';
        const message = errors[2 * failures + 1] ?? 'write failed';
        failures++;
        this.delivery.onDigest(sha1, { ok: false, code, message });
      }
    }
    this.inFlight--;
    if (this.inFlight < MAX_IN_FLIGHT) this.release('room');
    if (this.inFlight === 0) this.release('idle');
  }

  private fail(): void {
    this.failed = true;
    this.worker = undefined;
    this.inFlight = 0;
    this.delivery.onLost();
    this.release('room');
    this.release('idle');
  }

  private release(which: 'room' | 'idle'): void {
    const list = which === 'room' ? this.roomWaiters : this.idleWaiters;
    if (which === 'room') this.roomWaiters = [];
    else this.idleWaiters = [];
    for (const r of list) r();
  }
}
