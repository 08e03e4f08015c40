/**
 * Manifest.db (reference §5.3): a SQLite file listing every domain/path of a backup with its MBFile
 * archive. The device writes it; the host reads it back to verify, browse and compare backups, and
 * the simulated device reads the host's copy for incremental backups and restores. Whoever reads
 * it treats it as untrusted: rows are validated one at a time while iterating (a real phone has
 * millions), every column is bounded in SQL before it reaches JavaScript, and errors name the file.
 */
import Database from 'better-sqlite3';
import { MooringError } from '../util/errors';
import { fileIdFor, MAX_DOMAIN_CHARS, MAX_RELATIVE_PATH_CHARS, pathProblem } from './file-id';
import {
  decodeMbFile,
  encodeMbFile,
  MAX_MBFILE_BYTES,
  mbFileSummary,
  S_IFDIR,
  S_IFLNK,
  S_IFMT,
  S_IFREG,
  type MbFileRecord,
} from './mbfile';

export type EntryType = 'file' | 'dir' | 'symlink';

/** Manifest.db `flags`: 1 file, 2 directory, 4 symlink (reference §5.3, §9 item 9). */
export const MANIFEST_FLAG: Record<EntryType, number> = { file: 1, dir: 2, symlink: 4 };

/** Most rows accepted in one Manifest.db (a large phone has about a million). */
export const MAX_MANIFEST_ROWS = 2_000_000;

export interface ManifestRow {
  fileId: string;
  domain: string;
  relativePath: string;
  flags: number;
  file: MbFileRecord;
}

/**
 * What a verify reads of a valid row. A ManifestRow is one; rows read on another thread
 * (store/manifest-rows-off-thread) carry only this, without their names: the fileID finds them
 * (manifestNamesOf) for the few rows a verify reports.
 */
export interface ManifestRowFacts {
  fileId: string;
  domain?: string;
  relativePath?: string;
  flags: number;
  file: Pick<MbFileRecord, 'size' | 'digest'>;
}

/** A row that failed validation, as much of it as could be read. */
export interface ManifestRowProblem {
  fileId?: string;
  domain?: string;
  relativePath?: string;
  problem: string;
}

export function entryTypeForFlags(flags: number): EntryType | undefined {
  if (flags === 1) return 'file';
  if (flags === 2) return 'dir';
  if (flags === 4) return 'symlink';
  return undefined;
}

const SCHEMA = `
  CREATE TABLE Files (fileID TEXT PRIMARY KEY, domain TEXT, relativePath TEXT, flags INTEGER, file BLOB);
  CREATE INDEX FilesDomainIdx ON Files(domain);
  CREATE INDEX FilesRelativePathIdx ON Files(relativePath);
  CREATE INDEX FilesFlagsIdx ON Files(flags);
  CREATE TABLE Properties (key TEXT PRIMARY KEY, value BLOB);
`;

/** A prepared INSERT of one row into Files (fileID derived from domain and path). */
export function prepareRowInsert(db: Database.Database): (r: Omit<ManifestRow, 'fileId'>) => void {
  const ins = db.prepare(
    'INSERT INTO Files (fileID, domain, relativePath, flags, file) VALUES (?, ?, ?, ?, ?)',
  );
  return (r) => {
    ins.run(
      fileIdFor(r.domain, r.relativePath),
      r.domain,
      r.relativePath,
      r.flags,
      encodeMbFile(r.file),
    );
  };
}

/** Writes a new Manifest.db at `file` (which must not exist yet). */
export function writeManifestDb(file: string, rows: Iterable<Omit<ManifestRow, 'fileId'>>): number {
  const db = new Database(file);
  let n = 0;
  try {
    db.pragma('journal_mode = DELETE');
    db.exec(SCHEMA);
    const insert = prepareRowInsert(db);
    db.transaction(() => {
      for (const r of rows) {
        insert(r);
        n++;
      }
    })();
  } finally {
    db.close();
  }
  return n;
}

function bad(file: string, message: string, cause?: unknown): MooringError {
  return new MooringError(
    'MALFORMED',
    `Manifest.db (${file}): ${message}`,
    cause === undefined ? {} : { cause },
  );
}

