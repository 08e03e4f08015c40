/**
 * The repository over the history database: small synchronous calls (better-sqlite3 style), each
 * one transaction. Text that may come from a device (names, error descriptions) is bounded and
 * stripped of control characters before it is stored.
 *
 * Durability: the connection runs `synchronous = NORMAL`, which in WAL mode survives any crash of
 * this process (kill -9 included) and can lose, but never corrupt, the last commits on power loss
 * or an OS crash. Writes the user relies on afterwards (attempts, notifications, settings,
 * batches) commit with `synchronous = FULL` instead: the WAL is fsync'd before the call returns,
 * so a failure the user was told about, or a setting they saved, survives a power cut. Presence
 * updates (markSeen, markContact, upsertDevice), which may arrive many times an hour, stay NORMAL:
 * losing one costs nothing.
 */
import type Database from 'better-sqlite3';
import { MooringError } from '../util/errors';
import { interrupted, isReasonCode, SEVERITIES } from './reasons';
import type { JsonObject, JsonValue, NotificationKind, ReasonCode, Severity } from './reasons';
import {
  ATTEMPT_COLUMNS,
  attemptsQuery,
  historyQuery,
  MAX_PAGE_SIZE,
  NOTIFICATION_COLUMNS,
  pageSize,
  type BuiltQuery,
} from './queries';
import {
  ATTEMPT_OUTCOMES,
  GLOBAL_SCOPE,
  type AttemptOutcome,
  type AttemptQuery,
  type AttemptRow,
  type AttemptTrigger,
  type DeviceInfo,
  type DeviceRow,
  type FinishAttemptInput,
  type HistoryQuery,
  type HistorySummary,
  type MarkReadOptions,
  type NotificationInput,
  type NotificationRow,
  type Page,
  type SettingScope,
  type StartAttemptInput,
  type Transport,
} from './types';

/** Longest device name, model, version or MAC we keep. */
export const MAX_FIELD_CHARS = 256;
/** Longest message or fix hint we keep. */
export const MAX_MESSAGE_CHARS = 2000;
/** Largest `params` of a notification, as JSON; larger ones are dropped (the message stays). */
export const MAX_PARAMS_BYTES = 16 * 1024;
/** Largest setting value, as JSON. */
export const MAX_SETTING_BYTES = 64 * 1024;
const UDID_RE = /^[0-9A-Za-z][0-9A-Za-z-]{0,63}$/;
const KEY_RE = /^[A-Za-z0-9_.-]{1,100}$/;
const TRIGGERS: readonly AttemptTrigger[] = ['schedule', 'manual', 'retry'];
const TRANSPORTS: readonly Transport[] = ['usb', 'wifi'];

function usage(message: string): MooringError {
  return new MooringError('USAGE', message);
}

function checkUdid(udid: string): string {
  if (typeof udid !== 'string' || !UDID_RE.test(udid)) {
    throw usage(`Not a device UDID: ${JSON.stringify(String(udid).slice(0, 80))}`);
  }
  return udid;
}

function checkTime(ms: number, what: string): number {
  if (!Number.isSafeInteger(ms) || ms < 0)
    throw usage(`${what} must be epoch milliseconds, got ${ms}`);
  return ms;
}

function checkCount(n: number, what: string): number {
  if (!Number.isSafeInteger(n) || n < 0)
    throw usage(`${what} must be a whole number ≥ 0, got ${n}`);
  return n;
}

function checkOneOf<T extends string>(v: T, allowed: readonly T[], what: string): T {
  if (!allowed.includes(v))
    throw usage(`${what} must be one of ${allowed.join(', ')}, got ${String(v)}`);
  return v;
}

/** Control characters out, length bounded: text may come from the device. */
export function cleanText(s: string, max: number): string {
  // eslint-disable-next-line no-control-regex
  const t = s.replace(/[\u0000-\u0008\u000b-\u001f\u007f]/g, ' ');
  return t.length > max ? `${t.slice(0, max - 1)}…` : t;
}

function optText(s: string | undefined, max: number): string | null {
  return s === undefined ? null : cleanText(s, max);
}

interface DeviceDb {
  udid: string;
  name: string | null;
  product_type: string | null;
  ios_version: string | null;
  wifi_mac: string | null;
  paired_at: number | null;
  first_seen: number;
  last_seen: number | null;
  last_transport: Transport | null;
  last_contact: number | null;
  last_success: number | null;
}

