/** decide() / decideManual() as tables: every row is one situation and the decision it must give. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  decide,
  decideManual,
  DEFAULT_POLICY,
  isDue,
  nextDueAt,
  PASSCODE_NOT_ENTERED,
  DEVICE_LOCKED,
  resolvePolicy,
  retryDelayMs,
  type Decision,
  type DeviceState,
  type GlobalLoad,
  type PolicyOverrides,
} from '../../src/scheduler/policy';
import { isMooringError } from '../../src/util/errors';

const BERLIN = 'Europe/Berlin';
const NEW_YORK = 'America/New_York';
const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;

const d = (iso: string): Date => new Date(iso);
const plus = (iso: string, ms: number): Date => new Date(new Date(iso).getTime() + ms);

const NIGHT = { start: '01:00', end: '05:00' };

function device(over: Partial<DeviceState> = {}): DeviceState {
  return {
    reachable: { usb: true, wifi: false },
    attemptsToday: 0,
    consecutiveFailures: 0,
    running: false,
    ...over,
  };
}

interface Row {
  name: string;
  now: string;
  tz?: string;
  policy?: PolicyOverrides;
  device?: Partial<DeviceState>;
  global?: GlobalLoad;
  expect: Partial<Record<string, unknown>> & { params?: Record<string, unknown> };
}

function check(rows: Row[]): void {
  for (const row of rows) {
    test(row.name, () => {
      const got = decide(
        d(row.now),
        row.tz ?? BERLIN,
        resolvePolicy(row.policy ?? {}),
        device(row.device),
        row.global ?? { running: 0, concurrency: 2 },
      );
      compare(got, row.expect);
    });
  }
}

function compare(got: Decision, expect: Row['expect']): void {
  for (const [k, v] of Object.entries(expect)) {
    if (k === 'params') continue;
    const actual = (got as unknown as Record<string, unknown>)[k];
    assert.deepEqual(actual, v, `${k}: ${JSON.stringify(got)}`);
  }
  if (expect.params !== undefined) {
    assert.equal(got.action, 'skip', JSON.stringify(got));
    if (got.action === 'skip') {
      for (const [k, v] of Object.entries(expect.params)) {
        assert.deepEqual(
          (got.params as Record<string, unknown>)[k],
          v,
          `params.${k}: ${JSON.stringify(got)}`,
        );
      }
    }
  }
}

// ---- interval and reachability, no window ----
check([
  {
    name: 'never backed up, reachable over USB: start now',
    now: '2024-06-12T12:00:00+02:00',
    expect: { action: 'start', trigger: 'schedule', reason: 'due', transport: 'usb' },
  },
  {
    name: 'reachable over Wi-Fi only: start over Wi-Fi',
    now: '2024-06-12T12:00:00+02:00',
    device: { reachable: { usb: false, wifi: true } },
    expect: { action: 'start', transport: 'wifi' },
  },
  {
    name: 'reachable both ways: USB preferred',
    now: '2024-06-12T12:00:00+02:00',
    device: { reachable: { usb: true, wifi: true } },
    expect: { action: 'start', transport: 'usb' },
  },
  {
    name: 'last success 23 h ago: NOT_DUE until 24 h after it',
    now: '2024-06-12T12:00:00+02:00',
    device: { lastSuccessAt: d('2024-06-11T13:00:00+02:00') },
    expect: {
      action: 'skip',
      reasonCode: 'NOT_DUE',
      nextCheckAt: d('2024-06-12T13:00:00+02:00'),
      params: {
        nextDueAt: d('2024-06-12T13:00:00+02:00'),
        lastSuccessAt: d('2024-06-11T13:00:00+02:00'),
      },
    },
  },
  {
    name: 'last success exactly 24 h ago: due',
    now: '2024-06-12T13:00:00+02:00',
    device: { lastSuccessAt: d('2024-06-11T13:00:00+02:00') },
    expect: { action: 'start', trigger: 'schedule' },
  },
  {
    name: 'slept through three days: due at once (state, not ticks)',
    now: '2024-06-12T13:00:00+02:00',
    device: { lastSuccessAt: d('2024-06-09T09:00:00+02:00') },
    expect: { action: 'start' },
  },
  {
    name: 'short interval (tests): due again after 2 minutes',
    now: '2024-06-12T13:02:00+02:00',
    policy: { minIntervalMs: 2 * MIN },
    device: { lastSuccessAt: d('2024-06-12T13:00:00+02:00') },
    expect: { action: 'start' },
  },
  {
    name: 'due but not reachable: NOT_REACHABLE with last seen',
    now: '2024-06-12T12:00:00+02:00',
    device: { reachable: { usb: false, wifi: false }, lastSeenAt: d('2024-06-10T08:00:00Z') },
    expect: {
      action: 'skip',
      reasonCode: 'NOT_REACHABLE',
      nextCheckAt: null,
      params: { lastSeenAt: d('2024-06-10T08:00:00Z') },
    },
  },
  {
    name: 'never seen: NOT_REACHABLE with lastSeenAt null',
    now: '2024-06-12T12:00:00+02:00',
    device: { reachable: { usb: false, wifi: false } },
    expect: { reasonCode: 'NOT_REACHABLE', params: { lastSeenAt: null } },
  },
  {
    name: 'not due and not reachable: NOT_DUE is the reason (it comes first)',
    now: '2024-06-12T12:00:00+02:00',
    device: {
      reachable: { usb: false, wifi: false },
      lastSuccessAt: d('2024-06-12T08:00:00+02:00'),
    },
    expect: { reasonCode: 'NOT_DUE' },
  },
]);

// ---- switches and load ----
check([
  {
    name: 'paused: PAUSED',
    now: '2024-06-12T12:00:00+02:00',
    policy: { paused: true },
    expect: { action: 'skip', reasonCode: 'PAUSED', nextCheckAt: null },
  },
  {
    name: 'disabled: DISABLED (before PAUSED)',
    now: '2024-06-12T12:00:00+02:00',
    policy: { enabled: false, paused: true },
    expect: { reasonCode: 'DISABLED' },
  },
  {
    name: 'running: ALREADY_RUNNING beats everything',
    now: '2024-06-12T12:00:00+02:00',
    policy: { enabled: false },
    device: { running: true },
    expect: { reasonCode: 'ALREADY_RUNNING', params: { passcodeWaiting: false } },
  },
  {
    name: 'our backup waits at the passcode prompt: ALREADY_RUNNING (passcodeWaiting)',
    now: '2024-06-12T12:00:00+02:00',
    device: { passcodeWaiting: true },
    expect: { reasonCode: 'ALREADY_RUNNING', params: { passcodeWaiting: true } },
  },
  {
    name: 'global limit reached: CONCURRENCY_LIMIT',
    now: '2024-06-12T12:00:00+02:00',
    global: { running: 2, concurrency: 2 },
    expect: {
      reasonCode: 'CONCURRENCY_LIMIT',
      nextCheckAt: null,
      params: { running: 2, concurrency: 2 },
    },
  },
  {
    name: 'one slot left: start',
    now: '2024-06-12T12:00:00+02:00',
    global: { running: 1, concurrency: 2 },
    expect: { action: 'start' },
  },
  {
    name: 'not reachable is reported before the concurrency limit',
    now: '2024-06-12T12:00:00+02:00',
    device: { reachable: { usb: false, wifi: false } },
    global: { running: 2, concurrency: 2 },
    expect: { reasonCode: 'NOT_REACHABLE' },
  },
]);

// ---- window 01:00-05:00 Berlin ----
check([
  {
    name: 'window: inside and due: start',
    now: '2024-06-12T02:00:00+02:00',
    policy: { window: NIGHT },
    device: { lastSuccessAt: d('2024-06-11T01:10:00+02:00') },
    expect: { action: 'start' },
  },
  {
    name: 'window: due at noon, outside: OUTSIDE_WINDOW until 01:00 tomorrow',
    now: '2024-06-12T12:00:00+02:00',
    policy: { window: NIGHT },
    device: { lastSuccessAt: d('2024-06-11T01:10:00+02:00') },
    expect: {
      reasonCode: 'OUTSIDE_WINDOW',
      nextCheckAt: d('2024-06-13T01:00:00+02:00'),
      params: { windowOpensAt: d('2024-06-13T01:00:00+02:00') },
    },
  },
  {
    name: 'window: end is exclusive (05:00 is outside)',
    now: '2024-06-12T05:00:00+02:00',
    policy: { window: NIGHT },
    expect: {
      reasonCode: 'OUTSIDE_WINDOW',
      params: { windowOpensAt: d('2024-06-13T01:00:00+02:00') },
    },
  },
  {
    name: 'window: start is inclusive (01:00 is inside)',
    now: '2024-06-12T01:00:00+02:00',
    policy: { window: NIGHT },
    expect: { action: 'start' },
  },
  {
    name: 'window: yesterday started late (04:30): due from today\u2019s opening, no creeping',
    now: '2024-06-12T01:05:00+02:00',
    policy: { window: NIGHT },
    device: { lastSuccessAt: d('2024-06-11T04:30:00+02:00') },
    expect: { action: 'start' },
  },
  {
    name: 'window: already backed up in this occurrence: NOT_DUE until tomorrow\u2019s opening',
    now: '2024-06-12T03:00:00+02:00',
    policy: { window: NIGHT },
    device: { lastSuccessAt: d('2024-06-12T01:10:00+02:00') },
    expect: {
      reasonCode: 'NOT_DUE',
      nextCheckAt: d('2024-06-13T01:00:00+02:00'),
      params: { nextDueAt: d('2024-06-13T01:00:00+02:00') },
    },
  },
  {
    name: 'window + 12 h interval: a second backup in a long window once 12 h passed',
    now: '2024-06-12T20:00:00+02:00',
    policy: { window: { start: '08:00', end: '23:00' }, minIntervalMs: 12 * HOUR },
    device: { lastSuccessAt: d('2024-06-12T08:00:00+02:00') },
    expect: { action: 'start' },
  },
  {
    name: 'window + weekly interval: due in the window 7 days on, not before',
    now: '2024-06-18T02:00:00+02:00',
    policy: { window: NIGHT, minIntervalMs: 7 * DAY },
    device: { lastSuccessAt: d('2024-06-12T02:00:00+02:00') },
    expect: { reasonCode: 'NOT_DUE', params: { nextDueAt: d('2024-06-19T01:00:00+02:00') } },
  },
  {
    name: 'manual backup at 15:00 resets the interval: tonight\u2019s window is skipped',
    now: '2024-06-13T01:30:00+02:00',
    policy: { window: NIGHT },
    device: { lastSuccessAt: d('2024-06-12T15:00:00+02:00') },
    expect: { reasonCode: 'NOT_DUE', params: { nextDueAt: d('2024-06-14T01:00:00+02:00') } },
  },
  {
    name: 'manual backup resets the interval (no window): due 24 h after it',
    now: '2024-06-13T01:30:00+02:00',
    device: { lastSuccessAt: d('2024-06-12T15:00:00+02:00') },
    expect: { reasonCode: 'NOT_DUE', params: { nextDueAt: d('2024-06-13T15:00:00+02:00') } },
  },
]);

// ---- windows crossing midnight ----
const LATE = { start: '22:00', end: '06:00' };
check([
  {
    name: 'crossing midnight: 23:30 is inside',
    now: '2024-06-12T23:30:00+02:00',
    policy: { window: LATE },
    expect: { action: 'start' },
  },
  {
    name: 'crossing midnight: 05:59 next morning is inside',
    now: '2024-06-13T05:59:00+02:00',
    policy: { window: LATE },
    expect: { action: 'start' },
  },
  {
    name: 'crossing midnight: 06:00 is outside, opens 22:00 the same day',
    now: '2024-06-13T06:00:00+02:00',
    policy: { window: LATE },
    expect: {
      reasonCode: 'OUTSIDE_WINDOW',
      params: { windowOpensAt: d('2024-06-13T22:00:00+02:00') },
    },
  },
  {
    name: 'crossing midnight: noon waits for 22:00',
    now: '2024-06-13T12:00:00+02:00',
    policy: { window: LATE },
    expect: { params: { windowOpensAt: d('2024-06-13T22:00:00+02:00') } },
  },
  {
    name: 'window ending at midnight: 23:59 inside',
    now: '2024-06-13T23:59:00+02:00',
    policy: { window: { start: '22:00', end: '00:00' } },
    expect: { action: 'start' },
  },
  {
    name: 'window ending at midnight: 00:00 outside',
    now: '2024-06-14T00:00:00+02:00',
    policy: { window: { start: '22:00', end: '00:00' } },
    expect: {
      reasonCode: 'OUTSIDE_WINDOW',
      params: { windowOpensAt: d('2024-06-14T22:00:00+02:00') },
    },
  },
  {
    name: 'crossing midnight: backed up at 23:10, at 02:00 (same night) not due; next night at 22:00',
    now: '2024-06-13T02:00:00+02:00',
    policy: { window: LATE },
    device: { lastSuccessAt: d('2024-06-12T23:10:00+02:00') },
    expect: { reasonCode: 'NOT_DUE', params: { nextDueAt: d('2024-06-13T22:00:00+02:00') } },
  },
]);

// ---- time zones: the same instant, three users ----
const INSTANT = '2024-06-01T01:30:00Z';
check([
  {
    name: 'time zone: Berlin 03:30 is inside 01:00-05:00',
    now: INSTANT,
    tz: BERLIN,
    policy: { window: NIGHT },
    expect: { action: 'start' },
  },
  {
    name: 'time zone: New York 21:30 is outside, opens 01:00 EDT',
    now: INSTANT,
    tz: NEW_YORK,
    policy: { window: NIGHT },
    expect: { reasonCode: 'OUTSIDE_WINDOW', params: { windowOpensAt: d('2024-06-01T05:00:00Z') } },
  },
  {
    name: 'time zone: Tokyo 10:30 is outside, opens 01:00 JST tomorrow',
    now: INSTANT,
    tz: 'Asia/Tokyo',
    policy: { window: NIGHT },
    expect: { params: { windowOpensAt: d('2024-06-01T16:00:00Z') } },
  },
  {
    name: 'time zone: Kolkata (+05:30) 07:00 is outside, opens 01:00 IST tomorrow',
    now: INSTANT,
    tz: 'Asia/Kolkata',
    policy: { window: NIGHT },
    expect: { params: { windowOpensAt: d('2024-06-01T19:30:00Z') } },
  },
]);

// ---- DST transition days ----
check([
  {
    name: 'DST Berlin spring (31 Mar): 01:00-05:00 opens at 01:00 CET as usual',
    now: '2024-03-31T00:00:00Z',
    policy: { window: NIGHT },
    device: { lastSuccessAt: d('2024-03-30T01:10:00+01:00') },
    expect: { action: 'start' },
  },
  {
    name: 'DST Berlin spring: 23-hour day, last backup 01:10 yesterday, due at 01:00 (window rule)',
    now: '2024-03-31T01:00:00+01:00',
    policy: { window: NIGHT },
    device: { lastSuccessAt: d('2024-03-30T01:10:00+01:00') },
    expect: { action: 'start' },
  },
  {
    name: 'DST Berlin spring: window starting in the skipped hour (02:30) opens at the jump (03:00 CEST)',
    now: '2024-03-31T01:59:00+01:00',
    policy: { window: { start: '02:30', end: '05:00' } },
    expect: {
      reasonCode: 'OUTSIDE_WINDOW',
      params: { windowOpensAt: d('2024-03-31T03:00:00+02:00') },
    },
  },
  {
    name: 'DST Berlin spring: 03:00 CEST, just after the jump, is inside a 02:30 window',
    now: '2024-03-31T03:00:00+02:00',
    policy: { window: { start: '02:30', end: '05:00' } },
    expect: { action: 'start' },
  },
  {
    name: 'DST Berlin spring: window 02:00-03:00 lies in the skipped hour; it runs 03:00-04:00 CEST',
    now: '2024-03-31T03:30:00+02:00',
    policy: { window: { start: '02:00', end: '03:00' } },
    expect: { action: 'start' },
  },
  {
    name: 'DST Berlin spring: ... and closes at 04:00 CEST',
    now: '2024-03-31T04:00:00+02:00',
    policy: { window: { start: '02:00', end: '03:00' } },
    expect: {
      reasonCode: 'OUTSIDE_WINDOW',
      params: { windowOpensAt: d('2024-04-01T02:00:00+02:00') },
    },
  },
  {
    name: 'DST Berlin autumn (27 Oct): the repeated 02:15 CET (second pass) is inside 01:00-02:30',
    now: '2024-10-27T02:15:00+01:00',
    policy: { window: { start: '01:00', end: '02:30' } },
    expect: { action: 'start' },
  },
  {
    name: 'DST Berlin autumn: 02:30 CET (second pass) closes 01:00-02:30',
    now: '2024-10-27T02:30:00+01:00',
    policy: { window: { start: '01:00', end: '02:30' } },
    expect: {
      reasonCode: 'OUTSIDE_WINDOW',
      params: { windowOpensAt: d('2024-10-28T01:00:00+01:00') },
    },
  },
  {
    name: 'DST Berlin autumn: 25-hour day, a late start (04:50 CEST) the day before is still due at the opening',
    now: '2024-10-27T01:00:00+02:00',
    policy: { window: NIGHT },
    device: { lastSuccessAt: d('2024-10-26T04:50:00+02:00') },
    expect: { action: 'start' },
  },
  {
    name: 'DST New York spring (10 Mar): 02:00-06:00 opens at the jump, 03:00 EDT',
    now: '2024-03-10T01:59:00-05:00',
    tz: NEW_YORK,
    policy: { window: { start: '02:00', end: '06:00' } },
    expect: { params: { windowOpensAt: d('2024-03-10T03:00:00-04:00') } },
  },
  {
    name: 'DST New York autumn (3 Nov): 01:30 opens at the FIRST 01:30 (EDT)',
    now: '2024-11-03T01:00:00-04:00',
    tz: NEW_YORK,
    policy: { window: { start: '01:30', end: '03:00' } },
    expect: { params: { windowOpensAt: d('2024-11-03T01:30:00-04:00') } },
  },
  {
    name: 'DST New York autumn: the second 01:15 (EST) is inside 01:30-03:00 (opened at the first 01:30)',
    now: '2024-11-03T01:15:00-05:00',
    tz: NEW_YORK,
    policy: { window: { start: '01:30', end: '03:00' } },
    expect: { action: 'start' },
  },
  {
    name: 'DST New York autumn: 23:00-01:30 crossing midnight closes at the second 01:30 (EST)',
    now: '2024-11-03T01:29:00-05:00',
    tz: NEW_YORK,
    policy: { window: { start: '23:00', end: '01:30' } },
    expect: { action: 'start' },
  },
]);

// ---- retries: backoff and the daily cap ----
const NOW = '2024-06-12T02:00:00+02:00';
const DUE = { lastSuccessAt: d('2024-06-10T02:00:00+02:00') };
check([
  {
    name: 'retry: 10 min after the first failure: RETRY_BACKOFF until +15 min',
    now: NOW,
    policy: { window: NIGHT },
    device: {
      ...DUE,
      consecutiveFailures: 1,
      attemptsToday: 1,
      lastAttemptAt: plus(NOW, -10 * MIN),
      lastFailureReason: 'WIFI_UNREACHABLE',
    },
    expect: {
      reasonCode: 'RETRY_BACKOFF',
      nextCheckAt: plus(NOW, 5 * MIN),
      params: {
        retryAt: plus(NOW, 5 * MIN),
        consecutiveFailures: 1,
        lastFailureReason: 'WIFI_UNREACHABLE',
      },
    },
  },
  {
    name: 'retry: 15 min after the first failure: start, trigger retry',
    now: NOW,
    policy: { window: NIGHT },
    device: {
      ...DUE,
      consecutiveFailures: 1,
      attemptsToday: 1,
      lastAttemptAt: plus(NOW, -15 * MIN),
    },
    expect: { action: 'start', trigger: 'retry', reason: 'due' },
  },
  {
    name: 'retry: third failure waits 15*2^2 = 60 min',
    now: NOW,
    policy: { window: NIGHT },
    device: {
      ...DUE,
      consecutiveFailures: 3,
      attemptsToday: 3,
      lastAttemptAt: plus(NOW, -59 * MIN),
    },
    expect: { reasonCode: 'RETRY_BACKOFF', params: { retryAt: plus(NOW, 1 * MIN) } },
  },
  {
    name: 'retry: backoff capped at maxDelayMs',
    now: NOW,
    policy: { retry: { maxPerDay: 50 } },
    device: {
      ...DUE,
      consecutiveFailures: 12,
      attemptsToday: 12,
      lastAttemptAt: plus(NOW, -1 * MIN),
    },
    expect: { reasonCode: 'RETRY_BACKOFF', params: { retryAt: plus(NOW, 4 * HOUR - 1 * MIN) } },
  },
  {
    name: 'retry: retry time after the window closes: look again at the next opening',
    now: '2024-06-12T04:30:00+02:00',
    policy: { window: NIGHT },
    device: {
      ...DUE,
      consecutiveFailures: 3,
      attemptsToday: 3,
      lastAttemptAt: d('2024-06-12T04:20:00+02:00'),
    },
    expect: {
      reasonCode: 'RETRY_BACKOFF',
      nextCheckAt: d('2024-06-13T01:00:00+02:00'),
      params: { retryAt: d('2024-06-12T05:20:00+02:00') },
    },
  },
  {
    name: 'cap: 5 failed attempts in tonight\u2019s window: RETRY_CAP_REACHED until tomorrow\u2019s opening',
    now: NOW,
    policy: { window: NIGHT },
    device: {
      ...DUE,
      consecutiveFailures: 5,
      attemptsToday: 5,
      lastAttemptAt: plus(NOW, -5 * HOUR + 4 * HOUR),
    },
    expect: {
      reasonCode: 'RETRY_CAP_REACHED',
      nextCheckAt: d('2024-06-13T01:00:00+02:00'),
      params: { nextDayAt: d('2024-06-13T01:00:00+02:00'), attemptsToday: 5, maxPerDay: 5 },
    },
  },
  {
    name: 'cap: counter from yesterday\u2019s window is stale: a new night starts fresh',
    now: NOW,
    policy: { window: NIGHT },
    device: {
      ...DUE,
      consecutiveFailures: 5,
      attemptsToday: 5,
      lastAttemptAt: d('2024-06-11T04:30:00+02:00'),
    },
    expect: { action: 'start', trigger: 'retry' },
  },
  {
    name: 'cap: a night window crossing midnight is one policy day (23:30 and 02:00 count together)',
    now: '2024-06-13T02:00:00+02:00',
    policy: { window: LATE, retry: { maxPerDay: 2 } },
    device: {
      ...DUE,
      consecutiveFailures: 2,
      attemptsToday: 2,
      lastAttemptAt: d('2024-06-12T23:30:00+02:00'),
    },
    expect: {
      reasonCode: 'RETRY_CAP_REACHED',
      params: { nextDayAt: d('2024-06-13T22:00:00+02:00') },
    },
  },
  {
    name: 'cap with window any: the policy day is the local calendar day',
    now: '2024-06-12T15:00:00+02:00',
    device: {
      ...DUE,
      consecutiveFailures: 5,
      attemptsToday: 5,
      lastAttemptAt: d('2024-06-12T09:00:00+02:00'),
    },
    expect: {
      reasonCode: 'RETRY_CAP_REACHED',
      params: { nextDayAt: d('2024-06-13T00:00:00+02:00') },
    },
  },
  {
    name: 'cap does not apply after a success (failures 0), whatever the counter',
    now: NOW,
    device: {
      ...DUE,
      consecutiveFailures: 0,
      attemptsToday: 9,
      lastAttemptAt: plus(NOW, -1 * MIN),
    },
    expect: { action: 'start', trigger: 'schedule' },
  },
  {
    name: 'retry: a backoff is reported before NOT_REACHABLE',
    now: NOW,
    device: {
      ...DUE,
      reachable: { usb: false, wifi: false },
      consecutiveFailures: 1,
      attemptsToday: 1,
      lastAttemptAt: plus(NOW, -1 * MIN),
    },
    expect: { reasonCode: 'RETRY_BACKOFF' },
  },
]);

// ---- clock changes ----
check([
  {
    name: 'clock set back: a last success "tomorrow" is distrusted; back up rather than lose days',
    now: '2024-06-12T12:00:00+02:00',
    device: { lastSuccessAt: d('2024-06-13T12:00:00+02:00') },
    expect: { action: 'start' },
  },
  {
    name: 'small skew (2 min in the future) is tolerated: NOT_DUE',
    now: '2024-06-12T12:00:00+02:00',
    device: { lastSuccessAt: d('2024-06-12T12:02:00+02:00') },
    expect: { reasonCode: 'NOT_DUE', params: { nextDueAt: d('2024-06-13T12:00:00+02:00') } },
  },
  {
    name: 'clock set back: a future lastAttemptAt does not hold a retry for a day',
    now: NOW,
    device: { ...DUE, consecutiveFailures: 1, attemptsToday: 1, lastAttemptAt: plus(NOW, DAY) },
    expect: { action: 'start', trigger: 'retry' },
  },
]);

// ---- the passcode policy (iOS 16.1+) ----
const PC = { passcodeRequired: true, ...DUE };
check([
  {
    name: 'passcode: unlocked 2 min ago, due, in window: start now (device-in-use)',
    now: NOW,
    policy: { window: NIGHT },
    device: { ...PC, lastUnlockedAt: plus(NOW, -2 * MIN) },
    expect: { action: 'start', reason: 'device-in-use' },
  },
  {
    name: 'passcode: in use 1 min ago (unlock long ago): device-in-use',
    now: NOW,
    policy: { window: NIGHT },
    device: { ...PC, lastUnlockedAt: plus(NOW, -5 * HOUR), inUseAt: plus(NOW, -1 * MIN) },
    expect: { action: 'start', reason: 'device-in-use' },
  },
  {
    name: 'passcode: no recent unlock, window open since 01:00: WAITING_FOR_UNLOCK until 03:00',
    now: NOW,
    policy: { window: NIGHT },
    device: { ...PC, lastUnlockedAt: plus(NOW, -6 * MIN) },
    expect: {
      reasonCode: 'WAITING_FOR_UNLOCK',
      nextCheckAt: d('2024-06-12T03:00:00+02:00'),
      params: { waitUntil: d('2024-06-12T03:00:00+02:00'), lastUnlockedAt: plus(NOW, -6 * MIN) },
    },
  },
  {
    name: 'passcode: wait deadline passed: start anyway (unlock-wait-over), the prompt will notify',
    now: '2024-06-12T03:00:00+02:00',
    policy: { window: NIGHT },
    device: PC,
    expect: { action: 'start', reason: 'unlock-wait-over' },
  },
  {
    name: 'passcode: short window 01:00-02:30: stop waiting 1 h before it closes (01:30)',
    now: '2024-06-12T01:20:00+02:00',
    policy: { window: { start: '01:00', end: '02:30' } },
    device: PC,
    expect: {
      reasonCode: 'WAITING_FOR_UNLOCK',
      params: { waitUntil: d('2024-06-12T01:30:00+02:00') },
    },
  },
  {
    name: 'passcode: short window, 01:30 reached: start',
    now: '2024-06-12T01:30:00+02:00',
    policy: { window: { start: '01:00', end: '02:30' } },
    device: PC,
    expect: { action: 'start', reason: 'unlock-wait-over' },
  },
  {
    name: 'passcode: window shorter than minWindowLeft: no waiting at all',
    now: '2024-06-12T01:00:00+02:00',
    policy: { window: { start: '01:00', end: '01:45' } },
    device: PC,
    expect: { action: 'start', reason: 'unlock-wait-over' },
  },
  {
    name: 'passcode not required: start without waiting (due)',
    now: NOW,
    policy: { window: NIGHT },
    device: { ...PC, passcodeRequired: false },
    expect: { action: 'start', reason: 'due' },
  },
  {
    name: 'passcode, no window: due since 24 h after the last success; wait 2 h from then',
    now: '2024-06-12T02:30:00+02:00',
    device: { passcodeRequired: true, lastSuccessAt: d('2024-06-11T02:00:00+02:00') },
    expect: {
      reasonCode: 'WAITING_FOR_UNLOCK',
      params: { waitUntil: d('2024-06-12T04:00:00+02:00') },
    },
  },
  {
    name: 'passcode, no window, never backed up: nothing to wait from, start',
    now: NOW,
    device: { passcodeRequired: true },
    expect: { action: 'start', reason: 'due' },
  },
  {
    name: 'passcode: waiting is reported only for reachable devices',
    now: NOW,
    policy: { window: NIGHT },
    device: { ...PC, reachable: { usb: false, wifi: false } },
    expect: { reasonCode: 'NOT_REACHABLE' },
  },
  {
    name: 'passcode not entered 20 min ago: back off at least 1 h',
    now: NOW,
    policy: { window: NIGHT },
    device: {
      ...PC,
      consecutiveFailures: 1,
      attemptsToday: 1,
      lastAttemptAt: plus(NOW, -20 * MIN),
      lastFailureReason: PASSCODE_NOT_ENTERED,
    },
    expect: {
      reasonCode: 'RETRY_BACKOFF',
      params: { retryAt: plus(NOW, 40 * MIN), lastFailureReason: PASSCODE_NOT_ENTERED },
    },
  },
  {
    name: 'passcode not entered, then the user unlocked: retry once the ordinary backoff (15 min) passed',
    now: NOW,
    policy: { window: NIGHT },
    device: {
      ...PC,
      consecutiveFailures: 1,
      attemptsToday: 1,
      lastAttemptAt: plus(NOW, -20 * MIN),
      lastFailureReason: PASSCODE_NOT_ENTERED,
      lastUnlockedAt: plus(NOW, -1 * MIN),
    },
    expect: { action: 'start', trigger: 'retry', reason: 'device-in-use' },
  },
  {
    name: 'passcode not entered, unlocked since, but the ordinary backoff is not over: wait for it',
    now: NOW,
    policy: { window: NIGHT },
    device: {
      ...PC,
      consecutiveFailures: 1,
      attemptsToday: 1,
      lastAttemptAt: plus(NOW, -10 * MIN),
      lastFailureReason: PASSCODE_NOT_ENTERED,
      lastUnlockedAt: plus(NOW, -1 * MIN),
    },
    expect: { reasonCode: 'RETRY_BACKOFF', params: { retryAt: plus(NOW, 5 * MIN) } },
  },
  {
    name: 'passcode not entered: an unlock BEFORE the failed attempt does not shorten the backoff',
    now: NOW,
    policy: { window: NIGHT },
    device: {
      ...PC,
      consecutiveFailures: 1,
      attemptsToday: 1,
      lastAttemptAt: plus(NOW, -2 * MIN),
      lastFailureReason: PASSCODE_NOT_ENTERED,
      lastUnlockedAt: plus(NOW, -4 * MIN),
    },
    expect: { reasonCode: 'RETRY_BACKOFF', params: { retryAt: plus(NOW, 58 * MIN) } },
  },
  {
    name: 'passcode not entered, backoff over, nobody unlocked: wait for an unlock again (from the retry time)',
    now: '2024-06-12T02:20:00+02:00',
    policy: { window: NIGHT },
    device: {
      ...PC,
      consecutiveFailures: 1,
      attemptsToday: 1,
      lastAttemptAt: d('2024-06-12T01:10:00+02:00'),
      lastFailureReason: PASSCODE_NOT_ENTERED,
    },
    expect: {
      reasonCode: 'WAITING_FOR_UNLOCK',
      params: { waitUntil: d('2024-06-12T04:00:00+02:00') },
    },
  },
  {
    name: 'device locked 2 min ago, unlocked since: retry now, not after the backoff',
    now: NOW,
    policy: { window: NIGHT },
    device: {
      ...PC,
      consecutiveFailures: 1,
      attemptsToday: 1,
      lastAttemptAt: plus(NOW, -2 * MIN),
      lastFailureReason: DEVICE_LOCKED,
      lastUnlockedAt: plus(NOW, -1 * MIN),
    },
    expect: { action: 'start', trigger: 'retry', reason: 'device-in-use' },
  },
  ...(['NOT_UNLOCKED_SINCE_REBOOT', 'NOT_UNLOCKED_24H'] as const).map((reason) => ({
    name: `${reason} 2 min ago, unlocked since: retry now, not after the backoff`,
    now: NOW,
    policy: { window: NIGHT },
    device: {
      ...PC,
      consecutiveFailures: 1,
      attemptsToday: 1,
      lastAttemptAt: plus(NOW, -2 * MIN),
      lastFailureReason: reason,
      lastUnlockedAt: plus(NOW, -1 * MIN),
    },
    expect: { action: 'start', trigger: 'retry', reason: 'device-in-use' },
  })),
  {
    name: 'not unlocked since a reboot, 2 min ago, and still not: the ordinary backoff',
    now: NOW,
    policy: { window: NIGHT },
    device: {
      ...PC,
      consecutiveFailures: 1,
      attemptsToday: 1,
      lastAttemptAt: plus(NOW, -2 * MIN),
      lastFailureReason: 'NOT_UNLOCKED_SINCE_REBOOT',
    },
    expect: { reasonCode: 'RETRY_BACKOFF', params: { retryAt: plus(NOW, 13 * MIN) } },
  },
  {
    name: 'device locked 2 min ago, not unlocked since: the ordinary backoff',
    now: NOW,
    policy: { window: NIGHT },
    device: {
      ...PC,
      consecutiveFailures: 1,
      attemptsToday: 1,
      lastAttemptAt: plus(NOW, -2 * MIN),
      lastFailureReason: DEVICE_LOCKED,
      lastUnlockedAt: plus(NOW, -3 * MIN),
    },
    expect: { reasonCode: 'RETRY_BACKOFF', params: { retryAt: plus(NOW, 13 * MIN) } },
  },
  {
    name: 'device locked five times today: the cap holds even after an unlock',
    now: NOW,
    policy: { window: NIGHT },
    device: {
      ...PC,
      consecutiveFailures: 5,
      attemptsToday: 5,
      lastAttemptAt: plus(NOW, -2 * MIN),
      lastFailureReason: DEVICE_LOCKED,
      lastUnlockedAt: plus(NOW, -1 * MIN),
    },
    expect: { reasonCode: 'RETRY_CAP_REACHED' },
  },
  {
    name: 'passcode not entered five times tonight: RETRY_CAP_REACHED',
    now: NOW,
    policy: { window: NIGHT },
    device: {
      ...PC,
      consecutiveFailures: 5,
      attemptsToday: 5,
      lastAttemptAt: plus(NOW, -1 * MIN),
      lastFailureReason: PASSCODE_NOT_ENTERED,
      lastUnlockedAt: plus(NOW, -1 * MIN),
    },
    expect: { reasonCode: 'RETRY_CAP_REACHED' },
  },
  {
    name: 'passcode: device in use, but all slots busy: CONCURRENCY_LIMIT',
    now: NOW,
    policy: { window: NIGHT },
    device: { ...PC, lastUnlockedAt: plus(NOW, -1 * MIN) },
    global: { running: 1, concurrency: 1 },
    expect: { reasonCode: 'CONCURRENCY_LIMIT' },
  },
]);

// ---- manual "back up now" ----
test('decideManual ignores window, interval, retries, pause and enabled', () => {
  const dev = device({
    lastSuccessAt: d('2024-06-12T11:00:00Z'),
    consecutiveFailures: 5,
    attemptsToday: 5,
    lastAttemptAt: d('2024-06-12T11:59:00Z'),
  });
  assert.deepEqual(decideManual(dev, { running: 0, concurrency: 1 }), {
    action: 'start',
    trigger: 'manual',
    reason: 'manual',
    transport: 'usb',
  });
});

test('decideManual respects running, reachability and the global limit', () => {
  const load = { running: 0, concurrency: 1 };
  compare(decideManual(device({ running: true }), load), { reasonCode: 'ALREADY_RUNNING' });
  compare(decideManual(device({ passcodeWaiting: true }), load), { reasonCode: 'ALREADY_RUNNING' });
  compare(decideManual(device({ reachable: { usb: false, wifi: false } }), load), {
    reasonCode: 'NOT_REACHABLE',
  });
  compare(decideManual(device(), { running: 1, concurrency: 1 }), {
    reasonCode: 'CONCURRENCY_LIMIT',
  });
  compare(decideManual(device({ reachable: { usb: false, wifi: true } }), load), {
    action: 'start',
    transport: 'wifi',
  });
});

// ---- helpers and settings ----
test('retryDelayMs: exponential, capped, and at least the initial delay', () => {
  const r = { initialDelayMs: 1000, maxDelayMs: 10_000, factor: 3, maxPerDay: 5 };
  assert.deepEqual(
    [0, 1, 2, 3, 4].map((n) => retryDelayMs(r, n)),
    [1000, 1000, 3000, 9000, 10_000],
  );
});

test('isDue and nextDueAt agree with decide', () => {
  const p = resolvePolicy({ window: NIGHT });
  const last = d('2024-06-12T01:10:00+02:00');
  assert.equal(isDue(d('2024-06-12T12:00:00+02:00'), BERLIN, p, last), false);
  assert.equal(isDue(d('2024-06-13T01:00:00+02:00'), BERLIN, p, last), true);
  assert.equal(isDue(d('2024-06-13T00:59:00+02:00'), BERLIN, p, last), false);
  assert.equal(isDue(d('2024-06-13T00:59:00+02:00'), BERLIN, p), true);
  assert.deepEqual(
    nextDueAt(d('2024-06-12T12:00:00+02:00'), BERLIN, p, last),
    d('2024-06-13T01:00:00+02:00'),
  );
  assert.deepEqual(
    nextDueAt(d('2024-06-12T12:00:00+02:00'), BERLIN, p),
    d('2024-06-13T01:00:00+02:00'),
  );
  assert.deepEqual(
    nextDueAt(d('2024-06-13T02:00:00+02:00'), BERLIN, p, last),
    d('2024-06-13T02:00:00+02:00'),
  );
});

test('resolvePolicy: defaults, global, then device; pause-all cannot be escaped by a device', () => {
  assert.deepEqual(resolvePolicy(), DEFAULT_POLICY);
  const p = resolvePolicy(
    { minIntervalMs: 2 * DAY, window: NIGHT, retry: { maxPerDay: 3 }, paused: true },
    { window: 'any', retry: { factor: 3 }, paused: false, passcode: { recentUseMs: MIN } },
  );
  assert.equal(p.minIntervalMs, 2 * DAY);
  assert.equal(p.window, 'any');
  assert.deepEqual(p.retry, { ...DEFAULT_POLICY.retry, maxPerDay: 3, factor: 3 });
  assert.equal(p.passcode.recentUseMs, MIN);
  assert.equal(p.paused, true);
  assert.equal(resolvePolicy({}, { paused: true }).paused, true);
  assert.equal(resolvePolicy({ enabled: true }, { enabled: false }).enabled, false);
  assert.equal(
    resolvePolicy({ retry: { factor: undefined } }).retry.factor,
    DEFAULT_POLICY.retry.factor,
  );
});

test('resolvePolicy refuses bad settings with USAGE errors naming them', () => {
  const bad: [PolicyOverrides, RegExp][] = [
    [{ window: { start: '25:00', end: '05:00' } }, /25:00/],
    [{ window: { start: '1:00', end: '05:00' } }, /1:00/],
    [{ window: { start: '02:00', end: '02:00' } }, /empty/],
    [{ minIntervalMs: -1 }, /minIntervalMs/],
    [{ minIntervalMs: Number.NaN }, /minIntervalMs/],
    [{ retry: { factor: 0.5 } }, /factor/],
    [{ retry: { maxPerDay: 0 } }, /maxPerDay/],
    [{ retry: { maxPerDay: 1.5 } }, /maxPerDay/],
    [{ retry: { initialDelayMs: 0 } }, /initialDelayMs/],
    [{ retry: { initialDelayMs: 10_000, maxDelayMs: 5000 } }, /maxDelayMs/],
    [{ passcode: { waitForUnlockMs: -5 } }, /waitForUnlockMs/],
  ];
  for (const [over, re] of bad) {
    assert.throws(
      () => resolvePolicy(over),
      (e: unknown) => isMooringError(e, 'USAGE') && re.test(e.message),
      JSON.stringify(over),
    );
  }
});

test('decide refuses an unknown time zone with a USAGE error', () => {
  assert.throws(
    () =>
      decide(new Date(), 'Mars/Olympus_Mons', resolvePolicy(), device(), {
        running: 0,
        concurrency: 1,
      }),
    (e: unknown) => isMooringError(e, 'USAGE') && /Mars\/Olympus_Mons/.test(e.message),
  );
});
