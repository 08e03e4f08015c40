/**
 * Starts a worker thread on a `*.worker` module that sits next to the calling module.
 *
 * Two things stand between a module's path and a Worker:
 * - Under the tests the sources run as TypeScript through tsx, whose hooks do not reach worker
 *   threads, so a `.ts` worker registers tsx itself first (tsx is a dev dependency; a build runs
 *   `.js` and never gets there).
 * - In the packaged desktop app the code lives in app.asar, which a worker may not be able to
 *   load; electron-builder.yml unpacks `*.worker.js` next to it (app.asar.unpacked), and a worker
 *   module started from there imports nothing but Node's own modules. The exceptions, in
 *   LOADED_FROM_ASAR, load from app.asar (Electron 18 and later read asar in worker threads).
 */
import path from 'node:path';
import { Worker, type WorkerOptions } from 'node:worker_threads';

/**
 * The workers that import our own modules, so they load from app.asar itself: the backup job's
 * thread (job/job-thread), which needs the whole backup stack and runs in-process where that
 * fails, and the Manifest.db rows thread (store/manifest-rows-off-thread), which needs the format's
 * SQLite reader and reads the rows on the verify's thread where it fails. test/util/worker-file
 * checks that no other worker module imports anything but Node's own.
 */
export const LOADED_FROM_ASAR: ReadonlySet<string> = new Set([
  'job.worker',
  'manifest-rows.worker',
]);

/**
 * `callerFile` is the caller's `__filename` (its extension says whether we run built code or
 * TypeScript); `name` the worker's base name without extension, e.g. `sha1.worker`.
 */
export function startWorker(
  callerFile: string,
  name: string,
  options: Pick<WorkerOptions, 'workerData' | 'resourceLimits'> = {},
): Worker {
  const ext = path.extname(callerFile);
  let file = path.join(path.dirname(callerFile), `${name}${ext}`);
  if (!LOADED_FROM_ASAR.has(name)) {
    const asar = `${path.sep}app.asar${path.sep}`;
    file = file.replace(asar, `${path.sep}app.asar.unpacked${path.sep}`);
  }
  const preload = ext === '.ts' ? `require(${JSON.stringify(require.resolve('tsx/cjs'))});` : '';
  return new Worker(`${preload}require(${JSON.stringify(file)});`, { ...options, eval: true });
}
