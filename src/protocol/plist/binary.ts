/**
 * Binary property lists (`bplist00`): our own parser and writer.
 *
 * Layout: "bplist00", the objects, an offset table (one offset per object), and a 32-byte
 * trailer (offset size, object-ref size, object count, top object, offset-table offset).
 *
 * The parser treats the input as hostile: every offset and length is checked against the buffer
 * before it is used, the object count is bounded before anything is allocated, and the object
 * graph is walked iteratively with an on-path mark per object, so a reference to itself or to an
 * ancestor is MALFORMED and deep nesting is LIMIT, never a stack overflow. Objects referenced
 * from several places are decoded once and shared, so decoding stays linear; and the tree they
 * stand for (what an encoder or a comparison walks: one visit per reference) is bounded by
 * maxObjects too, so a "billion laughs" of shared references is LIMIT, not a time bomb for the
 * code that later writes the value out (fuzzing found Info.plist re-encoding a device's values).
 */
import { MooringError } from '../../util/errors';
import {
  DEFAULT_PLIST_LIMITS,
  PlistReal,
  PlistUid,
  type PlistDict,
  type PlistLimits,
  type PlistValue,
} from './types';
import { APPLE_EPOCH_OFFSET_SECONDS, MAX_ENCODE_DEPTH, integerValue, setDictEntry } from './xml';

export const BPLIST_MAGIC = Buffer.from('bplist00', 'latin1');
const HEADER_SIZE = 8;
const TRAILER_SIZE = 32;

function malformed(message: string): never {
  throw new MooringError('MALFORMED', `binary plist: ${message}`);
}

/** Reads an unsigned big-endian integer of 1, 2, 4 or 8 bytes as a number (8 bytes must be ≤ 2^53). */
function readUIntBE(buf: Buffer, off: number, size: number, what: string): number {
  switch (size) {
    case 1:
      return buf.readUInt8(off);
    case 2:
      return buf.readUInt16BE(off);
    case 4:
      return buf.readUInt32BE(off);
    case 8: {
      const v = buf.readBigUInt64BE(off);
      if (v > BigInt(Number.MAX_SAFE_INTEGER)) malformed(`${what} ${v} is too large`);
      return Number(v);
    }
    default:
      return malformed(`${what} has unsupported size ${size}`);
  }
}

interface Container {
  index: number;
  isDict: boolean;
  /** Array: element refs. Dict: key refs then value refs. */
  refs: number[];
  next: number;
  depth: number;
  height: number;
  /** Values in the expanded tree so far (itself included, dict keys not). */
  size: number;
  value: PlistValue[] | PlistDict;
  keys: string[];
}

/**
 * The object table of a `bplist00` document, checked on construction: every object found by
 * index, its bounds checked before a byte is read. The parser decodes from it; the in-place reader
 * (`BinaryPlistReader`) reads from it one object at a time.
 */
class BinaryTable {
  protected readonly refSize: number;
  private readonly offsetSize: number;
  protected readonly numObjects: number;
  protected readonly topObject: number;
  private readonly offsetTable: number;
  /** Objects live between the header and the offset table. */
  private readonly objectsEnd: number;

