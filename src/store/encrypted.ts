/**
 * Reading encrypted backups (reference §7) with the user's password: unlock the keybag of
 * Manifest.plist, decrypt Manifest.db (into a private 0600 temp file, so every SQLite reader of
 * the store works on it unchanged), unwrap a file's key from its MBFile `EncryptionKey` and
 * decrypt its payload. Also the check Mooring runs after every encrypted backup: "this backup
 * opens with your password" is proven by decrypting Manifest.db and a random sample of files.
 *
 * Deriving the password key costs seconds (10 M PBKDF2 rounds): unlocked keybags are cached in
 * this process's memory per (keybag bytes, password), never written anywhere. The decrypted
 * Manifest.db of a snapshot is cached too (a few, as temp files removed on eviction and exit).
 */
import crypto from 'node:crypto';
import fs, { constants as fsc, promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { MooringError, isMooringError } from '../util/errors';
import { MANIFEST_DB, MANIFEST_PLIST, payloadPath } from '../format/layout';
import {
  checkManifestShape,
  decodeManifestRow,
  isManifestRow,
  MANIFEST_ROW_SELECT,
  MAX_MANIFEST_ROWS,
  openManifestDb,
  type ManifestRow,
} from '../format/manifest-db';
import { readManifestPlist } from '../format/manifest-plist';
import { pidAlive } from './lock';
import { openStoreReadOnly } from './store';
import {
  createPayloadDecipher,
  decryptPayload,
  encryptedPayloadSize,
  keyBagUuid,
  unlockBackupKeyBagAsync,
  unwrapClassKey,
  type UnlockedKeyBag,
} from '../format/encryption';

/** Largest Manifest.db we decrypt (a big phone's is a few hundred MB). */
export const MAX_ENCRYPTED_MANIFEST_DB_BYTES = 4 * 1024 * 1024 * 1024;
/** Unlocked keybags kept in memory, and decrypted Manifest.dbs kept as temp files. */
const MAX_CACHED_KEYBAGS = 16;
const MAX_CACHED_MANIFESTS = 4;
/** Files decrypted in full by the post-backup check, and the largest one it picks. */
export const DEFAULT_SAMPLE_FILES = 16;
export const MAX_SAMPLE_FILE_BYTES = 64 * 1024 * 1024;
/** Problems kept in a report (the count is exact). */
const MAX_PROBLEMS = 50;

/** What Manifest.plist says about a backup's encryption, read without any password. */
export interface BackupEncryption {
  encrypted: boolean;
  keyBag?: Buffer;
  manifestKey?: Buffer;
  /** Hex of the keybag's UUID: which password era the backup belongs to. */
  keyBagId?: string;
}

/** Passwords to try for a keybag: a list, or a lookup by keybag id (the password eras). */
export type PasswordCandidates = readonly string[] | ((keyBagId: string) => Promise<string[]>);

export async function readBackupEncryption(dir: string): Promise<BackupEncryption> {
  const m = await readManifestPlist(path.join(dir, MANIFEST_PLIST));
  if (!m.isEncrypted) return { encrypted: false };
  const keyBag = m.raw.BackupKeyBag;
  const manifestKey = m.raw.ManifestKey;
  if (!Buffer.isBuffer(keyBag)) {
    throw new MooringError('MALFORMED', `${dir}: an encrypted backup without a BackupKeyBag`);
  }
  const out: BackupEncryption = { encrypted: true, keyBag, keyBagId: keyBagFingerprint(keyBag) };
  if (Buffer.isBuffer(manifestKey)) out.manifestKey = manifestKey;
  return out;
}

export function keyBagFingerprint(keyBag: Buffer): string {
  return keyBagUuid(keyBag).toString('hex');
}

// ---- unlocking, cached per (keybag, password) ------------------------------------------------

const unlockedCache = new Map<string, Promise<UnlockedKeyBag>>();

function cacheKey(keyBag: Buffer, password: string): string {
  return crypto
    .createHash('sha256')
    .update(keyBag)
    .update('\u0000')
    .update(password, 'utf8')
    .digest('hex');
}

/** Unlocks with one password (cached); WRONG_PASSWORD when it is not this keybag's. */
export function unlockKeyBagCached(keyBag: Buffer, password: string): Promise<UnlockedKeyBag> {
  const k = cacheKey(keyBag, password);
  const hit = unlockedCache.get(k);
  if (hit) return hit;
  const p = unlockBackupKeyBagAsync(keyBag, password);
  unlockedCache.set(k, p);
  // A failure is not cached (the cache holds keys, not verdicts): forget it once settled.
  p.catch(() => unlockedCache.delete(k));
  if (unlockedCache.size > MAX_CACHED_KEYBAGS)
    unlockedCache.delete(unlockedCache.keys().next().value!);
  return p;
}

/** Forgets every unlocked keybag (tests; and after `encryption password` changes the store). */
export function clearUnlockedKeyBags(): void {
  unlockedCache.clear();
}

export interface UnlockedBackup {
  bag: UnlockedKeyBag;
  keyBagId: string;
  /** The password that worked (the caller may remember it for this keybag era). */
  password: string;
}

/**
 * Tries the candidates in order. No candidate: WRONG_PASSWORD with detail NO_PASSWORD; none
 * works: WRONG_PASSWORD with detail MISMATCH. Messages never contain a password.
 */
export async function unlockBackup(
  keyBag: Buffer,
  candidates: PasswordCandidates,
): Promise<UnlockedBackup> {
  const keyBagId = keyBagFingerprint(keyBag);
  const list = typeof candidates === 'function' ? await candidates(keyBagId) : candidates;
  const tried = new Set<string>();
  for (const password of list) {
    if (tried.has(password)) continue;
    tried.add(password);
    try {
      return { bag: await unlockKeyBagCached(keyBag, password), keyBagId, password };
    } catch (e) {
      if (!isMooringError(e, 'WRONG_PASSWORD')) throw e;
    }
  }
  throw tried.size === 0
    ? new MooringError('WRONG_PASSWORD', 'no password is known for this encrypted backup', {
        detail: 'NO_PASSWORD',
      })
    : new MooringError(
        'WRONG_PASSWORD',
        tried.size === 1
          ? 'the password does not open this encrypted backup'
          : `none of the ${tried.size} known passwords opens this encrypted backup`,
        { detail: 'MISMATCH' },
      );
}

// ---- decrypted Manifest.db, cached as private temp files -------------------------------------

interface CachedManifest {
  stamp: string;
  file: string;
}
const manifestCache = new Map<string, CachedManifest>();
let tempRoot: string | undefined;

/** Temp folders of decrypted Manifest.db files: `mooring-decrypted-<pid>-<random>`. */
const DECRYPTED_PREFIX = 'mooring-decrypted-';

/**
 * A new private (0700) folder for decrypted Manifest.db files, named with this process's id. Those
 * files name every file of an encrypted backup in clear, so none may outlive its process: folders
 * of processes that are gone (killed before they could remove theirs) are removed first.
 */
export function newDecryptedTempRoot(): string {
  removeDeadProcessesTempRoots();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `${DECRYPTED_PREFIX}${process.pid}-`));
  fs.chmodSync(dir, 0o700);
  return dir;
}

