/**
 * Backup encryption of the simulated device against Debian's real idevicebackup2 1.3.0:
 * `encryption on PW`, an encrypted backup that opens only with PW (keybag, ManifestKey, Manifest.db
 * and every payload decrypted here with src/format/encryption), `restore --password` into a wiped
 * device gives the same listing, a wrong password is refused, `changepw` (new keybag → the next
 * backup is full), wrong old passwords refused, `encryption off`.
 * Test passwords go through idevicebackup2's argv: its only non-interactive way.
 */
import { pairWithIdevicepair, realTool } from '../../helpers/real-tools';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { decodePlist, isPlistDict, type PlistDict } from '../../../src/protocol/plist';
import { readManifestDb } from '../../../src/format/manifest-db';
import {
  decryptPayload,
  keyBagRounds,
  unlockBackupKeyBag,
  unwrapClassKey,
} from '../../../src/format/encryption';
import type { ListingJson } from '../../../src/sim/content/model';
import { startSim, type RunningSim } from '../../../src/sim/index';
import { isMooringError } from '../../../src/util/errors';

const dirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(path.join(os.tmpdir(), 'mooring-enc-'));
  dirs.push(d);
  return d;
}

let sim: RunningSim;
const logs: Array<Record<string, unknown>> = [];
const ROUNDS = { dpic: 50, iter: 10 };

before(async () => {
  sim = await startSim({
    stateDir: tmp(),
    files: 40,
    bytes: 1_000_000,
    seed: 8,
    keyBagRounds: ROUNDS,
    log: (line) => logs.push(JSON.parse(line) as Record<string, unknown>),
  });
  await pairWithIdevicepair(sim.usbmuxdAddress, sim.udid);
});

