import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { PlistUid, decodePlist, encodeBinaryPlist, isPlistDict } from '../../../src/protocol/plist';
import { decodeMbFile, encodeMbFile, S_IFREG, type MbFileRecord } from '../../../src/format/mbfile';
import { createBackupKeyBag, unwrapClassKey, wrapClassKey } from '../../../src/format/encryption';
import { isMooringError } from '../../../src/util/errors';

const REC: MbFileRecord = {
  relativePath: 'Library/Health/healthdb.sqlite',
  lastModified: 1_710_000_000,
  lastStatusChange: 1_710_000_001,
  birth: 1_700_000_000,
  size: 1234,
  mode: S_IFREG | 0o600,
  userId: 501,
  groupId: 501,
  inode: 77,
  protectionClass: 3,
  flags: 0,
};

test('MBFile EncryptionKey is an NSMutableData object ({NS.data}) and round-trips', () => {
  const { unlocked } = createBackupKeyBag('pw', { dpic: 1, iter: 1 });
  const key = crypto.randomBytes(32);
  const blob = wrapClassKey(unlocked, 3, key);
  const buf = encodeMbFile({ ...REC, encryptionKey: blob });
  const top = decodePlist(buf);
  assert.ok(isPlistDict(top) && Array.isArray(top.$objects));
  const objects = top.$objects;
  const root = objects[1];
  assert.ok(isPlistDict(root) && root.EncryptionKey instanceof PlistUid);
  const data = objects[root.EncryptionKey.value];
  assert.ok(isPlistDict(data) && Buffer.isBuffer(data['NS.data']));
  assert.ok(data.$class instanceof PlistUid);
  const cls = objects[data.$class.value];
  assert.ok(isPlistDict(cls) && cls.$classname === 'NSMutableData');
  const back = decodeMbFile(buf);
  assert.deepEqual(back.encryptionKey, blob);
  assert.deepEqual(unwrapClassKey(unlocked, back.encryptionKey), key);
  assert.equal(decodeMbFile(encodeMbFile(REC)).encryptionKey, undefined);
});

test('an EncryptionKey that is not data is MALFORMED', () => {
  const top = decodePlist(encodeMbFile({ ...REC, encryptionKey: Buffer.alloc(44) }));
  assert.ok(isPlistDict(top) && Array.isArray(top.$objects));
  const root = top.$objects[1];
  assert.ok(isPlistDict(root) && root.EncryptionKey instanceof PlistUid);
  top.$objects[root.EncryptionKey.value] = { 'NS.data': 'not bytes' };
  assert.throws(
    () => decodeMbFile(encodeBinaryPlist(top)),
    (e: unknown) => isMooringError(e, 'MALFORMED') && /EncryptionKey/.test(e.message),
  );
});
