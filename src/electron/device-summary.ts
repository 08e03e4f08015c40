/**
 * One device at a glance, for the tray menu and the tray tooltip: a short status line ("Backed up
 * 3 h ago", "Waiting for passcode", "Backing up… 42%", "Not seen for 2 days") and whether the
 * device needs the person. Pure: plain agent data and `now` in, plain data out.
 */
import type { AgentStatus, DeviceStatus } from '../agent/types';
import type { AttemptRow } from '../history/types';
import { formatAgo, formatBytes } from '../history/units';

const HOUR_MS = 60 * 60 * 1000;
const DAY_MS = 24 * HOUR_MS;
/** A device out of reach for less than this is just away for the day: no "Not seen" line yet. */
export const NOT_SEEN_AFTER_MS = DAY_MS;
/** Longest device name shown (names come from the device: untrusted). */
export const MAX_NAME_CHARS = 40;
/** Longest status line (menus and tooltips have little room). */
export const MAX_LINE_CHARS = 72;

/** The newest progress event of a running backup. */
export interface ProgressFacts {
  attemptId: number;
  bytes: number;
  /** The device's own percentage, null until it reports one. */
  percent: number | null;
}

/** Everything the tray builders look at, gathered by main.ts from the agent and its events. */
export interface TrayFacts {
  status: AgentStatus;
  /** Latest progress event per udid (main keeps it from the event stream). */
  progress: Readonly<Record<string, ProgressFacts>>;
  /** Newest finished attempt per udid. */
  lastAttempt: Readonly<Record<string, AttemptRow>>;
  /** The stale-after setting: no successful backup for this long needs the person. */
  staleAfterMs: number;
  now: number;
}

export type DeviceCondition =
  | 'passcode' // a backup waits for the passcode on the device
  | 'running'
  | 'pairing-invalid'
  | 'failed' // the last attempt failed
  | 'not-seen' // out of reach for a day or more
  | 'stale' // no successful backup for stale-after
  | 'pairing-expiring'
  | 'never' // never backed up (yet)
  | 'ok';

export interface DeviceSummary {
  udid: string;
  name: string;
  line: string;
  condition: DeviceCondition;
  /** Something only the person can fix (or should know): the tray shows "attention". */
  attention: boolean;
  /** Progress of a running backup when the device announced its size. */
  percent: number | null;
}

export function clip(s: string, max: number): string {
  return s.length > max ? `${s.slice(0, max - 1).trimEnd()}…` : s;
}

/** A device-supplied name made safe for a menu: no control characters, bounded, never empty. */
export function displayName(d: Pick<DeviceStatus, 'name' | 'udid'>): string {
  // Control characters, line breaks and bidi overrides (which could disguise a name) go.
  const clean = (d.name ?? '')
    // eslint-disable-next-line no-control-regex
    .replace(/[\u0000-\u001f\u007f-\u009f\u200e\u200f\u2028-\u202e\u2066-\u2069]+/g, ' ')
    .trim();
  return clean === '' ? `Device ${d.udid.slice(-6)}` : clip(clean, MAX_NAME_CHARS);
}

function days(ms: number): string {
  const n = Math.max(1, Math.floor(ms / DAY_MS));
  return `${n} ${n === 1 ? 'day' : 'days'}`;
}

function percentOf(d: DeviceStatus, p: ProgressFacts | undefined): number | null {
  if (!d.running || !p || p.attemptId !== d.running.attemptId) return null;
  if (p.percent === null) return null;
  return Math.max(0, Math.min(100, Math.floor(p.percent)));
}

function lastFailure(d: DeviceStatus, a: AttemptRow | undefined): AttemptRow | undefined {
  if (!a || a.outcome !== 'failure') return undefined;
  const at = a.endedAt ?? a.startedAt;
  return d.lastSuccess !== null && d.lastSuccess >= at ? undefined : a;
}

export function summarizeDevice(d: DeviceStatus, f: TrayFacts): DeviceSummary {
  const now = f.now;
  const base = { udid: d.udid, name: displayName(d), percent: null };
  const failed = lastFailure(d, f.lastAttempt[d.udid]);
  const stale = (d.lastSuccess ?? 0) > 0 && now - (d.lastSuccess ?? 0) >= f.staleAfterMs;
  const reachable = d.reachable.usb || d.reachable.wifi;
  const expiring = d.pairing.health === 'expiring';
  // Whatever the line says, these need the person.
  const attention =
    d.running?.passcodeWaiting === true ||
    d.pairing.health === 'invalid' ||
    failed !== undefined ||
    stale ||
    expiring;
  const out = (condition: DeviceCondition, line: string, percent: number | null = null) => ({
    ...base,
    condition,
    line: clip(line, MAX_LINE_CHARS),
    attention,
    percent,
  });

  if (d.running) {
    if (d.running.passcodeWaiting) return out('passcode', 'Waiting for passcode');
    const pct = percentOf(d, f.progress[d.udid]);
    const p = f.progress[d.udid];
    const bytes = p && p.attemptId === d.running.attemptId ? p.bytes : d.running.bytes;
    if (pct !== null) return out('running', `Backing up… ${pct}%`, pct);
    return out('running', bytes > 0 ? `Backing up… ${formatBytes(bytes)}` : 'Backing up…');
  }
  if (d.pairing.health === 'invalid') {
    return out('pairing-invalid', 'Not paired: connect by USB and tap Trust');
  }
  if (failed) {
    const ago = formatAgo(failed.endedAt ?? failed.startedAt, now);
    const why = failed.message ? `: ${failed.message}` : '';
    return out('failed', `Backup failed ${ago}${why}`);
  }
  if (!reachable && d.lastSeen !== null && now - d.lastSeen >= NOT_SEEN_AFTER_MS) {
    return out('not-seen', `Not seen for ${days(now - d.lastSeen)}`);
  }
  if (!reachable && d.lastSeen === null) return out('not-seen', 'Not seen yet');
  if (stale && d.lastSuccess !== null) {
    return out('stale', `No backup for ${days(now - d.lastSuccess)}`);
  }
  if (expiring && d.pairing.expiresAt !== null) {
    const left = d.pairing.expiresAt - now;
    return out(
      'pairing-expiring',
      left > 0 ? `Pairing expires in ${days(left)}` : 'Pairing may have expired',
    );
  }
  if (d.lastSuccess === null) return out('never', 'Not backed up yet');
  return out('ok', `Backed up ${formatAgo(d.lastSuccess, now)}`);
}

export function summarizeDevices(f: TrayFacts): DeviceSummary[] {
  return f.status.devices.map((d) => summarizeDevice(d, f));
}
