/**
 * runBackup against the real simulator, over usbmuxd and over Wi-Fi: a full backup equals the
 * device's listing byte for byte; an incremental one after `ctl mutate` transfers only what changed
 * and never writes into a file an older snapshot shares (THE RULE); the stall watchdog; the sync
 * lock and notifications around the backup.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { decodePlist, isPlistDict } from '../../src/protocol/plist';
import { runBackup, type BackupEvent } from '../../src/backup';
import { fileIdFor } from '../../src/format/file-id';
import {
  assertBackupMatches,
  lastFinished,
  listing,
  makeTarget,
  payloadIds,
  startBackupFixture,
  walk,
  withSession,
  type BackupFixture,
} from './fixture';

let f: BackupFixture;

before(async () => {
  f = await startBackupFixture();
});

after(async () => {
  await f?.close();
});

test('full backup over usbmuxd: the folder equals the device, Info.plist from lockdown and apps', async () => {
  const target = await makeTarget(f);
  const events: BackupEvent[] = [];
  const logStart = f.logs.length;
  // An iTunes file on the device's media area goes into Info.plist's "iTunes Files".
  const prefs = Buffer.from('iTunesPrefs from the device\n');
  await fsp.writeFile(path.join(f.sim.device.mediaDir, 'iTunes_Control/iTunes/iTunesPrefs'), prefs);
  const result = await withSession(f, 'usb', (session) =>
    runBackup({ session, target, full: true, onEvent: (e) => events.push(e) }),
  );
  assert.equal(result.ok, true, result.message);
  assert.equal(result.isFull, true);
  assert.deepEqual(result.refusedPaths, []);
  const l = await listing(f);
  await assertBackupMatches(target, l);
  // Payloads, Manifest.db/.plist and the four Status.plist uploads: nothing else, nothing twice.
  assert.equal(result.filesReceived, l.files + 2 + 4);
  assert.ok(result.bytesReceived >= l.bytes, `${result.bytesReceived} ≥ ${l.bytes}`);

  const phases = events.flatMap((e) => (e.type === 'phase' ? [e.phase] : []));
  assert.deepEqual(phases, ['connecting', 'locking', 'preparing', 'transferring', 'finishing']);
  const progress = events.flatMap((e) => (e.type === 'progress' ? [e] : []));
  assert.ok(progress.length > 0);
  const lastProgress = progress[progress.length - 1]!;
  assert.equal(lastProgress.percent, 100);
  assert.equal(lastProgress.bytesReceived, result.bytesReceived);
  for (let i = 1; i < progress.length; i++) {
    assert.ok(progress[i]!.bytesReceived >= progress[i - 1]!.bytesReceived);
  }

  const info = decodePlist(await fsp.readFile(path.join(target.root, f.sim.udid, 'Info.plist')));
  assert.ok(isPlistDict(info));
  const values = f.sim.device.values();
  assert.equal(info['Target Identifier'], f.sim.udid);
  assert.equal(info['Unique Identifier'], f.sim.udid.toUpperCase());
  assert.equal(info['Target Type'], 'Device');
  assert.equal(info['Device Name'], values.DeviceName);
  assert.equal(info['Product Version'], values.ProductVersion);
  assert.equal(info['Serial Number'], values.SerialNumber);
  assert.deepEqual(
    info['Installed Applications'],
    f.sim.content.apps().map((a) => a.CFBundleIdentifier),
  );
  assert.ok(typeof info['iTunes Version'] === 'string' && info['iTunes Version'].length > 0);
  assert.match(String(info.GUID), /^[0-9A-F]{32}$/);
  assert.deepEqual(info['iTunes Files'], { iTunesPrefs: prefs });
  // No temp files left anywhere, no Snapshot folder.
  const all = await walk(target.root);
  assert.deepEqual(
    all.filter((p) => p.includes('.mooring-tmp-') || p.includes('/Snapshot/')),
    [],
  );

  // The device saw the sync notifications around the lock, in LIMD's order.
  const order = [
    'com.apple.itunes-mobdev.syncWillStart',
    'com.apple.itunes-mobdev.syncLockRequest',
    'com.apple.itunes-mobdev.syncDidStart',
    'com.apple.itunes-mobdev.syncDidFinish',
  ];
  const posted = f.logs
    .slice(logStart)
    .filter((x) => x.event === 'notification' && order.includes(String(x.name)))
    .map((x) => x.name);
  assert.deepEqual(posted, order);
});

test('incremental over Wi-Fi after mutate: only changed files move, shared inodes untouched', async () => {
  const target = await makeTarget(f);
  const first = await withSession(f, 'wifi', (session) => runBackup({ session, target }));
  assert.equal(first.ok, true, first.message);
  const dir = path.join(target.root, f.sim.udid);

  // An older snapshot: every file of the first backup hard-linked into a second folder.
  const snapshot = path.join(target.outer, 'older-snapshot');
  const before = new Map<string, { ino: number; sha: Buffer }>();
  for (const rel of await walk(dir)) {
    const src = path.join(dir, rel);
    const dst = path.join(snapshot, rel);
    await fsp.mkdir(path.dirname(dst), { recursive: true });
    await fsp.link(src, dst);
    before.set(rel, { ino: (await fsp.stat(src)).ino, sha: await fsp.readFile(src) });
  }

  const m = (await f.sim.ctl('mutate', { add: 2, modify: 3, delete: 2 })) as {
    added: string[];
    modified: string[];
    deleted: string[];
  };
  const second = await withSession(f, 'wifi', (session) => runBackup({ session, target }));
  assert.equal(second.ok, true, second.message);
  assert.equal(second.isFull, false);
  assert.equal(lastFinished(f).incremental, true);
  const l = await listing(f);
  await assertBackupMatches(target, l);

  // Only the changed payloads travelled: 2 added + 3 modified, plus Manifest.db/.plist and Status ×4.
  const changed = [...m.added, ...m.modified];
  assert.equal(second.filesReceived, changed.length + 2 + 4);
  assert.ok(second.bytesReceived < first.bytesReceived / 2);

  // The older snapshot is byte-identical: nothing was written into a shared inode.
  for (const [rel, b] of before) {
    assert.deepEqual(await fsp.readFile(path.join(snapshot, rel)), b.sha, rel);
  }
  // Unchanged payloads kept their inode (not rewritten); changed ones are new inodes.
  const changedIds = new Set(
    changed.map((p) => {
      const slash = p.indexOf('/');
      return fileIdFor(p.slice(0, slash), p.slice(slash + 1));
    }),
  );
  for (const id of await payloadIds(dir)) {
    const rel = `${id.slice(0, 2)}/${id}`;
    const ino = (await fsp.stat(path.join(dir, rel))).ino;
    const old = before.get(rel);
    if (changedIds.has(id)) assert.notEqual(ino, old?.ino, `${rel} is a new file`);
    else assert.equal(ino, old?.ino, `${rel} was not rewritten`);
  }
});

test('stall watchdog: a device that thinks before its first message reports stalled, then resumes', async () => {
  const target = await makeTarget(f);
  await f.sim.ctl('fault', { name: 'delayFirstMessageMs', value: '1200' });
  try {
    const events: BackupEvent[] = [];
    const result = await withSession(f, 'usb', (session) =>
      runBackup({
        session,
        target,
        timeouts: { stallNoticeMs: 300 },
        onEvent: (e) => events.push(e),
      }),
    );
    assert.equal(result.ok, true, result.message);
    const stalls = events.filter((e) => e.type === 'stalled');
    assert.ok(stalls.length >= 2, `stalled events: ${stalls.length}`);
    const resumed = events.find((e) => e.type === 'resumed');
    assert.ok(resumed && resumed.type === 'resumed' && resumed.waitedMs >= 1000);
    // Stalls come before the transfer starts, and each reports a growing wait.
    const firstTransfer = events.findIndex((e) => e.type === 'phase' && e.phase === 'transferring');
    assert.ok(events.indexOf(stalls[stalls.length - 1]!) < firstTransfer);
  } finally {
    await f.sim.ctl('fault', { name: 'delayFirstMessageMs', value: 'off' });
  }
});

test('a device silent past the deadline ends in a timeout failure, and the lock is released', async () => {
  const target = await makeTarget(f);
  await f.sim.ctl('fault', { name: 'delayFirstMessageMs', value: '3000' });
  try {
    const result = await withSession(f, 'usb', (session) =>
      runBackup({ session, target, timeouts: { firstMessageMs: 800, stallNoticeMs: 200 } }),
    );
    assert.equal(result.ok, false);
    assert.equal(result.failure, 'timeout');
    assert.match(result.message, /stopped responding/);
  } finally {
    await f.sim.ctl('fault', { name: 'delayFirstMessageMs', value: 'off' });
  }
  const next = await makeTarget(f);
  const again = await withSession(f, 'usb', (session) => runBackup({ session, target: next }));
  assert.equal(again.ok, true, again.message);
});
