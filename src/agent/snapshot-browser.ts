/**
 * Read-only browsing of the snapshot store for the UI: snapshots, files by page, the diff of two
 * snapshots, one file as a stream. It opens the store with openStoreReadOnly, so it never takes
 * the device lock (a backup starting meanwhile is never refused) and never writes anything.
 *
 * Every argument comes from a front end and is untrusted: the UDID and snapshot id must have
 * their shapes, a domain and path must pass the backup format's own path checks, pages and
 * patterns are bounded, and the folder read is checked to resolve inside the backup folder.
 */
import { constants as fsc, promises as fsp } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { fileIdFor, pathProblem } from '../format/file-id';
import { MANIFEST_PLIST, payloadPath } from '../format/layout';
import {
  decodeManifestRow,
  entryTypeForFlags,
  isManifestRow,
  MANIFEST_ROW_SELECT,
  openManifestDb,
  type ManifestRow,
} from '../format/manifest-db';
import { readManifestPlist } from '../format/manifest-plist';
import {
  isSnapshotId,
  listFilesPage,
  openStoreReadOnly,
  type BackupFileEntry,
  type FilePosition,
  type ReadOnlyStore,
} from '../store';
import { MAX_GLOB_CHARS } from '../store/glob';
// H8b: encrypted snapshots are browsed with the device's stored passwords.
import { openBrowsable, type BrowsableBackup } from '../store/browse';
import type { PasswordCandidates } from '../store/encrypted';
import { MooringError } from '../util/errors';
import { isUdid, UDID_EXAMPLE } from '../util/udid';
import {
  MAX_FILE_PAGE,
  type DiffEntry,
  type DiffSummary,
  type FileEntry,
  type FilePage,
  type FileQuery,
  type OpenedFile,
  type SnapshotBrowsing,
  type SnapshotSummary,
} from './types';

export const DEFAULT_FILE_PAGE = 200;
/** Entries a diff lists at most (its counts are always exact). */
export const MAX_DIFF_ENTRIES = 1000;
const MAX_CURSOR_CHARS = 4096;
/** Devices whose snapshot summaries are cached (walking every tree takes seconds on a big store). */
const MAX_CACHED_DEVICES = 32;

const usage = (message: string): MooringError => new MooringError('USAGE', message);
const notFound = (message: string): MooringError =>
  new MooringError('USAGE', message, { detail: 'NOT_FOUND' });
const show = (v: unknown): string => JSON.stringify(String(v).slice(0, 80));

function checkUdid(udid: unknown): string {
  if (typeof udid !== 'string' || !isUdid(udid)) {
    throw usage(`udid: ${show(udid)} is not a UDID (expected ${UDID_EXAMPLE} or 40 hex digits)`);
  }
  return udid;
}

function checkSnapshotId(id: unknown, what = 'snapshot'): string {
  if (typeof id !== 'string' || (id !== 'latest' && !isSnapshotId(id))) {
    throw usage(`${what}: ${show(id)} is not a snapshot id (expected 20250101T013000Z or latest)`);
  }
  return id;
}

function checkText(v: unknown, what: string, max: number): string | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string' || v.length > max || v.includes('\u0000')) {
    throw usage(`${what}: expected text of at most ${max} characters`);
  }
  return v;
}

function checkLimit(v: unknown): number {
  if (v === undefined || v === null) return DEFAULT_FILE_PAGE;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1 || v > MAX_FILE_PAGE) {
    throw usage(`limit: expected an integer from 1 to ${MAX_FILE_PAGE}, got ${show(v)}`);
  }
  return v;
}

/** Cursors are opaque to clients: base64url of [domain, relativePath]. */
export function encodeCursor(p: FilePosition): string {
  return Buffer.from(JSON.stringify([p.domain, p.relativePath])).toString('base64url');
}

function decodeCursor(v: unknown): FilePosition | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  const bad = (): MooringError =>
    usage('after: not a cursor of this listing (pass the nextCursor of the previous page)');
  if (typeof v !== 'string' || v.length > MAX_CURSOR_CHARS || !/^[A-Za-z0-9_-]+$/.test(v))
    throw bad();
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(v, 'base64url').toString('utf8'));
  } catch {
    throw bad();
  }
  if (
    !Array.isArray(parsed) ||
    parsed.length !== 2 ||
    typeof parsed[0] !== 'string' ||
    typeof parsed[1] !== 'string'
  ) {
    throw bad();
  }
  return { domain: parsed[0], relativePath: parsed[1] };
}

