// Fuzzing the keybag TLV codec (src/format/keybag.ts) and what reads it from a backup folder: the
// encrypted backup's BackupKeyBag, AES key unwrap, wrapped file keys and payload decryption.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable, type Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import fc from 'fast-check';
import { encodeKeyBagRecord, parseKeyBag } from '../../src/format/keybag';
import {
  aesKeyUnwrap,
  aesKeyWrap,
  createBackupKeyBag,
  createPayloadCipher,
  createPayloadDecipher,
  decryptPayload,
  encryptPayload,
  keyBagRounds,
  keyBagUuid,
  unwrapClassKey,
  wrapClassKey,
} from '../../src/format/encryption';
import {
  bytesWithPrefix,
  fuzzParams,
  mutated,
  onlyMooringErrors,
  onlyMooringErrorsAsync,
  testTimeoutMs,
} from './harness';

const T = { timeout: testTimeoutMs() };
const bytes = (min: number, max: number): fc.Arbitrary<Buffer> =>
  fc.uint8Array({ minLength: min, maxLength: max }).map((u) => Buffer.from(u));
const tag = fc.string({
  unit: fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'),
  minLength: 4,
  maxLength: 4,
});

test('keybag TLV: records round-trip; random and mutated bytes parse or fail MALFORMED', T, () => {
  const sample = Buffer.concat([
    encodeKeyBagRecord('VERS', 3),
    encodeKeyBagRecord('UUID', Buffer.alloc(16, 1)),
    encodeKeyBagRecord('WPKY', Buffer.alloc(40, 2)),
  ]);
  fc.assert(
    fc.property(
      fc.array(fc.tuple(tag, fc.oneof(bytes(0, 60), fc.nat(0xffffffff))), { maxLength: 8 }),
      fc.oneof(mutated([sample]), bytesWithPrefix([Buffer.from('VERS')], 80)),
      (records, junk) => {
        const enc = Buffer.concat(records.map(([t, v]) => encodeKeyBagRecord(t, v)));
        const back = parseKeyBag(enc);
        assert.deepEqual(
          back.map((r) => [r.tag, r.value]),
          records.map(([t, v]) => {
            if (typeof v !== 'number') return [t, v];
            const b = Buffer.alloc(4);
            b.writeUInt32BE(v);
            return [t, b];
          }),
        );
        const parsed = onlyMooringErrors(() => parseKeyBag(junk), ['MALFORMED']);
        if (parsed)
          assert.equal(
            parsed.reduce((n, r) => n + 8 + r.value.length, 0),
            junk.length,
          );
      },
    ),
    fuzzParams(),
  );
});

// One real keybag with cheap rounds (the real IOS_DPIC takes seconds: not a fuzz target).
const { keyBag, unlocked } = createBackupKeyBag('fuzz', { dpic: 1, iter: 1 });

test('BackupKeyBag: mutated keybags report rounds within bounds or fail MALFORMED', T, () => {
  fc.assert(
    fc.property(mutated([keyBag]), (kb) => {
      const r = onlyMooringErrors(() => keyBagRounds(kb), ['MALFORMED']);
      if (r) {
        assert.ok(r.iter >= 1 && r.iter <= 10_000_000);
        assert.ok(r.dpic === null || (r.dpic >= 1 && r.dpic <= 100_000_000));
      }
      const uuid = onlyMooringErrors(() => keyBagUuid(kb), ['MALFORMED']);
      if (uuid) assert.equal(uuid.length, 16);
    }),
    fuzzParams(),
  );
});

test(
  'AES key wrap, wrapped file keys, payloads: round-trip; junk is null or a MooringError',
  T,
  () => {
    fc.assert(
      fc.property(
        bytes(32, 32),
        fc.integer({ min: 2, max: 8 }).chain((n) => bytes(8 * n, 8 * n)),
        bytes(0, 80),
        fc.constantFrom(...unlocked.classKeys.keys()),
        bytes(0, 60),
        bytes(32, 32),
        (kek, key, plain, cls, junk, fileKey) => {
          assert.deepEqual(aesKeyUnwrap(kek, aesKeyWrap(kek, key)), key);
          const u = onlyMooringErrors(() => aesKeyUnwrap(kek, junk));
          assert.ok(u === null || u === undefined || u.length === junk.length - 8);
          assert.deepEqual(unwrapClassKey(unlocked, wrapClassKey(unlocked, cls, fileKey)), fileKey);
          onlyMooringErrors(() => unwrapClassKey(unlocked, junk), ['MALFORMED', 'WRONG_PASSWORD']);
          assert.deepEqual(decryptPayload(kek, encryptPayload(kek, plain)), plain);
          onlyMooringErrors(() => decryptPayload(kek, junk), ['MALFORMED']);
        },
      ),
      fuzzParams(0.5),
    );
  },
);

/** Pipes `chunks` through a transform; resolves with its output, rejects with its error. */
async function through(t: Transform, chunks: readonly Buffer[]): Promise<Buffer> {
  const out: Buffer[] = [];
  const src = Readable.from(chunks.map((c) => Buffer.from(c)));
  await pipeline(src, t, async (s: AsyncIterable<Buffer>) => {
    for await (const c of s) out.push(c);
  });
  return Buffer.concat(out);
}

test('streaming payload cipher: any chunking round-trips; junk ends in MALFORMED', T, async () => {
  const chunked = (b: Buffer, cuts: number[]): Buffer[] => {
    const out: Buffer[] = [];
    let off = 0;
    for (const c of cuts) {
      if (off >= b.length) break;
      out.push(b.subarray(off, off + c));
      off += c;
    }
    if (off < b.length) out.push(b.subarray(off));
    return out;
  };
  await fc.assert(
    fc.asyncProperty(
      bytes(32, 32),
      bytes(0, 200),
      fc.array(fc.integer({ min: 1, max: 40 }), { maxLength: 8 }),
      bytes(0, 100),
      async (key, plain, cuts, junk) => {
        const cipher = await through(createPayloadCipher(key), chunked(plain, cuts));
        assert.deepEqual(cipher, encryptPayload(key, plain));
        assert.deepEqual(await through(createPayloadDecipher(key), chunked(cipher, cuts)), plain);
        await onlyMooringErrorsAsync(
          () => through(createPayloadDecipher(key), chunked(junk, cuts)),
          ['MALFORMED'],
        );
      },
    ),
    fuzzParams(0.3),
  );
});