/**
 * The columns of Files, each cut to a bound in SQL so a hostile row cannot make us allocate more
 * than that: an over-long text arrives one character too long (and fails validation), an
 * oversized MBFile blob arrives as NULL with its length beside it. `table` qualifies the columns
 * (for joins), `prefix` renames them.
 */
export function manifestRowColumns(table = '', prefix = ''): string {
  const t = table === '' ? '' : `${table}.`;
  return [
    `substr(${t}fileID, 1, 41) AS ${prefix}fileID`,
    `substr(${t}domain, 1, ${MAX_DOMAIN_CHARS + 1}) AS ${prefix}domain`,
    `substr(${t}relativePath, 1, ${MAX_RELATIVE_PATH_CHARS + 1}) AS ${prefix}relativePath`,
    `${t}flags AS ${prefix}flags`,
    `CASE WHEN length(${t}file) <= ${MAX_MBFILE_BYTES} THEN ${t}file END AS ${prefix}file`,
    `length(${t}file) AS ${prefix}fileBytes`,
  ].join(', ');
}

/** The columns of one row selected with `manifestRowColumns(table, prefix)`, prefix removed. */
export function pickManifestColumns(
  raw: Record<string, unknown>,
  prefix: string,
): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (const k of ['fileID', 'domain', 'relativePath', 'flags', 'file', 'fileBytes'])
    o[k] = raw[`${prefix}${k}`];
  return o;
}

export const MANIFEST_ROW_SELECT = manifestRowColumns();

/** Opens a Manifest.db read-only; MALFORMED (naming the file) when it is not a readable SQLite file. */
export function openManifestDb(file: string): Database.Database {
  let db: Database.Database;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
  } catch (cause) {
    throw bad(file, `cannot be opened: ${(cause as Error).message}`, cause);
  }
  try {
    db.prepare('SELECT fileID, domain, relativePath, flags, file FROM Files LIMIT 0').all();
  } catch (cause) {
    db.close();
    throw bad(file, `has no readable Files table: ${(cause as Error).message}`, cause);
  }
  return db;
}

/** Throws LIMIT when there are more than `maxRows` rows, MALFORMED on a duplicated fileID. */
export function checkManifestShape(db: Database.Database, file: string, maxRows: number): number {
  let count: number;
  let dup: { fileID: unknown } | undefined;
  try {
    count = (db.prepare('SELECT count(*) AS n FROM Files').get() as { n: number }).n;
    if (count > maxRows) {
      throw new MooringError(
        'LIMIT',
        `Manifest.db (${file}) lists ${count} files, more than ${maxRows}`,
      );
    }
    // In SQL rather than a Set: millions of IDs would otherwise sit in memory.
    dup = db
      .prepare(
        'SELECT substr(fileID, 1, 41) AS fileID FROM Files GROUP BY fileID HAVING count(*) > 1 LIMIT 1',
      )
      .get() as { fileID: unknown } | undefined;
  } catch (cause) {
    if (cause instanceof MooringError) throw cause;
    throw bad(file, `cannot be read: ${(cause as Error).message}`, cause);
  }
  if (dup) throw bad(file, `duplicate fileID ${JSON.stringify(dup.fileID)}`);
  return count;
}

/**
 * Validates one row selected with MANIFEST_ROW_SELECT. Returns the row, or a problem: an unsafe
 * path, a fileID that is not SHA-1(domain-relativePath), unknown flags, an MBFile that does not
 * decode or whose Mode or RelativePath disagree with the row.
 */
