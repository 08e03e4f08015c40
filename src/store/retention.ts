/**
 * Which snapshots to keep. Pure: a list of snapshots, a policy and "now" in, a decision per
 * snapshot out. Default: everything from the last 14 days, then one a day up to 60 days old, then
 * one a week up to a year old, nothing older. The latest and pinned snapshots are always kept.
 *
 * Within a day or week the OLDEST snapshot is the one kept: it was already the representative
 * yesterday, so the choice never changes as snapshots age (keeping the newest would prune
 * yesterday's pick as soon as a newer one of the same week aged into the weekly range). A snapshot
 * that is not sound (marked damaged, or incomplete) neither represents nor covers a day or week
 * that has a sound one: keeping it would prune the only whole backup of that day.
 */
import { parseFlags, UsageError } from '../util/cli-flags';

export interface RetentionPolicy {
  /** Keep every snapshot younger than this many days. */
  keepAllDays: number;
  /** Then one per UTC day for snapshots younger than this. */
  dailyDays: number;
  /** Then one per ISO week (UTC, Monday first) for snapshots younger than this; Infinity = forever. */
  weeklyDays: number;
}

export const DEFAULT_RETENTION: RetentionPolicy = {
  keepAllDays: 14,
  dailyDays: 60,
  weeklyDays: 365,
};

export interface RetentionCandidate {
  id: string;
  date: Date;
  pinned: boolean;
  isLatest: boolean;
  /** False for a snapshot marked damaged or incomplete; default true. */
  sound?: boolean;
}

export interface RetentionDecision {
  id: string;
  date: Date;
  keep: boolean;
  reason: string;
}

const DAY_MS = 86_400_000;

function dayIndex(d: Date): number {
  return Math.floor(d.getTime() / DAY_MS);
}

/** ISO weeks start on Monday; 1970-01-01 was a Thursday, hence the 3-day shift. */
function weekIndex(d: Date): number {
  return Math.floor((dayIndex(d) + 3) / 7);
}

function isoDay(d: Date): string {
  return d.toISOString().slice(0, 10);
}

export function validatePolicy(p: RetentionPolicy): RetentionPolicy {
  for (const [k, v] of Object.entries(p)) {
    if (typeof v !== 'number' || Number.isNaN(v) || v < 0)
      throw new UsageError(`retention ${k} must be a non-negative number of days`);
  }
  if (!(p.keepAllDays <= p.dailyDays && p.dailyDays <= p.weeklyDays)) {
    throw new UsageError(
      'retention periods must grow: --keep-all ≤ --daily ≤ --weekly ' +
        `(got ${p.keepAllDays}, ${p.dailyDays}, ${p.weeklyDays} days)`,
    );
  }
  return p;
}

/** One decision per candidate, in the candidates' order. */
export function planRetention(
  candidates: readonly RetentionCandidate[],
  policy: RetentionPolicy,
  now: Date,
): RetentionDecision[] {
  validatePolicy(policy);
  type Zone = { bucket?: string; reason?: string; prune?: string };
  const zoneOf = (c: RetentionCandidate): Zone => {
    const ageDays = (now.getTime() - c.date.getTime()) / DAY_MS;
    if (ageDays < policy.keepAllDays) return { reason: `younger than ${policy.keepAllDays} days` };
    if (ageDays < policy.dailyDays) return { bucket: `day ${isoDay(c.date)}` };
    if (ageDays < policy.weeklyDays) {
      const monday = new Date((weekIndex(c.date) * 7 - 3) * DAY_MS);
      return { bucket: `week of ${isoDay(monday)}` };
    }
    return { prune: `older than ${policy.weeklyDays} days` };
  };
  const zones = candidates.map(zoneOf);
  const sound = (c: RetentionCandidate): boolean => c.sound !== false;
  // A day or week that holds a sound snapshot kept anyway (latest, pinned) needs no other.
  const covered = new Map<string, string>();
  // The days and weeks with a sound snapshot that may represent them.
  const soundIn = new Set<string>();
  candidates.forEach((c, i) => {
    const b = zones[i]!.bucket;
    if (b === undefined || !sound(c)) return;
    if ((c.isLatest || c.pinned) && !covered.has(b)) covered.set(b, c.id);
    soundIn.add(b);
  });
  const order = candidates
    .map((c, i) => i)
    .sort((a, b) => candidates[a]!.date.getTime() - candidates[b]!.date.getTime());
  const out: RetentionDecision[] = new Array<RetentionDecision>(candidates.length);
  for (const i of order) {
    const c = candidates[i]!;
    const z = zones[i]!;
    const decide = (keep: boolean, reason: string): void => {
      out[i] = { id: c.id, date: c.date, keep, reason };
    };
    if (c.isLatest) decide(true, 'the latest backup');
    else if (c.pinned) decide(true, 'pinned');
    else if (z.reason !== undefined) decide(true, z.reason);
    else if (z.prune !== undefined) decide(false, z.prune);
    else {
      const b = z.bucket!;
      const holder = covered.get(b);
      if (holder !== undefined) decide(false, `${holder} is kept for the ${b}`);
      else if (!sound(c) && soundIn.has(b)) {
        decide(
          false,
          `a whole snapshot is kept for the ${b} instead of this damaged or incomplete one`,
        );
      } else {
        covered.set(b, c.id);
        decide(true, `kept for the ${b}`);
      }
    }
  }
  return out;
}

