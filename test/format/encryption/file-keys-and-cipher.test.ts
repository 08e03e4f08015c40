import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  WRAPPED_FILE_KEY_BYTES,
  createBackupKeyBag,
  createPayloadCipher,
  createPayloadDecipher,
  decryptPayload,
  encryptPayload,
  encryptedPayloadSize,
  unwrapClassKey,
  wrapClassKey,
  wrappedKeyClass,
} from '../../../src/format/encryption';
import { isMooringError } from '../../../src/util/errors';

const QUICK = { dpic: 2, iter: 2 };

test('a file key wrapped by a class key: 44 bytes, LE class first, unwraps back', () => {
  const { unlocked } = createBackupKeyBag('pw', QUICK);
  const key = crypto.randomBytes(32);
  const blob = wrapClassKey(unlocked, 4, key);
  assert.equal(blob.length, WRAPPED_FILE_KEY_BYTES);
  assert.deepEqual(blob.subarray(0, 4), Buffer.from([4, 0, 0, 0]));
  assert.equal(wrappedKeyClass(blob), 4);
  assert.deepEqual(unwrapClassKey(unlocked, blob), key);
});

test('a file key of another keybag is WRONG_PASSWORD; bad blobs and unknown classes MALFORMED', () => {
  const a = createBackupKeyBag('pw', QUICK).unlocked;
  const b = createBackupKeyBag('pw', QUICK).unlocked;
  const blob = wrapClassKey(a, 3, crypto.randomBytes(32));
  assert.throws(
    () => unwrapClassKey(b, blob),
    (e: unknown) => isMooringError(e, 'WRONG_PASSWORD'),
  );
  assert.throws(
    () => unwrapClassKey(a, blob.subarray(0, 40)),
    (e: unknown) => isMooringError(e, 'MALFORMED'),
  );
  const unknownClass = Buffer.from(blob);
  unknownClass.writeUInt32LE(99, 0);
  assert.throws(
    () => unwrapClassKey(a, unknownClass),
    (e: unknown) => isMooringError(e, 'MALFORMED'),
  );
});

test('payload cipher is AES-256-CBC, zero IV, PKCS#7 (checked against an independent decipher)', () => {
  const key = crypto.randomBytes(32);
  for (const size of [0, 1, 15, 16, 17, 4096]) {
    const plain = crypto.randomBytes(size);
    const c = encryptPayload(key, plain);
    assert.equal(c.length, encryptedPayloadSize(size));
    const d = crypto.createDecipheriv('aes-256-cbc', key, Buffer.alloc(16));
    assert.deepEqual(Buffer.concat([d.update(c), d.final()]), plain);
    assert.deepEqual(decryptPayload(key, c), plain);
  }
});

test('decrypting with a wrong key, a truncated or empty file is MALFORMED (padding)', () => {
  const key = crypto.randomBytes(32);
  const c = encryptPayload(key, Buffer.from('hello world, a payload'));
  const malformed = (e: unknown) => isMooringError(e, 'MALFORMED');
  // A wrong key yields valid padding by chance with probability ~1/256; try keys until one fails.
  let failures = 0;
  for (let i = 0; i < 8; i++) {
    try {
      decryptPayload(crypto.randomBytes(32), c);
    } catch (e) {
      assert.ok(malformed(e));
      failures++;
    }
  }
  assert.ok(failures >= 6);
  assert.throws(() => decryptPayload(key, c.subarray(0, c.length - 1)), malformed);
  assert.throws(() => decryptPayload(key, Buffer.alloc(0)), malformed);
  assert.throws(() => decryptPayload(Buffer.alloc(16), c), malformed);
});

test('streaming cipher and decipher match the one-shot functions over many chunks', async () => {
  const key = crypto.randomBytes(32);
  const plain = crypto.randomBytes(3 * 1024 * 1024 + 5);
  const chunks = (buf: Buffer, n: number) =>
    Readable.from(
      Array.from({ length: Math.ceil(buf.length / n) }, (_, i) => buf.subarray(i * n, (i + 1) * n)),
    );
  const out: Buffer[] = [];
  await pipeline(
    chunks(plain, 7777),
    createPayloadCipher(key),
    async (src: AsyncIterable<Buffer>) => {
      for await (const c of src) out.push(c);
    },
  );
  const cipher = Buffer.concat(out);
  assert.deepEqual(cipher, encryptPayload(key, plain));
  const back: Buffer[] = [];
  await pipeline(
    chunks(cipher, 1000),
    createPayloadDecipher(key),
    async (src: AsyncIterable<Buffer>) => {
      for await (const c of src) back.push(c);
    },
  );
  assert.deepEqual(Buffer.concat(back), plain);
});

test('streaming decipher of a truncated file errors with MALFORMED', async () => {
  const key = crypto.randomBytes(32);
  const cipher = encryptPayload(key, crypto.randomBytes(1000));
  await assert.rejects(
    pipeline(
      Readable.from([cipher.subarray(0, 999)]),
      createPayloadDecipher(key),
      async (src: AsyncIterable<Buffer>) => {
        for await (const _ of src) void _;
      },
    ),
    (e: unknown) => isMooringError(e, 'MALFORMED'),
  );
});
