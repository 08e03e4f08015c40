/** Unlocking, decrypting and checking encrypted backups (src/store/encrypted.ts). */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp, statSync } from 'node:fs';
import path from 'node:path';
import { fileIdFor, payloadRelPath } from '../../src/format/file-id';
import { iterateManifestDb } from '../../src/format/manifest-db';
import { createBackupKeyBag } from '../../src/format/encryption';
import {
  checkEncryptedBackup,
  clearDecryptedManifests,
  clearUnlockedKeyBags,
  keyBagFingerprint,
  openEncryptedBackup,
  readBackupEncryption,
  unlockBackup,
  unlockKeyBagCached,
} from '../../src/store/encrypted';
import { isMooringError } from '../../src/util/errors';
import { tempDirs, UDID, writeBackup, type FakeEntry } from './fixture';
import { encryptBackupInPlace, QUICK_ROUNDS } from './encrypted-fixture';

const { tmp, cleanup } = tempDirs('mooring-encrypted-');
after(() => {
  clearDecryptedManifests();
  cleanup();
});

const ENTRIES: FakeEntry[] = [
  { domain: 'HomeDomain', relativePath: 'Library', type: 'dir' },
  { domain: 'HomeDomain', relativePath: 'Library/SMS/sms.db', content: 'messages '.repeat(100) },
  { domain: 'HomeDomain', relativePath: 'Library/Notes/notes.txt', content: 'sixteen bytes!!!' },
  { domain: 'HomeDomain', relativePath: 'Library/empty', content: '' },
  { domain: 'KeychainDomain', relativePath: 'keychain-backup.plist', content: 'secret keychain' },
  { domain: 'HomeDomain', relativePath: 'Library/link', type: 'symlink', target: 'SMS/sms.db' },
];

async function encryptedBackup(password: string): Promise<string> {
  const dir = path.join(tmp(), UDID);
  await writeBackup(dir, ENTRIES);
  await encryptBackupInPlace(dir, password);
  return dir;
}

test('Manifest.plist is read without a password; the keybag id is its UUID', async () => {
  const dir = await encryptedBackup('pw');
  const enc = await readBackupEncryption(dir);
  assert.equal(enc.encrypted, true);
  assert.equal(enc.manifestKey?.length, 44);
  assert.match(enc.keyBagId!, /^[0-9a-f]{32}$/);
  assert.equal(enc.keyBagId, keyBagFingerprint(enc.keyBag!));
  const plain = path.join(tmp(), UDID);
  await writeBackup(plain, ENTRIES);
  assert.deepEqual(await readBackupEncryption(plain), { encrypted: false });
});

test('the right password opens it: Manifest.db decrypts (0600) and files decrypt to their bytes', async () => {
  const dir = await encryptedBackup('correct horse');
  await assert.rejects(
    fsp.readFile(path.join(dir, 'Manifest.db')).then((b) => {
      if (b.subarray(0, 15).toString() === 'SQLite format 3') throw new Error('plain');
      throw Object.assign(new Error('encrypted as expected'), { expected: true });
    }),
    (e) => (e as { expected?: boolean }).expected === true,
  );
  const o = await openEncryptedBackup(dir, ['wrong', 'correct horse']);
  assert.equal(o.password, 'correct horse', 'the candidate that worked');
  assert.equal(statSync(o.manifestDb).mode & 0o777, 0o600);
  assert.equal(statSync(path.dirname(o.manifestDb)).mode & 0o777, 0o700);
  const rows = [...iterateManifestDb(o.manifestDb, { ordered: true })];
  assert.equal(rows.length, ENTRIES.length);
  for (const e of ENTRIES.filter((x) => (x.type ?? 'file') === 'file')) {
    const row = rows.find((r) => r.relativePath === e.relativePath)!;
    const dest = path.join(tmp(), 'out');
    const n = await o.decryptTo(row, dest);
    assert.equal(n, Buffer.from(e.content ?? '').length);
    assert.deepEqual(await fsp.readFile(dest), Buffer.from(e.content ?? ''));
    assert.equal(statSync(dest).mode & 0o777, 0o600);
    await fsp.rm(dest);
  }
});

