/**
 * The `file` column of Manifest.db: an NSKeyedArchiver binary plist whose root object is an
 * `MBFile` (reference §5.3). Strings and data are stored as separate objects referenced by UID,
 * the way Foundation archives them; numbers are inline.
 */
import { MooringError } from '../util/errors';
import {
  PlistUid,
  decodePlist,
  encodeBinaryPlist,
  isPlistDict,
  type PlistDict,
  type PlistValue,
} from '../protocol/plist';
import { decodeMbFileDirect } from './mbfile-direct';

/** st_mode type bits, as MBFile `Mode` carries them. */
export const S_IFREG = 0o100000;
export const S_IFDIR = 0o040000;
export const S_IFLNK = 0o120000;
export const S_IFMT = 0o170000;

export interface MbFileRecord {
  relativePath: string;
  lastModified: number;
  lastStatusChange: number;
  birth: number;
  size: number;
  /** Full st_mode, type bits included. */
  mode: number;
  userId: number;
  groupId: number;
  inode: number;
  protectionClass: number;
  flags: number;
  /** Symlink target. */
  target?: string;
  /** SHA-1 of the content (20 bytes) when known. */
  digest?: Buffer;
  /** H8a: encrypted backups: 4-byte LE class + RFC 3394-wrapped file key (an NSMutableData). */
  encryptionKey?: Buffer;
}

/** Bounds for decoding one archive: a real MBFile has about ten objects. */
export const MAX_MBFILE_BYTES = 64 * 1024;
const MBFILE_LIMITS = { maxDepth: 8, maxObjects: 256 };

const CLASS_INFO: PlistDict = { $classname: 'MBFile', $classes: ['MBFile', 'NSObject'] };
const DATA_CLASS_INFO: PlistDict = {
  $classname: 'NSMutableData',
  $classes: ['NSMutableData', 'NSData', 'NSObject'],
}; // H8a

export function encodeMbFile(r: MbFileRecord): Buffer {
  const objects: PlistValue[] = ['$null'];
  const root: PlistDict = {};
  objects.push(root); // UID 1
  const ref = (v: PlistValue): PlistUid => {
    objects.push(v);
    return new PlistUid(objects.length - 1);
  };
  root.LastModified = r.lastModified;
  root.Flags = r.flags;
  root.GroupID = r.groupId;
  root.LastStatusChange = r.lastStatusChange;
  root.Birth = r.birth;
  root.RelativePath = ref(r.relativePath);
  root.Size = r.size;
  root.InodeNumber = r.inode;
  root.UserID = r.userId;
  root.Mode = r.mode;
  root.ProtectionClass = r.protectionClass;
  if (r.target !== undefined) root.Target = ref(r.target);
  if (r.digest !== undefined) root.Digest = ref(r.digest);
  if (r.encryptionKey !== undefined)
    root.EncryptionKey = ref({ 'NS.data': r.encryptionKey, $class: ref(DATA_CLASS_INFO) }); // H8a
  root.$class = ref(CLASS_INFO);
  return encodeBinaryPlist({
    $version: 100000,
    $archiver: 'NSKeyedArchiver',
    $top: { root: new PlistUid(1) },
    $objects: objects,
  });
}

function bad(message: string): MooringError {
  return new MooringError('MALFORMED', `MBFile archive: ${message}`);
}

/** Follows a UID into $objects (values stored inline are accepted as they are). */
function deref(objects: PlistValue[], v: PlistValue | undefined): PlistValue | undefined {
  if (v instanceof PlistUid) {
    if (v.value === 0) return undefined; // $null
    const o = objects[v.value];
    if (o === undefined) throw bad(`UID ${v.value} points outside $objects`);
    return o;
  }
  return v;
}

function intField(root: PlistDict, key: string, required: boolean): number {
  const v = root[key];
  if (v === undefined) {
    if (required) throw bad(`${key} is missing`);
    return 0;
  }
  if (typeof v === 'number' && Number.isSafeInteger(v)) return v;
  if (
    typeof v === 'bigint' &&
    v <= BigInt(Number.MAX_SAFE_INTEGER) &&
    v >= BigInt(Number.MIN_SAFE_INTEGER)
  ) {
    return Number(v);
  }
  throw bad(`${key} is not an integer`);
}

/**
 * The MBFile record of an archive; MALFORMED or LIMIT when it is not one. The usual archive is
 * read directly from its bytes (mbfile-direct.ts); anything else goes through the plist parser,
 * which has the last word.
 */
export function decodeMbFile(buf: Buffer): MbFileRecord {
  return decodeMbFileDirect(buf) ?? decodeMbFileByParser(buf);
}

