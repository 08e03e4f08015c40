/** The repository API on a real SQLite file: devices, attempts, notifications, settings, summary. */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import Database from 'better-sqlite3';
import {
  backupSucceeded,
  deviceError,
  GLOBAL_SCOPE,
  MAX_FIELD_CHARS,
  MAX_SETTING_BYTES,
  notDue,
  openHistory,
  passcodeNotEntered,
  type History,
  type Notice,
} from '../../src/history';
import { isMooringError } from '../../src/util/errors';
import { CONTROL_CHARS, tempDirs, UDID_A, UDID_B } from './fixture';

const { tmp, cleanup } = tempDirs('mooring-history-');
after(cleanup);

const T0 = Date.UTC(2025, 2, 4, 1, 0);

/** A history whose clock the test moves by hand. */
function fresh(): { h: History; file: string; clock: { now: number } } {
  const clock = { now: T0 };
  const file = path.join(tmp(), 'history.db');
  return { h: openHistory(file, { clock: () => clock.now }), file, clock };
}

function usageError(fn: () => unknown, re: RegExp): void {
  assert.throws(fn, (e: unknown) => isMooringError(e, 'USAGE') && re.test(e.message));
}

test('devices: upsert keeps facts not given, presence and contact move forward', () => {
  const { h, clock } = fresh();
  const d = h.upsertDevice({
    udid: UDID_A,
    name: 'Ann’s iPhone',
    productType: 'iPhone14,2',
    iosVersion: '17.5',
  });
  assert.deepEqual(d, {
    udid: UDID_A,
    name: 'Ann’s iPhone',
    productType: 'iPhone14,2',
    iosVersion: '17.5',
    wifiMac: null,
    pairedAt: null,
    firstSeen: T0,
    lastSeen: null,
    lastTransport: null,
    lastContact: null,
    lastSuccess: null,
  });
  clock.now = T0 + 1000;
  const d2 = h.upsertDevice({
    udid: UDID_A,
    iosVersion: '18.0',
    wifiMac: 'aa:bb:cc:dd:ee:ff',
    pairedAt: T0,
  });
  assert.equal(d2.name, 'Ann’s iPhone', 'a fact left out keeps its value');
  assert.equal(d2.iosVersion, '18.0');
  assert.equal(d2.firstSeen, T0, 'first seen never moves');
  assert.equal(d2.pairedAt, T0);

  h.markSeen(UDID_A, 'wifi', T0 + 2000);
  h.markContact(UDID_A, T0 + 3000);
  assert.deepEqual(
    (({ lastSeen, lastTransport, lastContact }) => ({ lastSeen, lastTransport, lastContact }))(
      h.getDevice(UDID_A)!,
    ),
    { lastSeen: T0 + 3000, lastTransport: 'wifi', lastContact: T0 + 3000 },
  );
  // A device first met through discovery is recorded with what is known.
  h.markSeen(UDID_B, 'usb', T0 + 5000);
  assert.equal(h.getDevice(UDID_B)?.firstSeen, T0 + 5000);
  assert.deepEqual(
    h.listDevices().map((x) => x.udid),
    [UDID_A, UDID_B],
    'named devices first, then by UDID',
  );
  // Device-supplied text is bounded and has no control characters.
  const long = h.upsertDevice({ udid: UDID_B, name: `Evil\u0000\u001b[2J${'x'.repeat(5000)}` });
  assert.equal(long.name!.length, MAX_FIELD_CHARS);
  assert.doesNotMatch(long.name!, CONTROL_CHARS);
  usageError(() => h.markSeen('../../etc', 'usb'), /Not a device UDID/);
  usageError(() => h.markSeen(UDID_A, 'bluetooth' as 'usb'), /transport must be one of/);
  usageError(() => h.markSeen(UDID_A, 'usb', 1.5), /epoch milliseconds/);
  h.close();
});

