/**
 * Starts a backup job's thread (job-thread.ts), early when the caller knows a job is coming.
 *
 * A job thread loads the whole backup stack before it can begin (~0.1 s here), and the usbmuxd
 * client's modules when the job reaches its device by USB (~0.15 s more). Started after the
 * command line has loaded its own modules and found the device, all of that is on the way of every
 * `mooring backup`; started as the process starts (`prestartJobThread`, from bin/mooring), it
 * loads on the other core while the main thread does that. The job itself crosses later, as a
 * message (`{ t: 'start' }`), to whichever thread `takeJobThread` hands out.
 *
 * This module imports nothing of the backup stack, so a caller can use it before loading its own.
 */
import type { Worker } from 'node:worker_threads';
import { startWorker } from '../util/worker-file';
import { crashTestResourceLimits } from './crash-test';
import type { JobThreadData } from './job-messages';

/**
 * The job thread's young generation, in MiB: V8 splits it into two semi-spaces and a large
 * object space of a third each, so 3 gives 1 MiB semi-spaces. With 4 MiB semi-spaces (12), about
 * half of the 2 GB backups ran a storm of 30–160 full collections, V8 starting to mark again right
 * after each; with 1 MiB, none did, at the same CPU and ~15 MiB less peak RSS (D36).
 */
export const JOB_YOUNG_GENERATION_MB = 3;

/**
 * The job thread's old generation limit, in MiB. Not a budget (a backup holds ~15 MiB there at
 * 500,000 files): V8 lets the heap grow to up to 4× what survived the last full collection when
 * its limit is 2 GiB or more, the default on a machine with 8 GiB of memory or more, and ~1.6× at
 * 1 GiB. A 300,000-file backup peaked at 249–283 MiB of RSS without it, 208–232 MiB with it (D49).
 */
export const JOB_OLD_GENERATION_MB = 1024;

/** `MOORING_JOB_THREAD=0` runs every job in-process (to compare, or to debug with one stack). */
export const JOB_THREAD_ENV = 'MOORING_JOB_THREAD';

export const DEFAULT_JOB_WORKER = 'job.worker';

interface Prestarted {
  worker: Worker;
  workerName: string;
  /** Why it cannot take a job: it failed or ended while it waited for one. */
  failed?: string;
  /** Hands the thread over: its waiting listeners off, and it holds the process again. */
  claim: () => void;
}

let prestarted: Prestarted | undefined;

function launch(workerName: string, data: JobThreadData): Worker {
  // job.worker loads the stack from app.asar (util/worker-file, LOADED_FROM_ASAR).
  return startWorker(__filename, workerName, {
    workerData: data,
    resourceLimits: {
      maxYoungGenerationSizeMb: JOB_YOUNG_GENERATION_MB,
      maxOldGenerationSizeMb: JOB_OLD_GENERATION_MB,
      ...crashTestResourceLimits(),
    },
  });
}

/**
 * Starts the thread the next job will run on, unless one waits already or jobs run in-process.
 * `usbmuxd`: the job will likely reach its device through usbmuxd, so the thread loads that
 * client too while it waits. The thread does not keep the process alive until a job takes it,
 * and the next runBackupJob ends it if it does not (an in-process job, another worker).
 * A thread copies the environment as it starts, so a job's environment (its crash-test hook)
 * must be set before. Returns the thread's id (tests check which thread ran the job).
 */
export function prestartJobThread(
  o: { usbmuxd?: boolean; workerName?: string } = {},
): number | undefined {
  if (prestarted || process.env[JOB_THREAD_ENV] === '0') return undefined;
  const workerName = o.workerName ?? DEFAULT_JOB_WORKER;
  let worker: Worker;
  try {
    worker = launch(workerName, { preloadUsbmuxd: o.usbmuxd === true });
  } catch {
    return undefined; // takeJobThread starts one of its own, and says why that fails
  }
  const p: Prestarted = { worker, workerName, claim: () => undefined };
  // Without a listener, a thread's failure would be thrown on this one.
  const onError = (e: Error): void => {
    p.failed ??= e.message;
  };
  const onExit = (code: number): void => {
    p.failed ??= `its thread ended before it started (exit code ${code})`;
  };
  worker.on('error', onError).on('exit', onExit).unref();
  p.claim = () => {
    worker.off('error', onError).off('exit', onExit).ref();
  };
  prestarted = p;
  return worker.threadId;
}

/**
 * A thread for the job: the prestarted one if it runs `workerName` and is still alive, else a new
 * one; or why no thread could start.
 */
export function takeJobThread(
  workerName: string,
): { worker: Worker; notStarted?: undefined } | { notStarted: string } {
  const p = prestarted;
  if (p && p.workerName === workerName) {
    prestarted = undefined;
    p.claim();
    return p.failed === undefined ? { worker: p.worker } : { notStarted: p.failed };
  }
  discardPrestartedThread(); // one for another worker
  try {
    return { worker: launch(workerName, {}) };
  } catch (e) {
    return { notStarted: (e as Error).message };
  }
}

/** Ends the prestarted thread, if any: the job runs in-process. */
export function discardPrestartedThread(): void {
  const p = prestarted;
  prestarted = undefined;
  if (p) void p.worker.terminate().catch(() => undefined);
}

/**
 * Whether `mooring backup`'s arguments leave the device to be reached through usbmuxd (no
 * `--host`, no `--via wifi`): a hint for what the prestarted thread loads, nothing more.
 */
export function backupMayUseUsbmuxd(argv: readonly string[]): boolean {
  return !argv.some(
    (a, i) =>
      a === '--host' ||
      a.startsWith('--host=') ||
      a === '--via=wifi' ||
      (a === '--via' && argv[i + 1] === 'wifi'),
  );
}