/** decodeMbFile through the generic binary-plist parser (the direct path's reference). */
export function decodeMbFileByParser(buf: Buffer): MbFileRecord {
  if (buf.length > MAX_MBFILE_BYTES) {
    throw new MooringError(
      'LIMIT',
      `MBFile archive is ${buf.length} bytes, more than ${MAX_MBFILE_BYTES}`,
    );
  }
  const top = decodePlist(buf, MBFILE_LIMITS);
  if (!isPlistDict(top)) throw bad('top level is not a dict');
  if (top.$archiver !== 'NSKeyedArchiver') throw bad('$archiver is not NSKeyedArchiver');
  const objects = top.$objects;
  if (!Array.isArray(objects)) throw bad('$objects is not an array');
  const t = top.$top;
  if (!isPlistDict(t) || !(t.root instanceof PlistUid)) throw bad('$top.root is not a UID');
  const root = deref(objects, t.root);
  if (!isPlistDict(root)) throw bad('root object is not a dict');
  const cls = deref(objects, root.$class);
  if (!isPlistDict(cls) || cls.$classname !== 'MBFile')
    throw bad('root object is not of class MBFile');
  const rel = deref(objects, root.RelativePath);
  if (typeof rel !== 'string') throw bad('RelativePath is not a string');
  const rec: MbFileRecord = {
    relativePath: rel,
    lastModified: intField(root, 'LastModified', false),
    lastStatusChange: intField(root, 'LastStatusChange', false),
    birth: intField(root, 'Birth', false),
    size: intField(root, 'Size', false),
    mode: intField(root, 'Mode', true),
    userId: intField(root, 'UserID', false),
    groupId: intField(root, 'GroupID', false),
    inode: intField(root, 'InodeNumber', false),
    protectionClass: intField(root, 'ProtectionClass', false),
    flags: intField(root, 'Flags', false),
  };
  if (rec.size < 0) throw bad('Size is negative');
  const target = deref(objects, root.Target);
  if (target !== undefined) {
    if (typeof target !== 'string') throw bad('Target is not a string');
    rec.target = target;
  }
  const digest = deref(objects, root.Digest);
  if (digest !== undefined) {
    if (!Buffer.isBuffer(digest)) throw bad('Digest is not data');
    rec.digest = digest;
  }
  // H8a: EncryptionKey is an NSMutableData archive ({NS.data}); plain data tolerated.
  const ek = deref(objects, root.EncryptionKey);
  if (ek !== undefined) {
    const data = isPlistDict(ek) ? ek['NS.data'] : ek;
    if (!Buffer.isBuffer(data)) throw bad('EncryptionKey is not data');
    rec.encryptionKey = data;
  }
  return rec;
}

// ---- Size without decoding the archive (verify of rows a previous verify already decoded) ----

/** What mbFileSummary reads from an MBFile archive. */
export interface MbFileSummary {
  size: number;
  hasDigest: boolean;
}

/** Layout of one binary plist, from its trailer (mbFileSummary). */
interface BplistLayout {
  buf: Buffer;
  /** Start of the offset table (objects live before it). */
  table: number;
  count: number;
  offSize: number;
  refSize: number;
}

const KEY_OBJECTS = Buffer.from('$objects', 'latin1');
const KEY_TOP = Buffer.from('$top', 'latin1');
const KEY_ROOT = Buffer.from('root', 'latin1');
const KEY_SIZE = Buffer.from('Size', 'latin1');
const KEY_DIGEST = Buffer.from('Digest', 'latin1');
/** "bplist00" as two big-endian words. */
const BPLIST_MAGIC = [0x62706c69, 0x73743030];

/** Offset of object `i`, or -1. */
function objectAt(l: BplistLayout, i: number): number {
  if (i < 0 || i >= l.count) return -1;
  const o = l.buf.readUIntBE(l.table + i * l.offSize, l.offSize);
  return o >= 8 && o < l.table ? o : -1;
}

/** Entry count and start of the refs of the dict (0xd) or array (0xa) at `o`; len -1 if not. */
function containerAt(l: BplistLayout, o: number, kind: number): { len: number; refs: number } {
  const { buf } = l;
  const m = buf[o]!;
  if (m >> 4 !== kind) return { len: -1, refs: 0 };
  let len = m & 0x0f;
  let refs = o + 1;
  if (len === 0x0f) {
    const im = buf[refs]!;
    if (im >> 4 !== 1 || (im & 0x0f) > 2) return { len: -1, refs: 0 };
    const w = 1 << (im & 0x0f);
    if (refs + 1 + w > l.table) return { len: -1, refs: 0 };
    len = buf.readUIntBE(refs + 1, w);
    refs += 1 + w;
  }
  const span = (kind === 0xd ? 2 : 1) * len * l.refSize;
  return refs + span <= l.table ? { len, refs } : { len: -1, refs: 0 };
}

