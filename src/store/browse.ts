/**
 * Browsing unencrypted backups: list the files of one (by domain and a pattern), copy some out of
 * it, and compare two. Everything is read from Manifest.db, row by row; a device-supplied path is
 * turned into a local one only after it passed the format's path checks, and only under `to`.
 */
import { constants as fsc, promises as fsp } from 'node:fs';
import path from 'node:path';
import { MooringError } from '../util/errors';
import { MAX_DOMAIN_CHARS, MAX_RELATIVE_PATH_CHARS, targetStaysInDomain } from '../format/file-id';
import { MANIFEST_DB, MANIFEST_PLIST, payloadPath } from '../format/layout';
import {
  checkManifestShape,
  decodeManifestRow,
  MANIFEST_ROW_SELECT,
  entryTypeForFlags,
  isManifestRow,
  iterateManifestDb,
  manifestRowColumns,
  MAX_MANIFEST_ROWS,
  openManifestDb,
  pickManifestColumns,
  type EntryType,
  type ManifestRow,
} from '../format/manifest-db';
import { readManifestPlist } from '../format/manifest-plist';
import { tempName } from './fs-util';
import { GLOB_CHARS as GLOB, globMatcher } from './glob';
// H8b: encrypted backups are read through a decrypted Manifest.db and per-file decryption.
import {
  openEncryptedBackup,
  type OpenedEncryptedBackup,
  type PasswordCandidates,
} from './encrypted';

export interface FileQuery {
  /** Exact domain, or a glob (`AppDomain-*`). */
  domain?: string;
  /**
   * Over relativePath, case-insensitive. With `*`, `?` or `[…]` it is a glob (`*` stays within a
   * folder, `**` crosses folders) matched against the whole path, or against the file name alone
   * when the pattern has no `/`; otherwise a substring.
   */
  pattern?: string;
  /** H8b: not a filter: the passwords that may open an encrypted backup (see encrypted.ts). */
  passwords?: PasswordCandidates;
}

export interface BackupFileEntry {
  domain: string;
  relativePath: string;
  fileId: string;
  type: EntryType;
  size: number;
  mtime: Date;
  mode: number;
  target?: string;
  /** SHA-1 hex when the backup records it. */
  digest?: string;
}

/** A predicate over (domain, relativePath) for a query. */
export function fileMatcher(q: FileQuery): (domain: string, relativePath: string) => boolean {
  const domainTest =
    q.domain === undefined
      ? () => true
      : GLOB.test(q.domain)
        ? globMatcher(q.domain)
        : (d: string) => d === q.domain;
  const p = q.pattern;
  let pathTest: (rel: string) => boolean = () => true;
  if (p !== undefined && p !== '') {
    if (GLOB.test(p)) {
      const test = globMatcher(p);
      pathTest = p.includes('/')
        ? (rel) => test(rel)
        : (rel) => test(rel.slice(rel.lastIndexOf('/') + 1));
    } else {
      const needle = p.toLowerCase();
      pathTest = (rel) => rel.toLowerCase().includes(needle);
    }
  }
  return (d, rel) => domainTest(d) && pathTest(rel);
}

export function toFileEntry(r: ManifestRow): BackupFileEntry {
  const e: BackupFileEntry = {
    domain: r.domain,
    relativePath: r.relativePath,
    fileId: r.fileId,
    type: entryTypeForFlags(r.flags)!,
    size: r.file.size,
    mtime: new Date(r.file.lastModified * 1000),
    mode: r.file.mode,
  };
  if (r.file.target !== undefined) e.target = r.file.target;
  if (r.file.digest !== undefined) e.digest = r.file.digest.toString('hex');
  return e;
}

/** Refuses encrypted backups (their Manifest.db cannot be read without the password). */
export async function assertBrowsable(dir: string): Promise<void> {
  const m = await readManifestPlist(path.join(dir, MANIFEST_PLIST));
  if (m.isEncrypted) {
    throw new MooringError(
      'USAGE',
      `${dir} is an encrypted backup: browsing, extracting and comparing it need its password (store it with "mooring encryption password", or pass --password-file)`,
      { detail: 'ENCRYPTED' },
    );
  }
}

