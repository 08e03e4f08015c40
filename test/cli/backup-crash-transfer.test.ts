/**
 * Issue 3 acceptance, crash safety (part 1: while talking to the device). `mooring backup` is
 * SIGKILLed from outside at points spread over every phase before the commit — connecting,
 * locking, preparing, at several points of the transfer, and after it — with the usbmuxd gate
 * holding the device's bytes so each kill lands where intended. After each: `mooring verify` passes
 * on a latest backup identical to the one before, no staging survives or becomes a snapshot, and the
 * next backup succeeds. Also: the very first backup killed (no latest to fall back on), and Ctrl-C
 * (SIGINT) mid-transfer: exit 130, staging gone at once, the attempt recorded.
 * (Part 2, test/cli/backup-crash-commit.test.ts: verification and every commit step.)
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import {
  crashAt,
  printKillReports,
  exists,
  fingerprint,
  readAttemptLines,
  startCliSim,
  storePaths,
  storeState,
  treeNames,
  verifyOk,
  type CliSim,
  type KillPoint,
  type KillReport,
} from './backup-fixture';

let cs: CliSim;
let dest: string;
/** Payload bytes of a full backup (the gate's byte points are fractions of it). */
let deviceBytes = 0;
const reports: KillReport[] = [];

before(async () => {
  cs = await startCliSim({ seed: 310, files: 60, bytes: 2_000_000 });
  dest = path.join(cs.tmp, 'dest');
  deviceBytes = (await cs.listing()).bytes;
});

after(async () => {
  printKillReports(reports);
  await cs?.close();
});

const phase =
  (name: string) =>
  (e: Record<string, unknown>): boolean =>
    e.type === 'phase' && e.phase === name;
const percentAtLeast =
  (pct: number) =>
  (e: Record<string, unknown>): boolean =>
    e.type === 'progress' && (e.percent as number) >= pct;

test('the very first backup, killed mid-transfer, leaves no backup at all', async () => {
  const r = await crashAt(cs, dest, {
    name: 'first backup, transfer 50%',
    afterBytes: Math.round(deviceBytes * 0.5),
    committed: false,
  });
  reports.push(r);
  assert.match(r.landed, /staging present/);
});

/** `fraction`: close the gate after that share of a full backup's bytes (known once started). */
const points: Array<KillPoint & { fraction?: number }> = [
  { name: 'connecting', onEvent: phase('connecting'), committed: false },
  { name: 'locking', onEvent: phase('locking'), committed: false },
  { name: 'preparing', onEvent: phase('preparing'), committed: false },
  {
    name: 'preparing: Info.plist staged, device still scanning',
    // The staged Info.plist starts as a link to the latest's; ours replaces it (a new inode).
    when: async (staging) => {
      const ids = await fsp.readdir(staging).catch(() => [] as string[]);
      if (ids.length !== 1) return false;
      const staged = await fsp.stat(path.join(staging, ids[0]!, cs.sim.udid, 'Info.plist'));
      const latest = await fsp.stat(path.join(dest, cs.sim.udid, 'Info.plist'));
      return staged.ino !== latest.ino;
    },
    arm: async () => {
      await cs.sim.ctl('fault', { name: 'delayFirstMessageMs', value: '20000' });
      return async () => {
        await cs.sim.ctl('fault', { name: 'delayFirstMessageMs', value: 'off' });
      };
    },
    committed: false,
  },
  { name: 'transferring: first message', onEvent: phase('transferring'), committed: false },
  ...[0.1, 0.35, 0.65, 0.9].map((f): KillPoint & { fraction: number } => ({
    name: `transferring: ${Math.round(f * 100)}% of the bytes (full)`,
    args: ['--full'],
    fraction: f,
    committed: false,
  })),
  {
    name: 'transferring: device at 90% (Manifest.db, Status.plist)',
    args: ['--full'],
    onEvent: percentAtLeast(90),
    committed: false,
  },
  {
    name: 'transferring: device at 96% (moves, removes)',
    onEvent: percentAtLeast(96),
    committed: false,
  },
  { name: 'transferring: device at 100%', onEvent: percentAtLeast(100), committed: false },
];

for (const k of points) {
  test(`SIGKILL at ${k.name}`, async () => {
    const r = await crashAt(
      cs,
      dest,
      k.fraction === undefined ? k : { ...k, afterBytes: Math.round(deviceBytes * k.fraction) },
    );
    reports.push(r);
    assert.match(r.landed, /staging present/, 'killed while a backup was staged');
  });
}

test('Ctrl-C (SIGINT) mid-transfer: exit 130, clean, latest intact, next backup fine', async () => {
  const udid = cs.sim.udid;
  const p = storePaths(dest, udid);
  const before = await storeState(dest, udid);
  const latestBefore = await fingerprint(p.latest);
  const attempts = (await readAttemptLines(dest, udid)).length;
  await cs.sim.ctl('mutate', { add: 1, modify: 2 });
  const held = cs.gate.holdAfter(Math.round(deviceBytes * 0.4));
  let child: import('node:child_process').ChildProcess | undefined;
  const run = cs.mooring(['backup', '--dest', dest, '--json', '--full'], {
    onEvent: (_e, c) => (child = c),
  });
  await Promise.race([held, run.then((r) => assert.fail(`ended early: ${r.err}`))]);
  assert.ok(child);
  child.kill('SIGINT');
  cs.gate.release(); // the device keeps sending while we stop
  const r = await run;
  assert.equal(r.code, 130, `${r.signal} ${r.err} ${r.out.slice(-600)}`);
  assert.equal(r.result?.ok, false);
  assert.equal(r.result?.failure, 'cancelled');
  assert.match(String(r.result?.message), /cancelled/);
  // Clean on its own: nothing for a later recovery to do.
  assert.deepEqual(await treeNames(p.staging), [], 'staging discarded by the process itself');
  assert.equal(await exists(p.lock), false, 'lock released');
  assert.equal(await exists(p.journal), false);
  const recorded = await readAttemptLines(dest, udid);
  assert.equal(recorded.length, attempts + 1);
  assert.equal(recorded[recorded.length - 1]!.failure, 'cancelled');
  assert.deepEqual(await storeState(dest, udid), before);
  assert.deepEqual(await fingerprint(p.latest), latestBefore);
  await verifyOk(cs, dest);
  const next = await cs.mooring(['backup', '--dest', dest, '--json']);
  assert.equal(next.code, 0, next.err);
  assert.equal(next.result?.ok, true);
});
