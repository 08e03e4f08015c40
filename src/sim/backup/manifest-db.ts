/**
 * Manifest.db (reference §5.3): a SQLite file listing every domain/path of the backup with its
 * MBFile archive. Written by the device for each backup; read back by the device for incremental
 * backups and restores, when it comes from the host and is therefore untrusted.
 */
import Database from 'better-sqlite3';
import { MooringError } from '../../util/errors';
import {
  fileIdFor,
  pathProblem,
  S_IFDIR,
  S_IFLNK,
  S_IFMT,
  S_IFREG,
  type EntryType,
} from '../content/model';
import { decodeMbFile, encodeMbFile, MAX_MBFILE_BYTES, type MbFileRecord } from './mbfile';

/** Manifest.db `flags`: 1 file, 2 directory, 4 symlink (reference §5.3, §9 item 9). */
export const MANIFEST_FLAG: Record<EntryType, number> = { file: 1, dir: 2, symlink: 4 };

/** Most rows the device accepts in a Manifest.db it reads. */
export const MAX_MANIFEST_ROWS = 2_000_000;

export interface ManifestRow {
  fileId: string;
  domain: string;
  relativePath: string;
  flags: number;
  file: MbFileRecord;
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

/** Writes a new Manifest.db at `file` (which must not exist yet). */
export function writeManifestDb(file: string, rows: Iterable<Omit<ManifestRow, 'fileId'>>): number {
  const db = new Database(file);
  let n = 0;
  try {
    db.pragma('journal_mode = DELETE');
    db.exec(SCHEMA);
    const ins = db.prepare(
      'INSERT INTO Files (fileID, domain, relativePath, flags, file) VALUES (?, ?, ?, ?, ?)',
    );
    db.transaction(() => {
      for (const r of rows) {
        ins.run(
          fileIdFor(r.domain, r.relativePath),
          r.domain,
          r.relativePath,
          r.flags,
          encodeMbFile(r.file),
        );
        n++;
      }
    })();
  } finally {
    db.close();
  }
  return n;
}

function bad(message: string): MooringError {
  return new MooringError('MALFORMED', `Manifest.db: ${message}`);
}

/**
 * Reads and validates a Manifest.db. Throws MALFORMED / LIMIT on anything a device would refuse:
 * not SQLite, no Files table, too many rows, a fileID that is not SHA-1(domain-relativePath), an
 * unsafe path, unknown flags, an MBFile that does not decode or whose Mode disagrees with flags.
 */
export function readManifestDb(file: string, maxRows = MAX_MANIFEST_ROWS): ManifestRow[] {
  let db: Database.Database;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
  } catch (cause) {
    throw new MooringError(
      'MALFORMED',
      `Manifest.db cannot be opened: ${(cause as Error).message}`,
      { cause },
    );
  }
  try {
    let count: number;
    try {
      const r = db.prepare('SELECT count(*) AS n FROM Files').get() as { n: number };
      count = r.n;
    } catch (cause) {
      throw new MooringError(
        'MALFORMED',
        `Manifest.db has no readable Files table: ${(cause as Error).message}`,
        {
          cause,
        },
      );
    }
    if (count > maxRows) {
      throw new MooringError('LIMIT', `Manifest.db lists ${count} files, more than ${maxRows}`);
    }
    const out: ManifestRow[] = [];
    const seen = new Set<string>();
    const stmt = db.prepare('SELECT fileID, domain, relativePath, flags, file FROM Files');
    try {
      for (const raw of stmt.iterate() as Iterable<Record<string, unknown>>) {
        if (out.length >= maxRows)
          throw new MooringError('LIMIT', `Manifest.db lists more than ${maxRows} files`);
        out.push(validateRow(raw, seen));
      }
    } catch (cause) {
      if (cause instanceof MooringError) throw cause;
      throw new MooringError(
        'MALFORMED',
        `Manifest.db cannot be read: ${(cause as Error).message}`,
        { cause },
      );
    }
    return out;
  } finally {
    db.close();
  }
}

function validateRow(raw: Record<string, unknown>, seen: Set<string>): ManifestRow {
  const { fileID, domain, relativePath, flags, file } = raw;
  if (
    typeof fileID !== 'string' ||
    typeof domain !== 'string' ||
    typeof relativePath !== 'string'
  ) {
    throw bad('a row has a non-text fileID, domain or relativePath');
  }
  const where = `${domain}/${relativePath}`.slice(0, 200);
  const problem = pathProblem(domain, relativePath);
  if (problem) throw bad(`unsafe path ${JSON.stringify(where)}: ${problem}`);
  if (fileID !== fileIdFor(domain, relativePath))
    throw bad(`fileID of ${JSON.stringify(where)} is not SHA-1(domain-relativePath)`);
  if (seen.has(fileID)) throw bad(`duplicate fileID ${fileID}`);
  seen.add(fileID);
  const flagNum = typeof flags === 'bigint' ? Number(flags) : flags;
  if (typeof flagNum !== 'number') throw bad(`flags of ${JSON.stringify(where)} is not an integer`);
  const type = entryTypeForFlags(flagNum);
  if (!type) throw bad(`flags ${flagNum} of ${JSON.stringify(where)} is not 1, 2 or 4`);
  if (!Buffer.isBuffer(file)) throw bad(`file column of ${JSON.stringify(where)} is not a blob`);
  if (file.length > MAX_MBFILE_BYTES)
    throw new MooringError('LIMIT', `MBFile of ${JSON.stringify(where)} is too large`);
  const rec = decodeMbFile(file);
  if (rec.relativePath !== relativePath)
    throw bad(`MBFile RelativePath of ${JSON.stringify(where)} differs from the row`);
  const typeBits = rec.mode & S_IFMT;
  const wanted = type === 'file' ? S_IFREG : type === 'dir' ? S_IFDIR : S_IFLNK;
  if (typeBits !== 0 && typeBits !== wanted)
    throw bad(`Mode of ${JSON.stringify(where)} disagrees with flags`);
  if (type === 'symlink' && rec.target === undefined)
    throw bad(`symlink ${JSON.stringify(where)} has no Target`);
  return { fileId: fileID, domain, relativePath, flags: flagNum, file: rec };
}