/** H8b: where a backup's Manifest.db is readable: the folder's own, or its decrypted copy. */
export interface BrowsableBackup {
  manifestDb: string;
  encrypted?: OpenedEncryptedBackup;
}

/** H8b: an unencrypted backup as it is; an encrypted one opened with `passwords` (or refused). */
export async function openBrowsable(
  dir: string,
  passwords?: PasswordCandidates,
): Promise<BrowsableBackup> {
  const m = await readManifestPlist(path.join(dir, MANIFEST_PLIST));
  if (!m.isEncrypted) return { manifestDb: path.join(dir, MANIFEST_DB) };
  if (passwords === undefined) await assertBrowsable(dir);
  const encrypted = await openEncryptedBackup(dir, passwords!);
  return { manifestDb: encrypted.manifestDb, encrypted };
}

/** The entries of the backup folder `dir` matching `q`, sorted by domain and path. */
export async function* listFiles(dir: string, q: FileQuery = {}): AsyncGenerator<BackupFileEntry> {
  const src = await openBrowsable(dir, q.passwords); // H8b
  const match = fileMatcher(q);
  const exactDomain = q.domain !== undefined && !GLOB.test(q.domain) ? q.domain : undefined;
  const opts =
    exactDomain === undefined ? { ordered: true } : { ordered: true, domain: exactDomain };
  for (const r of iterateManifestDb(src.manifestDb, opts)) {
    if (match(r.domain, r.relativePath)) yield toFileEntry(r);
  }
}

/** Where a page of files starts: after this (domain, relativePath), in Manifest.db order. */
export interface FilePosition {
  domain: string;
  relativePath: string;
}

export interface FilePageOptions {
  /** Start after this entry (the `next` of the previous page). */
  after?: FilePosition;
  /** Entries per page. */
  limit: number;
  /** Rows examined at most in one call, so a rare pattern costs bounded work per page. */
  maxScan?: number;
}

export interface FilePage {
  entries: BackupFileEntry[];
  /** Where the next page starts; undefined when the listing is complete. */
  next?: FilePosition;
  /** Rows that matched the query but failed validation (left out). */
  invalid: number;
}

export const DEFAULT_MAX_SCAN_ROWS = 200_000;

/**
 * One page of `listFiles`: the cursor is a (domain, relativePath) position compared inside
 * SQLite (same BINARY order as the listing), so each page starts where the last one ended instead
 * of re-reading everything before it. The query is matched on the bounded raw columns before a
 * row's MBFile is decoded; damaged rows are counted and skipped rather than failing the page.
 */
