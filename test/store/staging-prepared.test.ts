/**
 * The next backup's copy of the latest, made ahead (SnapshotStore.prepareNext, D42): the next
 * backup takes it whole and starts ready; a copy of anything but the latest as it is now, a repair
 * or a copy stopped half-way is never taken and leaves nothing behind.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, promises as fsp } from 'node:fs';
import path from 'node:path';
import { openStore, type SnapshotStore } from '../../src/store';
import { isMooringError } from '../../src/util/errors';
import { inodesOf, sampleEntries, tempDirs, UDID, writeBackup } from './fixture';

const { tmp, cleanup } = tempDirs('mooring-staging-prepared-');
after(cleanup);

/** The latest's files and inodes but its Info.plist, which every backup writes itself. */
async function latestButInfo(store: SnapshotStore): Promise<Map<string, string>> {
  const m = await inodesOf(store.latestDir);
  assert.ok(m.delete('Info.plist'), 'the latest has an Info.plist');
  return m;
}

async function storeWithLatest(files = 40, dest = tmp()): Promise<SnapshotStore> {
  const store = await openStore(dest, UDID);
  const s = await store.beginStaging();
  await writeBackup(s.backupDir, sampleEntries(files));
  await s.commit();
  return store;
}

test('the next backup takes the copy made ahead: ready at once, the same files, next/ gone', async () => {
  const store = await storeWithLatest(600);
  const usageBefore = (await store.list()).at(-1)!;
  const made = await store.prepareNext();
  assert.ok(made);
  assert.equal(made.reused, false);
  assert.equal(made.base, usageBefore.id);
  const want = await latestButInfo(store);
  assert.equal(made.files, want.size);
  assert.deepEqual(await inodesOf(path.join(store.nextDir, UDID)), want);
  // Asked again for the same latest, it is kept as it is.
  const again = await store.prepareNext();
  assert.equal(again?.reused, true);
  // Shared by one more name, the latest's own bytes are still its own.
  const usageAfter = (await store.list()).at(-1)!;
  assert.equal(usageAfter.exclusiveBytes, usageBefore.exclusiveBytes);

  const s = await store.beginStaging({ linkInBackground: true });
  assert.equal(s.preparedAhead, true);
  assert.deepEqual([...(await s.topLevelReady)], [], 'no folder is still being filled');
  await s.ready;
  assert.deepEqual(await inodesOf(s.backupDir), want);
  assert.ok(!existsSync(store.nextDir));
  // The backup goes on as any: it writes its Info.plist and what changed, and commits.
  const entries = sampleEntries(600);
  entries[7] = { ...entries[7]!, content: 'changed on the phone' };
  await writeBackup(s.backupDir, entries);
  const second = await s.commit();
  assert.notEqual(second.id, usageBefore.id);
  assert.ok((await store.verify()).ok);
  assert.ok((await store.verify(usageBefore.id)).ok, 'the previous backup is untouched');
});

test('a copy of a latest that changed since is not taken, and is removed', async () => {
  // Another tool rewrote the latest's Manifest.db in place (same snapshot id, a new file).
  const store = await storeWithLatest();
  await store.prepareNext();
  const db = path.join(store.latestDir, 'Manifest.db');
  await fsp.copyFile(db, `${db}.new`);
  await fsp.rename(`${db}.new`, db);
  const s = await store.beginStaging({ linkInBackground: true });
  assert.equal(s.preparedAhead, false);
  assert.ok(!existsSync(store.nextDir));
  await s.ready;
  const staged = await inodesOf(s.backupDir);
  assert.equal(staged.get('Manifest.db'), (await inodesOf(store.latestDir)).get('Manifest.db'));
  await s.discard();

  // A repair (a full backup into an empty folder) must not start from a copy of its latest.
  await store.prepareNext();
  const repair = await store.beginStaging({ fresh: true });
  assert.equal(repair.preparedAhead, false);
  assert.ok(!existsSync(store.nextDir), 'a repair does not keep a copy of the damaged latest');
  await repair.discard();
  await store.prepareNext();
  const other = await store.beginStaging();
  assert.equal(other.preparedAhead, true);
  await writeBackup(other.backupDir, sampleEntries(40), { uuid: 'another-backup' });
  await other.commit();
  // A copy whose record names another snapshot than the latest (one made before a commit that
  // did not take it): not taken.
  const stale = await store.prepareNext();
  assert.equal(stale?.reused, false);
  const record = path.join(store.nextDir, 'next.json');
  const r = JSON.parse(await fsp.readFile(record, 'utf8')) as { base: string };
  await fsp.writeFile(record, JSON.stringify({ ...r, base: '20200101T000000Z' }));
  const next = await store.beginStaging();
  assert.equal(next.preparedAhead, false);
  assert.ok(!existsSync(store.nextDir));
  await next.discard();
});

