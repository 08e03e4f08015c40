/**
 * Turns a synthetic backup (fixture.ts) into an encrypted one exactly as reference §7 describes
 * and as src/format/encryption implements it: a password-protected BackupKeyBag, one random key
 * per file wrapped by its class key in MBFile EncryptionKey, AES-CBC payloads (MBFile Size stays
 * the plaintext size), Manifest.db encrypted with ManifestKey. Low PBKDF2 rounds: quick tests.
 */
import crypto from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { decodePlist, encodeBinaryPlist, isPlistDict } from '../../src/protocol/plist';
import { decodeMbFile, encodeMbFile } from '../../src/format/mbfile';
import { payloadRelPath } from '../../src/format/file-id';
import {
  createBackupKeyBag,
  encryptPayload,
  wrapClassKey,
  type UnlockedKeyBag,
} from '../../src/format/encryption';

export const QUICK_ROUNDS = { dpic: 1, iter: 1 };

export async function encryptBackupInPlace(
  dir: string,
  password: string,
  opts: { reuse?: { keyBag: Buffer; unlocked: UnlockedKeyBag } } = {},
): Promise<{ keyBag: Buffer; unlocked: UnlockedKeyBag }> {
  const bag = opts.reuse ?? createBackupKeyBag(password, QUICK_ROUNDS);
  const dbFile = path.join(dir, 'Manifest.db');
  const db = new Database(dbFile);
  const rows = db.prepare('SELECT fileID, flags, file FROM Files').all() as Array<{
    fileID: string;
    flags: number;
    file: Buffer;
  }>;
  const update = db.prepare('UPDATE Files SET file = ? WHERE fileID = ?');
  for (const r of rows) {
    if (r.flags !== 1) continue;
    const rec = decodeMbFile(r.file);
    const key = crypto.randomBytes(32);
    rec.encryptionKey = wrapClassKey(bag.unlocked, rec.protectionClass || 3, key);
    if (!rec.protectionClass) rec.protectionClass = 3;
    const payload = path.join(dir, payloadRelPath(r.fileID));
    const plain = await fsp.readFile(payload).catch(() => Buffer.alloc(0));
    const tmp = `${payload}.enc`;
    await fsp.mkdir(path.dirname(payload), { recursive: true });
    await fsp.writeFile(tmp, encryptPayload(key, plain));
    await fsp.rename(tmp, payload); // a new inode, as a device's upload is
    update.run(encodeMbFile(rec), r.fileID);
  }
  db.close();
  const manifestKey = crypto.randomBytes(32);
  const encDb = encryptPayload(manifestKey, await fsp.readFile(dbFile));
  await fsp.writeFile(`${dbFile}.enc`, encDb);
  await fsp.rename(`${dbFile}.enc`, dbFile);
  const plistFile = path.join(dir, 'Manifest.plist');
  const m = decodePlist(await fsp.readFile(plistFile));
  if (!isPlistDict(m)) throw new Error('Manifest.plist');
  m.IsEncrypted = true;
  m.BackupKeyBag = bag.keyBag;
  m.ManifestKey = wrapClassKey(bag.unlocked, 4, manifestKey);
  await fsp.writeFile(`${plistFile}.new`, encodeBinaryPlist(m));
  await fsp.rename(`${plistFile}.new`, plistFile);
  return bag;
}