export async function listFilesPage(
  dir: string,
  q: FileQuery,
  o: FilePageOptions,
): Promise<FilePage> {
  const file = (await openBrowsable(dir, q.passwords)).manifestDb; // H8b
  const match = fileMatcher(q);
  const maxScan = o.maxScan ?? DEFAULT_MAX_SCAN_ROWS;
  const exactDomain = q.domain !== undefined && !GLOB.test(q.domain) ? q.domain : undefined;
  const where: string[] = [];
  const args: string[] = [];
  if (exactDomain !== undefined) {
    where.push('domain = ?');
    args.push(exactDomain);
  }
  if (o.after) {
    where.push('(domain, relativePath) > (?, ?)');
    args.push(o.after.domain, o.after.relativePath);
  }
  const sql =
    `SELECT ${MANIFEST_ROW_SELECT} FROM Files` +
    (where.length ? ` WHERE ${where.join(' AND ')}` : '') +
    ' ORDER BY domain, relativePath';
  const page: FilePage = { entries: [], invalid: 0 };
  const db = openManifestDb(file);
  let it: IterableIterator<Record<string, unknown>> | undefined;
  try {
    checkManifestShape(db, file, MAX_MANIFEST_ROWS);
    it = db.prepare(sql).iterate(...args) as IterableIterator<Record<string, unknown>>;
    let scanned = 0;
    /** The last row with a usable position (text within the format's bounds). */
    let last: FilePosition | undefined;
    let full = false;
    while (true) {
      let next: IteratorResult<Record<string, unknown>>;
      try {
        next = it.next();
      } catch (cause) {
        throw new MooringError('MALFORMED', `${file} cannot be read: ${(cause as Error).message}`, {
          cause,
        });
      }
      if (next.done) break;
      scanned++;
      const { domain, relativePath } = next.value;
      const text =
        typeof domain === 'string' && typeof relativePath === 'string'
          ? { domain, relativePath }
          : undefined;
      const positioned =
        text !== undefined &&
        text.domain.length <= MAX_DOMAIN_CHARS &&
        text.relativePath.length <= MAX_RELATIVE_PATH_CHARS;
      const hit = text !== undefined && match(text.domain, text.relativePath);
      if (hit && full) {
        // One more match exists: the page ends at its last entry.
        page.next = last;
        break;
      }
      if (positioned && !full) last = text;
      if (hit) {
        const r = decodeManifestRow(next.value);
        if (isManifestRow(r)) {
          page.entries.push(toFileEntry(r));
          if (page.entries.length >= o.limit) full = true;
        } else page.invalid++;
      }
      if (scanned >= maxScan) {
        // Out of budget: continue from here next time, unless no usable position was seen.
        if (last !== undefined) page.next = last;
        break;
      }
    }
  } finally {
    it?.return?.();
    db.close();
  }
  return page;
}

export interface ExtractResult {
  to: string;
  files: number;
  dirs: number;
  symlinks: number;
  bytes: number;
  /** Entries that matched but could not be extracted, and why. */
  skipped: Array<{ domain: string; relativePath: string; problem: string }>;
}

/**
 * Recreates the matching entries as `<to>/<domain>/<relativePath>`, with the backup's mtimes.
 * Files are written to a temp name and renamed into place (an existing symlink at the target is
 * replaced, never followed); every parent folder is checked to resolve inside `to`; symlinks are
 * created last, and only when their target stays inside their own domain.
 */
export async function extractFiles(dir: string, q: FileQuery, to: string): Promise<ExtractResult> {
  const src = await openBrowsable(dir, q.passwords); // H8b
  await fsp.mkdir(to, { recursive: true });
  const root = await fsp.realpath(to);
  const result: ExtractResult = { to: root, files: 0, dirs: 0, symlinks: 0, bytes: 0, skipped: [] };
  const match = fileMatcher(q);
  const links: ManifestRow[] = [];
  const dirTimes: Array<[string, number]> = [];
  const safeDirs = new Set<string>();

  /** mkdir -p inside root, refusing any component that resolves outside it. */
  const ensureDir = async (abs: string): Promise<void> => {
    if (safeDirs.has(abs)) return;
    await fsp.mkdir(abs, { recursive: true });
    const real = await fsp.realpath(abs);
    if (real !== root && !real.startsWith(root + path.sep)) {
      throw new MooringError('UNSAFE_PATH', `${abs} resolves outside ${root}`);
    }
    safeDirs.add(abs);
  };
  const local = (r: ManifestRow): string =>
    path.join(root, r.domain, ...(r.relativePath === '' ? [] : r.relativePath.split('/')));

  const rows = iterateManifestDb(src.manifestDb, {
    ordered: true,
    // A damaged row is reported and skipped: the rest of the backup is still worth getting back.
    onInvalid: (p) =>
      result.skipped.push({
        domain: p.domain ?? '?',
        relativePath: p.relativePath ?? '?',
        problem: p.problem,
      }),
  });
  for (const r of rows) {
    if (!match(r.domain, r.relativePath)) continue;
    const dest = local(r);
    try {
      if (r.flags === 2) {
        await ensureDir(dest);
        dirTimes.push([dest, r.file.lastModified]);
        result.dirs++;
      } else if (r.flags === 4) {
        links.push(r);
      } else {
        await ensureDir(path.dirname(dest));
        const tmp = tempName(dest);
        try {
          // H8b: an encrypted payload is decrypted on the way out.
          if (src.encrypted) await src.encrypted.decryptTo(r, tmp);
          else await fsp.copyFile(payloadPath(dir, r.fileId), tmp, fsc.COPYFILE_EXCL);
          await fsp.utimes(tmp, r.file.lastModified, r.file.lastModified);
          await fsp.rename(tmp, dest);
        } catch (e) {
          await fsp.rm(tmp, { force: true });
          throw e;
        }
        result.files++;
        result.bytes += r.file.size;
      }
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      const problem =
        code === 'ENOENT' ? 'its payload is missing from the backup' : (e as Error).message;
      result.skipped.push({ domain: r.domain, relativePath: r.relativePath, problem });
    }
  }
  for (const r of links) {
    const target = r.file.target!;
    if (!targetStaysInDomain(r.relativePath, target)) {
      result.skipped.push({
        domain: r.domain,
        relativePath: r.relativePath,
        problem: `symlink target ${JSON.stringify(target)} leaves its domain`,
      });
      continue;
    }
    const dest = local(r);
    try {
      await ensureDir(path.dirname(dest));
      await fsp.rm(dest, { force: true });
      await fsp.symlink(target, dest);
      result.symlinks++;
    } catch (e) {
      result.skipped.push({
        domain: r.domain,
        relativePath: r.relativePath,
        problem: (e as Error).message,
      });
    }
  }
  // Folder times last: creating entries inside a folder changes its mtime.
  for (const [d, t] of dirTimes.reverse()) await fsp.utimes(d, t, t).catch(() => undefined);
  return result;
}

