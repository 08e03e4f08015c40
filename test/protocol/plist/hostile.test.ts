// Hostile input: every malformed, oversized, truncated or looping document must end in a
// MooringError (MALFORMED or LIMIT), never a crash, hang, stack overflow or another error type.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  decodeBinaryPlist,
  decodePlist,
  decodeXmlPlist,
  encodeBinaryPlist,
  encodeXmlPlist,
  type PlistLimits,
  type PlistValue,
} from '../../../src/protocol/plist';
import { isMooringError } from '../../../src/util/errors';
import { handBuilt, richSample } from './samples';

function fails(
  buf: Buffer,
  code: 'MALFORMED' | 'LIMIT',
  limits?: Partial<PlistLimits>,
  msg?: RegExp,
): void {
  assert.throws(
    () => decodePlist(buf, limits),
    (e: unknown) => {
      assert.ok(isMooringError(e), `expected MooringError, got ${String(e)}`);
      assert.equal(e.code, code, e.message);
      if (msg) assert.match(e.message, msg);
      return true;
    },
  );
}

/** Decoding either succeeds or throws a MooringError; anything else fails the test. */
function survives(buf: Buffer, limits?: Partial<PlistLimits>): void {
  try {
    decodePlist(buf, limits);
  } catch (e) {
    if (!isMooringError(e) || (e.code !== 'MALFORMED' && e.code !== 'LIMIT')) {
      assert.fail(
        `non-Mooring error for input ${buf.subarray(0, 64).toString('hex')}: ${String(e)}`,
      );
    }
  }
}

