/**
 * The BackupKeyBag of an encrypted backup's Manifest.plist (reference §7): class keys wrapped by
 * a key derived from the backup password. Derivation: PBKDF2-HMAC-SHA256(password, DPSL, DPIC)
 * then PBKDF2-HMAC-SHA1(that, SALT, ITER) (iOS < 10.2 has no DPIC/DPSL: only the SHA-1 round).
 * The keybag is read from a backup folder, so every count and round number is bounded.
 */
import crypto from 'node:crypto';
import { promisify } from 'node:util';
import { MooringError } from '../../util/errors';
import { encodeKeyBagRecord, parseKeyBag } from '../keybag';
import { aesKeyUnwrap, aesKeyWrap } from './aes-key-wrap';

/** PBKDF2-SHA256 rounds iOS ≥ 10.2 uses (seconds of CPU: cache the unlocked keybag). */
export const IOS_DPIC = 10_000_000;
/** PBKDF2-SHA1 rounds of the second derivation step on real devices. */
export const IOS_ITER = 10_000;
/** Bounds on what a keybag read from disk may ask of us. */
export const MAX_BACKUP_KEYBAG_BYTES = 64 * 1024;
export const MAX_KEYBAG_CLASSES = 32;
export const MAX_KEYBAG_DPIC = 100_000_000;
export const MAX_KEYBAG_ITER = 10_000_000;
/** Protection classes a backup keybag carries (NSFileProtection* and keychain classes). */
export const BACKUP_PROTECTION_CLASSES: readonly number[] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];

const KEYBAG_VERSION = 3;
const KEYBAG_TYPE_BACKUP = 1;
/** WRAP bit: the class key is wrapped by the password ("passcode") key. */
const WRAP_PASSCODE = 2;
const KEY_TYPE_AES = 0;

export interface KeyBagOptions {
  /** PBKDF2-SHA256 rounds (default IOS_DPIC); a simulator may lower it for quick tests. */
  dpic?: number;
  /** PBKDF2-SHA1 rounds (default IOS_ITER). */
  iter?: number;
}

export interface UnlockedKeyBag {
  /** The keybag's own UUID (16 bytes): identifies one password era of a device. */
  uuid: Buffer;
  /** Protection class → 32-byte class key. */
  classKeys: ReadonlyMap<number, Buffer>;
}

interface ClassRecord {
  clas: number;
  wrap: number;
  wpky: Buffer;
}

interface ParsedKeyBag {
  uuid: Buffer;
  salt: Buffer;
  iter: number;
  dpsl: Buffer | null;
  dpic: number | null;
  classes: ClassRecord[];
}

function bad(message: string): MooringError {
  return new MooringError('MALFORMED', `BackupKeyBag: ${message}`);
}

function u32(tag: string, v: Buffer): number {
  if (v.length !== 4) throw bad(`${tag} is ${v.length} bytes (4 expected)`);
  return v.readUInt32BE(0);
}

