/**
 * Room for a backup (D48) on a real filesystem: what the retention policy lets go goes first; then,
 * only when allowed, the oldest other snapshots, as few as make the room, never pinned ones, never
 * the latest, nor the last good one while the latest is damaged; none beyond the policy when even
 * all would not be enough. The bytes a removal frees are disk blocks, and count a file shared by
 * hard links only once all its names go. A crash or a failure leaves nothing half-done.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp, statSync } from 'node:fs';
import path from 'node:path';
import { fileIdFor, payloadRelPath } from '../../src/format/file-id';
import { openStore, type SnapshotStore } from '../../src/store';
import { DEFAULT_RETENTION } from '../../src/store/retention';
import { FreedByRemoval } from '../../src/store/make-room';
import { runChild, sampleEntries, tempDirs, UDID, writeBackup, type FakeEntry } from './fixture';

const { tmp, cleanup } = tempDirs('mooring-room-');
after(cleanup);

const DAY = 86_400_000;
/** A policy that keeps everything. */
const KEEP_ALL = { keepAllDays: Infinity, dailyDays: Infinity, weeklyDays: Infinity };

async function backUp(store: SnapshotStore, entries: FakeEntry[]): Promise<string> {
  const s = await store.beginStaging();
  await writeBackup(s.backupDir, entries);
  return (await s.commit()).id;
}

/**
 * Five snapshots, 400, 30, 20, 10 and 0 days old. Each changes file 0 (its own 20-40 KB); the
 * snapshots 30 and 20 days old share a version of file 1 that neither of the others has.
 */
async function fiveSnapshots(dest: string): Promise<string[]> {
  const base = sampleEntries(4);
  const ids: string[] = [];
  for (const [i, age] of [400, 30, 20, 10, 0].entries()) {
    const store = await openStore(dest, UDID, { now: () => new Date(Date.now() - age * DAY) });
    const entries = base.map((e) => {
      if (e.relativePath === 'Library/file0.txt')
        return { ...e, content: `v${i}`.repeat(10_000 * (i + 1)) };
      if (e.relativePath === 'Media/DCIM/100APPLE/IMG_1001.JPG' && (i === 1 || i === 2))
        return { ...e, content: Buffer.alloc(50_000, 7) };
      return e;
    });
    ids.push(await backUp(store, entries));
  }
  return ids;
}

/**
 * Each snapshot's own files (a single link) as they take room on the disk (st_blocks), which is
 * what removing it frees and what the device sees when it asks for the free space again.
 */
async function exclusive(store: SnapshotStore): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const s of await store.list()) {
    let bytes = 0;
    for (const f of await filesIn(s.path)) {
      const st = statSync(f);
      if (st.nlink === 1) bytes += st.blocks * 512;
    }
    out.set(s.id, bytes);
  }
  return out;
}

async function filesIn(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fsp.readdir(dir, { withFileTypes: true, recursive: true }))
    if (e.isFile()) out.push(path.join(e.parentPath, e.name));
  return out;
}

const ids = async (store: SnapshotStore): Promise<string[]> =>
  (await store.list()).map((s) => s.id);

test('the policy goes first; beyond it only when allowed, and only as many as the room needs', async () => {
  const dest = tmp();
  const [s400, s30, s20, s10, latest] = await fiveSnapshots(dest);
  const store = await openStore(dest, UDID);
  const before = await exclusive(store);

  // Not allowed beyond the policy: only the 400-day-old snapshot goes, whatever is asked.
  const byPolicy = await store.makeRoom(1e12, {
    retention: DEFAULT_RETENTION,
    beyondRetention: false,
  });
  assert.deepEqual(byPolicy.byRetention, [s400]);
  assert.deepEqual(byPolicy.beyondRetention, []);
  assert.equal(byPolicy.freesBytes, before.get(s400!));
  assert.equal(byPolicy.outOfReach, undefined);
  assert.deepEqual(await ids(store), [s30, s20, s10, latest]);

  // Allowed: the oldest kept one is enough for its own bytes.
  // More than the need is freed (the device goes on only with more free than it needs).
  const one = await store.makeRoom(before.get(s30!)! - 1, {
    retention: DEFAULT_RETENTION,
    beyondRetention: true,
  });
  assert.deepEqual(one.byRetention, []);
  assert.deepEqual(one.beyondRetention, [s30]);
  assert.equal(one.freesBytes, before.get(s30!));
  assert.deepEqual(await ids(store), [s20, s10, latest]);
  assert.ok((await store.verify(s20)).ok, 'what stays is whole');
  assert.ok((await store.verify()).ok);
});