/** How a retention period may be written, for messages that refuse one. */
export const PERIOD_UNITS = 'units y, m (30-day months), w, d, h';

/**
 * A retention period in whole hours (Infinity for "forever"), or undefined if `text` is not one:
 * `14d`, `8w`, `6m` (30-day months, as a person means "6m" of backups), `1y` (365 days), `36h`,
 * terms together (`1y 6m`), a bare number of days, `0` with or without a unit. The one parser for
 * the prune command's flags and the agent's keep-* settings, so "m" means the same in both: a
 * minutes reading there would make "12m" prune every backup but the latest.
 */
export function parsePeriodHours(text: string): number | undefined {
  const v = text.trim().toLowerCase();
  if (v === 'forever' || v === 'never' || v === 'inf' || v === 'infinity') return Infinity;
  if (/^\d{1,6}$/.test(v)) return Number(v) * 24;
  if (/^0+ *(?:[smhdwy]|mo)?$/.test(v)) return 0;
  const m =
    /^(?:(\d{1,3})y)? *(?:(\d{1,4})mo?)? *(?:(\d{1,5})w)? *(?:(\d{1,6})d)? *(?:(\d{1,7})h)?$/.exec(
      v,
    );
  if (m === null || v === '') return undefined;
  const [, y, mo, w, d, h] = m.map((n) => (n === undefined ? 0 : Number(n)));
  return (y! * 365 + mo! * 30 + w! * 7 + d!) * 24 + h!;
}

/** A prune flag's period in days (Infinity for "forever"); a usage error says what is accepted. */
export function parseDuration(s: string, flag: string): number {
  const hours = parsePeriodHours(s);
  if (hours === undefined) {
    throw new UsageError(
      `--${flag}: expected a period like 14d, 8w, 6m, 1y or "forever" (${PERIOD_UNITS}), got "${s}"`,
    );
  }
  return hours / 24;
}

export const RETENTION_FLAGS = ['keep-all', 'daily', 'weekly'] as const;

/**
 * The policy from parsed flags (`--keep-all 14d --daily 60d --weekly 365d`); `base` (the device's
 * settings, else the defaults) fills the periods not given.
 */
export function retentionFromFlags(
  flags: Map<string, string>,
  base: RetentionPolicy = DEFAULT_RETENTION,
): RetentionPolicy {
  const get = (name: string, dflt: number): number => {
    const v = flags.get(name);
    return v === undefined ? dflt : parseDuration(v, name);
  };
  return validatePolicy({
    keepAllDays: get('keep-all', base.keepAllDays),
    dailyDays: get('daily', base.dailyDays),
    weeklyDays: get('weekly', base.weeklyDays),
  });
}

/** Parses retention flags out of argv (other flags refused). */
export function parseRetentionArgs(argv: string[]): RetentionPolicy {
  const { flags, positionals } = parseFlags(argv, RETENTION_FLAGS);
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  return retentionFromFlags(flags);
}

export function describePolicy(p: RetentionPolicy): string {
  const w = p.weeklyDays === Infinity ? 'forever' : `up to ${p.weeklyDays} days`;
  return `keep all for ${p.keepAllDays} days, one a day up to ${p.dailyDays} days, one a week ${w}`;
}
