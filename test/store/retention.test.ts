import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DEFAULT_RETENTION,
  parseDuration,
  parseRetentionArgs,
  planRetention,
  type RetentionCandidate,
} from '../../src/store/retention';
import {
  compareSnapshotIds,
  dateOfSnapshotId,
  formatSnapshotId,
  newSnapshotId,
} from '../../src/store/ids';
import { isMooringError } from '../../src/util/errors';

const DAY = 86_400_000;
const NOW = new Date(Date.UTC(2025, 5, 30, 12, 0, 0)); // a Monday

function snap(ageDays: number, extra: Partial<RetentionCandidate> = {}): RetentionCandidate {
  const date = new Date(NOW.getTime() - ageDays * DAY);
  return { id: formatSnapshotId(date), date, pinned: false, isLatest: false, ...extra };
}

test('snapshot ids: format, parse, order, uniqueness, monotonic after the latest', () => {
  const d = new Date(Date.UTC(2024, 1, 29, 23, 59, 58, 700));
  assert.equal(formatSnapshotId(d), '20240229T235958Z');
  assert.deepEqual(
    dateOfSnapshotId('20240229T235958Z'),
    new Date(Date.UTC(2024, 1, 29, 23, 59, 58)),
  );
  for (const bad of [
    '20240230T000000Z',
    '2024022T000000Z',
    '20240229T235958Z-0',
    'x',
    '../20240229T235958Z',
  ])
    assert.equal(dateOfSnapshotId(bad), undefined, bad);
  const ids = ['20240101T000000Z-10', '20240101T000000Z-2', '20240101T000000Z', '20231231T235959Z'];
  assert.deepEqual([...ids].sort(compareSnapshotIds), [
    '20231231T235959Z',
    '20240101T000000Z',
    '20240101T000000Z-2',
    '20240101T000000Z-10',
  ]);
  const taken = new Set(['20240229T235958Z', '20240229T235958Z-2']);
  assert.equal(
    newSnapshotId(d, (x) => taken.has(x)),
    '20240229T235958Z-3',
  );
  // A clock that went backwards still yields an id after the latest.
  assert.equal(
    newSnapshotId(new Date(Date.UTC(2020, 0, 1)), () => false, '20240229T235958Z'),
    '20240229T235959Z',
  );
});

test('default policy: all for 14 days, one a day to 60, one a week to 365, none older', () => {
  const cands: RetentionCandidate[] = [];
  // Four backups a day for 400 days.
  for (let age = 0; age < 400; age += 0.25) cands.push(snap(age));
  const plan = planRetention(cands, DEFAULT_RETENTION, NOW);
  const kept = plan.filter((d) => d.keep);
  const ageOf = (d: { date: Date }): number => (NOW.getTime() - d.date.getTime()) / DAY;
  assert.equal(kept.filter((d) => ageOf(d) < 14).length, 56); // everything
  const daily = kept.filter((d) => ageOf(d) >= 14 && ageOf(d) < 60);
  const days = new Set(daily.map((d) => d.date.toISOString().slice(0, 10)));
  assert.equal(days.size, daily.length, 'one per day');
  assert.ok(daily.length >= 46 && daily.length <= 47, `${daily.length}`); // 46 days, partial days at both ends
  const weekly = kept.filter((d) => ageOf(d) >= 60);
  assert.ok(weekly.every((d) => ageOf(d) < 365));
  assert.ok(weekly.length >= 44 && weekly.length <= 45, `${weekly.length}`);
  const weeks = new Set(weekly.map((d) => Math.floor((d.date.getTime() / DAY + 3) / 7)));
  assert.equal(weeks.size, weekly.length, 'one per week');
  assert.ok(plan.filter((d) => !d.keep && ageOf(d) >= 365).length > 0);
  // The kept one of a day is its oldest, so the choice never moves as time passes.
  const tomorrow = planRetention(cands, DEFAULT_RETENTION, new Date(NOW.getTime() + DAY));
  const keptTomorrow = new Set(tomorrow.filter((d) => d.keep).map((d) => d.id));
  for (const d of daily) {
    if (ageOf(d) < 58) assert.ok(keptTomorrow.has(d.id), `${d.id} stays kept`);
  }
});

