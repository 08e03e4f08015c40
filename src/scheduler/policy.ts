/**
 * The scheduling policy as pure decisions: given the time, the user's zone, the policy and what is
 * known about a device, say whether to start a backup now and, if not, why and when to look again.
 *
 * Everything is decided from state ("last successful backup older than the interval", "inside the
 * window", "reachable"), never from which tick we are on, so a sleeping computer, a changed clock
 * or a missed tick can delay a backup but never make the schedule forget one.
 *
 * Checks, in order (the first that applies is the reason recorded):
 *   ALREADY_RUNNING, DISABLED, PAUSED, NOT_DUE, OUTSIDE_WINDOW, RETRY_CAP_REACHED, RETRY_BACKOFF,
 *   NOT_REACHABLE, WAITING_FOR_UNLOCK, CONCURRENCY_LIMIT, then start.
 */
import { MooringError } from '../util/errors';
import { DAY_MS, HOUR_MS, MINUTE_MS, assertTimeZone } from './time';
import {
  firstInWindow,
  parseWindow,
  policyDay,
  windowStateAt,
  type WindowOccurrence,
  type WindowSpec,
} from './window';

export interface RetryPolicy {
  /** Delay after the first failure; each further consecutive failure multiplies it by `factor`. */
  initialDelayMs: number;
  maxDelayMs: number;
  factor: number;
  /** Automatic attempts that may fail within one policy day (see `policyDay`) before we stop. */
  maxPerDay: number;
}

/**
 * iOS 16.1+ asks for the passcode on the device at every backup, so a backup started while
 * nobody holds the phone stalls at the prompt. The rule (applies when the device needs the
 * passcode, `DeviceState.passcodeRequired`), once a backup is due, inside the window, reachable
 * and not backing off:
 *  1. device unlocked or in use within `recentUseMs` → start now (reason 'device-in-use');
 *  2. otherwise wait for an unlock, for at most `waitForUnlockMs` after the backup became
 *     eligible (due, window open, backoff over), and never past `minWindowLeftMs` before the
 *     window closes; while waiting: skip 'WAITING_FOR_UNLOCK';
 *  3. when that deadline passes, start anyway (reason 'unlock-wait-over'): the device shows the
 *     prompt and the agent tells the user the phone is waiting for the passcode.
 * A failure with reason PASSCODE_NOT_ENTERED backs off for at least `notEnteredRetryMs` (rather
 * than hammering a phone nobody is looking at), except that an unlock after that failure allows
 * the next attempt as soon as the ordinary exponential backoff has passed. A failure with reason
 * DEVICE_LOCKED (or NOT_UNLOCKED_24H, NOT_UNLOCKED_SINCE_REBOOT) is retried as soon as the
 * device has been unlocked since, without the backoff: that is what its notice promises, and the
 * unlock is the condition it waited for. The per-day retry cap bounds all of it.
 */
export interface PasscodePolicy {
  recentUseMs: number;
  waitForUnlockMs: number;
  minWindowLeftMs: number;
  notEnteredRetryMs: number;
}

export interface SchedulePolicy {
  /** Minimum time between the starts of successful backups (a manual backup counts). */
  minIntervalMs: number;
  window: WindowSpec;
  retry: RetryPolicy;
  passcode: PasscodePolicy;
  /** Per device: false = never back up automatically. */
  enabled: boolean;
  /** Pause all: no automatic backups while true. */
  paused: boolean;
}

export const DEFAULT_POLICY: Readonly<SchedulePolicy> = Object.freeze({
  minIntervalMs: DAY_MS,
  window: 'any',
  retry: Object.freeze({
    initialDelayMs: 15 * MINUTE_MS,
    maxDelayMs: 4 * HOUR_MS,
    factor: 2,
    maxPerDay: 5,
  }),
  passcode: Object.freeze({
    recentUseMs: 5 * MINUTE_MS,
    waitForUnlockMs: 2 * HOUR_MS,
    minWindowLeftMs: HOUR_MS,
    notEnteredRetryMs: HOUR_MS,
  }),
  enabled: true,
  paused: false,
}) as SchedulePolicy;

