/**
 * The paged list queries, built from filters. Kept apart from the repository so a test can ask
 * SQLite how it runs each one (EXPLAIN QUERY PLAN) and fail if a filter stops using an index.
 *
 * Paging is by keyset on the rowid (`id < cursor ORDER BY id DESC`): each page costs the same
 * however deep it is, and rows added meanwhile never shift a page.
 *
 * Each filter names its index (INDEXED BY). Every index ends, implicitly, with the rowid, so
 * "equal on the index columns, rowid below the cursor, newest first" reads exactly one page of
 * entries whatever the data. Left to itself, once ANALYZE has run, SQLite walks the whole table
 * backwards for a value it thinks common: fine for 'info', a full scan for a rare 'error'.
 */
import type { AttemptQuery, HistoryQuery } from './types';

export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 1000;

export interface BuiltQuery {
  sql: string;
  params: (string | number)[];
}

export const NOTIFICATION_COLUMNS =
  'id, at, udid, kind, severity, reason_code, message, fix_hint, params, attempt_id, read';
export const ATTEMPT_COLUMNS =
  'id, udid, started_at, ended_at, trigger, transport, outcome, reason_code, bytes, files, duration_ms, snapshot_id, device_error_code, message';

export function pageSize(limit: number | undefined): number {
  if (limit === undefined) return DEFAULT_PAGE_SIZE;
  if (!Number.isFinite(limit)) return DEFAULT_PAGE_SIZE;
  return Math.min(MAX_PAGE_SIZE, Math.max(1, Math.floor(limit)));
}

function paged(
  table: string,
  columns: string,
  indexes: Record<string, string>,
  eq: [string, string | undefined][],
  before: number | undefined,
  limit: number,
): BuiltQuery {
  const where: string[] = [];
  const params: (string | number)[] = [];
  const used: string[] = [];
  for (const [col, v] of eq) {
    if (v === undefined) continue;
    where.push(`${col} = ?`);
    params.push(v);
    used.push(col);
  }
  const index = indexes[used.join(',')];
  if (before !== undefined) {
    where.push('id < ?');
    params.push(Math.floor(before));
  }
  // One row more than asked tells whether another page exists.
  params.push(limit + 1);
  const cond = where.length ? ` WHERE ${where.join(' AND ')}` : '';
  const from = index === undefined ? table : `${table} INDEXED BY ${index}`;
  return { sql: `SELECT ${columns} FROM ${from}${cond} ORDER BY id DESC LIMIT ?`, params };
}

/** Filter columns (in `eq` order) → the index that serves them (see migrations.ts). */
const NOTIFICATION_INDEXES: Record<string, string> = {
  udid: 'notifications_by_device',
  severity: 'notifications_by_severity',
  kind: 'notifications_by_kind',
  'udid,severity': 'notifications_by_device_severity',
  'udid,kind': 'notifications_by_device_kind',
  'severity,kind': 'notifications_by_severity_kind',
  'udid,severity,kind': 'notifications_by_device_severity',
};

const ATTEMPT_INDEXES: Record<string, string> = {
  udid: 'attempts_by_device',
  outcome: 'attempts_by_outcome',
  'udid,outcome': 'attempts_by_device_outcome',
};

export function historyQuery(q: HistoryQuery): BuiltQuery {
  return paged(
    'notifications',
    NOTIFICATION_COLUMNS,
    NOTIFICATION_INDEXES,
    [
      ['udid', q.udid],
      ['severity', q.severity],
      ['kind', q.kind],
    ],
    q.before,
    pageSize(q.limit),
  );
}

export function attemptsQuery(q: AttemptQuery): BuiltQuery {
  return paged(
    'attempts',
    ATTEMPT_COLUMNS,
    ATTEMPT_INDEXES,
    [
      ['udid', q.udid],
      ['outcome', q.outcome],
    ],
    q.before,
    pageSize(q.limit),
  );
}
