/**
 * 100,000 notifications: keyset paging returns every row once, newest first, for each filter; and
 * SQLite answers each filter from an index, never a full sort (asserted on EXPLAIN QUERY PLAN).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import Database from 'better-sqlite3';
import {
  notDue,
  openHistory,
  type History,
  type HistoryQuery,
  type NotificationKind,
  type Severity,
} from '../../src/history';
import { attemptsQuery, historyQuery, MAX_PAGE_SIZE } from '../../src/history/queries';
import { tempDirs } from './fixture';

const { tmp, cleanup } = tempDirs('mooring-history-paging-');
const ROWS = 100_000;
const DEVICES = ['DEV-A', 'DEV-B', 'DEV-C'];
const KINDS: NotificationKind[] = ['skip', 'backup', 'pairing', 'stale', 'agent'];
const SEVS: Severity[] = ['info', 'warning', 'error'];

/** The same formulas as the seeding SQL, so the test knows what each row holds. */
const model = (i: number): { udid: string | null; kind: NotificationKind; severity: Severity } => ({
  udid: i % 4 === 0 ? null : DEVICES[(i % 4) - 1]!,
  kind: KINDS[i % 5]!,
  severity: SEVS[i % 3]!,
});

let file: string;
let h: History;

before(() => {
  file = path.join(tmp(), 'history.db');
  const setup = openHistory(file);
  for (const udid of DEVICES) setup.upsertDevice({ udid });
  setup.close();
  // Seeding through SQL keeps the test fast; `at` is shuffled on purpose: order is by id.
  const raw = new Database(file);
  raw.exec(`
    WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < ${ROWS})
    INSERT INTO notifications (id, at, udid, kind, severity, reason_code, message)
    SELECT i, 1700000000000 + ((i * 7919) % ${ROWS}) * 1000,
      CASE i % 4 WHEN 0 THEN NULL WHEN 1 THEN 'DEV-A' WHEN 2 THEN 'DEV-B' ELSE 'DEV-C' END,
      CASE i % 5 WHEN 0 THEN 'skip' WHEN 1 THEN 'backup' WHEN 2 THEN 'pairing' WHEN 3 THEN 'stale' ELSE 'agent' END,
      CASE i % 3 WHEN 0 THEN 'info' WHEN 1 THEN 'warning' ELSE 'error' END,
      'NOT_DUE', 'row ' || i
    FROM s;
    ANALYZE;
  `);
  raw.close();
  h = openHistory(file);
});
after(() => {
  h?.close();
  cleanup();
});

function expected(q: Omit<HistoryQuery, 'before' | 'limit'>): number[] {
  const out: number[] = [];
  for (let i = ROWS; i >= 1; i--) {
    const m = model(i);
    if (q.udid !== undefined && m.udid !== q.udid) continue;
    if (q.severity !== undefined && m.severity !== q.severity) continue;
    if (q.kind !== undefined && m.kind !== q.kind) continue;
    out.push(i);
  }
  return out;
}

function pageAll(q: HistoryQuery): { ids: number[]; pages: number } {
  const ids: number[] = [];
  let before: number | undefined;
  let pages = 0;
  for (;;) {
    const page = h.listHistory({ ...q, before });
    pages++;
    for (const n of page.items) ids.push(n.id);
    if (page.nextCursor === null) return { ids, pages };
    assert.equal(page.nextCursor, page.items[page.items.length - 1]?.id);
    before = page.nextCursor;
  }
}

test('every row once, newest first, for each filter', () => {
  const all = pageAll({ limit: MAX_PAGE_SIZE });
  assert.equal(all.ids.length, ROWS);
  assert.equal(
    all.pages,
    ROWS / MAX_PAGE_SIZE,
    'a full last page says it is the last: no empty page after it',
  );
  for (let k = 0; k < ROWS; k++) assert.equal(all.ids[k], ROWS - k);

  const filters: Omit<HistoryQuery, 'before' | 'limit'>[] = [
    { udid: 'DEV-B' },
    { severity: 'error' },
    { kind: 'pairing' },
    { udid: 'DEV-C', severity: 'warning' },
    { udid: 'DEV-A', kind: 'stale' },
    { severity: 'info', kind: 'agent' },
    { udid: 'DEV-B', severity: 'error', kind: 'skip' },
  ];
  for (const f of filters) {
    const got = pageAll({ ...f, limit: 997 });
    assert.deepEqual(got.ids, expected(f), JSON.stringify(f));
  }
});

