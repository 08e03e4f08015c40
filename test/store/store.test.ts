/**
 * The snapshot store on a real filesystem: commits, hard-link sharing, usage accounting,
 * recovery after a crash at every step of a commit and of a prune, retention, pins, adoption.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, promises as fsp, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileIdFor, payloadRelPath } from '../../src/format/file-id';
import { openStore, type CommitStep, type PruneStep, type SnapshotStore } from '../../src/store';
import { formatSnapshotId } from '../../src/store/ids';
import { walkFiles } from '../../src/store/fs-util';
import { isMooringError } from '../../src/util/errors';
import { runChild, sampleEntries, tempDirs, UDID, writeBackup, type FakeEntry } from './fixture';

const { tmp, cleanup } = tempDirs('mooring-store-');
after(cleanup);

const DAY = 86_400_000;

async function tree(
  dir: string,
): Promise<Map<string, { inode: string; nlink: number; size: number }>> {
  const m = new Map<string, { inode: string; nlink: number; size: number }>();
  await walkFiles(dir, (f) => {
    m.set(f.rel, { inode: f.inode, nlink: f.nlink, size: f.size });
  });
  return m;
}

async function backUp(store: SnapshotStore, entries: FakeEntry[]) {
  const s = await store.beginStaging();
  await writeBackup(s.backupDir, entries);
  const report = await s.verify();
  assert.ok(report.ok, JSON.stringify(report.problems));
  return s.commit();
}

function payload(dir: string, e: FakeEntry): string {
  return path.join(dir, payloadRelPath(fileIdFor(e.domain, e.relativePath)));
}

async function noLeftovers(store: SnapshotStore): Promise<void> {
  assert.deepEqual(await fsp.readdir(store.stagingDir).catch(() => []), []);
  assert.deepEqual(await fsp.readdir(store.trashDir).catch(() => []), []);
  await assert.rejects(fsp.access(store.journalFile));
  await assert.rejects(fsp.access(store.lockFile));
}

test('commit, then an incremental on a hard-link copy: shared files, usage, verify', async () => {
  const dest = tmp();
  let clock = Date.UTC(2025, 0, 1, 10, 0, 0);
  const store = await openStore(dest, UDID, { now: () => new Date(clock) });
  const v1 = sampleEntries(8);
  const first = await backUp(store, v1);
  assert.equal(first.id, '20250101T100000Z');
  assert.equal(first.isLatest, true);
  assert.equal(first.files, 8);
  assert.equal(first.exclusiveBytes, first.size); // nothing to share with yet
  await noLeftovers(store);

  clock += DAY;
  const staging = await store.beginStaging();
  assert.equal(staging.root, path.join(store.stagingDir, staging.id));
  // The staged copy shares every file with the latest: same inodes, no bytes copied.
  const latestTree = await tree(store.latestDir);
  const stagedTree = await tree(staging.backupDir);
  assert.deepEqual([...stagedTree.keys()].sort(), [...latestTree.keys()].sort());
  for (const [rel, f] of stagedTree) {
    assert.equal(f.inode, latestTree.get(rel)!.inode, rel);
    assert.equal(f.nlink, 2, rel);
  }
  const v2 = v1.filter((e) => e.relativePath !== v1[4]!.relativePath); // deleted
  const changed = v2.findIndex((e) => e.relativePath === v1[3]!.relativePath);
  v2[changed] = { ...v2[changed]!, content: 'a new version' };
  v2.push({ domain: 'HomeDomain', relativePath: 'Library/new.txt', content: 'brand new file' });
  await writeBackup(staging.backupDir, v2);
  const second = await staging.commit();
  await noLeftovers(store);

  const oldDir = path.join(store.snapshotsDir, first.id);
  // The old snapshot is exactly the first backup, untouched by the second.
  assert.ok((await store.verify(first.id)).ok);
  assert.ok((await store.verify()).ok);
  assert.equal(readFileSync(payload(oldDir, v1[3]!), 'utf8'), v1[3]!.content);
  assert.equal(readFileSync(payload(store.latestDir, v1[3]!), 'utf8'), 'a new version');
  assert.equal(readFileSync(payload(oldDir, v1[4]!), 'utf8'), v1[4]!.content);
  await assert.rejects(fsp.access(payload(store.latestDir, v1[4]!)));
  const unchanged = payload(store.latestDir, v1[5]!);
  const st = await fsp.stat(unchanged);
  assert.equal(st.ino, (await fsp.stat(payload(oldDir, v1[5]!))).ino);
  assert.equal(st.nlink, 2);

  const list = await store.list();
  assert.deepEqual(
    list.map((s) => [s.id, s.isLatest, s.path]),
    [
      [first.id, false, oldDir],
      [second.id, true, store.latestDir],
    ],
  );
  // Exclusive bytes, counted independently: files whose inode is not in the other tree.
  const oldTree = await tree(oldDir);
  const newTree = await tree(store.latestDir);
  const own = (a: typeof oldTree, b: typeof oldTree): number => {
    const other = new Set([...b.values()].map((f) => f.inode));
    return [...a.values()].filter((f) => !other.has(f.inode)).reduce((n, f) => n + f.size, 0);
  };
  assert.equal(list[0]!.exclusiveBytes, own(oldTree, newTree));
  assert.equal(list[1]!.exclusiveBytes, own(newTree, oldTree));
  assert.equal(second.exclusiveBytes, list[1]!.exclusiveBytes);
  // What the new snapshot alone holds is its two new payloads plus its own plists and Manifest.db.
  const metaBytes = ['Manifest.db', 'Info.plist', 'Manifest.plist', 'Status.plist'].reduce(
    (n, f) => n + newTree.get(f)!.size,
    0,
  );
  assert.equal(
    list[1]!.exclusiveBytes,
    metaBytes + 'a new version'.length + 'brand new file'.length,
  );
  assert.equal(list[1]!.files, 8);
  assert.equal(
    list[0]!.size,
    [...oldTree.values()].reduce((n, f) => n + f.size, 0),
  );
});

test('a staging that is not finished cannot be committed; discard releases the lock', async () => {
  const dest = tmp();
  const store = await openStore(dest, UDID);
  await backUp(store, sampleEntries(3));
  const s = await store.beginStaging();
  await writeBackup(s.backupDir, sampleEntries(4), { state: 'uploading' });
  await assert.rejects(
    s.commit(),
    (e) => isMooringError(e, 'PROTOCOL') && /uploading/.test(e.message),
  );
  assert.ok(s.isOpen);
  await assert.rejects(store.beginStaging(), (e) => isMooringError(e, 'USAGE'));
  await s.discard();
  await noLeftovers(store);
  assert.equal((await store.list()).length, 1);
  // The latest was never touched.
  assert.ok((await store.verify()).ok);
  const again = await store.beginStaging();
  await again.discard();
});

const COMMIT_STEPS: CommitStep[] = [
  'journal',
  'moved-latest',
  'moved-staged',
  'metadata',
  'staging-removed',
  'cleared',
];

test('a crash after any step of a commit is rolled forward on the next open', async () => {
  for (const step of COMMIT_STEPS) {
    const dest = tmp();
    const v1 = sampleEntries(5);
    const first = await backUp(await openStore(dest, UDID), v1);
    const crashing = await openStore(dest, UDID, {
      hooks: {
        afterStep: (op, s) => {
          if (op === 'commit' && s === step) throw new Error(`crash after ${s}`);
        },
      },
      now: () => new Date(Date.now() + DAY),
    });
    const s = await crashing.beginStaging();
    const v2 = sampleEntries(5);
    v2[3] = { ...v2[3]!, content: 'second version' };
    await writeBackup(s.backupDir, v2);
    await assert.rejects(s.commit(), /crash after/);

    const store = await openStore(dest, UDID);
    assert.equal(store.recovery.journal, step === 'cleared' ? undefined : 'commit', step);
    await noLeftovers(store);
    const list = await store.list();
    assert.deepEqual(
      list.map((x) => [x.id, x.isLatest]),
      [
        [first.id, false],
        [s.id, true],
      ],
      step,
    );
    assert.ok((await store.verify()).ok, step);
    assert.ok((await store.verify(first.id)).ok, step);
    assert.equal(readFileSync(payload(store.latestDir, v2[3]!), 'utf8'), 'second version');
  }
});

test('a staging left by a killed process is discarded, never mistaken for a backup', async () => {
  const dest = tmp();
  const v1 = sampleEntries(4);
  const store0 = await openStore(dest, UDID);
  await backUp(store0, v1);
  const r = await runChild({ dest, mode: 'stage-and-die' });
  assert.equal(r.signal, 'SIGKILL');
  const staged = await fsp.readdir(store0.stagingDir);
  assert.equal(staged.length, 1);
  const store = await openStore(dest, UDID);
  assert.deepEqual(store.recovery.discardedStaging, staged);
  assert.ok(store.recovery.notes.some((n) => /stale lock/.test(n)));
  await noLeftovers(store);
  assert.equal((await store.list()).length, 1);
  assert.ok((await store.verify()).ok);
  assert.equal(readFileSync(payload(store.latestDir, v1[2]!), 'utf8'), v1[2]!.content);
});

test('a copy made ahead, killed before its record, is removed by the next open and never taken', async () => {
  const dest = tmp();
  const v1 = sampleEntries(4);
  const store0 = await openStore(dest, UDID);
  await backUp(store0, v1);
  const r = await runChild({ dest, mode: 'prepare-and-die', step: 'next:linked' });
  assert.equal(r.signal, 'SIGKILL', r.stderr);
  assert.ok(existsSync(path.join(store0.nextDir, UDID)), 'the child died with its copy made');
  assert.ok(!existsSync(path.join(store0.nextDir, 'next.json')));
  const store = await openStore(dest, UDID);
  assert.ok(!existsSync(store.nextDir), 'an unfinished copy is removed on open');
  await noLeftovers(store);
  const s = await store.beginStaging({ linkInBackground: true });
  assert.equal(s.preparedAhead, false);
  await s.discard();
  assert.ok((await store.verify()).ok);
});

test('SIGKILL in the middle of a commit: the next open finishes it', async () => {
  for (const step of ['moved-latest', 'metadata']) {
    const dest = tmp();
    await backUp(await openStore(dest, UDID), sampleEntries(6));
    const r = await runChild({ dest, mode: 'commit-and-die', step: `commit:${step}` });
    assert.equal(r.signal, 'SIGKILL', r.stderr);
    const store = await openStore(dest, UDID);
    assert.equal(store.recovery.journal, 'commit');
    await noLeftovers(store);
    const list = await store.list();
    assert.equal(list.length, 2);
    assert.ok((await store.verify()).ok);
    assert.ok((await store.verify(list[0]!.id)).ok);
    assert.equal(
      readFileSync(payload(store.latestDir, sampleEntries(6)[2]!), 'utf8'),
      'changed by the child',
    );
  }
});

/** Three snapshots, taken 400, 399 and 0 days ago, sharing most files. */
async function threeSnapshots(dest: string) {
  const v = sampleEntries(6);
  const ids: string[] = [];
  for (const [i, age] of [400, 399, 0].entries()) {
    const store = await openStore(dest, UDID, { now: () => new Date(Date.now() - age * DAY) });
    const entries = v.map((e, k) => (k === 2 + i ? { ...e, content: `revision ${i}` } : e));
    ids.push((await backUp(store, entries)).id);
  }
  return { v, ids };
}

