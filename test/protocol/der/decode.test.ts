import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate, verify } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DerNode,
  decodeDer,
  readBitString,
  readBoolean,
  readInteger,
  readNamedBits,
  readNull,
  readOid,
  readTime,
  readUnsignedIntegerBytes,
} from '../../../src/protocol/der/decode';
import {
  derBoolean,
  derExplicit,
  derInteger,
  derLength,
  derNamedBits,
  derNull,
  derOctetString,
  derOid,
  derSequence,
  derTime,
} from '../../../src/protocol/der/encode';
import { decodePem } from '../../../src/protocol/der/pem';
import { readCertificate } from '../../../src/protocol/der/x509';
import { MooringError, isMooringError } from '../../../src/util/errors';

/** A certificate made by the OpenSSL CLI (an independent encoder), created once per run. */
let opensslCertCache: { pem: string; dir: string } | undefined;
function opensslCert(): string {
  if (!opensslCertCache) {
    const dir = mkdtempSync(join(tmpdir(), 'mooring-der-'));
    const pem = join(dir, 'c.pem');
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        join(dir, 'k.pem'),
        '-out',
        pem,
        '-subj',
        '/CN=mooring test/O=Mooring',
        '-days',
        '2',
        '-set_serial',
        '4660',
        '-addext',
        'keyUsage=critical,digitalSignature',
        '-sha256',
      ],
      { stdio: 'pipe' },
    );
    opensslCertCache = { pem: readFileSync(pem, 'utf8'), dir };
  }
  return opensslCertCache.pem;
}
after(() => {
  if (opensslCertCache) rmSync(opensslCertCache.dir, { recursive: true, force: true });
});

const h = (s: string): Buffer => Buffer.from(s.replace(/\s/g, ''), 'hex');
const isCode =
  (code: 'MALFORMED' | 'LIMIT') =>
  (e: unknown): boolean =>
    isMooringError(e, code);

