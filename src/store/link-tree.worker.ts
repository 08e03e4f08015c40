/**
 * The hard-link copy of a backup tree, entry by entry (store/fs-util.ts linkTree drives it): the
 * walk shared by linkTree's own thread and its worker threads. Imports nothing but Node's own
 * modules (util/worker-file.ts says why); linkTree turns what it throws into Mooring's errors.
 *
 * As a worker (workerData a LinkJob): links whole top-level folders of `src` into `dst`, taking
 * the next folder's index from a counter shared with the other workers (an even share whatever
 * each folder holds or however each thread is scheduled; no two workers write into one folder),
 * then posts a LinkReport and ends.
 */
import {
  constants as fsc,
  copyFileSync,
  type Dirent,
  linkSync,
  mkdirSync,
  readdirSync,
  readlinkSync,
  symlinkSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';

export interface LinkCounts {
  dirs: number;
  /** Files shared by a hard link (no bytes written). */
  linked: number;
  /** Files shared by a copy-on-write clone where hard links are refused (e.g. too many links). */
  cloned: number;
  symlinks: number;
  /** Sockets, FIFOs, devices: not part of a backup, not copied. */
  skipped: number;
}

export function noCounts(): LinkCounts {
  return { dirs: 0, linked: 0, cloned: 0, symlinks: 0, skipped: 0 };
}

export function addCounts(to: LinkCounts, from: LinkCounts): void {
  to.dirs += from.dirs;
  to.linked += from.linked;
  to.cloned += from.cloned;
  to.symlinks += from.symlinks;
  to.skipped += from.skipped;
}

export function countEntries(c: LinkCounts): number {
  return c.dirs + c.linked + c.cloned + c.symlinks + c.skipped;
}

/** Hard-link refusals that a copy-on-write clone may get around. */
const NO_LINK = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'EMLINK', 'EXDEV', 'ENOSYS']);

/** A file the filesystem shares neither by a hard link (`code`) nor by a clone (`cause`). */
export class ShareRefused extends Error {
  constructor(
    readonly from: string,
    readonly code: string,
    cause: unknown,
  ) {
    super(`cannot share ${from} (${code}, and no clone)`, { cause });
    this.name = 'ShareRefused';
  }
}

/**
 * Recreates one entry of a tree: a regular file is hard-linked (else cloned), a symlink made
 * anew, a socket or FIFO counted and left. Returns true for a folder, which the caller walks.
 */
export function linkEntry(e: Dirent, from: string, to: string, counts: LinkCounts): boolean {
  if (e.isDirectory()) return true;
  if (e.isFile()) shareFile(from, to, counts);
  else if (e.isSymbolicLink()) {
    symlinkSync(readlinkSync(from), to);
    counts.symlinks++;
  } else counts.skipped++;
  return false;
}

export function shareFile(from: string, to: string, counts: LinkCounts): void {
  try {
    linkSync(from, to);
    counts.linked++;
    return;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? '';
    if (!NO_LINK.has(code)) throw e;
    try {
      copyFileSync(from, to, fsc.COPYFILE_FICLONE_FORCE | fsc.COPYFILE_EXCL);
      counts.cloned++;
    } catch (cause) {
      throw new ShareRefused(from, code, cause);
    }
  }
}

/**
 * Recreates the tree `from` in the folder `to`, which linkTree made already (the top level is in
 * place before any folder is filled), yielding after each entry (the caller's moment to stop, or
 * to let its event loop run).
 */
export function* linkFolder(from: string, to: string, counts: LinkCounts): Generator<void> {
  const stack: Array<[string, string]> = [[from, to]];
  while (stack.length > 0) {
    const [f, t] = stack.pop()!;
    for (const e of readdirSync(f, { withFileTypes: true })) {
      const ef = path.join(f, e.name);
      const et = path.join(t, e.name);
      if (linkEntry(e, ef, et, counts)) {
        mkdirSync(et);
        counts.dirs++;
        stack.push([ef, et]);
      }
      yield;
    }
  }
}