function parseBackupKeyBag(keyBag: Buffer): ParsedKeyBag {
  if (keyBag.length > MAX_BACKUP_KEYBAG_BYTES)
    throw bad(`${keyBag.length} bytes (limit ${MAX_BACKUP_KEYBAG_BYTES})`);
  let uuid: Buffer | undefined;
  let salt: Buffer | undefined;
  let iter: number | undefined;
  let dpsl: Buffer | null = null;
  let dpic: number | null = null;
  const classes: Partial<ClassRecord>[] = [];
  for (const { tag, value } of parseKeyBag(keyBag)) {
    if (tag === 'UUID') {
      if (uuid === undefined) uuid = Buffer.from(value);
      else {
        if (classes.length >= MAX_KEYBAG_CLASSES)
          throw bad(`more than ${MAX_KEYBAG_CLASSES} classes`);
        classes.push({});
      }
      continue;
    }
    const cur = classes[classes.length - 1];
    if (cur !== undefined) {
      if (tag === 'CLAS') cur.clas = u32(tag, value);
      else if (tag === 'WRAP') cur.wrap = u32(tag, value);
      else if (tag === 'WPKY') cur.wpky = Buffer.from(value);
      continue;
    }
    if (tag === 'SALT') salt = Buffer.from(value);
    else if (tag === 'ITER') iter = u32(tag, value);
    else if (tag === 'DPSL') dpsl = Buffer.from(value);
    else if (tag === 'DPIC') dpic = u32(tag, value);
  }
  if (uuid === undefined || uuid.length !== 16) throw bad('no 16-byte UUID');
  if (salt === undefined || iter === undefined) throw bad('no SALT/ITER');
  if (iter < 1 || iter > MAX_KEYBAG_ITER) throw bad(`ITER ${iter} outside 1..${MAX_KEYBAG_ITER}`);
  if ((dpic === null) !== (dpsl === null)) throw bad('DPIC and DPSL must come together');
  if (dpic !== null && (dpic < 1 || dpic > MAX_KEYBAG_DPIC))
    throw bad(`DPIC ${dpic} outside 1..${MAX_KEYBAG_DPIC}`);
  const complete: ClassRecord[] = [];
  for (const c of classes) {
    if (c.clas === undefined || c.wrap === undefined) throw bad('a class record without CLAS/WRAP');
    if (c.wpky !== undefined) complete.push({ clas: c.clas, wrap: c.wrap, wpky: c.wpky });
  }
  return { uuid, salt, iter, dpsl, dpic, classes: complete };
}

/** The keybag's derivation cost, readable without the password (to warn before seconds of CPU). */
export function keyBagRounds(keyBag: Buffer): { dpic: number | null; iter: number } {
  const p = parseBackupKeyBag(keyBag);
  return { dpic: p.dpic, iter: p.iter };
}

/** The keybag's UUID, readable without the password: which password era a backup belongs to. */
export function keyBagUuid(keyBag: Buffer): Buffer {
  return parseBackupKeyBag(keyBag).uuid;
}

const pbkdf2 = promisify(crypto.pbkdf2);

function deriveSync(
  password: string,
  p: Pick<ParsedKeyBag, 'salt' | 'iter' | 'dpsl' | 'dpic'>,
): Buffer {
  let k: Buffer = Buffer.from(password, 'utf8');
  if (p.dpic !== null && p.dpsl !== null) k = crypto.pbkdf2Sync(k, p.dpsl, p.dpic, 32, 'sha256');
  return crypto.pbkdf2Sync(k, p.salt, p.iter, 32, 'sha1');
}

/** Same as deriveSync but on libuv's thread pool: seconds of PBKDF2 must not stall an event loop. */
async function deriveAsync(
  password: string,
  p: Pick<ParsedKeyBag, 'salt' | 'iter' | 'dpsl' | 'dpic'>,
): Promise<Buffer> {
  let k: Buffer = Buffer.from(password, 'utf8');
  if (p.dpic !== null && p.dpsl !== null) k = await pbkdf2(k, p.dpsl, p.dpic, 32, 'sha256');
  return pbkdf2(k, p.salt, p.iter, 32, 'sha1');
}

function checkRounds(opts: KeyBagOptions): { dpic: number; iter: number } {
  const dpic = opts.dpic ?? IOS_DPIC;
  const iter = opts.iter ?? IOS_ITER;
  if (!Number.isInteger(dpic) || dpic < 1 || dpic > MAX_KEYBAG_DPIC)
    throw new RangeError(`keybag dpic ${dpic} outside 1..${MAX_KEYBAG_DPIC}`);
  if (!Number.isInteger(iter) || iter < 1 || iter > MAX_KEYBAG_ITER)
    throw new RangeError(`keybag iter ${iter} outside 1..${MAX_KEYBAG_ITER}`);
  return { dpic, iter };
}

