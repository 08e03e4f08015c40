/** Wall-clock math and window occurrences, including DST gaps and overlaps. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  addLocalDays,
  assertTimeZone,
  localToInstant,
  offsetAt,
  parseClockTime,
  wallClock,
} from '../../src/scheduler/time';
import {
  firstInWindow,
  localDayBounds,
  occurrenceOn,
  policyDay,
  windowStateAt,
} from '../../src/scheduler/window';
import { isMooringError } from '../../src/util/errors';

const iso = (t: number | Date): string => new Date(t).toISOString();
const occ = (o: { open: Date; close: Date }): [string, string] => [iso(o.open), iso(o.close)];

test('wallClock and offsetAt in several zones', () => {
  const t = Date.parse('2024-06-01T01:30:00Z');
  assert.deepEqual(wallClock(t, 'Europe/Berlin'), {
    year: 2024,
    month: 6,
    day: 1,
    hour: 3,
    minute: 30,
    second: 0,
  });
  assert.deepEqual(wallClock(t, 'America/New_York'), {
    year: 2024,
    month: 5,
    day: 31,
    hour: 21,
    minute: 30,
    second: 0,
  });
  assert.deepEqual(wallClock(new Date(t), 'UTC'), {
    year: 2024,
    month: 6,
    day: 1,
    hour: 1,
    minute: 30,
    second: 0,
  });
  assert.equal(wallClock(Date.parse('2024-06-01T22:00:00Z'), 'Europe/Berlin').hour, 0); // midnight is 0, never 24
  assert.equal(offsetAt(t, 'Europe/Berlin'), 2 * 3600_000);
  assert.equal(offsetAt(t, 'America/New_York'), -4 * 3600_000);
  assert.equal(offsetAt(t, 'Asia/Kolkata'), 5.5 * 3600_000);
});

test('localToInstant: ordinary times, a spring-forward gap, a fall-back overlap', () => {
  const B = 'Europe/Berlin';
  assert.equal(
    iso(localToInstant({ year: 2024, month: 6, day: 1 }, 3 * 60, B, 'earlier')),
    '2024-06-01T01:00:00.000Z',
  );
  // 31 Mar 2024: 02:00 CET jumps to 03:00 CEST (01:00Z). 02:30 does not exist: the jump instant.
  assert.equal(
    iso(localToInstant({ year: 2024, month: 3, day: 31 }, 150, B, 'earlier')),
    '2024-03-31T01:00:00.000Z',
  );
  assert.equal(
    iso(localToInstant({ year: 2024, month: 3, day: 31 }, 150, B, 'later')),
    '2024-03-31T01:00:00.000Z',
  );
  // 27 Oct 2024: 03:00 CEST falls back to 02:00 CET (01:00Z). 02:30 happens twice.
  assert.equal(
    iso(localToInstant({ year: 2024, month: 10, day: 27 }, 150, B, 'earlier')),
    '2024-10-27T00:30:00.000Z',
  );
  assert.equal(
    iso(localToInstant({ year: 2024, month: 10, day: 27 }, 150, B, 'later')),
    '2024-10-27T01:30:00.000Z',
  );
  const NY = 'America/New_York';
  assert.equal(
    iso(localToInstant({ year: 2024, month: 3, day: 10 }, 130, NY, 'earlier')),
    '2024-03-10T07:00:00.000Z',
  );
  assert.equal(
    iso(localToInstant({ year: 2024, month: 11, day: 3 }, 90, NY, 'earlier')),
    '2024-11-03T05:30:00.000Z',
  );
  assert.equal(
    iso(localToInstant({ year: 2024, month: 11, day: 3 }, 90, NY, 'later')),
    '2024-11-03T06:30:00.000Z',
  );
  // Half-hour DST (Lord Howe Island): 02:00 -> 02:30 on 6 Oct 2024; 02:15 resolves to the jump.
  assert.equal(
    iso(localToInstant({ year: 2024, month: 10, day: 6 }, 135, 'Australia/Lord_Howe', 'earlier')),
    '2024-10-05T15:30:00.000Z',
  );
});

test('addLocalDays crosses months and leap days', () => {
  assert.deepEqual(addLocalDays({ year: 2024, month: 2, day: 28 }, 1), {
    year: 2024,
    month: 2,
    day: 29,
  });
  assert.deepEqual(addLocalDays({ year: 2024, month: 12, day: 31 }, 1), {
    year: 2025,
    month: 1,
    day: 1,
  });
  assert.deepEqual(addLocalDays({ year: 2024, month: 3, day: 1 }, -1), {
    year: 2024,
    month: 2,
    day: 29,
  });
});

test('parseClockTime accepts HH:MM only', () => {
  assert.equal(parseClockTime('00:00'), 0);
  assert.equal(parseClockTime('23:59'), 1439);
  for (const bad of ['24:00', '7:00', '07:60', '0700', '07:00:00', '', ' 07:00', 'ab:cd']) {
    assert.throws(
      () => parseClockTime(bad),
      (e: unknown) => isMooringError(e, 'USAGE'),
      bad,
    );
  }
});

test('assertTimeZone refuses unknown zones', () => {
  assertTimeZone('Pacific/Auckland');
  assert.throws(
    () => assertTimeZone('Nowhere/Land'),
    (e: unknown) => isMooringError(e, 'USAGE'),
  );
});

test('occurrences on DST days (Berlin and New York)', () => {
  const B = 'Europe/Berlin';
  const NY = 'America/New_York';
  // Spring: 01:00-05:00 is 3 h long; a start in the gap opens at the jump.
  assert.deepEqual(
    occ(occurrenceOn({ year: 2024, month: 3, day: 31 }, { start: '01:00', end: '05:00' }, B)),
    ['2024-03-31T00:00:00.000Z', '2024-03-31T03:00:00.000Z'],
  );
  assert.deepEqual(
    occ(occurrenceOn({ year: 2024, month: 3, day: 31 }, { start: '02:30', end: '04:00' }, B)),
    ['2024-03-31T01:00:00.000Z', '2024-03-31T02:00:00.000Z'],
  );
  // Entirely inside the gap: keeps its usual length from the jump.
  assert.deepEqual(
    occ(occurrenceOn({ year: 2024, month: 3, day: 31 }, { start: '02:15', end: '02:45' }, B)),
    ['2024-03-31T01:00:00.000Z', '2024-03-31T01:30:00.000Z'],
  );
  // Autumn: 01:00-05:00 is 5 h long; an end in the repeated hour closes at its second occurrence.
  assert.deepEqual(
    occ(occurrenceOn({ year: 2024, month: 10, day: 27 }, { start: '01:00', end: '05:00' }, B)),
    ['2024-10-26T23:00:00.000Z', '2024-10-27T04:00:00.000Z'],
  );
  assert.deepEqual(
    occ(occurrenceOn({ year: 2024, month: 10, day: 27 }, { start: '02:30', end: '02:45' }, B)),
    ['2024-10-27T00:30:00.000Z', '2024-10-27T01:45:00.000Z'],
  );
  // Crossing midnight into the New York fall-back: 22:00 EDT to 06:00 EST is 9 h.
  assert.deepEqual(
    occ(occurrenceOn({ year: 2024, month: 11, day: 2 }, { start: '22:00', end: '06:00' }, NY)),
    ['2024-11-03T02:00:00.000Z', '2024-11-03T11:00:00.000Z'],
  );
  // ...and into spring-forward: 22:00 EST to 06:00 EDT is 7 h.
  assert.deepEqual(
    occ(occurrenceOn({ year: 2024, month: 3, day: 9 }, { start: '22:00', end: '06:00' }, NY)),
    ['2024-03-10T03:00:00.000Z', '2024-03-10T10:00:00.000Z'],
  );
});

test('windowStateAt: inside, between, and crossing midnight', () => {
  const B = 'Europe/Berlin';
  const late = { start: '22:00', end: '06:00' };
  const inside = windowStateAt(new Date('2024-06-13T03:00:00+02:00'), late, B);
  assert.deepEqual(inside.current && occ(inside.current), [
    '2024-06-12T20:00:00.000Z',
    '2024-06-13T04:00:00.000Z',
  ]);
  assert.deepEqual(occ(inside.next), ['2024-06-13T20:00:00.000Z', '2024-06-14T04:00:00.000Z']);
  const between = windowStateAt(new Date('2024-06-13T12:00:00+02:00'), late, B);
  assert.equal(between.current, undefined);
  assert.deepEqual(occ(between.previous), ['2024-06-12T20:00:00.000Z', '2024-06-13T04:00:00.000Z']);
  assert.equal(iso(between.next.open), '2024-06-13T20:00:00.000Z');
  assert.deepEqual(
    firstInWindow(new Date('2024-06-13T12:00:00+02:00'), late, B),
    new Date('2024-06-13T22:00:00+02:00'),
  );
  assert.deepEqual(
    firstInWindow(new Date('2024-06-13T23:00:00+02:00'), late, B),
    new Date('2024-06-13T23:00:00+02:00'),
  );
  assert.deepEqual(
    firstInWindow(new Date('2024-06-13T12:00:00+02:00'), 'any', B),
    new Date('2024-06-13T12:00:00+02:00'),
  );
});

test('policyDay: a night window is one day; any = the calendar day (23 h on spring-forward)', () => {
  const B = 'Europe/Berlin';
  const late = { start: '22:00', end: '06:00' };
  const a = policyDay(new Date('2024-06-13T02:00:00+02:00'), late, B);
  assert.deepEqual(
    [iso(a.start), iso(a.next)],
    ['2024-06-12T20:00:00.000Z', '2024-06-13T20:00:00.000Z'],
  );
  const b = policyDay(new Date('2024-06-12T23:00:00+02:00'), late, B);
  assert.deepEqual(iso(b.start), iso(a.start));
  const c = policyDay(new Date('2024-03-31T12:00:00+02:00'), 'any', B);
  assert.deepEqual(
    [iso(c.start), iso(c.next)],
    ['2024-03-30T23:00:00.000Z', '2024-03-31T22:00:00.000Z'],
  );
  const bounds = localDayBounds(new Date('2024-10-27T12:00:00+01:00'), B);
  assert.equal(bounds.end.getTime() - bounds.start.getTime(), 25 * 3600_000);
});