export function decodeManifestRow(raw: Record<string, unknown>): ManifestRow | ManifestRowProblem {
  const { fileID, domain, relativePath, flags, file, fileBytes } = raw;
  const partial: ManifestRowProblem = { problem: '' };
  if (typeof fileID === 'string') partial.fileId = fileID;
  if (typeof domain === 'string') partial.domain = domain;
  if (typeof relativePath === 'string') partial.relativePath = relativePath;
  const fail = (problem: string): ManifestRowProblem => ({ ...partial, problem });
  if (
    typeof fileID !== 'string' ||
    typeof domain !== 'string' ||
    typeof relativePath !== 'string'
  ) {
    return fail('a row has a non-text fileID, domain or relativePath');
  }
  const where = JSON.stringify(`${domain}/${relativePath}`.slice(0, 200));
  const problem = pathProblem(domain, relativePath);
  if (problem) return fail(`unsafe path ${where}: ${problem}`);
  if (fileID !== fileIdFor(domain, relativePath))
    return fail(`fileID of ${where} is not SHA-1(domain-relativePath)`);
  const flagNum = typeof flags === 'bigint' ? Number(flags) : flags;
  if (typeof flagNum !== 'number') return fail(`flags of ${where} is not an integer`);
  const type = entryTypeForFlags(flagNum);
  if (!type) return fail(`flags ${flagNum} of ${where} is not 1, 2 or 4`);
  if (file === null && typeof fileBytes === 'number' && fileBytes > MAX_MBFILE_BYTES)
    return fail(`MBFile of ${where} is ${fileBytes} bytes, more than ${MAX_MBFILE_BYTES}`);
  if (!Buffer.isBuffer(file)) return fail(`file column of ${where} is not a blob`);
  let rec: MbFileRecord;
  try {
    rec = decodeMbFile(file);
  } catch (e) {
    return fail(`MBFile of ${where}: ${(e as Error).message}`);
  }
  if (rec.relativePath !== relativePath)
    return fail(`MBFile RelativePath of ${where} differs from the row`);
  const typeBits = rec.mode & S_IFMT;
  const wanted = type === 'file' ? S_IFREG : type === 'dir' ? S_IFDIR : S_IFLNK;
  if (typeBits !== 0 && typeBits !== wanted) return fail(`Mode of ${where} disagrees with flags`);
  if (type === 'symlink' && rec.target === undefined) return fail(`symlink ${where} has no Target`);
  return { fileId: fileID, domain, relativePath, flags: flagNum, file: rec };
}

export function isManifestRow(r: ManifestRow | ManifestRowProblem): r is ManifestRow {
  return (r as ManifestRow).file !== undefined;
}

export interface IterateManifestOptions {
  maxRows?: number;
  /** Only this domain (uses the domain index). */
  domain?: string;
  /** Sorted by domain, then relativePath (costs a sort in SQLite, not in memory here). */
  ordered?: boolean;
  /**
   * Called for each invalid row, which is then skipped; without it the first invalid row throws
   * MALFORMED. Verification reports them all; the device refuses the whole file.
   */
  onInvalid?: (p: ManifestRowProblem) => void;
  /** iterateManifestDbAgainst: told once whether the base could be attached and compared. */
  onBase?: (attached: boolean) => void;
  /**
   * iterateManifestDb: only the rows of these rowids, which compareManifestDbRows gave: it has
   * checked the file's shape (row count, no duplicated fileID), so that is not done again.
   */
  rowids?: readonly number[];
  /**
   * Pass over this many rows first, valid or not, without decoding them: where an earlier
   * iteration of the same file, with the same options, stopped.
   */
  skipRows?: number;
}

/**
 * Iterates the rows of a Manifest.db one at a time (better-sqlite3's iterate(): memory does not
 * grow with the number of rows). The file is closed when the iteration ends or is abandoned.
 */
export function* iterateManifestDb(
  file: string,
  opts: IterateManifestOptions = {},
): Generator<ManifestRow> {
  for (const r of iterateRows(file, undefined, opts)) yield r as ManifestRow;
}

/** A row byte-identical to a row of an already validated Manifest.db (iterateManifestDbAgainst). */
export interface KnownManifestRow {
  known: true;
  fileId: string;
  domain: string;
  relativePath: string;
  flags: number;
  /** The MBFile's Size and whether it has a Digest (mbFileSummary). */
  size: number;
  hasDigest: boolean;
  /** The MBFile archive, for decodeMbFile when more is needed. */
  blob: Buffer;
}

export function isKnownRow(r: ManifestRowFacts | KnownManifestRow): r is KnownManifestRow {
  return (r as KnownManifestRow).known === true;
}

/**
 * iterateManifestDb, except that a row identical in every column to a row of `baseFile` — a
 * Manifest.db whose rows were all validated before (the previous snapshot, verified) — is not
 * validated and decoded again: it comes as a KnownManifestRow with only its Size read. In an
 * incremental backup that is ~99 % of the rows, compared inside SQLite (ATTACH + join on fileID).
 * When `baseFile` cannot be attached every row is decoded, as iterateManifestDb does.
 */
