// BinaryPlistReader (src/protocol/plist/binary.ts): a bplist read in place, one object at a time,
// checked against what the eager decoder makes of the same bytes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isMooringError } from '../../../src/util/errors';
import { BinaryPlistReader } from '../../../src/protocol/plist/binary';
import {
  decodeBinaryPlist,
  encodeBinaryPlist,
  type PlistLimits,
  type PlistValue,
} from '../../../src/protocol/plist';
import { anyPlistValue, fuzzParams } from '../../fuzz/harness';
import { handBuilt } from './samples';

const code =
  (c: string, msg?: RegExp) =>
  (e: unknown): boolean =>
    isMooringError(e) && e.code === c && (msg === undefined || msg.test(e.message));

/** A reader over `v` encoded, and the object indices of its top array. */
function readerOf(
  v: PlistValue[],
  limits?: Partial<PlistLimits>,
): { reader: BinaryPlistReader; items: number[]; buf: Buffer } {
  const buf = encodeBinaryPlist(v);
  const reader = new BinaryPlistReader(buf, limits);
  const items = reader.topArray();
  assert.ok(items !== undefined);
  return { reader, items, buf };
}

/** A type-5 (ASCII marker, read as Latin-1) string object holding `bytes`. */
function asciiObject(bytes: Buffer): Buffer {
  return Buffer.concat([lengthMarker(0x50, bytes.length), bytes]);
}

/** A type-6 (UTF-16BE) string object holding the code units `units`. */
function utf16Object(units: readonly number[]): Buffer {
  const body = Buffer.alloc(units.length * 2);
  units.forEach((u, i) => body.writeUInt16BE(u, i * 2));
  return Buffer.concat([lengthMarker(0x60, units.length), body]);
}

function lengthMarker(type: number, count: number): Buffer {
  if (count < 15) return Buffer.from([type | count]);
  const n = Buffer.alloc(3);
  n[0] = 0x11;
  n.writeUInt16BE(count, 1);
  return Buffer.concat([Buffer.from([type | 0x0f]), n]);
}

/** A document whose top object 0 is a one-element array holding object 1, `obj`. */
function oneElement(obj: Buffer): { reader: BinaryPlistReader; index: number } {
  const reader = new BinaryPlistReader(handBuilt([Buffer.from([0xa1, 1]), obj]));
  const items = reader.topArray();
  assert.deepEqual(items, [1]);
  return { reader, index: 1 };
}

/** The element's value as `decodeCounted` gives it. */
const decode = (r: BinaryPlistReader, index: number, depth: number): PlistValue =>
  r.decodeCounted(index, depth)[0];

test('topArray: the object indices of a top array, undefined for any other top object', () => {
  const { reader, items } = readerOf(['first', 7, { a: 'b' }, ['x']]);
  assert.equal(items.length, 4);
  assert.equal(reader.stringAt(items[0]!), 'first');
  assert.deepEqual(decode(reader, items[2]!, 1), { a: 'b' });
  assert.deepEqual(new BinaryPlistReader(encodeBinaryPlist([])).topArray(), []);
  const tops: PlistValue[] = [{ a: ['b'] }, 'text', 42, true, Buffer.from('data'), {}];
  for (const top of tops) {
    assert.equal(new BinaryPlistReader(encodeBinaryPlist(top)).topArray(), undefined);
  }
});

test('topArray: a top array deeper than maxDepth allows is LIMIT, as the decoder says', () => {
  const buf = encodeBinaryPlist(['a']);
  assert.throws(() => new BinaryPlistReader(buf, { maxDepth: 0 }).topArray(), code('LIMIT'));
  assert.throws(() => decodeBinaryPlist(buf, { maxDepth: 0 }), code('LIMIT'));
});

