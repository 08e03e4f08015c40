/**
 * A staging whose hard links are made in the background (StagingOptions.linkInBackground): the
 * copy is the same as a foreground one except for the Info.plist every backup writes itself; a
 * discard stops the links and leaves nothing; a failed copy can be neither used nor committed.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, promises as fsp } from 'node:fs';
import path from 'node:path';
import { openStore, type SnapshotStore } from '../../src/store';
import { isMooringError } from '../../src/util/errors';
import { inodesOf, sampleEntries, tempDirs, UDID, writeBackup } from './fixture';

const { tmp, cleanup } = tempDirs('mooring-staging-bg-');
after(cleanup);

async function storeWithLatest(files = 40): Promise<SnapshotStore> {
  const store = await openStore(tmp(), UDID);
  const s = await store.beginStaging();
  await writeBackup(s.backupDir, sampleEntries(files));
  await s.commit();
  return store;
}

test('links made in the background: the latest shared file by file, Info.plist left to the backup', async () => {
  const store = await storeWithLatest();
  const latest = await inodesOf(store.latestDir);
  const s = await store.beginStaging({ linkInBackground: true });
  // The folder exists at once: the engine may write its Info.plist while the links are made.
  assert.ok(existsSync(s.backupDir));
  await fsp.writeFile(path.join(s.backupDir, 'Info.plist'), 'written by this backup');
  await s.ready;
  const staged = await inodesOf(s.backupDir);
  assert.deepEqual([...staged.keys()].sort(), [...latest.keys()].sort());
  for (const [rel, inode] of staged) {
    if (rel === 'Info.plist') assert.notEqual(inode, latest.get(rel));
    else assert.equal(inode, latest.get(rel), rel);
  }
  // The latest's own Info.plist is untouched.
  assert.notEqual(
    await fsp.readFile(path.join(store.latestDir, 'Info.plist'), 'utf8'),
    'written by this backup',
  );
  await s.discard();
});

test('a discard while the links are being made stops them and removes the staging', async () => {
  const store = await storeWithLatest(600);
  const s = await store.beginStaging({ linkInBackground: true });
  await s.discard();
  await assert.rejects(s.ready, (e) => isMooringError(e, 'IO') && e.detail === 'ABORTED');
  assert.deepEqual(await fsp.readdir(store.stagingDir), []);
  assert.ok((await store.verify()).ok, 'the latest is intact');
  // The lock is free: the next backup can start.
  const next = await store.beginStaging({ linkInBackground: true });
  await next.ready;
  await next.discard();
});

test('a failed background copy rejects ready and cannot be committed; discard cleans up', async () => {
  const dest = tmp();
  let failLinks = false;
  const store = await openStore(dest, UDID, {
    hooks: {
      afterStep: (op, step) => {
        if (failLinks && op === 'staging' && step === 'linked') throw new Error('disk gone');
      },
    },
  });
  const first = await store.beginStaging();
  await writeBackup(first.backupDir, sampleEntries(5));
  await first.commit();
  failLinks = true;
  const s = await store.beginStaging({ linkInBackground: true });
  await assert.rejects(s.ready, /disk gone/);
  await assert.rejects(s.commit(), /disk gone/);
  await s.discard();
  assert.deepEqual(await fsp.readdir(store.stagingDir).catch(() => []), []);
  failLinks = false;
  assert.ok((await store.verify()).ok);
});

test('the top level is in place first: topLevelReady names the folders still being filled', async () => {
  const store = await storeWithLatest(600);
  const top = await fsp.readdir(store.latestDir, { withFileTypes: true });
  const folders = top.filter((e) => e.isDirectory()).map((e) => e.name);
  assert.ok(folders.length > 1);
  const s = await store.beginStaging({ linkInBackground: true });
  const filling = await s.topLevelReady;
  assert.deepEqual([...filling].sort(), folders.sort());
  // Every top-level file but Info.plist (the backup writes its own) is the latest's already.
  for (const e of top) {
    if (e.name === 'Info.plist') continue;
    const st = await fsp.lstat(path.join(s.backupDir, e.name));
    assert.equal(st.isDirectory(), e.isDirectory(), e.name);
    if (e.isFile()) assert.equal(st.ino, (await fsp.lstat(path.join(store.latestDir, e.name))).ino);
  }
  await s.ready;
  await s.discard();
  // Links made before beginStaging returns: nothing is left to fill.
  const now = await store.beginStaging();
  assert.deepEqual([...(await now.topLevelReady)], []);
  await now.discard();
});