export interface PolicyOverrides {
  minIntervalMs?: number;
  window?: WindowSpec;
  retry?: Partial<RetryPolicy>;
  passcode?: Partial<PasscodePolicy>;
  enabled?: boolean;
  paused?: boolean;
}

/**
 * Built-in defaults ← global settings ← per-device settings, validated. `paused` is pause-all:
 * a device is paused if either level says so, so a device setting cannot escape a global pause.
 */
export function resolvePolicy(
  global: PolicyOverrides = {},
  device: PolicyOverrides = {},
): SchedulePolicy {
  const pick = <K extends 'minIntervalMs' | 'window' | 'enabled'>(k: K): SchedulePolicy[K] =>
    (device[k] ?? global[k] ?? DEFAULT_POLICY[k]) as SchedulePolicy[K];
  return validatePolicy({
    minIntervalMs: pick('minIntervalMs'),
    window: pick('window'),
    retry: { ...DEFAULT_POLICY.retry, ...defined(global.retry), ...defined(device.retry) },
    passcode: {
      ...DEFAULT_POLICY.passcode,
      ...defined(global.passcode),
      ...defined(device.passcode),
    },
    enabled: pick('enabled'),
    paused: (global.paused ?? false) || (device.paused ?? false),
  });
}

function defined<T extends object>(o: T | undefined): Partial<T> {
  if (o === undefined) return {};
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** Returns `p` unchanged, or throws a USAGE error naming the bad setting. */
export function validatePolicy(p: SchedulePolicy): SchedulePolicy {
  const bad = (what: string): never => {
    throw new MooringError('USAGE', `invalid schedule setting: ${what}`);
  };
  const ms = (v: number, name: string, min = 0): void => {
    if (!Number.isFinite(v) || v < min) bad(`${name} must be a number of milliseconds >= ${min}`);
  };
  ms(p.minIntervalMs, 'minIntervalMs');
  if (p.window !== 'any') {
    if (typeof p.window !== 'object' || p.window === null)
      bad(`window must be {start, end} or 'any'`);
    parseWindow(p.window);
  }
  ms(p.retry.initialDelayMs, 'retry.initialDelayMs', 1);
  ms(p.retry.maxDelayMs, 'retry.maxDelayMs', p.retry.initialDelayMs);
  if (!Number.isFinite(p.retry.factor) || p.retry.factor < 1) bad('retry.factor must be >= 1');
  if (!Number.isInteger(p.retry.maxPerDay) || p.retry.maxPerDay < 1) {
    bad('retry.maxPerDay must be a whole number >= 1');
  }
  ms(p.passcode.recentUseMs, 'passcode.recentUseMs');
  ms(p.passcode.waitForUnlockMs, 'passcode.waitForUnlockMs');
  ms(p.passcode.minWindowLeftMs, 'passcode.minWindowLeftMs');
  ms(p.passcode.notEnteredRetryMs, 'passcode.notEnteredRetryMs');
  if (typeof p.enabled !== 'boolean') bad('enabled must be true or false');
  if (typeof p.paused !== 'boolean') bad('paused must be true or false');
  return p;
}

/** The failure reason (as the agent records it) that triggers the passcode backoff. */
export const PASSCODE_NOT_ENTERED = 'PASSCODE_NOT_ENTERED';
/** The device refused the backup because it was locked (its data protected until unlocked). */
export const DEVICE_LOCKED = 'DEVICE_LOCKED';
/** Failures that an unlock ends: retried as soon as the device has been unlocked since. */
const LOCKED_REASONS: ReadonlySet<string> = new Set([
  DEVICE_LOCKED,
  'NOT_UNLOCKED_24H',
  'NOT_UNLOCKED_SINCE_REBOOT',
]);

export interface DeviceState {
  reachable: { usb: boolean; wifi: boolean };
  /** Last time the device was seen on any transport (reported with NOT_REACHABLE). */
  lastSeenAt?: Date;
  /** START time of the last successful backup, scheduled or manual (starts, not ends, so the
   *  backup's duration does not creep into the next due time). */
  lastSuccessAt?: Date;
  /** END time of the last attempt, any outcome; backoff counts from here. */
  lastAttemptAt?: Date;
  /** Failed automatic attempts in the current policy day (`policyDay`). Ignored (taken as 0)
   *  when `lastAttemptAt` is before the day began, so a stale counter cannot block a new day. */
  attemptsToday: number;
  consecutiveFailures: number;
  /** Reason code of the last failure, e.g. PASSCODE_NOT_ENTERED. */
  lastFailureReason?: string;
  /** A backup of this device is running (coordinator.isRunning). */
  running: boolean;
  /** The device asks for its passcode at each backup (iOS 16.1+ with a passcode set). */
  passcodeRequired?: boolean;
  /** From device notifications: last unlock, and last sign of the device being in use. */
  lastUnlockedAt?: Date;
  inUseAt?: Date;
  /** A backup of ours is waiting at the passcode prompt right now. */
  passcodeWaiting?: boolean;
}

export interface GlobalLoad {
  running: number;
  concurrency: number;
}

export type StartReason = 'due' | 'device-in-use' | 'unlock-wait-over' | 'manual';
export type Trigger = 'schedule' | 'retry' | 'manual';
export type Transport = 'usb' | 'wifi';

export interface StartDecision {
  action: 'start';
  trigger: Trigger;
  reason: StartReason;
  /** USB when available: faster, and it does not depend on Wi-Fi sync staying up. */
  transport: Transport;
}

export interface SkipParamsByCode {
  NOT_DUE: { nextDueAt: Date; lastSuccessAt: Date };
  OUTSIDE_WINDOW: { windowOpensAt: Date };
  NOT_REACHABLE: { lastSeenAt: Date | null };
  ALREADY_RUNNING: { passcodeWaiting: boolean };
  CONCURRENCY_LIMIT: { running: number; concurrency: number };
  RETRY_BACKOFF: { retryAt: Date; consecutiveFailures: number; lastFailureReason: string | null };
  RETRY_CAP_REACHED: { nextDayAt: Date; attemptsToday: number; maxPerDay: number };
  WAITING_FOR_UNLOCK: { waitUntil: Date; lastUnlockedAt: Date | null };
  PAUSED: Record<string, never>;
  DISABLED: Record<string, never>;
}
export type SkipReasonCode = keyof SkipParamsByCode;

export type SkipDecision = {
  [K in SkipReasonCode]: {
    action: 'skip';
    reasonCode: K;
    params: SkipParamsByCode[K];
    /** When decide() could answer differently by the passage of time alone; null when only an
     *  event can change it (device attached, backup finished, setting changed, unlock). */
    nextCheckAt: Date | null;
  };
}[SkipReasonCode];

export type Decision = StartDecision | SkipDecision;

function skip<K extends SkipReasonCode>(
  reasonCode: K,
  params: SkipParamsByCode[K],
  nextCheckAt: Date | number | null,
): SkipDecision {
  const at = nextCheckAt === null ? null : new Date(nextCheckAt);
  return { action: 'skip', reasonCode, params, nextCheckAt: at } as SkipDecision;
}

/** Timestamps this far in the future mean the clock went back since they were written. */
export const CLOCK_SKEW_TOLERANCE_MS = 5 * MINUTE_MS;

/** A past timestamp we can count from; a future one is distrusted and ignored (one extra backup
 *  costs less than a day lost waiting for a time that already passed on a wrong clock). */
function trustedPast(d: Date | undefined, now: number): number | undefined {
  if (d === undefined) return undefined;
  const t = d.getTime();
  if (!Number.isFinite(t) || t > now + CLOCK_SKEW_TOLERANCE_MS) return undefined;
  return Math.min(t, now);
}

/**
 * The instant from which the device counts as due, judged within occurrence `occ` (the window
 * occurrence we are in, if any). Plainly: last success + interval. With a window, a backup is
 * also due from the opening of a new occurrence once last success + interval - window length
 * has passed: otherwise a backup that started late one day would start later the next, creep to
 * the end of the window and lose a day. At most one backup per occurrence comes from this rule,
 * because it only applies to occurrences that opened after the last success.
 */
function dueThreshold(
  last: number | undefined,
  intervalMs: number,
  occ?: WindowOccurrence,
): number {
  if (last === undefined) return -Infinity;
  const plain = last + intervalMs;
  if (occ === undefined || occ.open.getTime() <= last) return plain;
  return Math.min(plain, last + intervalMs - (occ.close.getTime() - occ.open.getTime()));
}

/** Earliest instant >= now at which the device is both due and inside the window. */
function nextDueInWindow(
  now: number,
  last: number,
  policy: SchedulePolicy,
  timeZone: string,
): number {
  const plain = last + policy.minIntervalMs;
  if (policy.window === 'any') return Math.max(plain, now);
  const w = policy.window;
  // Jump close to the due time first (long intervals), staying early enough that no occurrence
  // where the window rule could apply is skipped (DST changes a length by at most an hour or two).
  let from = Math.max(now, plain - parseWindow(w).nominalMs - 2 * DAY_MS);
  for (let i = 0; i < 8; i++) {
    const st = windowStateAt(new Date(from), w, timeZone);
    const occ = st.current ?? st.next;
    const cand = Math.max(from, occ.open.getTime(), dueThreshold(last, policy.minIntervalMs, occ));
    if (cand < occ.close.getTime()) return cand;
    from = occ.close.getTime();
  }
  return plain; // not reached for valid windows; a sane answer anyway
}

/** Whether a backup is due at `now` (interval and window rule; ignores reachability, retries). */
export function isDue(
  now: Date,
  timeZone: string,
  policy: SchedulePolicy,
  lastSuccessAt?: Date,
): boolean {
  const t = now.getTime();
  const occ =
    policy.window === 'any' ? undefined : windowStateAt(now, policy.window, timeZone).current;
  return t >= dueThreshold(trustedPast(lastSuccessAt, t), policy.minIntervalMs, occ);
}

/** When the next backup is due and the window open (now, if it already is). */
export function nextDueAt(
  now: Date,
  timeZone: string,
  policy: SchedulePolicy,
  lastSuccessAt?: Date,
): Date {
  const t = now.getTime();
  const last = trustedPast(lastSuccessAt, t);
  if (last === undefined) return firstInWindow(now, policy.window, timeZone);
  return new Date(nextDueInWindow(t, last, policy, timeZone));
}

/** Exponential backoff after `consecutiveFailures` (>= 1) failures, capped. */
export function retryDelayMs(retry: RetryPolicy, consecutiveFailures: number): number {
  const n = Math.max(1, consecutiveFailures);
  return Math.min(retry.maxDelayMs, retry.initialDelayMs * Math.pow(retry.factor, n - 1));
}

function transportOf(device: DeviceState): Transport | undefined {
  if (device.reachable.usb) return 'usb';
  if (device.reachable.wifi) return 'wifi';
  return undefined;
}

function latest(...ts: (number | undefined)[]): number | undefined {
  const xs = ts.filter((x): x is number => x !== undefined);
  return xs.length === 0 ? undefined : Math.max(...xs);
}

/** The scheduled decision for one device. See the module comment for the order of checks. */
export function decide(
  now: Date,
  timeZone: string,
  policy: SchedulePolicy,
  device: DeviceState,
  global: GlobalLoad,
): Decision {
  assertTimeZone(timeZone);
  const t = now.getTime();
  if (device.running || device.passcodeWaiting === true) {
    return skip('ALREADY_RUNNING', { passcodeWaiting: device.passcodeWaiting === true }, null);
  }
  if (!policy.enabled) return skip('DISABLED', {}, null);
  if (policy.paused) return skip('PAUSED', {}, null);

  // Due?
  const last = trustedPast(device.lastSuccessAt, t);
  const win = policy.window;
  const occ = win === 'any' ? undefined : windowStateAt(now, win, timeZone);
  const dueFrom = dueThreshold(last, policy.minIntervalMs, occ?.current);
  if (last !== undefined && t < dueFrom) {
    const next = nextDueInWindow(t, last, policy, timeZone);
    return skip('NOT_DUE', { nextDueAt: new Date(next), lastSuccessAt: new Date(last) }, next);
  }

  // Inside the window?
  if (occ !== undefined && occ.current === undefined) {
    return skip('OUTSIDE_WINDOW', { windowOpensAt: occ.next.open }, occ.next.open);
  }

  // Retries: a daily cap, then backoff.
  const failures = Math.max(0, device.consecutiveFailures);
  const lastAttempt = trustedPast(device.lastAttemptAt, t);
  const recentUse = latest(trustedPast(device.lastUnlockedAt, t), trustedPast(device.inUseAt, t));
  const inUse = recentUse !== undefined && t - recentUse <= policy.passcode.recentUseMs;
  let retryAt: number | undefined;
  if (failures > 0) {
    const day = policyDay(now, win, timeZone);
    const attempts =
      lastAttempt !== undefined && lastAttempt < day.start.getTime() ? 0 : device.attemptsToday;
    if (attempts >= policy.retry.maxPerDay) {
      return skip(
        'RETRY_CAP_REACHED',
        { nextDayAt: day.next, attemptsToday: attempts, maxPerDay: policy.retry.maxPerDay },
        day.next,
      );
    }
    if (lastAttempt !== undefined) {
      let delay = retryDelayMs(policy.retry, failures);
      const unlockedSince = inUse && recentUse !== undefined && recentUse > lastAttempt;
      if (device.lastFailureReason === PASSCODE_NOT_ENTERED && !unlockedSince) {
        delay = Math.max(delay, policy.passcode.notEnteredRetryMs);
      }
      if (LOCKED_REASONS.has(device.lastFailureReason ?? '') && unlockedSince) delay = 0;
      retryAt = lastAttempt + delay;
      if (t < retryAt) {
        return skip(
          'RETRY_BACKOFF',
          {
            retryAt: new Date(retryAt),
            consecutiveFailures: failures,
            lastFailureReason: device.lastFailureReason ?? null,
          },
          firstInWindow(new Date(retryAt), win, timeZone),
        );
      }
    }
  }

  const transport = transportOf(device);
  if (transport === undefined) {
    return skip('NOT_REACHABLE', { lastSeenAt: device.lastSeenAt ?? null }, null);
  }

  // Passcode-friendly start (see PasscodePolicy).
  let reason: StartReason = 'due';
  if (device.passcodeRequired === true) {
    if (inUse) {
      reason = 'device-in-use';
    } else {
      const eligibleSince = Math.max(
        dueFrom,
        occ?.current?.open.getTime() ?? -Infinity,
        retryAt ?? -Infinity,
      );
      // Never backed up and no window: nothing to anchor a wait to; the first backup goes ahead.
      if (Number.isFinite(eligibleSince)) {
        let deadline = eligibleSince + policy.passcode.waitForUnlockMs;
        if (occ?.current !== undefined) {
          deadline = Math.min(
            deadline,
            occ.current.close.getTime() - policy.passcode.minWindowLeftMs,
          );
        }
        if (t < deadline) {
          return skip(
            'WAITING_FOR_UNLOCK',
            { waitUntil: new Date(deadline), lastUnlockedAt: device.lastUnlockedAt ?? null },
            deadline,
          );
        }
        reason = 'unlock-wait-over';
      }
    }
  }

  if (global.running >= global.concurrency) {
    return skip(
      'CONCURRENCY_LIMIT',
      { running: global.running, concurrency: global.concurrency },
      null,
    );
  }
  return { action: 'start', trigger: failures > 0 ? 'retry' : 'schedule', reason, transport };
}

/**
 * "Back up now": ignores the window, the interval, retries, pause and the enabled flag (the user
 * asked), but not the facts: one backup per device, the global limit, a reachable device.
 * A successful manual backup becomes `lastSuccessAt`, which resets the interval.
 */
export function decideManual(device: DeviceState, global: GlobalLoad): Decision {
  if (device.running || device.passcodeWaiting === true) {
    return skip('ALREADY_RUNNING', { passcodeWaiting: device.passcodeWaiting === true }, null);
  }
  const transport = transportOf(device);
  if (transport === undefined) {
    return skip('NOT_REACHABLE', { lastSeenAt: device.lastSeenAt ?? null }, null);
  }
  if (global.running >= global.concurrency) {
    return skip(
      'CONCURRENCY_LIMIT',
      { running: global.running, concurrency: global.concurrency },
      null,
    );
  }
  return { action: 'start', trigger: 'manual', reason: 'manual', transport };
}
