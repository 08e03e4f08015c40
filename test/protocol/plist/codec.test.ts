import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  PlistReal,
  PlistUid,
  decodeBinaryPlist,
  decodePlist,
  decodeXmlPlist,
  encodeBinaryPlist,
  encodeXmlPlist,
  type PlistDict,
  type PlistValue,
} from '../../../src/protocol/plist';
import { expected, handBuilt, richSample } from './samples';

test('binary round-trip of every shared type', () => {
  const v = richSample();
  assert.deepEqual(decodeBinaryPlist(encodeBinaryPlist(v)), expected(v));
  assert.deepEqual(decodePlist(encodeBinaryPlist(v)), expected(v));
});

test('XML round-trip of every shared type', () => {
  const v = richSample();
  assert.deepEqual(decodeXmlPlist(encodeXmlPlist(v)), expected(v));
  assert.deepEqual(decodePlist(encodeXmlPlist(v)), expected(v));
});

test('every scalar alone as the root, both formats', () => {
  const roots: PlistValue[] = [
    'x',
    '',
    0,
    -5,
    2n ** 63n,
    1.5,
    true,
    false,
    new Date('2020-01-01T00:00:00Z'),
    Buffer.from('abc'),
    [],
    {},
  ];
  for (const r of roots) {
    assert.deepEqual(decodePlist(encodeBinaryPlist(r)), r, `binary ${String(r)}`);
    assert.deepEqual(decodePlist(encodeXmlPlist(r)), r, `xml ${String(r)}`);
  }
});

test('UIDs round-trip in binary, and are written as CF$UID dicts in XML', () => {
  const v = {
    $objects: [
      new PlistUid(0),
      new PlistUid(255),
      new PlistUid(256),
      new PlistUid(70000),
      new PlistUid(0xffffffff),
    ],
  };
  assert.deepEqual(decodeBinaryPlist(encodeBinaryPlist(v)), v);
  assert.deepEqual(decodeXmlPlist(encodeXmlPlist({ u: new PlistUid(5) })), { u: { CF$UID: 5 } });
});

test('number mapping: integral → integer, fractional → real, PlistReal → real, bigints kept', () => {
  const xml = encodeXmlPlist([1, 1.5, new PlistReal(2), 2n ** 60n, -3]).toString();
  assert.match(xml, /<integer>1<\/integer>/);
  assert.match(xml, /<real>1\.5<\/real>/);
  assert.match(xml, /<real>2<\/real>/);
  assert.match(xml, /<integer>1152921504606846976<\/integer>/);
  assert.match(xml, /<integer>-3<\/integer>/);
  // Integers beyond 2^53 decode as bigint; within, as number.
  assert.deepEqual(decodePlist(encodeBinaryPlist([2n ** 53n, 2n ** 53n - 1n])), [
    2n ** 53n,
    2 ** 53 - 1,
  ]);
  // Binary: a negative integer is one 8-byte signed integer (marker 0x13).
  const neg = encodeBinaryPlist(-1);
  assert.equal(neg[8], 0x13);
  assert.equal(neg.readBigInt64BE(9), -1n);
  // Integral number too big for 64 bits falls back to real.
  assert.deepEqual(decodePlist(encodeBinaryPlist(1e30)), 1e30);
  assert.match(encodeXmlPlist(1e30).toString(), /<real>1e\+30<\/real>/);
  assert.throws(() => encodeBinaryPlist(2n ** 64n), { code: 'MALFORMED' });
});

test('XML writer produces the Apple header and libplist tab layout', () => {
  const xml = encodeXmlPlist({ a: [1, 'x'], e: [], d: {}, s: '' }).toString();
  assert.equal(
    xml,
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
      '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">\n' +
      '<plist version="1.0">\n' +
      '<dict>\n' +
      '\t<key>a</key>\n' +
      '\t<array>\n' +
      '\t\t<integer>1</integer>\n' +
      '\t\t<string>x</string>\n' +
      '\t</array>\n' +
      '\t<key>e</key>\n' +
      '\t<array/>\n' +
      '\t<key>d</key>\n' +
      '\t<dict/>\n' +
      '\t<key>s</key>\n' +
      '\t<string></string>\n' +
      '</dict>\n' +
      '</plist>\n',
  );
});

test('XML parser: entities, CDATA, comments, DOCTYPE, empty forms, whitespace in data', () => {
  const doc = `<?xml version="1.0" encoding="UTF-8"?>
<!-- a comment -->
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0"><dict>
  <key>ent</key><string>&lt;&gt;&amp;&quot;&apos;&#65;&#x42;&#x1F600;</string>
  <key>cdata</key><string>a<![CDATA[<b>&c]]>d</string>
  <!-- between -->
  <key>es</key><string/>
  <key>ea</key><array/>
  <key>ed</key><dict/>
  <key/><string>empty key</string>
  <key>t</key><true/>
  <key>f</key><false></false>
  <key>int</key><integer> -42 </integer>
  <key>hex</key><integer>0x10</integer>
  <key>big</key><integer>18446744073709551615</integer>
  <key>real</key><real>-1.25e2</real>
  <key>nan</key><real>nan</real>
  <key>inf</key><real>-infinity</real>
  <key>date</key><date>2011-03-04T05:06:07Z</date>
  <key>data</key><data>
    AAEC
    /w==
  </data>
</dict></plist>`;
  const v = decodeXmlPlist(Buffer.from(doc)) as PlistDict;
  assert.equal(v.ent, '<>&"\'AB😀');
  assert.equal(v.cdata, 'a<b>&cd');
  assert.equal(v.es, '');
  assert.deepEqual(v.ea, []);
  assert.deepEqual(v.ed, {});
  assert.equal(v[''], 'empty key');
  assert.equal(v.t, true);
  assert.equal(v.f, false);
  assert.equal(v.int, -42);
  assert.equal(v.hex, 16);
  assert.equal(v.big, 18446744073709551615n);
  assert.equal(v.real, -125);
  assert.ok(Number.isNaN(v.nan));
  assert.equal(v.inf, -Infinity);
  assert.deepEqual(v.date, new Date('2011-03-04T05:06:07Z'));
  assert.deepEqual(v.data, Buffer.from([0, 1, 2, 255]));
});