export interface DiffEntry {
  fileId: string;
  relativePath: string;
  type: EntryType;
  size: number;
  /** For changed entries: the size in the first backup. */
  sizeBefore?: number;
  /** What differs, for changed entries ("content", "size", "type", "target", "mtime"). */
  changes?: string[];
}

export interface DomainDiff {
  domain: string;
  added: DiffEntry[];
  removed: DiffEntry[];
  changed: DiffEntry[];
  /** With DiffOptions.maxEntries: this domain's full counts (its lists may be cut short). */
  counts?: { added: number; removed: number; changed: number };
}

export interface BackupDiff {
  domains: DomainDiff[];
  added: number;
  removed: number;
  changed: number;
  /** Rows of either manifest that failed validation and were left out. */
  invalidRows: number;
  /** With DiffOptions.maxEntries: whether some entries were left out of the lists. */
  truncated?: boolean;
}

export interface DiffOptions {
  /**
   * Keep at most this many entries in the lists (all domains together); the counts stay exact.
   * Bounds memory when two backups differ in millions of files.
   */
  maxEntries?: number;
  /** H8b: passwords that may open either backup when it is encrypted. */
  passwords?: PasswordCandidates;
}

/** What changed between two rows of the same fileID, or [] when nothing that matters did. */
function changesBetween(a: ManifestRow, b: ManifestRow): string[] {
  if (a.flags !== b.flags) return ['type'];
  const out: string[] = [];
  if (a.flags === 4) return a.file.target !== b.file.target ? ['target'] : [];
  if (a.flags === 2) return [];
  if (a.file.size !== b.file.size) out.push('size');
  const da = a.file.digest?.toString('hex');
  const dbb = b.file.digest?.toString('hex');
  if (da !== undefined && dbb !== undefined) {
    if (da !== dbb) out.push('content');
  } else if (a.file.lastModified !== b.file.lastModified) {
    // Without digests, a new mtime is the only sign of new content.
    out.push('mtime');
  }
  return out;
}

/**
 * Files added, removed and changed from backup folder `dirA` to `dirB`, grouped by domain. The
 * two Manifest.dbs are joined by fileID inside SQLite, so memory holds only the differences.
 */
