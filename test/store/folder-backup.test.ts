/**
 * readFolderBackup on real stores: a folder with no backup of the device, one with snapshots
 * committed by the store (the newest sound one, and a damaged latest passed over), an unchanged
 * snapshots.json answered from the last reading, and the states it cannot tell: a missing folder
 * (a disk unplugged), a damaged snapshots.json, another program's backup not yet adopted.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { openStore, readFolderBackup, type SnapshotStore } from '../../src/store';
import { sampleEntries, tempDirs, UDID, writeBackup } from './fixture';

const { tmp, cleanup } = tempDirs('mooring-folder-backup-');
after(cleanup);

async function backUp(store: SnapshotStore, n: number): Promise<string> {
  const s = await store.beginStaging();
  await writeBackup(s.backupDir, sampleEntries(n));
  assert.ok((await s.verify()).ok);
  return (await s.commit()).id;
}

test('an empty folder holds no backup; a missing one is not known', async () => {
  const dest = tmp();
  assert.deepEqual((await readFolderBackup(dest, UDID)).value, {
    state: 'known',
    sound: null,
    latest: null,
  });
  const gone = path.join(dest, 'unplugged');
  const r = await readFolderBackup(gone, UDID);
  assert.deepEqual(r.value, { state: 'unknown', why: 'the backup folder is missing' });
  await fsp.writeFile(gone, 'a file, not a folder');
  assert.equal((await readFolderBackup(gone, UDID)).value.state, 'unknown');
});

test('the newest sound snapshot and the latest; a damaged latest is passed over', async () => {
  const dest = tmp();
  let clock = Date.UTC(2026, 0, 1, 10, 0, 0);
  const store = await openStore(dest, UDID, { now: () => new Date(clock) });
  const first = await backUp(store, 4);
  clock += 3_600_000;
  const second = await backUp(store, 5);
  const r = await readFolderBackup(dest, UDID);
  assert.deepEqual(r.value, {
    state: 'known',
    sound: { id: second, at: Date.UTC(2026, 0, 1, 11, 0, 0) },
    latest: { id: second, at: Date.UTC(2026, 0, 1, 11, 0, 0) },
  });
  // Unchanged records: the same reading, without reading the file again.
  assert.equal(await readFolderBackup(dest, UDID, r), r);

  // A verification finds the latest damaged: the older one is the newest sound backup.
  const file = path.join(dest, UDID, 'Manifest.db');
  await fsp.rm(file);
  assert.equal((await store.checkSnapshot('latest', { hash: false })).recorded, true);
  const damaged = await readFolderBackup(dest, UDID, r);
  assert.notEqual(damaged.key, r.key);
  assert.deepEqual(damaged.value, {
    state: 'known',
    sound: { id: first, at: Date.UTC(2026, 0, 1, 10, 0, 0) },
    latest: { id: second, at: Date.UTC(2026, 0, 1, 11, 0, 0) },
  });
});

test('what it cannot tell: damaged records, a backup not yet adopted, our snapshots without records', async () => {
  const dest = tmp();
  const store = await openStore(dest, UDID);
  await backUp(store, 3);
  const records = path.join(dest, '.mooring', UDID, 'snapshots.json');
  await fsp.writeFile(records, '{ not json');
  const bad = await readFolderBackup(dest, UDID);
  assert.equal(bad.value.state, 'unknown');
  assert.match(bad.value.state === 'unknown' ? bad.value.why : '', /snapshots\.json: not JSON/);
  await fsp.rm(records);
  assert.equal((await readFolderBackup(dest, UDID)).value.state, 'unknown', 'records lost');

  // idevicebackup2's or Finder's backup in a folder Mooring never wrote: adopted at the next open.
  const other = tmp();
  await writeBackup(path.join(other, UDID), sampleEntries(2));
  const r = await readFolderBackup(other, UDID);
  assert.deepEqual(r.value, { state: 'unknown', why: 'the device folder has no records yet' });
  // Another device's backups are not this one's.
  assert.deepEqual((await readFolderBackup(other, '00008110-000A1B2C3D4E5F61')).value, {
    state: 'known',
    sound: null,
    latest: null,
  });
});
