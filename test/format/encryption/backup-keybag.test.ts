import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import {
  BACKUP_PROTECTION_CLASSES,
  IOS_DPIC,
  IOS_ITER,
  MAX_BACKUP_KEYBAG_BYTES,
  createBackupKeyBag,
  createBackupKeyBagAsync,
  keyBagRounds,
  keyBagUuid,
  unlockBackupKeyBag,
  unlockBackupKeyBagAsync,
  aesKeyUnwrap,
} from '../../../src/format/encryption';
import { encodeKeyBagRecord, parseKeyBag } from '../../../src/format/keybag';
import { isMooringError } from '../../../src/util/errors';

const QUICK = { dpic: 10, iter: 10 };

test('a created keybag unlocks with its password to the same class keys and UUID', () => {
  const { keyBag, unlocked } = createBackupKeyBag('correct horse', QUICK);
  const again = unlockBackupKeyBag(keyBag, 'correct horse');
  assert.deepEqual(again.uuid, unlocked.uuid);
  assert.deepEqual(
    [...again.classKeys.keys()].sort((a, b) => a - b),
    [...BACKUP_PROTECTION_CLASSES],
  );
  for (const [clas, key] of unlocked.classKeys) {
    assert.equal(key.length, 32);
    assert.deepEqual(again.classKeys.get(clas), key);
  }
  assert.deepEqual(keyBagUuid(keyBag), unlocked.uuid);
  assert.deepEqual(keyBagRounds(keyBag), { dpic: 10, iter: 10 });
});

test('the keybag is the TLV layout iOS writes, derivation as the reference says', () => {
  const { keyBag, unlocked } = createBackupKeyBag('pw', QUICK);
  const recs = parseKeyBag(keyBag);
  assert.deepEqual(
    recs.slice(0, 10).map((r) => r.tag),
    ['VERS', 'TYPE', 'UUID', 'HMCK', 'WRAP', 'SALT', 'ITER', 'DPWT', 'DPIC', 'DPSL'],
  );
  assert.equal(recs[1]!.value.readUInt32BE(0), 1, 'TYPE 1 = backup keybag');
  // Re-derive independently: PBKDF2-SHA256(pw, DPSL, DPIC) then PBKDF2-SHA1(…, SALT, ITER).
  const get = (tag: string) => recs.find((r) => r.tag === tag)!.value;
  const k1 = crypto.pbkdf2Sync('pw', get('DPSL'), get('DPIC').readUInt32BE(0), 32, 'sha256');
  const passKey = crypto.pbkdf2Sync(k1, get('SALT'), get('ITER').readUInt32BE(0), 32, 'sha1');
  const firstWpky = recs.find((r) => r.tag === 'WPKY')!.value;
  const clas = recs.find((r) => r.tag === 'CLAS')!.value.readUInt32BE(0);
  assert.deepEqual(aesKeyUnwrap(passKey, firstWpky), unlocked.classKeys.get(clas));
});

test('a wrong password is WRONG_PASSWORD with a message saying what to check', async () => {
  const { keyBag } = createBackupKeyBag('right', QUICK);
  assert.throws(
    () => unlockBackupKeyBag(keyBag, 'wrong'),
    (e: unknown) => isMooringError(e, 'WRONG_PASSWORD') && /password/.test(e.message),
  );
  await assert.rejects(unlockBackupKeyBagAsync(keyBag, 'Right'), (e: unknown) =>
    isMooringError(e, 'WRONG_PASSWORD'),
  );
});

test('async create/unlock agree with the sync ones; unicode passwords are UTF-8', async () => {
  const { keyBag, unlocked } = await createBackupKeyBagAsync('päss wörd 🔑', QUICK);
  const u = unlockBackupKeyBag(keyBag, 'päss wörd 🔑');
  assert.deepEqual(u.classKeys.get(3), unlocked.classKeys.get(3));
  const u2 = await unlockBackupKeyBagAsync(keyBag, 'päss wörd 🔑');
  assert.deepEqual(u2.classKeys.get(1), unlocked.classKeys.get(1));
});

