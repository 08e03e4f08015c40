/**
 * decide() driven over whole weeks around DST changes, the way the agent drives it: a simulated
 * device whose state the decisions update (a started backup runs 20 min, then succeeds or fails).
 * Each world runs twice — stepping every minute, and jumping from one nextCheckAt/event to the
 * next as the ticker's wakeups would — and both must start the same backups at the same times,
 * which shows that nextCheckAt never sleeps past a moment when a backup should start.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  decide,
  PASSCODE_NOT_ENTERED,
  policyDay,
  resolvePolicy,
  wallClock,
  type DeviceState,
  type PolicyOverrides,
  type SchedulePolicy,
} from '../../src/scheduler';

const MIN = 60_000;
const DURATION = 20 * MIN;

interface World {
  tz: string;
  policy: PolicyOverrides;
  from: string;
  days: number;
  /** Reachability as a function of the local minute of the day and day of the month (default always). */
  reachable?: (minuteOfDay: number, dayOfMonth: number) => boolean;
  /** Local minutes of the day at which the user unlocks the phone. */
  unlocks?: number[];
  passcodeRequired?: boolean;
  /** Outcome of the n-th attempt (0-based) of a policy day. */
  outcome?: (nth: number) => 'ok' | 'fail' | 'passcode';
}

interface Start {
  at: string;
  trigger: string;
  reason: string;
}

function localHm(t: number, tz: string): number {
  const w = wallClock(t, tz);
  return w.hour * 60 + w.minute;
}

function reachableAt(world: World, t: number): boolean {
  if (world.reachable === undefined) return true;
  const w = wallClock(t, world.tz);
  return world.reachable(w.hour * 60 + w.minute, w.day);
}

function simulate(world: World, mode: 'minutes' | 'events'): Start[] {
  const policy: SchedulePolicy = resolvePolicy(world.policy);
  const t0 = new Date(world.from).getTime();
  const end = t0 + world.days * 24 * 60 * MIN;
  const unlocks = new Set(world.unlocks ?? []);
  const starts: Start[] = [];
  const failures: number[] = []; // failure times
  const dev: DeviceState = {
    reachable: { usb: true, wifi: false },
    attemptsToday: 0,
    consecutiveFailures: 0,
    running: false,
    passcodeRequired: world.passcodeRequired === true,
  };
  let runningUntil = 0;
  let runningStart = 0;
  let nthToday = 0;
  let dayStart = -1;
  let t = t0;
  while (t < end) {
    // Finish a running job.
    if (dev.running && t >= runningUntil) {
      dev.running = false;
      const day = policyDay(new Date(runningStart), policy.window, world.tz).start.getTime();
      if (day !== dayStart) {
        dayStart = day;
        nthToday = 0;
      }
      const outcome = (world.outcome ?? (() => 'ok'))(nthToday++);
      dev.lastAttemptAt = new Date(runningUntil);
      if (outcome === 'ok') {
        dev.lastSuccessAt = new Date(runningStart);
        dev.consecutiveFailures = 0;
        delete dev.lastFailureReason;
      } else {
        dev.consecutiveFailures++;
        dev.lastFailureReason = outcome === 'passcode' ? PASSCODE_NOT_ENTERED : 'DEVICE_ERROR';
        failures.push(runningUntil);
      }
    }
    dev.reachable.usb = reachableAt(world, t);
    if (unlocks.size > 0 && unlocks.has(localHm(t, world.tz))) dev.lastUnlockedAt = new Date(t);
    if (failures.length > 0) {
      const today = policyDay(new Date(t), policy.window, world.tz).start.getTime();
      dev.attemptsToday = failures.filter((f) => f >= today).length;
    }

    const dec = decide(new Date(t), world.tz, policy, dev, {
      running: dev.running ? 1 : 0,
      concurrency: 1,
    });
    if (dec.action === 'start') {
      starts.push({ at: new Date(t).toISOString(), trigger: dec.trigger, reason: dec.reason });
      dev.running = true;
      runningStart = t;
      runningUntil = t + DURATION;
    }
    if (mode === 'minutes') {
      t += MIN;
      continue;
    }
    // Events: the job finishing, a reachability change, an unlock (the agent pokes on each),
    // or the decision's own nextCheckAt.
    const candidates: number[] = [];
    if (dev.running) candidates.push(runningUntil);
    if (dec.action === 'skip' && dec.nextCheckAt !== null)
      candidates.push(dec.nextCheckAt.getTime());
    // Scan ahead minute by minute for the next external event, only as far as needed.
    const limit = Math.min(end, ...candidates.filter((c) => c > t), t + 2 * 24 * 60 * MIN);
    let e = (Math.floor(t / MIN) + 1) * MIN;
    const wasReachable = dev.reachable.usb;
    const external = world.reachable !== undefined || unlocks.size > 0;
    for (; external && e < limit; e += MIN) {
      const m = localHm(e, world.tz);
      if (reachableAt(world, e) !== wasReachable || unlocks.has(m)) break;
    }
    const next = external ? Math.min(e, limit) : limit;
    assert.ok(next > t, `no progress at ${new Date(t).toISOString()}: ${JSON.stringify(dec)}`);
    t = next;
  }
  return starts;
}

