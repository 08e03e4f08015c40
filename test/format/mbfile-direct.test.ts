/**
 * decodeMbFileDirect against the generic parser's decodeMbFileByParser: where the direct path
 * gives a record it must be the parser's record, for every archive (valid, mutated at random,
 * or built to hit one of the parser's refusals); and it must take the archives devices write.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isDeepStrictEqual } from 'node:util';
import {
  decodeMbFile,
  decodeMbFileByParser,
  encodeMbFile,
  S_IFLNK,
  type MbFileRecord,
} from '../../src/format/mbfile';
import { decodeMbFileDirect } from '../../src/format/mbfile-direct';
import { isMooringError } from '../../src/util/errors';
import { handBuilt } from '../protocol/plist/samples';
import { SAMPLE_MBFILE } from './samples';

const REC = SAMPLE_MBFILE;

/** Records of every shape an MBFile takes: sizes of integers, UTF-16 paths, links, keys. */
const RECORDS: MbFileRecord[] = [
  REC,
  { ...REC, digest: undefined, size: 0, relativePath: '' },
  { ...REC, relativePath: 'Media/DCIM/100APPLE/IMG_0001.HEIC', size: 2 ** 40, inode: 2 ** 33 },
  { ...REC, relativePath: 'Documents/Résumé — 履歴書.pdf', lastModified: 0, birth: 255 },
  { ...REC, mode: S_IFLNK | 0o755, target: '../Preferences', digest: undefined },
  { ...REC, encryptionKey: Buffer.concat([Buffer.from([3, 0, 0, 0]), Buffer.alloc(40, 9)]) },
  { ...REC, userId: 65_535, groupId: 65_536, protectionClass: 0, flags: 0x7fff_ffff },
  { ...REC, lastModified: Number.MAX_SAFE_INTEGER, size: 1 },
].map((r) => {
  const x = { ...r };
  if (x.digest === undefined) delete x.digest;
  return x;
});

/** The parser's verdict: a record, or the error it throws. */
function byParser(buf: Buffer): MbFileRecord | Error {
  try {
    return decodeMbFileByParser(buf);
  } catch (e) {
    assert.ok(isMooringError(e), `the parser throws MooringErrors only: ${String(e)}`);
    return e as Error;
  }
}

/** The property: a direct record is the parser's record. Returns whether the direct path took it. */
function agree(buf: Buffer, what: string): boolean {
  const direct = decodeMbFileDirect(buf);
  if (direct === undefined) return false;
  const parsed = byParser(buf);
  assert.ok(
    !(parsed instanceof Error),
    `${what}: direct gave a record, the parser ${String(parsed)}`,
  );
  assert.deepStrictEqual(direct, parsed, what);
  return true;
}

test('the archives encodeMbFile writes are read directly, as the parser reads them', () => {
  for (const r of RECORDS) {
    const buf = encodeMbFile(r);
    assert.ok(agree(buf, r.relativePath), `direct path declined ${JSON.stringify(r.relativePath)}`);
    assert.deepStrictEqual(decodeMbFileDirect(buf), r);
    assert.deepStrictEqual(decodeMbFile(buf), r);
  }
});