  constructor(
    protected readonly buf: Buffer,
    protected readonly limits: PlistLimits,
  ) {
    if (buf.length < HEADER_SIZE + TRAILER_SIZE + 1) malformed(`too short (${buf.length} bytes)`);
    if (!buf.subarray(0, HEADER_SIZE).equals(BPLIST_MAGIC)) malformed('missing bplist00 header');
    const t = buf.length - TRAILER_SIZE;
    this.offsetSize = buf.readUInt8(t + 6);
    this.refSize = buf.readUInt8(t + 7);
    const num = buf.readBigUInt64BE(t + 8);
    const top = buf.readBigUInt64BE(t + 16);
    const table = buf.readBigUInt64BE(t + 24);
    if (![1, 2, 4, 8].includes(this.offsetSize)) malformed(`bad offset size ${this.offsetSize}`);
    if (![1, 2, 4, 8].includes(this.refSize))
      malformed(`bad object reference size ${this.refSize}`);
    if (num === 0n) malformed('no objects');
    if (num > BigInt(limits.maxObjects)) {
      throw new MooringError(
        'LIMIT',
        `binary plist declares ${num} objects (limit ${limits.maxObjects})`,
      );
    }
    this.numObjects = Number(num);
    if (top >= num) malformed(`top object ${top} is not below the object count ${num}`);
    this.topObject = Number(top);
    if (table < BigInt(HEADER_SIZE) || table > BigInt(t))
      malformed(`offset table at ${table} is outside the file`);
    this.offsetTable = Number(table);
    if (this.offsetTable + this.numObjects * this.offsetSize > t) {
      malformed(
        `offset table (${this.numObjects} × ${this.offsetSize} bytes at ${this.offsetTable}) overruns the trailer`,
      );
    }
    // Every object occupies at least one byte in front of the table.
    if (this.numObjects > this.offsetTable - HEADER_SIZE)
      malformed(`${this.numObjects} objects cannot fit in ${this.offsetTable - HEADER_SIZE} bytes`);
    if (this.refSize < 8 && this.numObjects > 2 ** (8 * this.refSize)) {
      malformed(
        `${this.numObjects} objects cannot be addressed with ${this.refSize}-byte references`,
      );
    }
    this.objectsEnd = this.offsetTable;
  }

  protected objectOffset(index: number): number {
    const off = readUIntBE(
      this.buf,
      this.offsetTable + index * this.offsetSize,
      this.offsetSize,
      'object offset',
    );
    if (off < HEADER_SIZE || off >= this.objectsEnd)
      malformed(`object ${index} offset ${off} is outside the object area`);
    return off;
  }

  /** Ensures [off, off+len) lies in the object area. */
  protected need(off: number, len: number, what: string): void {
    if (len < 0 || off + len > this.objectsEnd)
      malformed(`${what} (${len} bytes at ${off}) runs past the object area`);
  }

  /** Reads the count that follows a marker whose low nibble is 0xF; returns [count, bytes used]. */
  protected readLength(marker: number, off: number): [number, number] {
    const nibble = marker & 0x0f;
    if (nibble !== 0x0f) return [nibble, 1];
    this.need(off + 1, 1, 'length marker');
    const m = this.buf[off + 1]!;
    if ((m & 0xf0) !== 0x10)
      malformed(`length at ${off + 1} is not an integer (marker 0x${m.toString(16)})`);
    const size = 1 << (m & 0x0f);
    if (size > 8) malformed(`length at ${off + 1} has size ${size}`);
    this.need(off + 2, size, 'length');
    const len = readUIntBE(this.buf, off + 2, size, 'length');
    return [len, 2 + size];
  }

  protected readRefs(off: number, count: number, what: string): number[] {
    this.need(off, count * this.refSize, what);
    const refs = new Array<number>(count);
    for (let i = 0; i < count; i++) refs[i] = this.readRef(off, i, what);
    return refs;
  }

  /** Reference `i` of the list at `off` (its bytes checked by the caller), below the object count. */
  protected readRef(off: number, i: number, what: string): number {
    const r = readUIntBE(this.buf, off + i * this.refSize, this.refSize, 'object reference');
    if (r >= this.numObjects) malformed(`${what} refers to object ${r} of ${this.numObjects}`);
    return r;
  }

  /** Array or dict `index` (at `depth`): its count and where its refs start; undefined for a scalar. */
  protected containerAt(
    index: number,
    depth: number,
  ): { isDict: boolean; count: number; refsAt: number } | undefined {
    const off = this.objectOffset(index);
    const marker = this.buf[off]!;
    const type = marker >> 4;
    if (type !== 0xa && type !== 0xd) return undefined;
    const [count, used] = this.readLength(marker, off);
    if (depth >= this.limits.maxDepth) {
      throw new MooringError(
        'LIMIT',
        `binary plist nests deeper than ${this.limits.maxDepth} levels`,
      );
    }
    return { isDict: type === 0xd, count, refsAt: off + used };
  }