test('attempts: start, finish with a notice in one transaction, lastSuccess, one running per device', () => {
  const { h, clock } = fresh();
  h.upsertDevice({ udid: UDID_A });
  h.upsertDevice({ udid: UDID_B });
  usageError(
    () => h.startAttempt({ udid: 'AAAA', trigger: 'manual', transport: 'usb' }),
    /Unknown device AAAA/,
  );

  const id = h.startAttempt({ udid: UDID_A, trigger: 'schedule', transport: 'wifi' });
  assert.equal(h.getAttempt(id)?.outcome, 'running');
  usageError(
    () => h.startAttempt({ udid: UDID_A, trigger: 'manual', transport: 'usb' }),
    /already running/,
  );
  const other = h.startAttempt({ udid: UDID_B, trigger: 'manual', transport: 'usb' });
  assert.notEqual(other, id, 'another device may run at the same time');

  clock.now = T0 + 200_000;
  const done = h.finishAttempt(id, {
    outcome: 'success',
    bytes: 1_250_000_000,
    files: 1234,
    snapshotId: '20250304-010000',
    notice: backupSucceeded({ bytes: 1_250_000_000, durationMs: 200_000, filesChanged: 1234 }),
  });
  assert.deepEqual(done, {
    id,
    udid: UDID_A,
    startedAt: T0,
    endedAt: T0 + 200_000,
    trigger: 'schedule',
    transport: 'wifi',
    outcome: 'success',
    reasonCode: 'BACKUP_SUCCEEDED',
    bytes: 1_250_000_000,
    files: 1234,
    durationMs: 200_000,
    snapshotId: '20250304-010000',
    deviceErrorCode: null,
    message: 'Backup finished: 1.3 GB in 3 min 20 s, 1,234 files changed',
  });
  assert.equal(h.getDevice(UDID_A)?.lastSuccess, T0 + 200_000);
  assert.equal(h.getDevice(UDID_A)?.lastContact, T0 + 200_000);
  const [n] = h.listHistory({ udid: UDID_A }).items;
  assert.equal(n?.attemptId, id);
  assert.equal(n?.at, T0 + 200_000);
  assert.equal(n?.reasonCode, 'BACKUP_SUCCEEDED');
  usageError(() => h.finishAttempt(id, { outcome: 'failure' }), /already ended \(success\)/);
  usageError(() => h.finishAttempt(9999, { outcome: 'failure' }), /No backup attempt 9999/);

  // A later failure does not move lastSuccess; a new attempt may start once the first ended.
  const id2 = h.startAttempt({
    udid: UDID_A,
    trigger: 'retry',
    transport: 'usb',
    startedAt: T0 + 300_000,
  });
  h.finishAttempt(id2, {
    outcome: 'failure',
    deviceErrorCode: 104,
    endedAt: T0 + 301_000,
    notice: deviceError({ code: 104 }),
  });
  assert.equal(h.lastSuccess(UDID_A)?.id, id);
  assert.equal(h.getDevice(UDID_A)?.lastSuccess, T0 + 200_000);
  assert.equal(h.getAttempt(id2)?.deviceErrorCode, 104);
  assert.equal(h.getAttempt(id2)?.reasonCode, 'DEVICE_ERROR');
  assert.equal(h.lastSuccess(UDID_B), undefined);
  assert.deepEqual(
    h.listAttempts({ udid: UDID_A }).items.map((a) => a.id),
    [id2, id],
  );
  assert.deepEqual(
    h.listAttempts({ outcome: 'running' }).items.map((a) => a.id),
    [other],
  );

  // A notice that fails validation rolls back the whole finish: the attempt is still running.
  const bad = {
    ...backupSucceeded({ bytes: 1, durationMs: 1, filesChanged: 1 }),
    reasonCode: 'NOPE',
  } as unknown as Notice;
  usageError(
    () => h.finishAttempt(other, { outcome: 'success', notice: bad }),
    /Unknown reason code NOPE/,
  );
  assert.equal(h.getAttempt(other)?.outcome, 'running');
  assert.equal(h.getDevice(UDID_B)?.lastSuccess, null);
  h.close();
});

test('after a crash, running attempts become interrupted, each with a notification', () => {
  const { h, file } = fresh();
  h.upsertDevice({ udid: UDID_A });
  h.upsertDevice({ udid: UDID_B });
  const a = h.startAttempt({ udid: UDID_A, trigger: 'schedule', transport: 'wifi', startedAt: T0 });
  const b = h.startAttempt({
    udid: UDID_B,
    trigger: 'manual',
    transport: 'usb',
    startedAt: T0 + 10,
  });
  h.close(); // as if the process died here

  const h2 = openHistory(file);
  const changed = h2.markRunningAttemptsInterrupted(T0 + 60_000);
  assert.deepEqual(
    changed.map((x) => [x.id, x.outcome, x.reasonCode, x.endedAt, x.durationMs]),
    [
      [a, 'interrupted', 'INTERRUPTED', T0 + 60_000, 60_000],
      [b, 'interrupted', 'INTERRUPTED', T0 + 60_000, 59_990],
    ],
  );
  const notes = h2.listHistory({ kind: 'backup' }).items;
  assert.deepEqual(
    notes.map((n) => [n.udid, n.attemptId, n.reasonCode, n.severity]),
    [
      [UDID_B, b, 'INTERRUPTED', 'warning'],
      [UDID_A, a, 'INTERRUPTED', 'warning'],
    ],
  );
  assert.deepEqual(h2.markRunningAttemptsInterrupted(T0 + 70_000), [], 'nothing left running');
  // A clock that went backwards never yields a negative duration.
  const c = h2.startAttempt({
    udid: UDID_A,
    trigger: 'manual',
    transport: 'usb',
    startedAt: T0 + 100_000,
  });
  const [ci] = h2.markRunningAttemptsInterrupted(T0);
  assert.equal(ci?.id, c);
  assert.equal(ci?.durationMs, 0);
  h2.close();
});

