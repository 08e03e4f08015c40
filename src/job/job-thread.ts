/**
 * Runs a backup job on a worker thread of its own, with a small young generation.
 *
 * Why a thread: a backup of many small files makes V8 grow the young generation of whatever
 * heap it runs on to its 32 MiB maximum, and its promoted garbage doubles the old space before a
 * full collection (docs/BENCHMARKS.md, seventh pass). V8 fixes a heap's young generation when
 * the heap is created, so the process's own heap cannot be made smaller once Node runs, but a
 * worker's can (`resourceLimits`). The thread also keeps the agent's loop (its web UI, its
 * history) free while a backup runs, and a backup that runs out of memory fails alone, with a
 * reason, instead of taking the agent down.
 *
 * A job whose endpoint cannot be described as data, or whose thread cannot start (a packaged app
 * whose Electron cannot load modules from app.asar in a worker), runs in-process as before. The
 * thread may have been started before the job was known (thread-start).
 */
import { RecordedValues } from '../lockdown/values';
import {
  breakOwnStaleLock,
  deviceLockFile,
  noteJobThread,
  openStore,
  releaseLockOfThread,
  type RecoveryReport,
} from '../store';
import { newDecryptedTempRoot } from '../store/encrypted';
import { MooringError } from '../util/errors';
import { removeTree } from '../util/remove-tree';
import { fromWireError, toWireError } from '../util/error-wire';
import {
  backupToStore,
  describeRecovery,
  failedOutcome,
  recordAttempt,
  type JobOptions,
  type JobOutcome,
} from './backup-to-store';
import { crashTestStoreOptions } from './crash-test';
import { describeEndpoint } from './endpoint-spec';
import { describeGcCount } from './gc-count';
import type { FromJob, JobSpec, ToJob } from './job-messages';
import {
  DEFAULT_JOB_WORKER,
  discardPrestartedThread,
  JOB_THREAD_ENV,
  takeJobThread,
} from './thread-start';

export { JOB_THREAD_ENV, JOB_YOUNG_GENERATION_MB } from './thread-start';

export interface RunJobOptions extends JobOptions {
  /**
   * Told why a job ran in-process after all, of a stale lock removed, and of the caller's own
   * onSession failing.
   */
  log?: (line: string) => void;
  /** false: in-process whatever the endpoint (default: a thread when it can). */
  thread?: boolean;
  /** The thread's module (tests name a missing one to see the in-process fallback). */
  workerName?: string;
}

/** One backup of one device, on its own thread when it can be (see above). */
export async function runBackupJob(o: RunJobOptions): Promise<JobOutcome> {
  const { log = () => undefined, thread, workerName = DEFAULT_JOB_WORKER, ...job } = o;
  const udid = job.endpoint.udid;
  const asked = thread !== false && process.env[JOB_THREAD_ENV] !== '0';
  const spec = asked ? jobSpec(job) : undefined;
  if (typeof spec !== 'object') discardPrestartedThread();
  if (typeof spec === 'string') {
    log(`the backup of ${udid} runs in-process: ${spec}`);
  } else if (spec) {
    const r = await onThread(job, spec, workerName, log);
    if (r.outcome) return r.outcome;
    log(`the backup of ${udid} runs in-process: ${r.notStarted}`);
  }
  return backupToStore({ storeOptions: crashTestStoreOptions(), ...job });
}

/** The job as data, or why part of it cannot cross to a thread. */
function jobSpec(o: JobOptions): JobSpec | string {
  const endpoint = describeEndpoint(o.endpoint);
  if (!endpoint) return 'its endpoint cannot be handed to a thread';
  if (o.storeOptions) return 'it was given store options, which cannot cross to a thread';
  if (o.onSession && !o.sessionReads) return 'its onSession names no sessionReads';
  const spec: JobSpec = { endpoint, record: o.record, dest: o.dest };
  if (o.full !== undefined) spec.full = o.full;
  if (o.timeouts) spec.timeouts = o.timeouts;
  if (o.label !== undefined) spec.label = o.label;
  if (o.makeRoom) spec.makeRoom = o.makeRoom;
  if (o.onSession && o.sessionReads) spec.sessionReads = [...o.sessionReads];
  const e = o.encryption;
  if (e) {
    spec.encryption = {
      passwords: typeof e.passwords === 'function' ? 'ask' : [...e.passwords],
      onOpened: e.onOpened !== undefined,
      ...(e.sample === undefined ? {} : { sample: e.sample }),
    };
  }
  return spec;
}

