/**
 * A scheduler skip as the history and the user see it. Most skip codes map to a history reason
 * with a rendered notice; RETRY_BACKOFF and ALREADY_RUNNING are not recorded (the failure that
 * caused the backoff, and the running attempt, already are), but still get a status line.
 */
import {
  deviceNotSeen,
  disabled,
  formatWhen,
  notDue,
  outsideWindow,
  paused,
  queued,
  retryLimitReached,
  waitingForUnlock,
  type Notice,
  type ReasonCode,
} from '../history';
import type { SchedulePolicy, SkipDecision } from '../scheduler';

export interface SkipView {
  /** History reason code when one maps, else the scheduler's code. */
  code: ReasonCode | 'RETRY_BACKOFF' | 'ALREADY_RUNNING';
  /** The notice to record, or null when this skip is not recorded. */
  notice: Notice | null;
  message: string;
  at: number | null;
}

const ms = (d: Date | null | undefined): number | undefined =>
  d === null || d === undefined ? undefined : d.getTime();

function withNotice(n: Notice, at: Date | null): SkipView {
  return { code: n.reasonCode, notice: n, message: n.message, at: ms(at) ?? null };
}

export function skipView(d: SkipDecision, policy: SchedulePolicy, now: number): SkipView {
  switch (d.reasonCode) {
    case 'NOT_DUE':
      return withNotice(
        notDue({
          nextDueAt: d.params.nextDueAt.getTime(),
          lastSuccessAt: d.params.lastSuccessAt.getTime(),
          now,
        }),
        d.nextCheckAt,
      );
    case 'OUTSIDE_WINDOW': {
      const w = policy.window === 'any' ? { start: '00:00', end: '24:00' } : policy.window;
      return withNotice(
        outsideWindow({
          window: { start: w.start, end: w.end },
          nextWindowAt: d.params.windowOpensAt.getTime(),
          now,
        }),
        d.nextCheckAt,
      );
    }
    case 'NOT_REACHABLE': {
      const seen = ms(d.params.lastSeenAt);
      return withNotice(
        deviceNotSeen(seen === undefined ? { now } : { lastSeenAt: seen, now }),
        d.nextCheckAt,
      );
    }
    case 'RETRY_CAP_REACHED':
      return withNotice(
        retryLimitReached({
          attempts: d.params.attemptsToday,
          nextTryAt: d.params.nextDayAt.getTime(),
          now,
        }),
        d.nextCheckAt,
      );
    case 'WAITING_FOR_UNLOCK': {
      const unlocked = ms(d.params.lastUnlockedAt);
      return withNotice(
        waitingForUnlock({
          waitUntil: d.params.waitUntil.getTime(),
          ...(unlocked === undefined ? {} : { lastUnlockedAt: unlocked }),
          now,
        }),
        d.nextCheckAt,
      );
    }
    case 'CONCURRENCY_LIMIT':
      return withNotice(queued(d.params), d.nextCheckAt);
    case 'PAUSED':
      return withNotice(paused({ now }), d.nextCheckAt);
    case 'DISABLED':
      return withNotice(disabled(), d.nextCheckAt);
    case 'RETRY_BACKOFF': {
      const n = d.params.consecutiveFailures;
      return {
        code: 'RETRY_BACKOFF',
        notice: null,
        message: `Trying again ${formatWhen(d.params.retryAt.getTime(), now)} after ${n} failed ${n === 1 ? 'attempt' : 'attempts'}`,
        at: ms(d.nextCheckAt) ?? null,
      };
    }
    case 'ALREADY_RUNNING':
      return {
        code: 'ALREADY_RUNNING',
        notice: null,
        message: d.params.passcodeWaiting
          ? 'A backup is running and waiting for the passcode on the device'
          : 'A backup is running',
        at: null,
      };
  }
}