after(async () => {
  await sim?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const ib2 = (args: string[]) =>
  realTool(sim.usbmuxdAddress, 'idevicebackup2', ['-u', sim.udid, ...args]).catch(
    (e: Error) => e.message,
  );

function lastFinished(): Record<string, unknown> {
  const f = logs.filter((l) => l.event === 'mobilebackup2.finished');
  assert.ok(f.length > 0);
  return f[f.length - 1]!;
}

async function encStatus(): Promise<{ willEncrypt: boolean; keyBag: { uuid: string } | null }> {
  const s = (await sim.ctl('status')) as { encryption: never };
  return s.encryption;
}

/** Opens the backup with `password` exactly as a host must, and checks it against the device. */
function assertEncryptedBackupMatches(root: string, password: string, l: ListingJson): void {
  const dir = path.join(root, sim.udid);
  const manifest = decodePlist(readFileSync(path.join(dir, 'Manifest.plist'))) as PlistDict;
  assert.equal(manifest.IsEncrypted, true);
  assert.ok(Buffer.isBuffer(manifest.BackupKeyBag) && Buffer.isBuffer(manifest.ManifestKey));
  assert.deepEqual(keyBagRounds(manifest.BackupKeyBag), ROUNDS);
  const bag = unlockBackupKeyBag(manifest.BackupKeyBag, password);
  const rawDb = readFileSync(path.join(dir, 'Manifest.db'));
  assert.notEqual(
    rawDb.subarray(0, 15).toString('latin1'),
    'SQLite format 3',
    'Manifest.db is encrypted',
  );
  const plainDb = path.join(tmp(), 'Manifest.db');
  writeFileSync(plainDb, decryptPayload(unwrapClassKey(bag, manifest.ManifestKey), rawDb));
  const rows = readManifestDb(plainDb);
  assert.equal(rows.length, l.entries.length);
  const byId = new Map(rows.map((r) => [r.fileId, r]));
  let files = 0;
  for (const e of l.entries) {
    if (e.type !== 'file') continue;
    const id = createHash('sha1').update(`${e.domain}-${e.relativePath}`).digest('hex');
    const row = byId.get(id);
    assert.ok(row?.file.encryptionKey, `EncryptionKey of ${e.relativePath}`);
    const cipher = readFileSync(path.join(dir, id.slice(0, 2), id));
    const plain = decryptPayload(unwrapClassKey(bag, row.file.encryptionKey), cipher);
    assert.equal(row.file.size, plain.length, 'MBFile Size is the plaintext size');
    assert.notDeepEqual(cipher.subarray(0, plain.length), plain);
    assert.equal(createHash('sha256').update(plain).digest('hex'), e.sha256, e.relativePath);
    files++;
  }
  assert.ok(files > 10);
}

test('idevicebackup2: encryption on, encrypted backup, restore --password, changepw, off', async () => {
  const root = tmp();
  assert.deepEqual(await encStatus(), { willEncrypt: false, keyBag: null });
  const on = await ib2(['encryption', 'on', 'first secret', root]);
  assert.match(on, /Backup encryption has been enabled successfully\./);
  const s1 = await encStatus();
  assert.equal(s1.willEncrypt, true);
  assert.ok(s1.keyBag);
  const info = await realTool(sim.usbmuxdAddress, 'ideviceinfo', [
    '-u',
    sim.udid,
    '-q',
    'com.apple.mobile.backup',
    '-k',
    'WillEncrypt',
  ]);
  assert.equal(info.trim(), 'true');
  // Already on: idevicebackup2 refuses from WillEncrypt, as with a real device.
  assert.match(await ib2(['encryption', 'on', 'other', root]), /already enabled/);

  const full = await ib2(['backup', '--full', root]);
  assert.match(full, /Backup Successful\./);
  const l1 = (await sim.ctl('listing')) as ListingJson;
  assertEncryptedBackupMatches(root, 'first secret', l1);
  const manifest = decodePlist(readFileSync(path.join(root, sim.udid, 'Manifest.plist')));
  assert.ok(isPlistDict(manifest) && Buffer.isBuffer(manifest.BackupKeyBag));
  assert.throws(
    () => unlockBackupKeyBag(manifest.BackupKeyBag as Buffer, 'wrong'),
    (e: unknown) => isMooringError(e, 'WRONG_PASSWORD'),
  );

  // `list` works on the device's own encrypted backup (it holds the keybag), without a password.
  const list = await ib2(['list', root]);
  assert.match(list, /HomeDomain,Library\/SMS\/sms\.db,1,/);

  // Same keybag: the next backup is incremental and still opens.
  await sim.ctl('mutate', { add: 1, modify: 2, delete: 1 });
  assert.match(await ib2(['backup', root]), /Backup Successful\./);
  assert.equal(lastFinished().incremental, true);
  const l2 = (await sim.ctl('listing')) as ListingJson;
  assertEncryptedBackupMatches(root, 'first secret', l2);

  // Restore: refused without the right password, then the same listing into a wiped device.
  await sim.ctl('wipe');
  const wrong = await ib2([
    'restore',
    '--system',
    '--settings',
    '--no-reboot',
    '--password',
    'nope',
    root,
  ]);
  assert.doesNotMatch(wrong, /Restore Successful/);
  assert.equal(((await sim.ctl('listing')) as ListingJson).entries.length, 0);
  const restore = await ib2([
    'restore',
    '--system',
    '--settings',
    '--no-reboot',
    '--password',
    'first secret',
    root,
  ]);
  assert.match(restore, /Restore Successful\./);
  assert.deepEqual(await sim.ctl('listing'), l2);

  // changepw: a wrong old password is refused; the right one makes a new keybag → full backup.
  const badChange = await ib2(['changepw', 'not it', 'second secret', root]);
  assert.match(badChange, /Could not change backup encryption password/);
  assert.equal((await encStatus()).keyBag?.uuid, s1.keyBag.uuid);
  const change = await ib2(['changepw', 'first secret', 'second secret', root]);
  assert.match(change, /password has been changed successfully/);
  assert.notEqual((await encStatus()).keyBag?.uuid, s1.keyBag.uuid);
  assert.match(await ib2(['backup', root]), /Backup Successful\./);
  assert.equal(lastFinished().incremental, false, 'a new keybag forces a full backup');
  assertEncryptedBackupMatches(root, 'second secret', l2);
  assert.throws(
    () => assertEncryptedBackupMatches(root, 'first secret', l2),
    (e: unknown) => isMooringError(e, 'WRONG_PASSWORD'),
  );

  // off: wrong password refused, right one disables; the next backup is plain and full.
  assert.match(await ib2(['encryption', 'off', 'first secret', root]), /Could not disable/);
  assert.equal((await encStatus()).willEncrypt, true);
  assert.match(
    await ib2(['encryption', 'off', 'second secret', root]),
    /Backup encryption has been disabled successfully\./,
  );
  assert.deepEqual(await encStatus(), { willEncrypt: false, keyBag: null });
  assert.match(await ib2(['encryption', 'off', 'second secret', root]), /not enabled/);
  assert.match(await ib2(['backup', root]), /Backup Successful\./);
  assert.equal(lastFinished().incremental, false);
  // The simulator never logs a password.
  const logText = logs.map((l) => JSON.stringify(l)).join('\n');
  assert.ok(logText.includes('mobilebackup2.password-changed'));
  for (const pw of ['first secret', 'second secret', 'not it', 'nope'])
    assert.ok(!logText.includes(pw), `log mentions ${pw}`);
  const plain = decodePlist(readFileSync(path.join(root, sim.udid, 'Manifest.plist')));
  assert.ok(isPlistDict(plain) && plain.IsEncrypted === false && plain.ManifestKey === undefined);
  assert.equal(
    readFileSync(path.join(root, sim.udid, 'Manifest.db'))
      .subarray(0, 15)
      .toString('latin1'),
    'SQLite format 3',
  );
});
