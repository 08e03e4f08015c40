import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  derBitString,
  derBoolean,
  derExplicit,
  derInteger,
  derLength,
  derNamedBits,
  derNull,
  derOctetString,
  derOid,
  derSequence,
  derSetOf,
  derTime,
  derTlv,
} from '../../../src/protocol/der/encode';
import { isMooringError } from '../../../src/util/errors';

const hex = (b: Buffer): string => b.toString('hex');

test('lengths use the short form below 128 and the shortest long form above', () => {
  assert.equal(hex(derLength(0)), '00');
  assert.equal(hex(derLength(127)), '7f');
  assert.equal(hex(derLength(128)), '8180');
  assert.equal(hex(derLength(255)), '81ff');
  assert.equal(hex(derLength(256)), '820100');
  assert.equal(hex(derLength(0x1_0000)), '83010000');
  assert.equal(hex(derLength(0xffff_ffff)), '84ffffffff');
  assert.throws(
    () => derLength(0x1_0000_0000),
    (e) => isMooringError(e, 'LIMIT'),
  );
  assert.throws(
    () => derLength(-1),
    (e) => isMooringError(e, 'LIMIT'),
  );
});

test('INTEGER is minimal two’s complement', () => {
  assert.equal(hex(derInteger(0)), '020100');
  assert.equal(hex(derInteger(1n)), '020101');
  assert.equal(hex(derInteger(127)), '02017f');
  assert.equal(hex(derInteger(128)), '02020080');
  assert.equal(hex(derInteger(256)), '02020100');
  assert.equal(hex(derInteger(-1)), '0201ff');
  assert.equal(hex(derInteger(-128)), '020180');
  assert.equal(hex(derInteger(-129)), '0202ff7f');
  assert.equal(hex(derInteger(65537)), '0203010001');
  assert.equal(hex(derInteger(2n ** 64n)), '0209010000000000000000');
  assert.throws(
    () => derInteger(0.5),
    (e) => isMooringError(e, 'PROTOCOL'),
  );
});

test('INTEGER from an unsigned magnitude keeps it positive and strips leading zeros', () => {
  assert.equal(hex(derInteger(Buffer.from('ff', 'hex'))), '020200ff');
  assert.equal(hex(derInteger(Buffer.from('0000017f', 'hex'))), '0202017f');
  assert.equal(hex(derInteger(Buffer.from('00', 'hex'))), '020100');
  assert.equal(hex(derInteger(Buffer.alloc(0))), '020100');
});

test('OBJECT IDENTIFIER encodes arcs in base 128', () => {
  assert.equal(hex(derOid('1.2.840.113549.1.1.11')), '06092a864886f70d01010b');
  assert.equal(hex(derOid('2.5.29.19')), '0603551d13');
  assert.equal(hex(derOid('2.999.3')), '0603883703');
  for (const bad of ['', '1', '1.2.', '3.1', '1.40', '1.2.-3', '1.02']) {
    assert.throws(
      () => derOid(bad),
      (e) => isMooringError(e, 'PROTOCOL'),
      bad,
    );
  }
});

test('BOOLEAN, NULL, OCTET STRING, SEQUENCE, SET OF and [n] EXPLICIT', () => {
  assert.equal(hex(derBoolean(true)), '0101ff');
  assert.equal(hex(derBoolean(false)), '010100');
  assert.equal(hex(derNull()), '0500');
  assert.equal(hex(derOctetString(Buffer.from('ab', 'hex'))), '0401ab');
  assert.equal(hex(derSequence()), '3000');
  assert.equal(hex(derSequence(derNull(), derBoolean(true))), '30050500' + '0101ff');
  // SET OF sorts its elements by encoding.
  assert.equal(hex(derSetOf(derInteger(2), derInteger(1))), '3106020101020102');
  assert.equal(hex(derExplicit(0, derInteger(2))), 'a003020102');
  assert.equal(hex(derExplicit(3, derSequence())), 'a3023000');
  assert.throws(
    () => derExplicit(31, derNull()),
    (e) => isMooringError(e, 'PROTOCOL'),
  );
  assert.throws(
    () => derTlv(0x1f, Buffer.alloc(0)),
    (e) => isMooringError(e, 'PROTOCOL'),
  );
  const big = derOctetString(Buffer.alloc(300));
  assert.equal(hex(big.subarray(0, 4)), '0482012c');
  assert.equal(big.length, 304);
});

test('BIT STRING and named bits (KeyUsage digitalSignature + keyEncipherment is 03 02 05 a0)', () => {
  assert.equal(hex(derBitString(Buffer.from('abcd', 'hex'))), '030300abcd');
  assert.equal(hex(derNamedBits([0, 2])), '030205a0');
  assert.equal(hex(derNamedBits([5])), '03020204'); // keyCertSign
  assert.equal(hex(derNamedBits([0, 8])), '0303078080');
  assert.equal(hex(derNamedBits([])), '030100');
  assert.throws(
    () => derBitString(Buffer.alloc(0), 1),
    (e) => isMooringError(e, 'PROTOCOL'),
  );
  assert.throws(
    () => derBitString(Buffer.alloc(1), 8),
    (e) => isMooringError(e, 'PROTOCOL'),
  );
});

test('times: UTCTime for 1950-2049, GeneralizedTime otherwise, whole seconds in UTC', () => {
  const t = (iso: string): string => {
    const b = derTime(new Date(iso));
    return `${hex(b.subarray(0, 1))}:${b.subarray(2).toString('latin1')}`;
  };
  assert.equal(t('2026-11-22T02:39:25.999Z'), '17:261122023925Z');
  assert.equal(t('2049-12-31T23:59:59Z'), '17:491231235959Z');
  assert.equal(t('2050-01-01T00:00:00Z'), '18:20500101000000Z');
  assert.equal(t('1950-01-01T00:00:00Z'), '17:500101000000Z');
  assert.equal(t('1949-12-31T23:59:59Z'), '18:19491231235959Z');
  assert.throws(
    () => derTime(new Date(NaN)),
    (e) => isMooringError(e, 'PROTOCOL'),
  );
});
