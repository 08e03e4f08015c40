// Fuzzing the XML and binary plist codecs (src/protocol/plist): random bytes, mutated valid
// documents, token soup, generated object graphs; round trips of both encoders.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  decodeBinaryPlist,
  decodePlist,
  decodeXmlPlist,
  encodeBinaryPlist,
  encodeXmlPlist,
  isPlistDict,
  type PlistLimits,
  type PlistValue,
} from '../../src/protocol/plist';
import { richSample } from '../protocol/plist/samples';
import {
  anyPlistValue,
  bytesWithPrefix,
  dictOf,
  exactPlistValue,
  fuzzParams,
  mutated,
  onlyMooringErrors,
  testTimeoutMs,
} from './harness';

const T = { timeout: testTimeoutMs() };
const DECODE_CODES = ['MALFORMED', 'LIMIT'] as const;
const TIGHT: Partial<PlistLimits> = { maxDepth: 4, maxObjects: 40 };

/**
 * Values in the tree a consumer walks (dict keys not counted), stopping past `budget`. Shared
 * objects count once per reference: that is what an encoder or a deep comparison visits.
 */
function treeSize(v: PlistValue, budget: number): number {
  let n = 0;
  const stack: PlistValue[] = [v];
  while (stack.length > 0 && n <= budget) {
    const x = stack.pop()!;
    n++;
    if (Array.isArray(x)) stack.push(...x);
    else if (isPlistDict(x)) for (const k of Object.keys(x)) stack.push(x[k]!);
  }
  return n;
}

const rich = richSample();
const binarySamples = [
  encodeBinaryPlist(rich),
  encodeBinaryPlist(['DLMessageProcessMessage', { ErrorCode: 0 }]),
];
const xmlSamples = [encodeXmlPlist(rich), encodeXmlPlist({ MessageType: 'Result', Number: 0 })];

test('decodePlist: random bytes only ever give a value or MALFORMED/LIMIT', T, () => {
  const prefixes = [
    'bplist00',
    'bplist0',
    '<?xml version="1.0"?>',
    '<plist>',
    '<dict>',
    '\ufeff<',
  ].map((s) => Buffer.from(s));
  fc.assert(
    fc.property(bytesWithPrefix(prefixes), (buf) => {
      onlyMooringErrors(() => decodePlist(buf), DECODE_CODES);
      onlyMooringErrors(() => decodePlist(buf, TIGHT), DECODE_CODES);
    }),
    fuzzParams(),
  );
});

test('binary plist: mutated documents decode or fail MALFORMED/LIMIT, within maxObjects', T, () => {
  fc.assert(
    fc.property(mutated(binarySamples), (buf) => {
      onlyMooringErrors(() => decodeBinaryPlist(buf), DECODE_CODES);
      const v = onlyMooringErrors(() => decodeBinaryPlist(buf, TIGHT), DECODE_CODES);
      if (v !== undefined) assert.ok(treeSize(v, 40) <= 40);
    }),
    fuzzParams(),
  );
});

test('binary plist: mutations of generated documents decode or fail MALFORMED/LIMIT', T, () => {
  fc.assert(
    fc.property(
      anyPlistValue.chain((v) => mutated([encodeBinaryPlist(v)])),
      (buf) => {
        onlyMooringErrors(() => decodeBinaryPlist(buf, TIGHT), DECODE_CODES);
      },
    ),
    fuzzParams(0.5),
  );
});

/** A bplist00 from raw objects with 1-byte offsets and references (top object 0). */
function assemble(objects: Buffer[], refSize = 1): Buffer {
  const offsets: number[] = [];
  let off = 8;
  for (const o of objects) {
    offsets.push(off);
    off += o.length;
  }
  const offsetSize = off < 256 ? 1 : 2;
  const table = Buffer.alloc(offsets.length * offsetSize);
  offsets.forEach((o, i) =>
    offsetSize === 1 ? table.writeUInt8(o, i) : table.writeUInt16BE(o, i * 2),
  );
  const trailer = Buffer.alloc(32);
  trailer[6] = offsetSize;
  trailer[7] = refSize;
  trailer.writeBigUInt64BE(BigInt(objects.length), 8);
  trailer.writeBigUInt64BE(BigInt(off), 24);
  return Buffer.concat([Buffer.from('bplist00'), ...objects, table, trailer]);
}

/**
 * Structure-aware binary plists: up to 40 objects, containers referring to other objects. Half of
 * the graphs are acyclic by construction (references only to later objects: shared sub-trees,
 * diamonds), the other half may refer anywhere (back references, cycles).
 */
const SCALARS = [
  [0x08],
  [0x09],
  [0x10, 0x2a],
  [0x51, 0x6b],
  [0x52, 0x6b, 0x32],
  [0x61, 0x00, 0xe9],
  [0x42, 1, 2],
  [0x80, 7],
  [0x23, 0x40, 0x09, 0x21, 0xfb, 0x54, 0x44, 0x2d, 0x18],
  [0x33, 0, 0, 0, 0, 0, 0, 0, 0],
].map((b) => Buffer.from(b));

function objectAt(i: number, n: number, acyclic: boolean): fc.Arbitrary<Buffer> {
  const lo = acyclic ? i + 1 : 0;
  const scalar = fc.constantFrom(...SCALARS);
  if (lo > n - 1) return scalar;
  const ref = fc.integer({ min: lo, max: n - 1 });
  const keyRef = fc.constant(n - 1); // the last object is a string when a dict needs one
  return fc.oneof(
    { arbitrary: scalar, weight: 1 },
    {
      arbitrary: fc
        .array(ref, { maxLength: 6, size: 'max' })
        .map((refs) => Buffer.from([0xa0 | refs.length, ...refs])),
      weight: 3,
    },
    {
      arbitrary: fc
        .array(fc.tuple(fc.oneof(keyRef, ref), ref), { maxLength: 3, size: 'max' })
        .map((kv) =>
          Buffer.from([0xd0 | kv.length, ...kv.map((e) => e[0]), ...kv.map((e) => e[1])]),
        ),
      weight: 1,
    },
  );
}