function removeDeadProcessesTempRoots(): void {
  const tmp = os.tmpdir();
  let names: string[];
  try {
    names = fs.readdirSync(tmp);
  } catch {
    return;
  }
  const uid = process.getuid?.();
  for (const name of names) {
    if (!name.startsWith(DECRYPTED_PREFIX)) continue;
    const pid = /^(\d+)-./.exec(name.slice(DECRYPTED_PREFIX.length))?.[1];
    if (pid === undefined || pidAlive(Number(pid))) continue;
    const dir = path.join(tmp, name);
    try {
      // Only our own user's (a shared temp folder holds other users' too).
      if (uid !== undefined && fs.lstatSync(dir).uid !== uid) continue;
      fs.rmSync(dir, { recursive: true, force: true });
    } catch {
      // another process removed it first, or it is not ours to remove
    }
  }
}

/**
 * Decrypted files go into `dir`, made and removed by the caller: a job thread, which may be ended
 * (Worker.terminate) without running its 'exit' handlers, uses the folder its parent made for it.
 */
export function useDecryptedTempRoot(dir: string): void {
  tempRoot = dir;
}

function privateTempRoot(): string {
  if (tempRoot === undefined) {
    const root = newDecryptedTempRoot();
    tempRoot = root;
    process.once('exit', () => fs.rmSync(root, { recursive: true, force: true }));
  }
  return tempRoot;
}

