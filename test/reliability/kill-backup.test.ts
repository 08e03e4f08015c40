/**
 * Fault matrix: `mooring backup` (a real child process) SIGKILLed at a random point of every
 * phase — opening the store (lock taken; recovery done), staging (folder made; latest linked in),
 * transferring (a random byte offset, the usbmuxd gate holding the device there), verifying,
 * committing (a random durable commit step). After each kill (test/cli/backup-fixture.ts crashAt):
 * `mooring verify` passes on a latest that is exactly the previous one (or, past the commit's
 * point of no return, exactly the device), no staging or journal survives, the killed attempt is
 * not taken for a backup, and the next backup succeeds and equals the device.
 * The fixed points of every phase are in test/cli/backup-crash-*.test.ts; this file draws new
 * ones each run (a new seed each time, printed; by default two of the five phases, with
 * `RELIABILITY_RUNS=N` N points in every phase).
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import {
  crashAt,
  printKillReports,
  startCliSim,
  type CliSim,
  type KillPoint,
  type KillReport,
} from '../cli/backup-fixture';
import { FaultReport, prng, RUNS } from './report';

const report = new FaultReport('kill-backup');
const reports: KillReport[] = [];
let cs: CliSim;
let dest: string;
let deviceBytes = 0;
/** A new seed each run explores new points; `RELIABILITY_SEED=S` replays one. */
const seed = Number(process.env.RELIABILITY_SEED) || Date.now() % 1_000_000;
/** Phases killed per run by default (each kill costs three CLI runs); all five with RUNS > 1. */
const DEFAULT_PHASES = 2;
const random = prng(seed);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;

before(async () => {
  cs = await startCliSim({ seed: 721, files: 40, bytes: 1_500_000 });
  dest = path.join(cs.tmp, 'dest');
  deviceBytes = (await cs.listing()).bytes;
  const first = await cs.mooring(['backup', '--dest', dest, '--json']);
  assert.equal(first.code, 0, first.err);
});

after(async () => {
  printKillReports(reports);
  report.write();
  await cs?.close();
});

const COMMIT_STEPS = [
  'journal',
  'moved-latest',
  'moved-staged',
  'metadata',
  'staging-removed',
  'cleared',
];

/** One random kill point in each phase. */
function drawPoints(): Array<{ phase: string; k: KillPoint }> {
  const fraction = 0.05 + random() * 0.9;
  const commitStep = pick(COMMIT_STEPS);
  return [
    {
      phase: 'store open',
      k: { name: '', crashAt: `open:${pick(['locked', 'recovered'])}`, committed: false },
    },
    {
      phase: 'staging',
      k: { name: '', crashAt: `staging:${pick(['created', 'linked'])}`, committed: false },
    },
    {
      phase: 'transfer',
      k: {
        name: `${Math.round(fraction * 100)}% of the bytes`,
        args: ['--full'],
        afterBytes: Math.round(deviceBytes * fraction),
        committed: false,
      },
    },
    {
      phase: 'verify',
      k: {
        name: '',
        onEvent: (e) => e.type === 'store' && /Verifying/.test(String(e.message)),
        committed: 'either',
      },
    },
    { phase: 'commit', k: { name: '', crashAt: `commit:${commitStep}`, committed: true } },
  ];
}

test(`SIGKILL of mooring backup at a random point of every phase (seed ${seed})`, async () => {
  for (let run = 0; run < RUNS; run++) {
    const points = drawPoints();
    if (RUNS === 1)
      while (points.length > DEFAULT_PHASES) points.splice(Math.floor(random() * points.length), 1);
    for (const { phase, k } of points) {
      const name = `${phase}: ${k.crashAt ?? k.name ?? 'event'}`;
      const r = await report.trial('SIGKILL of mooring backup', `in ${phase}`, () =>
        crashAt(cs, dest, { ...k, name }),
      );
      reports.push(r);
      report.note(
        'SIGKILL of mooring backup',
        `in ${phase}`,
        `${k.crashAt ?? k.name}: ${r.landed}`,
      );
    }
  }
});