  /** Decodes a scalar, or returns the container frame to fill. */
  protected readObject(
    index: number,
    depth: number,
  ): { scalar: PlistValue } | { container: Container } {
    const buf = this.buf;
    const off = this.objectOffset(index);
    const marker = buf[off]!;
    const type = marker >> 4;
    const nib = marker & 0x0f;
    switch (type) {
      case 0x0:
        if (marker === 0x08) return { scalar: false };
        if (marker === 0x09) return { scalar: true };
        return malformed(`unsupported marker 0x${marker.toString(16).padStart(2, '0')} at ${off}`);
      case 0x1:
        return { scalar: this.readInt(off, nib) };
      case 0x2: {
        if (nib === 2) {
          this.need(off + 1, 4, 'real');
          return { scalar: buf.readFloatBE(off + 1) };
        }
        if (nib === 3) {
          this.need(off + 1, 8, 'real');
          return { scalar: buf.readDoubleBE(off + 1) };
        }
        return malformed(`real of unsupported size at ${off}`);
      }
      case 0x3: {
        if (marker !== 0x33) malformed(`bad date marker 0x${marker.toString(16)} at ${off}`);
        this.need(off + 1, 8, 'date');
        const secs = buf.readDoubleBE(off + 1);
        const date = new Date(Math.round((secs + APPLE_EPOCH_OFFSET_SECONDS) * 1000));
        if (Number.isNaN(date.getTime())) malformed(`date ${secs} at ${off} is out of range`);
        return { scalar: date };
      }
      case 0x4: {
        const [len, used] = this.readLength(marker, off);
        this.need(off + used, len, 'data');
        // A copy: a DL connection reads each frame into one buffer it reuses (D52).
        return { scalar: Buffer.from(buf.subarray(off + used, off + used + len)) };
      }
      case 0x5:
      case 0x6:
        return { scalar: this.readString(off, marker) };
      case 0x8: {
        const size = nib + 1;
        this.need(off + 1, size, 'UID');
        if (size > 8) malformed(`UID of ${size} bytes at ${off}`);
        let v = 0n;
        for (let i = 0; i < size; i++) v = (v << 8n) | BigInt(buf[off + 1 + i]!);
        if (v > BigInt(Number.MAX_SAFE_INTEGER)) malformed(`UID ${v} is too large`);
        return { scalar: new PlistUid(Number(v)) };
      }
      case 0xa:
      case 0xd: {
        const { isDict, count, refsAt } = this.containerAt(index, depth)!;
        const refs = this.readRefs(refsAt, isDict ? count * 2 : count, isDict ? 'dict' : 'array');
        return {
          container: {
            index,
            isDict,
            refs,
            next: 0,
            depth,
            height: 1,
            size: 1,
            value: isDict ? {} : new Array<PlistValue>(),
            keys: [],
          },
        };
      }
      default:
        return malformed(`unsupported marker 0x${marker.toString(16).padStart(2, '0')} at ${off}`);
    }
  }

