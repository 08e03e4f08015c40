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

export function decodeMbFile(buf: Buffer): MbFileRecord {
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