test('the reader refuses what the decoder refuses in the trailer', () => {
  const good = encodeBinaryPlist(['a', 'b']);
  assert.throws(() => new BinaryPlistReader(good.subarray(0, 20)), code('MALFORMED'));
  assert.throws(() => new BinaryPlistReader(good, { maxObjects: 2 }), code('LIMIT'));
  const badTop = Buffer.from(good);
  badTop.writeBigUInt64BE(99n, badTop.length - 16);
  assert.throws(() => new BinaryPlistReader(badTop), code('MALFORMED', /top object 99/));
});

test('stringAt: the string an object holds, undefined for anything else', () => {
  const values: PlistValue[] = [
    'ascii',
    'héllo → 世界 😀',
    '',
    'x'.repeat(300),
    5,
    -1n,
    true,
    Buffer.from('ascii'),
    new Date(0),
    [],
    {},
    ['nested'],
  ];
  const { reader, items } = readerOf(values);
  values.forEach((v, i) =>
    assert.equal(reader.stringAt(items[i]!), typeof v === 'string' ? v : undefined, `item ${i}`),
  );
});

test('stringPairs: a dict of strings read a pair at a time, in the document order', () => {
  const dict = { 'b/one': 'B/1', 'a/two': 'A/2', 'é/three': '😀', 'c/four': '' };
  const { reader, items } = readerOf(['name', dict]);
  const pairs = reader.stringPairs(items[1]!, 1);
  assert.ok(pairs);
  assert.equal(pairs.count, 4);
  const got: [string, string][] = [];
  for (let i = 0; i < pairs.count; i++) {
    assert.equal(reader.stringAt(pairs.keyRef(i)), pairs.key(i));
    assert.equal(reader.stringAt(pairs.valueRef(i)), pairs.value(i));
    got.push([pairs.key(i), pairs.value(i)]);
  }
  assert.deepEqual(got, Object.entries(dict));
  assert.equal(reader.stringPairs(items[0]!, 1), undefined, 'a string is not a dict');
  const empty = readerOf([{}]);
  assert.equal(empty.reader.stringPairs(empty.items[0]!, 1)?.count, 0);
});

test('stringPairs: undefined for an array, a string, a number', () => {
  const { reader, items } = readerOf([['a', 'b'], 'a', 3, Buffer.from('d')]);
  for (const i of items) assert.equal(reader.stringPairs(i, 1), undefined);
});

test('stringPairs: a value that is not a string is MALFORMED', () => {
  for (const bad of [2, ['x'], { k: 'v' }, Buffer.from('x'), true]) {
    const { reader, items } = readerOf([{ a: 'ok', b: bad }]);
    assert.throws(
      () => reader.stringPairs(items[0]!, 1),
      code('MALFORMED', /value 1 of dict object \d+ is not a string/),
      JSON.stringify(bad),
    );
  }
});

test('stringPairs: a key that is not a string is MALFORMED (as the decoder says)', () => {
  // 0 [1]; 1 {2: 3, 4: 3}; 2 'k'; 3 'v'; 4 the integer 7.
  const buf = handBuilt([
    Buffer.from([0xa1, 1]),
    Buffer.from([0xd2, 2, 4, 3, 3]),
    asciiObject(Buffer.from('k')),
    asciiObject(Buffer.from('v')),
    Buffer.from([0x10, 7]),
  ]);
  assert.throws(() => decodeBinaryPlist(buf), code('MALFORMED', /dict key/));
  const reader = new BinaryPlistReader(buf);
  assert.throws(
    () => reader.stringPairs(1, 1),
    code('MALFORMED', /key 1 of dict object 1 is not a string/),
  );
});