const PRUNE_STEPS: PruneStep[] = ['journal', 'trashed', 'metadata', 'removed', 'cleared'];

test('prune removes old snapshots, keeps files the others still need, and survives a crash at any step', async () => {
  for (const step of [undefined, ...PRUNE_STEPS]) {
    const dest = tmp();
    const { v, ids } = await threeSnapshots(dest);
    const shared = payload(path.join(dest, UDID), v[6]!); // never changed: in all three
    assert.equal((await fsp.stat(shared)).nlink, 3);
    const store = await openStore(dest, UDID, {
      hooks: {
        afterStep: (op, s) => {
          if (op === 'prune' && s === step) throw new Error(`crash after ${s}`);
        },
      },
    });
    const plan = await store.planPrune();
    assert.deepEqual(
      plan.pruned.map((d) => d.id),
      ids.slice(0, 2),
    );
    assert.deepEqual(
      plan.kept.map((d) => d.id),
      [ids[2]],
    );
    if (step === undefined) await store.prune();
    else await assert.rejects(store.prune(), /crash after/);

    const after = await openStore(dest, UDID);
    if (step !== undefined && step !== 'cleared') assert.equal(after.recovery.journal, 'prune');
    await noLeftovers(after);
    assert.deepEqual(
      (await after.list()).map((s) => s.id),
      [ids[2]],
    );
    assert.deepEqual(await fsp.readdir(after.snapshotsDir), []);
    // The latest still has every file, with its content; shared files lost only two names.
    assert.ok((await after.verify()).ok, String(step));
    const st = await fsp.stat(shared);
    assert.equal(st.nlink, 1);
    assert.equal(readFileSync(shared, 'utf8'), v[6]!.content);
  }
});