test('the latest and pinned snapshots are never pruned, and they cover their day', () => {
  const old = snap(800, { pinned: true });
  const latest = snap(900, { isLatest: true }); // even a very old latest
  const a = snap(20.45);
  const b = snap(20.3, { pinned: true }); // all three on 2025-06-10
  const c = snap(20.1);
  const plan = planRetention([old, latest, a, b, c], DEFAULT_RETENTION, NOW);
  const byId = new Map(plan.map((d) => [d.id, d]));
  assert.equal(byId.get(old.id)!.keep, true);
  assert.equal(byId.get(old.id)!.reason, 'pinned');
  assert.equal(byId.get(latest.id)!.keep, true);
  assert.equal(byId.get(b.id)!.keep, true);
  assert.equal(byId.get(a.id)!.keep, false);
  assert.equal(byId.get(c.id)!.keep, false);
  assert.match(byId.get(a.id)!.reason, new RegExp(b.id));
  // Decisions come back in the input order.
  assert.deepEqual(
    plan.map((d) => d.id),
    [old.id, latest.id, a.id, b.id, c.id],
  );
});

test('retention flags: durations, defaults, forever, and refusals', () => {
  assert.equal(parseDuration('14d', 'x'), 14);
  assert.equal(parseDuration('2w', 'x'), 14);
  assert.equal(parseDuration('2m', 'x'), 60);
  assert.equal(parseDuration('1y', 'x'), 365);
  assert.equal(parseDuration('30', 'x'), 30);
  assert.equal(parseDuration('forever', 'x'), Infinity);
  assert.equal(parseDuration('36h', 'x'), 1.5);
  assert.equal(parseDuration('1y 6m', 'x'), 545);
  assert.equal(parseDuration('3mo', 'x'), 90);
  assert.equal(parseDuration('0s', 'x'), 0);
  assert.deepEqual(parseRetentionArgs([]), DEFAULT_RETENTION);
  assert.deepEqual(parseRetentionArgs(['--keep-all', '7d', '--daily=30d', '--weekly', 'forever']), {
    keepAllDays: 7,
    dailyDays: 30,
    weeklyDays: Infinity,
  });
  const usage = (e: unknown): boolean => isMooringError(e, 'USAGE');
  assert.throws(() => parseRetentionArgs(['--keep-all', '2 weeks']), usage);
  assert.throws(() => parseRetentionArgs(['--keep-all', '90d']), usage); // longer than --daily
  assert.throws(() => parseRetentionArgs(['--monthly', '1y']), usage);
  assert.throws(() => parseRetentionArgs(['--daily', '-5d']), usage);
  assert.throws(() => parseRetentionArgs(['--daily', '90min']), usage);
  assert.throws(
    () => parseRetentionArgs(['--daily', '5s']),
    (e: unknown) => usage(e) && /units y, m \(30-day months\), w, d, h/.test((e as Error).message),
  );
  // weekly forever keeps one a week however old.
  const plan = planRetention(
    [snap(3000), snap(3000.5)],
    { keepAllDays: 1, dailyDays: 2, weeklyDays: Infinity },
    NOW,
  );
  assert.deepEqual(
    plan.map((d) => d.keep),
    [false, true],
  );
});

test('a damaged or incomplete snapshot does not stand for its day or week when a whole one is there', () => {
  const policy = { keepAllDays: 1, dailyDays: 10, weeklyDays: 100 };
  // Day 3: the oldest is damaged, a later one is whole. Day 5: only damaged ones.
  const damagedFirst = snap(3.5, { sound: false });
  const wholeLater = snap(3.2);
  const onlyDamaged = snap(5.5, { sound: false });
  const alsoDamaged = snap(5.2, { sound: false });
  // Week of day 40: a damaged pinned one does not cover it; a whole one is kept besides.
  const pinnedDamaged = snap(40.9, { sound: false, pinned: true });
  const wholeSameWeek = snap(40.5);
  const latest = snap(0.1, { isLatest: true });
  const plan = planRetention(
    [damagedFirst, wholeLater, onlyDamaged, alsoDamaged, pinnedDamaged, wholeSameWeek, latest],
    policy,
    NOW,
  );
  const keep = new Map(plan.map((d) => [d.id, d]));
  assert.equal(keep.get(damagedFirst.id)!.keep, false);
  assert.match(keep.get(damagedFirst.id)!.reason, /whole snapshot is kept for the day .* instead/);
  assert.equal(keep.get(wholeLater.id)!.keep, true);
  // With no whole one, the oldest stands for the day as before.
  assert.equal(keep.get(onlyDamaged.id)!.keep, true);
  assert.equal(keep.get(alsoDamaged.id)!.keep, false);
  assert.equal(keep.get(pinnedDamaged.id)!.keep, true, 'pinned');
  assert.equal(keep.get(wholeSameWeek.id)!.keep, true, 'the week’s whole snapshot');
  assert.equal(keep.get(latest.id)!.keep, true);
  // Sound by default: the earlier rule (the oldest of each day) is unchanged.
  const plain = planRetention([snap(3.5), snap(3.2), latest], policy, NOW);
  assert.deepEqual(
    plain.map((d) => d.keep),
    [true, false, true],
  );
});