function evict(key: string): void {
  const e = manifestCache.get(key);
  manifestCache.delete(key);
  // Readers that still have it open keep reading (POSIX unlink semantics).
  if (e) fs.rmSync(e.file, { force: true });
}

/** Drops every decrypted Manifest.db this process holds (tests; after a password change). */
export function clearDecryptedManifests(): void {
  for (const k of [...manifestCache.keys()]) evict(k);
}

async function decryptManifestDb(dir: string, manifestKey: Buffer): Promise<string> {
  const src = path.join(dir, MANIFEST_DB);
  const st = await fsp.stat(src);
  if (!st.isFile() || st.size > MAX_ENCRYPTED_MANIFEST_DB_BYTES) {
    throw new MooringError('MALFORMED', `${src} is not a Manifest.db this computer can open`);
  }
  const stamp = `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${manifestKey.toString('hex')}`;
  const key = crypto.createHash('sha256').update(path.resolve(src)).update(stamp).digest('hex');
  const hit = manifestCache.get(key);
  if (hit && fs.existsSync(hit.file)) {
    manifestCache.delete(key);
    manifestCache.set(key, hit); // most recently used last
    return hit.file;
  }
  const out = path.join(
    privateTempRoot(),
    `${key.slice(0, 32)}-${crypto.randomBytes(4).toString('hex')}.db`,
  );
  const fh = await fsp.open(out, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, 0o600);
  try {
    await pipeline(
      fs.createReadStream(src),
      createPayloadDecipher(manifestKey),
      fh.createWriteStream(),
    );
  } catch (e) {
    await fsp.rm(out, { force: true });
    if (isMooringError(e, 'MALFORMED')) {
      throw new MooringError(
        'MALFORMED',
        `${src} does not decrypt with its ManifestKey: the backup is damaged`,
        { cause: e },
      );
    }
    throw e;
  }
  manifestCache.set(key, { stamp, file: out });
  if (manifestCache.size > MAX_CACHED_MANIFESTS) evict(manifestCache.keys().next().value!);
  return out;
}

// ---- an opened encrypted backup ----------------------------------------------------------------

export interface OpenedEncryptedBackup extends UnlockedBackup {
  dir: string;
  /** The decrypted Manifest.db (0600, private temp folder): open it read-only like any other. */
  manifestDb: string;
  /** A file's key, unwrapped from its MBFile EncryptionKey; MALFORMED when it has none. */
  fileKey(row: ManifestRow): Buffer;
  /** The plaintext of a file's payload, streamed. */
  openPlaintext(row: ManifestRow): Promise<Readable>;
  /** Decrypts a file's payload into `dest` (created 0600-exclusive); returns plaintext bytes. */
  decryptTo(row: ManifestRow, dest: string): Promise<number>;
}

/**
 * Unlocks `dir` with the candidates and decrypts its Manifest.db. USAGE (detail NOT_ENCRYPTED)
 * when the backup is not encrypted; WRONG_PASSWORD when no candidate opens it.
 */
