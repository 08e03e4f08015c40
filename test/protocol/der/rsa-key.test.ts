import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import {
  derInteger,
  derNull,
  derOid,
  derSequence,
  derBitString,
} from '../../../src/protocol/der/encode';
import {
  OID_RSA_ENCRYPTION,
  readRsaPublicKeyPkcs1,
  readSubjectPublicKeyInfo,
  rsaPkcs1FromSpki,
  rsaSpkiFromPkcs1,
} from '../../../src/protocol/der/rsa-key';
import { isMooringError } from '../../../src/util/errors';

const rsa = generateKeyPairSync('rsa', { modulusLength: 1024, publicExponent: 65537 }).publicKey;
const pkcs1 = rsa.export({ type: 'pkcs1', format: 'der' });
const spki = rsa.export({ type: 'spki', format: 'der' });

test('PKCS#1 and SPKI convert into each other exactly as OpenSSL writes them', () => {
  assert.ok(rsaSpkiFromPkcs1(pkcs1).equals(spki));
  assert.ok(rsaPkcs1FromSpki(spki).equals(pkcs1));
  const info = readSubjectPublicKeyInfo(spki);
  assert.equal(info.algorithm, OID_RSA_ENCRYPTION);
  assert.ok(info.publicKey.equals(pkcs1));
});

test('reads modulus, exponent and bit length', () => {
  const k = readRsaPublicKeyPkcs1(pkcs1);
  assert.equal(k.bits, 1024);
  assert.equal(k.exponent.toString('hex'), '010001');
  const jwk = rsa.export({ format: 'jwk' });
  assert.equal(k.modulus.toString('base64url'), jwk.n);
  // An odd-sized modulus: 1023 bits when the top byte is 0x7f.
  const odd = derSequence(
    derInteger(Buffer.concat([Buffer.from([0x7f]), Buffer.alloc(127, 1)])),
    derInteger(3),
  );
  assert.equal(readRsaPublicKeyPkcs1(odd).bits, 1023);
});

test('rejects keys that are not RSA or not well-formed', () => {
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({
    type: 'spki',
    format: 'der',
  });
  assert.throws(
    () => rsaPkcs1FromSpki(ec),
    (e) => isMooringError(e, 'MALFORMED') && /not RSA/.test(String(e)),
  );
  const bad = [
    derSequence(derInteger(5)), // one element
    derSequence(derInteger(-5), derInteger(3)), // negative modulus
    derSequence(derInteger(0), derInteger(3)), // zero modulus
    derSequence(derInteger(5), derInteger(3), derInteger(1)), // three elements
    spki, // SPKI where PKCS#1 is expected
  ];
  for (const b of bad)
    assert.throws(
      () => readRsaPublicKeyPkcs1(b),
      (e) => isMooringError(e, 'MALFORMED'),
    );
  // rsaEncryption with non-NULL parameters.
  const params = derSequence(
    derSequence(derOid(OID_RSA_ENCRYPTION), derInteger(1)),
    derBitString(pkcs1),
  );
  assert.throws(
    () => rsaPkcs1FromSpki(params),
    (e) => isMooringError(e, 'MALFORMED'),
  );
  // An SPKI whose key bits are not a PKCS#1 key.
  const junk = derSequence(
    derSequence(derOid(OID_RSA_ENCRYPTION), derNull()),
    derBitString(Buffer.from('nope')),
  );
  assert.throws(
    () => rsaPkcs1FromSpki(junk),
    (e) => isMooringError(e, 'MALFORMED'),
  );
  // Oversized input is refused before parsing.
  assert.throws(
    () => readRsaPublicKeyPkcs1(Buffer.alloc(5000)),
    (e) => isMooringError(e, 'LIMIT'),
  );
});
