/**
 * The same backup folder, taken turns by Mooring and Debian's idevicebackup2 (libimobiledevice
 * 1.3.0): each continues incrementally from what the other left, and the folder always equals the
 * device byte for byte.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { runBackup } from '../../src/backup';
import {
  assertBackupMatches,
  idevicebackup2,
  lastFinished,
  listing,
  makeTarget,
  startBackupFixture,
  withSession,
  type BackupFixture,
} from './fixture';

let f: BackupFixture;

before(async () => {
  f = await startBackupFixture({ seed: 41 });
});

after(async () => {
  await f?.close();
});

type Mutation = { added: string[]; modified: string[]; deleted: string[] };

async function mutate(): Promise<Mutation> {
  return (await f.sim.ctl('mutate', { add: 2, modify: 2, delete: 1 })) as Mutation;
}

test('idevicebackup2 continues incrementally from a folder Mooring made', async () => {
  const target = await makeTarget(f);
  const ours = await withSession(f, 'usb', (session) => runBackup({ session, target, full: true }));
  assert.equal(ours.ok, true, ours.message);
  await mutate();
  const out = await idevicebackup2(f, ['backup', target.root]);
  assert.match(out, /Backup Successful\./);
  assert.equal(lastFinished(f).incremental, true, 'the device diffed against our Manifest.db');
  await assertBackupMatches(target, await listing(f));
});

test('Mooring continues incrementally from a folder idevicebackup2 made', async () => {
  const target = await makeTarget(f);
  const out = await idevicebackup2(f, ['backup', '--full', target.root]);
  assert.match(out, /Backup Successful\./);
  const m = await mutate();
  const ours = await withSession(f, 'wifi', (session) => runBackup({ session, target }));
  assert.equal(ours.ok, true, ours.message);
  assert.equal(ours.isFull, false);
  assert.equal(lastFinished(f).incremental, true);
  assert.equal(ours.filesReceived, m.added.length + m.modified.length + 2 + 4);
  await assertBackupMatches(target, await listing(f));
});