export async function openEncryptedBackup(
  dir: string,
  candidates: PasswordCandidates,
): Promise<OpenedEncryptedBackup> {
  const enc = await readBackupEncryption(dir);
  if (!enc.encrypted || !enc.keyBag) {
    throw new MooringError('USAGE', `${dir} is not an encrypted backup`, {
      detail: 'NOT_ENCRYPTED',
    });
  }
  if (!enc.manifestKey) {
    throw new MooringError(
      'MALFORMED',
      `${dir}: an encrypted backup without a ManifestKey (iOS before 10.2 is not supported)`,
    );
  }
  const unlocked = await unlockBackup(enc.keyBag, candidates);
  const manifestDb = await decryptManifestDb(dir, unwrapClassKey(unlocked.bag, enc.manifestKey));
  const fileKey = (row: ManifestRow): Buffer => {
    if (!row.file.encryptionKey) {
      throw new MooringError(
        'MALFORMED',
        `${row.domain}/${row.relativePath}: its MBFile has no EncryptionKey`,
      );
    }
    return unwrapClassKey(unlocked.bag, row.file.encryptionKey);
  };
  const openPlaintext = async (row: ManifestRow): Promise<Readable> => {
    const src = payloadPath(dir, row.fileId);
    const key = fileKey(row);
    let fh: fsp.FileHandle;
    try {
      fh = await fsp.open(src, fsc.O_RDONLY | fsc.O_NOFOLLOW);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' && row.file.size === 0) {
        return Readable.from([]);
      }
      throw e;
    }
    const decipher = createPayloadDecipher(key);
    const raw = fh.createReadStream();
    raw.on('error', (e) => decipher.destroy(e));
    return raw.pipe(decipher);
  };
  const decryptTo = async (row: ManifestRow, dest: string): Promise<number> => {
    const plain = await openPlaintext(row);
    const out = await fsp.open(dest, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, 0o600);
    let n = 0;
    const count = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        n += chunk.length;
        cb(null, chunk);
      },
    });
    await pipeline(plain, count, out.createWriteStream());
    if (n !== row.file.size) {
      throw new MooringError(
        'MALFORMED',
        `${row.domain}/${row.relativePath} decrypts to ${n} bytes, Manifest.db says ${row.file.size}`,
      );
    }
    return n;
  };
  return { ...unlocked, dir, manifestDb, fileKey, openPlaintext, decryptTo };
}

// ---- the post-backup check -----------------------------------------------------------------------

export interface EncryptedCheckReport {
  ok: boolean;
  keyBagId: string;
  /** The password that opened it (never logged; the caller stores it for this keybag era). */
  password: string;
  /** File rows in Manifest.db, and how many of their payloads had the right encrypted size. */
  files: number;
  sizesChecked: number;
  /** Files decrypted in full (plaintext size = MBFile Size, padding valid). */
  decrypted: number;
  problemCount: number;
  problems: string[];
}

/**
 * Opens the backup with the candidates (WRONG_PASSWORD propagates: the caller words it), then
 * checks Manifest.db decrypts and reads, every file's payload is present with the size its
 * plaintext Size implies once padded, and a random sample of files decrypts to exactly Size bytes
 * with valid padding.
 */
export async function checkEncryptedBackup(
  dir: string,
  candidates: PasswordCandidates,
  opts: { sample?: number } = {},
): Promise<EncryptedCheckReport> {
  const opened = await openEncryptedBackup(dir, candidates);
  const report: EncryptedCheckReport = {
    ok: false,
    keyBagId: opened.keyBagId,
    password: opened.password,
    files: 0,
    sizesChecked: 0,
    decrypted: 0,
    problemCount: 0,
    problems: [],
  };
  const problem = (text: string): void => {
    report.problemCount++;
    if (report.problems.length < MAX_PROBLEMS) report.problems.push(text);
  };
  const sampleSize = opts.sample ?? DEFAULT_SAMPLE_FILES;
  const sample: ManifestRow[] = [];
  let eligible = 0;
  const db = openManifestDb(opened.manifestDb);
  try {
    checkManifestShape(db, 'Manifest.db (decrypted)', MAX_MANIFEST_ROWS);
    const it = db
      .prepare(`SELECT ${MANIFEST_ROW_SELECT} FROM Files WHERE flags = 1`)
      .iterate() as IterableIterator<Record<string, unknown>>;
    for (const raw of it) {
      const row = decodeManifestRow(raw);
      if (!isManifestRow(row)) {
        problem(`a Manifest.db row is invalid: ${row.problem}`);
        continue;
      }
      report.files++;
      const where = `${row.domain}/${row.relativePath}`;
      let size: number | undefined;
      try {
        size = fs.statSync(payloadPath(dir, row.fileId)).size;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || row.file.size !== 0) {
          problem(`${where}: its payload is missing`);
          continue;
        }
      }
      if (size !== undefined && size !== encryptedPayloadSize(row.file.size)) {
        problem(
          `${where}: ${size} encrypted bytes cannot hold ${row.file.size} bytes (expected ${encryptedPayloadSize(row.file.size)})`,
        );
        continue;
      }
      report.sizesChecked++;
      if (row.file.size > MAX_SAMPLE_FILE_BYTES || size === undefined) continue;
      // Reservoir sampling: every eligible file equally likely, memory bounded by the sample.
      eligible++;
      const slot = eligible <= sampleSize ? eligible - 1 : crypto.randomInt(eligible);
      if (slot < sampleSize) sample[slot] = row;
    }
  } finally {
    db.close();
  }
  for (const row of sample) {
    const where = `${row.domain}/${row.relativePath}`;
    try {
      const key = opened.fileKey(row);
      const plain = decryptPayload(key, await fsp.readFile(payloadPath(dir, row.fileId)));
      if (plain.length !== row.file.size) {
        problem(`${where}: decrypts to ${plain.length} bytes, Manifest.db says ${row.file.size}`);
        continue;
      }
      report.decrypted++;
    } catch (e) {
      problem(`${where}: ${(e as Error).message}`);
    }
  }
  report.ok = report.problemCount === 0;
  return report;
}

