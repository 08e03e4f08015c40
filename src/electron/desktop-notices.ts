/**
 * Which agent events become desktop notifications, and their texts. Only what needs the person:
 * a backup waiting for the passcode, a failed backup (with its fix), no successful backup for
 * days, and a pairing that stopped or is about to stop working. Everything else stays in the
 * Notifications tab. Pure; NoticeGate keeps the same trouble from notifying over and over.
 */
import type { AgentEvent } from '../agent/types';
import type { NotificationRow } from '../history/types';
import type { ReasonCode } from '../history/reasons';
import type { TrayAction } from './actions';
import { clip, displayName } from './device-summary';

export type NoticeCategory = 'passcode' | 'failure' | 'stale' | 'pairing';

/** Every reason code, decided: a new code fails to compile until someone decides it here. */
export const DESKTOP_CATEGORY: Record<ReasonCode, NoticeCategory | null> = {
  NOT_DUE: null,
  OUTSIDE_WINDOW: null,
  PAUSED: null,
  DEVICE_NOT_SEEN: null,
  DEVICE_LOCKED: null,
  NOT_UNLOCKED_24H: 'failure', // nothing changes until someone unlocks it
  NOT_UNLOCKED_SINCE_REBOOT: 'failure',
  WIFI_UNREACHABLE: null,
  BUSY: null,
  RETRY_LIMIT_REACHED: null, // follows failures that were notified already
  WAITING_FOR_UNLOCK: null, // the agent waits on its own; the passcode prompt comes later
  QUEUED: null,
  DISABLED: null,
  WAITING_FOR_PASSCODE: 'passcode',
  PASSCODE_NOT_ENTERED: 'failure',
  NOT_ENOUGH_SPACE: 'failure',
  CONNECTION_LOST: 'failure',
  DEVICE_ERROR: 'failure',
  VERIFICATION_FAILED: 'failure',
  BACKUP_FAILED: 'failure',
  DEVICE_MISBEHAVED: 'failure', // H7h: a security notification
  CANCELLED: null, // someone chose it
  INTERRUPTED: null, // Mooring stopped; the next run is scheduled
  BACKUP_SUCCEEDED: null,
  ENCRYPTED_NOT_OPENED: null, // H8c: shown in Notifications and on the device's Encryption row
  PAIRING_INVALID: 'pairing',
  PAIRING_EXPIRING: 'pairing',
  NO_RECENT_BACKUP: 'stale',
  COMPUTER_ASLEEP: null, // shown in the history, where the window can be moved
  PRUNE_FAILED: null, // the backup itself is good; Mooring retries after the next one
  ROOM_MADE: null, // D48: told in Notifications (and by the webhook when older backups went)
  STORE_RECOVERED: null, // nothing was lost; shown in Notifications
  BACKUP_DIR_CHANGED: null, // the person just chose the new folder
  WEBHOOK_FAILED: null, // the desktop shows the backups' own notices anyway
};

/** Longest notification body (the OS cuts longer ones anyway). */
export const MAX_BODY_CHARS = 300;
/** The same trouble on the same device notifies at most once per this long. */
export const NOTICE_QUIET_MS = 60 * 60 * 1000;

export interface DesktopNotice {
  /** Same key = same trouble (for NoticeGate). */
  key: string;
  title: string;
  body: string;
  urgency: 'normal' | 'critical';
  /** What clicking it opens. */
  action: TrayAction;
}

/** The device's display name, when the caller knows the device. */
export type NameOf = (udid: string) => string | null;

function nameFor(udid: string | null, nameOf: NameOf): string {
  if (udid === null) return 'your device';
  return displayName({ udid, name: nameOf(udid) });
}

function body(...parts: (string | null)[]): string {
  return clip(parts.filter((p): p is string => p !== null && p !== '').join('\n'), MAX_BODY_CHARS);
}

function fromNotification(n: NotificationRow, nameOf: NameOf): DesktopNotice | null {
  const category = DESKTOP_CATEGORY[n.reasonCode] ?? null;
  if (category === null || n.read) return null;
  const device = nameFor(n.udid, nameOf);
  const udid = n.udid ?? '';
  const action: TrayAction =
    n.udid === null ? { kind: 'open-window' } : { kind: 'open-notifications', udid: n.udid };
  switch (category) {
    case 'passcode':
      return {
        key: `passcode:${udid}:${n.attemptId ?? n.id}`,
        title: 'Passcode needed',
        body: `Enter your passcode on ${device} to start its backup`,
        urgency: 'critical',
        action,
      };
    case 'failure':
      if (n.severity === 'info') return null; // e.g. a device error that is harmless
      return {
        key: `failure:${udid}:${n.reasonCode}`,
        title: `Backup of ${device} failed`,
        body: body(n.message, n.fixHint),
        urgency: n.severity === 'error' ? 'critical' : 'normal',
        action,
      };
    case 'stale': {
      const days = typeof n.params?.days === 'number' ? Math.floor(n.params.days) : null;
      const never = n.params?.lastSuccessAt === undefined;
      return {
        key: `stale:${udid}`,
        title: never
          ? `${device} has not been backed up yet`
          : days === null
            ? `No recent backup of ${device}`
            : `No backup of ${device} for ${days} ${days === 1 ? 'day' : 'days'}`,
        body: body(n.message, n.fixHint),
        urgency: n.severity === 'error' ? 'critical' : 'normal',
        action,
      };
    }
    case 'pairing':
      return {
        key: `pairing:${udid}:${n.reasonCode}`,
        title:
          n.reasonCode === 'PAIRING_INVALID'
            ? `${device} no longer trusts this computer`
            : `${device}: pairing expires soon`,
        body: body(n.message, n.fixHint),
        urgency: n.severity === 'error' ? 'critical' : 'normal',
        action,
      };
  }
}

/** The desktop notification an agent event calls for, or null (most events call for none). */
export function desktopNoticeFor(e: AgentEvent, nameOf: NameOf): DesktopNotice | null {
  return e.type === 'notification' ? fromNotification(e.notification, nameOf) : null;
}

/** Lets each trouble through once per NOTICE_QUIET_MS (passcode prompts: once per attempt). */
export class NoticeGate {
  private readonly shown = new Map<string, number>();
  constructor(private readonly quietMs = NOTICE_QUIET_MS) {}

  admit(n: DesktopNotice, now: number): boolean {
    const last = this.shown.get(n.key);
    if (last !== undefined && now - last < this.quietMs) return false;
    this.shown.set(n.key, now);
    // Bounded: forget the oldest keys (keys are per device and reason, so few in practice).
    if (this.shown.size > 1000) this.shown.delete(this.shown.keys().next().value as string);
    return true;
  }
}