function localDates(starts: Start[], tz: string): string[] {
  return starts.map((s) => {
    const w = wallClock(new Date(s.at), tz);
    return `${w.year}-${w.month}-${w.day} ${String(w.hour).padStart(2, '0')}:${String(w.minute).padStart(2, '0')}`;
  });
}

function bothWays(world: World): Start[] {
  const byMinute = simulate(world, 'minutes');
  const byEvent = simulate(world, 'events');
  assert.deepEqual(byEvent, byMinute, 'jumping by nextCheckAt must start the same backups');
  return byMinute;
}

test('Berlin, 01:00-05:00, a week across spring-forward: one backup every night at 01:00', () => {
  const starts = bothWays({
    tz: 'Europe/Berlin',
    policy: { window: { start: '01:00', end: '05:00' } },
    from: '2024-03-28T12:00:00+01:00',
    days: 7,
  });
  const local = localDates(starts, 'Europe/Berlin');
  assert.equal(local.length, 7);
  assert.ok(
    local.every((s) => s.endsWith(' 01:00')),
    local.join(', '),
  );
  assert.ok(local.includes('2024-3-31 01:00'));
});

test('New York, 22:00-06:00 crossing midnight, across fall-back: one backup every night at 22:00', () => {
  const starts = bothWays({
    tz: 'America/New_York',
    policy: { window: { start: '22:00', end: '06:00' } },
    from: '2024-10-31T12:00:00-04:00',
    days: 6,
  });
  const local = localDates(starts, 'America/New_York');
  assert.equal(local.length, 6);
  assert.ok(local.includes('2024-11-2 22:00'), local.join(', '));
  assert.ok(
    local.every((s) => s.endsWith(' 22:00')),
    local.join(', '),
  );
});

test('Berlin, spring-forward night with a window in the skipped hour (02:00-03:00): still backed up', () => {
  const starts = bothWays({
    tz: 'Europe/Berlin',
    policy: { window: { start: '02:00', end: '03:00' } },
    from: '2024-03-29T12:00:00+01:00',
    days: 4,
  });
  assert.deepEqual(localDates(starts, 'Europe/Berlin'), [
    '2024-3-30 02:00',
    '2024-3-31 03:00',
    '2024-4-1 02:00',
    '2024-4-2 02:00',
  ]);
});

test('a device that shows up late one night and a little earlier the next is backed up both nights', () => {
  // A plain "24 h since the last start" rule would make the even nights wait for 04:50 and lose them.
  const starts = bothWays({
    tz: 'Europe/Berlin',
    policy: { window: { start: '01:00', end: '05:00' } },
    from: '2024-06-01T12:00:00+02:00',
    days: 6,
    reachable: (hm, day) =>
      day % 2 === 1 ? hm >= 4 * 60 + 50 && hm < 4 * 60 + 55 : hm >= 4 * 60 + 30 && hm < 4 * 60 + 45,
  });
  const local = localDates(starts, 'Europe/Berlin');
  assert.equal(local.length, 6, local.join(', '));
  assert.deepEqual(local.slice(0, 2), ['2024-6-2 04:30', '2024-6-3 04:50']);
});

