/**
 * What every end-to-end bench shares: the scale knob, the machine line, running a host as a child
 * process under /usr/bin/time (its wall time, CPU seconds and peak RSS come from the kernel's rusage
 * of that child, not from sampling), and the simulator's own CPU time (it runs in the bench process).
 */
import { execFile, spawn } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  promises as fsp,
  readdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  statSync,
  writeSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { machineBusySeconds, sampleThreadCpu, threadCpuWanted } from './thread-cpu';

export const ROOT = path.join(__dirname, '..', '..');
/** MOORING_BENCH_BIN: another build's bin/mooring.js (before/after comparisons of one change). */
export const MOORING_BIN = process.env.MOORING_BENCH_BIN ?? path.join(ROOT, 'bin', 'mooring.js');
export const TIME_BIN = '/usr/bin/time';

/** BENCH_SCALE=0.1 shrinks every size and count (quick runs); 1 is what the issue asks for. */
export function benchScale(): number {
  const raw = process.env.BENCH_SCALE ?? '1';
  const s = Number(raw);
  if (!Number.isFinite(s) || s <= 0 || s > 4) {
    throw new Error(`BENCH_SCALE must be a number in (0, 4], got "${raw}"`);
  }
  return s;
}

export function scaled(n: number, min = 1): number {
  return Math.max(min, Math.round(n * benchScale()));
}

/** The machine's CPU time so far, and the part a hypervisor took (Linux /proc/stat "steal"). */
function cpuTicks(): { total: number; steal: number } | undefined {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/);
    // cpu user nice system idle iowait irq softirq steal ...
    const n = f.slice(1, 9).map(Number);
    if (f[0] !== 'cpu' || n.length < 8 || n.some((x) => !Number.isFinite(x))) return undefined;
    return { total: n.reduce((a, b) => a + b, 0), steal: n[7]! };
  } catch {
    return undefined;
  }
}

let ticksSince = cpuTicks();

export function header(title: string): void {
  ticksSince = cpuTicks();
  const cpus = os.cpus();
  console.log(`${title} — ${new Date().toISOString()}`);
  console.log(
    `node ${process.version}, ${cpus.length} × ${cpus[0]?.model ?? 'cpu'}, ` +
      `${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, load ${os
        .loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}, BENCH_SCALE=${benchScale()}`,
  );
}

/**
 * Printed at the end: other work on the machine during the run shows here, and on a virtual
 * machine the CPU time its host took back (steal) since the header or the last footer: at 25–50 %
 * every figure is slower (BENCHMARKS, nineteenth pass).
 */
export function footer(): void {
  const now = cpuTicks();
  const stolen =
    now && ticksSince && now.total > ticksSince.total
      ? `; CPU taken by the hypervisor: ${(
          (100 * (now.steal - ticksSince.steal)) /
          (now.total - ticksSince.total)
        ).toFixed(0)} %`
      : '';
  ticksSince = now;
  console.log(
    `  (load average at the end: ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}${stolen})`,
  );
}

/** The compiled CLI is what users run: refuse to measure a dist/ older than src/. */
export function checkBuild(): void {
  if (process.env.MOORING_BENCH_BIN) {
    console.log(`  measuring ${process.env.MOORING_BENCH_BIN} (MOORING_BENCH_BIN)`);
    return;
  }
  const main = path.join(ROOT, 'dist', 'cli', 'main.js');
  if (!existsSync(main)) throw new Error('dist/ is missing: run `npm run build` first');
  const built = statSync(main).mtimeMs;
  const newer: string[] = [];
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (p.endsWith('.ts') && statSync(p).mtimeMs > built) newer.push(p);
    }
  };
  walk(path.join(ROOT, 'src'));
  if (newer.length > 0) {
    console.log(
      `  note: ${newer.length} source file(s) are newer than dist/ (e.g. ${path.relative(ROOT, newer[0]!)}); ` +
        'run `npm run build` to measure the current code',
    );
  }
}

export interface ChildRun {
  code: number;
  stdout: string;
  stderr: string;
  wallSeconds: number;
  userSeconds: number;
  sysSeconds: number;
  /** Peak resident set (ru_maxrss) of the child, MiB. */
  maxRssMiB: number;
  /** CPU seconds the simulator (this process) spent meanwhile. */
  simCpuSeconds: number;
  /** With BENCH_THREADS=1 (Linux): each thread's CPU seconds, largest first (lib/thread-cpu). */
  threadSeconds?: number[];
  /**
   * Linux: the whole machine's busy CPU seconds during the run, every process and kernel thread
   * included (lib/thread-cpu, machineBusySeconds).
   */
  machineBusySeconds?: number;
}