interface AttemptDb {
  id: number;
  udid: string;
  started_at: number;
  ended_at: number | null;
  trigger: AttemptTrigger;
  transport: Transport;
  outcome: AttemptOutcome;
  reason_code: string | null;
  bytes: number;
  files: number;
  duration_ms: number | null;
  snapshot_id: string | null;
  device_error_code: number | null;
  message: string | null;
}

interface NotificationDb {
  id: number;
  at: number;
  udid: string | null;
  kind: string;
  severity: Severity;
  reason_code: string;
  message: string;
  fix_hint: string | null;
  params: string | null;
  attempt_id: number | null;
  read: number;
}

const toDevice = (r: DeviceDb): DeviceRow => ({
  udid: r.udid,
  name: r.name,
  productType: r.product_type,
  iosVersion: r.ios_version,
  wifiMac: r.wifi_mac,
  pairedAt: r.paired_at,
  firstSeen: r.first_seen,
  lastSeen: r.last_seen,
  lastTransport: r.last_transport,
  lastContact: r.last_contact,
  lastSuccess: r.last_success,
});

const toAttempt = (r: AttemptDb): AttemptRow => ({
  id: r.id,
  udid: r.udid,
  startedAt: r.started_at,
  endedAt: r.ended_at,
  trigger: r.trigger,
  transport: r.transport,
  outcome: r.outcome,
  reasonCode: r.reason_code as ReasonCode | null,
  bytes: r.bytes,
  files: r.files,
  durationMs: r.duration_ms,
  snapshotId: r.snapshot_id,
  deviceErrorCode: r.device_error_code,
  message: r.message,
});

const toNotification = (r: NotificationDb): NotificationRow => ({
  id: r.id,
  at: r.at,
  udid: r.udid,
  kind: r.kind as NotificationKind,
  severity: r.severity,
  reasonCode: r.reason_code as ReasonCode,
  message: r.message,
  fixHint: r.fix_hint,
  params: r.params === null ? null : (JSON.parse(r.params) as JsonObject),
  attemptId: r.attempt_id,
  read: r.read === 1,
});

export class History {
  private readonly stmts = new Map<string, Database.Statement>();
  private closed = false;

  /** Use openHistory(); this constructor takes a database that is already open and migrated. */
  constructor(
    private readonly db: Database.Database,
    /** Absolute path of the database file. */
    readonly file: string,
    /** The schema version the file had before openHistory migrated it (0: new file). */
    readonly migratedFrom: number,
    private readonly clock: () => number,
  ) {}

  // ---- devices ----

  /** Records a device or updates the facts given; returns the stored row. */
  upsertDevice(info: DeviceInfo, at: number = this.clock()): DeviceRow {
    const udid = checkUdid(info.udid);
    if (info.pairedAt !== undefined) checkTime(info.pairedAt, 'pairedAt');
    this.stmt(
      `INSERT INTO devices (udid, name, product_type, ios_version, wifi_mac, paired_at, first_seen)
       VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (udid) DO UPDATE SET
         name = coalesce(excluded.name, name),
         product_type = coalesce(excluded.product_type, product_type),
         ios_version = coalesce(excluded.ios_version, ios_version),
         wifi_mac = coalesce(excluded.wifi_mac, wifi_mac),
         paired_at = coalesce(excluded.paired_at, paired_at)`,
    ).run(
      udid,
      optText(info.name, MAX_FIELD_CHARS),
      optText(info.productType, MAX_FIELD_CHARS),
      optText(info.iosVersion, MAX_FIELD_CHARS),
      optText(info.wifiMac, MAX_FIELD_CHARS),
      info.pairedAt ?? null,
      checkTime(at, 'at'),
    );
    return this.getDevice(udid)!;
  }

  /** Discovery saw the device (usbmuxd attach, Bonjour); records it if it is new. */
  markSeen(udid: string, transport: Transport, at: number = this.clock()): void {
    checkOneOf(transport, TRANSPORTS, 'transport');
    this.stmt(
      `INSERT INTO devices (udid, first_seen, last_seen, last_transport) VALUES (@udid, @at, @at, @transport)
       ON CONFLICT (udid) DO UPDATE SET last_seen = @at, last_transport = @transport`,
    ).run({ udid: checkUdid(udid), at: checkTime(at, 'at'), transport });
  }

  /** A lockdown session succeeded: the pairing still works. Also counts as seen. */
  markContact(udid: string, at: number = this.clock()): void {
    this.stmt(
      `INSERT INTO devices (udid, first_seen, last_seen, last_contact) VALUES (@udid, @at, @at, @at)
       ON CONFLICT (udid) DO UPDATE SET last_contact = @at, last_seen = max(coalesce(last_seen, @at), @at)`,
    ).run({ udid: checkUdid(udid), at: checkTime(at, 'at') });
  }