test('two failures a night: retried with 15 and 30 min backoff, then success; the next night starts fresh', () => {
  const starts = bothWays({
    tz: 'Europe/Berlin',
    policy: { window: { start: '01:00', end: '05:00' } },
    from: '2024-06-01T12:00:00+02:00',
    days: 3,
    outcome: (n) => (n < 2 ? 'fail' : 'ok'),
  });
  const local = localDates(starts, 'Europe/Berlin');
  // 01:00 fails at 01:20; retry 01:35 fails at 01:55; retry 02:25 succeeds.
  assert.deepEqual(local.slice(0, 3), ['2024-6-2 01:00', '2024-6-2 01:35', '2024-6-2 02:25']);
  assert.deepEqual(
    starts.slice(0, 3).map((s) => s.trigger),
    ['schedule', 'retry', 'retry'],
  );
  assert.equal(local.length, 9);
});

test('always failing: never more than maxPerDay attempts a night, at least one every night', () => {
  const starts = bothWays({
    tz: 'Europe/Berlin',
    policy: { window: { start: '22:00', end: '06:00' }, retry: { maxPerDay: 3 } },
    from: '2024-06-01T12:00:00+02:00',
    days: 4,
    outcome: () => 'fail',
  });
  const nights = new Map<string, number>();
  for (const s of starts) {
    const key = policyDay(
      new Date(s.at),
      { start: '22:00', end: '06:00' },
      'Europe/Berlin',
    ).start.toISOString();
    nights.set(key, (nights.get(key) ?? 0) + 1);
  }
  // The backoff keeps growing with consecutive failures across nights (capped at 4 h), so later
  // nights fit fewer retries; the first attempt of each night is never held back.
  assert.deepEqual([...nights.values()], [3, 3, 2, 2]);
  assert.ok(starts.every((s) => localDates([s], 'Europe/Berlin')[0]!.match(/ (2[2-3]|0[0-5]):/)));
});

test('passcode: the user unlocks at 02:30 every night: the backup starts then (device-in-use)', () => {
  const starts = bothWays({
    tz: 'Europe/Berlin',
    policy: { window: { start: '01:00', end: '05:00' } },
    from: '2024-06-01T12:00:00+02:00',
    days: 3,
    passcodeRequired: true,
    unlocks: [2 * 60 + 30],
  });
  assert.deepEqual(localDates(starts, 'Europe/Berlin'), [
    '2024-6-2 02:30',
    '2024-6-3 02:30',
    '2024-6-4 02:30',
  ]);
  assert.ok(starts.every((s) => s.reason === 'device-in-use'));
});

test('passcode: nobody unlocks: start at the wait deadline; passcode never entered: back off, capped', () => {
  const starts = bothWays({
    tz: 'Europe/Berlin',
    policy: { window: { start: '01:00', end: '07:00' }, retry: { maxPerDay: 3 } },
    from: '2024-06-01T12:00:00+02:00',
    days: 2,
    passcodeRequired: true,
    outcome: () => 'passcode',
  });
  // 03:00 deadline (opening + 2 h); fails 03:20; retry at 04:20 (1 h passcode backoff), but waits for an
  // unlock until min(04:20 + 2 h, 07:00 - 1 h) = 06:00; fails 06:20; backoff to 07:20: the window closed.
  assert.deepEqual(localDates(starts, 'Europe/Berlin'), [
    '2024-6-2 03:00',
    '2024-6-2 06:00',
    '2024-6-3 03:00',
    '2024-6-3 06:00',
  ]);
  assert.deepEqual(
    starts.map((s) => s.reason),
    ['unlock-wait-over', 'unlock-wait-over', 'unlock-wait-over', 'unlock-wait-over'],
  );
});