test('a file two snapshots share is freed only when both go', async () => {
  const dest = tmp();
  const [s400, s30, s20, s10, latest] = await fiveSnapshots(dest);
  const store = await openStore(dest, UDID);
  await store.pin(s400!);
  const excl = await exclusive(store);
  // The 50,000-byte version of file 1 is in s30 and s20 only: exclusive to neither.
  const img = payloadRelPath(fileIdFor('CameraRollDomain', 'Media/DCIM/100APPLE/IMG_1001.JPG'));
  const shared = statSync(path.join(store.snapshotsDir, s30!, img));
  assert.equal(shared.nlink, 2);
  const both = excl.get(s30!)! + excl.get(s20!)! + shared.blocks * 512;
  const plan = await store.makeRoom(excl.get(s30!)! + 1, {
    retention: KEEP_ALL,
    beyondRetention: true,
  });
  assert.deepEqual(plan.beyondRetention, [s30, s20]);
  assert.equal(plan.freesBytes, both);
  assert.deepEqual(await ids(store), [s400, s10, latest]);
});

test('nothing beyond the policy when even every snapshot would not make the room; pins and the latest stay', async () => {
  const dest = tmp();
  const [, s30, s20, s10, latest] = await fiveSnapshots(dest);
  const store = await openStore(dest, UDID);
  await store.pin(s20!);
  const excl = await exclusive(store);
  const plan = await store.makeRoom(1e12, { retention: KEEP_ALL, beyondRetention: true });
  assert.deepEqual(plan.byRetention, []);
  assert.deepEqual(plan.beyondRetention, []);
  assert.ok(plan.outOfReach);
  // All that could go: s400, s30 and s10 (s20 is pinned): their own bytes, no more (file 1's
  // shared version stays with the pinned s20).
  const s400 = (await store.list())[0]!.id;
  assert.equal(plan.outOfReach.possibleBytes, excl.get(s400)! + excl.get(s30!)! + excl.get(s10!)!);
  assert.equal((await ids(store)).length, 5, 'nothing was removed');

  // Enough for them: the pinned one is skipped over, the latest never counted.
  const room = await store.makeRoom(excl.get(s400)! + excl.get(s30!)! + 1, {
    retention: KEEP_ALL,
    beyondRetention: true,
  });
  assert.deepEqual(room.beyondRetention, [s400, s30, s10]);
  assert.deepEqual(await ids(store), [s20, latest]);
  assert.ok((await store.verify(s20)).ok);
});

test('with a backup staged: its copy of the latest keeps what it shares, and it commits after', async () => {
  const dest = tmp();
  const [, , , , latest] = await fiveSnapshots(dest);
  const store = await openStore(dest, UDID);
  // As the job stages: the latest is still being linked when the device asks for room.
  const staging = await store.beginStaging({ linkInBackground: true });
  const plan = await store.makeRoom(1e12, {
    retention: { keepAllDays: 0, dailyDays: 0, weeklyDays: 0 },
    beyondRetention: true,
  });
  assert.equal(plan.byRetention.length, 4);
  assert.deepEqual(await ids(store), [latest]);
  await staging.ready;
  await writeBackup(staging.backupDir, sampleEntries(4));
  assert.ok((await staging.verify()).ok);
  const next = await staging.commit();
  assert.deepEqual(await ids(store), [latest, next.id]);
  assert.ok((await store.verify(latest)).ok);
  assert.deepEqual(await fsp.readdir(store.trashDir), []);
});