  getDevice(udid: string): DeviceRow | undefined {
    const r = this.stmt('SELECT * FROM devices WHERE udid = ?').get(udid) as DeviceDb | undefined;
    return r && toDevice(r);
  }

  /** Every known device, by name then UDID. */
  listDevices(): DeviceRow[] {
    return (
      this.stmt('SELECT * FROM devices ORDER BY name IS NULL, name, udid').all() as DeviceDb[]
    ).map(toDevice);
  }

  // ---- attempts ----

  /**
   * Records a backup that starts now; returns its id. Refuses (USAGE) an unknown device and a
   * second running attempt for the same device.
   */
  startAttempt(a: StartAttemptInput): number {
    const udid = checkUdid(a.udid);
    checkOneOf(a.trigger, TRIGGERS, 'trigger');
    checkOneOf(a.transport, TRANSPORTS, 'transport');
    const startedAt = checkTime(a.startedAt ?? this.clock(), 'startedAt');
    return this.durable(() => {
      if (!this.getDevice(udid))
        throw usage(`Unknown device ${udid}: record it first (upsertDevice)`);
      const running = this.stmt(
        `SELECT id FROM attempts WHERE udid = ? AND outcome = 'running'`,
      ).get(udid) as { id: number } | undefined;
      if (running) throw usage(`A backup of ${udid} is already running (attempt ${running.id})`);
      const r = this.stmt(
        `INSERT INTO attempts (udid, started_at, trigger, transport) VALUES (?, ?, ?, ?)`,
      ).run(udid, startedAt, a.trigger, a.transport);
      return Number(r.lastInsertRowid);
    });
  }

  /**
   * Records how a running attempt ended (and its notice, in the same transaction). A success also
   * sets the device's lastSuccess and lastContact. Refuses an attempt that is not running.
   */
  finishAttempt(id: number, r: FinishAttemptInput): AttemptRow {
    const outcome = checkOneOf(r.outcome, ATTEMPT_OUTCOMES.slice(1), 'outcome');
    const endedAt = checkTime(r.endedAt ?? this.clock(), 'endedAt');
    const reasonCode = r.reasonCode ?? r.notice?.reasonCode ?? null;
    if (reasonCode !== null && !isReasonCode(reasonCode))
      throw usage(`Unknown reason code ${reasonCode}`);
    const message = r.message ?? r.notice?.message;
    return this.durable(() => {
      const a = this.getAttempt(id);
      if (!a) throw usage(`No backup attempt ${id}`);
      if (a.outcome !== 'running') throw usage(`Backup attempt ${id} already ended (${a.outcome})`);
      this.stmt(
        `UPDATE attempts SET outcome = ?, ended_at = ?, duration_ms = ?, reason_code = ?, bytes = ?,
           files = ?, snapshot_id = ?, device_error_code = ?, message = ?
         WHERE id = ?`,
      ).run(
        outcome,
        endedAt,
        Math.max(0, endedAt - a.startedAt),
        reasonCode,
        checkCount(r.bytes ?? 0, 'bytes'),
        checkCount(r.files ?? 0, 'files'),
        optText(r.snapshotId, MAX_FIELD_CHARS),
        r.deviceErrorCode === undefined ? null : Math.trunc(r.deviceErrorCode),
        optText(message, MAX_MESSAGE_CHARS),
        id,
      );
      if (outcome === 'success') {
        this.stmt(
          `UPDATE devices SET last_success = @at, last_contact = max(coalesce(last_contact, @at), @at)
           WHERE udid = @udid`,
        ).run({ at: endedAt, udid: a.udid });
      }
      if (r.notice)
        this.insertNotification({ ...r.notice, udid: a.udid, attemptId: id, at: endedAt });
      return this.getAttempt(id)!;
    });
  }

  /**
   * At start-up, after a crash or a kill: every attempt still 'running' cannot be, so it becomes
   * 'interrupted', each with an INTERRUPTED notification. Returns the attempts changed.
   */
  markRunningAttemptsInterrupted(now: number = this.clock()): AttemptRow[] {
    checkTime(now, 'now');
    return this.durable(() => {
      const running = (
        this.stmt(
          `SELECT ${ATTEMPT_COLUMNS} FROM attempts WHERE outcome = 'running' ORDER BY id`,
        ).all() as AttemptDb[]
      ).map(toAttempt);
      return running.map((a) =>
        this.finishAttempt(a.id, {
          outcome: 'interrupted',
          endedAt: Math.max(now, a.startedAt),
          bytes: a.bytes,
          files: a.files,
          notice: interrupted({ startedAt: a.startedAt, now }),
        }),
      );
    });
  }