test('page contents and cursors are exact; rows added while paging do not shift pages', () => {
  const first = h.listHistory({ udid: 'DEV-A', limit: 3 });
  assert.deepEqual(
    first.items.map((n) => [n.id, n.udid, n.message]),
    [
      [99_997, 'DEV-A', 'row 99997'],
      [99_993, 'DEV-A', 'row 99993'],
      [99_989, 'DEV-A', 'row 99989'],
    ],
  );
  assert.equal(first.nextCursor, 99_989);
  h.addNotification({ ...notDue({ nextDueAt: 1, now: 1 }), udid: 'DEV-A' });
  const second = h.listHistory({ udid: 'DEV-A', limit: 3, before: first.nextCursor! });
  assert.deepEqual(
    second.items.map((n) => n.id),
    [99_985, 99_981, 99_977],
  );
  const last = h.listHistory({ udid: 'DEV-A', before: 10 });
  assert.deepEqual(
    last.items.map((n) => n.id),
    [9, 5, 1],
  );
  assert.equal(last.nextCursor, null);
  assert.deepEqual(h.listHistory({ before: 1 }), { items: [], nextCursor: null });
  assert.equal(
    h.listHistory({ limit: 10 ** 9 }).items.length,
    MAX_PAGE_SIZE,
    'page size is bounded',
  );
  assert.equal(h.listHistory({ limit: 0 }).items.length, 1);
  assert.equal(h.listHistory().items[0]?.id, ROWS + 1, 'the new row is the newest');
});

function plan(sql: string, params: (string | number)[]): string {
  const raw = new Database(file, { readonly: true });
  try {
    return (raw.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as { detail: string }[])
      .map((r) => r.detail)
      .join(' | ');
  } finally {
    raw.close();
  }
}

test('each filter is one index range read in id order: no full scan, no sort', () => {
  const udid = 'DEV-B';
  const severity: Severity = 'warning';
  const kind: NotificationKind = 'backup';
  const combos: HistoryQuery[] = [
    {},
    { udid },
    { severity },
    { kind },
    { udid, severity },
    { udid, kind },
    { severity, kind },
    { udid, severity, kind },
  ];
  for (const c of combos) {
    for (const before of [undefined, 50_000]) {
      const q = historyQuery({ ...c, before, limit: 50 });
      const p = plan(q.sql, q.params);
      const what = `${JSON.stringify({ ...c, before })}: ${p}`;
      assert.doesNotMatch(p, /TEMP B-TREE/, what);
      if (Object.keys(c).length === 0 && before === undefined) {
        // Walking the table backwards in rowid order and stopping at LIMIT is the best plan.
        assert.equal(p, 'SCAN notifications', what);
      } else if (Object.keys(c).length === 0) {
        assert.match(p, /^SEARCH notifications USING INTEGER PRIMARY KEY \(rowid<\?\)$/, what);
      } else {
        assert.match(
          p,
          /^SEARCH notifications USING (COVERING )?INDEX notifications_by_\w+ \(/,
          what,
        );
        if (before !== undefined) assert.match(p, /rowid<\?\)$/, what);
      }
    }
  }
  for (const c of [
    { udid },
    { outcome: 'success' as const },
    { udid, outcome: 'failure' as const },
  ]) {
    const q = attemptsQuery({ ...c, before: 10, limit: 50 });
    const p = plan(q.sql, q.params);
    assert.doesNotMatch(p, /TEMP B-TREE/, p);
    assert.match(p, /^SEARCH attempts USING (COVERING )?INDEX attempts_\w+ \(.*rowid<\?\)$/, p);
  }
});
