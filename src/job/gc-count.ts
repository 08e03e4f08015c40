/**
 * Counts a thread's garbage collections (benchmarks: `MOORING_GC_STATS=1`). A backup's thread runs
 * with a small heap (D27), and V8's heuristics for small heaps can turn a transfer's garbage into a
 * full mark-compact every few tens of milliseconds (docs/BENCHMARKS.md, tenth pass): the count makes
 * that visible in every benchmark run instead of only in a profile.
 */
import { constants, PerformanceObserver } from 'node:perf_hooks';

export const GC_STATS_ENV = 'MOORING_GC_STATS';

export interface GcCount {
  /** Mark-compacts (V8's full collections). */
  full: number;
  fullMs: number;
  /** Scavenges (young generation). */
  young: number;
  youngMs: number;
}

/**
 * Starts counting this thread's collections; the function returned stops and gives the count. Node
 * makes a collection's entry on the next turn of the loop, so stopping waits for one first.
 */
export function countGarbageCollections(): () => Promise<GcCount> {
  const count: GcCount = { full: 0, fullMs: 0, young: 0, youngMs: 0 };
  const add = (list: ReturnType<PerformanceObserver['takeRecords']>): void => {
    for (const e of list) {
      const kind = (e as { detail?: { kind?: number } }).detail?.kind;
      if (kind === constants.NODE_PERFORMANCE_GC_MAJOR) {
        count.full++;
        count.fullMs += e.duration;
      } else if (kind === constants.NODE_PERFORMANCE_GC_MINOR) {
        count.young++;
        count.youngMs += e.duration;
      }
    }
  };
  const observer = new PerformanceObserver((list) => add(list.getEntries()));
  observer.observe({ entryTypes: ['gc'] });
  return async () => {
    await new Promise((resolve) => setImmediate(resolve));
    add(observer.takeRecords()); // entries made, not yet delivered
    observer.disconnect();
    return count;
  };
}

/** One line for a log. */
export function describeGcCount(c: GcCount): string {
  return (
    `${c.full} full (${Math.round(c.fullMs)} ms), ` +
    `${c.young} young (${Math.round(c.youngMs)} ms)`
  );
}
