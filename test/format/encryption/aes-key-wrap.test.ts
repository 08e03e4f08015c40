import { test } from 'node:test';
import assert from 'node:assert/strict';
import { aesKeyUnwrap, aesKeyWrap } from '../../../src/format/encryption';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const KEK128 = hex('000102030405060708090A0B0C0D0E0F');
const KEK256 = hex('000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F');
const KEY128 = hex('00112233445566778899AABBCCDDEEFF');
const KEY256 = hex('00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F');

// RFC 3394 §4 test vectors.
const VECTORS = [
  {
    name: '4.1 (128-bit KEK, 128-bit key)',
    kek: KEK128,
    key: KEY128,
    out: '1FA68B0A8112B447 AEF34BD8FB5A7B82 9D3E862371D2CFE5',
  },
  {
    name: '4.3 (256-bit KEK, 128-bit key)',
    kek: KEK256,
    key: KEY128,
    out: '64E8C3F9CE0F5BA2 63E9777905818A2A 93C8191E7D6E8AE7',
  },
  {
    name: '4.6 (256-bit KEK, 256-bit key)',
    kek: KEK256,
    key: KEY256,
    out: '28C9F404C4B810F4 CBCCB35CFB87F826 3F5786E2D80ED326 CBC7F0E71A99F43B FB988B9B7A02DD21',
  },
];

for (const v of VECTORS) {
  test(`RFC 3394 ${v.name}: wrap gives the published bytes and unwrap reverses it`, () => {
    const wrapped = aesKeyWrap(v.kek, v.key);
    assert.deepEqual(wrapped, hex(v.out));
    assert.deepEqual(aesKeyUnwrap(v.kek, wrapped), v.key);
  });
}

test('unwrap with the wrong KEK or a flipped bit fails the integrity check (null)', () => {
  const wrapped = aesKeyWrap(KEK256, KEY256);
  const otherKek = Buffer.from(KEK256);
  otherKek[0] = otherKek[0]! ^ 1;
  assert.equal(aesKeyUnwrap(otherKek, wrapped), null);
  for (const i of [0, 8, wrapped.length - 1]) {
    const damaged = Buffer.from(wrapped);
    damaged[i] = damaged[i]! ^ 0x80;
    assert.equal(aesKeyUnwrap(KEK256, damaged), null, `bit flip at ${i}`);
  }
});

test('unwrap of truncated or odd-length input is null, never a throw', () => {
  const wrapped = aesKeyWrap(KEK256, KEY256);
  assert.equal(aesKeyUnwrap(KEK256, wrapped.subarray(0, 16)), null);
  assert.equal(aesKeyUnwrap(KEK256, wrapped.subarray(0, 39)), null);
  assert.equal(aesKeyUnwrap(KEK256, Buffer.alloc(0)), null);
});

test('a KEK of a bad size or a key not a multiple of 8 is a programming error (RangeError)', () => {
  assert.throws(() => aesKeyWrap(Buffer.alloc(20), KEY256), RangeError);
  assert.throws(() => aesKeyWrap(KEK256, Buffer.alloc(12)), RangeError);
  assert.throws(() => aesKeyUnwrap(Buffer.alloc(5), Buffer.alloc(40)), RangeError);
});