const objectGraph = fc
  .tuple(fc.integer({ min: 2, max: 40 }), fc.boolean())
  .chain(([n, acyclic]) =>
    fc
      .tuple(...Array.from({ length: n - 1 }, (_, i) => objectAt(i, n, acyclic)))
      .map((objs) => [...objs, Buffer.from([0x51, 0x6b])]),
  );

test(
  'binary plist: generated object graphs (shared, cyclic) decode within limits or fail',
  T,
  () => {
    fc.assert(
      fc.property(objectGraph, (objects) => {
        const doc = assemble(objects);
        for (const limits of [TIGHT, { maxObjects: 500 }]) {
          const v = onlyMooringErrors(() => decodeBinaryPlist(doc, limits), DECODE_CODES);
          // Whatever decodes must be walkable within the object bound: a consumer (an encoder,
          // a deep comparison) visits shared sub-trees once per reference.
          const max = limits.maxObjects!;
          if (v !== undefined) assert.ok(treeSize(v, max) <= max, `tree exceeds ${max} values`);
        }
      }),
      fuzzParams(),
    );
  },
);

test('XML plist: mutated documents decode or fail MALFORMED/LIMIT', T, () => {
  fc.assert(
    fc.property(mutated(xmlSamples), (buf) => {
      onlyMooringErrors(() => decodeXmlPlist(buf), DECODE_CODES);
      onlyMooringErrors(() => decodeXmlPlist(buf, TIGHT), DECODE_CODES);
    }),
    fuzzParams(0.5),
  );
});

const XML_TOKENS = [
  '<plist>',
  '</plist>',
  '<plist version="1.0">',
  '<dict>',
  '</dict>',
  '<dict/>',
  '<array>',
  '</array>',
  '<array/>',
  '<key>',
  '</key>',
  '<key/>',
  '<string>',
  '</string>',
  '<string/>',
  '<integer>',
  '</integer>',
  '<real>',
  '</real>',
  '<date>',
  '</date>',
  '<data>',
  '</data>',
  '<true/>',
  '<false/>',
  '<true>',
  '</true>',
  '<!--',
  '-->',
  '<![CDATA[',
  ']]>',
  '<?xml version="1.0"?>',
  '<!DOCTYPE plist [',
  ']>',
  '&amp;',
  '&lt;',
  '&#x41;',
  '&#1114112;',
  '&#xD800;',
  '&bogus;',
  '&',
  ';',
  '<',
  '>',
  '/',
  '"',
  "'",
  '=',
  ' ',
  '\n',
  '\u0000',
  '\u0007',
  'x',
  '42',
  '-9223372036854775809',
  '0x1F',
  '1e400',
  'nan',
  '2024-02-30T00:00:00Z',
  '0000-01-01T00:00:00Z',
  'QUJD',
  '====',
  '\ud800',
  '\u00e9',
  '<unknown>',
];

test('XML plist: token soup decodes or fails MALFORMED/LIMIT', T, () => {
  fc.assert(
    fc.property(fc.array(fc.constantFrom(...XML_TOKENS), { maxLength: 60 }), (tokens) => {
      const buf = Buffer.from(tokens.join(''), 'utf8');
      onlyMooringErrors(() => decodePlist(buf), DECODE_CODES);
      onlyMooringErrors(() => decodePlist(buf, TIGHT), DECODE_CODES);
    }),
    fuzzParams(),
  );
});

test('round trip: values both formats carry decode to themselves', T, () => {
  fc.assert(
    fc.property(exactPlistValue, (v) => {
      assert.deepStrictEqual(decodePlist(encodeBinaryPlist(v)), v);
      assert.deepStrictEqual(decodePlist(encodeXmlPlist(v)), v);
    }),
    fuzzParams(),
  );
});

/**
 * Integers beyond ±2^53 come back as bigint from an <integer>, but as a number from a <real> that
 * happens to be integral (a PlistReal(2^53) is written as a real): the same value, another type.
 * And -0 read from a real becomes the integer 0 when written again.
 */
function canon(v: PlistValue): PlistValue {
  if (Object.is(v, -0)) return 0; // an integral real, -0 included, is written as <integer>0
  if (typeof v === 'number' && Number.isInteger(v) && !Number.isSafeInteger(v)) {
    const b = BigInt(v);
    return b >= -(1n << 63n) && b < 1n << 64n ? b : v;
  }
  if (Array.isArray(v)) return v.map(canon);
  if (isPlistDict(v)) return dictOf(Object.keys(v).map((k) => [k, canon(v[k]!)] as const));
  return v;
}

test(
  'round trip: any value either refuses to encode (MooringError) or reaches a fixpoint',
  T,
  () => {
    fc.assert(
      fc.property(anyPlistValue, (v) => {
        for (const encode of [encodeBinaryPlist, encodeXmlPlist]) {
          const once = onlyMooringErrors(() => encode(v));
          if (once === undefined) continue;
          const first = decodePlist(once); // our own output must always decode
          assert.deepStrictEqual(canon(decodePlist(encode(first))), canon(first));
        }
      }),
      fuzzParams(),
    );
  },
);
