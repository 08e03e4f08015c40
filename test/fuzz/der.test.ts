// Fuzzing ASN.1 DER and PEM (src/protocol/der): the bounded TLV decoder, every typed reader,
// certificates and RSA keys (mutations of real ones), and encoder round trips.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  decodeDer,
  decodePem,
  derBitString,
  derBoolean,
  derExplicit,
  derInteger,
  derNamedBits,
  derOctetString,
  derOid,
  derSequence,
  derTime,
  encodePem,
  looksLikePem,
  readBitString,
  readBoolean,
  readCertificate,
  readInteger,
  readNamedBits,
  readNull,
  readOctetString,
  readOid,
  readRsaPublicKeyPkcs1,
  readSubjectPublicKeyInfo,
  readTime,
  readUnsignedIntegerBytes,
  rsaPkcs1FromSpki,
  rsaSpkiFromPkcs1,
  type DerNode,
} from '../../src/protocol/der';
import {
  certificateFingerprint,
  generateDeviceKeyPair,
  generatePairingCertificates,
  verifyIssuedBy,
} from '../../src/pairing/certificates';
import {
  pairRecordForDevice,
  parsePairRecord,
  serializePairRecord,
} from '../../src/pairing/pair-record';
import { bytesWithPrefix, fuzzParams, mutated, onlyMooringErrors, testTimeoutMs } from './harness';

const T = { timeout: testTimeoutMs() };
const CODES = ['MALFORMED', 'LIMIT'] as const;

// Real material: one device key pair and the pairing certificates a host makes for it.
const device = generateDeviceKeyPair();
const certs = generatePairingCertificates(device.publicKeyPkcs1Pem);
const certDers = [certs.rootCertPem, certs.hostCertPem, certs.deviceCertPem].map(
  (p) => decodePem(p).der,
);
const pkcs1 = decodePem(device.publicKeyPkcs1Pem).der;
const spki = rsaSpkiFromPkcs1(pkcs1);

/** Applies every typed reader to every node of a tree: each returns or throws a MooringError. */
function readEverything(root: DerNode): void {
  const readers = [
    readInteger,
    readUnsignedIntegerBytes,
    readBoolean,
    readNull,
    readOctetString,
    readBitString,
    readNamedBits,
    readOid,
    readTime,
  ] as const;
  const stack = [root];
  while (stack.length > 0) {
    const n = stack.pop()!;
    for (const r of readers) onlyMooringErrors(() => r(n, 'node'), CODES);
    stack.push(...n.children);
  }
}

test('DER: random and mutated certificates/keys decode or fail MALFORMED/LIMIT', T, () => {
  fc.assert(
    fc.property(
      fc.oneof(
        mutated([...certDers, pkcs1, spki]),
        bytesWithPrefix([Buffer.from([0x30, 0x82]), Buffer.from([0x30, 0x80])], 64),
      ),
      (der) => {
        const root = onlyMooringErrors(() => decodeDer(der), CODES);
        if (root) readEverything(root);
        onlyMooringErrors(() => readCertificate(der), CODES);
        onlyMooringErrors(() => readRsaPublicKeyPkcs1(der), CODES);
        onlyMooringErrors(() => readSubjectPublicKeyInfo(der), CODES);
        onlyMooringErrors(() => rsaPkcs1FromSpki(der), CODES);
        onlyMooringErrors(() => rsaSpkiFromPkcs1(der), CODES);
      },
    ),
    fuzzParams(0.5),
  );
});

test('DER: generated TLV trees decode to the same structure, within depth/node limits', T, () => {
  const tree = fc.letrec<{ t: Buffer }>((tie) => ({
    t: fc.oneof(
      { depthSize: 'small' },
      fc.uint8Array({ maxLength: 300 }).map((u) => derOctetString(Buffer.from(u))),
      fc.bigInt({ min: -(1n << 200n), max: 1n << 200n }).map(derInteger),
      fc.boolean().map(derBoolean),
      fc.array(tie('t'), { maxLength: 4 }).map((c) => derSequence(...c)),
      fc.tuple(fc.nat(30), tie('t')).map(([n, inner]) => derExplicit(n, inner)),
    ),
  })).t;
  fc.assert(
    fc.property(
      tree,
      fc.integer({ min: 1, max: 8 }),
      fc.integer({ min: 1, max: 50 }),
      (der, maxDepth, maxNodes) => {
        const root = decodeDer(der);
        assert.deepEqual(root.raw, der);
        const tight = onlyMooringErrors(() => decodeDer(der, { maxDepth, maxNodes }), ['LIMIT']);
        if (tight) assert.deepEqual(tight.raw, der);
      },
    ),
    fuzzParams(),
  );
});