  getAttempt(id: number): AttemptRow | undefined {
    const r = this.stmt(`SELECT ${ATTEMPT_COLUMNS} FROM attempts WHERE id = ?`).get(id) as
      AttemptDb | undefined;
    return r && toAttempt(r);
  }

  /** Attempts newest first, keyset-paged. */
  listAttempts(q: AttemptQuery = {}): Page<AttemptRow> {
    return this.page(attemptsQuery(q), pageSize(q.limit), (r: AttemptDb) => toAttempt(r));
  }

  /** The device's latest successful attempt. */
  lastSuccess(udid: string): AttemptRow | undefined {
    const r = this.stmt(
      `SELECT ${ATTEMPT_COLUMNS} FROM attempts WHERE udid = ? AND outcome = 'success'
       ORDER BY id DESC LIMIT 1`,
    ).get(udid) as AttemptDb | undefined;
    return r && toAttempt(r);
  }

  // ---- notifications ----

  /** Records a rendered reason (see reasons.ts), optionally tied to a device and an attempt. */
  addNotification(n: NotificationInput): NotificationRow {
    return this.durable(() => this.insertNotification(n));
  }

  /** Notifications newest first, keyset-paged; see HistoryQuery. */
  listHistory(q: HistoryQuery = {}): Page<NotificationRow> {
    return this.page(historyQuery(q), pageSize(q.limit), (r: NotificationDb) => toNotification(r));
  }

  getNotification(id: number): NotificationRow | undefined {
    const r = this.stmt(`SELECT ${NOTIFICATION_COLUMNS} FROM notifications WHERE id = ?`).get(
      id,
    ) as NotificationDb | undefined;
    return r && toNotification(r);
  }

  /** Marks notifications read: all, or those up to id `upTo`, of one device or all. Returns how many changed. */
  /** `udid`: one device's notifications; null: Mooring's own (no device); left out: all. */
  markRead(opts: MarkReadOptions = {}): number {
    if (opts.ids !== undefined && opts.ids.length > MAX_PAGE_SIZE) {
      throw usage(`markRead: at most ${MAX_PAGE_SIZE} ids at once, got ${opts.ids.length}`);
    }
    return this.durable(
      () =>
        this.stmt(
          `UPDATE notifications SET read = 1
           WHERE read = 0 AND id <= @upTo AND (@all = 1 OR udid IS @udid)
             AND (@ids IS NULL OR id IN (SELECT value FROM json_each(@ids)))`,
        ).run({
          upTo: opts.upTo ?? Number.MAX_SAFE_INTEGER,
          all: opts.udid === undefined ? 1 : 0,
          udid: opts.udid ?? null,
          ids: opts.ids === undefined ? null : JSON.stringify(opts.ids),
        }).changes,
    );
  }

  // ---- settings ----

  /** The stored JSON value, or undefined. The caller validates its shape. */
  getSetting(scope: SettingScope, key: string): unknown {
    const r = this.stmt('SELECT value FROM settings WHERE scope = ? AND key = ?').get(
      scope,
      key,
    ) as { value: string } | undefined;
    return r === undefined ? undefined : JSON.parse(r.value);
  }