test('a wrong password is refused with WRONG_PASSWORD (MISMATCH); none known → NO_PASSWORD', async () => {
  const dir = await encryptedBackup('right');
  await assert.rejects(
    openEncryptedBackup(dir, ['nope', 'also nope']),
    (e) =>
      isMooringError(e, 'WRONG_PASSWORD') &&
      e.detail === 'MISMATCH' &&
      !e.message.includes('nope') &&
      /2 known passwords/.test(e.message),
  );
  await assert.rejects(
    openEncryptedBackup(dir, []),
    (e) => isMooringError(e, 'WRONG_PASSWORD') && e.detail === 'NO_PASSWORD',
  );
});

test('password candidates are looked up by keybag id (password eras)', async () => {
  const a = await encryptedBackup('first password');
  const b = await encryptedBackup('second password');
  const idA = (await readBackupEncryption(a)).keyBagId!;
  const idB = (await readBackupEncryption(b)).keyBagId!;
  assert.notEqual(idA, idB);
  const eras = new Map([
    [idA, 'first password'],
    [idB, 'second password'],
  ]);
  const lookup = async (id: string): Promise<string[]> => [eras.get(id) ?? ''];
  assert.equal((await openEncryptedBackup(a, lookup)).password, 'first password');
  assert.equal((await openEncryptedBackup(b, lookup)).password, 'second password');
});

test('unlocked keybags are cached per (keybag, password); a wrong one is never cached', async () => {
  clearUnlockedKeyBags();
  const { keyBag } = createBackupKeyBag('pw', QUICK_ROUNDS);
  const p1 = unlockKeyBagCached(keyBag, 'pw');
  assert.equal(unlockKeyBagCached(keyBag, 'pw'), p1, 'the same derivation is shared');
  assert.equal((await unlockBackup(keyBag, ['pw'])).bag, await p1);
  const w1 = unlockKeyBagCached(keyBag, 'other');
  await assert.rejects(w1, (e) => isMooringError(e, 'WRONG_PASSWORD'));
  const w2 = unlockKeyBagCached(keyBag, 'other');
  assert.notEqual(w2, w1, 'a failure is derived again, not remembered');
  await assert.rejects(w2, (e) => isMooringError(e, 'WRONG_PASSWORD'));
  clearUnlockedKeyBags();
  assert.notEqual(unlockKeyBagCached(keyBag, 'pw'), p1);
});

test('the post-backup check passes on a whole backup and counts what it checked', async () => {
  const dir = await encryptedBackup('pw');
  const r = await checkEncryptedBackup(dir, ['pw'], { sample: 10 });
  assert.deepEqual(r.problems, []);
  assert.equal(r.ok, true);
  assert.equal(r.files, 4);
  assert.equal(r.sizesChecked, 4);
  assert.equal(r.decrypted, 4, 'small backup: every file sampled');
});

test('the check finds a truncated, a missing and a swapped payload', async () => {
  const dir = await encryptedBackup('pw');
  const p = (rel: string, domain = 'HomeDomain'): string =>
    path.join(dir, payloadRelPath(fileIdFor(domain, rel)));
  await fsp.truncate(p('Library/SMS/sms.db'), 32);
  await fsp.rm(p('keychain-backup.plist', 'KeychainDomain'));
  // Same size, other content: only decryption (padding) can tell.
  const notes = p('Library/Notes/notes.txt');
  const bytes = await fsp.readFile(notes);
  bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 0xff;
  await fsp.writeFile(notes, bytes);
  const r = await checkEncryptedBackup(dir, ['pw']);
  assert.equal(r.ok, false);
  assert.equal(r.problemCount, 3, r.problems.join('\n'));
  assert.ok(r.problems.some((x) => /sms\.db: 32 encrypted bytes/.test(x)));
  assert.ok(r.problems.some((x) => /keychain-backup\.plist: its payload is missing/.test(x)));
  assert.ok(r.problems.some((x) => /notes\.txt: .*padding/.test(x)));
});

test('a damaged Manifest.db is MALFORMED, not a wrong password', async () => {
  const dir = await encryptedBackup('pw');
  await fsp.truncate(path.join(dir, 'Manifest.db'), 100);
  await assert.rejects(openEncryptedBackup(dir, ['pw']), (e) => isMooringError(e, 'MALFORMED'));
});
