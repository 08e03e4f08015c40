/**
 * Issue 6, benchmark 1: full backup throughput of one simulated device state, three ways in one
 * run — `mooring backup` (the compiled CLI), Debian's `idevicebackup2 backup --full`, and the raw
 * sink (bench/raw-sink.ts: our protocol layers, every byte discarded; the ceiling) — for two shapes
 * (few large files, many small ones) over simulated USB (the simulator's usbmuxd) and Wi-Fi (direct
 * TCP + TLS to the simulator's lockdownd). idevicebackup2 reaches devices only through usbmuxd, so
 * it is compared on USB only.
 *
 * Each host is its own process under /usr/bin/time: wall time, CPU seconds and peak RSS are that
 * process's. The simulator runs in this process; its CPU time over each run is printed too, and the
 * raw sink's speed shows whether the simulator could be the limit.
 *
 *   BENCH_SCALE=0.1 node --import tsx bench/backup-throughput.ts   (quick run: a tenth of the sizes)
 *   BENCH_ROUNDS=3 …   (each host that many times, in rotating order; figures are the median run,
 *                        with the spread: on two shared cores single runs vary by ±20 %)
 *   BENCH_THREADS=1 …  (Linux: also each host's CPU seconds by thread, bench/lib/thread-cpu)
 *
 * On Linux each row also says how busy the whole machine was (every process and kernel thread)
 * and the shortest wall time that much CPU allows on its cores: where a host sits near that line,
 * it is bound by the CPU it takes, not by waiting.
 */
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startSim, type RunningSim } from '../src/sim/index';
import { pairWithIdevicepair } from '../test/helpers/real-tools';
import {
  ROOT,
  checkBuild,
  footer,
  freshDir,
  header,
  lpad,
  mb,
  pad,
  scaled,
  syncDisks,
  timedChild,
  type ChildRun,
  jobGc,
  timedMooringBackup,
  benchWorkDir,
  probeFileCreation,
} from './lib/measure';
import { formatThreadCpu } from './lib/thread-cpu';

type HostName = 'raw sink' | 'mooring backup' | 'idevicebackup2';
type Transport = 'USB' | 'Wi-Fi';

interface Row {
  transport: Transport;
  host: HostName;
  run: ChildRun;
  bytes: number;
  files: number;
  /** mooring: the engine's own transfer time (before verify + commit); raw sink: its session. */
  engineSeconds?: number;
  /** With several rounds: the wall-time range of this host's runs. */
  spread?: string;
}

function benchRounds(): number {
  const n = Number(process.env.BENCH_ROUNDS ?? '1');
  if (!Number.isInteger(n) || n < 1 || n > 20) throw new Error('BENCH_ROUNDS must be 1–20');
  return n;
}

/** The run with the median wall time (the lower middle one for an even count). */
function medianRow(runs: Row[]): Row {
  const sorted = [...runs].sort((a, b) => a.run.wallSeconds - b.run.wallSeconds);
  return { ...sorted[Math.floor((sorted.length - 1) / 2)]! };
}

interface Shape {
  name: string;
  files: number;
  bytes: number;
}

export function shapes(): Shape[] {
  return [
    { name: 'few large files', files: scaled(500, 20), bytes: scaled(2e9, 1e6) },
    { name: 'many small files', files: scaled(50_000, 200), bytes: scaled(4e8, 1e6) },
  ];
}

/** The payload the device uploaded in its last backup (same for every host). */
function lastFinished(log: Array<Record<string, unknown>>): { files: number; bytes: number } {
  const f = log.filter((l) => l.event === 'mobilebackup2.finished').pop();
  if (!f) throw new Error('the simulator logged no finished backup');
  return { files: Number(f.files), bytes: Number(f.bytes) };
}

function fail(what: string, r: ChildRun): never {
  throw new Error(
    `${what} failed (exit ${r.code}):\n${r.stdout.slice(-2000)}\n${r.stderr.slice(-2000)}`,
  );
}

