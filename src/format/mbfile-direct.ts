/**
 * decodeMbFile's fast path: the same record, read from the archive's bytes without building the
 * plist's values. A verify decodes every row of a full backup's Manifest.db, and the generic
 * binary-plist parser spent ~30 µs on each MBFile, most of it building strings, dicts and arrays
 * only to read a dozen fields (docs/BENCHMARKS.md, ninth pass).
 *
 * It never decides alone that an archive is bad: anything it does not recognise, or would refuse,
 * makes it return undefined, and decodeMbFile then runs the generic parser, which gives the record
 * or the error. So it is a fast path, never a second opinion: where it returns a record, it is
 * the record the generic parser gives. To be sure of that it checks what that parser checks for
 * every object the archive reaches (trailer, offsets, lengths, references, cycles, depth, the
 * expanded size) and goes on only with the object kinds an MBFile uses: integers of up to 8
 * bytes, reals, booleans, ASCII and UTF-16 strings, data, UIDs, arrays and dicts. A differential
 * test holds it to that (test/format/mbfile-direct.test.ts).
 */
import type { MbFileRecord } from './mbfile';

/** decodeMbFile's limits (MBFILE_LIMITS), mirrored: an archive past them is the parser's to refuse. */
const MAX_OBJECTS = 256;
const MAX_DEPTH = 8;
const MAX_BYTES = 64 * 1024;

/** What each object is (kindOf). */
const Kind = {
  Int: 1,
  Real: 2,
  Bool: 3,
  Ascii: 4,
  Utf16: 5,
  Data: 6,
  Uid: 7,
  Array: 8,
  Dict: 9,
} as const;

/** Per-object facts, for one archive at a time (the walk is synchronous). */
const kindOf = new Uint8Array(MAX_OBJECTS);
/** Marker offset. */
const at = new Int32Array(MAX_OBJECTS);
/** Where the payload (bytes, or refs) starts. */
const body = new Int32Array(MAX_OBJECTS);
/** Bytes (strings: characters), or entries (dicts: pairs). */
const count = new Int32Array(MAX_OBJECTS);
/** 0 not reached yet, 1 on the walk's path, 2 done. */
const state = new Uint8Array(MAX_OBJECTS);
const height = new Int32Array(MAX_OBJECTS);
const size = new Float64Array(MAX_OBJECTS);

/** One archive's layout, from its trailer. */
interface Layout {
  buf: Buffer;
  num: number;
  offSize: number;
  refSize: number;
  table: number;
}

/** The archive's record, or undefined: the generic parser decides (see above). */
export function decodeMbFileDirect(buf: Buffer): MbFileRecord | undefined {
  const l = layout(buf);
  if (l === undefined) return undefined;
  const top = walk(l);
  if (top < 0 || kindOf[top] !== Kind.Dict) return undefined;
  if (!isText(l, lookup(l, top, '$archiver'), 'NSKeyedArchiver')) return undefined;
  const objects = lookup(l, top, '$objects');
  const tops = lookup(l, top, '$top');
  if (objects < 0 || kindOf[objects] !== Kind.Array) return undefined;
  if (tops < 0 || kindOf[tops] !== Kind.Dict) return undefined;
  const rootUid = lookup(l, tops, 'root');
  if (rootUid < 0 || kindOf[rootUid] !== Kind.Uid) return undefined;
  const root = deref(l, objects, rootUid);
  if (root < 0 || kindOf[root] !== Kind.Dict) return undefined;
  lookupAll(l, root, ROOT_KEYS, rootValues);
  const cls = deref(l, objects, rootValues[ROOT_CLASS]!);
  if (cls < 0 || kindOf[cls] !== Kind.Dict || !isText(l, lookup(l, cls, '$classname'), 'MBFile'))
    return undefined;
  const rel = text(l, deref(l, objects, rootValues[ROOT_RELATIVE_PATH]!));
  if (rel === undefined) return undefined;
  // A loop, not map(): no closure per row (tsx names each one, at a cost, under test).
  const ints: number[] = [];
  for (let j = 0; j < INT_FIELDS.length; j++) {
    const v = intField(l, rootValues[j]!, INT_FIELDS[j]![1]);
    if (v === undefined) return undefined;
    ints.push(v);
  }
  const [lastModified, lastStatusChange, birth, size_, mode, userId, groupId, inode, pc, flags] =
    ints;
  if (size_! < 0) return undefined;
  const rec: MbFileRecord = {
    relativePath: rel,
    lastModified: lastModified!,
    lastStatusChange: lastStatusChange!,
    birth: birth!,
    size: size_!,
    mode: mode!,
    userId: userId!,
    groupId: groupId!,
    inode: inode!,
    protectionClass: pc!,
    flags: flags!,
  };
  const target = deref(l, objects, rootValues[ROOT_TARGET]!);
  if (target !== ABSENT) {
    const t = text(l, target);
    if (t === undefined) return undefined;
    rec.target = t;
  }
  const digest = deref(l, objects, rootValues[ROOT_DIGEST]!);
  if (digest !== ABSENT) {
    if (digest < 0 || kindOf[digest] !== Kind.Data) return undefined;
    rec.digest = data(l, digest);
  }
  // H8a: an NSMutableData archive ({NS.data}), or plain data.
  const ek = deref(l, objects, rootValues[ROOT_ENCRYPTION_KEY]!);
  if (ek !== ABSENT) {
    const d = ek >= 0 && kindOf[ek] === Kind.Dict ? lookup(l, ek, 'NS.data') : ek;
    if (d < 0 || kindOf[d] !== Kind.Data) return undefined;
    rec.encryptionKey = data(l, d);
  }
  return rec;
}