function toEntry(e: BackupFileEntry): FileEntry {
  return {
    domain: e.domain,
    relativePath: e.relativePath,
    type: e.type,
    size: e.size,
    mtime: e.mtime.getTime(),
    mode: e.mode,
    target: e.target ?? null,
    digest: e.digest ?? null,
  };
}

function isInside(child: string, parent: string): boolean {
  return child === parent || child.startsWith(parent + path.sep);
}

interface CachedList {
  stamp: string;
  list: SnapshotSummary[];
}

export class SnapshotBrowser implements SnapshotBrowsing {
  private readonly backupDir: string;
  private realBackupDir: string | undefined;
  private readonly cache = new Map<string, CachedList>();

  /**
   * `passwordsFor` (H8b) gives the passwords that may open a device's encrypted snapshots (the
   * secret store's current password and its earlier ones, by keybag); without it encrypted
   * snapshots are listed but refused.
   */
  constructor(
    backupDir: string,
    private readonly passwordsFor?: (udid: string) => PasswordCandidates,
  ) {
    this.backupDir = path.resolve(backupDir);
  }

  async snapshots(udid: string): Promise<SnapshotSummary[]> {
    const store = this.store(udid);
    // snapshots.json is rewritten (a new file) by every commit, prune and pin.
    const stamp = await stampOf(path.join(store.stateDir, 'snapshots.json'));
    const hit = this.cache.get(store.udid);
    if (hit && stamp !== undefined && hit.stamp === stamp) return hit.list.map((s) => ({ ...s }));
    const list: SnapshotSummary[] = [];
    for (const s of await store.list()) {
      list.push({
        id: s.id,
        at: s.date.getTime(),
        isLatest: s.isLatest,
        pinned: s.pinned,
        complete: s.status === 'complete',
        isFull: s.isFull ?? null,
        adopted: s.adopted,
        encrypted: await isEncrypted(s.path),
        files: s.files,
        size: s.size,
        addedBytes: s.exclusiveBytes,
        // fault matrix (H7f): a snapshot a verification found damaged says so
        ...(s.damaged ? { damaged: { ...s.damaged, at: Date.parse(s.damaged.at) } } : {}),
      });
    }
    if (stamp !== undefined) {
      this.cache.delete(store.udid);
      this.cache.set(store.udid, { stamp, list });
      if (this.cache.size > MAX_CACHED_DEVICES) {
        this.cache.delete(this.cache.keys().next().value!);
      }
    }
    return list.map((s) => ({ ...s }));
  }

  async files(udid: string, snapshotId: string, q: FileQuery = {}): Promise<FilePage> {
    const store = this.store(udid);
    const id = checkSnapshotId(snapshotId);
    if (typeof q !== 'object' || q === null) throw usage('expected a query object');
    const domain = checkText(q.domain, 'domain', 255);
    const pattern = checkText(q.pattern, 'pattern', MAX_GLOB_CHARS);
    const limit = checkLimit(q.limit);
    const after = decodeCursor(q.after);
    const dir = await this.browsableDir(store, id);
    const passwords = await this.passwordsOf(store, dir); // H8b
    const page = await readingSnapshot(store, id, () =>
      unlockingPage(
        dir,
        {
          ...(domain === undefined ? {} : { domain }),
          ...(pattern === undefined ? {} : { pattern }),
          ...(passwords === undefined ? {} : { passwords }),
        },
        { limit, ...(after ? { after } : {}) },
      ),
    );
    return {
      items: page.entries.map(toEntry),
      nextCursor: page.next ? encodeCursor(page.next) : null,
      invalidRows: page.invalid,
    };
  }