test('SIGKILL in the middle of a prune: the snapshot is gone whole, the rest intact', async () => {
  const dest = tmp();
  const { ids } = await threeSnapshots(dest);
  const r = await runChild({ dest, mode: 'prune-and-die', step: 'prune:trashed' });
  assert.equal(r.signal, 'SIGKILL', r.stderr);
  const store = await openStore(dest, UDID);
  assert.equal(store.recovery.journal, 'prune');
  await noLeftovers(store);
  assert.deepEqual(
    (await store.list()).map((s) => s.id),
    [ids[2]],
  );
  assert.ok((await store.verify()).ok);
});

test('pinned snapshots survive prune; pin and unpin are persisted', async () => {
  const dest = tmp();
  const { ids } = await threeSnapshots(dest);
  const store = await openStore(dest, UDID);
  await store.pin(ids[0]!);
  await assert.rejects(store.pin('20000101T000000Z'), (e) => isMooringError(e, 'USAGE'));
  const reopened = await openStore(dest, UDID);
  assert.deepEqual(
    (await reopened.list()).map((s) => s.pinned),
    [true, false, false],
  );
  const res = await reopened.prune();
  assert.deepEqual(
    res.pruned.map((d) => d.id),
    [ids[1]],
  );
  assert.deepEqual(
    (await reopened.list()).map((s) => s.id),
    [ids[0], ids[2]],
  );
  assert.ok((await reopened.verify(ids[0])).ok);
  await reopened.unpin(ids[0]!);
  assert.deepEqual(
    (await reopened.prune()).pruned.map((d) => d.id),
    [ids[0]],
  );
});