/** Runs `cmd args` under /usr/bin/time; the child's own rusage gives CPU and peak RSS. */
export async function timedChild(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<ChildRun> {
  if (!existsSync(TIME_BIN)) throw new Error(`${TIME_BIN} is needed (apt-get install time)`);
  const tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'mooring-bench-time-'));
  const out = path.join(tmp, 'rusage');
  const cpu0 = process.cpuUsage();
  const busy0 = machineBusySeconds();
  const t0 = process.hrtime.bigint();
  // The host's output goes to files, read once it has ended: taking it through pipes cost this
  // process CPU while the host ran, taken from the two cores it shares with us (twenty-first pass).
  const outFile = path.join(tmp, 'stdout');
  const errFile = path.join(tmp, 'stderr');
  const outFd = openSync(outFile, 'w');
  const errFd = openSync(errFile, 'w');
  let child;
  try {
    child = spawn(TIME_BIN, ['-f', '%e %U %S %M', '-o', out, cmd, ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', outFd, errFd],
    });
  } finally {
    closeSync(outFd);
    closeSync(errFd);
  }
  const threads = threadCpuWanted() && child.pid !== undefined ? sampleThreadCpu(child.pid) : null;
  const code = await new Promise<number>((resolve) =>
    child.on('exit', (c, sig) => resolve(c ?? (sig ? 128 : 1))),
  );
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const busy1 = machineBusySeconds();
  const threadSeconds = threads?.();
  const cpu = process.cpuUsage(cpu0);
  const line = (await fsp.readFile(out, 'utf8')).trim().split('\n').pop() ?? '';
  // Only the tail is kept: progress output can be long (idevicebackup2 prints ~4 MB for 50,000 files).
  const stdout = (await fsp.readFile(outFile, 'utf8')).slice(-256 * 1024);
  const stderr = (await fsp.readFile(errFile, 'utf8')).slice(-64 * 1024);
  await fsp.rm(tmp, { recursive: true, force: true });
  // %e is ignored: our own clock has better than its 10 ms resolution.
  const [, u, s, m] = line.split(' ').map(Number);
  return {
    code,
    stdout,
    stderr,
    wallSeconds: wall,
    userSeconds: u ?? NaN,
    sysSeconds: s ?? NaN,
    maxRssMiB: (m ?? NaN) / 1024,
    simCpuSeconds: (cpu.user + cpu.system) / 1e6,
    ...(threadSeconds ? { threadSeconds } : {}),
    ...(busy0 !== undefined && busy1 !== undefined ? { machineBusySeconds: busy1 - busy0 } : {}),
  };
}

const run = promisify(execFile);

/** Flushes dirty pages so one run's writes are not paid by the next. */
export async function syncDisks(): Promise<void> {
  await run('sync', []);
}

export function mb(bytes: number): string {
  return (bytes / 1e6).toFixed(bytes >= 1e8 ? 0 : 1);
}

export function pad(s: string, n: number): string {
  return s.length >= n ? s : s + ' '.repeat(n - s.length);
}

export function lpad(s: string, n: number): string {
  return s.length >= n ? s : ' '.repeat(n - s.length) + s;
}

/**
 * A bench's working folder, under BENCH_DIR (default: the system's temp folder). Backups go there,
 * so that disk's state is part of every figure: see probeFileCreation.
 */
export async function benchWorkDir(prefix: string): Promise<string> {
  const parent = process.env.BENCH_DIR ?? os.tmpdir();
  await fsp.mkdir(parent, { recursive: true });
  return fsp.mkdtemp(path.join(parent, prefix));
}

const PROBE_FILES = 2000;