test('SIGKILL between two removals: the next open finishes them all, retention and beyond alike', async () => {
  const dest = tmp();
  const [s400, s30, s20, s10, latest] = await fiveSnapshots(dest);
  const excl = await exclusive(await openStore(dest, UDID));
  // s400 by retention, then s30 and s20 beyond it; killed once the second is in trash/.
  const r = await runChild({
    dest,
    mode: 'room-and-die',
    step: 'prune:trashed',
    nth: 2,
    bytes: excl.get(s400!)! + excl.get(s30!)! + 1,
  });
  assert.equal(r.signal, 'SIGKILL', r.stderr);
  const snapshotsDir = path.join(dest, '.mooring', UDID, 'snapshots');
  assert.deepEqual((await fsp.readdir(snapshotsDir)).sort(), [s20, s10].sort(), 'killed mid-way');
  const store = await openStore(dest, UDID);
  assert.equal(store.recovery.journal, 'prune');
  assert.deepEqual(await ids(store), [s10, latest]);
  assert.deepEqual(await fsp.readdir(store.trashDir), []);
  for (const id of await ids(store)) assert.ok((await store.verify(id)).ok, id);
  assert.ok((await store.verify()).ok);
});

test('a removal that fails is given up at once: nothing left half-done, and said', async () => {
  const dest = tmp();
  const [s400, s30, s20, s10, latest] = await fiveSnapshots(dest);
  const store = await openStore(dest, UDID);
  // Snapshots on their way out are renamed into trash/: on another file system that fails (EXDEV).
  const elsewhere = await fsp.mkdtemp(path.join('/dev/shm', 'mooring-room-trash-'));
  try {
    await fsp.rm(store.trashDir, { recursive: true, force: true });
    await fsp.symlink(elsewhere, store.trashDir);
    const plan = await store.makeRoom(1, { retention: DEFAULT_RETENTION, beyondRetention: true });
    assert.match(plan.failed ?? '', /EXDEV|cross-device/);
    assert.deepEqual([...plan.byRetention, ...plan.beyondRetention], [], 'none went');
    await assert.rejects(fsp.access(store.journalFile), 'no journal left for a commit to replace');
    assert.deepEqual(await ids(store), [s400, s30, s20, s10, latest]);
  } finally {
    await fsp.rm(elsewhere, { recursive: true, force: true });
  }
});

test('while the latest is damaged, the newest sound snapshot is the last good backup, and stays', async () => {
  const dest = tmp();
  const [s400, s30, s20, s10, latest] = await fiveSnapshots(dest);
  const store = await openStore(dest, UDID);
  await store.setDamage(latest!, { at: new Date().toISOString(), problems: 1, example: 'x' });
  const plan = await store.makeRoom(1e12, { retention: KEEP_ALL, beyondRetention: true });
  assert.ok(plan.outOfReach);
  assert.equal(plan.beyondPossible, 3, 's400, s30 and s20; not s10');
  const room = await store.makeRoom(1, {
    retention: { keepAllDays: 0, dailyDays: 0, weeklyDays: 0 },
    beyondRetention: true,
  });
  assert.deepEqual(room.byRetention, [s400, s30, s20], 'even retention leaves the last good one');
  assert.deepEqual(await ids(store), [s10, latest]);
});

test('FreedByRemoval counts a multiply-linked file once its last name is walked', async () => {
  const root = tmp();
  const a = `${root}/a`;
  const b = `${root}/b`;
  await fsp.mkdir(a);
  await fsp.mkdir(b);
  await fsp.writeFile(`${a}/own`, Buffer.alloc(100));
  await fsp.writeFile(`${a}/shared`, Buffer.alloc(1000));
  await fsp.link(`${a}/shared`, `${b}/shared`);
  await fsp.writeFile(`${a}/outside`, Buffer.alloc(10_000));
  await fsp.link(`${a}/outside`, `${root}/elsewhere`);
  const disk = (f: string): number => statSync(f).blocks * 512;
  const own = disk(`${a}/own`);
  const shared = disk(`${a}/shared`);
  assert.ok(own > 0 && shared > 0);
  const freed = new FreedByRemoval();
  assert.equal(await freed.remove(a), own, 'the shared file and the one linked outside stay');
  assert.equal(await freed.remove(b), own + shared);
  assert.equal(await freed.remove(`${root}/missing`), own + shared);
});