function buildKeyBag(
  passKey: Buffer,
  p: { uuid: Buffer; salt: Buffer; dpsl: Buffer; dpic: number; iter: number },
): { keyBag: Buffer; unlocked: UnlockedKeyBag } {
  const classKeys = new Map<number, Buffer>();
  const parts: Buffer[] = [
    encodeKeyBagRecord('VERS', KEYBAG_VERSION),
    encodeKeyBagRecord('TYPE', KEYBAG_TYPE_BACKUP),
    encodeKeyBagRecord('UUID', p.uuid),
    // iOS keeps a wrapped HMAC key here; nothing reads it for decryption.
    encodeKeyBagRecord('HMCK', crypto.randomBytes(40)),
    encodeKeyBagRecord('WRAP', 0),
    encodeKeyBagRecord('SALT', p.salt),
    encodeKeyBagRecord('ITER', p.iter),
    encodeKeyBagRecord('DPWT', 1),
    encodeKeyBagRecord('DPIC', p.dpic),
    encodeKeyBagRecord('DPSL', p.dpsl),
  ];
  for (const clas of BACKUP_PROTECTION_CLASSES) {
    const key = crypto.randomBytes(32);
    classKeys.set(clas, key);
    parts.push(
      encodeKeyBagRecord('UUID', crypto.randomBytes(16)),
      encodeKeyBagRecord('CLAS', clas),
      encodeKeyBagRecord('WRAP', WRAP_PASSCODE),
      encodeKeyBagRecord('KTYP', KEY_TYPE_AES),
      encodeKeyBagRecord('WPKY', aesKeyWrap(passKey, key)),
    );
  }
  return { keyBag: Buffer.concat(parts), unlocked: { uuid: p.uuid, classKeys } };
}

function freshParams(opts: KeyBagOptions) {
  const { dpic, iter } = checkRounds(opts);
  return {
    uuid: crypto.randomBytes(16),
    salt: crypto.randomBytes(20),
    dpsl: crypto.randomBytes(20),
    dpic,
    iter,
  };
}

/** A new keybag with fresh random class keys, protected by `password` (what a device does on enable/change). */
export function createBackupKeyBag(
  password: string,
  opts: KeyBagOptions = {},
): { keyBag: Buffer; unlocked: UnlockedKeyBag } {
  const p = freshParams(opts);
  return buildKeyBag(deriveSync(password, p), p);
}

export async function createBackupKeyBagAsync(
  password: string,
  opts: KeyBagOptions = {},
): Promise<{ keyBag: Buffer; unlocked: UnlockedKeyBag }> {
  const p = freshParams(opts);
  return buildKeyBag(await deriveAsync(password, p), p);
}

function unwrapAll(p: ParsedKeyBag, passKey: Buffer): UnlockedKeyBag {
  const classKeys = new Map<number, Buffer>();
  for (const c of p.classes) {
    if ((c.wrap & WRAP_PASSCODE) === 0) continue; // device-bound keys: not in a backup's reach
    const key = aesKeyUnwrap(passKey, c.wpky);
    if (key === null)
      throw new MooringError(
        'WRONG_PASSWORD',
        'the backup password does not unlock this backup: check the password (it is the one set when encryption was turned on or last changed)',
      );
    classKeys.set(c.clas, key);
  }
  if (classKeys.size === 0) throw bad('no password-wrapped class keys');
  return { uuid: p.uuid, classKeys };
}

/** Throws MooringError('WRONG_PASSWORD', …) when no class key unwraps. Seconds of CPU at IOS_DPIC. */
export function unlockBackupKeyBag(keyBag: Buffer, password: string): UnlockedKeyBag {
  const p = parseBackupKeyBag(keyBag);
  return unwrapAll(p, deriveSync(password, p));
}

/** unlockBackupKeyBag without blocking the event loop (PBKDF2 on the thread pool). */
export async function unlockBackupKeyBagAsync(
  keyBag: Buffer,
  password: string,
): Promise<UnlockedKeyBag> {
  const p = parseBackupKeyBag(keyBag);
  return unwrapAll(p, await deriveAsync(password, p));
}