test('a backup folder made by another tool is adopted as the first snapshot; one replaced in place is re-adopted', async () => {
  const dest = tmp();
  const made = new Date(Date.UTC(2024, 6, 1, 8, 30, 0));
  await writeBackup(path.join(dest, UDID), sampleEntries(3), { date: made, uuid: 'AAAA' });
  const store = await openStore(dest, UDID);
  assert.equal(store.recovery.adopted, formatSnapshotId(made));
  let list = await store.list();
  assert.equal(list.length, 1);
  assert.deepEqual(
    [list[0]!.id, list[0]!.isLatest, list[0]!.adopted, list[0]!.status],
    ['20240701T083000Z', true, true, 'complete'],
  );
  assert.ok((await store.verify('latest')).ok);
  // Opening again changes nothing.
  assert.equal((await openStore(dest, UDID)).recovery.adopted, undefined);

  // Finder overwrites the folder in place with a new backup (new Status.plist UUID).
  const later = new Date(Date.UTC(2024, 7, 1));
  await writeBackup(path.join(dest, UDID), sampleEntries(4), { date: later, uuid: 'BBBB' });
  const again = await openStore(dest, UDID);
  assert.equal(again.recovery.adopted, formatSnapshotId(later));
  list = await again.list();
  assert.deepEqual(
    list.map((s) => s.id),
    [formatSnapshotId(later)],
  );

  // An unfinished foreign backup is adopted, but marked incomplete.
  const dest2 = tmp();
  await writeBackup(path.join(dest2, UDID), sampleEntries(2), { state: 'uploading' });
  const s2 = await openStore(dest2, UDID);
  assert.equal((await s2.list())[0]!.status, 'incomplete');
  assert.equal((await s2.verify()).ok, false);
});

test('a damaged snapshots.json is rebuilt from the folders; a damaged journal stops everything', async () => {
  const dest = tmp();
  const { ids } = await threeSnapshots(dest);
  const store = await openStore(dest, UDID);
  await fsp.writeFile(store.metadataFile, '{"version":1,"udid":');
  const rebuilt = await openStore(dest, UDID);
  assert.ok(
    rebuilt.recovery.found.some((n) => /rebuilt from the folders.*every snapshot pinned/.test(n)),
  );
  const list = await rebuilt.list();
  assert.deepEqual(list.map((s) => s.id).slice(0, 2), ids.slice(0, 2));
  assert.equal(list.length, 3);
  assert.ok(list[2]!.isLatest);
  // Which were pinned went with the file: all are, so that no retention removes one of them.
  assert.deepEqual(
    list.map((s) => s.pinned),
    [true, true, true],
  );
  assert.deepEqual(
    (await rebuilt.planPrune({ keepAllDays: 0, dailyDays: 0, weeklyDays: 0 })).pruned,
    [],
  );
  await fsp.writeFile(store.journalFile, 'garbage');
  await assert.rejects(
    openStore(dest, UDID),
    (e) => isMooringError(e, 'MALFORMED') && /journal/.test(e.message),
  );
  await fsp.rm(store.journalFile);
  await assert.rejects(openStore(dest, '../etc'), (e) => isMooringError(e, 'USAGE'));
});

