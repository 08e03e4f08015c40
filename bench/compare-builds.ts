/**
 * Before/after of one change on a loaded machine: the same simulated device backed up by two
 * (or more) compiled builds of Mooring, alternately and back to back, so that the load other work
 * puts on the machine falls on both alike. Per build and round: a full `mooring backup` of a
 * many-small-files device, an incremental after 1 % of the files changed, then through that
 * build's own compiled store API a snapshot creation (staging + commit) and a verify of the latest.
 * Compare the ratios, not the absolute figures.
 *
 *   BUILDS=before:/tmp/b/bin/mooring.js,after:bin/mooring.js BENCH_SCALE=0.2 ROUNDS=2 \
 *     node --import tsx bench/compare-builds.ts
 *
 * Each bin/mooring.js must sit beside its own dist/ (bin/load.js loads ../dist).
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { startSim } from '../src/sim/index';
import { pairWithIdevicepair } from '../test/helpers/real-tools';
import {
  footer,
  header,
  scaled,
  syncDisks,
  timedChild,
  type ChildRun,
  benchWorkDir,
} from './lib/measure';

interface Build {
  name: string;
  bin: string;
  /** The build's compiled store module (openStore), loaded from its own dist/. */
  store: {
    openStore(
      dest: string,
      udid: string,
    ): Promise<{
      beginStaging(): Promise<{ commit(): Promise<unknown> }>;
      verify(t?: string, o?: { hash?: boolean }): Promise<{ ok: boolean; hashed: number }>;
    }>;
  };
}

function builds(): Build[] {
  const raw = process.env.BUILDS ?? `current:${path.join(__dirname, '..', 'bin', 'mooring.js')}`;
  return raw.split(',').map((spec) => {
    const i = spec.indexOf(':');
    const bin = path.resolve(spec.slice(i + 1));
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const store = require(path.join(path.dirname(bin), '..', 'dist', 'store')) as Build['store'];
    return { name: spec.slice(0, i), bin, store };
  });
}

/** Node flags for the backup children, e.g. BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/p". */
const nodeArgs = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');

/** Wall and CPU seconds of an in-process step (the CPU figure is what load does not inflate). */
const seconds = async (fn: () => Promise<unknown>): Promise<string> => {
  const t = process.hrtime.bigint();
  const c = process.cpuUsage();
  await fn();
  const cpu = process.cpuUsage(c);
  return `${(Number(process.hrtime.bigint() - t) / 1e9).toFixed(2)} s (CPU ${((cpu.user + cpu.system) / 1e6).toFixed(2)} s)`;
};

async function main(): Promise<void> {
  header('Mooring build comparison (issue 6)');
  const all = builds();
  const rounds = Number(process.env.ROUNDS ?? '2');
  // SHAPE=large: the few-large-files shape of backup-throughput.ts instead of the small files.
  const large = process.env.SHAPE === 'large';
  const files = large ? scaled(500, 20) : scaled(50_000, 500);
  const bytes = large ? scaled(2e9, 2e7) : scaled(4e8, 4e6);
  const tmp = await benchWorkDir('mooring-bench-cmp-');
  const sim = await startSim({ stateDir: path.join(tmp, 'sim'), files, bytes, seed: 11 });
  try {
    await pairWithIdevicepair(sim.usbmuxdAddress, sim.udid);
    console.log(
      `device: ${files} files, ${(bytes / 1e6).toFixed(0)} MB; builds: ${all.map((b) => b.name).join(', ')}`,
    );
    const backup = async (b: Build, dest: string, full: boolean): Promise<ChildRun> => {
      await syncDisks();
      const run = await timedChild(process.execPath, [
        ...nodeArgs,
        b.bin,
        'backup',
        '--udid',
        sim.udid,
        '--via',
        'usb',
        '--usbmuxd',
        sim.usbmuxdAddress,
        '--data',
        path.join(tmp, `data-${b.name}`),
        '--dest',
        dest,
        ...(full ? ['--full'] : []),
        '--json',
      ]);
      const last = run.stdout.trim().split('\n').pop() ?? '';
      if (run.code !== 0 || !last.includes('"ok":true'))
        throw new Error(
          `${b.name}: mooring backup failed\n${run.stdout.slice(-1500)}\n${run.stderr}`,
        );
      return run;
    };
    const cpu = (r: ChildRun): string => (r.userSeconds + r.sysSeconds).toFixed(2);
    for (let round = 1; round <= rounds; round++) {
      for (const b of all) {
        const dest = path.join(tmp, `dest-${b.name}`);
        await fsp.rm(dest, { recursive: true, force: true });
        const full = await backup(b, dest, true);
        await sim.ctl('mutate', { modify: Math.max(1, Math.round(files / 100)) });
        const inc = await backup(b, dest, false);
        const store = await b.store.openStore(dest, sim.udid);
        await syncDisks();
        const snap = await seconds(async () => (await store.beginStaging()).commit());
        const verify = await seconds(() => store.verify('latest'));
        console.log(
          `  round ${round} ${b.name.padEnd(8)} full ${full.wallSeconds.toFixed(2)} s (CPU ${cpu(full)} s, RSS ${full.maxRssMiB.toFixed(0)} MiB)` +
            ` | incremental ${inc.wallSeconds.toFixed(2)} s (CPU ${cpu(inc)} s) = ${((inc.wallSeconds / full.wallSeconds) * 100).toFixed(1)} %` +
            ` | snapshot creation ${snap} | full verify ${verify}`,
        );
        await fsp.rm(dest, { recursive: true, force: true });
      }
    }
    footer();
  } finally {
    await sim.stop();
    await fsp.rm(tmp, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