/** A mount point as /proc/self/mountinfo writes it: space, tab, newline and \\ as octal escapes. */
function unescapeMountField(f: string): string {
  return f.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/**
 * The file system `dir` is on (Linux): its type, its device, and for ext4 whether it has a journal.
 * Without one (these build machines' own disks), creating a file skips every recently deleted
 * inode nearby, one inode-table read each (`recently_deleted`, done only when there is no journal:
 * Linux fs/ext4/ialloc.c, find_inode_bit), so a small-file figure there depends on what earlier
 * runs deleted. A user's ext4 has a journal; bench/scratch-ext4.sh makes one to run the benches on.
 */
export function describeFileSystem(dir: string): string {
  let info: string;
  try {
    info = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return 'unknown (no /proc/self/mountinfo: not Linux)';
  }
  const real = realpathSync(dir);
  let best:
    { point: string; device: string; type: string; source: string; options: string } | undefined;
  for (const line of info.split('\n')) {
    // id parent major:minor root mount-point options [optional fields…] - type source super-options
    const [left, right] = line.split(' - ');
    if (left === undefined || right === undefined) continue;
    const f = left.split(' ');
    const [type, source, superOptions] = right.split(' ');
    const point = unescapeMountField(f[4] ?? '');
    const inside = real === point || real.startsWith(point === '/' ? '/' : `${point}/`);
    // The longest mount point holding dir; of equal ones the last, which is mounted over the others.
    if (!inside || (best !== undefined && point.length < best.point.length)) continue;
    best = {
      point,
      device: f[2] ?? '',
      type: type ?? '?',
      source: source ?? '?',
      options: [...new Set(`${f[5]},${superOptions}`.split(','))].join(','),
    };
  }
  if (best === undefined) return 'unknown (no mount holds it)';
  let journal = '';
  if (best.type === 'ext4') {
    // jbd2 lists each journal as <kernel device name>-<journal inode>, 8 being ext4's internal one;
    // the kernel's name (vda, dm-0, nvme0n1p2) is what /sys/dev/block/<major:minor> links to.
    try {
      const name = path.basename(readlinkSync(`/sys/dev/block/${best.device}`));
      journal = existsSync(`/proc/fs/jbd2/${name}-8`) ? ', with a journal' : ', without a journal';
    } catch {
      journal = ', journal unknown';
    }
  }
  return `${best.type} on ${best.source} at ${best.point}${journal} (${best.options})`;
}

/**
 * Prints what creating a small file costs in `dir` right now. On ext4 without a journal (these
 * machines) it is several times more for minutes after many files nearby were deleted (the
 * kernel skips recently freed inodes one by one: `recently_deleted` in perf), which moves every
 * small-file figure: docs/BENCHMARKS.md, eleventh pass. The probe's files stay until the bench
 * removes `dir`, so the probe itself frees nothing.
 */
export function probeFileCreation(dir: string): void {
  const root = path.join(dir, 'creation-probe');
  const data = Buffer.alloc(8192, 1);
  for (let b = 0; b < 16; b++) mkdirSync(path.join(root, b.toString(16)), { recursive: true });
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < PROBE_FILES; i++) {
    const fd = openSync(path.join(root, (i % 16).toString(16), `f${i}`), 'wx');
    writeSync(fd, data);
    closeSync(fd);
  }
  const us = Number(process.hrtime.bigint() - t0) / 1e3 / PROBE_FILES;
  console.log(`  file system: ${describeFileSystem(dir)}`);
  console.log(
    `  creating a file of 8 KiB in ${dir}: ${us.toFixed(0)} µs (${PROBE_FILES} files; ` +
      `~20–50 µs on a quiet disk here)`,
  );
}

export async function freshDir(parent: string, name: string): Promise<string> {
  const d = path.join(parent, name);
  await fsp.rm(d, { recursive: true, force: true });
  await fsp.mkdir(d, { recursive: true });
  return d;
}

export async function du(dir: string): Promise<number> {
  const { stdout } = await run('du', ['-sb', dir]);
  return Number(stdout.split('\t')[0]);
}

/** `mooring backup --json` of one device into `dest`, timed (the compiled CLI, as users run it). */
export function timedMooringBackup(o: {
  udid: string;
  via: 'usb' | 'wifi';
  /** How to reach it: ['--usbmuxd', ADDR] or ['--host', HOST:PORT]. */
  reach: string[];
  dataDir: string;
  dest: string;
  full?: boolean;
}): Promise<ChildRun> {
  return timedChild(
    process.execPath,
    [
      MOORING_BIN,
      'backup',
      '--udid',
      o.udid,
      '--via',
      o.via,
      ...o.reach,
      '--data',
      o.dataDir,
      '--dest',
      o.dest,
      ...(o.full === true ? ['--full'] : []),
      '--json',
    ],
    // The job thread's garbage collections, on stderr (job/gc-count): see jobGc.
    { MOORING_GC_STATS: '1' },
  );
}

/**
 * What `mooring backup` said of its job thread's garbage collections, e.g. "3 full (14 ms), 70
 * young (40 ms)"; a run of full collections is the small-heap trap of docs/BENCHMARKS.md (tenth
 * pass). Undefined when the job ran in-process.
 */
export function jobGc(run: ChildRun): string | undefined {
  return /the backup's thread collected garbage: ([^\n]+)/.exec(run.stderr)?.[1];
}

/** The agent's first stdout line: a one-time browser sign-in link (the token is in agent.json). */
export const LOGIN_LINE = /Mooring agent: (http:\/\/[^/\s]+)\/login\?code=[A-Za-z0-9_-]+/;