/** Whether object `i` is the ASCII string `key`. */
function isKey(l: BplistLayout, i: number, key: Buffer): boolean {
  const o = objectAt(l, i);
  if (o < 0 || l.buf[o] !== 0x50 + key.length || o + 1 + key.length > l.table) return false;
  for (let k = 0; k < key.length; k++) if (l.buf[o + 1 + k] !== key[k]) return false;
  return true;
}

/** Object index of the value of `key` in the dict at offset `o`: -1 absent, -2 not a dict. */
function lookup(l: BplistLayout, o: number, key: Buffer): number {
  const d = containerAt(l, o, 0xd);
  if (d.len < 0) return -2;
  for (let k = 0; k < d.len; k++) {
    if (isKey(l, l.buf.readUIntBE(d.refs + k * l.refSize, l.refSize), key))
      return l.buf.readUIntBE(d.refs + (d.len + k) * l.refSize, l.refSize);
  }
  return -1;
}

/** UID object `i`'s value, or -1. */
function uidValue(l: BplistLayout, i: number): number {
  const o = objectAt(l, i);
  if (o < 0 || l.buf[o]! >> 4 !== 8) return -1;
  const w = (l.buf[o]! & 0x0f) + 1;
  return w <= 4 && o + 1 + w <= l.table ? l.buf.readUIntBE(o + 1, w) : -1;
}

/**
 * The MBFile's Size (0 when absent, as decodeMbFile) and whether it has a Digest, read by walking
 * the binary plist to `$objects[$top.root]` and its two keys, without building any value. Meant
 * for archives decodeMbFile accepted before: undefined for anything it does not recognise (the
 * caller then decodes fully), never a guess. Every offset and count is checked against the buffer.
 */
export function mbFileSummary(buf: Buffer): MbFileSummary | undefined {
  const n = buf.length;
  if (n < 40 || n > MAX_MBFILE_BYTES) return undefined;
  if (buf.readUInt32BE(0) !== BPLIST_MAGIC[0] || buf.readUInt32BE(4) !== BPLIST_MAGIC[1])
    return undefined;
  const t = n - 32;
  const offSize = buf[t + 6]!;
  const refSize = buf[t + 7]!;
  if (offSize < 1 || offSize > 4 || refSize < 1 || refSize > 4) return undefined;
  if (buf.readUInt32BE(t + 8) !== 0 || buf.readUInt32BE(t + 16) !== 0) return undefined;
  if (buf.readUInt32BE(t + 24) !== 0) return undefined;
  const count = buf.readUInt32BE(t + 12);
  const top = buf.readUInt32BE(t + 20);
  const table = buf.readUInt32BE(t + 28);
  if (table + count * offSize > t || top >= count) return undefined;
  const l: BplistLayout = { buf, table, count, offSize, refSize };
  const topDict = objectAt(l, top);
  if (topDict < 0) return undefined;
  const objectsAt = objectAt(l, lookup(l, topDict, KEY_OBJECTS));
  const topAt = objectAt(l, lookup(l, topDict, KEY_TOP));
  if (objectsAt < 0 || topAt < 0) return undefined;
  const rootIndex = uidValue(l, lookup(l, topAt, KEY_ROOT));
  const objs = containerAt(l, objectsAt, 0xa);
  if (rootIndex <= 0 || rootIndex >= objs.len) return undefined;
  const rootAt = objectAt(l, buf.readUIntBE(objs.refs + rootIndex * refSize, refSize));
  if (rootAt < 0) return undefined;
  const sizeRef = lookup(l, rootAt, KEY_SIZE);
  const digestRef = lookup(l, rootAt, KEY_DIGEST);
  if (sizeRef === -2 || digestRef === -2) return undefined;
  let size = 0;
  if (sizeRef >= 0) {
    const o = objectAt(l, sizeRef);
    if (o < 0 || buf[o]! >> 4 !== 1) return undefined;
    const w = 1 << (buf[o]! & 0x0f);
    if (w > 8 || o + 1 + w > table) return undefined;
    if (w < 8) size = buf.readUIntBE(o + 1, w);
    else {
      const v = buf.readBigInt64BE(o + 1);
      if (v < 0n || v > BigInt(Number.MAX_SAFE_INTEGER)) return undefined;
      size = Number(v);
    }
  }
  // As decodeMbFile's deref: a UID 0 is $null (no Digest); anything else is a value.
  let hasDigest = false;
  if (digestRef >= 0) {
    const o = objectAt(l, digestRef);
    if (o < 0) return undefined;
    hasDigest = buf[o]! >> 4 !== 8 || uidValue(l, digestRef) > 0;
  }
  return { size, hasDigest };
}
