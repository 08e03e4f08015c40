/**
 * CPU seconds of each thread of a timed process (`BENCH_THREADS=1`): where a host's CPU goes, with
 * no profiler slowing it. Linux only, read from /proc every SAMPLE_MS while the process runs, which
 * costs the bench process (and so the simulator's figure) ~1.4 % of a core for 15 threads. A
 * thread's counters only grow, so its last reading is its total; one that starts and ends between
 * two readings is missed, and one that ends loses at most its last 100 ms. Threads have no names
 * to tell them apart (Node's are all "node"), so they are reported by size.
 */
import { readdirSync, readFileSync } from 'node:fs';

const SAMPLE_MS = 100;
/** USER_HZ: the unit of /proc's utime and stime, 100 on every Linux the benches run on. */
const TICKS_PER_SECOND = 100;

export function threadCpuWanted(): boolean {
  return process.env.BENCH_THREADS === '1' && process.platform === 'linux';
}

/**
 * Starts reading the threads of the process that `parentPid` started (the child of
 * /usr/bin/time); the returned function stops and gives each thread's CPU seconds, largest first.
 */
export function sampleThreadCpu(parentPid: number): () => number[] {
  const ticks = new Map<string, number>();
  const read = (): void => {
    for (const pid of childrenOf(parentPid)) {
      let tids: string[];
      try {
        tids = readdirSync(`/proc/${pid}/task`);
      } catch {
        continue; // ended
      }
      for (const tid of tids) {
        const t = threadTicks(`/proc/${pid}/task/${tid}/stat`);
        if (t !== undefined) ticks.set(`${pid}/${tid}`, t);
      }
    }
  };
  read();
  const timer = setInterval(read, SAMPLE_MS);
  return () => {
    clearInterval(timer);
    return [...ticks.values()].map((t) => t / TICKS_PER_SECOND).sort((a, b) => b - a);
  };
}

/** "4.65 4.30 1.90 0.52, 1.80 in 6 others": the largest `top` threads and the rest together. */
export function formatThreadCpu(seconds: readonly number[], top = 4): string {
  const busy = seconds.filter((s) => s >= 0.005); // idle threads would print as 0.00
  const shown = busy.slice(0, top).map((s) => s.toFixed(2));
  const rest = busy.slice(top);
  const restSum = rest.reduce((a, b) => a + b, 0);
  return rest.length === 0
    ? shown.join(' ')
    : `${shown.join(' ')}, ${restSum.toFixed(2)} in ${rest.length} others`;
}

function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter((s) => s !== '')
      .map(Number);
  } catch {
    return [];
  }
}

/** utime + stime of one thread, or undefined when it is gone. */
function threadTicks(statFile: string): number | undefined {
  let stat: string;
  try {
    stat = readFileSync(statFile, 'utf8');
  } catch {
    return undefined;
  }
  // The name (field 2) is in parentheses and may hold spaces: count fields after its ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return Number.isFinite(utime) && Number.isFinite(stime) ? utime + stime : undefined;
}

/**
 * The whole machine's busy CPU seconds so far (every core, every process and kernel thread: the
 * host, the simulator, a loop device's workers), from /proc/stat's first line; undefined where
 * there is none. Two readings bracket a run: what it cost the machine, against what its cores
 * could give in that time.
 */
export function machineBusySeconds(): number | undefined {
  let line: string;
  try {
    line = readFileSync('/proc/stat', 'latin1').split('\n', 1)[0]!;
  } catch {
    return undefined;
  }
  // cpu user nice system idle iowait irq softirq steal …: all but idle and iowait are busy.
  const f = line.trim().split(/\s+/).slice(1, 9).map(Number);
  if (f.length < 8 || f.some((x) => !Number.isFinite(x))) return undefined;
  const busy = f.reduce((a, b) => a + b, 0) - f[3]! - f[4]!;
  return busy / TICKS_PER_SECOND;
}
