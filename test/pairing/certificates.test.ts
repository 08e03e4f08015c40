import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  X509Certificate,
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  verify,
} from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  certificateDer,
  certificateFingerprint,
  generateDeviceKeyPair,
  generatePairingCertificates,
  normaliseDevicePublicKey,
  pemToDer,
  sameCertificate,
  verifyIssuedBy,
} from '../../src/pairing/certificates';
import { decodeDer, readNamedBits } from '../../src/protocol/der/decode';
import { derInteger, derSequence, encodePem } from '../../src/protocol/der';
import { readCertificate } from '../../src/protocol/der/x509';
import { isMooringError } from '../../src/util/errors';

const dir = mkdtempSync(join(tmpdir(), 'mooring-certs-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const write = (name: string, text: string | Buffer): string => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};
const openssl = (...args: string[]): string =>
  execFileSync('openssl', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

const NOW = new Date('2026-03-04T05:06:07.890Z');
const device = generateDeviceKeyPair();
const certs = generatePairingCertificates(device.publicKeyPkcs1Pem, { now: NOW });
// A second pairing that reuses the host key, so only one more RSA key is generated.
const other = generatePairingCertificates(Buffer.from(device.publicKeyPkcs1Pem), {
  hostKeyPem: createPrivateKey(certs.hostKeyPem).export({ type: 'pkcs1', format: 'pem' }),
  now: new Date('2041-06-01T00:00:00Z'),
});

const hex = (b: Buffer): string => b.toString('hex');
const sha1 = (b: Buffer): string => createHash('sha1').update(b).digest('hex');
const extList = (pem: string): [string, boolean, string][] =>
  readCertificate(certificateDer(pem)).extensions.map((e) => [e.oid, e.critical, hex(e.value)]);

test('all three are X.509 v3, serial 1, empty names, SHA-256/RSA, now−1min → now+10y', () => {
  for (const pem of [certs.rootCertPem, certs.hostCertPem, certs.deviceCertPem]) {
    const c = readCertificate(certificateDer(pem));
    assert.equal(c.version, 3);
    assert.equal(c.serial, 1n);
    assert.equal(hex(c.issuer), '3000');
    assert.equal(hex(c.subject), '3000');
    assert.equal(c.signatureAlgorithm, '1.2.840.113549.1.1.11');
    assert.equal(c.notBefore.toISOString(), '2026-03-04T05:05:07.000Z');
    assert.equal(c.notAfter.toISOString(), '2036-03-04T05:06:07.000Z');
    const x = new X509Certificate(pem);
    assert.ok(!x.subject && !x.issuer); // node reports an empty name as undefined
    assert.equal(new Date(x.validTo).toISOString(), '2036-03-04T05:06:07.000Z');
  }
});

test('extensions are exactly those of reference §2.3, in libimobiledevice order', () => {
  const keyId = sha1(
    createPublicKey(device.publicKeyPkcs1Pem).export({ type: 'pkcs1', format: 'der' }),
  );
  assert.deepEqual(extList(certs.rootCertPem), [['2.5.29.19', true, '30030101ff']]);
  assert.deepEqual(extList(certs.hostCertPem), [
    ['2.5.29.19', true, '3000'],
    ['2.5.29.15', true, '030205a0'],
  ]);
  assert.deepEqual(extList(certs.deviceCertPem), [
    ['2.5.29.19', true, '3000'],
    ['2.5.29.14', false, `0414${keyId}`],
    ['2.5.29.15', true, '030205a0'],
  ]);
  const ku = readCertificate(certificateDer(certs.hostCertPem)).extensions[1];
  assert.deepEqual(readNamedBits(decodeDer(ku!.value), 'ku'), [0, 2]); // digitalSignature, keyEncipherment
  assert.equal(new X509Certificate(certs.rootCertPem).ca, true);
  assert.equal(new X509Certificate(certs.hostCertPem).ca, false);
});

test('keys: the device cert carries the device key; private keys are PKCS#8 and match', () => {
  const devCert = new X509Certificate(certs.deviceCertPem);
  assert.ok(
    devCert.publicKey
      .export({ type: 'spki', format: 'der' })
      .equals(createPublicKey(device.publicKeyPkcs1Pem).export({ type: 'spki', format: 'der' })),
  );
  assert.ok(devCert.checkPrivateKey(createPrivateKey(device.privateKeyPem)));
  for (const [cert, key] of [
    [certs.rootCertPem, certs.rootKeyPem],
    [certs.hostCertPem, certs.hostKeyPem],
  ] as const) {
    assert.match(key, /^-----BEGIN PRIVATE KEY-----\n/);
    const k = createPrivateKey(key);
    assert.equal(k.asymmetricKeyDetails?.modulusLength, 2048);
    assert.equal(k.asymmetricKeyDetails?.publicExponent, 65537n);
    assert.ok(new X509Certificate(cert).checkPrivateKey(k));
  }
  assert.notEqual(certs.rootKeyPem, certs.hostKeyPem);
});

test('signatures: all three verify with the root key, none with another root', () => {
  for (const pem of [certs.rootCertPem, certs.hostCertPem, certs.deviceCertPem]) {
    assert.equal(verifyIssuedBy(pem, certs.rootCertPem), true);
    assert.equal(verifyIssuedBy(pem, other.rootCertPem), false);
    assert.equal(
      new X509Certificate(pem).verify(new X509Certificate(certs.rootCertPem).publicKey),
      true,
    );
  }
  assert.equal(verifyIssuedBy(certs.rootCertPem, certs.hostCertPem), false);
  assert.throws(
    () => verifyIssuedBy('garbage', certs.rootCertPem),
    (e) => isMooringError(e, 'MALFORMED'),
  );
});

test('OpenSSL CLI reads them: text dump, key checks, SKI and signature over its own tbs extract', () => {
  const rootPem = write('root.pem', certs.rootCertPem);
  const rootPub = write(
    'root.pub',
    new X509Certificate(certs.rootCertPem).publicKey.export({ type: 'spki', format: 'pem' }),
  );
  const root = openssl('x509', '-in', rootPem, '-noout', '-text');
  assert.match(root, /Version: 3 \(0x2\)/);
  assert.match(root, /Serial Number: 1 \(0x1\)/);
  assert.match(root, /Issuer: *\n/);
  assert.match(root, /X509v3 Basic Constraints: critical\s+CA:TRUE/);
  const host = openssl('x509', '-in', write('host.pem', certs.hostCertPem), '-noout', '-text');
  assert.match(host, /X509v3 Basic Constraints: critical\s+CA:FALSE/);
  assert.match(host, /X509v3 Key Usage: critical\s+Digital Signature, Key Encipherment/);
  assert.match(host, /Signature Algorithm: sha256WithRSAEncryption/);
  const devPem = write('device.pem', certs.deviceCertPem);
  const dev = openssl('x509', '-in', devPem, '-noout', '-text');
  assert.match(dev, /X509v3 Basic Constraints: critical\s+CA:FALSE/);
  assert.match(dev, /X509v3 Key Usage: critical\s+Digital Signature, Key Encipherment/);
  // OpenSSL computes the key identifier itself from the certificate's key ("hash" method).
  const ski = /X509v3 Subject Key Identifier: *\n\s+([0-9A-F:]+)/.exec(dev)?.[1];
  const ownSki = execFileSync(
    'openssl',
    [
      'rsa',
      '-pubin',
      '-in',
      write('dev.pub', device.publicKeyPkcs1Pem),
      '-RSAPublicKey_in',
      '-RSAPublicKey_out',
      '-outform',
      'DER',
    ],
    { stdio: ['ignore', 'pipe', 'ignore'] },
  );
  assert.equal(ski?.replace(/:/g, '').toLowerCase(), sha1(ownSki));
  // libimobiledevice loads the keys with OpenSSL: the same parser must accept them.
  for (const k of [certs.rootKeyPem, certs.hostKeyPem]) {
    assert.match(openssl('rsa', '-in', write('k.pem', k), '-check', '-noout'), /RSA key ok/);
  }
  // Signature check by OpenSSL alone: it extracts the tbs, we only hand it the signature bytes.
  for (const pem of [rootPem, devPem]) {
    const tbs = join(dir, 'tbs.der');
    openssl('asn1parse', '-in', pem, '-strparse', '4', '-noout', '-out', tbs);
    assert.ok(
      readFileSync(tbs).equals(readCertificate(certificateDer(readFileSync(pem, 'utf8'))).tbs),
    );
    const sig = write(
      'sig.bin',
      readCertificate(certificateDer(readFileSync(pem, 'utf8'))).signature,
    );
    assert.match(
      openssl('dgst', '-sha256', '-verify', rootPub, '-signature', sig, tbs),
      /Verified OK/,
    );
  }
});

test('validity past 2049 is written as GeneralizedTime', () => {
  const c = readCertificate(certificateDer(other.deviceCertPem));
  assert.equal(c.notAfter.toISOString(), '2051-06-01T00:00:00.000Z');
  const raw = decodeDer(c.tbs).children[4]!;
  assert.equal(raw.children[0]!.tag, 0x17); // 2041: UTCTime
  assert.equal(raw.children[1]!.tag, 0x18); // 2051: GeneralizedTime
  assert.match(
    openssl('x509', '-in', write('o.pem', other.deviceCertPem), '-noout', '-enddate'),
    /notAfter=Jun {2}1 00:00:00 2051 GMT/,
  );
});

test('a given host key is reused (PKCS#1 accepted), output as PKCS#8', () => {
  const hostKey = createPrivateKey(certs.hostKeyPem);
  assert.ok(new X509Certificate(other.hostCertPem).checkPrivateKey(hostKey));
  assert.equal(other.hostKeyPem, certs.hostKeyPem); // given as PKCS#1, returned as PKCS#8
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({
    type: 'pkcs8',
    format: 'pem',
  });
  assert.throws(
    () => generatePairingCertificates(device.publicKeyPkcs1Pem, { hostKeyPem: ec }),
    (e) => isMooringError(e, 'USAGE'),
  );
  assert.throws(
    () => generatePairingCertificates(device.publicKeyPkcs1Pem, { hostKeyPem: 'nope' }),
    (e) => isMooringError(e, 'USAGE'),
  );
});

test('the device key is accepted as PKCS#1 or SPKI, PEM text, PEM bytes or DER', () => {
  const pub = createPublicKey(device.publicKeyPkcs1Pem);
  const expected = pub.export({ type: 'spki', format: 'der' });
  assert.match(device.publicKeyPkcs1Pem, /^-----BEGIN RSA PUBLIC KEY-----\n/);
  const forms: (string | Buffer)[] = [
    device.publicKeyPkcs1Pem,
    Buffer.from(device.publicKeyPkcs1Pem),
    pub.export({ type: 'spki', format: 'pem' }).toString(),
    pub.export({ type: 'spki', format: 'pem' }),
    pub.export({ type: 'pkcs1', format: 'der' }),
    expected,
  ];
  for (const f of forms) {
    const info = normaliseDevicePublicKey(f);
    assert.ok(info.spki.equals(expected));
    assert.equal(info.bits, 2048);
  }
});

test('a hostile or unusable device key is refused before anything is generated', () => {
  const weak = generateKeyPairSync('rsa', { modulusLength: 512 }).publicKey.export({
    type: 'pkcs1',
    format: 'pem',
  });
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({
    type: 'spki',
    format: 'pem',
  });
  const n = (bytes: number, top = 0xc1): Buffer =>
    Buffer.concat([Buffer.from([top]), Buffer.alloc(bytes - 1, 0x5a), Buffer.from([0x01])]);
  const pkcs1Pem = (modulus: Buffer, e: number | Buffer): string =>
    encodePem(
      'RSA PUBLIC KEY',
      derSequence(derInteger(modulus), derInteger(typeof e === 'number' ? e : e)),
    );
  const cases: [string, string | Buffer][] = [
    ['garbage', 'hello'],
    ['empty', Buffer.alloc(0)],
    ['random DER', Buffer.from('3003020101', 'hex')],
    ['a certificate', certs.hostCertPem],
    ['EC key', ec],
    ['512-bit RSA', weak],
    ['8200-bit modulus', pkcs1Pem(n(1025), 65537)],
    ['even exponent', pkcs1Pem(n(256), 65538)],
    ['exponent 1', pkcs1Pem(n(256), 1)],
    ['9-byte exponent', pkcs1Pem(n(256), Buffer.from('010000000000000001', 'hex'))],
    ['truncated PEM', device.publicKeyPkcs1Pem.slice(0, 200)],
    ['huge PEM', device.publicKeyPkcs1Pem + ' '.repeat(70_000)],
  ];
  for (const [what, input] of cases) {
    assert.throws(
      () => generatePairingCertificates(input),
      (e) =>
        isMooringError(e, 'MALFORMED') &&
        /DevicePublicKey is not a usable RSA public key/.test(String(e)),
      what,
    );
  }
});

test('PEM/DER helpers: certificateDer, pemToDer, sameCertificate, certificateFingerprint', () => {
  const der = certificateDer(certs.hostCertPem);
  assert.ok(der.equals(new X509Certificate(certs.hostCertPem).raw));
  assert.ok(certificateDer(der).equals(der));
  assert.ok(
    pemToDer(certs.hostKeyPem, ['PRIVATE KEY']).equals(
      createPrivateKey(certs.hostKeyPem).export({ type: 'pkcs8', format: 'der' }),
    ),
  );
  assert.equal(sameCertificate(certs.hostCertPem, der), true);
  assert.equal(sameCertificate(Buffer.from(certs.hostCertPem), certs.hostCertPem), true);
  assert.equal(sameCertificate(certs.hostCertPem, certs.rootCertPem), false);
  assert.equal(sameCertificate(certs.hostCertPem, other.hostCertPem), false); // same key, other pairing
  assert.equal(
    certificateFingerprint(certs.deviceCertPem),
    new X509Certificate(certs.deviceCertPem).fingerprint256.replace(/:/g, '').toLowerCase(),
  );
  assert.throws(
    () => certificateDer('not pem'),
    (e) => isMooringError(e, 'MALFORMED'),
  );
  assert.throws(
    () => certificateDer(certs.hostKeyPem),
    (e) => isMooringError(e, 'MALFORMED'),
  );
});

test('a signature over the tbs proves the bytes were not altered', () => {
  const c = readCertificate(certificateDer(certs.deviceCertPem));
  const rootKey = new X509Certificate(certs.rootCertPem).publicKey;
  assert.ok(verify('sha256', c.tbs, rootKey, c.signature));
  const tampered = Buffer.from(c.tbs);
  tampered.writeUInt8(tampered.readUInt8(tampered.length - 1) ^ 1, tampered.length - 1);
  assert.ok(!verify('sha256', tampered, rootKey, c.signature));
});
