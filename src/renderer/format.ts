/**
 * Pure text helpers of the UI: sizes, moments, a device's one-line state and its next-run
 * sentence. No DOM here, so node's test runner imports them as they are. Moments are in the
 * viewer's local time zone, relative to the `now` the caller passes.
 */
import type { DeviceStatus, RunningBackup } from '../agent/types';

/** "812 bytes", "3.4 KB", "12.0 MB", "3.2 GB" (decimal, as Finder shows sizes). */
export function formatBytes(bytes: number): string {
  const b = Math.max(0, bytes);
  if (b < 1000) return `${Math.round(b)} ${Math.round(b) === 1 ? 'byte' : 'bytes'}`;
  const units = ['KB', 'MB', 'GB', 'TB'] as const;
  let v = b / 1000;
  let i = 0;
  while (v >= 999.95 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${v >= 100 ? v.toFixed(0) : v.toFixed(1)} ${units[i]}`;
}

/** "45 s", "3 min", "2 h 05 min", "3 days 4 h". */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 24) return m % 60 ? `${h} h ${String(m % 60).padStart(2, '0')} min` : `${h} h`;
  const d = Math.floor(h / 24);
  return `${d} ${d === 1 ? 'day' : 'days'}${h % 24 ? ` ${h % 24} h` : ''}`;
}

/** "just now", "in 5 min", "3 h ago", "in 2 days": how far `at` is from `now`. */
export function formatRelative(at: number, now: number): string {
  const ms = at - now;
  const abs = Math.abs(ms);
  if (abs < 60_000) return ms > 0 ? 'in less than a minute' : 'just now';
  const m = Math.floor(abs / 60_000);
  const h = Math.floor(m / 60);
  const d = Math.floor(h / 24);
  const amount = m < 60 ? `${m} min` : h < 48 ? `${h} h` : `${d} days`;
  return ms > 0 ? `in ${amount}` : `${amount} ago`;
}

const pad = (n: number): string => String(n).padStart(2, '0');

function localDay(ms: number): number {
  const d = new Date(ms);
  return Date.UTC(d.getFullYear(), d.getMonth(), d.getDate()) / 86_400_000;
}

/** "today at 14:05", "tomorrow at 02:00", "yesterday at 23:10", "2025-03-04 at 14:05". */
export function formatWhen(at: number, now: number): string {
  const d = new Date(at);
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  const days = localDay(at) - localDay(now);
  if (days === 0) return `today at ${time}`;
  if (days === 1) return `tomorrow at ${time}`;
  if (days === -1) return `yesterday at ${time}`;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} at ${time}`;
}

/** "2025-03-04 14:05:09": exact local time, for lists and tooltips. */
export function formatTimestamp(at: number): string {
  const d = new Date(at);
  return (
    `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`
  );
}

/** The name people gave the device, else its UDID. */
export function deviceTitle(d: Pick<DeviceStatus, 'name' | 'udid'>): string {
  return d.name ?? d.udid;
}

/** "USB and Wi-Fi", "USB", "Wi-Fi", "Not connected". */
export function reachableText(r: DeviceStatus['reachable']): string {
  if (r.usb && r.wifi) return 'USB and Wi-Fi';
  if (r.usb) return 'USB';
  if (r.wifi) return 'Wi-Fi';
  return 'Not connected';
}

const PHASES: Record<string, string> = {
  connecting: 'Connecting',
  locking: 'Preparing',
  preparing: 'Preparing',
  'waiting-for-passcode': 'Waiting for passcode',
  transferring: 'Copying',
  finishing: 'Finishing',
};

/** The engine's phase in words. */
export function phaseText(phase: string): string {
  return PHASES[phase] ?? phase;
}

/** The device's own 0–100, or null before it reported one (the bar is then indeterminate). */
export function progressPercent(r: Pick<RunningBackup, 'percent'>): number | null {
  return r.percent === null ? null : Math.max(0, Math.min(100, Math.floor(r.percent)));
}

/**
 * Progress of a running backup: "Backing up… 42% (12.0 MB)", "Waiting for the passcode on the
 * device", and, when the device has gone quiet, since when (it may be preparing for minutes).
 */
export function progressText(
  r: Pick<RunningBackup, 'phase' | 'bytes' | 'passcodeWaiting' | 'percent' | 'quietSince'>,
  now: number,
): string {
  if (r.passcodeWaiting) return 'Waiting for the passcode on the device';
  const pct = progressPercent(r);
  const amount = r.bytes > 0 ? ` (${formatBytes(r.bytes)})` : '';
  const line =
    r.phase === 'transferring' || r.bytes > 0
      ? `Backing up… ${pct === null ? '' : `${pct}% `}`.trimEnd() + amount
      : `${phaseText(r.phase)}…`;
  if (r.quietSince === null) return line;
  return `${line}; the device has sent nothing since ${formatWhen(r.quietSince, now)} and may still be preparing`;
}

/** A device is called "not seen" after this long without discovery hearing of it. */
export const NOT_SEEN_AFTER_MS = 24 * 3600_000;

export type DeviceTone = 'ok' | 'busy' | 'attention' | 'idle';

/**
 * The one line a device list shows for a device, and its tone (colour of the badge): attention
 * once its last backup is older than the stale-after setting, as the tray and the notices say.
 */
export function deviceStatusLine(
  d: DeviceStatus,
  now: number,
  staleAfterMs: number,
): { text: string; tone: DeviceTone } {
  if (d.running) return { text: progressText(d.running, now), tone: 'busy' };
  if (!d.paired || d.next.code === 'NOT_PAIRED') {
    return { text: 'Not paired yet', tone: 'attention' };
  }
  if (d.pairing.health === 'invalid') {
    return { text: 'Not trusted any more: pair again', tone: 'attention' };
  }
  const reachable = d.reachable.usb || d.reachable.wifi;
  if (!reachable && d.lastSeen !== null && now - d.lastSeen >= NOT_SEEN_AFTER_MS) {
    return { text: `Not seen for ${formatDuration(now - d.lastSeen)}`, tone: 'attention' };
  }
  if (d.lastSuccess === null) return { text: 'Never backed up', tone: 'attention' };
  const ago = formatRelative(d.lastSuccess, now);
  const stale = now - d.lastSuccess >= staleAfterMs;
  return { text: `Backed up ${ago}`, tone: stale ? 'attention' : 'ok' };
}

/**
 * "Next backup: tomorrow at 02:00 (in 9 h)" with the agent's reason as the why, or what stands
 * in the way when no time is planned.
 */
export function nextRunText(
  d: Pick<DeviceStatus, 'next' | 'running'>,
  now: number,
): { headline: string; why: string } {
  if (d.running) return { headline: 'Backing up now', why: d.next.message };
  const { code, message, at } = d.next;
  if (code === 'DUE') return { headline: 'Next backup: starting now', why: message };
  if (at === null) return { headline: 'Next backup: not planned', why: message };
  const when = at <= now ? 'now' : `${formatWhen(at, now)} (${formatRelative(at, now)})`;
  return { headline: `Next backup: ${when}`, why: message };
}

export const SEVERITY_LABEL = { info: 'Info', warning: 'Warning', error: 'Error' } as const;
