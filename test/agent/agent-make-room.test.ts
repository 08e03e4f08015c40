/**
 * D48 in the agent, against a simulated iPhone on USB and a REAL small filesystem (a tmpfs mounted
 * for this test; root only) as the backup folder. The device lacks room for its next backup:
 * with "make-room" off the attempt is NOT_ENOUGH_SPACE, its fix names the setting, and nothing is
 * removed; with it on, for that device, the oldest snapshot goes, the backup succeeds, and a
 * ROOM_MADE warning on that attempt says what went.
 */
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Agent } from '../../src/agent/agent';
import {
  DEVICE_MARGIN,
  deviceNeeds,
  mutated,
  SMALL_DISK_SKIP,
  SmallDisk,
} from '../helpers/small-disk';
import {
  backUpNow,
  nextAttempt,
  notificationsOf,
  simFixture,
  startedOnUsb,
  type SimFixture,
} from './agent-helpers';

const MIB = 1024 * 1024;

describe('Agent: room for a device that lacks it', { skip: SMALL_DISK_SKIP }, () => {
  let f: SimFixture;
  let agent: Agent | undefined;
  let disk: SmallDisk | undefined;

  before(async () => {
    f = await simFixture('mooring-agent-room-', { files: 40, bytes: 4_000_000, seed: 4813 });
    const mnt = path.join(f.tmp, 'mnt');
    await mkdir(mnt);
    disk = new SmallDisk(mnt);
    disk.mount(DEVICE_MARGIN + 32 * MIB);
    agent = await startedOnUsb(f.agentOptions({ backupDir: path.join(mnt, 'backups') }), f.udid);
  });
  after(async () => {
    await agent?.stop();
    disk?.unmount();
    await f?.close();
  });

  it('off: NOT_ENOUGH_SPACE naming the setting, nothing removed; on: the oldest goes, the backup succeeds', async () => {
    const a = agent!;
    const { udid, sim } = f;
    await backUpNow(a, udid);
    for (let i = 0; i < 2; i++) {
      await mutated(sim, { modify: 15 });
      await backUpNow(a, udid);
    }
    const three = await a.snapshots(udid);
    assert.equal(three.length, 3);
    const oldest = three[0]!;

    // Short by half of what the oldest snapshot alone holds.
    const needs = await deviceNeeds(sim, await mutated(sim, { add: 10 }));
    const d = disk!;
    d.resize(d.usage().used + DEVICE_MARGIN + needs - oldest.addedBytes / 2);

    assert.equal(a.getConfig(udid)['make-room'], 'false', 'off unless chosen');
    const failedDone = nextAttempt(a, udid, (x) => x.outcome !== 'running', 'the refused backup');
    assert.equal((await a.backupNow(udid)).started, true);
    const failed = await failedDone;
    assert.equal(failed.outcome, 'failure');
    const space = notificationsOf(a, udid).find(
      (n) => n.attemptId === failed.id && n.reasonCode === 'NOT_ENOUGH_SPACE',
    );
    assert.ok(space, 'NOT_ENOUGH_SPACE recorded on the attempt');
    assert.match(space.fixHint ?? '', /turn on “Make room” in Settings/);
    assert.deepEqual(
      (await a.snapshots(udid)).map((s) => s.id),
      three.map((s) => s.id),
      'nothing removed',
    );

    a.setConfig({ 'make-room': 'true' }, udid);
    assert.equal(a.getConfig()['make-room'], 'false', 'the global value is unchanged');
    const made = await backUpNow(a, udid);
    const room = notificationsOf(a, udid).find((n) => n.reasonCode === 'ROOM_MADE');
    assert.ok(room, 'ROOM_MADE recorded');
    assert.equal(room.attemptId, made.id);
    assert.equal(room.severity, 'warning', 'a backup the retention settings kept is gone');
    assert.match(room.message, /^The device needed room: Mooring removed 1 older backup \(made /);
    assert.deepEqual(
      (await a.snapshots(udid)).map((s) => s.id),
      [...three.slice(1).map((s) => s.id), made.snapshotId],
    );
  });
});
