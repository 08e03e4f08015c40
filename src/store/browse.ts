/**
 * Browsing unencrypted backups: list the files of one (by domain and a pattern), copy some out of
 * it, and compare two. Everything is read from Manifest.db, row by row; a device-supplied path is
 * turned into a local one only after it passed the format's path checks, and only under `to`.
 */
import { constants as fsc, promises as fsp } from 'node:fs';
import path from 'node:path';
import { MooringError } from '../util/errors';
import { targetStaysInDomain } from '../format/file-id';
import { MANIFEST_DB, MANIFEST_PLIST, payloadPath } from '../format/layout';
import {
  checkManifestShape,
  decodeManifestRow,
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

export interface FileQuery {
  /** Exact domain, or a glob (`AppDomain-*`). */
  domain?: string;
  /**
   * Over relativePath, case-insensitive. With `*`, `?` or `[…]` it is a glob (`*` stays within a
   * folder, `**` crosses folders) matched against the whole path, or against the file name alone
   * when the pattern has no `/`; otherwise a substring.
   */
  pattern?: string;
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

function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') {
      if (glob[i + 1] === '*') {
        re += '.*';
        i++;
      } else re += '[^/]*';
    } else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = glob.indexOf(']', i + 1);
      if (end < 0) re += '\\[';
      else {
        const body = glob.slice(i + 1, end).replace(/\\/g, '\\\\');
        re += `[${body.startsWith('!') ? `^${body.slice(1)}` : body}]`;
        i = end;
      }
    } else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`, 'i');
}

const GLOB = /[*?[]/;

/** A predicate over (domain, relativePath) for a query. */
export function fileMatcher(q: FileQuery): (domain: string, relativePath: string) => boolean {
  const domainTest =
    q.domain === undefined
      ? () => true
      : GLOB.test(q.domain)
        ? (
            (re) => (d: string) =>
              re.test(d)
          )(globToRegExp(q.domain))
        : (d: string) => d === q.domain;
  const p = q.pattern;
  let pathTest: (rel: string) => boolean = () => true;
  if (p !== undefined && p !== '') {
    if (GLOB.test(p)) {
      const re = globToRegExp(p);
      pathTest = p.includes('/')
        ? (rel) => re.test(rel)
        : (rel) => re.test(rel.slice(rel.lastIndexOf('/') + 1));
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
      `${dir} is an encrypted backup; browsing, extracting and comparing need an unencrypted one`,
    );
  }
}

/** The entries of the backup folder `dir` matching `q`, sorted by domain and path. */
export async function* listFiles(dir: string, q: FileQuery = {}): AsyncGenerator<BackupFileEntry> {
  await assertBrowsable(dir);
  const match = fileMatcher(q);
  const exactDomain = q.domain !== undefined && !GLOB.test(q.domain) ? q.domain : undefined;
  const opts =
    exactDomain === undefined ? { ordered: true } : { ordered: true, domain: exactDomain };
  for (const r of iterateManifestDb(path.join(dir, MANIFEST_DB), opts)) {
    if (match(r.domain, r.relativePath)) yield toFileEntry(r);
  }
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
  await assertBrowsable(dir);
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

  const rows = iterateManifestDb(path.join(dir, MANIFEST_DB), {
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
          await fsp.copyFile(payloadPath(dir, r.fileId), tmp, fsc.COPYFILE_EXCL);
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
}

export interface BackupDiff {
  domains: DomainDiff[];
  added: number;
  removed: number;
  changed: number;
  /** Rows of either manifest that failed validation and were left out. */
  invalidRows: number;
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
export async function diffBackups(dirA: string, dirB: string): Promise<BackupDiff> {
  await assertBrowsable(dirA);
  await assertBrowsable(dirB);
  const fileA = path.join(dirA, MANIFEST_DB);
  const fileB = path.join(dirB, MANIFEST_DB);
  const check = openManifestDb(fileB);
  try {
    checkManifestShape(check, fileB, MAX_MANIFEST_ROWS);
  } finally {
    check.close();
  }
  const db = openManifestDb(fileA);
  const byDomain = new Map<string, DomainDiff>();
  const out: BackupDiff = { domains: [], added: 0, removed: 0, changed: 0, invalidRows: 0 };
  const bucket = (domain: string): DomainDiff => {
    let d = byDomain.get(domain);
    if (!d) {
      d = { domain, added: [], removed: [], changed: [] };
      byDomain.set(domain, d);
    }
    return d;
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
        if (r) {
          bucket(r.domain).added.push(entry(r));
          out.added++;
        }
      }
      for (const raw of rows(
        `SELECT ${cols('x')} FROM main.Files AS x WHERE NOT EXISTS (SELECT 1 FROM b.Files AS y WHERE y.fileID = x.fileID) ORDER BY x.domain, x.relativePath`,
      )) {
        const r = decode(split(raw, 'x'));
        if (r) {
          bucket(r.domain).removed.push(entry(r));
          out.removed++;
        }
      }
      for (const raw of rows(
        `SELECT ${cols('x')}, ${cols('y')} FROM main.Files AS x JOIN b.Files AS y ON y.fileID = x.fileID WHERE x.file IS NOT y.file OR x.flags IS NOT y.flags ORDER BY y.domain, y.relativePath`,
      )) {
        const a = decode(split(raw, 'x'));
        const b = decode(split(raw, 'y'));
        if (!a || !b) continue;
        const changes = changesBetween(a, b);
        if (changes.length === 0) continue;
        bucket(b.domain).changed.push({ ...entry(b), sizeBefore: a.file.size, changes });
        out.changed++;
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