test('a copy that fails or is stopped half-way leaves nothing; the next open removes one without its record', async () => {
  const dest = tmp();
  let fail = false;
  const store = await openStore(dest, UDID, {
    hooks: {
      afterStep: (op, step) => {
        if (fail && op === 'next' && step === 'linked') throw new Error('disk gone');
      },
    },
  });
  const s = await store.beginStaging();
  await writeBackup(s.backupDir, sampleEntries(600));
  await s.commit();
  fail = true;
  await assert.rejects(store.prepareNext(), /disk gone/);
  assert.ok(!existsSync(store.nextDir));
  fail = false;
  const stop = new AbortController();
  stop.abort();
  await assert.rejects(
    store.prepareNext({ signal: stop.signal }),
    (e) => isMooringError(e, 'IO') && e.detail === 'ABORTED',
  );
  assert.ok(!existsSync(store.nextDir));
  // What a crash leaves: a copy without its record (never taken), or one renamed aside to be
  // removed. The next open removes both.
  await fsp.mkdir(path.join(store.nextDir, UDID), { recursive: true });
  await fsp.writeFile(path.join(store.nextDir, UDID, 'Status.plist'), 'half a copy');
  const aside = `${store.nextDir}.tmp-1-0123abcd`;
  await fsp.mkdir(path.join(aside, UDID, '00'), { recursive: true });
  await fsp.writeFile(path.join(aside, UDID, '00', 'a-link'), 'being removed');
  const reopened = await openStore(dest, UDID);
  assert.ok(!existsSync(reopened.nextDir));
  assert.ok(!existsSync(aside));
  assert.ok((await reopened.verify()).ok);
});

test('nothing to copy without a latest; refused while a backup is staged', async () => {
  const store = await openStore(tmp(), UDID);
  assert.equal(await store.prepareNext(), undefined);
  assert.ok(!existsSync(store.nextDir));
  const s = await store.beginStaging();
  await assert.rejects(store.prepareNext(), (e) => isMooringError(e, 'USAGE'));
  await writeBackup(s.backupDir, sampleEntries(5));
  await s.commit();
  assert.equal((await store.prepareNext())?.reused, false);
});

test('while the links are made the lock is free: a pin goes through, and a commit meanwhile drops the copy', async () => {
  const dest = tmp();
  let during: (() => Promise<void>) | undefined;
  const store = await openStore(dest, UDID, {
    hooks: {
      afterStep: async (op, step) => {
        if (op === 'next' && step === 'linked') await during?.();
      },
    },
  });
  const first = await store.beginStaging();
  await writeBackup(first.backupDir, sampleEntries(50));
  const { id } = await first.commit();
  // Another store of the same folder, as another process would open it.
  const other = await openStore(dest, UDID);
  during = () => other.pin(id);
  assert.equal((await store.prepareNext())?.reused, false);
  assert.equal((await other.list()).find((x) => x.id === id)?.pinned, true);
  // A backup committed by the other while the copy is made: the copy is of the old latest.
  await fsp.rm(store.nextDir, { recursive: true });
  during = async () => {
    const s = await other.beginStaging();
    await writeBackup(s.backupDir, sampleEntries(50), { uuid: 'committed-meanwhile' });
    await s.commit();
  };
  await assert.rejects(
    store.prepareNext(),
    (e) => isMooringError(e, 'IO') && /changed/.test(e.message),
  );
  assert.ok(!existsSync(store.nextDir));
  during = undefined;
  assert.equal((await store.prepareNext())?.reused, false, 'made again from the new latest');
});
