/**
 * Issue 3 acceptance, crash safety (part 2: after the device is done). `mooring backup` is killed
 * while finishing, while verifying, and right after each durable step of the commit — those emit
 * no events, so the CLI's test fault hook MOORING_CRASH_AT=commit:<step> makes the process SIGKILL
 * itself there (src/cli/commands/backup.ts). Before the commit journal is written, the previous
 * latest must come back unchanged; from the journal on (the point of no return), the new backup
 * must be the latest, whole and equal to the device. Also: the very first backup killed in its
 * commit, and a second crash during the recovery of the first. After every kill `mooring verify`
 * passes, no staging survives, and the next backup succeeds.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import {
  crashAt,
  printKillReports,
  exists,
  startCliSim,
  storePaths,
  type CliSim,
  type KillPoint,
  type KillReport,
} from './backup-fixture';

let cs: CliSim;
let dest: string;
const reports: KillReport[] = [];

before(async () => {
  cs = await startCliSim({ seed: 311, files: 60, bytes: 2_000_000 });
  dest = path.join(cs.tmp, 'dest');
});

after(async () => {
  printKillReports(reports);
  await cs?.close();
});

async function point(k: KillPoint): Promise<KillReport> {
  const r = await crashAt(cs, dest, k);
  reports.push(r);
  return r;
}

test('the very first backup, killed right after its commit journal, becomes the latest', async () => {
  const r = await point({
    name: 'first backup, commit:journal',
    crashAt: 'commit:journal',
    committed: true,
  });
  assert.match(r.landed, /commit journal present/);
});

test('SIGKILL while finishing (the device done, our clean-up under way)', async () => {
  const r = await point({
    name: 'finishing',
    onEvent: (e) => e.type === 'phase' && e.phase === 'finishing',
    committed: false,
  });
  assert.match(r.landed, /staging present/);
});

test('SIGKILL while verifying the staged backup', async () => {
  // Verification takes milliseconds: the kill lands in it or just after; either way the result
  // is the old latest or the new one, each whole.
  await point({
    name: 'verifying',
    onEvent: (e) => e.type === 'store' && /Verifying/.test(String(e.message)),
    committed: 'either',
  });
});

const steps = ['journal', 'moved-latest', 'moved-staged', 'metadata', 'staging-removed', 'cleared'];
for (const step of steps) {
  test(`SIGKILL right after commit step ${step}`, async () => {
    const r = await point({ name: `commit:${step}`, crashAt: `commit:${step}`, committed: true });
    if (step !== 'cleared') assert.match(r.landed, /commit journal present/);
  });
}

test('SIGKILL after moving the latest aside, in a full backup', async () => {
  const p = storePaths(dest, cs.sim.udid);
  await point({
    name: 'commit:moved-latest (full)',
    args: ['--full'],
    crashAt: 'commit:moved-latest',
    // The worst moment: there is no <dest>/<UDID> at all until recovery.
    afterKill: async () => assert.equal(await exists(p.latest), false),
    committed: true,
  });
});

test('a second crash, during the recovery of the first', async () => {
  const p = storePaths(dest, cs.sim.udid);
  await point({
    name: 'commit:moved-latest, then killed again recovering it (commit:moved-staged)',
    crashAt: 'commit:moved-latest',
    afterKill: async () => {
      // The next backup starts by rolling the journal forward, and dies in the middle of that.
      const again = await cs.mooring(['backup', '--dest', dest, '--json'], {
        env: { MOORING_CRASH_AT: 'commit:moved-staged' },
      });
      assert.equal(again.signal, 'SIGKILL', again.err);
      assert.equal(
        again.events.some((e) => e.type === 'phase'),
        false,
        'it died recovering, before starting a backup',
      );
      assert.equal(await exists(p.journal), true, 'the journal is still there to finish');
    },
    committed: true,
  });
});