/** Deterministic PRNG (mulberry32) so a failing fuzz case can be reproduced. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test('decodes a nested structure into a tree with views of the input', () => {
  const bytes = derSequence(
    derInteger(5),
    derSequence(derNull(), derBoolean(true)),
    derExplicit(3, derOid('2.5.29.15')),
  );
  const root = decodeDer(bytes);
  assert.equal(root.tag, 0x30);
  assert.equal(root.tagClass, 'universal');
  assert.equal(root.constructed, true);
  assert.equal(root.children.length, 3);
  assert.equal(readInteger(root.children[0], 'n'), 5n);
  const inner = root.children[1] as DerNode;
  assert.equal(readNull(inner.children[0], 'null'), null);
  assert.equal(readBoolean(inner.children[1], 'b'), true);
  const ctx = root.children[2] as DerNode;
  assert.equal(ctx.tagClass, 'context');
  assert.equal(ctx.tagNumber, 3);
  assert.equal(readOid(ctx.children[0], 'oid'), '2.5.29.15');
  assert.ok(root.raw.equals(bytes));
  assert.equal(inner.offset, 5);
  assert.ok(inner.raw.equals(bytes.subarray(5, 5 + inner.raw.length)));
});

test('typed readers round-trip the encoder', () => {
  for (const v of [0n, 1n, -1n, 127n, 128n, -128n, -129n, 65537n, 2n ** 100n, -(2n ** 100n)]) {
    assert.equal(readInteger(decodeDer(derInteger(v)), 'v'), v);
  }
  for (const oid of [
    '1.2.840.113549.1.1.11',
    '2.5.29.14',
    '0.9.2342.19200300.100.1.1',
    '2.999.3',
    '1.3.6.1.4.1.18446744073709551615',
  ]) {
    assert.equal(readOid(decodeDer(derOid(oid)), 'oid'), oid);
  }
  assert.deepEqual(readNamedBits(decodeDer(derNamedBits([0, 2])), 'ku'), [0, 2]);
  assert.deepEqual(readNamedBits(decodeDer(derNamedBits([0, 9, 15])), 'ku'), [0, 9, 15]);
  for (const iso of [
    '2026-11-22T02:39:25Z',
    '2049-12-31T23:59:59Z',
    '2050-01-01T00:00:00Z',
    '1950-01-01T00:00:00Z',
    '1949-06-01T12:00:00Z',
  ]) {
    assert.equal(
      readTime(decodeDer(derTime(new Date(iso))), 't').toISOString(),
      new Date(iso).toISOString(),
    );
  }
  const mod = Buffer.concat([Buffer.from([0xc5]), Buffer.alloc(255, 0x11)]);
  assert.ok(readUnsignedIntegerBytes(decodeDer(derInteger(mod)), 'n').equals(mod));
});

test('readers reject non-DER encodings of single values', () => {
  assert.equal(readInteger(decodeDer(h('020100')), 'i'), 0n); // control: a minimal zero
  const rejects: [string, (n: DerNode) => unknown][] = [
    ['0200', (n) => readInteger(n, 'i')], // empty INTEGER
    ['0202007f', (n) => readInteger(n, 'i')], // non-minimal positive
    ['0202ff80', (n) => readInteger(n, 'i')], // non-minimal negative
    ['020180', (n) => readUnsignedIntegerBytes(n, 'u')], // negative where unsigned expected
    ['010101', (n) => readBoolean(n, 'b')], // BOOLEAN must be 00 or ff
    ['01020000', (n) => readBoolean(n, 'b')],
    ['050100', (n) => readNull(n, 'null')],
    ['0300', (n) => readBitString(n, 'bits')], // no unused-bits octet
    ['030108', (n) => readBitString(n, 'bits')], // unused bits without data
    ['030208ff', (n) => readBitString(n, 'bits')], // 8 unused bits
    ['030201ff', (n) => readBitString(n, 'bits')], // padding bit set
    ['0600', (n) => readOid(n, 'oid')],
    ['0602 2a80', (n) => readOid(n, 'oid')], // truncated arc
    ['0603 2a8001', (n) => readOid(n, 'oid')], // leading 0x80 in an arc
    ['170d 3236313332323032333932355a', (n) => readTime(n, 't')], // month 13
    ['170d 3236303233303030303030305a', (n) => readTime(n, 't')], // 30 February
    ['170b 323631313232303233395a', (n) => readTime(n, 't')], // no seconds
    ['1811 32303236313132323032333932352e355a', (n) => readTime(n, 't')], // fractional
    ['0401 00', (n) => readInteger(n, 'i')], // wrong tag
  ];
  for (const [hexIn, read] of rejects) {
    assert.throws(() => read(decodeDer(h(hexIn))), isCode('MALFORMED'), hexIn);
  }
  const tooLong = h('060c 2b' + '8181818181818181818101');
  assert.throws(() => readOid(decodeDer(tooLong), 'oid'), isCode('LIMIT'));
  const hugeInt = derInteger(Buffer.alloc(2000, 0x7f));
  assert.throws(() => readInteger(decodeDer(hugeInt), 'i'), isCode('LIMIT'));
});

test('framing errors: truncation, over-long lengths, indefinite and non-minimal lengths, trailing bytes', () => {
  const cases: [string, 'MALFORMED' | 'LIMIT'][] = [
    ['', 'MALFORMED'],
    ['30', 'MALFORMED'],
    ['3003 0201', 'MALFORMED'], // content shorter than claimed
    ['3080 0000', 'MALFORMED'], // indefinite length (BER, not DER)
    ['30 85 0000000001 00', 'MALFORMED'], // 5 length octets
    ['30 84 ffffffff', 'MALFORMED'], // 4 GiB claimed, nothing there
    ['04 81 05 0000000000', 'MALFORMED'], // long form for a short length
    ['04 82 0080' + '00'.repeat(128), 'MALFORMED'], // leading zero length octet
    ['0500 00', 'MALFORMED'], // trailing byte
    ['1f 21 00', 'MALFORMED'], // multi-byte tag
    ['3002 0500 0500', 'MALFORMED'], // child overruns its parent
  ];
  for (const [hexIn, code] of cases) {
    assert.throws(() => decodeDer(h(hexIn)), isCode(code), hexIn);
  }
});

test('bounds: nesting depth, node count and input size are capped', () => {
  let deep = derNull();
  for (let i = 0; i < 40; i++) deep = derSequence(deep);
  assert.throws(() => decodeDer(deep), isCode('LIMIT'));
  assert.equal(decodeDer(deep, { maxDepth: 41 }).children.length, 1);
  // 100,000 correctly framed nested SEQUENCEs: stopped by the depth bound, not a stack overflow.
  const n = 100_000;
  const headers: Buffer[] = new Array<Buffer>(n);
  let contentLength = 2; // the innermost NULL
  for (let i = n - 1; i >= 0; i--) {
    headers[i] = Buffer.concat([Buffer.from([0x30]), derLength(contentLength)]);
    contentLength += (headers[i] as Buffer).length;
  }
  const hostile = Buffer.concat([...headers, derNull()]);
  assert.throws(() => decodeDer(hostile), isCode('LIMIT'));
  assert.throws(() => decodeDer(hostile, { maxDepth: 1e9 }), isCode('LIMIT')); // depth ceiling
  const wide = derSequence(...Array.from({ length: 20_000 }, () => derNull()));
  assert.throws(() => decodeDer(wide), isCode('LIMIT'));
  assert.equal(decodeDer(wide, { maxNodes: 20_001 }).children.length, 20_000);
  assert.throws(() => decodeDer(Buffer.alloc(10), { maxInputBytes: 9 }), isCode('LIMIT'));
});

test('every truncation of a real certificate fails cleanly', () => {
  const der = decodePem(opensslCert(), ['CERTIFICATE']).der;
  assert.ok(readCertificate(der).tbs.length > 0);
  for (let len = 0; len < der.length; len++) {
    assert.throws(
      () => readCertificate(der.subarray(0, len)),
      isCode('MALFORMED'),
      `prefix ${len}`,
    );
  }
});

test('random and mutated input never escapes as anything but a MooringError', () => {
  const rnd = prng(0x5eed);
  const cert = decodePem(opensslCert()).der;
  let parsed = 0;
  for (let i = 0; i < 3000; i++) {
    let input: Buffer;
    if (i % 2 === 0) {
      input = Buffer.alloc(Math.floor(rnd() * 64));
      for (let j = 0; j < input.length; j++) input[j] = Math.floor(rnd() * 256);
      // Bias towards plausible headers so the fuzz reaches deeper than the first byte.
      if (input.length > 0 && rnd() < 0.5)
        input[0] = [0x30, 0x31, 0xa0, 0xa3][Math.floor(rnd() * 4)] as number;
    } else {
      input = Buffer.from(cert);
      for (let k = 0; k < 1 + Math.floor(rnd() * 4); k++) {
        input[Math.floor(rnd() * input.length)] = Math.floor(rnd() * 256);
      }
    }
    for (const parse of [() => decodeDer(input), () => readCertificate(input)]) {
      try {
        parse();
        parsed++;
      } catch (e) {
        if (!(e instanceof MooringError)) throw new Error(`case ${i}: ${String(e)}`);
        assert.ok(e.code === 'MALFORMED' || e.code === 'LIMIT', e.code);
      }
    }
  }
  assert.ok(parsed > 0, 'some mutations should still parse');
});

test('reads a certificate made by the OpenSSL CLI (an independent encoder)', () => {
  const text = opensslCert();
  const x = new X509Certificate(text);
  const c = readCertificate(decodePem(text).der);
  assert.equal(c.version, 3);
  assert.equal(c.serial, 0x1234n);
  assert.equal(c.signatureAlgorithm, '1.2.840.113549.1.1.11');
  assert.equal(c.notBefore.getTime(), new Date(x.validFrom).getTime());
  assert.equal(c.notAfter.getTime(), new Date(x.validTo).getTime());
  assert.ok(c.spki.equals(x.publicKey.export({ type: 'spki', format: 'der' })));
  assert.ok(c.subject.toString('latin1').includes('mooring test'));
  assert.ok(c.issuer.equals(c.subject));
  const ku = c.extensions.find((e) => e.oid === '2.5.29.15');
  assert.deepEqual(
    ku && { critical: ku.critical, bits: readNamedBits(decodeDer(ku.value), 'ku') },
    { critical: true, bits: [0] },
  );
  // The signature we located verifies over exactly the tbs bytes we located.
  assert.equal(c.signature.length, 256);
  assert.ok(verify('sha256', c.tbs, x.publicKey, c.signature));
});

test('octet strings are kept as views, not copies', () => {
  const payload = Buffer.from('hello');
  const n = decodeDer(derSequence(derOctetString(payload)));
  assert.ok((n.children[0] as DerNode).content.equals(payload));
});