/** Small seeded PRNG (mulberry32), so a failure reproduces. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ---------------------------------------------------------------- binary

test('binary: every truncation of a valid document is MALFORMED', () => {
  const good = encodeBinaryPlist({ a: [1, 'two', 3.5], b: { c: Buffer.from('data') } });
  for (let n = 0; n < good.length; n++) {
    const cut = good.subarray(0, n);
    if (n < 8) {
      survives(cut); // a short prefix of "bplist00" is not recognisable as binary; XML errors are fine
      continue;
    }
    fails(cut, 'MALFORMED');
  }
});

test('binary: bad trailer fields', () => {
  const good = encodeBinaryPlist(['x', 'y']);
  const t = good.length - 32;
  const mutate = (f: (b: Buffer) => void): Buffer => {
    const b = Buffer.from(good);
    f(b);
    return b;
  };
  fails(
    mutate((b) => (b[t + 6] = 3)),
    'MALFORMED',
    undefined,
    /offset size/,
  );
  fails(
    mutate((b) => (b[t + 7] = 0)),
    'MALFORMED',
    undefined,
    /reference size/,
  );
  fails(
    mutate((b) => b.writeBigUInt64BE(0n, t + 8)),
    'MALFORMED',
    undefined,
    /no objects/,
  );
  fails(
    mutate((b) => b.writeBigUInt64BE(2n ** 63n, t + 8)),
    'LIMIT',
  );
  fails(
    mutate((b) => b.writeBigUInt64BE(3n, t + 16)),
    'MALFORMED',
    undefined,
    /top object/,
  );
  fails(
    mutate((b) => b.writeBigUInt64BE(2n ** 64n - 1n, t + 24)),
    'MALFORMED',
    undefined,
    /offset table/,
  );
  fails(
    mutate((b) => b.writeBigUInt64BE(2n, t + 24)),
    'MALFORMED',
  );
  fails(
    mutate((b) => b.writeBigUInt64BE(BigInt(t - 1), t + 24)),
    'MALFORMED',
    undefined,
    /overruns/,
  );
  fails(
    mutate((b) => b.write('bplist01', 0, 'latin1')),
    'MALFORMED',
    undefined,
    /version/,
  );
});

test('binary: object count bounded by limits.maxObjects', () => {
  const doc = encodeBinaryPlist(Array.from({ length: 100 }, (_, i) => i));
  fails(doc, 'LIMIT', { maxObjects: 50 }, /101 objects/);
  assert.equal((decodePlist(doc, { maxObjects: 101 }) as PlistValue[]).length, 100);
});

test('binary: offsets and references out of range', () => {
  // Offset table entry pointing into the trailer.
  const good = handBuilt([Buffer.from([0xa1, 1]), Buffer.from([0x09])]);
  const badOffset = Buffer.from(good);
  badOffset[good.length - 32 - 1] = 250;
  fails(badOffset, 'MALFORMED', undefined, /offset/);
  const beforeHeader = Buffer.from(good);
  beforeHeader[good.length - 32 - 1] = 3;
  fails(beforeHeader, 'MALFORMED', undefined, /offset/);
  // Reference to object 7 of 2.
  fails(
    handBuilt([Buffer.from([0xa1, 7]), Buffer.from([0x09])]),
    'MALFORMED',
    undefined,
    /refers to object 7/,
  );
  // Two-byte refs declared, array refs run past the object area.
  fails(handBuilt([Buffer.from([0xa3, 0, 1])], { refSize: 2 }), 'MALFORMED');
});

test('binary: huge counts and lengths are refused before allocating', () => {
  const huge = (type: number): Buffer =>
    handBuilt([Buffer.from([type | 0x0f, 0x13, 0x0f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])]);
  for (const type of [0x40, 0x50, 0x60, 0xa0, 0xd0]) fails(huge(type), 'MALFORMED');
  const big32 = (type: number): Buffer =>
    handBuilt([Buffer.from([type | 0x0f, 0x12, 0x7f, 0xff, 0xff, 0xff])]);
  for (const type of [0x40, 0x50, 0x60, 0xa0, 0xd0])
    fails(big32(type), 'MALFORMED', undefined, /runs past/);
  // A length that is not an integer object.
  fails(handBuilt([Buffer.from([0x5f, 0x50])]), 'MALFORMED', undefined, /not an integer/);
  // A length with a 16-byte integer.
  fails(handBuilt([Buffer.concat([Buffer.from([0x5f, 0x14]), Buffer.alloc(16)])]), 'MALFORMED');
});

test('binary: unsupported markers, bad ints, bad dict keys', () => {
  fails(handBuilt([Buffer.from([0x00])]), 'MALFORMED', undefined, /marker 0x00/);
  fails(handBuilt([Buffer.from([0x0f])]), 'MALFORMED');
  fails(handBuilt([Buffer.from([0xc1, 0])]), 'MALFORMED', undefined, /marker 0xc1/); // set
  fails(handBuilt([Buffer.from([0x21, 0, 0])]), 'MALFORMED', undefined, /real/);
  fails(
    handBuilt([Buffer.concat([Buffer.from([0x32]), Buffer.alloc(4)])]),
    'MALFORMED',
    undefined,
    /date/,
  );
  fails(handBuilt([Buffer.concat([Buffer.from([0x15]), Buffer.alloc(32)])]), 'MALFORMED');
  // 128-bit value that does not fit 64 bits.
  fails(
    handBuilt([Buffer.concat([Buffer.from([0x14, 0, 0, 0, 0, 0, 0, 0, 1]), Buffer.alloc(8)])]),
    'MALFORMED',
    undefined,
    /128-bit/,
  );
  // UID wider than 8 bytes.
  fails(
    handBuilt([Buffer.concat([Buffer.from([0x8f]), Buffer.alloc(16)])]),
    'MALFORMED',
    undefined,
    /UID/,
  );
  // Dict key is an integer.
  fails(
    handBuilt([Buffer.from([0xd1, 1, 2]), Buffer.from([0x10, 1]), Buffer.from([0x09])]),
    'MALFORMED',
    undefined,
    /key/,
  );
});

test('binary: reference cycles (self, ancestor, through a dict) are MALFORMED', () => {
  fails(handBuilt([Buffer.from([0xa1, 0])]), 'MALFORMED', undefined, /cycle/);
  fails(
    handBuilt([
      Buffer.from([0xa1, 1]),
      Buffer.from([0xa1, 2]),
      Buffer.from([0xa2, 3, 0]),
      Buffer.from([0x09]),
    ]),
    'MALFORMED',
    undefined,
    /cycle/,
  );
  fails(
    handBuilt([Buffer.from([0xd1, 1, 0]), Buffer.from([0x51, 0x6b])]),
    'MALFORMED',
    undefined,
    /cycle/,
  );
});

/** n nested arrays, each holding a reference to the next; the innermost is empty. */
function nestedBinary(n: number): Buffer {
  const refSize = 4;
  const objSize = 1 + refSize;
  const objects = Buffer.alloc(n * objSize);
  for (let i = 0; i < n; i++) {
    const o = i * objSize;
    if (i === n - 1) {
      objects[o] = 0xa0;
    } else {
      objects[o] = 0xa1;
      objects.writeUInt32BE(i + 1, o + 1);
    }
  }
  const table = Buffer.alloc(n * 4);
  for (let i = 0; i < n; i++) table.writeUInt32BE(8 + i * objSize, i * 4);
  const trailer = Buffer.alloc(32);
  trailer[6] = 4;
  trailer[7] = refSize;
  trailer.writeBigUInt64BE(BigInt(n), 8);
  trailer.writeBigUInt64BE(0n, 16);
  trailer.writeBigUInt64BE(BigInt(8 + objects.length), 24);
  return Buffer.concat([Buffer.from('bplist00'), objects, table, trailer]);
}

