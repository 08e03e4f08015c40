/**
 * Wall-clock arithmetic in an IANA time zone, with nothing but Intl.DateTimeFormat.
 *
 * Instants are epoch milliseconds; "local" values are calendar dates and minutes of the day as
 * the user's clock shows them. Resolving a local time to an instant has two awkward cases:
 * - a gap (spring forward: 02:30 does not exist in Berlin on the last Sunday of March): we resolve
 *   to the instant the clock jumps, i.e. the first moment the clock shows a later time;
 * - an overlap (fall back: 02:30 happens twice): the caller says which occurrence it wants.
 */
import { MooringError } from '../util/errors';

export const MINUTE_MS = 60_000;
export const HOUR_MS = 60 * MINUTE_MS;
export const DAY_MS = 24 * HOUR_MS;

/** A calendar date as the user's clock shows it (month 1-12). */
export interface LocalDate {
  year: number;
  month: number;
  day: number;
}

export interface WallClock extends LocalDate {
  hour: number;
  minute: number;
  second: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatterFor(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (f === undefined) {
    try {
      f = new Intl.DateTimeFormat('en-US', {
        timeZone,
        hourCycle: 'h23',
        year: 'numeric',
        month: 'numeric',
        day: 'numeric',
        hour: 'numeric',
        minute: 'numeric',
        second: 'numeric',
      });
    } catch (cause) {
      throw new MooringError(
        'USAGE',
        `unknown time zone "${timeZone}" (use an IANA name such as Europe/Berlin)`,
        {
          cause,
        },
      );
    }
    formatters.set(timeZone, f);
  }
  return f;
}

/** Throws a USAGE error unless `timeZone` is an IANA zone this runtime knows. */
export function assertTimeZone(timeZone: string): void {
  formatterFor(timeZone);
}

const WALL_CLOCK_RE = /^(\d{1,2})\/(\d{1,2})\/(\d{4}), (\d{1,2}):(\d{2}):(\d{2})$/;

/** What the clock in `timeZone` shows at instant `t`. */
export function wallClock(t: number | Date, timeZone: string): WallClock {
  const ms = typeof t === 'number' ? t : t.getTime();
  const f = formatterFor(timeZone);
  // format() is about three times faster than formatToParts(); en-US output is fixed
  // ("6/1/2024, 14:03:04"), and anything unexpected falls back to the parts.
  const m = WALL_CLOCK_RE.exec(f.format(ms));
  if (m !== null) {
    const hour = Number(m[4]);
    return {
      year: Number(m[3]),
      month: Number(m[1]),
      day: Number(m[2]),
      hour: hour === 24 ? 0 : hour,
      minute: Number(m[5]),
      second: Number(m[6]),
    };
  }
  const w: WallClock = { year: 0, month: 0, day: 0, hour: 0, minute: 0, second: 0 };
  for (const p of f.formatToParts(ms)) {
    if (p.type in w) w[p.type as keyof WallClock] = Number(p.value);
  }
  if (w.hour === 24) w.hour = 0; // some ICU versions print midnight as 24 even with h23
  return w;
}

/** UTC offset (ms, east positive) in effect at instant `t`. */
export function offsetAt(t: number, timeZone: string): number {
  const w = wallClock(t, timeZone);
  const wallAsUtc = Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute, w.second);
  return wallAsUtc - Math.floor(t / 1000) * 1000;
}

export function localDateOf(t: number, timeZone: string): LocalDate {
  const w = wallClock(t, timeZone);
  return { year: w.year, month: w.month, day: w.day };
}

/** Calendar arithmetic, independent of any zone. */
export function addLocalDays(d: LocalDate, days: number): LocalDate {
  const x = new Date(Date.UTC(d.year, d.month - 1, d.day + days));
  return { year: x.getUTCFullYear(), month: x.getUTCMonth() + 1, day: x.getUTCDate() };
}

/**
 * The instant at which the clock in `timeZone` shows `minuteOfDay` on `date`.
 * Overlap: `prefer` picks the first or the second occurrence. Gap: the instant the clock jumps.
 */
export function localToInstant(
  date: LocalDate,
  minuteOfDay: number,
  timeZone: string,
  prefer: 'earlier' | 'later',
): number {
  const target = Date.UTC(date.year, date.month - 1, date.day, 0, minuteOfDay);
  // Transitions are never closer than a few weeks apart, so the offsets a day either side cover
  // every offset the answer can have.
  const offsets = [
    ...new Set([
      offsetAt(target - DAY_MS, timeZone),
      offsetAt(target, timeZone),
      offsetAt(target + DAY_MS, timeZone),
    ]),
  ];
  const matches = offsets
    .map((o) => target - o)
    .filter((t) => t + offsetAt(t, timeZone) === target)
    .sort((a, b) => a - b);
  if (matches.length > 0) return prefer === 'earlier' ? matches[0]! : matches[matches.length - 1]!;

  // Gap: the candidates straddle the jump; the wall clock is monotonic there, so bisect for the
  // first second whose wall time is past the target.
  const candidates = offsets.map((o) => target - o);
  let lo = Math.min(...candidates);
  let hi = Math.max(...candidates);
  if (!(lo + offsetAt(lo, timeZone) < target && hi + offsetAt(hi, timeZone) > target)) return hi;
  while (hi - lo > 1000) {
    const mid = Math.floor((lo + hi) / 2000) * 1000;
    if (mid + offsetAt(mid, timeZone) < target) lo = mid;
    else hi = mid;
  }
  return hi;
}

/** Parses 'HH:MM' (00:00-23:59) to a minute of the day. */
export function parseClockTime(s: string): number {
  const m = /^([01]\d|2[0-3]):([0-5]\d)$/.exec(s);
  if (m === null) {
    throw new MooringError(
      'USAGE',
      `invalid time of day "${s}": expected HH:MM between 00:00 and 23:59`,
    );
  }
  return Number(m[1]) * 60 + Number(m[2]);
}
