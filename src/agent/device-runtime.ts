/**
 * What the agent keeps in memory per device beside the history: the reason last recorded (so a
 * skip is recorded only when it changes), the status line, the running backup, lock activity and
 * the days on which daily warnings went out. Seeded from the history, so a restarted agent
 * neither repeats a notice nor forgets a refused pairing.
 */
import type { History } from '../history';
import { wallClock } from '../scheduler';
import type { FolderFacts } from './folder-backups';
import type { DeviceStatus, RunningBackup } from './types';

export interface RunningInfo extends RunningBackup {
  /** When the device put up its passcode prompt (for "nobody entered it within …"). */
  passcodeSince?: number;
  /** The Wi-Fi address dialled. */
  address?: string;
}

export interface DeviceRuntime {
  /** The last reason recorded or seen for this device: a skip is recorded only when it changes. */
  lastReason: string | undefined;
  next: DeviceStatus['next'];
  running?: RunningInfo;
  /** From lockdown at contact: the device asks for its passcode at every backup. */
  passcodeRequired?: boolean;
  /** Last lock-state activity (unlock, lock, passcode entered). */
  lastUnlockedAt?: number;
  /** When the device last refused our pairing. */
  refusedAt: number | null;
  /** Local day (YYYY-MM-DD) of the last NO_RECENT_BACKUP / PAIRING_EXPIRING notice. */
  staleDay: string | undefined;
  pairingWarnDay: string | undefined;
  lastProbeAt?: number;
  /** A first-contact session is under way. */
  probing?: boolean;
  /** The lock watcher observes it. */
  watched: boolean;
  latestSnapshot: DeviceStatus['latestSnapshot'];
  /** What the backup folder holds of it, as last read (readDeviceFolder). */
  folder?: FolderFacts;
  /** That read while it is under way: one at a time, even if the folder does not answer. */
  folderRead?: Promise<boolean> | undefined;
  /** EnableWifiConnections as last read or set; null before the first contact. */
  wifiBackups: boolean | null;
  /** A pair() is waiting for the answer on the device. */
  pairing?: boolean;
}

/** The local calendar day of `t`, e.g. '2026-01-31'. */
export function dayKey(t: number, timeZone: string): string {
  const w = wallClock(t, timeZone);
  return `${w.year}-${String(w.month).padStart(2, '0')}-${String(w.day).padStart(2, '0')}`;
}

export function newRuntime(db: History, udid: string, timeZone: string): DeviceRuntime {
  const rt: DeviceRuntime = {
    lastReason: undefined,
    next: { code: 'UNKNOWN', message: 'Not looked at yet', at: null },
    refusedAt: null,
    staleDay: undefined,
    pairingWarnDay: undefined,
    watched: false,
    latestSnapshot: null,
    wifiBackups: null,
  };
  if (db.getDevice(udid) === undefined) return rt;
  const last = db.listHistory({ udid, limit: 1 }).items[0];
  if (last) rt.lastReason = last.reasonCode;
  const stale = db.listHistory({ udid, kind: 'stale', limit: 1 }).items[0];
  if (stale) rt.staleDay = dayKey(stale.at, timeZone);
  const pairing = db.listHistory({ udid, kind: 'pairing', limit: 1 }).items[0];
  if (pairing?.reasonCode === 'PAIRING_INVALID') rt.refusedAt = pairing.at;
  if (pairing?.reasonCode === 'PAIRING_EXPIRING') rt.pairingWarnDay = dayKey(pairing.at, timeZone);
  return rt;
}