test('binary: 100k nested arrays → LIMIT, and no stack overflow even with the depth limit lifted', () => {
  const doc = nestedBinary(100_000);
  fails(doc, 'LIMIT', undefined, /deeper than 64/);
  // Iterative parser: a million-level limit still completes without recursion.
  let v = decodeBinaryPlist(doc, { maxDepth: 1_000_000 });
  let depth = 0;
  while (Array.isArray(v) && v.length === 1) {
    v = v[0]!;
    depth++;
  }
  assert.equal(depth, 99_999);
  // Exactly at the limit is fine; one more is not.
  assert.doesNotThrow(() => decodePlist(nestedBinary(64)));
  fails(nestedBinary(65), 'LIMIT');
});

test('binary: depth is enforced through shared objects too', () => {
  // Object 0 = [1, 2]; object 1 = deep chain start reused under object 2 at a greater depth.
  // Chain: 3 → 4 → … → 3+k-1 (empty). obj1 = [3]; obj2 = [obj1]. Through obj2 the chain is one deeper.
  const k = 61;
  const objs: Buffer[] = [
    Buffer.from([0xa2, 1, 2]),
    Buffer.from([0xa1, 3]),
    Buffer.from([0xa1, 1]),
  ];
  for (let i = 0; i < k; i++)
    objs.push(i === k - 1 ? Buffer.from([0xa0]) : Buffer.from([0xa1, 4 + i]));
  // Depths: obj0 at 0, obj1 at 1, chain starts at 2 and has k levels → deepest container at 1 + k = 62 via obj1,
  // and at 63 via obj2. Limit 63 (levels 0..62) accepts the first path but not the second.
  const doc = handBuilt(objs);
  assert.doesNotThrow(() => decodePlist(doc, { maxDepth: 64 }));
  fails(doc, 'LIMIT', { maxDepth: 63 });
});

test('binary: a "billion laughs" of shared references is LIMIT, not a time bomb (fuzz regression)', () => {
  // 40 levels, each an array referencing the next level twice: 2^40 paths, 41 objects. Decoding
  // alone was linear, but whoever walked the result (encodeXmlPlist writing a device's lockdown
  // values into Info.plist, a deep comparison) visited 2^40 nodes. Found by test/fuzz/plist.test.ts.
  const objs: Buffer[] = [];
  for (let i = 0; i < 40; i++) objs.push(Buffer.from([0xa2, i + 1, i + 1]));
  objs.push(Buffer.from([0x51, 0x78]));
  fails(handBuilt(objs), 'LIMIT', undefined, /expands to more than 1000000 values/);
  // Sharing within the bound still decodes once and shares: 2^10 leaves from 11 objects.
  const tenLevels = handBuilt([
    ...objs.slice(30, 40).map((_, i) => Buffer.from([0xa2, i + 1, i + 1])),
    objs[40]!,
  ]);
  const v = decodePlist(tenLevels) as PlistValue[];
  assert.equal(v.length, 2);
  assert.equal(v[0], v[1]); // shared, not copied
  // The bound counts values a walk visits (dict keys not included): 1 + 2 + 4 + … + 2^10 = 2047.
  assert.doesNotThrow(() => decodePlist(tenLevels, { maxObjects: 2047 }));
  fails(tenLevels, 'LIMIT', { maxObjects: 2046 });
});

test('XML encoder refuses dates it could not read back (fuzz regression)', () => {
  // toISOString writes "+010000-01-01…" and "-000001-…"; no plist reader accepts those.
  for (const d of [new Date('+010000-01-01T00:00:00Z'), new Date('-000001-12-31T23:59:59Z')]) {
    assert.throws(
      () => encodeXmlPlist({ d }),
      (e: unknown) => isMooringError(e, 'MALFORMED') && /years 0000–9999/.test(e.message),
    );
  }
  for (const iso of ['0000-01-01T00:00:00Z', '9999-12-31T23:59:59Z']) {
    assert.deepEqual(decodePlist(encodeXmlPlist({ d: new Date(iso) })), { d: new Date(iso) });
  }
});