test('stringPairs: a key or value whose bytes run past the object area is MALFORMED', () => {
  // The last object before the offset table claims 64 characters and holds 2.
  const short = (type: number): Buffer =>
    type === 0x5
      ? Buffer.concat([Buffer.from([0x5f, 0x10, 64]), Buffer.from('ab')])
      : Buffer.concat([Buffer.from([0x6f, 0x10, 64]), Buffer.from([0, 0x61, 0, 0x62])]);
  for (const type of [0x5, 0x6]) {
    const what = type === 0x5 ? /ASCII string \(64 bytes/ : /UTF-16 string \(128 bytes/;
    // 0 [1]; 1 {2: 3}; 2 'k'; 3 the overlong string: as a value.
    const asValue = handBuilt([
      Buffer.from([0xa1, 1]),
      Buffer.from([0xd1, 2, 3]),
      asciiObject(Buffer.from('k')),
      short(type),
    ]);
    const r1 = new BinaryPlistReader(asValue);
    assert.throws(() => r1.stringPairs(1, 1), code('MALFORMED', what));
    assert.throws(() => r1.stringAt(3), code('MALFORMED', what));
    assert.throws(() => r1.utf8Length(3), code('MALFORMED', what));
    assert.throws(() => r1.containsNul(3), code('MALFORMED', what));
    assert.throws(() => decodeBinaryPlist(asValue), code('MALFORMED', what));
    // …and as a key.
    const asKey = handBuilt([
      Buffer.from([0xa1, 1]),
      Buffer.from([0xd1, 3, 2]),
      asciiObject(Buffer.from('v')),
      short(type),
    ]);
    assert.throws(() => new BinaryPlistReader(asKey).stringPairs(1, 1), code('MALFORMED', what));
  }
});

test('stringPairs: a dict whose refs run past the object area, or name a missing object, is MALFORMED', () => {
  // 0 [1]; 1 a dict of 3 pairs with only 2 refs before the table.
  const cut = handBuilt([Buffer.from([0xa1, 1]), Buffer.from([0xd3, 0, 0])]);
  assert.throws(() => new BinaryPlistReader(cut).stringPairs(1, 1), code('MALFORMED', /dict/));
  // 0 [1]; 1 {2: 9}; 2 'k' — object 9 does not exist.
  const missing = handBuilt([
    Buffer.from([0xa1, 1]),
    Buffer.from([0xd1, 2, 9]),
    asciiObject(Buffer.from('k')),
  ]);
  assert.throws(
    () => new BinaryPlistReader(missing).stringPairs(1, 1),
    code('MALFORMED', /refers to object 9 of 3/),
  );
});

test('stringPairs: a dict past maxDepth is LIMIT', () => {
  const { reader, items } = readerOf([{ a: 'b' }], { maxDepth: 1 });
  assert.throws(() => reader.stringPairs(items[0]!, 1), code('LIMIT'));
});

/** Strings of any UTF-16 code units: lone surrogates, NUL and every plane included. */
const anyUnits = fc.string({
  unit: fc.integer({ min: 0, max: 0xffff }).map((u) => String.fromCharCode(u)),
  maxLength: 40,
});
const surrogateSoup = fc.string({
  unit: fc.constantFrom('\ud800', '\udbff', '\udc00', '\udfff', '😀', 'a', '\0', 'é', '\u07ff'),
  maxLength: 40,
});
const anyText = fc.oneof(
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: 'binary-ascii', maxLength: 40 }),
  anyUnits,
  surrogateSoup,
  fc.tuple(fc.nat(5000), anyUnits).map(([n, s]) => 'a'.repeat(n) + s),
);

test('utf8Length and containsNul measure a string as Buffer.byteLength and includes("\\0") do', () => {
  fc.assert(
    fc.property(fc.array(anyText, { minLength: 1, maxLength: 6 }), (strings) => {
      const { reader, items } = readerOf(strings);
      strings.forEach((s, i) => {
        const index = items[i]!;
        assert.equal(reader.stringAt(index), s);
        assert.equal(reader.utf8Length(index), Buffer.byteLength(s, 'utf8'), JSON.stringify(s));
        assert.equal(reader.containsNul(index), s.includes('\0'), JSON.stringify(s));
      });
    }),
    fuzzParams(),
  );
});