// ---- the keybags of a device's snapshots -------------------------------------------------------

/** Distinct keybags looked at, at most (each may cost seconds to unlock). */
export const MAX_STORE_KEYBAGS = 16;

export interface StoreKeyBag {
  keyBagId: string;
  keyBag: Buffer;
  /** Snapshot folders made with it, newest first (the latest backup first). */
  dirs: string[];
}

/**
 * The keybags of the encrypted backups among `latestDir` and the folders in `snapshotsDir`,
 * newest first. Unreadable or unencrypted folders are skipped. Reads Manifest.plist only.
 */
export async function encryptedKeyBagsIn(
  latestDir: string,
  snapshotsDir: string,
): Promise<StoreKeyBag[]> {
  let ids: string[] = [];
  try {
    ids = (await fsp.readdir(snapshotsDir)).sort().reverse();
  } catch {
    // no earlier snapshots
  }
  const out = new Map<string, StoreKeyBag>();
  for (const dir of [latestDir, ...ids.map((id) => path.join(snapshotsDir, id))]) {
    let enc: BackupEncryption;
    try {
      enc = await readBackupEncryption(dir);
    } catch {
      continue;
    }
    if (!enc.encrypted || !enc.keyBag || !enc.keyBagId) continue;
    const hit = out.get(enc.keyBagId);
    if (hit) hit.dirs.push(dir);
    else if (out.size < MAX_STORE_KEYBAGS)
      out.set(enc.keyBagId, { keyBagId: enc.keyBagId, keyBag: enc.keyBag, dirs: [dir] });
  }
  return [...out.values()];
}

/** What learnPasswordEras needs of a secret store (src/secrets implements it; store/ may not import it). */
export interface PasswordEraBook {
  eras(udid: string): Promise<ReadonlyArray<{ keyBagId: string; password: string }>>;
  rememberEra(udid: string, keyBagId: string, password: string): Promise<void>;
}

/**
 * Records, for each keybag of the device's stored snapshots, the password if it opens it. An era
 * already known (for any password) is not unlocked again: each unlock costs seconds.
 */
export async function learnPasswordEras(
  store: PasswordEraBook,
  dest: string,
  udid: string,
  password: string,
): Promise<{ opened: number; keyBags: number; latestOpens: boolean | undefined }> {
  const ro = openStoreReadOnly(dest, udid);
  const bags = await encryptedKeyBagsIn(ro.latestDir, ro.snapshotsDir);
  let opened = 0;
  let latestOpens: boolean | undefined;
  const known = await store.eras(udid);
  for (const b of bags) {
    // Each unlock costs seconds (10 M PBKDF2 rounds): skip the eras already proven.
    let ok = known.some((e) => e.keyBagId === b.keyBagId && e.password === password);
    if (!ok && !known.some((e) => e.keyBagId === b.keyBagId)) {
      try {
        await unlockKeyBagCached(b.keyBag, password);
        ok = true;
      } catch (e) {
        if (!isMooringError(e, 'WRONG_PASSWORD')) throw e;
      }
    }
    if (b.dirs.includes(ro.latestDir)) latestOpens = ok;
    if (ok) {
      opened++;
      await store.rememberEra(udid, b.keyBagId, password);
    }
  }
  return { opened, keyBags: bags.length, latestOpens };
}
