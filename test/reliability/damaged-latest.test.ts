/**
 * Fault matrix: a latest backup damaged on disk (a payload removed, or cut short). Verification
 * finds it and marks the snapshot damaged (snapshots.json, `mooring snapshots`, the agent's API);
 * the next backup repairs it with a FULL backup into a new snapshot instead of inheriting the
 * damage; the damaged snapshot stays marked. Also without a verification in between: the next
 * incremental backup's staged copy does not verify, the latest is checked, marked, and repaired
 * by a full backup in the same job.
 */
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { SnapshotBrowser } from '../../src/agent/snapshot-browser';
import { openStore, verifyBackupFolder } from '../../src/store';
import { payloads, runMooring } from '../cli/backup-fixture';
import { FaultReport, prng, RUNS } from './report';
import { startRig, type Rig } from './rig';

const report = new FaultReport('damaged-latest');
let rig: Rig;
const random = prng(7001);

before(async () => {
  rig = await startRig({ seed: 701, files: 30, bytes: 800_000 });
  const first = await rig.backup(await rig.usb());
  assert.equal(first.ok, true, first.message);
});

after(async () => {
  report.write();
  await rig?.close();
});

/** Damages one payload of the latest backup: removes it, or cuts it to half its size. */
async function damageLatest(how: 'remove' | 'truncate'): Promise<string> {
  const dir = path.join(rig.dest, rig.sim.udid);
  const ids = [...(await payloads(dir)).keys()].sort();
  const sizes = await Promise.all(
    ids.map(async (id) => (await fsp.stat(path.join(dir, id.slice(0, 2), id))).size),
  );
  const candidates = ids.filter((_, i) => sizes[i]! > 1);
  const id = candidates[Math.floor(random() * candidates.length)]!;
  const file = path.join(dir, id.slice(0, 2), id);
  if (how === 'remove') await fsp.rm(file);
  else await fsp.truncate(file, Math.floor((await fsp.stat(file)).size / 2));
  return id;
}

async function latestId(): Promise<string> {
  const s = await openStore(rig.dest, rig.sim.udid);
  return (await s.list()).find((x) => x.isLatest)!.id;
}

for (const how of ['remove', 'truncate'] as const) {
  test(`a payload ${how}d from the latest: verify marks it, the next backup repairs it in full`, async () => {
    for (let run = 0; run < RUNS; run++) {
      await report.trial(
        'damaged latest backup',
        `payload ${how}d, then mooring verify`,
        async () => {
          await rig.sim.ctl('mutate', { add: 1, modify: 1 });
          const damagedId = await latestId();
          await damageLatest(how);
          const v = await runMooring(['verify', '--dest', rig.dest, '--udid', rig.sim.udid]);
          assert.equal(v.code, 1, v.out + v.err);
          assert.match(v.out, /DAMAGED/);
          assert.match(v.out, /: 1 problem\(s\)/, 'exactly the damaged file');
          assert.match(v.out, /next backup will be a full one/);
          const listed = await runMooring([
            'snapshots',
            '--dest',
            rig.dest,
            '--udid',
            rig.sim.udid,
          ]);
          assert.match(listed.out, new RegExp(`${damagedId}.*latest.*DAMAGED \\(1 problem`));
          const api = await new SnapshotBrowser(rig.dest).snapshots(rig.sim.udid);
          assert.equal(api.find((s) => s.id === damagedId)?.damaged?.problems, 1, 'API');

          const out = await rig.backup(await rig.usb());
          assert.equal(out.ok, true, out.message);
          assert.equal(out.repaired?.id, damagedId, 'the job says it repaired the damaged latest');
          assert.equal(out.result.isFull, true, 'the repair is a full backup');
          assert.notEqual(out.snapshot?.id, damagedId, 'into a new snapshot');
          const fixed = await verifyBackupFolder(path.join(rig.dest, rig.sim.udid), rig.sim.udid);
          assert.equal(fixed.ok, true, 'the new latest verifies with hashes');
          const list = await (await openStore(rig.dest, rig.sim.udid)).list();
          assert.equal(list.find((s) => s.isLatest)?.damaged, undefined, 'the new latest is clean');
          assert.equal(list.find((s) => s.id === damagedId)?.damaged?.problems, 1, 'still marked');
          const after = await runMooring(['snapshots', '--dest', rig.dest, '--udid', rig.sim.udid]);
          assert.match(after.out, new RegExp(`${damagedId}.*DAMAGED`));
          // The repaired one is an ordinary latest again: the next backup is incremental.
          await rig.sim.ctl('mutate', { modify: 1 });
          const next = await rig.backup(await rig.usb());
          assert.equal(next.ok, true, next.message);
          assert.equal(next.result.isFull, false);
          assert.equal(next.repaired, undefined);
        },
      );
    }
  });
}

test('damage nobody verified: the next incremental notices, marks and repairs in one job', async () => {
  for (let run = 0; run < RUNS; run++) {
    const how = run % 2 === 0 ? 'truncate' : 'remove';
    await report.trial(
      'damaged latest backup',
      `payload ${how}d, no verify before the next backup`,
      async () => {
        await rig.sim.ctl('mutate', { add: 1, modify: 1 });
        const damagedId = await latestId();
        await damageLatest(how);
        const events: string[] = [];
        const out = await rig.backup(await rig.usb(), {
          onEvent: (e) => {
            if (e.type === 'store') events.push(e.message);
          },
        });
        assert.equal(out.ok, true, out.message);
        assert.equal(out.repaired?.id, damagedId);
        assert.equal(out.result.isFull, true);
        assert.ok(
          events.some((m) => m.includes(`latest backup (${damagedId}) is damaged`)),
          events.join('\n'),
        );
        const list = await (await openStore(rig.dest, rig.sim.udid)).list();
        assert.equal(list.find((s) => s.id === damagedId)?.damaged?.problems, 1);
        const fixed = await verifyBackupFolder(path.join(rig.dest, rig.sim.udid), rig.sim.udid);
        assert.equal(fixed.ok, true);
      },
    );
  }
});

test('a verify that passes again clears the mark', async () => {
  const s = await openStore(rig.dest, rig.sim.udid);
  const id = await latestId();
  await s.setDamage(id, { at: new Date().toISOString(), problems: 2, example: 'test' });
  assert.equal((await s.latestDamage())?.id, id);
  const r = await s.checkSnapshot('latest');
  assert.equal(r.report.ok, true);
  assert.equal(r.recorded, true);
  assert.equal(await s.latestDamage(), undefined);
});