test('foreign keys and checks are enforced by the database', () => {
  const { h, file } = fresh();
  h.upsertDevice({ udid: UDID_A });
  const n = notDue({ nextDueAt: T0 + 1000, now: T0 });
  usageError(() => h.addNotification({ ...n, udid: UDID_B }), /FOREIGN KEY constraint failed/);
  usageError(
    () => h.addNotification({ ...n, udid: UDID_A, attemptId: 4242 }),
    /FOREIGN KEY constraint failed/,
  );
  assert.equal(h.listHistory().items.length, 0);
  h.close();

  // The invariants hold for any writer that enables foreign keys, not only through this API.
  const raw = new Database(file);
  raw.pragma('foreign_keys = ON');
  const insert = (sql: string): void => void raw.exec(sql);
  assert.throws(
    () =>
      insert(
        `INSERT INTO attempts (udid, started_at, trigger, transport) VALUES ('${UDID_B}', 1, 'manual', 'usb')`,
      ),
    /FOREIGN KEY/,
  );
  insert(
    `INSERT INTO attempts (udid, started_at, trigger, transport) VALUES ('${UDID_A}', 1, 'manual', 'usb')`,
  );
  assert.throws(
    () =>
      insert(
        `INSERT INTO attempts (udid, started_at, trigger, transport) VALUES ('${UDID_A}', 2, 'manual', 'usb')`,
      ),
    /UNIQUE constraint failed/,
    'one running attempt per device',
  );
  assert.throws(
    () =>
      insert(
        `INSERT INTO attempts (udid, started_at, trigger, transport, outcome) VALUES ('${UDID_A}', 1, 'manual', 'usb', 'success')`,
      ),
    /CHECK constraint failed/,
    'an ended attempt has an end time',
  );
  assert.throws(
    () =>
      insert(
        `INSERT INTO notifications (at, kind, severity, reason_code, message) VALUES (1, 'skip', 'fatal', 'NOT_DUE', 'x')`,
      ),
    /CHECK constraint failed/,
  );
  assert.throws(
    () => insert(`INSERT INTO settings VALUES ('global', 'k', '{not json', 1)`),
    /CHECK constraint failed/,
  );
  assert.throws(
    () => insert(`UPDATE devices SET first_seen = 'yesterday'`),
    /cannot store TEXT value in INTEGER column/,
  );
  raw.close();
});