async function runHost(
  sim: RunningSim,
  log: Array<Record<string, unknown>>,
  host: HostName,
  transport: Transport,
  work: string,
  round: number,
): Promise<Row> {
  // One folder per run (and round), all removed with the shape. Deleting tens of thousands of
  // files right before a run made creating the next ones several times slower (ext4 without a
  // journal, as on the CI machines, skips inodes freed in the last minutes and reads each one's
  // inode block to find out: recently_deleted in `perf`), a cost that fell on whichever host ran
  // next (probeFileCreation).
  const dest = await freshDir(
    work,
    `dest-${transport}-${host}-${round}`.replace(/[^A-Za-z0-9-]/g, '_'),
  );
  await syncDisks();
  log.length = 0;
  const via =
    transport === 'USB'
      ? ['--usbmuxd', sim.usbmuxdAddress]
      : ['--usbmuxd', sim.usbmuxdAddress, '--host', sim.wifiAddress!];
  let run: ChildRun;
  let engineSeconds: number | undefined;
  if (host === 'raw sink') {
    run = await timedChild(process.execPath, [
      '--import',
      'tsx',
      path.join(ROOT, 'bench', 'raw-sink.ts'),
      '--udid',
      sim.udid,
      ...via,
    ]);
    if (run.code !== 0) fail('raw sink', run);
    try {
      engineSeconds = (JSON.parse(run.stdout.trim()) as { seconds: number }).seconds;
    } catch {
      fail('raw sink (no result line)', run);
    }
  } else if (host === 'mooring backup') {
    run = await timedMooringBackup({
      udid: sim.udid,
      via: transport === 'USB' ? 'usb' : 'wifi',
      reach: via,
      dataDir: path.join(work, 'data'),
      dest,
      full: true,
    });
    const last = run.stdout.trim().split('\n').pop() ?? '';
    let result: { type?: string; ok?: boolean; durationMs?: number } = {};
    try {
      result = JSON.parse(last) as typeof result;
    } catch {
      // reported below
    }
    if (run.code !== 0 || result.type !== 'result' || result.ok !== true) fail('mooring', run);
    engineSeconds = (result.durationMs ?? NaN) / 1000;
  } else {
    run = await timedChild('idevicebackup2', ['-u', sim.udid, 'backup', '--full', dest], {
      USBMUXD_SOCKET_ADDRESS: sim.usbmuxdAddress,
    });
    if (run.code !== 0 || !/Backup Successful/.test(run.stdout + run.stderr))
      fail('idevicebackup2', run);
  }
  const { files, bytes } = lastFinished(log);
  return {
    transport,
    host,
    run,
    bytes,
    files,
    ...(engineSeconds === undefined ? {} : { engineSeconds }),
  };
}

function printRows(rows: Row[]): void {
  console.log(
    `  ${pad('transport', 9)} ${pad('host', 15)} ${lpad('wall s', 7)} ${lpad('MB/s', 7)} ${lpad('files/s', 8)} ` +
      `${lpad('CPU s', 6)} ${lpad('sim CPU s', 9)} ${lpad('peak RSS', 9)}  ratios`,
  );
  for (const r of rows) {
    const s = r.run.wallSeconds;
    const cpu = r.run.userSeconds + r.run.sysSeconds;
    const same = (h: HostName): Row | undefined =>
      rows.find((x) => x.transport === r.transport && x.host === h);
    const ratios: string[] = [];
    const idb = same('idevicebackup2');
    const raw = same('raw sink');
    if (r.host !== 'idevicebackup2' && idb)
      ratios.push(`${(idb.run.wallSeconds / s).toFixed(2)}× idevicebackup2`);
    if (r.host !== 'raw sink' && raw)
      ratios.push(`${(raw.run.wallSeconds / s).toFixed(2)}× raw sink`);
    console.log(
      `  ${pad(r.transport, 9)} ${pad(r.host, 15)} ${lpad(s.toFixed(2), 7)} ${lpad((r.bytes / 1e6 / s).toFixed(1), 7)} ` +
        `${lpad((r.files / s).toFixed(0), 8)} ${lpad(cpu.toFixed(2), 6)} ${lpad(r.run.simCpuSeconds.toFixed(2), 9)} ` +
        `${lpad(r.run.maxRssMiB.toFixed(0) + ' MiB', 9)}  ${ratios.join(', ')}${r.spread ? `  ${r.spread}` : ''}`,
    );
    if (r.engineSeconds !== undefined) {
      const what = r.host === 'raw sink' ? 'session alone' : 'engine alone';
      const rest = r.host === 'raw sink' ? 'start-up' : 'verify + commit + start-up';
      const gc = jobGc(r.run);
      console.log(
        `  ${pad('', 9)} ${pad('', 15)} ${what} ${r.engineSeconds.toFixed(2)} s = ` +
          `${(r.bytes / 1e6 / r.engineSeconds).toFixed(1)} MB/s, ${(r.files / r.engineSeconds).toFixed(0)} files/s; ` +
          `${rest} ${(s - r.engineSeconds).toFixed(2)} s${gc ? `; job thread GC: ${gc}` : ''}`,
      );
    }
    const machine = machineLine(r, raw);
    if (machine) console.log(`  ${pad('', 9)} ${pad('', 15)} ${machine}`);
    if (r.run.threadSeconds) {
      console.log(
        `  ${pad('', 9)} ${pad('', 15)} CPU s by thread: ${formatThreadCpu(r.run.threadSeconds)}`,
      );
    }
  }
  for (const t of ['USB', 'Wi-Fi'] as const) {
    const raw = rows.find((x) => x.transport === t && x.host === 'raw sink');
    if (!raw) continue;
    const busy = raw.run.simCpuSeconds / raw.run.wallSeconds;
    console.log(
      `  simulator feeding the ${t} raw sink: ${(busy * 100).toFixed(0)} % of one core busy ` +
        `(${busy > 0.85 ? 'the simulator is near its limit: the raw sink figure is a floor of the ceiling' : 'not saturated'})`,
    );
  }
  if (!rows.some((r) => r.transport === 'Wi-Fi' && r.host === 'idevicebackup2')) {
    console.log(
      '  Wi-Fi idevicebackup2: not measured — it reaches devices only through usbmuxd, which has no ' +
        'direct-TCP mode to the simulator',
    );
  }
}