/** decodeMbFile's integer fields, in MbFileRecord order, and whether each is required. */
const INT_FIELDS: ReadonlyArray<readonly [key: string, required: boolean]> = [
  ['LastModified', false],
  ['LastStatusChange', false],
  ['Birth', false],
  ['Size', false],
  ['Mode', true],
  ['UserID', false],
  ['GroupID', false],
  ['InodeNumber', false],
  ['ProtectionClass', false],
  ['Flags', false],
];

/** The root's keys read in one pass: the integers, then the rest (ROOT_*). */
const ROOT_KEYS = [
  ...INT_FIELDS.map(([key]) => key),
  '$class',
  'RelativePath',
  'Target',
  'Digest',
  'EncryptionKey',
];
const ROOT_CLASS = INT_FIELDS.length;
const ROOT_RELATIVE_PATH = ROOT_CLASS + 1;
const ROOT_TARGET = ROOT_CLASS + 2;
const ROOT_DIGEST = ROOT_CLASS + 3;
const ROOT_ENCRYPTION_KEY = ROOT_CLASS + 4;
const rootValues = new Int32Array(ROOT_KEYS.length);

/** Lookups: an object index, ABSENT (no such key, or a UID to $null), or FAIL. */
const ABSENT = -1;
const FAIL = -2;

/** The trailer's layout, checked as the generic parser checks it; undefined for anything else. */
function layout(buf: Buffer): Layout | undefined {
  const n = buf.length;
  if (n < 41 || n > MAX_BYTES) return undefined;
  // "bplist00"
  if (buf.readUInt32BE(0) !== 0x62706c69 || buf.readUInt32BE(4) !== 0x73743030) return undefined;
  const t = n - 32;
  const offSize = buf[t + 6]!;
  const refSize = buf[t + 7]!;
  if (offSize !== 1 && offSize !== 2 && offSize !== 4) return undefined;
  if (refSize !== 1 && refSize !== 2) return undefined;
  // Three 64-bit fields whose high words must be 0 here (the counts are small).
  if (buf.readUInt32BE(t + 8) !== 0 || buf.readUInt32BE(t + 16) !== 0) return undefined;
  if (buf.readUInt32BE(t + 24) !== 0) return undefined;
  const num = buf.readUInt32BE(t + 12);
  const top = buf.readUInt32BE(t + 20);
  const table = buf.readUInt32BE(t + 28);
  if (num === 0 || num > MAX_OBJECTS || top >= num) return undefined;
  if (table < 8 || table > t || table + num * offSize > t || num > table - 8) return undefined;
  if (num > 2 ** (8 * refSize)) return undefined;
  return { buf, num, offSize, refSize, table };
}

/**
 * Walks every object the top reaches, as the generic parser does (depth first, each object read
 * once, a reference back onto the path a cycle), classifying each; the top's index, or FAIL.
 */
function walk(l: Layout): number {
  state.fill(0, 0, l.num);
  const top = l.buf.readUInt32BE(l.buf.length - 32 + 20);
  // The frames of the containers being walked (at most MAX_DEPTH): object index, next ref, depth.
  const stack = frames;
  let sp = visit(l, top, 0, 0);
  if (sp < 0) return FAIL;
  while (sp > 0) {
    const f = sp - 3;
    const i = stack[f]!;
    const next = stack[f + 1]!;
    if (next >= refCount(i)) {
      sp = f;
      state[i] = 2;
      if (f > 0 && !deliver(stack[f - 3]!, stack[f - 2]! - 1, i)) return FAIL;
      continue;
    }
    stack[f + 1] = next + 1;
    const child = ref(l, i, next);
    if (child < 0) return FAIL;
    const after = visit(l, child, stack[f + 2]! + 1, sp);
    if (after < 0) return FAIL;
    // The same height: a scalar, or an object seen before, is done and delivered now.
    if (after === sp && !deliver(i, next, child)) return FAIL;
    sp = after;
  }
  return top;
}