/** A seeded PRNG (mulberry32): the same mutations on every run. */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test('mutated archives: whatever the direct path reads, the parser reads the same', () => {
  const rand = prng(0x5eed);
  const int = (n: number): number => Math.floor(rand() * n);
  const bases = RECORDS.map((r) => encodeMbFile(r));
  let direct = 0;
  let parserOk = 0;
  const rounds = 20_000;
  for (let round = 0; round < rounds; round++) {
    let buf = Buffer.from(bases[int(bases.length)]!);
    for (let m = 1 + int(3); m > 0; m--) {
      const t = buf.length - 32;
      switch (int(7)) {
        case 0: // a byte anywhere
          buf[int(buf.length)] = int(256);
          break;
        case 1: // a bit in the objects
          buf[8 + int(t - 8)]! ^= 1 << int(8);
          break;
        case 2: // a marker's length nibble or type
          buf[8 + int(t - 8)] = (int(16) << 4) | int(16);
          break;
        case 3: // a trailer field: sizes, count, top, table
          buf[t + [6, 7, 15, 23, 31][int(5)]!] = int(2) === 0 ? int(256) : int(8);
          break;
        case 4: // an offset-table entry
          buf[buf.readUInt32BE(t + 28) + int(buf.readUInt32BE(t + 12) * buf[t + 6]!)] = int(256);
          break;
        case 5: // truncated or extended
          buf =
            int(2) === 0
              ? buf.subarray(0, int(buf.length))
              : Buffer.concat([buf, Buffer.alloc(int(9))]);
          break;
        default:
          {
            // two bytes swapped
            const i = int(buf.length);
            const j = int(buf.length);
            [buf[i], buf[j]] = [buf[j]!, buf[i]!];
          }
          break;
      }
      if (buf.length < 41) break;
    }
    const ok = !(byParser(buf) instanceof Error);
    if (ok) parserOk++;
    if (agree(buf, `round ${round}`)) direct++;
    // decodeMbFile is the direct path, else the parser: the parser's verdict either way.
    const through = (() => {
      try {
        return decodeMbFile(buf);
      } catch (e) {
        return e as Error;
      }
    })();
    const parsed = byParser(buf);
    assert.equal(through instanceof Error, parsed instanceof Error, `round ${round}`);
    if (!(through instanceof Error)) assert.ok(isDeepStrictEqual(through, parsed));
  }
  // The mutations leave many archives valid; the direct path must take most of those, or it
  // would be a fast path in name only.
  assert.ok(parserOk > rounds / 20, `only ${parserOk} mutated archives stayed valid`);
  assert.ok(direct > parserOk / 2, `direct path took ${direct} of ${parserOk} valid archives`);
});

// ---- archives built object by object, to reach each of the parser's refusals ----------------

type Obj = Buffer;
const int8 = (n: number): Obj => Buffer.from([0x10, n]);
const real = (n: number): Obj => {
  const b = Buffer.alloc(9);
  b[0] = 0x23;
  b.writeDoubleBE(n, 1);
  return b;
};
const date = (): Obj => Buffer.concat([Buffer.from([0x33]), Buffer.alloc(8)]);
/** A marker with its length: in the low nibble, or after it as an integer from 15 on. */
const marker = (type: number, n: number): Buffer =>
  Buffer.from(n < 15 ? [(type << 4) | n] : [(type << 4) | 0x0f, 0x10, n]);
const ascii = (s: string): Obj => Buffer.concat([marker(0x5, s.length), Buffer.from(s, 'latin1')]);
const utf16 = (s: string): Obj => {
  const le = Buffer.from(s, 'utf16le');
  const be = Buffer.alloc(le.length);
  for (let i = 0; i < le.length; i += 2) [be[i], be[i + 1]] = [le[i + 1]!, le[i]!];
  return Buffer.concat([marker(0x6, s.length), be]);
};
const uid = (n: number): Obj => Buffer.from([0x80, n]);
const arr = (refs: number[]): Obj => Buffer.from([0xa0 | refs.length, ...refs]);
const dict = (pairs: Array<[number, number]>): Obj =>
  Buffer.from([0xd0 | pairs.length, ...pairs.map((p) => p[0]), ...pairs.map((p) => p[1])]);

/**
 * An MBFile archive, object by object: `rootExtra` adds [key, value] objects to the root dict
 * (each appended to the object list), `sizeValue` is the Size object.
 */
function archive(
  o: { sizeValue?: Obj; rootExtra?: Array<[Obj, Obj]>; extra?: Obj[] } = {},
): Buffer {
  const objs: Obj[] = [];
  const add = (b: Obj): number => objs.push(b) - 1;
  const top = add(Buffer.alloc(0)); // filled in below
  const kArchiver = add(ascii('$archiver'));
  const vArchiver = add(ascii('NSKeyedArchiver'));
  const kObjects = add(ascii('$objects'));
  const objectsAt = add(Buffer.alloc(0));
  const kTop = add(ascii('$top'));
  const topDict = add(Buffer.alloc(0));
  const kRoot = add(ascii('root'));
  const nullS = add(ascii('$null'));
  const root = add(Buffer.alloc(0));
  const path = add(ascii('a/b'));
  const cls = add(Buffer.alloc(0));
  const kClassname = add(ascii('$classname'));
  const vMbFile = add(ascii('MBFile'));
  const rootPairs: Array<[number, number]> = [
    [add(ascii('RelativePath')), add(uid(2))],
    [add(ascii('Mode')), add(int8(0o644 & 0xff))],
    [add(ascii('Size')), add(o.sizeValue ?? int8(7))],
    [add(ascii('$class')), add(uid(3))],
  ];
  for (const [k, v] of o.rootExtra ?? []) rootPairs.push([add(k), add(v)]);
  for (const e of o.extra ?? []) add(e);
  objs[top] = dict([
    [kArchiver, vArchiver],
    [kObjects, objectsAt],
    [kTop, topDict],
  ]);
  objs[objectsAt] = arr([nullS, root, path, cls]);
  objs[topDict] = dict([[kRoot, add(uid(1))]]);
  objs[root] = dict(rootPairs);
  objs[cls] = dict([[kClassname, vMbFile]]);
  return handBuilt(objs);
}

