/** Schema versions: a new file, a v1 fixture, forward migrations, refusals. Real SQLite files. */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { statSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { openHistory } from '../../src/history';
import { APPLICATION_ID, MIGRATIONS, migrate, SCHEMA_VERSION } from '../../src/history/migrations';
import { isMooringError } from '../../src/util/errors';
import { sha256File, tempDirs, UDID_A } from './fixture';

const { tmp, cleanup } = tempDirs('mooring-history-mig-');
after(cleanup);

const pragma = (db: Database.Database, p: string): unknown => db.pragma(p, { simple: true });

/** A database at schema v1 with one of everything, written with raw SQL as v1 knew it. */
function v1Fixture(file: string): void {
  const db = new Database(file);
  assert.equal(migrate(db, file, MIGRATIONS.slice(0, 1)), 0);
  db.exec(`
    INSERT INTO devices (udid, name, first_seen, last_success) VALUES ('${UDID_A}', 'Ann''s iPhone', 1000, 5000);
    INSERT INTO attempts (id, udid, started_at, ended_at, trigger, transport, outcome, reason_code, bytes, files, duration_ms)
      VALUES (7, '${UDID_A}', 4000, 5000, 'schedule', 'wifi', 'success', 'BACKUP_SUCCEEDED', 123, 4, 1000);
    INSERT INTO notifications (id, at, udid, kind, severity, reason_code, message, attempt_id)
      VALUES (3, 5000, '${UDID_A}', 'backup', 'info', 'BACKUP_SUCCEEDED', 'Backup finished', 7);
    INSERT INTO settings (scope, key, value, updated_at) VALUES ('global', 'interval', '{"hours":24}', 1);
  `);
  db.close();
}

function expectError(fn: () => unknown, detail: string, ...fragments: (string | RegExp)[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(isMooringError(e), String(e));
    assert.equal(e.detail, detail);
    for (const f of fragments) {
      if (typeof f === 'string')
        assert.ok(e.message.includes(f), `${e.message} should mention ${f}`);
      else assert.match(e.message, f);
    }
    return true;
  });
}

test('a new file is created 0600 in a 0700 folder, in WAL mode, at the latest schema', () => {
  const file = path.join(tmp(), 'agent', 'history.db');
  const h = openHistory(file);
  assert.equal(h.migratedFrom, 0);
  assert.equal(h.file, file);
  h.upsertDevice({ udid: UDID_A });
  assert.equal(statSync(file).mode & 0o777, 0o600);
  assert.equal(statSync(`${file}-wal`).mode & 0o777, 0o600);
  assert.equal(statSync(path.dirname(file)).mode & 0o777, 0o700);
  const raw = new Database(file, { readonly: true });
  assert.equal(pragma(raw, 'user_version'), SCHEMA_VERSION);
  assert.equal(pragma(raw, 'application_id'), APPLICATION_ID);
  assert.equal(pragma(raw, 'journal_mode'), 'wal');
  const tables = (
    raw.prepare(`SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name`).all() as {
      name: string;
    }[]
  ).map((r) => r.name);
  assert.deepEqual(tables, ['attempts', 'devices', 'notifications', 'settings']);
  raw.close();
  h.close();
  const again = openHistory(file);
  assert.equal(again.migratedFrom, SCHEMA_VERSION);
  assert.equal(again.listDevices().length, 1);
  again.close();
});

test('a v1 database opens with its rows intact', () => {
  const file = path.join(tmp(), 'history.db');
  v1Fixture(file);
  const h = openHistory(file);
  assert.equal(h.migratedFrom, 1);
  assert.equal(h.getDevice(UDID_A)?.name, "Ann's iPhone");
  assert.equal(h.lastSuccess(UDID_A)?.bytes, 123);
  assert.equal(h.listHistory({ udid: UDID_A }).items[0]?.attemptId, 7);
  assert.deepEqual(h.getSetting('global', 'interval'), { hours: 24 });
  h.close();
});

