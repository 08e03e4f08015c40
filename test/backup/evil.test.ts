/**
 * A hostile device (the simulator's `evil` faults) and a booby-trapped backup folder: every case
 * ends with an error reply or a clean failure, nothing is written (or read) outside the target,
 * refusals are recorded, and nothing crashes or hangs.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, promises as fsp } from 'node:fs';
import path from 'node:path';
import { runBackup, type BackupEvent, type BackupResult } from '../../src/backup';
import { makeTarget, startBackupFixture, walk, withSession, type BackupFixture } from './fixture';

let f: BackupFixture;

before(async () => {
  f = await startBackupFixture({ seed: 31, files: 20, bytes: 300_000 });
});

after(async () => {
  await f?.close();
});

async function evilBackup(mode: string): Promise<{
  result: BackupResult;
  target: Awaited<ReturnType<typeof makeTarget>>;
  events: BackupEvent[];
}> {
  const target = await makeTarget(f);
  const events: BackupEvent[] = [];
  await f.sim.ctl('fault', { name: 'evil', value: mode });
  try {
    const result = await withSession(f, 'usb', (session) =>
      runBackup({ session, target, onEvent: (e) => events.push(e) }),
    );
    return { result, target, events };
  } finally {
    await f.sim.ctl('fault', { name: 'evil', value: 'off' });
  }
}

/** Only `root/` in the sentinel folder around the target, and no temp file inside it. */
async function nothingOutside(target: { outer: string; root: string }): Promise<void> {
  assert.deepEqual(await fsp.readdir(target.outer), ['root']);
  assert.deepEqual(
    (await walk(target.root)).filter((p) => p.includes('.mooring-tmp-')),
    [],
  );
}

test('path-escape: ".." and absolute upload paths are refused, recorded, and written nowhere', async () => {
  const { result, target, events } = await evilBackup('path-escape');
  const udid = f.sim.udid;
  assert.equal(result.ok, false);
  assert.equal(result.failure, 'device-error');
  assert.equal(result.errorCode, 104, 'the device gave up after our error reply');
  assert.deepEqual(result.refusedPaths, [
    `${udid}/../../mooring-escape-${udid}.txt`,
    `/tmp/mooring-escape-${udid}.txt`,
  ]);
  assert.deepEqual(
    events.flatMap((e) => (e.type === 'refused-path' ? [e.path] : [])),
    result.refusedPaths,
  );
  await nothingOutside(target);
  assert.equal(existsSync(`/tmp/mooring-escape-${udid}.txt`), false);
  assert.equal(
    existsSync(path.join(path.dirname(target.outer), `mooring-escape-${udid}.txt`)),
    false,
  );
});

const broken: Array<[mode: string, failure: BackupResult['failure'], text: RegExp]> = [
  ['oversized-frame', 'protocol', /sent something invalid/],
  ['bad-plist', 'protocol', /sent something invalid/],
  ['huge-filename', 'protocol', /sent something invalid/],
  ['truncated-stream', 'connection-lost', /connection to the device was lost/],
];
for (const [mode, failure, text] of broken) {
  test(`${mode}: the backup fails cleanly and quickly, leaving no partial file`, async () => {
    // Default deadlines (minutes): the failure must come from noticing the bad input itself.
    const { result, target } = await evilBackup(mode);
    assert.equal(result.ok, false);
    assert.equal(result.failure, failure, result.message);
    assert.match(result.message, text);
    await nothingOutside(target);
    const files = await walk(path.join(target.root, f.sim.udid));
    assert.equal(
      files.some((p) => p.includes('truncated-by-evil-device')),
      false,
    );
  });
}

test('a symlinked folder in the backup is refused, and nothing lands where it points', async () => {
  const target = await makeTarget(f);
  const elsewhere = path.join(target.outer, 'elsewhere');
  await fsp.mkdir(elsewhere);
  await fsp.symlink(elsewhere, path.join(target.root, f.sim.udid, 'Snapshot'));
  const result = await withSession(f, 'usb', (session) => runBackup({ session, target }));
  assert.equal(result.ok, false);
  assert.equal(result.errorCode, 104);
  assert.ok(result.refusedPaths.includes(`${f.sim.udid}/Snapshot`), String(result.refusedPaths));
  assert.deepEqual(await fsp.readdir(elsewhere), []);
});

test('a symlinked Status.plist is neither read nor written through', async () => {
  const target = await makeTarget(f);
  const secret = path.join(target.outer, 'secret.txt');
  await fsp.writeFile(secret, 'not for the device\n');
  await fsp.symlink(secret, path.join(target.root, f.sim.udid, 'Status.plist'));
  const result = await withSession(f, 'usb', (session) => runBackup({ session, target }));
  // Reading it is refused; the device's new Status.plist replaces the link (rename does not
  // follow it), so the backup completes and the secret is untouched.
  assert.ok(result.refusedPaths.includes(`${f.sim.udid}/Status.plist`));
  assert.equal(await fsp.readFile(secret, 'utf8'), 'not for the device\n');
  assert.equal(result.ok, true, result.message);
  assert.ok((await fsp.lstat(path.join(target.root, f.sim.udid, 'Status.plist'))).isFile());
  // The device was never sent the secret's bytes: it saw Status.plist as unreadable (full backup).
  const mode = f.logs.filter((l) => l.event === 'mobilebackup2.mode').pop();
  assert.equal(mode?.incremental, false);
  assert.equal(mode?.reason, 'no readable Status.plist');
});

test('mobilebackup2 refused at its version exchange: a clear failure, and no connection left open', async () => {
  const sockets = (): number =>
    process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap' || r === 'PipeWrap')
      .length;
  const before = sockets();
  const { result } = await evilBackup('version-wrong-name');
  assert.equal(result.ok, false);
  assert.match(result.message, /VersionExchange|version/i);
  // notification_proxy and AFC started alongside it; no socket of the attempt may outlive it (the
  // simulator runs in this process too, so both ends are counted).
  const deadline = Date.now() + 5000;
  while (sockets() > before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  assert.equal(sockets(), before, `open sockets: ${process.getActiveResourcesInfo().join(', ')}`);
});
