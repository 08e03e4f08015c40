/** How the agent's JSON reads in a terminal: devices, notifications and attempts, one idea a line. */
import type { AgentStatus, DeviceStatus } from '../agent/types';
import {
  formatAgo,
  formatBytes,
  formatCount,
  formatDuration,
  formatWhen,
  type AttemptRow,
  type NotificationRow,
} from '../history';

export type Names = Map<string, string>;

export function namesOf(devices: DeviceStatus[]): Names {
  return new Map(devices.map((d) => [d.udid, d.name ?? d.udid]));
}

/** The device's name (or UDID), or "Mooring" for notices about this computer. */
export function who(udid: string | null, names: Names): string {
  if (udid === null) return 'Mooring';
  return names.get(udid) ?? udid;
}

const when = (at: number, now: number): string => `${formatAgo(at, now)} (${formatWhen(at, now)})`;

export function deviceLines(d: DeviceStatus, now: number): string[] {
  const what = [d.productType, d.iosVersion && `iOS ${d.iosVersion}`].filter(Boolean).join(', ');
  const lines = [`${d.name ?? 'Unnamed device'} (${d.udid})${what ? `  ${what}` : ''}`];
  const via = [d.reachable.usb && 'USB', d.reachable.wifi && `Wi-Fi ${d.address ?? ''}`.trim()]
    .filter(Boolean)
    .join(', ');
  lines.push(
    via
      ? `  reachable: ${via}`
      : `  not reachable${d.lastSeen === null ? '' : ` (last seen ${formatAgo(d.lastSeen, now)})`}`,
  );
  if (!d.paired) lines.push('  not paired: connect it by USB and run `mooring pair`');
  lines.push(`  last backup: ${d.lastSuccess === null ? 'never' : when(d.lastSuccess, now)}`);
  if (d.running) {
    const r = d.running;
    lines.push(
      `  backing up (${r.trigger}, ${r.transport}): ${r.phase}, ${formatCount(r.files)} files, ${formatBytes(r.bytes)}` +
        (r.passcodeWaiting ? ' — enter the passcode on the device' : ''),
    );
  } else lines.push(`  next: ${d.next.message}`);
  if (d.pairing.health !== 'ok' && d.pairing.message) lines.push(`  pairing: ${d.pairing.message}`);
  return lines;
}

export function statusLines(s: AgentStatus, now: number): string[] {
  const unread = s.summary.unread;
  const counts = [
    unread.error && `${unread.error} error${unread.error === 1 ? '' : 's'}`,
    unread.warning && `${unread.warning} warning${unread.warning === 1 ? '' : 's'}`,
    unread.info && `${unread.info} info`,
  ].filter(Boolean);
  const lines = [
    `Mooring agent ${s.version}, pid ${s.pid}, running since ${formatWhen(s.startedAt, now)} (${s.timeZone})`,
    `Data: ${s.dataDir}`,
    `Backups: ${s.backupDir}`,
    `Automatic backups: ${s.paused ? 'paused (`mooring resume` restarts them)' : 'on'}`,
    `Running: ${s.running} of at most ${s.concurrency} at a time`,
    `USB (usbmuxd): ${s.usbmuxd}; Wi-Fi (Bonjour): ${s.bonjour}`,
    ...(s.usbmuxdProblem === null ? [] : [`  ${s.usbmuxdProblem}`]),
    `Unread notifications: ${counts.length ? `${counts.join(', ')} (\`mooring history --mark-read\` after reading them)` : 'none'}`,
  ];
  if (s.devices.length === 0) lines.push('No devices yet: pair one with `mooring pair` over USB.');
  for (const d of s.devices) lines.push('', ...deviceLines(d, now));
  return lines;
}

const SEVERITY_LABEL = { info: 'info   ', warning: 'WARNING', error: 'ERROR  ' } as const;

export function notificationLines(n: NotificationRow, names: Names, now: number): string[] {
  const lines = [
    `${formatWhen(n.at, now)}  ${SEVERITY_LABEL[n.severity]}  ${who(n.udid, names)}: ${n.message}`,
  ];
  if (n.fixHint) lines.push(`    ${n.fixHint}`);
  return lines;
}

export function attemptLine(a: AttemptRow, names: Names, now: number): string {
  const size =
    a.outcome === 'running'
      ? ''
      : `  ${formatBytes(a.bytes)}, ${formatCount(a.files)} files` +
        (a.durationMs === null ? '' : `, ${formatDuration(a.durationMs)}`);
  return (
    `#${a.id}  ${formatWhen(a.startedAt, now)}  ${who(a.udid, names)}  ${a.trigger}/${a.transport}  ${a.outcome}` +
    size +
    (a.message ? `  ${a.message}` : '')
  );
}
