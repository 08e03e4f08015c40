/**
 * The daily backup window as concrete intervals of time ("occurrences") in the user's zone.
 *
 * An occurrence belongs to the local date on which it opens; a window whose end is not after its
 * start (22:00-06:00) crosses midnight and closes the next day. DST, explicitly:
 * - a start or end inside a skipped hour resolves to the moment the clock jumps;
 * - in a repeated hour the window opens at the first occurrence of its start and closes at the
 *   second occurrence of its end, so the repeated hour never shortens a window;
 * - a window lying entirely inside a skipped hour (02:00-03:00 on a spring-forward day) would be
 *   empty; it then keeps its usual length from the jump instead, so that day is not lost.
 */
import { MooringError } from '../util/errors';
import {
  addLocalDays,
  localDateOf,
  localToInstant,
  MINUTE_MS,
  parseClockTime,
  type LocalDate,
} from './time';

/** A daily window, 'HH:MM' local times; end <= start means it crosses midnight. */
export interface TimeWindow {
  start: string;
  end: string;
}
export type WindowSpec = TimeWindow | 'any';

export interface WindowOccurrence {
  open: Date;
  close: Date;
}

export interface ParsedWindow {
  startMin: number;
  endMin: number;
  crossesMidnight: boolean;
  nominalMs: number;
}

export function parseWindow(w: TimeWindow): ParsedWindow {
  const startMin = parseClockTime(w.start);
  const endMin = parseClockTime(w.end);
  if (startMin === endMin) {
    throw new MooringError(
      'USAGE',
      `backup window ${w.start}-${w.end} is empty: use different start and end, or 'any' for any time`,
    );
  }
  const crossesMidnight = endMin < startMin;
  const nominalMin = crossesMidnight ? endMin + 1440 - startMin : endMin - startMin;
  return { startMin, endMin, crossesMidnight, nominalMs: nominalMin * MINUTE_MS };
}

/** Occurrences are pure functions of (zone, window, date) and decide() asks for the same few
 *  again every minute: remember them (bounded). */
const OCCURRENCE_CACHE_MAX = 1024;
const occurrenceCache = new Map<string, { open: number; close: number }>();

/** The occurrence of `w` that opens on local date `date`. */
export function occurrenceOn(date: LocalDate, w: TimeWindow, timeZone: string): WindowOccurrence {
  const key = `${timeZone}|${w.start}|${w.end}|${date.year}-${date.month}-${date.day}`;
  let o = occurrenceCache.get(key);
  if (o === undefined) {
    o = computeOccurrence(date, w, timeZone);
    if (occurrenceCache.size >= OCCURRENCE_CACHE_MAX) occurrenceCache.clear();
    occurrenceCache.set(key, o);
  }
  return { open: new Date(o.open), close: new Date(o.close) };
}

function computeOccurrence(
  date: LocalDate,
  w: TimeWindow,
  timeZone: string,
): { open: number; close: number } {
  const p = parseWindow(w);
  const open = localToInstant(date, p.startMin, timeZone, 'earlier');
  let close = localToInstant(
    p.crossesMidnight ? addLocalDays(date, 1) : date,
    p.endMin,
    timeZone,
    'later',
  );
  if (close <= open) close = open + p.nominalMs;
  return { open, close };
}

export interface WindowState {
  /** The occurrence containing `at` (open <= at < close), if any. */
  current: WindowOccurrence | undefined;
  /** The most recent occurrence that opened at or before `at` (equals `current` when inside). */
  previous: WindowOccurrence;
  /** The first occurrence opening after `at`. */
  next: WindowOccurrence;
}

/** Where `at` falls relative to the window's occurrences. */
export function windowStateAt(at: Date, w: TimeWindow, timeZone: string): WindowState {
  const t = at.getTime();
  const today = localDateOf(t, timeZone);
  const occs = [-1, 0, 1, 2].map((k) => occurrenceOn(addLocalDays(today, k), w, timeZone));
  let previous: WindowOccurrence | undefined;
  let next: WindowOccurrence | undefined;
  for (const o of occs) {
    if (o.open.getTime() <= t) previous = o;
    else if (next === undefined) next = o;
  }
  // Yesterday's occurrence always opens before today's date begins, and the one two days ahead
  // always after it, so both ends are found.
  if (previous === undefined || next === undefined) {
    throw new MooringError('PROTOCOL', 'window occurrences out of order (time zone data?)');
  }
  const current = t < previous.close.getTime() ? previous : undefined;
  return { current, previous, next };
}

/** Local midnight starting the local day that contains `at`, and the next one. */
export function localDayBounds(at: Date, timeZone: string): { start: Date; end: Date } {
  const d = localDateOf(at.getTime(), timeZone);
  return {
    start: new Date(localToInstant(d, 0, timeZone, 'earlier')),
    end: new Date(localToInstant(addLocalDays(d, 1), 0, timeZone, 'earlier')),
  };
}

/** The first instant at or after `t` that lies inside the window. */
export function firstInWindow(t: Date, w: WindowSpec, timeZone: string): Date {
  if (w === 'any') return t;
  const s = windowStateAt(t, w, timeZone);
  return s.current !== undefined ? t : s.next.open;
}

/**
 * The "policy day" that retry caps count in: for a window, its current (or most recent)
 * occurrence, so a night window is one day even though it crosses midnight; for 'any', the local
 * calendar day. `start` is when the day began, `next` when the following one begins.
 */
export function policyDay(at: Date, w: WindowSpec, timeZone: string): { start: Date; next: Date } {
  if (w === 'any') {
    const b = localDayBounds(at, timeZone);
    return { start: b.start, next: b.end };
  }
  const s = windowStateAt(at, w, timeZone);
  return { start: s.previous.open, next: s.next.open };
}
