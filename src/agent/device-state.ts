/**
 * The scheduler's view of a device (DeviceState), derived from the history database on every
 * decision, so a restarted agent keeps its schedule: the interval counts from the last success
 * recorded, backoff and the daily cap from the failures recorded since. Presence and lock
 * activity, which the database does not hold, come from the caller.
 */
import type { AttemptRow, History } from '../history';
import { policyDay, type DeviceState, type WindowSpec } from '../scheduler';
import type { FolderFacts } from './folder-backups';

/** Attempts looked at per device when counting failures (a day's cap is far below this). */
export const MAX_ATTEMPTS_SCANNED = 200;

export interface LiveFacts {
  reachable: { usb: boolean; wifi: boolean };
  lastSeenAt?: number;
  running: boolean;
  passcodeWaiting?: boolean;
  passcodeRequired?: boolean;
  lastUnlockedAt?: number;
  inUseAt?: number;
}

/** Outcomes that count against the schedule: a cancelled backup is not retried at once either. */
export function countsAsFailure(a: AttemptRow): boolean {
  return a.outcome === 'failure' || a.outcome === 'cancelled';
}

export interface AttemptFacts {
  lastSuccessAt?: number;
  /** When that success ended (its snapshot was committed by then). */
  lastSuccessEndedAt?: number;
  /** The snapshot that success made. */
  lastSuccessSnapshot?: string;
  lastAttemptAt?: number;
  consecutiveFailures: number;
  /** Failed automatic attempts since `dayStart`. */
  attemptsToday: number;
  lastFailureReason?: string;
}

/** Reads the device's recent attempts (newest first) into the counters decide() needs. */
export function attemptFacts(h: History, udid: string, dayStart: number): AttemptFacts {
  const facts: AttemptFacts = { consecutiveFailures: 0, attemptsToday: 0 };
  const items = h.listAttempts({ udid, limit: MAX_ATTEMPTS_SCANNED }).items;
  for (const a of items) {
    if (a.outcome === 'running') continue;
    facts.lastAttemptAt ??= a.endedAt ?? a.startedAt;
    if (a.outcome === 'success') {
      // START of the success: the interval counts from there (see DeviceState.lastSuccessAt).
      facts.lastSuccessAt = a.startedAt;
      facts.lastSuccessEndedAt = a.endedAt ?? a.startedAt;
      if (a.snapshotId !== null) facts.lastSuccessSnapshot = a.snapshotId;
      break;
    }
    if (!countsAsFailure(a)) continue; // interrupted: Mooring stopped, not the device's fault
    facts.consecutiveFailures++;
    facts.lastFailureReason ??= a.reasonCode ?? undefined;
    if (a.trigger !== 'manual' && (a.endedAt ?? a.startedAt) >= dayStart) facts.attemptsToday++;
  }
  if (facts.lastSuccessAt === undefined) {
    // Older than the page: the devices table still knows when the last success ended.
    const last = h.getDevice(udid)?.lastSuccess;
    if (last !== null && last !== undefined) facts.lastSuccessAt = facts.lastSuccessEndedAt = last;
  }
  return facts;
}

/**
 * The start of the last backup as the schedule counts it. The backup folder decides when it was
 * read after the history's last success ended (so it holds that success's snapshot, or the
 * snapshot went since): its newest sound snapshot, whoever made it (`mooring backup` beside the
 * agent), or none (a folder moved to an empty one, the device's folder deleted, every snapshot
 * damaged): due now. Otherwise (not read since, or unreadable, or missing: a disk unplugged) the
 * newer of the two.
 */
export function scheduleLastSuccess(f: AttemptFacts, folder?: FolderFacts): number | undefined {
  const v = folder?.reading.value;
  if (folder === undefined || v === undefined || v.state === 'unknown') return f.lastSuccessAt;
  // The history's start is the precise one for its own snapshot (an id keeps whole seconds).
  const sound =
    v.sound === null
      ? undefined
      : v.sound.id === f.lastSuccessSnapshot
        ? f.lastSuccessAt
        : v.sound.at;
  if (f.lastSuccessEndedAt === undefined || folder.readAt > f.lastSuccessEndedAt) return sound;
  return newer(sound, f.lastSuccessAt);
}

/** The later of two times either of which may be unknown. */
function newer(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined || b === undefined ? (a ?? b) : Math.max(a, b);
}

/** When the device was last backed up as its status shows it: the newer of the history's and the folder's. */
export function shownLastSuccess(
  historyLast: number | null | undefined,
  folder?: FolderFacts,
): number | null {
  const v = folder?.reading.value;
  const sound = v?.state === 'known' ? v.sound?.at : undefined;
  return newer(sound, historyLast ?? undefined) ?? null;
}

const date = (t: number | undefined): Date | undefined =>
  t === undefined ? undefined : new Date(t);

/** History counters plus live facts, as decide() takes them. */
export function deviceState(
  h: History,
  udid: string,
  live: LiveFacts,
  now: number,
  window: WindowSpec,
  timeZone: string,
  folder?: FolderFacts,
): DeviceState {
  const day = policyDay(new Date(now), window, timeZone);
  const f = attemptFacts(h, udid, day.start.getTime());
  const s: DeviceState = {
    reachable: live.reachable,
    attemptsToday: f.attemptsToday,
    consecutiveFailures: f.consecutiveFailures,
    running: live.running,
  };
  const set = <K extends keyof DeviceState>(k: K, v: DeviceState[K] | undefined): void => {
    if (v !== undefined) s[k] = v;
  };
  set('lastSeenAt', date(live.lastSeenAt));
  set('lastSuccessAt', date(scheduleLastSuccess(f, folder)));
  set('lastAttemptAt', date(f.lastAttemptAt));
  set('lastFailureReason', f.lastFailureReason);
  set('passcodeRequired', live.passcodeRequired);
  set('lastUnlockedAt', date(live.lastUnlockedAt));
  set('inUseAt', date(live.inUseAt));
  set('passcodeWaiting', live.passcodeWaiting);
  return s;
}