test('a later migration runs in order, with foreign keys off so a table rebuild keeps child rows', () => {
  const file = path.join(tmp(), 'history.db');
  v1Fixture(file);
  // SQLite's 12-step rebuild of the parent table: with enforcement on, DROP TABLE devices would
  // cascade into attempts and notifications.
  const v2 = `
    CREATE TABLE devices_new (udid TEXT PRIMARY KEY NOT NULL, name TEXT, product_type TEXT, ios_version TEXT,
      wifi_mac TEXT, paired_at INTEGER, first_seen INTEGER NOT NULL, last_seen INTEGER,
      last_transport TEXT CHECK (last_transport IN ('usb', 'wifi')), last_contact INTEGER, last_success INTEGER,
      nickname TEXT) STRICT;
    INSERT INTO devices_new (udid, name, product_type, ios_version, wifi_mac, paired_at, first_seen, last_seen,
      last_transport, last_contact, last_success)
      SELECT udid, name, product_type, ios_version, wifi_mac, paired_at, first_seen, last_seen, last_transport,
      last_contact, last_success FROM devices;
    DROP TABLE devices;
    ALTER TABLE devices_new RENAME TO devices;
    UPDATE devices SET nickname = 'Ann';
  `;
  const h = openHistory(file, { migrations: [...MIGRATIONS, v2] });
  assert.equal(h.migratedFrom, 1);
  assert.equal(h.lastSuccess(UDID_A)?.id, 7, 'the attempt survived the rebuild');
  assert.equal(h.listHistory().items.length, 1, 'the notification survived the rebuild');
  h.close();
  const raw = new Database(file, { readonly: true });
  assert.equal(pragma(raw, 'user_version'), 2);
  assert.deepEqual(raw.prepare('SELECT nickname FROM devices').get(), { nickname: 'Ann' });
  assert.deepEqual(raw.pragma('foreign_key_check'), []);
  raw.close();
  // The real code, which knows only v1, now refuses the file instead of misreading it.
  expectError(
    () => openHistory(file),
    'HISTORY_TOO_NEW',
    file,
    'schema version 2',
    'knows up to 1',
    'Update Mooring',
  );
});

test('a migration that fails, or would leave a dangling reference, changes nothing', () => {
  const file = path.join(tmp(), 'history.db');
  v1Fixture(file);
  const failing = `CREATE TABLE extra (a INTEGER); INSERT INTO no_such_table VALUES (1);`;
  expectError(
    () => openHistory(file, { migrations: [...MIGRATIONS, failing] }),
    'HISTORY_MIGRATION',
    file,
    'from schema version 1 to 2',
    'no such table',
  );
  const dangling = `CREATE TABLE extra (a INTEGER);
    INSERT INTO attempts (udid, started_at, trigger, transport) VALUES ('NOT-A-DEVICE', 1, 'manual', 'usb');`;
  expectError(
    () => openHistory(file, { migrations: [...MIGRATIONS, dangling] }),
    'HISTORY_MIGRATION',
    'foreign key',
  );
  const raw = new Database(file, { readonly: true });
  assert.equal(pragma(raw, 'user_version'), 1);
  assert.equal(
    raw.prepare(`SELECT count(*) AS n FROM sqlite_schema WHERE name = 'extra'`).pluck().get(),
    0,
  );
  assert.equal(raw.prepare('SELECT count(*) FROM attempts').pluck().get(), 1);
  raw.close();
  // And the file still opens with the code's own migrations.
  const h = openHistory(file);
  assert.equal(h.listAttempts().items.length, 1);
  h.close();
});

test('a database from a newer Mooring, or another program, is refused and left untouched', () => {
  const dir = tmp();
  const newer = path.join(dir, 'newer.db');
  v1Fixture(newer);
  const w = new Database(newer);
  w.pragma(`user_version = ${SCHEMA_VERSION + 5}`);
  w.close();
  const before = sha256File(newer);
  expectError(() => openHistory(newer), 'HISTORY_TOO_NEW', newer, 'move the file aside');
  assert.equal(sha256File(newer), before);

  const other = path.join(dir, 'Manifest.db');
  const o = new Database(other);
  o.exec('CREATE TABLE Files (fileID TEXT PRIMARY KEY, domain TEXT)');
  o.close();
  const otherBefore = sha256File(other);
  expectError(() => openHistory(other), 'HISTORY_FOREIGN', other, "not Mooring's history");
  assert.equal(sha256File(other), otherBefore, 'not even switched to WAL');

  const tagged = path.join(dir, 'tagged.db');
  const t = new Database(tagged);
  t.pragma('application_id = 1234');
  t.close();
  expectError(() => openHistory(tagged), 'HISTORY_FOREIGN', tagged);
});

test('shipped migrations are never edited (append a new one instead)', () => {
  // Once a release has shipped v1, its text is part of every user's database: the digest must never
  // change again. (Before the first release, editing v1 and updating the digest here is fine.)
  const digests = MIGRATIONS.map((m) => createHash('sha256').update(m).digest('hex').slice(0, 16));
  assert.equal(SCHEMA_VERSION, MIGRATIONS.length);
  assert.deepEqual(digests.slice(0, 1), ['9043e4bdea3663fe']);
});
