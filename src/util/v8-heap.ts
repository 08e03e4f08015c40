/**
 * V8's incremental marking, off for the whole process (D41). Reading a plain stream from a device
 * (mobilebackup2 through usbmuxd) at hundreds of MB/s, V8 kept starting incremental marking with
 * half its limit still free: 50–130 full collections for 2 GB, about a second of CPU on the job
 * thread and V8's helper threads, in the main thread's isolate as in a worker's, whatever their heap
 * sizes. With marking done in one step each time the limit is reached there was one, for a heap of
 * ~10–20 MB: a few milliseconds' pause. The agent's own thread was not traced; with this set, its
 * history API kept a p95 of 3 ms at 100,000 rows (BENCHMARKS, twenty-third pass).
 */
import v8 from 'node:v8';

/** `MOORING_INCREMENTAL_MARKING=1` keeps V8's default (to compare). */
export const INCREMENTAL_MARKING_ENV = 'MOORING_INCREMENTAL_MARKING';

/**
 * Call first, before any worker thread starts: V8's flags are the process's. Node allows changing
 * them after start (`v8.setFlagsFromString`); this one is read each time marking could begin.
 */
export function markHeapsInOneStep(): void {
  if (process.env[INCREMENTAL_MARKING_ENV] === '1') return;
  v8.setFlagsFromString('--no-incremental-marking');
}