test('binary: random bytes and mutated documents only ever raise MooringError', () => {
  const rand = rng(12345);
  const base = encodeBinaryPlist(richSample());
  for (let iter = 0; iter < 1500; iter++) {
    const b = Buffer.from(base);
    const flips = 1 + Math.floor(rand() * 8);
    for (let f = 0; f < flips; f++) b[Math.floor(rand() * b.length)] = Math.floor(rand() * 256);
    survives(b);
    survives(b, { maxDepth: 3, maxObjects: 40 });
  }
  for (let iter = 0; iter < 2000; iter++) {
    const len = 8 + Math.floor(rand() * 120);
    const b = Buffer.alloc(len);
    for (let i = 0; i < len; i++) b[i] = Math.floor(rand() * 256);
    BINARY_MAGIC.copy(b);
    // Make the trailer plausible half the time so the object parser is reached.
    if (len >= 41 && rand() < 0.5) {
      const t = len - 32;
      b[t + 6] = [1, 2][Math.floor(rand() * 2)]!;
      b[t + 7] = 1;
      b.writeBigUInt64BE(BigInt(1 + Math.floor(rand() * 4)), t + 8);
      b.writeBigUInt64BE(0n, t + 16);
      b.writeBigUInt64BE(BigInt(8 + Math.floor(rand() * (t - 8))), t + 24);
    }
    survives(b);
  }
});

const BINARY_MAGIC = Buffer.from('bplist00');

// ---------------------------------------------------------------- XML

const xml = (body: string): Buffer =>
  Buffer.from(`<?xml version="1.0"?><plist version="1.0">${body}</plist>`);

test('XML: malformed documents are MALFORMED with a position', () => {
  const cases: [string, RegExp][] = [
    ['<dict><key>a</key></dict>', /has no value/],
    ['<dict><string>x</string></dict>', /without a <key>/],
    ['<dict><key>a</key><key>b</key></dict>', /two <key>s/],
    ['<array><key>a</key></array>', /<key> outside/],
    ['<array>', /unclosed <array>|missing|unexpected <\/plist>/],
    ['<array></dict>', /unexpected <\/dict>/],
    ['</array>', /unexpected <\/array>/],
    ['<string>a</strin>', /expected <\/string>/],
    ['<string>a', /expected <\/string>|missing <\/string>/],
    ['<string>&bogus;</string>', /unknown entity/],
    ['<string>&#x110000;</string>', /unknown entity/],
    ['<string>a & b</string>', /unterminated entity/],
    ['<integer>12a</integer>', /bad <integer>/],
    ['<integer>18446744073709551616</integer>', /bad <integer>/],
    ['<integer>-9223372036854775809</integer>', /bad <integer>/],
    ['<integer/>', /bad <integer>/],
    ['<real>1.2.3</real>', /bad <real>/],
    ['<date>2020-13-01T00:00:00Z</date>', /bad <date>/],
    ['<date>yesterday</date>', /bad <date>/],
    ['<data>!!!!</data>', /bad base64/],
    ['<true>x</true>', /must be empty/],
    ['<foo>1</foo>', /unknown element <foo>/],
    ['<string>a</string><string>b</string>', /more than one top-level/],
    ['hello', /unexpected text/],
    ['<string><b>x</b></string>', /expected <\/string>/],
    ['<!-- never closed', /unterminated comment/],
    ['<string><![CDATA[x</string>', /unterminated CDATA/],
    ['', /no value/],
    ['<array', /unterminated tag|'<' inside tag/],
  ];
  for (const [body, re] of cases) {
    assert.throws(
      () => decodeXmlPlist(xml(body)),
      (e: unknown) => {
        assert.ok(isMooringError(e, 'MALFORMED'), `${body}: ${String(e)}`);
        assert.match(e.message, re, body);
        assert.match(e.message, /line \d+, column \d+/, body);
        return true;
      },
      body,
    );
  }
  fails(Buffer.from('<plist><string>x</string>'), 'MALFORMED', undefined, /missing <\/plist>/);
  fails(
    Buffer.from('<plist><string>x</string></plist><string>y</string>'),
    'MALFORMED',
    undefined,
    /after <\/plist>/,
  );
  fails(Buffer.alloc(0), 'MALFORMED', undefined, /empty/);
});

test('XML: error positions name the right line', () => {
  const doc = Buffer.from(
    '<plist>\n<dict>\n<key>a</key>\n<integer>oops</integer>\n</dict>\n</plist>',
  );
  assert.throws(() => decodePlist(doc), /line 4, column 1/);
});