  private readInt(off: number, nib: number): number | bigint {
    const buf = this.buf;
    if (nib > 4) malformed(`integer of 2^${nib} bytes at ${off}`);
    const size = 1 << nib;
    this.need(off + 1, size, 'integer');
    let v: bigint;
    switch (size) {
      case 1:
        return buf.readUInt8(off + 1);
      case 2:
        return buf.readUInt16BE(off + 1);
      case 4:
        return buf.readUInt32BE(off + 1);
      case 8:
        v = buf.readBigInt64BE(off + 1);
        break;
      default: {
        // 128-bit signed; accepted when it fits 64 bits (CF writes unsigned values above 2^63 this way).
        const hi = buf.readBigInt64BE(off + 1);
        const lo = buf.readBigUInt64BE(off + 9);
        if (hi === 0n) v = lo;
        else if (hi === -1n && lo >= 1n << 63n) v = lo - (1n << 64n);
        else return malformed(`128-bit integer at ${off} does not fit 64 bits`);
      }
    }
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER)
      ? Number(v)
      : v;
  }

  /** The string object at `off` (marker type 5, bytes read as Latin-1, or 6, UTF-16BE). */
  protected readString(off: number, marker: number): string {
    const buf = this.buf;
    const [start, end, wide] = this.stringSpan(off, marker);
    if (!wide) return buf.toString('latin1', start, end);
    const be = buf.subarray(start, end);
    const le = Buffer.allocUnsafe(be.length);
    for (let i = 0; i < be.length; i += 2) {
      le[i] = be[i + 1]!;
      le[i + 1] = be[i]!;
    }
    return le.toString('utf16le');
  }

  /** Where the characters of the string object at `off` lie: [start, end, UTF-16]. */
  protected stringSpan(off: number, marker: number): [number, number, boolean] {
    const [len, used] = this.readLength(marker, off);
    const wide = marker >> 4 === 0x6;
    const bytes = wide ? len * 2 : len;
    this.need(off + used, bytes, wide ? 'UTF-16 string' : 'ASCII string');
    return [off + used, off + used + bytes, wide];
  }
}

class BinaryParser extends BinaryTable {
  private readonly memo: (PlistValue | undefined)[];
  /** Nested container levels in each decoded object's subtree (itself included; 0 for scalars), to bound depth through shared objects. */
  private readonly heights: Int32Array;
  /** Expanded tree size of each decoded object (see `Container.size`). */
  private readonly sizes: Float64Array;
  private readonly onPath: Uint8Array;

  constructor(buf: Buffer, limits: PlistLimits) {
    super(buf, limits);
    this.memo = new Array<PlistValue | undefined>(this.numObjects);
    this.heights = new Int32Array(this.numObjects);
    this.sizes = new Float64Array(this.numObjects);
    this.onPath = new Uint8Array(this.numObjects);
  }

  /** Values in the expanded tree of object `index`, once decoded (see `Container.size`). */
  sizeOf(index: number): number {
    return this.sizes[index]!;
  }

  /** Decodes object `top` (the document's top object unless told), which sits at `depth`. */
  parse(top = this.topObject, depth = 0): PlistValue {
    const stack: Container[] = [];
    let result: PlistValue | undefined;
    /** Resolves `index` at `depth`: returns the value if immediately available, else pushes a frame. */
    const visit = (
      index: number,
      depth: number,
    ): { value: PlistValue; height: number; size: number } | undefined => {
      const cached = this.memo[index];
      if (cached !== undefined) {
        const height = this.heights[index]!;
        if (depth + height > this.limits.maxDepth) {
          throw new MooringError(
            'LIMIT',
            `binary plist nests deeper than ${this.limits.maxDepth} levels`,
          );
        }
        return { value: cached, height, size: this.sizes[index]! };
      }
      if (this.onPath[index]) malformed(`object ${index} contains itself (reference cycle)`);
      const r = this.readObject(index, depth);
      if ('scalar' in r) {
        this.memo[index] = r.scalar;
        this.sizes[index] = 1;
        return { value: r.scalar, height: 0, size: 1 };
      }
      this.onPath[index] = 1;
      stack.push(r.container);
      return undefined;
    };

    const first = visit(top, depth);
    if (first) return first.value;

    while (stack.length > 0) {
      const frame = stack[stack.length - 1]!;
      if (frame.next >= frame.refs.length) {
        // Container complete.
        stack.pop();
        this.onPath[frame.index] = 0;
        this.memo[frame.index] = frame.value;
        this.heights[frame.index] = frame.height;
        this.sizes[frame.index] = frame.size;
        const parent = stack[stack.length - 1];
        if (parent === undefined) result = frame.value;
        else this.deliver(parent, frame.value, frame.height, frame.size);
        continue;
      }
      const ref = frame.refs[frame.next++]!;
      const got = visit(ref, frame.depth + 1);
      if (got) this.deliver(frame, got.value, got.height, got.size);
    }
    return result as PlistValue;
  }

