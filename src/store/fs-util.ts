/**
 * Filesystem primitives the store is built from: durable small writes (temp file, fsync, rename,
 * fsync of the folder), directory fsync, and the hard-link copy of a backup tree (its walk in
 * link-tree.worker.ts, shared with the worker threads that do most of a large one).
 */
import {
  constants as fsc,
  lstatSync,
  mkdirSync,
  promises as fsp,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import type { Worker } from 'node:worker_threads';
import { MooringError } from '../util/errors';
import { startWorker } from '../util/worker-file';
import {
  addCounts,
  countEntries,
  type ErrorReport,
  LINK_JOB,
  type LinkCounts,
  type LinkJob,
  type LinkReport,
  linkEntry,
  linkFolder,
  noCounts,
  ShareRefused,
  shareFile,
} from './link-tree.worker';

/** Whether `p` exists (without following a final symlink). */
export async function exists(p: string): Promise<boolean> {
  try {
    await fsp.lstat(p);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
}

/**
 * mkdir of one level, an existing folder being fine. Never `-p`: the store's folders live in the
 * backup folder, and a backup folder removed (or a disk unplugged) mid-backup must stay gone.
 */
export async function mkdirOne(dir: string): Promise<void> {
  try {
    await fsp.mkdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
}

/**
 * Makes a rename or unlink inside `dir` durable. Windows cannot open a folder for fsync; its
 * renames are journaled by NTFS, so it is skipped there.
 */
export async function fsyncDir(dir: string): Promise<void> {
  if (process.platform === 'win32') return;
  const fh = await fsp.open(dir, fsc.O_RDONLY);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export function tempName(file: string): string {
  return `${file}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
}

/** Replaces `file` with `data` atomically and durably (readers see the old or the new, never half). */
export async function writeFileDurable(file: string, data: string | Buffer): Promise<void> {
  const tmp = tempName(file);
  const fh = await fsp.open(tmp, 'wx', 0o644);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await fsp.rename(tmp, file);
  } catch (e) {
    await fsp.rm(tmp, { force: true });
    throw e;
  }
  await fsyncDir(path.dirname(file));
}

/** Renames and makes both folders' entries durable. */
export async function renameDurable(from: string, to: string): Promise<void> {
  await fsp.rename(from, to);
  await fsyncDir(path.dirname(to));
  if (path.dirname(from) !== path.dirname(to)) await fsyncDir(path.dirname(from));
}

export async function unlinkDurable(file: string): Promise<void> {
  try {
    await fsp.unlink(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  await fsyncDir(path.dirname(file));
}

export interface LinkTreeStats extends LinkCounts {
  /** Worker threads that shared the copy (0: the tree was small enough for this thread). */
  workers: number;
  /** The nice value they linked at, where they lowered it (Linux: lowerThreadPriority). */
  workerNice?: number;
}

/**
 * Longest run of synchronous filesystem calls before yielding to the event loop. The tree walks
 * below use synchronous calls: for 100,000 files an awaited call each costs ~20 µs of main-thread
 * time in the thread-pool hand-off against ~3 µs for the call itself (docs/BENCHMARKS.md), and
 * waiting for many at once saves nothing. Yielding keeps timers and sockets (an agent's API)
 * served meanwhile.
 */
const MAX_SYNC_TURN_NS = 20_000_000n;

/** Awaits a macrotask when the current synchronous run is long enough. */
export class TurnBudget {
  private start = process.hrtime.bigint();
  private ops = 0;

  async tick(): Promise<void> {
    // Reading the clock costs too: check it every 64 operations.
    if ((++this.ops & 63) !== 0) return;
    await this.turn();
  }

  /** After a batch of operations (hundreds of them, milliseconds): the clock is read at once. */
  async turn(): Promise<void> {
    if (process.hrtime.bigint() - this.start < MAX_SYNC_TURN_NS) return;
    await new Promise<void>((resolve) => setImmediate(resolve));
    this.start = process.hrtime.bigint();
  }
}

/**
 * Entries linked in this thread before the rest of the tree goes to worker threads: ~80 ms of
 * this thread (~20 µs an entry), about what starting a worker costs (60–130 ms of CPU measured on
 * a loaded 2-core machine), so a small tree is done before a worker would run and a large one
 * (a phone's 100,000 files, ~2 s of system calls) leaves this thread to the device's session.
 * A tree whose first folder, times the number of folders, already reaches it goes to the workers
 * at once.
 */
const IN_THREAD_ENTRIES = 4_000;
/** Worker threads for a large tree: one a core, and no more than this. */
const MAX_LINK_WORKERS = 4;

/**
 * Recreates the tree `src` at `dst` (which must not exist): folders are made anew, regular files
 * are hard-linked, never byte-copied. Where the filesystem refuses a hard link (too many links to
 * one inode, or no hard links at all), a copy-on-write clone is tried (APFS, Btrfs, XFS); if that
 * is refused too the copy fails with IO, rather than silently duplicating the bytes.
 *
 * The top level is made first, in this thread (its files linked, its folders made: `onTopLevel`);
 * the folders of a small tree are filled in this thread too; a large one (IN_THREAD_ENTRIES) has
 * them filled by worker threads, in parallel, each folder by one of them (link-tree.worker.ts;
 * this thread too until one runs). Their errors arrive as they would in this thread (errno errors
 * with their code, MooringError for a refused share).
 */
export interface LinkTreeOptions {
  /** Names directly under `src` left out (not linked, not copied). */
  leaveOut?: readonly string[];
  /** `dst` exists already (empty): only its contents are made. */
  dstExists?: boolean;
  /** Stops the copy between two entries (it then rejects: IO, detail ABORTED). */
  signal?: AbortSignal;
  /**
   * Told once the top level of `dst` is in place: every file and symlink of `src`'s top level
   * linked, each of its folders made (empty) — the names of those folders, which the copy fills
   * from then on.
   */
  onTopLevel?: (folders: readonly string[]) => void;
  /** @internal tests: entries linked in this thread before the rest goes to workers. */
  inThreadEntries?: number;
  /** @internal tests: false leaves every folder to the workers, even while they start. */
  linkWhileWorkersStart?: boolean;
}

export async function linkTree(
  src: string,
  dst: string,
  opts: LinkTreeOptions = {},
): Promise<LinkTreeStats> {
  const counts = noCounts();
  const stopped = (): MooringError =>
    new MooringError('IO', `the copy of ${src} was stopped`, { detail: 'ABORTED' });
  const budget = new TurnBudget();
  try {
    if (opts.dstExists !== true) mkdirSync(dst);
    counts.dirs++;
    const leaveOut = new Set(opts.leaveOut ?? []);
    const folders: string[] = [];
    for (const e of readdirSync(src, { withFileTypes: true })) {
      if (opts.signal?.aborted === true) throw stopped();
      if (leaveOut.has(e.name)) continue;
      if (linkEntry(e, path.join(src, e.name), path.join(dst, e.name), counts)) {
        mkdirSync(path.join(dst, e.name));
        counts.dirs++;
        folders.push(e.name);
      }
      await budget.tick();
    }
    opts.onTopLevel?.(folders.slice());
    const limit = opts.inThreadEntries ?? IN_THREAD_ENTRIES;
    // A phone's tree is hundreds of folders named by hash, alike in size: one tells the total.
    const sample = folders.length === 0 ? 0 : readdirSync(path.join(src, folders[0]!)).length;
    const inThread = folders.length * sample >= limit ? 0 : limit;
    /** Links the folder `name` in this thread, letting the event loop turn, stopping on abort. */
    const linkHere = async (name: string): Promise<void> => {
      for (const _ of linkFolder(path.join(src, name), path.join(dst, name), counts)) {
        if (opts.signal?.aborted === true) throw stopped();
        await budget.tick();
      }
    };
    while (folders.length > 0 && countEntries(counts) < inThread) await linkHere(folders.shift()!);
    let workers = 0;
    let workerNice: number | undefined;
    if (folders.length > 0) {
      if (opts.signal?.aborted === true) throw stopped();
      workers = Math.min(folders.length, MAX_LINK_WORKERS, os.availableParallelism());
      workerNice = await linkInWorkers(src, dst, folders, workers, counts, opts, linkHere, stopped);
    }
    return { ...counts, workers, ...(workerNice !== undefined ? { workerNice } : {}) };
  } catch (e) {
    throw e instanceof ShareRefused ? refusedError(e.from, e.code, e.cause) : e;
  }
}

/**
 * Why files in `dir` cannot be shared between snapshots (the code a hard link was refused with,
 * when no copy-on-write clone could stand in), or undefined when they can. Every backup after the
 * first shares the unchanged files of the one before, so a folder on exFAT or FAT32 takes one
 * backup and fails every later one. Probed with a file of our own (random name), removed after.
 */
export function sharingRefusedIn(dir: string): string | undefined {
  const probe = path.join(
    dir,
    `.mooring-share-test-${process.pid}-${randomBytes(6).toString('hex')}`,
  );
  const twin = `${probe}-link`;
  try {
    writeFileSync(probe, 'mooring', { flag: 'wx' });
    shareFile(probe, twin, noCounts());
    return undefined;
  } catch (e) {
    if (e instanceof ShareRefused) return e.code;
    throw e;
  } finally {
    rmSync(twin, { force: true });
    rmSync(probe, { force: true });
  }
}

/**
 * MooringError.detail of a file the staging could not share (sharingRefusedIn probes whether the
 * folder's disk shares none); its cause is the ShareRefused naming the file and the code.
 */
export const SHARE_REFUSED = 'SHARE_REFUSED';

function refusedError(from: string, code: string, cause: unknown): MooringError {
  return new MooringError(
    'IO',
    `Cannot share ${from} with the new backup: the filesystem refuses hard links (${code}) ` +
      `and copy-on-write clones. Use a destination on a filesystem with hard links (APFS, ` +
      `ext4, Btrfs, XFS, NTFS).`,
    { detail: SHARE_REFUSED, cause: new ShareRefused(from, code, cause) },
  );
}

/**
 * Links the folders `names` of `src` into `dst` with `count` worker threads, adding to `counts`;
 * gives the nice value they ran at, if they lowered it (background work: LinkReport.nice).
 * While they start (50–350 ms measured, most of it Node's own bootstrap), this thread takes
 * folders from the same queue, so their start-up is not lost time. Settles only once every worker
 * has ended: none writes after a failure or an abort, and none keeps the process up.
 */
async function linkInWorkers(
  src: string,
  dst: string,
  names: string[],
  count: number,
  counts: LinkCounts,
  opts: LinkTreeOptions,
  linkHere: (name: string) => Promise<void>,
  stopped: () => MooringError,
): Promise<number | undefined> {
  const { signal } = opts;
  const job: LinkJob = { kind: LINK_JOB, src, dst, names, next: new SharedArrayBuffer(4) };
  const workers: Worker[] = [];
  const ended = (): Promise<unknown> => Promise.all(workers.map((w) => w.terminate()));
  const abort = (): void => void ended();
  signal?.addEventListener('abort', abort);
  try {
    let running = opts.linkWhileWorkersStart === false;
    for (let i = 0; i < count; i++) {
      const w = startWorker(__filename, 'link-tree.worker', { workerData: job });
      w.once('online', () => (running = true));
      workers.push(w);
    }
    let failed = false;
    const reports = Promise.all(workers.map(linkReport));
    reports.catch(() => (failed = true));
    const next = new Int32Array(job.next);
    while (!running && !failed) {
      const i = Atomics.add(next, 0, 1);
      if (i >= names.length) break;
      await linkHere(names[i]!);
    }
    let nice: number | undefined;
    for (const r of await reports) {
      addCounts(counts, r.counts);
      nice ??= r.nice;
    }
    return nice;
  } catch (e) {
    await ended();
    throw signal?.aborted === true ? stopped() : e;
  } finally {
    signal?.removeEventListener('abort', abort);
    await ended();
  }
}

/** What a worker reports, or its error (as thrown in this thread). */
function linkReport(w: Worker): Promise<LinkReport> {
  return new Promise((resolve, reject) => {
    w.once('message', (r: LinkReport) => {
      if (r.error === undefined) resolve(r);
      else reject(errorFromReport(r.error));
    });
    w.once('error', reject);
    w.once('exit', (code) => reject(new Error(`a link worker ended without a report (${code})`)));
  });
}

function errorFromReport(r: ErrorReport): Error {
  const cause = r.cause === undefined ? undefined : errorFromReport(r.cause);
  if (r.refused !== undefined) return refusedError(r.refused.from, r.refused.code, cause);
  const e = new Error(r.message, cause === undefined ? undefined : { cause });
  // As Node makes them: the errno fields enumerable, name and stack not (the worker's stack says
  // where it failed).
  if (r.name !== 'Error') Object.defineProperty(e, 'name', { value: r.name, configurable: true });
  if (r.stack !== undefined)
    Object.defineProperty(e, 'stack', { value: r.stack, configurable: true, writable: true });
  Object.assign(e, {
    ...(r.code === undefined ? {} : { code: r.code }),
    ...(r.errno === undefined ? {} : { errno: r.errno }),
    ...(r.syscall === undefined ? {} : { syscall: r.syscall }),
    ...(r.path === undefined ? {} : { path: r.path }),
    ...(r.dest === undefined ? {} : { dest: r.dest }),
  });
  return e;
}

export interface FileVisit {
  /** Path relative to the walked root, '/'-separated. */
  rel: string;
  /** `dev:ino`, from 64-bit stat values (inode numbers can exceed 2^53). */
  inode: string;
  size: number;
  /** What it takes on the disk (st_blocks, in 512-byte units on every platform Node runs on). */
  diskBytes: number;
  nlink: number;
}

/** Calls `visit` for every regular file under `root` (symlinks are not followed). */
export async function walkFiles(
  root: string,
  visit: (f: FileVisit) => void | Promise<void>,
): Promise<void> {
  const stack: string[] = [''];
  const budget = new TurnBudget();
  while (stack.length > 0) {
    const rel = stack.pop()!;
    const abs = rel === '' ? root : path.join(root, rel);
    let entries;
    try {
      entries = readdirSync(abs, { withFileTypes: true });
    } catch (e) {
      // A folder removed meanwhile (a concurrent prune) is simply not there any more.
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' && rel !== '') continue;
      throw e;
    }
    for (const e of entries) {
      const childRel = rel === '' ? e.name : `${rel}/${e.name}`;
      if (e.isDirectory()) stack.push(childRel);
      else if (e.isFile()) {
        // 64-bit values: inode numbers can exceed 2^53. throwIfNoEntry: a removed file is skipped.
        const st = lstatSync(path.join(root, childRel), { bigint: true, throwIfNoEntry: false });
        if (st?.isFile()) {
          const r = visit({
            rel: childRel,
            inode: `${st.dev}:${st.ino}`,
            size: Number(st.size),
            diskBytes: Number(st.blocks) * 512,
            nlink: Number(st.nlink),
          });
          if (r) await r;
        }
      }
      await budget.tick();
    }
  }
}