test('XML: 100k nested arrays → LIMIT without stack overflow; depth limit lifted still parses', () => {
  const n = 100_000;
  const doc = Buffer.from(`<plist>${'<array>'.repeat(n)}${'</array>'.repeat(n)}</plist>`);
  fails(doc, 'LIMIT', undefined, /deeper than 64/);
  let v = decodePlist(doc, { maxDepth: n });
  let depth = 0;
  while (Array.isArray(v) && v.length === 1) {
    v = v[0]!;
    depth++;
  }
  assert.equal(depth, n - 1);
  assert.doesNotThrow(() => decodePlist(Buffer.from('<array>'.repeat(64) + '</array>'.repeat(64))));
  fails(Buffer.from('<array>'.repeat(65) + '</array>'.repeat(65)), 'LIMIT');
});

test('XML: element count bounded by limits.maxObjects', () => {
  const doc = encodeXmlPlist(Array.from({ length: 100 }, (_, i) => i));
  fails(doc, 'LIMIT', { maxObjects: 100 });
  assert.equal((decodePlist(doc, { maxObjects: 101 }) as PlistValue[]).length, 100);
});

test('XML: random bytes and mutated documents only ever raise MooringError', () => {
  const rand = rng(777);
  const base = encodeXmlPlist(richSample());
  const alphabet = Buffer.from('<>/&;#x![]-?"\'= \n\tabcdeiklnrstuy0123456789');
  for (let iter = 0; iter < 1500; iter++) {
    const b = Buffer.from(base);
    const flips = 1 + Math.floor(rand() * 6);
    for (let f = 0; f < flips; f++)
      b[Math.floor(rand() * b.length)] = alphabet[Math.floor(rand() * alphabet.length)]!;
    survives(b);
    survives(b, { maxDepth: 2, maxObjects: 30 });
  }
  for (let iter = 0; iter < 2000; iter++) {
    const len = Math.floor(rand() * 200);
    const b = Buffer.alloc(len);
    for (let i = 0; i < len; i++)
      b[i] =
        rand() < 0.7 ? alphabet[Math.floor(rand() * alphabet.length)]! : Math.floor(rand() * 256);
    survives(b);
  }
});

test('XML: a long document without entities parses in linear time', () => {
  // Regression: searching for '&' to the end of the document on every text run was quadratic.
  const many = Array.from({ length: 200_000 }, (_, i) => `s${i}`);
  const v = decodePlist(encodeXmlPlist(many)) as string[];
  assert.equal(v.length, many.length);
});

// ---------------------------------------------------------------- encoders

test('encoders refuse cyclic or absurdly deep values with LIMIT instead of overflowing', () => {
  const a: PlistValue[] = [];
  a.push(a);
  assert.throws(() => encodeBinaryPlist(a), { code: 'LIMIT' });
  assert.throws(() => encodeXmlPlist(a), { code: 'LIMIT' });
  assert.throws(() => encodeXmlPlist(null as unknown as PlistValue), { code: 'MALFORMED' });
  assert.throws(() => encodeBinaryPlist(undefined as unknown as PlistValue), { code: 'MALFORMED' });
  assert.throws(() => encodeBinaryPlist(new Date(NaN)), { code: 'MALFORMED' });
});

test('binary: non-finite or out-of-range dates are MALFORMED', () => {
  for (const secs of [NaN, Infinity, 1e300]) {
    const d = Buffer.alloc(9);
    d[0] = 0x33;
    d.writeDoubleBE(secs, 1);
    fails(handBuilt([d]), 'MALFORMED', undefined, /date/);
  }
});

// H7z fuzz-audit regression ("never hangs"): the <real> pattern could split a digit run two ways,
// so a megabyte of digits followed by one bad character backtracked quadratically (~10^4 s).
// The timeout only guards against that hang (it is ~1000× what the fixed parser needs).
test(
  'XML: a huge malformed <real> fails at once instead of backtracking for hours',
  { timeout: 20_000 },
  () => {
    const digits = '1'.repeat(1 << 20);
    fails(
      Buffer.from(`<plist><real>${digits}x</real></plist>`),
      'MALFORMED',
      undefined,
      /bad <real>/,
    );
    fails(Buffer.from(`<plist><real>${digits}.${digits}e</real></plist>`), 'MALFORMED');
    assert.equal(
      decodePlist(Buffer.from(`<plist><real>${digits.slice(0, 300)}.5</real></plist>`)),
      Number(`${digits.slice(0, 300)}.5`),
    );
  },
);