  /** Adds a finished child to its container; dict keys (first half of refs) must be strings. */
  private deliver(
    frame: Container,
    value: PlistValue,
    childLevels: number,
    childSize: number,
  ): void {
    if (childLevels + 1 > frame.height) frame.height = childLevels + 1;
    const half = frame.refs.length / 2;
    const pos = frame.next - 1;
    if (!frame.isDict || pos >= half) {
      frame.size += childSize;
      if (frame.size > this.limits.maxObjects) {
        throw new MooringError(
          'LIMIT',
          `binary plist expands to more than ${this.limits.maxObjects} values through shared references`,
        );
      }
    }
    if (!frame.isDict) {
      (frame.value as PlistValue[]).push(value);
      return;
    }
    if (pos < half) {
      if (typeof value !== 'string') malformed(`dict key in object ${frame.index} is not a string`);
      frame.keys.push(value);
    } else {
      setDictEntry(frame.value as PlistDict, frame.keys[pos - half]!, value);
    }
  }
}

/** Values written as one object (everything but arrays and dicts). */
function isLeafObject(v: object): v is Uint8Array | Date | PlistUid | PlistReal {
  return (
    v instanceof Uint8Array || v instanceof Date || v instanceof PlistUid || v instanceof PlistReal
  );
}

/** Whether `buf` starts as a `bplist00` document does. */
export function isBinaryPlist(buf: Buffer): boolean {
  return buf.length >= HEADER_SIZE && buf.subarray(0, HEADER_SIZE).equals(BPLIST_MAGIC);
}

/** Parses a `bplist00` document. Throws MooringError MALFORMED or LIMIT. */
export function decodeBinaryPlist(buf: Buffer, limits: Partial<PlistLimits> = {}): PlistValue {
  return new BinaryParser(buf, { ...DEFAULT_PLIST_LIMITS, ...limits }).parse();
}

// ---------------------------------------------------------------------------------------------
// In-place reader
// ---------------------------------------------------------------------------------------------

/**
 * A binary plist read where it lies, for a document too large to be worth building whole: a
 * MoveItems message of thousands of paths, whose dictionary, decoded, lived long enough on the
 * job thread's heap to be promoted and then thrown away (D51). The top array's elements are
 * decoded one by one, and a dictionary of strings is read a pair at a time. The bounds are
 * `decodeBinaryPlist`'s; what it would refuse, this refuses too (its error may name another fault
 * of the same document).
 */
export class BinaryPlistReader extends BinaryTable {
  constructor(buf: Buffer, limits: Partial<PlistLimits> = {}) {
    super(buf, { ...DEFAULT_PLIST_LIMITS, ...limits });
  }

  /** The most values a document may expand to (its limits' maxObjects). */
  get maxObjects(): number {
    return this.limits.maxObjects;
  }

  /** The objects the top array holds, or undefined when the top object is not an array. */
  topArray(): number[] | undefined {
    const c = this.containerAt(this.topObject, 0);
    return c?.isDict === false ? this.readRefs(c.refsAt, c.count, 'array') : undefined;
  }

  /**
   * Object `index` decoded whole, as it would be at `depth` in the document, and the count of values
   * its expanded tree holds (shared objects once a use).
   */
  decodeCounted(index: number, depth: number): [PlistValue, number] {
    const parser = new BinaryParser(this.buf, this.limits);
    const value = parser.parse(index, depth);
    return [value, parser.sizeOf(index)];
  }

  /** The string object `index`, or undefined when that object is not a string. */
  stringAt(index: number): string | undefined {
    const off = this.objectOffset(index);
    const marker = this.buf[off]!;
    return isStringMarker(marker) ? this.readString(off, marker) : undefined;
  }