export function* iterateManifestDbAgainst(
  file: string,
  baseFile: string,
  opts: IterateManifestOptions = {},
): Generator<ManifestRow | KnownManifestRow> {
  yield* iterateRows(file, baseFile, opts);
}

/**
 * A LEFT JOIN (SQLite builds an automatic index when the base has none on fileID; a correlated
 * EXISTS would scan the base once per row). A base with a duplicated fileID can repeat a row:
 * the caller skips repeats by rowid.
 */
const KNOWN_SELECT = `SELECT ${manifestRowColumns('n')}, n.rowid AS rowNumber,
  b.fileID IS NOT NULL AS known FROM main.Files n LEFT JOIN base.Files b ON b.fileID = n.fileID
  AND b.domain = n.domain AND b.relativePath = n.relativePath AND b.flags = n.flags AND b.file = n.file`;

function attachBase(db: Database.Database, baseFile: string): Database.Statement | undefined {
  try {
    db.prepare('ATTACH DATABASE ? AS base').run(baseFile);
    // Arrays, not objects: most rows need three of the columns (KNOWN_COLUMNS).
    return db.prepare(KNOWN_SELECT).raw(true);
  } catch {
    return undefined;
  }
}

export interface CompareManifestOptions {
  maxRows?: number;
  /** Pass over this many rows first: where an earlier comparison of the same files stopped. */
  skipRows?: number;
}

/** One row as compareManifestDbRows sees it: rowid, fileID (unchecked), flags, and whether it is identical to the base's. */
export type ComparedRow = [rowid: number, fileId: unknown, flags: unknown, same: boolean];

/**
 * SQLite's page cache for a pass over the rows, which reads each page once: better-sqlite3's
 * default (16 MB a file) only added RSS, ~15 MB for a 50 MB Manifest.db, and no speed.
 */
const SCAN_CACHE_KIB = 1024;

/**
 * Every row of `file` compared with the row of the same fileID in `baseFile` (a verified
 * Manifest.db), inside SQLite: only the rowid, fileID, flags and the verdict reach JavaScript —
 * an MBFile never does. Rows that differ are read afterwards by rowid (iterateManifestDb's
 * `rowids`). Undefined when the base cannot be attached. The file is closed when the iteration
 * ends or is abandoned; LIMIT and MALFORMED as iterateManifestDb.
 */
export function compareManifestDbRows(
  file: string,
  baseFile: string,
  opts: CompareManifestOptions = {},
): Generator<ComparedRow> | undefined {
  const maxRows = opts.maxRows ?? MAX_MANIFEST_ROWS;
  const skip = opts.skipRows ?? 0;
  const db = openManifestDb(file);
  let stmt: Database.Statement;
  try {
    checkManifestShape(db, file, maxRows);
    db.prepare('ATTACH DATABASE ? AS base').run(baseFile);
    const byRowid = compareStrategy(db) === 'rowid';
    if (byRowid) {
      // Both files are read once, in rowid order: a scan's cache (a join looks the base up).
      db.pragma(`main.cache_size = -${SCAN_CACHE_KIB}`);
      db.pragma(`base.cache_size = -${SCAN_CACHE_KIB}`);
    }
    stmt = db.prepare(byRowid ? COMPARE_BY_ROWID : COMPARE_BY_JOIN).raw(true);
  } catch (e) {
    db.close();
    if (e instanceof MooringError) throw e;
    return undefined;
  }
  return (function* (): Generator<ComparedRow> {
    const it = stmt.iterate() as IterableIterator<unknown[]>;
    try {
      let n = 0;
      while (true) {
        let next: IteratorResult<unknown[]>;
        try {
          next = it.next();
        } catch (cause) {
          throw bad(file, `cannot be read: ${(cause as Error).message}`, cause);
        }
        if (next.done) break;
        if (++n > maxRows)
          throw new MooringError('LIMIT', `Manifest.db (${file}) lists more than ${maxRows} files`);
        if (n <= skip) continue;
        const [rowid, fileId, flags, same] = next.value;
        yield [rowid as number, fileId, flags, same === 1];
      }
    } finally {
      it.return?.();
      db.close();
    }
  })();
}

