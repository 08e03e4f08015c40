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

/** Whether the simulator's last mobilebackup2 was started with TLS (its service-started log). */
function lastBackupServiceTls(fx: BackupFixture): unknown {
  const started = fx.logs.filter(
    (l) => l.event === 'service-started' && l.service === 'com.apple.mobilebackup2',
  );
  assert.ok(started.length > 0, 'the simulator logged mobilebackup2 starting');
  return started[started.length - 1]!.tls;
}

test('through usbmuxd both hosts back up from a device that starts mobilebackup2 plain, or with TLS', async () => {
  // Real devices start it plain through usbmuxd (D40); older simulators, and perhaps some devices,
  // asked for TLS there: a host must follow EnableServiceSSL either way.
  const tlsSim = await startBackupFixture({ seed: 43, serviceTlsOverUsb: true });
  try {
    for (const [fx, tls] of [
      [f, false],
      [tlsSim, true],
    ] as const) {
      const target = await makeTarget(fx);
      const ours = await withSession(fx, 'usb', (session) =>
        runBackup({ session, target, full: true }),
      );
      assert.equal(ours.ok, true, ours.message);
      assert.equal(lastBackupServiceTls(fx), tls);
      await fx.sim.ctl('mutate', { add: 1, modify: 1, delete: 1 });
      const out = await idevicebackup2(fx, ['backup', target.root]);
      assert.match(out, /Backup Successful\./);
      assert.equal(lastBackupServiceTls(fx), tls);
      assert.equal(lastFinished(fx).incremental, true);
      await assertBackupMatches(target, await listing(fx));
    }
  } finally {
    await tlsSim.close();
  }
});