test('notifications: params round-trip, read flags, severity filter', () => {
  const { h, clock } = fresh();
  h.upsertDevice({ udid: UDID_A });
  h.upsertDevice({ udid: UDID_B });
  const p = passcodeNotEntered({ waitedMs: 120_000, retryAt: T0 + 3_600_000, now: T0 });
  const row = h.addNotification({ ...p, udid: UDID_A });
  assert.deepEqual(row, {
    id: row.id,
    at: T0,
    udid: UDID_A,
    kind: 'backup',
    severity: 'warning',
    reasonCode: 'PASSCODE_NOT_ENTERED',
    message: p.message,
    fixHint: p.fixHint,
    params: { waitedMs: 120_000, retryAt: T0 + 3_600_000, now: T0 },
    attemptId: null,
    read: false,
  });
  clock.now += 1;
  const e = h.addNotification({ ...deviceError({ code: 205 }), udid: UDID_B });
  const g = h.addNotification(notDue({ nextDueAt: T0 + 5000, now: T0 })); // no device: about the agent
  assert.equal(g.udid, null);
  assert.deepEqual(
    h.listHistory({ severity: 'error' }).items.map((x) => x.id),
    [e.id],
  );
  assert.deepEqual(h.summary().unread, { info: 1, warning: 1, error: 1, total: 3 });
  // By id: only those listed, and of them only the scope's (e is UDID_B's, not UDID_A's).
  assert.equal(h.markRead({ udid: UDID_A, ids: [e.id, g.id] }), 0);
  assert.equal(h.markRead({ ids: [] }), 0);
  assert.throws(
    () => h.markRead({ ids: Array.from({ length: 1001 }, (_, i) => i + 1) }),
    /at most 1000 ids/,
  );
  assert.deepEqual(h.summary().unread, { info: 1, warning: 1, error: 1, total: 3 });
  assert.equal(h.markRead({ udid: UDID_A }), 1);
  assert.equal(h.getNotification(row.id)?.read, true);
  assert.equal(h.markRead({ ids: [e.id, e.id, 999_999] }), 1);
  assert.equal(h.getNotification(e.id)?.read, true);
  assert.deepEqual(h.summary().unread, { info: 1, warning: 0, error: 0, total: 1 });
  assert.equal(h.markRead(), 1);
  assert.equal(h.markRead(), 0);
  // Oversized params are dropped, the message kept.
  const big = h.addNotification({
    ...notDue({ nextDueAt: T0, now: T0 }),
    params: { blob: 'x'.repeat(100_000) },
  });
  assert.equal(big.params, null);
  assert.match(big.message, /^Not due yet/);
  h.close();
});

test('settings: JSON values per scope, validated names, bounded size', () => {
  const { h, file } = fresh();
  assert.equal(h.getSetting(GLOBAL_SCOPE, 'window'), undefined);
  h.setSetting(GLOBAL_SCOPE, 'window', { start: '01:00', end: '06:00' });
  h.setSetting(GLOBAL_SCOPE, 'paused', false);
  h.setSetting(UDID_A, 'window', null);
  h.setSetting(GLOBAL_SCOPE, 'paused', true);
  assert.deepEqual(h.listSettings(GLOBAL_SCOPE), {
    paused: true,
    window: { start: '01:00', end: '06:00' },
  });
  assert.equal(h.getSetting(UDID_A, 'window'), null, 'null is a value, not absence');
  assert.equal(h.deleteSetting(UDID_A, 'window'), true);
  assert.equal(h.deleteSetting(UDID_A, 'window'), false);
  usageError(() => h.setSetting(GLOBAL_SCOPE, 'x', undefined), /not JSON/);
  usageError(() => h.setSetting(GLOBAL_SCOPE, 'x', () => 1), /not JSON/);
  usageError(() => h.setSetting(GLOBAL_SCOPE, 'bad key!', 1), /Not a setting name/);
  usageError(() => h.setSetting('../x', 'k', 1), /Not a device UDID/);
  usageError(() => h.setSetting(GLOBAL_SCOPE, 'big', 'x'.repeat(MAX_SETTING_BYTES)), /larger than/);
  h.close();
  const again = openHistory(file);
  assert.equal(again.getSetting(GLOBAL_SCOPE, 'paused'), true, 'settings survive a restart');
  again.close();
});

test('summary counts, batch is one transaction, a closed history refuses calls', () => {
  const { h } = fresh();
  h.upsertDevice({ udid: UDID_A });
  assert.throws(
    () =>
      h.batch(() => {
        h.addNotification(notDue({ nextDueAt: T0, now: T0 }));
        h.startAttempt({ udid: UDID_A, trigger: 'manual', transport: 'usb' });
        throw new Error('changed my mind');
      }),
    /changed my mind/,
  );
  assert.deepEqual(h.summary(), {
    devices: 1,
    attempts: { running: 0, success: 0, failure: 0, cancelled: 0, interrupted: 0 },
    notifications: 0,
    unread: { info: 0, warning: 0, error: 0, total: 0 },
  });
  h.batch(() => {
    for (const outcome of ['success', 'failure', 'failure', 'cancelled'] as const) {
      const id = h.startAttempt({ udid: UDID_A, trigger: 'schedule', transport: 'usb' });
      h.finishAttempt(id, { outcome });
    }
    h.startAttempt({ udid: UDID_A, trigger: 'manual', transport: 'wifi' });
  });
  assert.deepEqual(h.summary().attempts, {
    running: 1,
    success: 1,
    failure: 2,
    cancelled: 1,
    interrupted: 0,
  });
  h.close();
  h.close();
  assert.equal(h.isOpen, false);
  usageError(() => h.listDevices(), /is closed/);
  usageError(() => h.addNotification(notDue({ nextDueAt: T0, now: T0 })), /is closed/);
});
