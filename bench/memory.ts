/**
 * Issue 6, benchmark 3: peak resident memory of `mooring backup` (the compiled CLI, full backup over
 * simulated USB) for a 1 GB and a 4 GB device of the same shape (4 MB average files), and for a
 * device whose data is essentially one 2 GB file, and for 300,000 small files (2 KB on average: a
 * phone's count of files, where what is kept per file shows). The peak is the kernel's ru_maxrss of
 * the process (VmHWM at exit), read by /usr/bin/time.
 *
 *   BENCH_SCALE=0.1 node --import tsx bench/memory.ts
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { startSim } from '../src/sim/index';
import { planTree } from '../src/sim/content/plan';
import { MAX_CONTENT_FILES } from '../src/sim/content/store';
import { pairWithIdevicepair } from '../test/helpers/real-tools';
import {
  checkBuild,
  footer,
  header,
  mb,
  scaled,
  syncDisks,
  jobGc,
  timedMooringBackup,
  benchWorkDir,
  probeFileCreation,
} from './lib/measure';

const SEED = 9;

/** The fixed small files (databases, preferences) every simulated device has first. */
function fixedFileCount(): number {
  return planTree(SEED, 1000).files.filter((f) => f.weight === 0).length;
}

async function measure(name: string, files: number, bytes: number): Promise<number> {
  const tmp = await benchWorkDir('mooring-bench-mem-');
  const sim = await startSim({ stateDir: path.join(tmp, 'sim'), files, bytes, seed: SEED });
  try {
    const l = (await sim.ctl('listing')) as {
      files: number;
      bytes: number;
      entries: Array<{ size: number }>;
    };
    const largest = l.entries.reduce((m, e) => Math.max(m, e.size), 0);
    await pairWithIdevicepair(sim.usbmuxdAddress, sim.udid);
    probeFileCreation(tmp);
    await syncDisks();
    const run = await timedMooringBackup({
      udid: sim.udid,
      via: 'usb',
      reach: ['--usbmuxd', sim.usbmuxdAddress],
      dataDir: path.join(tmp, 'data'),
      dest: path.join(tmp, 'dest'),
      full: true,
    });
    if (run.code !== 0)
      throw new Error(
        `mooring backup failed:\n${run.stdout.slice(-2000)}\n${run.stderr.slice(-2000)}`,
      );
    console.log(
      `  ${name.padEnd(18)} ${String(l.files).padStart(7)} files, ${mb(l.bytes).padStart(5)} MB (largest file ${mb(largest)} MB): ` +
        `peak RSS ${run.maxRssMiB.toFixed(0)} MiB, ${run.wallSeconds.toFixed(1)} s, ` +
        `${(l.bytes / 1e6 / run.wallSeconds).toFixed(0)} MB/s` +
        (jobGc(run) ? `; job thread GC: ${jobGc(run)}` : ''),
    );
    return run.maxRssMiB;
  } finally {
    await sim.stop();
    await fsp.rm(tmp, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  header('Mooring backup memory (issue 6 §3)');
  checkBuild();
  const small = await measure('1 GB backup', scaled(250, 20), scaled(1e9, 1e6));
  const large = await measure('4 GB backup', scaled(1000, 80), scaled(4e9, 4e6));
  await measure('one 2 GB file', fixedFileCount() + 1, scaled(2e9, 2e6));
  // The simulator holds at most MAX_CONTENT_FILES (500,000); it takes ~2 minutes to make these.
  const many = Math.min(MAX_CONTENT_FILES, scaled(300_000, 3000));
  await measure('300,000 files', many, many * 2000);
  // Run to run noise of the same backup, to judge the growth against.
  const again = await measure('1 GB backup again', scaled(250, 20), scaled(1e9, 1e6));
  const low = Math.min(small, again);
  console.log(
    `  growth from 1 GB to 4 GB: ${(large - low).toFixed(0)} MiB (${(((large - low) / low) * 100).toFixed(1)} %); ` +
      `the same 1 GB backup twice differs by ${Math.abs(small - again).toFixed(0)} MiB`,
  );
  footer();
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