export async function diffBackups(
  dirA: string,
  dirB: string,
  opts: DiffOptions = {},
): Promise<BackupDiff> {
  const fileA = (await openBrowsable(dirA, opts.passwords)).manifestDb; // H8b
  const fileB = (await openBrowsable(dirB, opts.passwords)).manifestDb;
  const check = openManifestDb(fileB);
  try {
    checkManifestShape(check, fileB, MAX_MANIFEST_ROWS);
  } finally {
    check.close();
  }
  const db = openManifestDb(fileA);
  const byDomain = new Map<string, DomainDiff>();
  const out: BackupDiff = { domains: [], added: 0, removed: 0, changed: 0, invalidRows: 0 };
  const max = opts.maxEntries;
  if (max !== undefined) out.truncated = false;
  let kept = 0;
  const bucket = (domain: string): DomainDiff => {
    let d = byDomain.get(domain);
    if (!d) {
      d = { domain, added: [], removed: [], changed: [] };
      if (max !== undefined) d.counts = { added: 0, removed: 0, changed: 0 };
      byDomain.set(domain, d);
    }
    return d;
  };
  const keep = (domain: string, kind: 'added' | 'removed' | 'changed', e: DiffEntry): void => {
    const d = bucket(domain);
    out[kind]++;
    if (d.counts) d.counts[kind]++;
    if (max !== undefined && kept >= max) {
      out.truncated = true;
      return;
    }
    kept++;
    d[kind].push(e);
  };
  const entry = (r: ManifestRow): DiffEntry => ({
    fileId: r.fileId,
    relativePath: r.relativePath,
    type: entryTypeForFlags(r.flags)!,
    size: r.file.size,
  });
  const decode = (raw: Record<string, unknown>): ManifestRow | undefined => {
    const r = decodeManifestRow(raw);
    if (isManifestRow(r)) return r;
    out.invalidRows++;
    return undefined;
  };
  try {
    checkManifestShape(db, fileA, MAX_MANIFEST_ROWS);
    db.prepare('ATTACH DATABASE ? AS b').run(fileB);
    const cols = (t: string): string => manifestRowColumns(t, `${t}_`);
    const split = (raw: Record<string, unknown>, t: string): Record<string, unknown> =>
      pickManifestColumns(raw, `${t}_`);
    const rows = (sql: string): IterableIterator<Record<string, unknown>> =>
      db.prepare(sql).iterate() as IterableIterator<Record<string, unknown>>;
    try {
      for (const raw of rows(
        `SELECT ${cols('x')} FROM b.Files AS x WHERE NOT EXISTS (SELECT 1 FROM main.Files AS y WHERE y.fileID = x.fileID) ORDER BY x.domain, x.relativePath`,
      )) {
        const r = decode(split(raw, 'x'));
        if (r) keep(r.domain, 'added', entry(r));
      }
      for (const raw of rows(
        `SELECT ${cols('x')} FROM main.Files AS x WHERE NOT EXISTS (SELECT 1 FROM b.Files AS y WHERE y.fileID = x.fileID) ORDER BY x.domain, x.relativePath`,
      )) {
        const r = decode(split(raw, 'x'));
        if (r) keep(r.domain, 'removed', entry(r));
      }
      for (const raw of rows(
        `SELECT ${cols('x')}, ${cols('y')} FROM main.Files AS x JOIN b.Files AS y ON y.fileID = x.fileID WHERE x.file IS NOT y.file OR x.flags IS NOT y.flags ORDER BY y.domain, y.relativePath`,
      )) {
        const a = decode(split(raw, 'x'));
        const b = decode(split(raw, 'y'));
        if (!a || !b) continue;
        const changes = changesBetween(a, b);
        if (changes.length === 0) continue;
        keep(b.domain, 'changed', { ...entry(b), sizeBefore: a.file.size, changes });
      }
    } catch (e) {
      if (e instanceof MooringError) throw e;
      throw new MooringError(
        'MALFORMED',
        `Comparing ${fileA} with ${fileB}: ${(e as Error).message}`,
        {
          cause: e,
        },
      );
    }
  } finally {
    db.close();
  }
  out.domains = [...byDomain.values()].sort((x, y) =>
    x.domain < y.domain ? -1 : x.domain > y.domain ? 1 : 0,
  );
  return out;
}
