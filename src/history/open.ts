/**
 * Opening the history database: the file is created 0600 (SQLite gives its -wal and -shm files the
 * same mode), checked, put in WAL mode and migrated. A file that is damaged, not SQLite, someone
 * else's database, or newer than this code is refused with a message naming the file and what to do;
 * it is never recreated or written over: it holds the user's history.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { isMooringError, MooringError } from '../util/errors';
import { History } from './history';
import { APPLICATION_ID, checkNotNewer, MIGRATIONS, migrate } from './migrations';

export interface OpenHistoryOptions {
  /** Where "now" comes from for calls that do not pass a time. Default Date.now. */
  clock?: () => number;
  /**
   * 'quick' (default) runs PRAGMA quick_check before anything is written, so damage is reported
   * at start-up instead of in the middle of a backup; 'none' skips it.
   */
  check?: 'quick' | 'none';
  /** How long a statement waits for another connection's lock. Default 5000 ms. */
  busyTimeoutMs?: number;
  /** Tests only: another migration list. */
  migrations?: readonly string[];
}

const SQLITE_HEADER = Buffer.from('SQLite format 3\0', 'latin1');
const MIN_PAGE_BYTES = 512;
/** The WAL is truncated back to this after a checkpoint, so one big batch does not keep it large. */
const JOURNAL_SIZE_LIMIT = 4 * 1024 * 1024;

function damaged(file: string, why: string, cause?: unknown): MooringError {
  const base = path.basename(file);
  return new MooringError(
    'IO',
    `The history database ${file} is damaged (${why.replace(/\s+/g, ' ').trim()}). Mooring will not write over it: move it aside ` +
      `(for example rename it to ${base}.damaged, with any ${base}-wal and ${base}-shm next to it) ` +
      'and start Mooring again to begin a new history.',
    { detail: 'HISTORY_DAMAGED', cause },
  );
}

function foreign(file: string): MooringError {
  return new MooringError(
    'USAGE',
    `${file} is an SQLite database, but not Mooring's history. Choose another file, or move this one aside.`,
    { detail: 'HISTORY_FOREIGN' },
  );
}

/** Refuses, before SQLite opens it, a path that is not a regular file or not SQLite at all. */
function prepareFile(file: string): void {
  let st: fs.Stats | undefined;
  try {
    st = fs.statSync(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new MooringError('IO', `Cannot read ${file}: ${(e as Error).message}`, { cause: e });
    }
  }
  if (st === undefined) {
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    try {
      fs.closeSync(fs.openSync(file, 'wx', 0o600));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new MooringError('IO', `Cannot create ${file}: ${(e as Error).message}`, {
          cause: e,
        });
      }
    }
    return;
  }
  if (!st.isFile()) {
    throw new MooringError(
      'USAGE',
      `${file} is not a file; choose a file path for the history database`,
    );
  }
  if (st.size > 0) {
    const head = Buffer.alloc(SQLITE_HEADER.length);
    const fd = fs.openSync(file, 'r');
    let n: number;
    try {
      n = fs.readSync(fd, head, 0, head.length, 0);
    } finally {
      fs.closeSync(fd);
    }
    if (n < head.length || !head.equals(SQLITE_HEADER)) {
      throw damaged(file, 'it is not an SQLite database');
    }
    // A database is at least one page; a shorter file was cut off.
    if (st.size < MIN_PAGE_BYTES) throw damaged(file, `it is only ${st.size} bytes long`);
  }
  try {
    fs.chmodSync(file, 0o600);
  } catch {
    // not ours to change (another owner): SQLite will still say whether it can open it
  }
}

/** SQLite's connection to an existing file; its refusal as a MooringError naming the file. */
function connect(abs: string, options: Database.Options): Database.Database {
  try {
    return new Database(abs, options);
  } catch (e) {
    throw new MooringError(
      'IO',
      `Cannot open the history database ${abs}: ${(e as Error).message}`,
      {
        cause: e,
      },
    );
  }
}

/** Opens (creating if needed) and migrates the history database at `file`. */
export function openHistory(file: string, opts: OpenHistoryOptions = {}): History {
  const abs = path.resolve(file);
  const migrations = opts.migrations ?? MIGRATIONS;
  prepareFile(abs);
  const db = connect(abs, { fileMustExist: true, timeout: opts.busyTimeoutMs ?? 5000 });
  try {
    // Look before writing anything: a damaged, foreign or newer file is left exactly as it was.
    if (opts.check !== 'none') {
      const r = db.pragma('quick_check(1)', { simple: true });
      if (r !== 'ok') throw damaged(abs, `integrity check: ${String(r)}`);
    }
    const appId = db.pragma('application_id', { simple: true }) as number;
    const version = db.pragma('user_version', { simple: true }) as number;
    if (appId !== APPLICATION_ID) {
      const objects = (db.prepare('SELECT count(*) AS n FROM sqlite_schema').get() as { n: number })
        .n;
      if (appId !== 0 || version !== 0 || objects > 0) throw foreign(abs);
    }
    checkNotNewer(abs, version, migrations.length);
    const mode = db.pragma('journal_mode = WAL', { simple: true });
    if (mode !== 'wal') throw new Error(`journal_mode is ${String(mode)}, not wal`);
    db.pragma('synchronous = NORMAL');
    db.pragma(`journal_size_limit = ${JOURNAL_SIZE_LIMIT}`);
    db.pragma('foreign_keys = ON');
    const from = migrate(db, abs, migrations);
    return new History(db, abs, from, opts.clock ?? Date.now);
  } catch (e) {
    db.close();
    if (isMooringError(e)) throw e;
    const code = (e as { code?: string }).code ?? '';
    if (code.startsWith('SQLITE_NOTADB') || code.startsWith('SQLITE_CORRUPT')) {
      throw damaged(abs, (e as Error).message, e);
    }
    if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
      throw new MooringError(
        'IO',
        `The history database ${abs} is locked by another process (is another Mooring agent running?)`,
        { cause: e },
      );
    }
    throw new MooringError(
      'IO',
      `Cannot open the history database ${abs}: ${(e as Error).message}`,
      {
        cause: e,
      },
    );
  }
}

/**
 * Opens an existing history read-only, for a process other than the agent (the command line
 * reading its settings): nothing is created, migrated or written, so a running agent, even of
 * another version, is never disturbed. It must be Mooring's, at the schema version this code
 * writes; otherwise a MooringError says why, and the caller decides without it.
 */
export function openHistoryReadOnly(file: string): History {
  const abs = path.resolve(file);
  const db = connect(abs, { readonly: true, fileMustExist: true, timeout: 5000 });
  try {
    const appId = db.pragma('application_id', { simple: true }) as number;
    const version = db.pragma('user_version', { simple: true }) as number;
    if (appId !== APPLICATION_ID) throw foreign(abs);
    checkNotNewer(abs, version, MIGRATIONS.length);
    if (version !== MIGRATIONS.length) {
      throw new MooringError(
        'USAGE',
        `The history database ${abs} is at schema version ${version}; start the agent of this version once to bring it to ${MIGRATIONS.length}`,
      );
    }
    return new History(db, abs, version, Date.now);
  } catch (e) {
    db.close();
    if (isMooringError(e)) throw e;
    throw damaged(abs, (e as Error).message, e);
  }
}
