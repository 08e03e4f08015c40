/**
 * The history database's schema, as an append-only list of forward migrations. Migration i (0-based)
 * takes the database from version i to i+1; the version lives in `PRAGMA user_version`, so it
 * changes in the same transaction as the tables. NEVER edit a migration that has shipped: a user's
 * database already went through it. Add a new one at the end instead.
 *
 * Migrations run with foreign-key enforcement off, so a table rebuild can follow SQLite's 12-step
 * procedure (https://www.sqlite.org/lang_altertable.html#otheralter) in plain SQL; each ends with
 * `PRAGMA foreign_key_check` inside its transaction, and any dangling reference rolls it back.
 *
 * Conventions: times are INTEGER epoch milliseconds (UTC); ids are INTEGER PRIMARY KEYs (the rowid),
 * which the queries also use as the newest-first order and the paging cursor.
 */
import type Database from 'better-sqlite3';
import { MooringError } from '../util/errors';

/** Written into the file header (`PRAGMA application_id`), so we know a database is ours: "Moor". */
export const APPLICATION_ID = 0x4d6f6f72;

export const MIGRATIONS: readonly string[] = [
  // v1: devices, attempts, notifications, settings.
  `
  CREATE TABLE devices (
    udid          TEXT PRIMARY KEY NOT NULL,
    name          TEXT,
    product_type  TEXT,
    ios_version   TEXT,
    wifi_mac      TEXT,
    paired_at     INTEGER,
    first_seen    INTEGER NOT NULL,
    last_seen     INTEGER,
    last_transport TEXT CHECK (last_transport IN ('usb', 'wifi')),
    last_contact  INTEGER,  -- last successful lockdown session
    last_success  INTEGER   -- end of the last successful backup
  ) STRICT;

  CREATE TABLE attempts (
    id            INTEGER PRIMARY KEY,
    udid          TEXT NOT NULL REFERENCES devices(udid) ON DELETE CASCADE,
    started_at    INTEGER NOT NULL,
    ended_at      INTEGER,
    trigger       TEXT NOT NULL CHECK (trigger IN ('schedule', 'manual', 'retry')),
    transport     TEXT NOT NULL CHECK (transport IN ('usb', 'wifi')),
    outcome       TEXT NOT NULL DEFAULT 'running'
                  CHECK (outcome IN ('running', 'success', 'failure', 'cancelled', 'interrupted')),
    reason_code   TEXT,
    bytes         INTEGER NOT NULL DEFAULT 0 CHECK (bytes >= 0),
    files         INTEGER NOT NULL DEFAULT 0 CHECK (files >= 0),
    duration_ms   INTEGER CHECK (duration_ms >= 0),
    snapshot_id   TEXT,
    device_error_code INTEGER,
    message       TEXT,
    CHECK ((outcome = 'running') = (ended_at IS NULL))
  ) STRICT;
  -- Newest first per device; lastSuccess; counts by outcome.
  CREATE INDEX attempts_by_device ON attempts (udid);
  CREATE INDEX attempts_by_device_outcome ON attempts (udid, outcome);
  CREATE INDEX attempts_by_outcome ON attempts (outcome);
  -- One backup per device at a time, enforced by the database itself.
  CREATE UNIQUE INDEX attempts_one_running ON attempts (udid) WHERE outcome = 'running';

  CREATE TABLE notifications (
    id            INTEGER PRIMARY KEY,
    at            INTEGER NOT NULL,
    udid          TEXT REFERENCES devices(udid) ON DELETE CASCADE,
    kind          TEXT NOT NULL,
    severity      TEXT NOT NULL CHECK (severity IN ('info', 'warning', 'error')),
    reason_code   TEXT NOT NULL,
    message       TEXT NOT NULL,
    fix_hint      TEXT,
    params        TEXT CHECK (params IS NULL OR json_valid(params)),
    attempt_id    INTEGER REFERENCES attempts(id) ON DELETE SET NULL,
    read          INTEGER NOT NULL DEFAULT 0 CHECK (read IN (0, 1))
  ) STRICT;
  -- Each index ends, implicitly, with the rowid: "filter = ? AND id < cursor ORDER BY id DESC"
  -- is one index range read, never a sort.
  CREATE INDEX notifications_by_device ON notifications (udid);
  CREATE INDEX notifications_by_severity ON notifications (severity);
  CREATE INDEX notifications_by_kind ON notifications (kind);
  CREATE INDEX notifications_by_device_severity ON notifications (udid, severity);
  CREATE INDEX notifications_by_device_kind ON notifications (udid, kind);
  CREATE INDEX notifications_by_severity_kind ON notifications (severity, kind);
  CREATE INDEX notifications_by_attempt ON notifications (attempt_id) WHERE attempt_id IS NOT NULL;
  CREATE INDEX notifications_unread ON notifications (severity) WHERE read = 0;

  CREATE TABLE settings (
    scope         TEXT NOT NULL,  -- 'global' or a device's UDID
    key           TEXT NOT NULL,
    value         TEXT NOT NULL CHECK (json_valid(value)),
    updated_at    INTEGER NOT NULL,
    PRIMARY KEY (scope, key)
  ) STRICT, WITHOUT ROWID;
  `,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

/** Refuses a database written by a newer Mooring: its tables may mean things this code does not know. */
export function checkNotNewer(file: string, version: number, known: number): void {
  if (version > known) {
    throw new MooringError(
      'USAGE',
      `The history database ${file} was written by a newer version of Mooring (schema version ${version}; this version knows up to ${known}). Update Mooring, or move the file aside to start a new history.`,
      { detail: 'HISTORY_TOO_NEW' },
    );
  }
}

/**
 * Brings `db` from its `user_version` up to `migrations.length`, one transaction per migration.
 * Refuses a database newer than the code. Returns the version it started from.
 */
export function migrate(
  db: Database.Database,
  file: string,
  migrations: readonly string[] = MIGRATIONS,
): number {
  const from = db.pragma('user_version', { simple: true }) as number;
  checkNotNewer(file, from, migrations.length);
  if (from === migrations.length) return from;
  db.pragma('foreign_keys = OFF');
  try {
    for (let v = from; v < migrations.length; v++) {
      const sql = migrations[v]!;
      const step = db.transaction(() => {
        db.exec(sql);
        const dangling = db.pragma('foreign_key_check') as unknown[];
        if (dangling.length > 0) {
          throw new Error(`${dangling.length} rows would break a foreign key`);
        }
        if (v === 0) db.pragma(`application_id = ${APPLICATION_ID}`);
        db.pragma(`user_version = ${v + 1}`);
      });
      try {
        step();
      } catch (e) {
        throw new MooringError(
          'IO',
          `Could not upgrade the history database ${file} from schema version ${v} to ${v + 1}: ${(e as Error).message}. Nothing was changed by this step; report this, and keep the file.`,
          { detail: 'HISTORY_MIGRATION', cause: e },
        );
      }
    }
  } finally {
    db.pragma('foreign_keys = ON');
  }
  return from;
}
