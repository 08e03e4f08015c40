/**
 * Noticing that the computer slept (or the process was frozen, or the clock jumped forward):
 * the gap between two moments we know we were awake is much longer than the tick interval.
 * Decisions do not need this (they come from state); the history does, so that "no backup last
 * night" can say "the computer was asleep during the window".
 */
import { occurrenceOn, type WindowOccurrence, type WindowSpec } from './window';
import { addLocalDays, localDateOf } from './time';

export interface SleepCheck {
  slept: boolean;
  /** Last moment known awake before the gap, and the moment we noticed. */
  from: Date;
  to: Date;
  gapMs: number;
  /** `now` is before `prevTickAt`: the clock was set back (not a sleep). */
  clockWentBack: boolean;
}

/**
 * `slept` when more than `expectedIntervalMs + toleranceMs` passed since `prevTickAt`.
 * The default tolerance of one more interval (at least 30 s) absorbs a late timer on a busy
 * machine without calling it sleep.
 */
export function detectSleep(
  prevTickAt: Date | undefined,
  now: Date,
  expectedIntervalMs: number,
  toleranceMs: number = Math.max(expectedIntervalMs, 30_000),
): SleepCheck {
  const from = prevTickAt ?? now;
  const gapMs = now.getTime() - from.getTime();
  return {
    slept: gapMs > expectedIntervalMs + toleranceMs,
    from,
    to: now,
    gapMs,
    clockWentBack: gapMs < 0,
  };
}

/** Occurrences reported at most; a month asleep is reported as its latest month of windows. */
export const MAX_MISSED_WINDOWS = 31;

export interface MissedWindows {
  /** At least one whole window occurrence lay inside the sleep. */
  missed: boolean;
  /** Occurrences entirely inside [from, to], oldest first (at most MAX_MISSED_WINDOWS, latest kept). */
  windows: WindowOccurrence[];
  /** Occurrences the sleep cut into but did not cover (some of the window was left, or lost). */
  partly: WindowOccurrence[];
}

/**
 * Which window occurrences passed while the computer slept from `from` to `to`. A window of
 * 'any' has no occurrences to miss: once awake, the decision catches up by itself. Combine with
 * `isDue(occurrence.open, …)` to report only windows in which a backup was actually due.
 */
export function missedWindow(
  from: Date,
  to: Date,
  timeZone: string,
  window: WindowSpec,
): MissedWindows {
  const result: MissedWindows = { missed: false, windows: [], partly: [] };
  const a = from.getTime();
  const b = to.getTime();
  if (window === 'any' || !(b > a)) return result;
  // Occurrences open on local dates from the day before `from` to the day of `to`; for a long
  // sleep look only at the last MAX_MISSED_WINDOWS + 1 dates.
  const last = localDateOf(b, timeZone);
  let first = addLocalDays(localDateOf(a, timeZone), -1);
  const earliest = addLocalDays(last, -(MAX_MISSED_WINDOWS + 1));
  if (
    Date.UTC(first.year, first.month - 1, first.day) <
    Date.UTC(earliest.year, earliest.month - 1, earliest.day)
  ) {
    first = earliest;
  }
  for (let d = first; ; d = addLocalDays(d, 1)) {
    const o = occurrenceOn(d, window, timeZone);
    const open = o.open.getTime();
    const close = o.close.getTime();
    if (open >= a && close <= b) result.windows.push(o);
    else if (open < b && close > a) result.partly.push(o);
    if (d.year === last.year && d.month === last.month && d.day === last.day) break;
  }
  result.windows = result.windows.slice(-MAX_MISSED_WINDOWS);
  result.missed = result.windows.length > 0;
  return result;
}