  async diff(udid: string, from: string, to: string): Promise<DiffSummary> {
    const store = this.store(udid);
    const a = checkSnapshotId(from, 'from');
    const b = checkSnapshotId(to, 'to');
    const passwords =
      (await this.passwordsOf(store, await this.browsableDir(store, a))) ??
      (await this.passwordsOf(store, await this.browsableDir(store, b))); // H8b
    const d = await readingSnapshot(store, `${a} or ${b}`, () =>
      unlocking(
        store.diff(a, b, {
          maxEntries: MAX_DIFF_ENTRIES,
          ...(passwords === undefined ? {} : { passwords }),
        }),
      ),
    );
    const entries: DiffEntry[] = [];
    for (const dom of d.domains) {
      for (const change of ['added', 'removed', 'changed'] as const) {
        for (const e of dom[change]) {
          entries.push({
            domain: dom.domain,
            relativePath: e.relativePath,
            change,
            type: e.type,
            size: e.size,
            sizeBefore: e.sizeBefore ?? null,
            changes: e.changes ?? [],
          });
        }
      }
    }
    return {
      from: (await store.resolve(a)).id,
      to: (await store.resolve(b)).id,
      added: d.added,
      removed: d.removed,
      changed: d.changed,
      invalidRows: d.invalidRows,
      domains: d.domains.map((x) => ({
        domain: x.domain,
        added: x.counts?.added ?? x.added.length,
        removed: x.counts?.removed ?? x.removed.length,
        changed: x.counts?.changed ?? x.changed.length,
      })),
      entries,
      truncated: d.truncated === true,
    };
  }

  async openFile(
    udid: string,
    snapshotId: string,
    domain: string,
    relativePath: string,
  ): Promise<OpenedFile> {
    const store = this.store(udid);
    const id = checkSnapshotId(snapshotId);
    if (typeof domain !== 'string' || typeof relativePath !== 'string' || relativePath === '') {
      throw usage('expected a domain and the relative path of a file in it');
    }
    const problem = pathProblem(domain, relativePath);
    if (problem)
      throw usage(`${show(`${domain}/${relativePath}`)} is not a backup path: ${problem}`);
    const dir = await this.browsableDir(store, id);
    const where = `${domain}/${relativePath}`;
    // H8b: an encrypted snapshot's Manifest.db is read from its decrypted copy.
    const passwords = await this.passwordsOf(store, dir);
    const src: BrowsableBackup = await readingSnapshot(store, id, () =>
      unlocking(openBrowsable(dir, passwords)),
    );
    const row = await readingSnapshot(store, id, async () =>
      lookupRow(src.manifestDb, domain, relativePath),
    );
    if (!row) throw notFound(`${show(where)} is not in snapshot ${id}`);
    const type = entryTypeForFlags(row.flags);
    if (type !== 'file') throw usage(`${show(where)} is a ${type}, not a file`);
    const name = relativePath.slice(relativePath.lastIndexOf('/') + 1);
    if (src.encrypted) {
      const stream = await unlocking(src.encrypted.openPlaintext(row)).catch((e: unknown) => {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
          throw notFound(`the content of ${show(where)} is missing from snapshot ${id}`);
        }
        throw e;
      });
      return { size: row.file.size, name, stream };
    }
    const payload = payloadPath(dir, row.fileId);
    let fh: fsp.FileHandle;
    try {
      const real = await fsp.realpath(payload);
      if (!isInside(real, await fsp.realpath(dir))) {
        throw new MooringError('UNSAFE_PATH', `the payload of ${show(where)} leaves its backup`);
      }
      // O_NOFOLLOW: a link swapped in after the check is refused, not followed.
      fh = await fsp.open(real, fsc.O_RDONLY | fsc.O_NOFOLLOW);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' && row.file.size === 0) {
        // Empty files may be recorded without a payload.
        return { size: 0, name, stream: Readable.from([]) };
      }
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
        throw notFound(`the content of ${show(where)} is missing from snapshot ${id}`);
      }
      throw e;
    }
    try {
      const st = await fh.stat();
      if (!st.isFile()) throw usage(`the payload of ${show(where)} is not a regular file`);
      // Payloads are never written in place (only replaced), so the size stays true.
      const stream =
        st.size === 0
          ? (await fh.close(), Readable.from([]))
          : fh.createReadStream({ start: 0, end: st.size - 1, autoClose: true });
      return { size: st.size, name, stream };
    } catch (e) {
      await fh.close().catch(() => undefined);
      throw e;
    }
  }

  private store(udid: string): ReadOnlyStore {
    return openStoreReadOnly(this.backupDir, checkUdid(udid));
  }

  /** The snapshot's folder, checked to lie inside the backup folder and to be unencrypted. */
  private async browsableDir(store: ReadOnlyStore, id: string): Promise<string> {
    let dir: string;
    try {
      dir = (await store.resolve(id)).path;
    } catch (e) {
      if (e instanceof MooringError && e.code === 'USAGE') throw notFound(e.message);
      throw e;
    }
    let real: string;
    try {
      real = await fsp.realpath(dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw gone(id);
      throw e;
    }
    this.realBackupDir ??= await fsp.realpath(this.backupDir);
    if (!isInside(real, this.realBackupDir)) {
      throw new MooringError('UNSAFE_PATH', `snapshot ${id} resolves outside ${this.backupDir}`);
    }
    if (this.passwordsFor === undefined && (await isEncrypted(dir))) {
      throw new MooringError(
        'USAGE',
        `snapshot ${id} of ${store.udid} is encrypted: encrypted backups cannot be browsed yet here (no password store)`,
        { detail: 'ENCRYPTED' },
      );
    }
    return dir;
  }

  /** H8b: the password candidates of an encrypted snapshot; undefined for an unencrypted one. */
  private async passwordsOf(
    store: ReadOnlyStore,
    dir: string,
  ): Promise<PasswordCandidates | undefined> {
    if (this.passwordsFor === undefined || !(await isEncrypted(dir))) return undefined;
    return this.passwordsFor(store.udid);
  }
}