test('utf8Length: surrogate pairs count 4, lone surrogates 3 (as Buffer.byteLength writes U+FFFD)', () => {
  const cases: Array<[string, number]> = [
    ['😀', 4],
    ['\ud83d', 3],
    ['\ude00', 3],
    ['\ude00\ud83d', 6],
    ['\ud83d\ud83d\ude00', 7],
    ['\ud83da', 4],
    ['a\ud83d', 4],
    ['\u007f\u0080\u07ff\u0800\uffff', 1 + 2 + 2 + 3 + 3],
  ];
  for (const [s, n] of cases) {
    assert.equal(Buffer.byteLength(s, 'utf8'), n, JSON.stringify(s));
    const { reader, items } = readerOf([s, 'x']);
    assert.equal(reader.utf8Length(items[0]!), n, JSON.stringify(s));
  }
});

test('a hand-made type-5 string with Latin-1 bytes ≥ 0x80 is measured as its decoded text', () => {
  const { reader, index } = oneElement(asciiObject(Buffer.from([0x61, 0xe9, 0x00, 0xff, 0x80])));
  const s = reader.stringAt(index);
  assert.equal(s, 'a\u00e9\0\u00ff\u0080');
  assert.equal(reader.utf8Length(index), 8);
  assert.equal(reader.utf8Length(index), Buffer.byteLength(s!, 'utf8'));
  assert.equal(reader.containsNul(index), true);
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
      const one = oneElement(asciiObject(Buffer.from(bytes)));
      const text = one.reader.stringAt(one.index)!;
      assert.equal(text, Buffer.from(bytes).toString('latin1'));
      assert.equal(one.reader.utf8Length(one.index), Buffer.byteLength(text, 'utf8'));
      assert.equal(one.reader.containsNul(one.index), text.includes('\0'));
    }),
    fuzzParams(),
  );
});

test('a hand-made type-6 string of any code units is measured as its decoded text', () => {
  fc.assert(
    fc.property(fc.array(fc.nat(0xffff), { maxLength: 300 }), (units) => {
      const { reader, index } = oneElement(utf16Object(units));
      const text = reader.stringAt(index)!;
      assert.equal(text, String.fromCharCode(...units));
      assert.equal(reader.utf8Length(index), Buffer.byteLength(text, 'utf8'));
      assert.equal(reader.containsNul(index), text.includes('\0'));
    }),
    fuzzParams(),
  );
});

test('utf8Length and containsNul: an object that is not a string is MALFORMED', () => {
  const { reader, items } = readerOf([5, ['a'], { a: 'b' }, Buffer.from('a')]);
  for (const i of items) {
    assert.throws(() => reader.utf8Length(i), code('MALFORMED', /is not a string/));
    assert.throws(() => reader.containsNul(i), code('MALFORMED', /is not a string/));
  }
});

test('decodeCounted(index, depth) is the eager decode of that element', () => {
  fc.assert(
    fc.property(fc.array(anyPlistValue, { maxLength: 8 }), (values) => {
      const { reader, items, buf } = readerOf(values);
      const eager = decodeBinaryPlist(buf) as PlistValue[];
      assert.equal(items.length, eager.length);
      items.forEach((index, i) => assert.deepEqual(decode(reader, index, 1), eager[i]));
    }),
    fuzzParams(),
  );
});

test('decodeCounted(index, depth): depth counts from where the element sits', () => {
  // [[[ 'x' ]]]: the element's inner array sits at depth 2.
  const { reader, items, buf } = readerOf([[['x']]], { maxDepth: 2 });
  assert.throws(() => decodeBinaryPlist(buf, { maxDepth: 2 }), code('LIMIT'));
  assert.throws(() => decode(reader, items[0]!, 1), code('LIMIT'));
  assert.deepEqual(decode(reader, items[0]!, 0), [['x']]);
  // A cycle through the top array is found from an element, too.
  const cyclic = handBuilt([Buffer.from([0xa2, 1, 0]), asciiObject(Buffer.from('a'))]);
  const r = new BinaryPlistReader(cyclic);
  assert.deepEqual(r.topArray(), [1, 0]);
  assert.throws(() => decode(r, 0, 1), code('MALFORMED', /cycle/));
});
