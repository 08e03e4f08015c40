// Shared fixtures for the plist tests.
import { PlistReal, PlistUid, type PlistDict, type PlistValue } from '../../../src/protocol/plist';

/** A value exercising every type both formats share (no UIDs: XML has none; whole-second dates). */
export function richSample(): PlistDict {
  return {
    ascii: 'hello world',
    empty: '',
    unicode: 'héllo → 世界 😀 ünïcödé',
    markup: '<tag> & "quotes" \'apos\' ]]> &amp;',
    zero: 0,
    small: 7,
    byte: 255,
    short: 65535,
    word: 4294967295,
    beyond32: 4294967296,
    maxSafe: Number.MAX_SAFE_INTEGER,
    minSafe: Number.MIN_SAFE_INTEGER,
    bigPositive: 9223372036854775807n,
    bigUnsigned: 18446744073709551615n,
    bigNegative: -9223372036854775808n,
    negative: -1,
    negative2: -123456789,
    real: 3.141592653589793,
    tinyReal: 5e-324,
    negReal: -0.5,
    hugeReal: 1.7976931348623157e308,
    forcedReal: new PlistReal(2),
    infinity: new PlistReal(Infinity),
    minusInfinity: -Infinity,
    yes: true,
    no: false,
    date: new Date('2024-02-29T12:34:56Z'),
    epoch2001: new Date('2001-01-01T00:00:00Z'),
    before2001: new Date('1990-05-17T01:02:03Z'),
    data: Buffer.from([0, 1, 2, 250, 255]),
    emptyData: Buffer.alloc(0),
    bigData: Buffer.from(Array.from({ length: 1000 }, (_, i) => (i * 37) & 0xff)),
    emptyArray: [],
    emptyDict: {},
    nested: [[1, [2, [3, { deep: ['x', { deeper: [] }] }]]], { a: { b: { c: 'd' } } }],
    manyKeys: Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`key${i}`, i * i])),
    longString: 'x'.repeat(500),
    longUnicode: 'é'.repeat(300),
    'key with <markup> & ünïcode': 'v',
  };
}

/** What a decoder gives back: PlistReal unwrapped to a number. */
export function expected(v: PlistValue): PlistValue {
  if (v instanceof PlistReal) return v.value;
  if (Array.isArray(v)) return v.map(expected);
  if (
    typeof v === 'object' &&
    !(v instanceof Date) &&
    !Buffer.isBuffer(v) &&
    !(v instanceof PlistUid)
  ) {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, expected(x)]));
  }
  return v;
}

/** Assembles a bplist00 from raw object bytes with 1-byte offsets/refs, top object 0. */
export function handBuilt(
  objects: Buffer[],
  opts: { top?: number; refSize?: number } = {},
): Buffer {
  const parts: Buffer[] = [Buffer.from('bplist00')];
  const offsets: number[] = [];
  let off = 8;
  for (const o of objects) {
    offsets.push(off);
    parts.push(o);
    off += o.length;
  }
  const tableOffset = off;
  const offsetSize = tableOffset + 1 < 256 ? 1 : 2;
  const table = Buffer.alloc(offsets.length * offsetSize);
  offsets.forEach((o, i) =>
    offsetSize === 1 ? table.writeUInt8(o, i) : table.writeUInt16BE(o, i * 2),
  );
  parts.push(table);
  const trailer = Buffer.alloc(32);
  trailer[6] = offsetSize;
  trailer[7] = opts.refSize ?? 1;
  trailer.writeBigUInt64BE(BigInt(objects.length), 8);
  trailer.writeBigUInt64BE(BigInt(opts.top ?? 0), 16);
  trailer.writeBigUInt64BE(BigInt(tableOffset), 24);
  parts.push(trailer);
  return Buffer.concat(parts);
}