test('two keybags for the same password differ (fresh salt, UUID and class keys)', () => {
  const a = createBackupKeyBag('same', QUICK);
  const b = createBackupKeyBag('same', QUICK);
  assert.notDeepEqual(a.unlocked.uuid, b.unlocked.uuid);
  assert.notDeepEqual(a.unlocked.classKeys.get(1), b.unlocked.classKeys.get(1));
  assert.throws(
    () => unlockBackupKeyBag(b.keyBag, 'other'),
    (e: unknown) => isMooringError(e, 'WRONG_PASSWORD'),
  );
  assert.deepEqual(unlockBackupKeyBag(b.keyBag, 'same').uuid, b.unlocked.uuid);
});

test('defaults are the iOS round counts; a real-cost keybag (IOS_DPIC) round-trips', async () => {
  const { keyBag, unlocked } = await createBackupKeyBagAsync('real rounds');
  assert.deepEqual(keyBagRounds(keyBag), { dpic: IOS_DPIC, iter: IOS_ITER });
  const u = await unlockBackupKeyBagAsync(keyBag, 'real rounds');
  assert.deepEqual(u.classKeys.get(4), unlocked.classKeys.get(4));
});

test('a pre-10.2 keybag (no DPIC/DPSL: SHA-1 round only) unlocks', () => {
  const classKey = crypto.randomBytes(32);
  const salt = crypto.randomBytes(20);
  const passKey = crypto.pbkdf2Sync('old', salt, 5, 32, 'sha1');
  const wrap = crypto.createCipheriv(
    'id-aes256-wrap',
    passKey,
    Buffer.from('a6a6a6a6a6a6a6a6', 'hex'),
  );
  const wpky = Buffer.concat([wrap.update(classKey), wrap.final()]);
  const bag = Buffer.concat([
    encodeKeyBagRecord('VERS', 3),
    encodeKeyBagRecord('TYPE', 1),
    encodeKeyBagRecord('UUID', Buffer.alloc(16, 1)),
    encodeKeyBagRecord('SALT', salt),
    encodeKeyBagRecord('ITER', 5),
    encodeKeyBagRecord('UUID', Buffer.alloc(16, 2)),
    encodeKeyBagRecord('CLAS', 3),
    encodeKeyBagRecord('WRAP', 2),
    encodeKeyBagRecord('KTYP', 0),
    encodeKeyBagRecord('WPKY', wpky),
  ]);
  assert.deepEqual(keyBagRounds(bag), { dpic: null, iter: 5 });
  assert.deepEqual(unlockBackupKeyBag(bag, 'old').classKeys.get(3), classKey);
});

test('hostile keybags: truncated, oversized, absurd round counts, missing fields → MALFORMED', () => {
  const { keyBag } = createBackupKeyBag('x', QUICK);
  const malformed = (e: unknown) => isMooringError(e, 'MALFORMED');
  assert.throws(() => keyBagRounds(keyBag.subarray(0, keyBag.length - 3)), malformed);
  assert.throws(() => keyBagRounds(Buffer.alloc(MAX_BACKUP_KEYBAG_BYTES + 1)), malformed);
  assert.throws(() => keyBagRounds(Buffer.alloc(0)), malformed);
  const head = (iter: number, dpic?: number) =>
    Buffer.concat([
      encodeKeyBagRecord('UUID', Buffer.alloc(16)),
      encodeKeyBagRecord('SALT', Buffer.alloc(20)),
      encodeKeyBagRecord('ITER', iter),
      ...(dpic === undefined
        ? []
        : [encodeKeyBagRecord('DPIC', dpic), encodeKeyBagRecord('DPSL', Buffer.alloc(20))]),
    ]);
  // A keybag asking for 4 billion rounds would pin a CPU for hours: refused before deriving.
  assert.throws(() => unlockBackupKeyBag(head(10, 0xffffffff), 'x'), malformed);
  assert.throws(() => unlockBackupKeyBag(head(0xffffffff), 'x'), malformed);
  assert.throws(() => unlockBackupKeyBag(head(0), 'x'), malformed);
  // No class keys at all.
  assert.throws(() => unlockBackupKeyBag(head(1), 'x'), malformed);
  // ITER with a 2-byte value.
  const badInt = Buffer.concat([
    encodeKeyBagRecord('UUID', Buffer.alloc(16)),
    encodeKeyBagRecord('ITER', Buffer.alloc(2)),
  ]);
  assert.throws(() => keyBagRounds(badInt), malformed);
  // Too many class records.
  const many = Buffer.concat([
    head(1),
    ...Array.from({ length: 40 }, () => encodeKeyBagRecord('UUID', Buffer.alloc(16))),
  ]);
  assert.throws(() => keyBagRounds(many), malformed);
});