function drain(steps: Generator<void>): void {
  while (steps.next().done !== true);
}

/** What a worker is given: the folders `names` of `src` to recreate in `dst`. */
export interface LinkJob {
  kind: typeof LINK_JOB;
  src: string;
  dst: string;
  names: string[];
  /** One Int32: the index in `names` of the next folder nobody took yet. */
  next: SharedArrayBuffer;
}

export const LINK_JOB = 'mooring-link-tree';

/** An error as it crosses to the main thread (a structured clone would drop `code` and co.). */
export interface ErrorReport {
  name: string;
  message: string;
  stack?: string;
  code?: string;
  errno?: number;
  syscall?: string;
  path?: string;
  dest?: string;
  /** Set for a ShareRefused: the file and the hard link's refusal. */
  refused?: { from: string; code: string };
  cause?: ErrorReport;
}

export interface LinkReport {
  counts: LinkCounts;
  error?: ErrorReport;
  /** The nice value this worker linked at, when it lowered its own (lowerThreadPriority). */
  nice?: number;
}

/** How much lower than the rest of the process a link worker runs (nice +10, as `nice` does). */
export const LINK_WORKER_NICE_INCREMENT = 10;

/**
 * Lowers this thread's scheduling priority by LINK_WORKER_NICE_INCREMENT, and says to what. The
 * links of an incremental run while the device's session opens and the device reads the previous
 * Manifest.db from us: background work, which at an equal priority took the cores that session's
 * thread waits for (the device's first request ~0.1 s later, its read of that file ~0.45 s later,
 * 100,000 files: D35). Only on Linux, where each thread has its own nice value,
 * set through its thread id (/proc/thread-self); elsewhere os.setPriority would lower the whole
 * process, so nothing is done.
 */
export function lowerThreadPriority(): number | undefined {
  if (process.platform !== 'linux') return undefined;
  try {
    const tid = Number(path.basename(readlinkSync('/proc/thread-self')));
    if (!Number.isInteger(tid) || tid <= 0) return undefined;
    // Never raised: a process already niced keeps its workers below itself.
    os.setPriority(tid, Math.min(19, os.getPriority(tid) + LINK_WORKER_NICE_INCREMENT));
    return os.getPriority(tid);
  } catch {
    return undefined; // no /proc, or refused: the links run as they did
  }
}

export function reportError(e: unknown, depth = 0): ErrorReport {
  if (!(e instanceof Error)) return { name: 'Error', message: String(e) };
  const x = e as NodeJS.ErrnoException & { dest?: unknown };
  const r: ErrorReport = { name: e.name, message: e.message };
  if (e.stack !== undefined) r.stack = e.stack;
  if (typeof x.code === 'string') r.code = x.code;
  if (typeof x.errno === 'number') r.errno = x.errno;
  if (typeof x.syscall === 'string') r.syscall = x.syscall;
  if (typeof x.path === 'string') r.path = x.path;
  if (typeof x.dest === 'string') r.dest = x.dest;
  if (e instanceof ShareRefused) r.refused = { from: e.from, code: e.code };
  if (e.cause !== undefined && depth < 4) r.cause = reportError(e.cause, depth + 1);
  return r;
}

function work(job: LinkJob, port: NonNullable<typeof parentPort>): void {
  const nice = lowerThreadPriority();
  const counts = noCounts();
  const next = new Int32Array(job.next);
  let report: LinkReport;
  try {
    for (let i = Atomics.add(next, 0, 1); i < job.names.length; i = Atomics.add(next, 0, 1)) {
      const name = job.names[i]!;
      drain(linkFolder(path.join(job.src, name), path.join(job.dst, name), counts));
    }
    report = { counts };
  } catch (e) {
    // The others take no further folder: the copy has failed.
    Atomics.store(next, 0, job.names.length);
    report = { counts, error: reportError(e) };
  }
  port.postMessage(nice === undefined ? report : { ...report, nice });
}

const job = workerData as Partial<LinkJob> | undefined;
if (parentPort !== null && job?.kind === LINK_JOB) work(job as LinkJob, parentPort);