/** Refused device paths kept for the record of a thread that dies (a long list keeps 20). */
const MAX_KEPT_REFUSED = 1000;

type ThreadResult = { outcome: JobOutcome } | { outcome?: undefined; notStarted: string };

async function onThread(
  o: JobOptions,
  spec: JobSpec,
  workerName: string,
  log: (line: string) => void,
): Promise<ThreadResult> {
  const udid = o.endpoint.udid;
  const lockFile = deviceLockFile(o.dest, udid);
  // A lock an earlier job's thread (or a failed release of ours) left would refuse this job:
  // only this, the main thread, can tell it from a live one.
  await breakOwnStaleLock(lockFile).then(
    (why) => why && log(`removed the stale lock of ${udid} (${why})`),
    () => undefined,
  );
  const taken = takeJobThread(workerName);
  if (taken.notStarted !== undefined) return { notStarted: taken.notStarted };
  const { worker } = taken;
  const threadId = worker.threadId; // -1 once the thread has ended
  const startedAt = new Date().toISOString();
  // What the job had received and refused when it last said, for the record of a thread that dies.
  const received = { bytesReceived: 0, filesReceived: 0, refusedPaths: [] as string[] };
  noteJobThread(threadId, true);
  const send = (m: ToJob): void => worker.postMessage(m);
  // Decrypted Manifest.db files go into a folder this thread removes: a thread that is ended
  // (terminate, below) runs no 'exit' handler of its own.
  let decryptedDir: string | undefined;
  try {
    decryptedDir = newDecryptedTempRoot();
  } catch {
    // the thread makes its own (and removes it when it ends by itself)
  }
  send({ t: 'start', spec: decryptedDir === undefined ? spec : { ...spec, decryptedDir } });
  const onAbort = (): void => send({ t: 'abort' });
  let ready = false;
  // The caller's own work for the session's values finishes before the outcome is returned, as
  // it does in-process (where it runs before the backup starts). A repair round opens a second
  // session, hence a list.
  const sessionWork: Array<Promise<unknown>> = [];

  return new Promise<ThreadResult>((resolve) => {
    let settled = false;
    const settle = (r: ThreadResult | (() => Promise<ThreadResult>)): void => {
      if (settled) return;
      settled = true;
      o.signal?.removeEventListener('abort', onAbort);
      // The outcome is final once posted; the thread is ended rather than left to wind down.
      void worker
        .terminate()
        .catch(() => undefined)
        .then(async () => {
          noteJobThread(threadId, false);
          if (decryptedDir !== undefined) await removeTree(decryptedDir).catch(() => undefined);
          await releaseLockOfThread(lockFile, threadId).catch((e: unknown) => {
            log(`could not remove the lock of ${udid} left by its backup's thread: ${String(e)}`);
          });
          await Promise.all(sessionWork);
          resolve(typeof r === 'function' ? await r() : r);
        });
    };

    worker.on('message', (m: FromJob) => {
      switch (m.t) {
        case 'ready':
          ready = true;
          if (o.signal?.aborted) onAbort();
          else o.signal?.addEventListener('abort', onAbort, { once: true });
          break;
        case 'events':
          for (const e of m.list) {
            if (e.type === 'progress') {
              received.bytesReceived = e.bytesReceived;
              received.filesReceived = e.filesReceived;
            } else if (
              e.type === 'refused-path' &&
              received.refusedPaths.length < MAX_KEPT_REFUSED
            ) {
              received.refusedPaths.push(e.path);
            }
            try {
              o.onEvent?.(e);
            } catch {
              // a failing listener must not break the backup
            }
          }
          break;
        case 'session':
          sessionWork.push(
            Promise.resolve()
              .then(() => o.onSession?.(new RecordedValues(m.answers)))
              .catch((e: unknown) => {
                log(`reading the values of ${udid} at its backup's session failed: ${String(e)}`);
              }),
          );
          break;
        case 'call':
          void answer(o, m).then(send);
          break;
        case 'gc':
          log(`the backup's thread collected garbage: ${describeGcCount(m.count)}`);
          break;
        case 'outcome': {
          const { error, ...rest } = m.outcome;
          settle({ outcome: error ? { ...rest, error: fromWireError(error) } : rest });
          break;
        }
      }
    });
    worker.on('error', (e: Error & { code?: string }) => {
      if (!ready) return settle({ notStarted: e.message });
      const why =
        e.code === 'ERR_WORKER_OUT_OF_MEMORY'
          ? 'it ran out of memory'
          : `its thread failed (${e.message})`;
      settle(() => threadDied(o, { why, startedAt, received }, e));
    });
    worker.on('exit', (code) => {
      if (!ready) settle({ notStarted: `its thread ended before it started (exit code ${code})` });
      else
        settle(() =>
          threadDied(o, {
            why: `its thread ended before the backup did (exit code ${code})`,
            startedAt,
            received,
          }),
        );
    });
  });
}