test('DER: typed encoders and readers are inverse', T, () => {
  const arcs = fc.array(fc.bigInt({ min: 0n, max: (1n << 63n) - 1n }), {
    minLength: 1,
    maxLength: 6,
  });
  fc.assert(
    fc.property(
      fc.bigInt({ min: -(1n << 1000n), max: 1n << 1000n }),
      fc
        .tuple(fc.nat(2), fc.nat(39), arcs)
        .map(([a, b, rest]) => [BigInt(a), BigInt(b), ...rest].join('.')),
      fc.uint8Array({ maxLength: 40 }).map((u) => Buffer.from(u)),
      fc.uniqueArray(fc.nat(40), { maxLength: 10 }),
      fc.integer({ min: -62_135_596_800, max: 253_402_300_799 }).map((s) => new Date(s * 1000)),
      (n, oid, bytes, bits, date) => {
        assert.equal(readInteger(decodeDer(derInteger(n)), 'n'), n);
        if (n >= 0n)
          assert.equal(
            BigInt(`0x0${readUnsignedIntegerBytes(decodeDer(derInteger(n)), 'n').toString('hex')}`),
            n,
          );
        assert.equal(readOid(decodeDer(derOid(oid)), 'oid'), oid);
        assert.deepEqual(readBitString(decodeDer(derBitString(bytes)), 'b'), {
          unusedBits: 0,
          bytes,
        });
        assert.deepEqual(
          readNamedBits(decodeDer(derNamedBits(bits)), 'bits'),
          [...bits].sort((a, b) => a - b),
        );
        assert.equal(readTime(decodeDer(derTime(date)), 't').getTime(), date.getTime());
      },
    ),
    fuzzParams(),
  );
});

test('PEM: encode → decode round-trips; random and mutated text fails MALFORMED/LIMIT', T, () => {
  const label = fc.constantFrom(
    'CERTIFICATE',
    'RSA PUBLIC KEY',
    'PRIVATE KEY',
    'RSA PRIVATE KEY',
    'X',
  );
  const pem = encodePem('CERTIFICATE', certDers[0]!);
  fc.assert(
    fc.property(
      label,
      fc.uint8Array({ minLength: 1, maxLength: 200 }).map((u) => Buffer.from(u)),
      fc.oneof(
        mutated([Buffer.from(pem), Buffer.from(device.privateKeyPem)]),
        fc
          .string({ unit: 'binary', maxLength: 200 })
          .map((s) => Buffer.from(`-----BEGIN X-----${s}-----END X-----`)),
      ),
      (l, der, junk) => {
        assert.deepEqual(decodePem(encodePem(l, der)), { label: l, der });
        assert.deepEqual(decodePem(`junk\n${encodePem(l, der)}\0`, [l]).der, der);
        assert.equal(typeof looksLikePem(junk), 'boolean');
        onlyMooringErrors(() => decodePem(junk), CODES);
        onlyMooringErrors(() => decodePem(junk.toString('latin1'), ['CERTIFICATE']), CODES);
      },
    ),
    fuzzParams(),
  );
});

test('pairing: mutated pair records and device public keys fail with a MooringError', T, () => {
  const record = serializePairRecord(
    pairRecordForDevice({
      certificates: certs,
      systemBuid: 'BUID',
      hostId: 'HOST',
      escrowBag: Buffer.alloc(40, 1),
    }),
  );
  fc.assert(
    fc.property(mutated([record]), mutated([Buffer.from(device.publicKeyPkcs1Pem)]), (rec, key) => {
      onlyMooringErrors(() => parsePairRecord(rec));
      // What a device sends as DevicePublicKey: refused before any key is generated, or used.
      onlyMooringErrors(() => generatePairingCertificates(key));
      onlyMooringErrors(() => verifyIssuedBy(key, certs.rootCertPem));
      onlyMooringErrors(() => certificateFingerprint(key));
    }),
    fuzzParams(0.05),
  );
});
