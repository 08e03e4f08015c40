/**
 * How sizes, durations and moments read in history messages. Sizes are decimal, as Finder shows
 * them; moments are in the computer's local time zone (the user's), relative to "now" when close.
 */

/** "812 bytes", "3.4 KB", "12.0 MB", "3.2 GB", "120 GB". */
export function formatBytes(bytes: number): string {
  const b = Math.max(0, bytes);
  if (b < 1000) return `${Math.round(b)} bytes`;
  const units = ['KB', 'MB', 'GB', 'TB'] as const;
  let v = b / 1000;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${v >= 100 ? v.toFixed(0) : v.toFixed(1)} ${units[i]}`;
}

/** "45 s", "3 min 20 s", "2 h 05 min", "3 days 4 h". */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${String(s % 60).padStart(2, '0')} s`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h} h ${String(m % 60).padStart(2, '0')} min`;
  const d = Math.floor(h / 24);
  return `${d} ${d === 1 ? 'day' : 'days'}${h % 24 ? ` ${h % 24} h` : ''}`;
}

/** "just now", "12 min ago", "5 h ago", "3 days ago". */
export function formatAgo(at: number, now: number): string {
  const ms = now - at;
  if (ms < 60_000) return 'just now';
  const m = Math.floor(ms / 60_000);
  if (m < 60) return `${m} min ago`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h ago`;
  return `${Math.floor(h / 24)} days ago`;
}

function localDay(ms: number): number {
  const d = new Date(ms);
  return Date.UTC(d.getFullYear(), d.getMonth(), d.getDate()) / 86_400_000;
}

const pad = (n: number): string => String(n).padStart(2, '0');

/** "today at 14:05", "tomorrow at 02:00", "yesterday at 23:10", "on 2025-03-04 at 14:05". */
export function formatWhen(at: number, now: number): string {
  const d = new Date(at);
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  const days = localDay(at) - localDay(now);
  if (days === 0) return `today at ${time}`;
  if (days === 1) return `tomorrow at ${time}`;
  if (days === -1) return `yesterday at ${time}`;
  return `on ${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} at ${time}`;
}

/** "1,234" — counts of files in messages. */
export function formatCount(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}