test('records lost without a parse error are rebuilt pinned too: a deleted file, a journal replayed over a damaged one', async () => {
  // snapshots.json deleted: the older snapshots' folders say Mooring had records.
  const dest = tmp();
  const { ids } = await threeSnapshots(dest);
  const first = await openStore(dest, UDID);
  await first.pin(ids[0]!);
  await fsp.rm(first.metadataFile);
  const reopened = await openStore(dest, UDID);
  assert.ok(
    reopened.recovery.found.some((n) =>
      /^snapshots\.json is missing; rebuilt .* every snapshot pinned/.test(n),
    ),
    reopened.recovery.found.join('; '),
  );
  const list = await reopened.list();
  assert.deepEqual(
    list.map((x) => [x.pinned, x.adopted]),
    [
      [true, false],
      [true, false],
      [true, false],
    ],
    'pinned, and the latest is ours, not adopted',
  );
  assert.deepEqual(
    (await reopened.planPrune({ keepAllDays: 0, dailyDays: 0, weeklyDays: 0 })).pruned,
    [],
  );

  // A commit interrupted after its journal, then snapshots.json damaged: the replay writes the
  // records anew from nothing; what the reconcile adds back after it is pinned, and told.
  const dest2 = tmp();
  const three = await threeSnapshots(dest2);
  const store = await openStore(dest2, UDID, {
    hooks: {
      afterStep: (op, step) => {
        if (op === 'commit' && step === 'journal') throw new Error('crash after journal');
      },
    },
  });
  await (await openStore(dest2, UDID)).pin(three.ids[0]!);
  await assert.rejects(backUp(store, sampleEntries(6)), /crash after journal/);
  await fsp.writeFile(store.metadataFile, '{"version":1,');
  const after = await openStore(dest2, UDID);
  assert.equal(after.recovery.journal, 'commit');
  assert.ok(
    after.recovery.found.some((n) =>
      /rebuilt from the folders, with every snapshot pinned/.test(n),
    ),
    after.recovery.found.join('; '),
  );
  const older = (await after.list()).filter((x) => !x.isLatest);
  assert.ok(older.length >= 2, JSON.stringify(older));
  assert.ok(older.some((x) => x.id === three.ids[0] && x.pinned));
  assert.deepEqual(
    (await after.planPrune({ keepAllDays: 0, dailyDays: 0, weeklyDays: 0 })).pruned,
    [],
  );
});

test('a prune that cannot be finished is given up on open, never blocking later backups', async () => {
  const dest = tmp();
  const { ids } = await threeSnapshots(dest);
  const store = await openStore(dest, UDID);
  // trash/ on another file system: renaming a snapshot into it fails (EXDEV) every time.
  const trash = path.join(store.stateDir, 'trash');
  const elsewhere = await fsp.mkdtemp(path.join('/dev/shm', 'mooring-trash-'));
  try {
    await fsp.rm(trash, { recursive: true, force: true });
    await fsp.symlink(elsewhere, trash);
    await assert.rejects(store.prune(), /EXDEV|cross-device/);
    assert.ok(existsSync(path.join(store.stateDir, 'journal.json')), 'the journal stays');

    const reopened = await openStore(dest, UDID);
    assert.equal(reopened.recovery.journal, 'prune');
    assert.ok(
      reopened.recovery.notes.some((n) => /could not be finished/.test(n)),
      reopened.recovery.notes.join('; '),
    );
    assert.equal(existsSync(path.join(reopened.stateDir, 'journal.json')), false);
    // Nothing the policy kept was lost, and a new backup still commits.
    assert.deepEqual(
      (await reopened.list()).map((s) => s.id),
      ids,
    );
    const next = await backUp(reopened, sampleEntries(6));
    assert.ok((await reopened.verify(next.id)).ok);
  } finally {
    await fsp.rm(trash, { force: true });
    await fsp.rm(elsewhere, { recursive: true, force: true });
  }
});