test('built archives: both read the same record, or the direct path leaves it to the parser', () => {
  // Plain: both read it.
  const plain = archive();
  assert.ok(agree(plain, 'plain'));
  assert.equal(decodeMbFileDirect(plain)?.size, 7);
  assert.equal(decodeMbFileDirect(plain)?.relativePath, 'a/b');
  // A whole real where an integer goes: both take 3.
  assert.ok(agree(archive({ sizeValue: real(3) }), 'Size 3.0'));
  assert.equal(decodeMbFileDirect(archive({ sizeValue: real(3) }))?.size, 3);
  // A key given twice: the last one counts, in both.
  const twice = archive({ rootExtra: [[ascii('Size'), int8(9)]] });
  assert.ok(agree(twice, 'Size twice'));
  assert.equal(decodeMbFileDirect(twice)?.size, 9);
  // The key spelled in UTF-16 is the same key.
  const wide = archive({ rootExtra: [[utf16('Size'), int8(11)]] });
  assert.ok(agree(wide, 'UTF-16 key'));
  assert.equal(decodeMbFileDirect(wide)?.size, 11);

  // Refused by the parser: the direct path gives nothing, decodeMbFile throws the parser's error.
  const refused: Array<[string, Buffer]> = [
    ['Size 2.5', archive({ sizeValue: real(2.5) })],
    ['Size a string', archive({ sizeValue: ascii('7') })],
    ['Size a UID', archive({ sizeValue: uid(2) })],
    ['a key that is no string', archive({ rootExtra: [[int8(1), int8(1)]] })],
    // An array holding itself (the first extra value is object 23: see archive()).
    ['a cycle', archive({ rootExtra: [[ascii('X'), arr([23])]] })],
  ];
  // Arrays nested in the root (objects 23, then 24…): deeper than MBFile's 8 levels.
  {
    const nest: Obj[] = [];
    for (let i = 0; i < 8; i++) nest.push(arr([24 + i]));
    nest.push(arr([]));
    refused.push([
      'too deep',
      archive({ rootExtra: [[ascii('X'), nest[0]!]], extra: nest.slice(1) }),
    ]);
  }
  // An array of height 5 (objects 23, 26…29) reached at depth 3 and then, shared, at depth 6
  // through 25, 30, 31: 6 + 5 levels.
  refused.push([
    'too deep through a shared object',
    archive({
      rootExtra: [
        [ascii('X'), arr([26])],
        [ascii('Y'), arr([30])],
      ],
      extra: [arr([27]), arr([28]), arr([29]), arr([]), arr([31]), arr([23])],
    }),
  ]);
  // Shared arrays that expand past 256 values ("billion laughs").
  {
    // laughs[0…4] are objects 24…28, laughs[5] (the root's value) 23: each holds the one before
    // four times, 1 → 5 → 21 → 85 → 341 values.
    const laughs: Obj[] = [int8(1)];
    for (let i = 1; i < 5; i++) laughs.push(arr([23 + i, 23 + i, 23 + i, 23 + i]));
    laughs.push(arr([28, 28, 28, 28]));
    refused.push([
      'expands past 256 values',
      archive({ rootExtra: [[ascii('X'), laughs[5]!]], extra: laughs.slice(0, 5) }),
    ]);
  }
  for (const [what, buf] of refused) {
    assert.ok(byParser(buf) instanceof Error, `${what}: the parser refuses it`);
    assert.equal(decodeMbFileDirect(buf), undefined, what);
    assert.throws(
      () => decodeMbFile(buf),
      (e) => isMooringError(e),
      what,
    );
  }

  // Accepted by the parser but outside what the direct path reads (a date): the parser decides.
  const dated = archive({ rootExtra: [[ascii('When'), date()]] });
  assert.ok(!(byParser(dated) instanceof Error));
  assert.equal(decodeMbFileDirect(dated), undefined);
  assert.deepStrictEqual(decodeMbFile(dated), byParser(dated));
});