/**
 * The walk's frames: three numbers for each container on the path. MAX_DEPTH frames would do;
 * one per object keeps a missed depth check from hiding behind a full stack.
 */
const frames = new Int32Array(3 * MAX_OBJECTS);

/**
 * Reaches object `i` at `depth` with the stack `sp` high: the new height (`sp` when the object is
 * done: a scalar, or seen before; `sp + 3` when it is a container pushed), or FAIL when the
 * generic parser would refuse it.
 */
function visit(l: Layout, i: number, depth: number, sp: number): number {
  if (state[i] === 2) return depth + height[i]! <= MAX_DEPTH ? sp : FAIL;
  if (state[i] === 1 || !classify(l, i)) return FAIL;
  height[i] = 0;
  size[i] = 1;
  if (kindOf[i] !== Kind.Array && kindOf[i] !== Kind.Dict) {
    state[i] = 2;
    return sp;
  }
  if (depth >= MAX_DEPTH) return FAIL;
  state[i] = 1;
  height[i] = 1;
  frames[sp] = i;
  frames[sp + 1] = 0;
  frames[sp + 2] = depth;
  return sp + 3;
}

/** The generic parser's deliver: a dict's keys are strings; heights and expanded sizes add up. */
function deliver(parent: number, pos: number, child: number): boolean {
  if (height[child]! + 1 > height[parent]!) height[parent] = height[child]! + 1;
  const isDict = kindOf[parent] === Kind.Dict;
  if (isDict && pos < count[parent]!)
    return kindOf[child] === Kind.Ascii || kindOf[child] === Kind.Utf16;
  size[parent] = size[parent]! + size[child]!;
  return size[parent]! <= MAX_OBJECTS;
}

function refCount(i: number): number {
  return kindOf[i] === Kind.Dict ? count[i]! * 2 : count[i]!;
}

/** Container `i`'s ref number `k` (already bounds-checked by classify), or FAIL when out of range. */
function ref(l: Layout, i: number, k: number): number {
  const r = refAt(l, body[i]! + k * l.refSize);
  return r < l.num ? r : FAIL;
}

/** Reads object `i`'s marker and lengths, checking them against the object area. */
function classify(l: Layout, i: number): boolean {
  const { buf, table } = l;
  const p = table + i * l.offSize;
  const o =
    l.offSize === 1
      ? buf[p]!
      : l.offSize === 2
        ? (buf[p]! << 8) | buf[p + 1]!
        : buf.readUInt32BE(p);
  if (o < 8 || o >= table) return false;
  at[i] = o;
  const m = buf[o]!;
  const nib = m & 0x0f;
  switch (m >> 4) {
    case 0x0:
      if (m !== 0x08 && m !== 0x09) return false;
      kindOf[i] = Kind.Bool;
      return true;
    case 0x1:
      if (nib > 3 || o + 1 + (1 << nib) > table) return false;
      kindOf[i] = Kind.Int;
      return true;
    case 0x2:
      if ((nib !== 2 && nib !== 3) || o + 1 + (1 << nib) > table) return false;
      kindOf[i] = Kind.Real;
      return true;
    case 0x4:
    case 0x5:
    case 0x6:
    case 0xa:
    case 0xd: {
      let n = nib;
      let from = o + 1;
      if (nib === 0x0f) {
        if (o + 2 > table) return false;
        const im = buf[o + 1]!;
        if (im >> 4 !== 1 || (im & 0x0f) > 2 || o + 2 + (1 << (im & 0x0f)) > table) return false;
        n = buf.readUIntBE(o + 2, 1 << (im & 0x0f));
        from = o + 2 + (1 << (im & 0x0f));
      }
      const type = m >> 4;
      const bytes =
        type === 0x6 ? n * 2 : type === 0xa ? n * l.refSize : type === 0xd ? n * 2 * l.refSize : n;
      if (from + bytes > table) return false;
      kindOf[i] =
        type === 0x4
          ? Kind.Data
          : type === 0x5
            ? Kind.Ascii
            : type === 0x6
              ? Kind.Utf16
              : type === 0xa
                ? Kind.Array
                : Kind.Dict;
      body[i] = from;
      count[i] = n;
      return true;
    }
    case 0x8: {
      // Up to 6 bytes: always a safe integer.
      if (nib > 5 || o + 2 + nib > table) return false;
      kindOf[i] = Kind.Uid;
      return true;
    }
    default:
      return false;
  }
}