  /**
   * Dictionary `index` (at `depth`), every key and value checked to be a string whose bytes lie in
   * the document; undefined when that object is not a dictionary.
   */
  stringPairs(index: number, depth: number): BinaryStringPairs | undefined {
    const c = this.containerAt(index, depth);
    if (c?.isDict !== true) return undefined;
    if (c.count + 1 > this.limits.maxObjects) {
      throw new MooringError(
        'LIMIT',
        `binary plist expands to more than ${this.limits.maxObjects} values through shared references`,
      );
    }
    this.need(c.refsAt, 2 * c.count * this.refSize, 'dict');
    const pairs = new BinaryStringPairs(this, c.refsAt, c.count);
    for (let i = 0; i < c.count; i++) {
      this.stringBytes(pairs.keyRef(i), `key ${i} of dict object ${index}`);
      this.stringBytes(pairs.valueRef(i), `value ${i} of dict object ${index}`);
    }
    return pairs;
  }

  /** The object reference `i` of the list at `refsAt` (checked against the object count). */
  refAt(refsAt: number, i: number): number {
    return this.readRef(refsAt, i, 'dict');
  }

  /** The UTF-8 length of string object `index` once decoded, as `Buffer.byteLength` counts it. */
  utf8Length(index: number): number {
    const [start, end, wide] = this.stringBytes(index, `object ${index}`);
    const buf = this.buf;
    let n = 0;
    if (!wide) {
      for (let i = start; i < end; i++) n += buf[i]! < 0x80 ? 1 : 2; // read as Latin-1
      return n;
    }
    for (let i = start; i < end; i += 2) {
      const u = (buf[i]! << 8) | buf[i + 1]!;
      if (u < 0x80) n += 1;
      else if (u < 0x800) n += 2;
      else if (u >= 0xd800 && u < 0xdc00 && i + 2 < end && (buf[i + 2]! & 0xfc) === 0xdc) {
        n += 4; // a surrogate pair
        i += 2;
      } else n += 3; // a lone surrogate is written as U+FFFD
    }
    return n;
  }

  /** Whether string object `index` holds a U+0000. */
  containsNul(index: number): boolean {
    const [start, end, wide] = this.stringBytes(index, `object ${index}`);
    const buf = this.buf;
    if (!wide) return buf.subarray(start, end).includes(0);
    for (let i = start; i < end; i += 2) if (buf[i] === 0 && buf[i + 1] === 0) return true;
    return false;
  }

  /** Where the characters of string object `index` lie: [start, end, UTF-16]; MALFORMED if none. */
  private stringBytes(index: number, what: string): [number, number, boolean] {
    const off = this.objectOffset(index);
    const marker = this.buf[off]!;
    if (!isStringMarker(marker)) malformed(`${what} is not a string`);
    return this.stringSpan(off, marker);
  }
}

/** A dictionary of strings in a binary plist, read a pair at a time (`BinaryPlistReader.stringPairs`). */
export class BinaryStringPairs {
  constructor(
    readonly reader: BinaryPlistReader,
    private readonly refsAt: number,
    readonly count: number,
  ) {}

  keyRef(i: number): number {
    return this.reader.refAt(this.refsAt, i);
  }

  valueRef(i: number): number {
    return this.reader.refAt(this.refsAt, this.count + i);
  }

  key(i: number): string {
    return this.reader.stringAt(this.keyRef(i))!;
  }

  value(i: number): string {
    return this.reader.stringAt(this.valueRef(i))!;
  }
}

function isStringMarker(marker: number): boolean {
  return marker >> 4 === 0x5 || marker >> 4 === 0x6;
}

// ---------------------------------------------------------------------------------------------
// Writer
// ---------------------------------------------------------------------------------------------

/** A growable byte buffer. */
class ByteSink {
  buf = Buffer.allocUnsafe(4096);
  len = 0;

  ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.len);
    this.buf = next;
  }

  byte(b: number): void {
    this.ensure(1);
    this.buf[this.len++] = b;
  }

  uint(v: number, size: number): void {
    this.ensure(size);
    switch (size) {
      case 1:
        this.buf.writeUInt8(v, this.len);
        break;
      case 2:
        this.buf.writeUInt16BE(v, this.len);
        break;
      case 4:
        this.buf.writeUInt32BE(v, this.len);
        break;
      default:
        this.buf.writeBigUInt64BE(BigInt(v), this.len);
    }
    this.len += size;
  }

  bytes(b: Buffer): void {
    this.ensure(b.length);
    b.copy(this.buf, this.len);
    this.len += b.length;
  }
}