/** Whether the row `x` of the base is the row `n` of the new file in every column (NULL: not). */
const sameRow = (x: string): string =>
  `${x}.domain = n.domain AND ${x}.relativePath = n.relativePath AND ${x}.flags = n.flags AND ${x}.file = n.file`;

/**
 * compareManifestDbRows' query, by rowid first. A device rewrites its Manifest.db with most rows
 * where they were, so each row is paired with the base's row of the same rowid (one B-tree
 * descent, in the order the scan reads them), and looked up by fileID only when that row is
 * another file: with 100,000 rows ~35 % less time than a join on fileID (docs/BENCHMARKS.md,
 * ninth pass). The verdict is the same: fileID is the base's primary key, so the row of that
 * rowid and fileID is the one a join finds. A NULL anywhere is not "the same".
 */
const COMPARE_BY_ROWID = `SELECT n.rowid, substr(n.fileID, 1, 41), n.flags, coalesce(CASE
  WHEN b.fileID = n.fileID THEN ${sameRow('b')}
  ELSE (SELECT ${sameRow('c')} FROM base.Files c WHERE c.fileID = n.fileID) END, 0)
  FROM main.Files n LEFT JOIN base.Files b ON b.rowid = n.rowid`;

/**
 * The same verdicts by a join on fileID, for a base without an index on it (a Manifest.db
 * without its primary key): SQLite then builds one for the join, where the lookup above would
 * scan the base once per row. A base with a duplicated fileID would repeat a row; its verify
 * refused it (checkManifestShape).
 */
const COMPARE_BY_JOIN = `SELECT n.rowid, substr(n.fileID, 1, 41), n.flags,
  coalesce(${sameRow('b')}, 0) FROM main.Files n LEFT JOIN base.Files b ON b.fileID = n.fileID`;

/**
 * How compareManifestDbRows compares with the base attached to `db`: by rowid first only when
 * SQLite's plan looks the fileID up in an index of the base; otherwise (no such index: it would
 * scan the base once per row) by the join.
 */
export function compareStrategy(db: Database.Database): 'rowid' | 'join' {
  const plan = db.prepare(`EXPLAIN QUERY PLAN ${COMPARE_BY_ROWID}`).all() as Array<{
    detail: string;
  }>;
  // "SEARCH c USING INDEX …" (older SQLite: "SEARCH TABLE Files AS c USING …"), not an automatic one.
  const indexed = /^SEARCH (TABLE \S+ AS )?c USING (?!AUTOMATIC)/;
  return plan.some((step) => indexed.test(step.detail)) ? 'rowid' : 'join';
}

/** The columns of KNOWN_SELECT, in order. */
const KNOWN_COLUMNS = [
  'fileID',
  'domain',
  'relativePath',
  'flags',
  'file',
  'fileBytes',
  'rowNumber',
  'known',
] as const;

function columnsOf(raw: unknown[]): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  KNOWN_COLUMNS.forEach((k, i) => (o[k] = raw[i]));
  return o;
}

function knownRow(raw: unknown[]): KnownManifestRow | undefined {
  const [fileID, domain, relativePath, flags, file] = raw;
  if (
    typeof fileID !== 'string' ||
    typeof domain !== 'string' ||
    typeof relativePath !== 'string' ||
    typeof flags !== 'number' ||
    !Buffer.isBuffer(file)
  )
    return undefined;
  const summary =
    flags === MANIFEST_FLAG.file ? mbFileSummary(file) : { size: 0, hasDigest: false };
  if (!summary) return undefined;
  return { known: true, fileId: fileID, domain, relativePath, flags, ...summary, blob: file };
}

