/** detectSleep and missedWindow: noticing that the computer slept through a window. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { detectSleep, MAX_MISSED_WINDOWS, missedWindow } from '../../src/scheduler/sleep';
import { isDue, resolvePolicy } from '../../src/scheduler/policy';

const MIN = 60_000;
const d = (s: string): Date => new Date(s);

test('detectSleep: on-time and slightly late ticks are not sleep', () => {
  const prev = d('2024-06-12T10:00:00Z');
  assert.equal(detectSleep(prev, d('2024-06-12T10:01:00Z'), MIN).slept, false);
  assert.equal(detectSleep(prev, d('2024-06-12T10:01:59Z'), MIN).slept, false);
  assert.equal(detectSleep(undefined, d('2024-06-12T10:01:00Z'), MIN).slept, false);
});

test('detectSleep: a long gap is sleep, with its bounds', () => {
  const prev = d('2024-06-12T01:00:00Z');
  const now = d('2024-06-12T07:30:00Z');
  assert.deepEqual(detectSleep(prev, now, MIN), {
    slept: true,
    from: prev,
    to: now,
    gapMs: 6.5 * 60 * MIN,
    clockWentBack: false,
  });
  assert.equal(detectSleep(prev, d('2024-06-12T01:02:01Z'), MIN).slept, true);
  assert.equal(detectSleep(prev, d('2024-06-12T01:02:01Z'), MIN, 5 * MIN).slept, false);
});

test('detectSleep: a clock set back is reported, not taken for sleep', () => {
  const r = detectSleep(d('2024-06-12T10:00:00Z'), d('2024-06-12T09:00:00Z'), MIN);
  assert.equal(r.slept, false);
  assert.equal(r.clockWentBack, true);
});

test('missedWindow: asleep 00:30-06:30 Berlin covers the whole 01:00-05:00 window', () => {
  const w = { start: '01:00', end: '05:00' };
  const r = missedWindow(
    d('2024-06-12T00:30:00+02:00'),
    d('2024-06-12T06:30:00+02:00'),
    'Europe/Berlin',
    w,
  );
  assert.equal(r.missed, true);
  assert.deepEqual(r.windows, [
    { open: d('2024-06-12T01:00:00+02:00'), close: d('2024-06-12T05:00:00+02:00') },
  ]);
  assert.deepEqual(r.partly, []);
});

test('missedWindow: waking inside the window is only a partial miss', () => {
  const w = { start: '01:00', end: '05:00' };
  const r = missedWindow(
    d('2024-06-11T23:00:00+02:00'),
    d('2024-06-12T04:00:00+02:00'),
    'Europe/Berlin',
    w,
  );
  assert.equal(r.missed, false);
  assert.equal(r.partly.length, 1);
});

test('missedWindow: a weekend asleep misses each night of a window crossing midnight', () => {
  const w = { start: '22:00', end: '06:00' };
  const r = missedWindow(
    d('2024-06-14T18:00:00-04:00'),
    d('2024-06-17T08:00:00-04:00'),
    'America/New_York',
    w,
  );
  assert.deepEqual(
    r.windows.map((o) => o.open.toISOString()),
    ['2024-06-15T02:00:00.000Z', '2024-06-16T02:00:00.000Z', '2024-06-17T02:00:00.000Z'],
  );
});

test('missedWindow: asleep for months reports only the latest MAX_MISSED_WINDOWS', () => {
  const r = missedWindow(d('2024-01-01T12:00:00Z'), d('2024-06-01T12:00:00Z'), 'UTC', {
    start: '01:00',
    end: '02:00',
  });
  assert.equal(r.windows.length, MAX_MISSED_WINDOWS);
  assert.equal(r.windows.at(-1)!.open.toISOString(), '2024-06-01T01:00:00.000Z');
});

test("missedWindow: 'any' and empty intervals miss nothing", () => {
  assert.equal(
    missedWindow(d('2024-06-12T00:00:00Z'), d('2024-06-14T00:00:00Z'), 'UTC', 'any').missed,
    false,
  );
  const w = { start: '01:00', end: '05:00' };
  assert.equal(
    missedWindow(d('2024-06-14T00:00:00Z'), d('2024-06-12T00:00:00Z'), 'UTC', w).missed,
    false,
  );
});

test('missedWindow + isDue: report only windows in which a backup was due', () => {
  const policy = resolvePolicy({ window: { start: '01:00', end: '05:00' } });
  const lastSuccess = d('2024-06-12T01:10:00+02:00');
  const r = missedWindow(
    d('2024-06-12T06:00:00+02:00'),
    d('2024-06-14T12:00:00+02:00'),
    'Europe/Berlin',
    policy.window,
  );
  const dueWhileAsleep = r.windows.filter((o) =>
    isDue(new Date(o.close.getTime() - 1), 'Europe/Berlin', policy, lastSuccess),
  );
  assert.equal(r.windows.length, 2);
  assert.equal(dueWhileAsleep.length, 2);
  // Every other day: only the second night's window mattered.
  const everyOther = resolvePolicy({ window: policy.window, minIntervalMs: 2 * 24 * 60 * MIN });
  assert.deepEqual(
    r.windows
      .filter((o) =>
        isDue(new Date(o.close.getTime() - 1), 'Europe/Berlin', everyOther, lastSuccess),
      )
      .map((o) => o.open),
    [d('2024-06-14T01:00:00+02:00')],
  );
});