function uintSize(max: number): number {
  if (max < 0x100) return 1;
  if (max < 0x10000) return 2;
  if (max < 0x100000000) return 4;
  return 8;
}

const SCALAR = 0;
const ARRAY = 1;
const DICT = 2;

class BinaryWriter {
  // Flattened objects in parallel arrays (fewer small allocations than one record per object).
  private readonly kinds: number[] = [];
  private readonly scalars: (PlistValue | undefined)[] = [];
  /** Children of containers (dicts: keys then values). */
  private readonly children: (number[] | undefined)[] = [];
  /** Equal strings (dict keys above all) are written once, as Apple and libplist do. */
  private readonly strings = new Map<string, number>();

  /** Flattens depth-first, parent before children (the root is object 0). */
  add(v: PlistValue, depth: number): number {
    if (typeof v === 'string') {
      const known = this.strings.get(v);
      if (known !== undefined) return known;
      const index = this.push(SCALAR, v, undefined);
      this.strings.set(v, index);
      return index;
    }
    if (typeof v !== 'object' || v === null || isLeafObject(v))
      return this.push(SCALAR, v, undefined);
    if (depth >= MAX_ENCODE_DEPTH) {
      throw new MooringError(
        'LIMIT',
        `plist nests deeper than ${MAX_ENCODE_DEPTH} levels while encoding (a cycle?)`,
      );
    }
    if (Array.isArray(v)) {
      const refs = new Array<number>(v.length);
      const index = this.push(ARRAY, undefined, refs);
      for (let i = 0; i < v.length; i++) refs[i] = this.add(v[i]!, depth + 1);
      return index;
    }
    const keys: string[] = [];
    const values: PlistValue[] = [];
    // for…in is markedly faster than Object.entries on 100k-key objects; own keys only.
    for (const k in v) {
      const item = v[k];
      if (item !== undefined && Object.hasOwn(v, k)) {
        keys.push(k);
        values.push(item);
      }
    }
    const n = keys.length;
    const refs = new Array<number>(n * 2);
    const index = this.push(DICT, undefined, refs);
    for (let i = 0; i < n; i++) refs[i] = this.add(keys[i]!, depth + 1);
    for (let i = 0; i < n; i++) refs[n + i] = this.add(values[i]!, depth + 1);
    return index;
  }

  private push(kind: number, scalar: PlistValue | undefined, refs: number[] | undefined): number {
    this.kinds.push(kind);
    this.scalars.push(scalar);
    this.children.push(refs);
    return this.kinds.length - 1;
  }

  finish(): Buffer {
    const n = this.kinds.length;
    const refSize = uintSize(n - 1);
    const out = new ByteSink();
    out.bytes(BPLIST_MAGIC);
    const offsets = new Array<number>(n);
    for (let i = 0; i < n; i++) {
      offsets[i] = out.len;
      const kind = this.kinds[i];
      if (kind === SCALAR) {
        this.scalar(out, this.scalars[i]!);
        continue;
      }
      const refs = this.children[i]!;
      this.marker(out, kind === DICT ? 0xd0 : 0xa0, kind === DICT ? refs.length / 2 : refs.length);
      out.ensure(refs.length * refSize);
      for (const r of refs) out.uint(r, refSize);
    }
    const tableOffset = out.len;
    const offsetSize = uintSize(tableOffset);
    out.ensure(n * offsetSize + TRAILER_SIZE);
    for (const o of offsets) out.uint(o, offsetSize);
    const trailer = Buffer.alloc(TRAILER_SIZE);
    trailer.writeUInt8(offsetSize, 6);
    trailer.writeUInt8(refSize, 7);
    trailer.writeBigUInt64BE(BigInt(n), 8);
    trailer.writeBigUInt64BE(0n, 16);
    trailer.writeBigUInt64BE(BigInt(tableOffset), 24);
    out.bytes(trailer);
    return Buffer.from(out.buf.subarray(0, out.len));
  }