/** H8b: one page, a wrong password worded for the UI. */
const unlockingPage = (...a: Parameters<typeof listFilesPage>): ReturnType<typeof listFilesPage> =>
  unlocking(listFilesPage(...a));

/** H8b: a password that does not open a snapshot is a refusal the UI shows (409 ENCRYPTED). */
async function unlocking<T>(p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (e) {
    if (e instanceof MooringError && e.code === 'WRONG_PASSWORD') {
      throw new MooringError(
        'USAGE',
        e.detail === 'NO_PASSWORD'
          ? 'this snapshot is encrypted and Mooring knows no password for it: store it with "mooring encryption password --udid UDID"'
          : 'this snapshot is encrypted and the stored password does not open it: store the right one with "mooring encryption password --udid UDID"',
        { detail: 'ENCRYPTED', cause: e },
      );
    }
    throw e;
  }
}

function gone(id: string): MooringError {
  return notFound(
    `snapshot ${id} is not there right now (a backup is being committed or pruned); try again`,
  );
}

/** Runs a read; a snapshot folder that vanished under it (a commit renames them) says so. */
async function readingSnapshot<T>(
  store: ReadOnlyStore,
  id: string,
  read: () => Promise<T>,
): Promise<T> {
  try {
    return await read();
  } catch (e) {
    const missing =
      (e as NodeJS.ErrnoException).code === 'ENOENT' ||
      (e instanceof MooringError && /ENOENT|unable to open|cannot be opened/i.test(e.message));
    if (missing && (await stampOf(store.journalFile)) !== undefined) throw gone(id);
    throw e;
  }
}

async function isEncrypted(dir: string): Promise<boolean> {
  try {
    return (await readManifestPlist(path.join(dir, MANIFEST_PLIST))).isEncrypted === true;
  } catch {
    // Unreadable: browsing reports its own error.
    return false;
  }
}

async function stampOf(file: string): Promise<string | undefined> {
  try {
    const st = await fsp.stat(file);
    return `${st.ino}:${st.size}:${st.mtimeMs}`;
  } catch {
    return undefined;
  }
}

/** The Manifest.db row of (domain, relativePath), by its fileID; undefined when absent. */
function lookupRow(file: string, domain: string, relativePath: string): ManifestRow | undefined {
  const db = openManifestDb(file);
  try {
    const rows = db
      .prepare(`SELECT ${MANIFEST_ROW_SELECT} FROM Files WHERE fileID = ? LIMIT 2`)
      .all(fileIdFor(domain, relativePath)) as Array<Record<string, unknown>>;
    if (rows.length === 0) return undefined;
    if (rows.length > 1) throw new MooringError('MALFORMED', `${file}: duplicate fileID`);
    const r = decodeManifestRow(rows[0]!);
    if (!isManifestRow(r)) throw new MooringError('MALFORMED', `${file}: ${r.problem}`);
    if (r.domain !== domain || r.relativePath !== relativePath) return undefined;
    return r;
  } finally {
    db.close();
  }
}
