/**
 * D48 on a REAL small filesystem (a tmpfs mounted for this test; root only): a device that lacks
 * room asks the host to purge (DLMessagePurgeDiskSpace), then asks for the free space again.
 * Without `--make-room` nothing is removed and the backup fails with a clear line (105). With it,
 * the oldest snapshots go, as few as make the room, and the backup succeeds at once; when even
 * removing all of them would not be enough, none goes. The mount is always removed.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import {
  DEVICE_MARGIN,
  deviceNeeds,
  mutated,
  SMALL_DISK_SKIP,
  SmallDisk,
} from '../helpers/small-disk';
import { killChildren, snapshots, startCliSim, verifyOk, type CliSim } from './backup-fixture';

const MIB = 1024 * 1024;

let cs: CliSim | undefined;
let disk: SmallDisk | undefined;

before(async () => {
  if (SMALL_DISK_SKIP) return;
  cs = await startCliSim({ seed: 4812, files: 40, bytes: 4_000_000 });
  const mnt = path.join(cs.tmp, 'mnt');
  await fsp.mkdir(mnt);
  disk = new SmallDisk(mnt);
  disk.mount(DEVICE_MARGIN + 32 * MIB);
});

after(async () => {
  killChildren();
  disk?.unmount();
  await cs?.close();
});

test(
  'a device that lacks room: refused without --make-room; with it the oldest snapshots go, as few as needed',
  { skip: SMALL_DISK_SKIP },
  async () => {
    const c = cs!;
    const d = disk!;
    const dest = path.join(d.dir, 'backups');
    for (const step of [undefined, { modify: 15 }, { modify: 15 }]) {
      if (step) await mutated(c.sim, step);
      const r = await c.mooring(['backup', '--dest', dest, '--json']);
      assert.equal(r.code, 0, r.err);
    }
    const three = await snapshots(c, dest);
    assert.equal(three.length, 3);
    const [s1, s2] = three;
    assert.ok(
      s1!.exclusiveBytes > 500_000,
      `the oldest holds its own versions (${s1!.exclusiveBytes})`,
    );

    // Short by half of what the oldest snapshot alone holds.
    const needs = await deviceNeeds(c.sim, await mutated(c.sim, { add: 10 }));
    d.resize(d.usage().used + DEVICE_MARGIN + needs - s1!.exclusiveBytes / 2);

    const refused = await c.mooring(['backup', '--dest', dest, '--json']);
    assert.equal(refused.code, 1, refused.err);
    assert.equal(refused.result?.errorCode, 105);
    assert.match(String(refused.result?.message), /^Not enough free space on this computer/);
    assert.equal(refused.result?.roomMade, undefined, 'nothing asked of the store');
    assert.deepEqual(await snapshots(c, dest), three, 'nothing removed');

    const made = await c.mooring(['backup', '--dest', dest, '--json', '--make-room']);
    assert.equal(made.code, 0, made.err);
    const room = made.result?.roomMade as {
      byRetention: string[];
      beyondRetention: string[];
      freesBytes: number;
      neededBytes: number;
    };
    assert.deepEqual(room.byRetention, []);
    assert.deepEqual(room.beyondRetention, [s1!.id], 'only the oldest');
    // Disk blocks: at least the files' own bytes, and more than the device lacked.
    assert.ok(room.freesBytes >= s1!.exclusiveBytes, String(room.freesBytes));
    assert.ok(room.freesBytes > room.neededBytes);
    assert.ok(
      room.neededBytes > 0 && room.neededBytes < s1!.exclusiveBytes,
      String(room.neededBytes),
    );
    assert.ok(
      made.events.some(
        (e) =>
          e.type === 'store' &&
          /^Removed 1 older snapshot\(s\) to make room/.test(String(e.message)),
      ),
      'the removal is told as it happens',
    );
    const now = await snapshots(c, dest);
    assert.deepEqual(
      now.map((s) => s.id),
      [s2!.id, three[2]!.id, (made.result?.snapshot as { id: string }).id],
    );
    await verifyOk(c, dest, s2!.id);
    await verifyOk(c, dest);

    // Short by more than every snapshot but the latest holds: none is removed.
    const removable = now.slice(0, -1).reduce((a, s) => a + s.exclusiveBytes, 0);
    const needs2 = await deviceNeeds(c.sim, await mutated(c.sim, { add: 10 }));
    d.resize(d.usage().used + DEVICE_MARGIN + needs2 - removable - 4 * MIB);
    const hopeless = await c.mooring(['backup', '--dest', dest, '--json', '--make-room']);
    assert.equal(hopeless.code, 1, hopeless.err);
    assert.equal(hopeless.result?.errorCode, 105);
    const none = hopeless.result?.roomMade as {
      beyondRetention: string[];
      neededBytes: number;
      outOfReach?: { possibleBytes: number };
    };
    assert.deepEqual(none.beyondRetention, []);
    const possible = none.outOfReach?.possibleBytes ?? 0;
    assert.ok(possible >= removable && possible < none.neededBytes, `${possible} ${removable}`);
    assert.deepEqual(await snapshots(c, dest), now, 'nothing removed');
  },
);