  /** Type nibble plus count; counts ≥ 15 follow as an integer object. */
  private marker(out: ByteSink, type: number, count: number): void {
    if (count < 15) {
      out.byte(type | count);
    } else {
      out.byte(type | 0x0f);
      this.uint(out, count);
    }
  }

  /** Non-negative integer in its smallest size (1/2/4 unsigned, 8 signed). */
  private uint(out: ByteSink, v: number): void {
    const size = uintSize(v);
    out.byte(0x10 | Math.log2(size));
    out.uint(v, size);
  }

  private scalar(out: ByteSink, v: PlistValue): void {
    switch (typeof v) {
      case 'string':
        this.string(out, v);
        return;
      case 'boolean':
        out.byte(v ? 0x09 : 0x08);
        return;
      case 'number':
      case 'bigint': {
        const i = integerValue(v);
        if (i === undefined) this.real(out, v as number);
        else this.integer(out, i);
        return;
      }
      case 'object':
        break;
      default:
        throw new MooringError('MALFORMED', `cannot encode a ${typeof v} in a plist`);
    }
    if (v === null) throw new MooringError('MALFORMED', 'cannot encode null in a plist');
    if (v instanceof PlistReal) {
      this.real(out, v.value);
    } else if (v instanceof Date) {
      const t = v.getTime();
      if (!Number.isFinite(t))
        throw new MooringError('MALFORMED', 'cannot encode an invalid Date in a plist');
      out.byte(0x33);
      out.ensure(8);
      out.buf.writeDoubleBE(t / 1000 - APPLE_EPOCH_OFFSET_SECONDS, out.len);
      out.len += 8;
    } else if (v instanceof PlistUid) {
      const u = v.value;
      if (!Number.isInteger(u) || u < 0 || u > 0xffffffff) {
        throw new MooringError('MALFORMED', `UID ${u} is not a 32-bit unsigned integer`);
      }
      const size = uintSize(u);
      out.byte(0x80 | (size - 1));
      out.uint(u, size);
    } else if (v instanceof Uint8Array) {
      const u: Uint8Array = v;
      const b = Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength);
      this.marker(out, 0x40, b.length);
      out.bytes(b);
    } else {
      throw new MooringError('MALFORMED', 'cannot encode this object in a plist');
    }
  }

  private integer(out: ByteSink, i: bigint): void {
    if (i < 0n) {
      out.byte(0x13);
      out.ensure(8);
      out.buf.writeBigInt64BE(i, out.len);
      out.len += 8;
    } else if (i < 1n << 32n) {
      this.uint(out, Number(i));
    } else if (i < 1n << 63n) {
      out.byte(0x13);
      out.ensure(8);
      out.buf.writeBigInt64BE(i, out.len);
      out.len += 8;
    } else {
      // Above INT64_MAX: a 16-byte integer with zero high half, as CoreFoundation and libplist write.
      out.byte(0x14);
      out.ensure(16);
      out.buf.writeBigUInt64BE(0n, out.len);
      out.buf.writeBigUInt64BE(i, out.len + 8);
      out.len += 16;
    }
  }

  private real(out: ByteSink, v: number): void {
    out.byte(0x23);
    out.ensure(8);
    out.buf.writeDoubleBE(v, out.len);
    out.len += 8;
  }

  private string(out: ByteSink, s: string): void {
    // eslint-disable-next-line no-control-regex
    if (/^[\x00-\x7f]*$/.test(s)) {
      this.marker(out, 0x50, s.length);
      out.ensure(s.length);
      out.len += out.buf.write(s, out.len, 'latin1');
      return;
    }
    this.marker(out, 0x60, s.length);
    out.ensure(s.length * 2);
    const start = out.len;
    out.len += out.buf.write(s, start, 'utf16le');
    out.buf.subarray(start, out.len).swap16();
  }
}

/** Serializes a value as a `bplist00` document. */
export function encodeBinaryPlist(v: PlistValue): Buffer {
  const w = new BinaryWriter();
  w.add(v, 0);
  return w.finish();
}