/**
 * How busy the whole machine was during the run, and the bound that sets: a run that keeps its
 * cores this busy takes at least its busy core-seconds over the core count, however well its
 * threads overlap; against the raw sink, the best ratio this much CPU allows (thirty-second pass).
 */
function machineLine(r: Row, raw: Row | undefined): string | undefined {
  const busy = r.run.machineBusySeconds;
  if (busy === undefined) return undefined;
  const cores = os.availableParallelism();
  const floor = busy / cores;
  const share = busy / (cores * r.run.wallSeconds);
  const best =
    r.host !== 'raw sink' && raw
      ? `, at best ${(raw.run.wallSeconds / floor).toFixed(2)}× raw sink`
      : '';
  return (
    `machine: ${busy.toFixed(2)} core-s busy, ${(share * 100).toFixed(0)} % of ${cores} cores; ` +
    `with every core busy ≥ ${floor.toFixed(2)} s${best}`
  );
}

async function benchShape(shape: Shape, tmp: string): Promise<void> {
  const log: Array<Record<string, unknown>> = [];
  const t0 = Date.now();
  const sim = await startSim({
    stateDir: path.join(tmp, 'sim'),
    files: shape.files,
    bytes: shape.bytes,
    seed: 6,
    wifi: '127.0.0.1',
    wifiPort: 0,
    log: (line) => {
      const e = JSON.parse(line) as Record<string, unknown>;
      if (e.event === 'mobilebackup2.finished') log.push(e);
    },
  });
  try {
    const gen = (Date.now() - t0) / 1000;
    const listing = (await sim.ctl('listing')) as { files: number; bytes: number };
    console.log(
      `${shape.name}: ${listing.files} files, ${mb(listing.bytes)} MB ` +
        `(average ${(listing.bytes / listing.files / 1024).toFixed(0)} KiB; simulator content generated in ${gen.toFixed(1)} s)`,
    );
    await pairWithIdevicepair(sim.usbmuxdAddress, sim.udid);
    const work = path.join(tmp, 'work');
    probeFileCreation(tmp);
    const rows: Row[] = [];
    const plan: Array<[Transport, HostName]> = [
      ['USB', 'raw sink'],
      ['USB', 'mooring backup'],
      ['USB', 'idevicebackup2'],
      ['Wi-Fi', 'raw sink'],
      ['Wi-Fi', 'mooring backup'],
    ];
    const rounds = benchRounds();
    const all: Row[] = [];
    for (let round = 0; round < rounds; round++) {
      // Rotate the order so no host always runs right after the same other one.
      const order = plan.map((_, i) => plan[(i + round) % plan.length]!);
      for (const [t, h] of order) all.push(await runHost(sim, log, h, t, work, round));
    }
    if (rounds > 1) {
      console.log(
        `  ${rounds} rounds; each row is the median run of its host, spread in [min–max] wall s`,
      );
      for (const [t, h] of plan) {
        const runs = all.filter((r) => r.transport === t && r.host === h);
        const med = medianRow(runs);
        const walls = runs.map((r) => r.run.wallSeconds);
        med.spread = `[${Math.min(...walls).toFixed(2)}–${Math.max(...walls).toFixed(2)}]`;
        rows.push(med);
      }
    } else {
      rows.push(...all);
    }
    printRows(rows);
    footer();
  } finally {
    await sim.stop();
    await fsp.rm(tmp, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  header('Mooring full-backup throughput (issue 6 §1)');
  checkBuild();
  for (const shape of shapes()) {
    const tmp = await benchWorkDir('mooring-bench-tp-');
    await benchShape(shape, tmp);
  }
}

if (require.main === module) {
  main().catch((e: unknown) => {
    console.error(e);
    process.exit(1);
  });
}