/**
 * The outcome of a job whose thread died (settle runs it once the thread is gone and its lock
 * removed): the store's recovery runs now rather than at the next backup, so the latest backup
 * is whole again at once (a thread that died mid-commit leaves the device folder moved aside),
 * and the message says which backup that is. The attempt goes on the store's record as the
 * thread would have put it there.
 */
async function threadDied(
  o: JobOptions,
  d: {
    why: string;
    startedAt: string;
    received: { bytesReceived: number; filesReceived: number; refusedPaths: string[] };
  },
  cause?: unknown,
): Promise<ThreadResult> {
  const { why } = d;
  const udid = o.endpoint.udid;
  let recovery: RecoveryReport | undefined;
  let stateDir: string | undefined;
  try {
    ({ recovery, stateDir } = await openStore(o.dest, udid));
  } catch {
    // the next backup's recovery will try again
  }
  const committed = recovery?.journal === 'commit';
  const message = committed
    ? `the backup stopped: ${why} while committing it; the store finished the commit, so this backup is the latest`
    : `the backup stopped: ${why}; the previous backup is kept unchanged`;
  const recovered = recovery ? describeRecovery(recovery) : undefined;
  const outcome = await failedOutcome(
    o,
    // Not 'connect': a failure of ours, not of the device's connection.
    committed ? 'commit' : 'backup',
    new MooringError('IO', message, cause === undefined ? {} : { cause }),
    {
      ...(recovered ? { recovered } : {}),
      ...(recovery && recovery.found.length > 0 ? { storeFound: [...recovery.found] } : {}),
    },
  );
  outcome.result.failure = 'internal';
  Object.assign(outcome.result, d.received);
  if (stateDir !== undefined) {
    await recordAttempt(stateDir, o, d.startedAt, outcome, (e) => {
      try {
        o.onEvent?.(e);
      } catch {
        // a failing listener must not break the outcome
      }
    });
  }
  return { outcome };
}

/** The caller's answer to one of the job's calls. */
async function answer(o: JobOptions, m: Extract<FromJob, { t: 'call' }>): Promise<ToJob> {
  try {
    if (m.fn === 'passwords') {
      const p = o.encryption?.passwords ?? [];
      return {
        t: 'reply',
        id: m.id,
        passwords: typeof p === 'function' ? await p(m.keyBagId) : [...p],
      };
    }
    await o.encryption?.onOpened?.(m.keyBagId, m.password);
    return { t: 'reply', id: m.id };
  } catch (e) {
    return { t: 'reply', id: m.id, error: toWireError(e) };
  }
}