  /** Stores any JSON value (validated by the caller) under (scope, key). */
  setSetting(scope: SettingScope, key: string, value: unknown, at: number = this.clock()): void {
    this.checkScopeKey(scope, key);
    const json = value === undefined ? undefined : JSON.stringify(value);
    if (json === undefined) throw usage(`Setting ${key}: the value is not JSON`);
    if (Buffer.byteLength(json) > MAX_SETTING_BYTES) {
      throw usage(`Setting ${key}: the value is larger than ${MAX_SETTING_BYTES} bytes`);
    }
    this.durable(() =>
      this.stmt(
        `INSERT INTO settings (scope, key, value, updated_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (scope, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
      ).run(scope, key, json, checkTime(at, 'at')),
    );
  }

  /** Returns whether the setting existed. */
  deleteSetting(scope: SettingScope, key: string): boolean {
    return this.durable(
      () =>
        this.stmt('DELETE FROM settings WHERE scope = ? AND key = ?').run(scope, key).changes > 0,
    );
  }

  /** Every setting of one scope, key → value. */
  listSettings(scope: SettingScope): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const r of this.stmt('SELECT key, value FROM settings WHERE scope = ? ORDER BY key').all(
      scope,
    ) as { key: string; value: string }[]) {
      out[r.key] = JSON.parse(r.value);
    }
    return out;
  }

  // ---- status ----

  /** Counts for a status line: devices, attempts by outcome, notifications, unread by severity. */
  summary(): HistorySummary {
    const attempts = Object.fromEntries(ATTEMPT_OUTCOMES.map((o) => [o, 0])) as Record<
      AttemptOutcome,
      number
    >;
    for (const r of this.stmt(
      'SELECT outcome, count(*) AS n FROM attempts GROUP BY outcome',
    ).all() as { outcome: AttemptOutcome; n: number }[]) {
      attempts[r.outcome] = r.n;
    }
    const unread = { info: 0, warning: 0, error: 0, total: 0 };
    for (const r of this.stmt(
      'SELECT severity, count(*) AS n FROM notifications WHERE read = 0 GROUP BY severity',
    ).all() as { severity: Severity; n: number }[]) {
      unread[r.severity] = r.n;
      unread.total += r.n;
    }
    const one = (sql: string): number => (this.stmt(sql).get() as { n: number }).n;
    return {
      devices: one('SELECT count(*) AS n FROM devices'),
      attempts,
      notifications: one('SELECT count(*) AS n FROM notifications'),
      unread,
    };
  }

  /** Runs `fn` (several calls of this API) as one durable transaction. */
  batch<T>(fn: () => T): T {
    return this.durable(fn);
  }

  /** Closes the database (idempotent); refreshes the query planner's statistics first. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.db.pragma('optimize');
    } catch {
      // statistics are an optimisation; closing matters more
    }
    this.db.close();
  }

  get isOpen(): boolean {
    return !this.closed;
  }

  // ---- internals ----

  private insertNotification(n: NotificationInput): NotificationRow {
    if (!isReasonCode(n.reasonCode)) throw usage(`Unknown reason code ${String(n.reasonCode)}`);
    checkOneOf(n.severity, SEVERITIES, 'severity');
    const udid = n.udid === undefined ? null : checkUdid(n.udid);
    let params: string | null =
      n.params === undefined ? null : JSON.stringify(n.params as JsonValue);
    if (params !== null && Buffer.byteLength(params) > MAX_PARAMS_BYTES) params = null;
    const r = this.stmt(
      `INSERT INTO notifications (at, udid, kind, severity, reason_code, message, fix_hint, params, attempt_id)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(
      checkTime(n.at ?? this.clock(), 'at'),
      udid,
      cleanText(n.kind, MAX_FIELD_CHARS),
      n.severity,
      n.reasonCode,
      cleanText(n.message, MAX_MESSAGE_CHARS),
      n.fixHint === null ? null : cleanText(n.fixHint, MAX_MESSAGE_CHARS),
      params,
      n.attemptId ?? null,
    );
    return this.getNotification(Number(r.lastInsertRowid))!;
  }

  private checkScopeKey(scope: SettingScope, key: string): void {
    if (scope !== GLOBAL_SCOPE) checkUdid(scope);
    if (typeof key !== 'string' || !KEY_RE.test(key)) {
      throw usage(`Not a setting name: ${JSON.stringify(String(key).slice(0, 80))}`);
    }
  }

  private page<R, T>(q: BuiltQuery, limit: number, map: (r: R) => T): Page<T> {
    const rows = this.stmt(q.sql).all(...q.params) as R[];
    const more = rows.length > limit;
    const items = (more ? rows.slice(0, limit) : rows).map(map);
    const last = items[items.length - 1] as { id: number } | undefined;
    return { items, nextCursor: more && last ? last.id : null };
  }

  /** One transaction whose commit is fsync'd (synchronous = FULL); nested calls join the outer one. */
  private durable<T>(fn: () => T): T {
    const tx = this.db.transaction(fn);
    try {
      if (this.db.inTransaction) return tx();
      this.stmt('PRAGMA synchronous = FULL').run();
      try {
        return tx.immediate();
      } finally {
        this.stmt('PRAGMA synchronous = NORMAL').run();
      }
    } catch (e) {
      // A broken constraint (unknown device or attempt, a CHECK) is the caller's mistake: say so.
      const code = (e as { code?: unknown }).code;
      if (typeof code === 'string' && code.startsWith('SQLITE_CONSTRAINT')) {
        throw new MooringError('USAGE', `History: ${(e as Error).message}`, {
          detail: code,
          cause: e,
        });
      }
      throw e;
    }
  }

  private stmt(sql: string): Database.Statement {
    if (this.closed) throw usage(`The history database ${this.file} is closed`);
    let s = this.stmts.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.stmts.set(sql, s);
    }
    return s;
  }
}