/** The ref (refSize 1 or 2) at byte `p`: plain byte reads, a Buffer's readUIntBE costs more here. */
function refAt(l: Layout, p: number): number {
  return l.refSize === 1 ? l.buf[p]! : (l.buf[p]! << 8) | l.buf[p + 1]!;
}

/** The value of the last `key` in dict `d` (the generic parser keeps the last), or ABSENT. */
function lookup(l: Layout, d: number, key: string): number {
  LOOKUP_ONE[0] = key;
  lookupAll(l, d, LOOKUP_ONE, LOOKUP_ONE_OUT);
  return LOOKUP_ONE_OUT[0]!;
}
const LOOKUP_ONE = [''];
const LOOKUP_ONE_OUT = new Int32Array(1);

/** lookup() of each of `keys` into `out`, in one pass over the dict. */
function lookupAll(l: Layout, d: number, keys: readonly string[], out: Int32Array): void {
  out.fill(ABSENT, 0, keys.length);
  const n = count[d]!;
  const b = body[d]!;
  for (let k = 0; k < n; k++) {
    const ki = refAt(l, b + k * l.refSize);
    for (let j = 0; j < keys.length; j++) {
      if (textEquals(l, ki, keys[j]!)) out[j] = refAt(l, b + (n + k) * l.refSize);
    }
  }
}

/** decodeMbFile's deref: a UID is followed into $objects (0 is $null), anything else is itself. */
function deref(l: Layout, objects: number, v: number): number {
  if (v < 0 || kindOf[v] !== Kind.Uid) return v;
  const uid = l.buf.readUIntBE(at[v]! + 1, (l.buf[at[v]!]! & 0x0f) + 1);
  if (uid === 0) return ABSENT;
  if (uid >= count[objects]!) return FAIL;
  return refAt(l, body[objects]! + uid * l.refSize);
}

function isText(l: Layout, i: number, s: string): boolean {
  return i >= 0 && textEquals(l, i, s);
}

/** Whether string object `i` is `s` (ASCII `s`: a UTF-16 object can spell it too). */
function textEquals(l: Layout, i: number, s: string): boolean {
  if (kindOf[i] === Kind.Ascii) {
    if (count[i] !== s.length) return false;
    const b = body[i]!;
    for (let k = 0; k < s.length; k++) if (l.buf[b + k] !== s.charCodeAt(k)) return false;
    return true;
  }
  return kindOf[i] === Kind.Utf16 && count[i] === s.length && text(l, i) === s;
}

/** String object `i` as the generic parser decodes it, or undefined if it is no string. */
function text(l: Layout, i: number): string | undefined {
  if (i < 0) return undefined;
  const b = body[i]!;
  if (kindOf[i] === Kind.Ascii) return l.buf.toString('latin1', b, b + count[i]!);
  if (kindOf[i] !== Kind.Utf16) return undefined;
  const le = Buffer.allocUnsafe(count[i]! * 2);
  for (let k = 0; k < le.length; k += 2) {
    le[k] = l.buf[b + k + 1]!;
    le[k + 1] = l.buf[b + k]!;
  }
  return le.toString('utf16le');
}

/** A copy of data object `i` (the record outlives the archive's buffer). */
function data(l: Layout, i: number): Buffer {
  const b = body[i]!;
  return Buffer.from(l.buf.subarray(b, b + count[i]!));
}

/**
 * decodeMbFile's intField: an integer (a real that is a whole number too, as the generic parser
 * hands both over as numbers), 0 when absent and optional; undefined for anything else.
 */
function intField(l: Layout, v: number, required: boolean): number | undefined {
  if (v === ABSENT) return required ? undefined : 0;
  const o = at[v]!;
  const nib = l.buf[o]! & 0x0f;
  let n: number;
  if (kindOf[v] === Kind.Int) {
    if (nib < 3) n = l.buf.readUIntBE(o + 1, 1 << nib);
    else {
      const big = l.buf.readBigInt64BE(o + 1);
      if (big < BigInt(Number.MIN_SAFE_INTEGER) || big > BigInt(Number.MAX_SAFE_INTEGER))
        return undefined;
      n = Number(big);
    }
  } else if (kindOf[v] === Kind.Real) {
    n = nib === 2 ? l.buf.readFloatBE(o + 1) : l.buf.readDoubleBE(o + 1);
  } else return undefined;
  return Number.isSafeInteger(n) ? n : undefined;
}