test('XML parser tolerates control characters (replaced by spaces), as iOS sends them', () => {
  const doc = Buffer.from(
    '<plist version="1.0"><dict><key>k\x01</key><string>a\x00b\x1fc\td</string></dict></plist>',
  );
  assert.deepEqual(decodePlist(doc), { 'k ': 'a b c\td' });
});

test('XML parser accepts a bare value without <plist> and a UTF-8 BOM', () => {
  assert.deepEqual(decodePlist(Buffer.from('\ufeff<array><integer>1</integer></array>')), [1]);
});

test('a "__proto__" key is an own property, never the prototype', () => {
  for (const enc of [encodeXmlPlist, encodeBinaryPlist]) {
    const src: PlistDict = {};
    Object.defineProperty(src, '__proto__', { value: { polluted: true }, enumerable: true });
    const v = decodePlist(enc(src)) as PlistDict;
    assert.equal(Object.getPrototypeOf(v), Object.prototype);
    assert.deepEqual(Object.keys(v), ['__proto__']);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  }
});

test('binary: strings choose ASCII or UTF-16BE; ≥15 counts use an integer length', () => {
  const ascii = encodeBinaryPlist('abc');
  assert.equal(ascii[8], 0x53);
  const utf16 = encodeBinaryPlist('é');
  assert.equal(utf16[8], 0x61);
  assert.deepEqual(utf16.subarray(9, 11), Buffer.from([0x00, 0xe9]));
  const long = encodeBinaryPlist('a'.repeat(20));
  assert.deepEqual(long.subarray(8, 11), Buffer.from([0x5f, 0x10, 20]));
});

test('binary: dates are seconds since 2001-01-01 and keep milliseconds', () => {
  const d = new Date('2001-01-01T00:00:10.250Z');
  const b = encodeBinaryPlist(d);
  assert.equal(b[8], 0x33);
  assert.equal(b.readDoubleBE(9), 10.25);
  assert.deepEqual(decodePlist(b), d);
});

test('binary: 100k-entry dict and array encode and decode', () => {
  const dict: PlistDict = {};
  for (let i = 0; i < 100_000; i++) dict[`file-${i}`] = { size: i, name: `n${i}`, ok: i % 2 === 0 };
  const arr = Array.from({ length: 100_000 }, (_, i) => i);
  const back = decodePlist(encodeBinaryPlist({ dict, arr })) as PlistDict;
  assert.deepEqual(back, { dict, arr });
  const x = decodePlist(encodeXmlPlist({ arr })) as PlistDict;
  assert.deepEqual(x.arr, arr);
});

test('shared sub-objects in a binary plist decode (to the same value) without blow-up', () => {
  // Hand-build: object 0 = array [1, 1, 1, 1], object 1 = array [2, 2], object 2 = "s".
  const v = decodeBinaryPlist(
    handBuilt([
      Buffer.from([0xa4, 1, 1, 1, 1]),
      Buffer.from([0xa2, 2, 2]),
      Buffer.from([0x51, 0x73]),
    ]),
  );
  assert.deepEqual(v, [
    ['s', 's'],
    ['s', 's'],
    ['s', 's'],
    ['s', 's'],
  ]);
});

test('binary decoder: integer sizes 1/2/4/8/16, float32 reals, UIDs of several sizes', () => {
  const objs = [
    Buffer.from([0xa8, 1, 2, 3, 4, 5, 6, 7, 8]),
    Buffer.from([0x10, 0xff]),
    Buffer.from([0x11, 0x01, 0x00]),
    Buffer.from([0x12, 0xff, 0xff, 0xff, 0xff]),
    Buffer.from([0x13, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe]),
    Buffer.concat([
      Buffer.from([0x14]),
      Buffer.alloc(8),
      Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
    ]),
    Buffer.concat([
      Buffer.from([0x14]),
      Buffer.alloc(8, 0xff),
      Buffer.from([0x80, 0, 0, 0, 0, 0, 0, 0]),
    ]),
    (() => {
      const b = Buffer.alloc(5);
      b[0] = 0x22;
      b.writeFloatBE(1.5, 1);
      return b;
    })(),
    Buffer.from([0x81, 0x01, 0x02]),
  ];
  assert.deepEqual(decodeBinaryPlist(handBuilt(objs)), [
    255,
    256,
    4294967295,
    -2,
    18446744073709551615n,
    -9223372036854775808n,
    1.5,
    new PlistUid(258),
  ]);
});