function* iterateRows(
  file: string,
  baseFile: string | undefined,
  opts: IterateManifestOptions,
): Generator<ManifestRow | KnownManifestRow> {
  const maxRows = opts.maxRows ?? MAX_MANIFEST_ROWS;
  const skip = opts.skipRows ?? 0;
  const db = openManifestDb(file);
  let it: IterableIterator<Record<string, unknown>> | undefined;
  try {
    if (baseFile === undefined) db.pragma(`cache_size = -${SCAN_CACHE_KIB}`);
    if (opts.rowids === undefined) checkManifestShape(db, file, maxRows);
    const where = opts.domain !== undefined ? ' WHERE domain = ?' : '';
    const order = opts.ordered ? ' ORDER BY domain, relativePath' : '';
    const against =
      baseFile !== undefined && where === '' && order === '' ? attachBase(db, baseFile) : undefined;
    if (baseFile !== undefined) opts.onBase?.(against !== undefined);
    const only =
      opts.rowids !== undefined
        ? `${where === '' ? ' WHERE' : ' AND'} rowid IN (SELECT value FROM json_each(?))`
        : '';
    const stmt =
      against ?? db.prepare(`SELECT ${MANIFEST_ROW_SELECT} FROM Files${where}${only}${order}`);
    const args: unknown[] = [];
    if (!against && opts.domain !== undefined) args.push(opts.domain);
    if (!against && opts.rowids !== undefined) args.push(JSON.stringify(opts.rowids));
    it = stmt.iterate(...args) as IterableIterator<Record<string, unknown>>;
    let n = 0;
    let lastRow: unknown;
    while (true) {
      let next: IteratorResult<Record<string, unknown> | unknown[]>;
      try {
        next = it.next();
      } catch (cause) {
        throw bad(file, `cannot be read: ${(cause as Error).message}`, cause);
      }
      if (next.done) break;
      let columns = next.value;
      if (Array.isArray(columns)) {
        if (columns[6] === lastRow) continue; // a row repeated by a base's duplicated fileID
        lastRow = columns[6];
      }
      // The count was checked, but a file can grow under us; the bound holds regardless.
      if (++n > maxRows) {
        throw new MooringError('LIMIT', `Manifest.db (${file}) lists more than ${maxRows} files`);
      }
      if (n <= skip) continue;
      if (Array.isArray(columns)) {
        const known = columns[7] === 1 ? knownRow(columns) : undefined;
        if (known) {
          yield known;
          continue;
        }
        columns = columnsOf(columns);
      }
      const row = decodeManifestRow(columns);
      if (isManifestRow(row)) {
        yield row;
      } else if (opts.onInvalid) {
        opts.onInvalid(row);
      } else {
        throw bad(file, row.problem);
      }
    }
  } finally {
    // An abandoned iteration leaves the statement busy; end it before closing the file.
    it?.return?.();
    db.close();
  }
}

/**
 * The domain and relativePath of the rows with these fileIDs, for a report that has only the
 * fileID (rows read on another thread travel without their names). One query whatever the number
 * asked; a name is given only where the row's fileID is SHA-1 of it (so never a truncated or
 * forged one), and a fileID not found is left out.
 */
export function manifestNamesOf(
  file: string,
  fileIds: readonly string[],
): Map<string, { domain: string; relativePath: string }> {
  const names = new Map<string, { domain: string; relativePath: string }>();
  if (fileIds.length === 0) return names;
  const db = openManifestDb(file);
  try {
    const rows = db
      .prepare(
        `SELECT substr(fileID, 1, 41), substr(domain, 1, ${MAX_DOMAIN_CHARS + 1}),
          substr(relativePath, 1, ${MAX_RELATIVE_PATH_CHARS + 1})
          FROM Files WHERE fileID IN (SELECT value FROM json_each(?))`,
      )
      .raw(true)
      .iterate(JSON.stringify(fileIds)) as IterableIterator<unknown[]>;
    for (const [fileId, domain, relativePath] of rows) {
      if (
        typeof fileId === 'string' &&
        typeof domain === 'string' &&
        typeof relativePath === 'string' &&
        fileIdFor(domain, relativePath) === fileId
      )
        names.set(fileId, { domain, relativePath });
    }
  } finally {
    db.close();
  }
  return names;
}

/**
 * Reads and validates a whole Manifest.db into memory (the simulated device, whose manifests are
 * small). Throws MALFORMED / LIMIT on anything a device would refuse.
 */
export function readManifestDb(file: string, maxRows = MAX_MANIFEST_ROWS): ManifestRow[] {
  return [...iterateManifestDb(file, { maxRows })];
}
