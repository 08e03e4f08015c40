/**
 * How backups end when they do not succeed, against the real simulator: our own cancel
 * (AbortSignal) mid-transfer, the user cancelling on the device (syncCancelRequest), a host without
 * enough space (MBErrorDomain 105), and a connection that drops mid-upload. Each ends with a clear
 * result, leaves no temp files, and releases the sync lock (the next backup succeeds).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Notifications } from '../../src/services/notification-proxy';
import { AFC_SERVICE_NAME, AfcClient, acquireSyncLock } from '../../src/services/afc';
import { runBackup, type BackupEvent, type BackupResult } from '../../src/backup';
import type { BackupTarget } from '../../src/backup/target';
import {
  assertBackupMatches,
  listing,
  makeTarget,
  startBackupFixture,
  walk,
  withSession,
  type BackupFixture,
} from './fixture';

let f: BackupFixture;

before(async () => {
  f = await startBackupFixture({ seed: 12 });
});

after(async () => {
  await f?.close();
});

async function noTempFiles(target: BackupTarget): Promise<void> {
  const left = (await walk(target.root)).filter((p) => p.includes('.mooring-tmp-'));
  assert.deepEqual(left, [], 'no temp files left behind');
}

/** The sync lock was released: a normal backup right after succeeds. */
async function nextBackupSucceeds(): Promise<void> {
  const target = await makeTarget(f);
  const r = await withSession(f, 'usb', (session) => runBackup({ session, target }));
  assert.equal(r.ok, true, r.message);
  await assertBackupMatches(target, await listing(f));
}

test('our cancel during the transfer stops cleanly and releases the lock', async () => {
  const target = await makeTarget(f);
  const ac = new AbortController();
  const events: BackupEvent[] = [];
  const result = await withSession(f, 'usb', (session) =>
    runBackup({
      session,
      target,
      signal: ac.signal,
      onEvent: (e) => {
        events.push(e);
        // After the first file (Status.plist) arrived, while the device is mid-backup.
        if (e.type === 'progress' && e.filesReceived >= 1) ac.abort();
      },
    }),
  );
  assert.equal(result.ok, false);
  assert.equal(result.cancelled, true);
  assert.equal(result.cancelledBy, 'user');
  assert.equal(result.failure, 'cancelled');
  assert.equal(result.message, 'The backup was cancelled');
  const l = await listing(f);
  assert.ok(result.filesReceived >= 1 && result.filesReceived < l.files, 'stopped mid-way');
  assert.ok(result.bytesReceived < l.bytes);
  assert.ok(events.some((e) => e.type === 'phase' && e.phase === 'transferring'));
  await noTempFiles(target);
  await nextBackupSucceeds();
});

test('an already aborted signal does not touch the device', async () => {
  const target = await makeTarget(f);
  const logStart = f.logs.length;
  const result = await withSession(f, 'usb', (session) =>
    runBackup({ session, target, signal: AbortSignal.abort() }),
  );
  assert.equal(result.cancelled, true);
  assert.deepEqual(
    f.logs.slice(logStart).filter((l) => String(l.event).startsWith('mobilebackup2.')),
    [],
  );
});

test('the user cancelling on the device ends the backup as cancelled by the device', async () => {
  const target = await makeTarget(f);
  const events: BackupEvent[] = [];
  let posted = false;
  const result = await withSession(f, 'usb', (session) =>
    runBackup({
      session,
      target,
      onEvent: (e) => {
        events.push(e);
        if (!posted && e.type === 'progress' && e.bytesReceived > 0) {
          posted = true;
          // What the device does when the user taps "Cancel Sync".
          f.sim.device.postNotification(Notifications.SYNC_CANCEL_REQUEST);
        }
      },
    }),
  );
  assert.equal(result.ok, false);
  assert.equal(result.cancelled, true);
  assert.equal(result.cancelledBy, 'device');
  assert.equal(result.message, 'The backup was cancelled on the device');
  await noTempFiles(target);
  await nextBackupSucceeds();
});

test('not enough space on the host: MBErrorDomain 105 becomes a message with the numbers', async () => {
  const target = await makeTarget(f);
  await f.sim.ctl('fault', { name: 'lowDisk', value: 'on' });
  let result: BackupResult;
  try {
    result = await withSession(f, 'wifi', (session) => runBackup({ session, target }));
  } finally {
    await f.sim.ctl('fault', { name: 'lowDisk', value: 'off' });
  }
  assert.equal(result.ok, false);
  assert.equal(result.failure, 'device-error');
  assert.equal(result.errorCode, 105);
  // The simulated device lacks nothing real under this fault, so its purge request is only the
  // 2 GiB margin: the message must not invent a deficit, and must name the free space we reported.
  assert.match(
    result.message,
    /^Not enough free space on this computer: the device needs more than the [\d.]+ GB free$/,
  );
  await nextBackupSucceeds();
});

test('a connection dropped mid-upload fails at once as connection-lost, not by a deadline', async () => {
  const target = await makeTarget(f);
  await f.sim.ctl('fault', { name: 'dropAfterBytes', value: '300000' });
  let result: BackupResult;
  try {
    // Default deadlines (minutes): only noticing the closed socket can end this quickly.
    result = await withSession(f, 'usb', (session) => runBackup({ session, target }));
  } finally {
    await f.sim.ctl('fault', { name: 'dropAfterBytes', value: 'off' });
  }
  assert.equal(result.ok, false);
  assert.equal(result.failure, 'connection-lost');
  assert.match(result.message, /connection to the device was lost while transferring/);
  assert.ok(result.bytesReceived > 0 && result.bytesReceived <= 300_000);
  await noTempFiles(target);
  await nextBackupSucceeds();
});

test('another program holding the sync lock: a clear failure, and nothing is sent to mobilebackup2', async () => {
  const target = await makeTarget(f);
  await withSession(f, 'usb', async (other) => {
    const afc = new AfcClient(await other.startService(AFC_SERVICE_NAME), { timeoutMs: 5000 });
    const lock = await acquireSyncLock(afc);
    try {
      const logStart = f.logs.length;
      const result = await withSession(f, 'usb', (session) =>
        runBackup({ session, target, timeouts: { lockWaitMs: 400 } }),
      );
      assert.equal(result.ok, false);
      assert.equal(result.failure, 'setup');
      assert.match(result.message, /sync lock stayed busy/);
      assert.deepEqual(
        f.logs
          .slice(logStart)
          .filter((l) => l.event === 'mobilebackup2.request' && l.name === 'Backup'),
        [],
      );
    } finally {
      await lock.release();
      afc.close();
    }
  });
  await nextBackupSucceeds();
});
