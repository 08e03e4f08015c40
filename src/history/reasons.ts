/**
 * Every reason the agent records for a skip, a failure or a success, with a stable code (stored in
 * the database and sent to the UI: never rename one), a default severity, and a renderer that turns
 * the facts into one human sentence and, where the user can do something, a fix hint.
 *
 * Messages name no device: the UI, the CLI and the webhook put the device's name in front.
 * Moments are rendered in the computer's local time zone, relative to the `now` the caller passes.
 */
import { mbErrorInfo } from '../format/mb-errors';
import { formatAgo, formatBytes, formatCount, formatDuration, formatWhen } from './units';

export type Severity = 'info' | 'warning' | 'error';
export const SEVERITIES: readonly Severity[] = ['info', 'warning', 'error'];

/** What a notification is about; the UI groups and filters by it. */
export type NotificationKind =
  | 'skip' // the agent decided not to start a backup now
  | 'backup' // how an attempt went (or is going)
  | 'pairing' // the device's trust in this computer
  | 'stale' // no successful backup for a while
  | 'agent'; // this computer (sleep, restarts)

export const NOTIFICATION_KINDS: readonly NotificationKind[] = [
  'skip',
  'backup',
  'pairing',
  'stale',
  'agent',
];

export type JsonValue = null | boolean | number | string | JsonValue[] | { [k: string]: JsonValue };
export type JsonObject = { [k: string]: JsonValue };

interface ReasonSpec {
  kind: NotificationKind;
  /** The usual severity; a renderer may raise or lower it from the facts. */
  severity: Severity;
  /** Whether the rendered notice carries a fix hint (the user can act). */
  hasFix: boolean;
}

export const REASONS = {
  NOT_DUE: { kind: 'skip', severity: 'info', hasFix: false },
  OUTSIDE_WINDOW: { kind: 'skip', severity: 'info', hasFix: false },
  PAUSED: { kind: 'skip', severity: 'info', hasFix: true },
  DEVICE_NOT_SEEN: { kind: 'skip', severity: 'info', hasFix: true },
  DEVICE_LOCKED: { kind: 'skip', severity: 'info', hasFix: true },
  NOT_UNLOCKED_24H: { kind: 'skip', severity: 'warning', hasFix: true },
  NOT_UNLOCKED_SINCE_REBOOT: { kind: 'skip', severity: 'warning', hasFix: true },
  WIFI_UNREACHABLE: { kind: 'skip', severity: 'warning', hasFix: true },
  BUSY: { kind: 'skip', severity: 'info', hasFix: true },
  RETRY_LIMIT_REACHED: { kind: 'skip', severity: 'warning', hasFix: true },
  WAITING_FOR_UNLOCK: { kind: 'skip', severity: 'info', hasFix: true },
  QUEUED: { kind: 'skip', severity: 'info', hasFix: false },
  DISABLED: { kind: 'skip', severity: 'info', hasFix: true },
  WAITING_FOR_PASSCODE: { kind: 'backup', severity: 'warning', hasFix: true },
  PASSCODE_NOT_ENTERED: { kind: 'backup', severity: 'warning', hasFix: true },
  NOT_ENOUGH_SPACE: { kind: 'backup', severity: 'error', hasFix: true },
  CONNECTION_LOST: { kind: 'backup', severity: 'warning', hasFix: true },
  DEVICE_ERROR: { kind: 'backup', severity: 'error', hasFix: true },
  VERIFICATION_FAILED: { kind: 'backup', severity: 'error', hasFix: true },
  BACKUP_FAILED: { kind: 'backup', severity: 'error', hasFix: true },
  DEVICE_MISBEHAVED: { kind: 'backup', severity: 'error', hasFix: true }, // H7h: a security notification
  CANCELLED: { kind: 'backup', severity: 'info', hasFix: false },
  INTERRUPTED: { kind: 'backup', severity: 'warning', hasFix: false },
  BACKUP_SUCCEEDED: { kind: 'backup', severity: 'info', hasFix: false },
  PRUNE_FAILED: { kind: 'backup', severity: 'warning', hasFix: true },
  ROOM_MADE: { kind: 'backup', severity: 'info', hasFix: true }, // D48
  STORE_RECOVERED: { kind: 'backup', severity: 'warning', hasFix: true },
  ENCRYPTED_NOT_OPENED: { kind: 'backup', severity: 'warning', hasFix: true }, // H8c
  PAIRING_INVALID: { kind: 'pairing', severity: 'error', hasFix: true },
  PAIRING_EXPIRING: { kind: 'pairing', severity: 'warning', hasFix: true },
  NO_RECENT_BACKUP: { kind: 'stale', severity: 'warning', hasFix: true },
  COMPUTER_ASLEEP: { kind: 'agent', severity: 'warning', hasFix: true },
  BACKUP_DIR_CHANGED: { kind: 'agent', severity: 'info', hasFix: false },
  WEBHOOK_FAILED: { kind: 'agent', severity: 'warning', hasFix: true },
} as const satisfies Record<string, ReasonSpec>;

export type ReasonCode = keyof typeof REASONS;
export const REASON_CODES = Object.keys(REASONS) as ReasonCode[];

export function isReasonCode(s: string): s is ReasonCode {
  return Object.prototype.hasOwnProperty.call(REASONS, s);
}

/** A rendered reason, ready for History.addNotification (add udid / attemptId there). */
export interface Notice {
  reasonCode: ReasonCode;
  kind: NotificationKind;
  severity: Severity;
  message: string;
  fixHint: string | null;
  /** The facts the message was rendered from, kept so a UI can re-render or localise it. */
  params: JsonObject;
}

/** Longest device-supplied text (an error description) quoted in a message. */
export const MAX_QUOTED_CHARS = 300;

/** Where a person finds the agent's log (util/log-file), for the fixes that send them there. */
export const WHERE_THE_LOG_IS = 'the agent log (Settings → Agent log, or `mooring log`)';

function quote(s: string): string {
  // eslint-disable-next-line no-control-regex
  const clean = s.replace(/[\u0000-\u001f\u007f\s]+/g, ' ').trim();
  return clean.length > MAX_QUOTED_CHARS ? `${clean.slice(0, MAX_QUOTED_CHARS - 1)}…` : clean;
}

function notice(
  code: ReasonCode,
  message: string,
  fixHint: string | null,
  params: JsonObject,
  severity: Severity = REASONS[code].severity,
): Notice {
  return { reasonCode: code, kind: REASONS[code].kind, severity, message, fixHint, params };
}

/** Drops undefined values so params stay plain JSON. */
function facts(o: Record<string, JsonValue | undefined>): JsonObject {
  const out: JsonObject = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[k] = v;
  return out;
}

// ---- skips: the agent decided not to start now ----

export function notDue(p: { nextDueAt: number; lastSuccessAt?: number; now: number }): Notice {
  const last =
    p.lastSuccessAt === undefined ? '' : `last backup ${formatAgo(p.lastSuccessAt, p.now)}; `;
  return notice(
    'NOT_DUE',
    `Not due yet: ${last}next backup ${formatWhen(p.nextDueAt, p.now)}`,
    null,
    facts(p),
  );
}

/** `window` as the user set it, e.g. {start: '01:00', end: '06:00'}. */
export function outsideWindow(p: {
  window: { start: string; end: string };
  nextWindowAt?: number;
  now: number;
}): Notice {
  const next =
    p.nextWindowAt === undefined
      ? ''
      : `; the next window opens ${formatWhen(p.nextWindowAt, p.now)}`;
  return notice(
    'OUTSIDE_WINDOW',
    `Outside the backup window (${p.window.start}–${p.window.end})${next}`,
    null,
    facts({
      window: { start: p.window.start, end: p.window.end },
      nextWindowAt: p.nextWindowAt,
      now: p.now,
    }),
  );
}

export function paused(p: { since?: number; now: number }): Notice {
  const since = p.since === undefined ? '' : ` (${formatWhen(p.since, p.now)})`;
  return notice(
    'PAUSED',
    `Automatic backups were paused${since}`,
    'Resume backups in Mooring',
    facts(p),
  );
}

export function deviceNotSeen(p: { lastSeenAt?: number; now: number }): Notice {
  const msg =
    p.lastSeenAt === undefined
      ? 'The device has not been seen by this computer yet'
      : `The device was last seen ${formatWhen(p.lastSeenAt, p.now)} (${formatAgo(p.lastSeenAt, p.now)})`;
  return notice(
    'DEVICE_NOT_SEEN',
    msg,
    'Connect it by USB, or bring it onto the same Wi-Fi network as this computer with "Sync with this iPhone over Wi-Fi" on',
    facts(p),
  );
}

export function deviceLocked(): Notice {
  return notice(
    'DEVICE_LOCKED',
    'The device is locked; the backup starts once it has been unlocked',
    'Unlock the device',
    {},
  );
}

export function notUnlocked24h(p: { lastUnlockAt?: number; now: number }): Notice {
  const last =
    p.lastUnlockAt === undefined ? '' : ` (last unlocked ${formatAgo(p.lastUnlockAt, p.now)})`;
  return notice(
    'NOT_UNLOCKED_24H',
    `The device has not been unlocked for more than 24 hours${last}, so it will not start a backup`,
    'Unlock the device with its passcode; the backup starts once it has been unlocked',
    facts(p),
  );
}

export function notUnlockedSinceReboot(): Notice {
  return notice(
    'NOT_UNLOCKED_SINCE_REBOOT',
    'The device has restarted and has not been unlocked since; its data stays locked until then',
    'Unlock the device once with its passcode; the backup starts once it has been unlocked',
    {},
  );
}

export function wifiUnreachable(p: { address?: string }): Notice {
  const at = p.address === undefined ? '' : ` at ${quote(p.address)}`;
  return notice(
    'WIFI_UNREACHABLE',
    `The device is on the network but could not be reached${at}`,
    'Make sure this computer and the device are on the same network and no firewall blocks TCP port 62078, or connect the device by USB',
    facts({ address: p.address === undefined ? undefined : quote(p.address) }),
  );
}

export function busy(p: { other?: 'backup' | 'sync' }): Notice {
  const what =
    p.other === 'sync'
      ? 'A sync'
      : p.other === 'backup'
        ? 'Another backup'
        : 'Another backup or sync';
  return notice(
    'BUSY',
    `${what} with this device is in progress`,
    'Let it finish (Finder, iTunes or another backup tool); Mooring tries again later',
    facts(p),
  );
}

export function retryLimitReached(p: {
  attempts: number;
  nextTryAt?: number;
  now: number;
}): Notice {
  const next = p.nextTryAt === undefined ? '' : `; next try ${formatWhen(p.nextTryAt, p.now)}`;
  return notice(
    'RETRY_LIMIT_REACHED',
    `Gave up for today after ${p.attempts} failed ${p.attempts === 1 ? 'attempt' : 'attempts'}${next}`,
    'Look at the failures above; choose "Back up now" to try again sooner',
    facts(p),
  );
}

/**
 * iOS 16.1+ asks for the passcode at every backup: rather than start while nobody holds the
 * phone, the agent waits (up to `waitUntil`) for a sign of use and starts then.
 */
export function waitingForUnlock(p: {
  waitUntil: number;
  lastUnlockedAt?: number;
  now: number;
}): Notice {
  const last =
    p.lastUnlockedAt === undefined ? '' : `; last unlocked ${formatAgo(p.lastUnlockedAt, p.now)}`;
  return notice(
    'WAITING_FOR_UNLOCK',
    `Waiting for the device to be unlocked before starting (until ${formatWhen(p.waitUntil, p.now)}), so nobody has to stand by a passcode prompt${last}; after that the backup starts anyway and the device asks for its passcode`,
    'Unlock the device (or choose "Back up now" while you hold it) to start the backup sooner',
    facts(p),
  );
}

export function queued(p: { running: number; concurrency: number }): Notice {
  const others = p.running === 1 ? "another device's backup is" : `${p.running} other backups are`;
  return notice(
    'QUEUED',
    `Queued: ${others} running (at most ${p.concurrency} at a time); this one starts when a slot frees up`,
    null,
    facts(p),
  );
}

export function disabled(): Notice {
  return notice(
    'DISABLED',
    'Automatic backups are off for this device',
    'Turn them on with "mooring config set enabled true --udid …", or choose "Back up now"',
    {},
  );
}

// ---- during and after an attempt ----

export function waitingForPasscode(): Notice {
  return notice(
    'WAITING_FOR_PASSCODE',
    'The device is waiting for its passcode to start the backup',
    'Enter the passcode on the device',
    {},
  );
}

export function passcodeNotEntered(p: { waitedMs: number; retryAt?: number; now: number }): Notice {
  const retry =
    p.retryAt === undefined ? '' : `; Mooring tries again ${formatWhen(p.retryAt, p.now)}`;
  return notice(
    'PASSCODE_NOT_ENTERED',
    `Nobody entered the passcode on the device within ${formatDuration(p.waitedMs)}${retry}`,
    'When the device asks for its passcode during a backup, enter it; or choose "Back up now" while you hold the device',
    facts(p),
  );
}

export function notEnoughSpace(p: {
  neededBytes?: number;
  freeBytes: number;
  folder?: string;
  /**
   * D48: "make room" was off; or on, and removing every older backup would have freed only
   * `possibleBytes` (so none was removed beyond the retention settings).
   */
  makeRoom?: 'off' | 'out-of-reach';
  possibleBytes?: number;
}): Notice {
  const short =
    p.neededBytes === undefined
      ? `Not enough free space on this computer: ${formatBytes(p.freeBytes)} free`
      : `Not enough free space on this computer: ${formatBytes(p.neededBytes)} needed, ${formatBytes(p.freeBytes)} free`;
  const msg =
    p.makeRoom === 'out-of-reach' && p.possibleBytes !== undefined
      ? `${short}; removing every older backup would free only ${formatBytes(p.possibleBytes)}, so none was removed beyond what the retention settings let go`
      : short;
  const where = p.folder === undefined ? 'the disk holding the backup folder' : quote(p.folder);
  const fix =
    p.makeRoom === 'off'
      ? `Free up space on ${where}, choose another backup folder, or turn on “Make room” in Settings so that the oldest backups are removed when the device needs room`
      : `Free up space on ${where} or choose another backup folder`;
  return notice('NOT_ENOUGH_SPACE', msg, fix, facts(p));
}

/**
 * D48: the device lacked room and Mooring removed older backups for it: those the retention
 * settings no longer keep (info), or, with "make room" on, the oldest others too (a warning: the
 * person kept those, and should hear that they are gone).
 */
export function roomMade(p: {
  byRetention: number;
  beyondRetention: number;
  /** The oldest and newest backup removed (epoch ms). */
  from: number;
  to: number;
  freedBytes: number;
  folder?: string;
  now: number;
}): Notice {
  const n = p.byRetention + p.beyondRetention;
  const which =
    p.beyondRetention === 0
      ? `${formatCount(n)} older backup${n === 1 ? '' : 's'} that the retention settings no longer keep`
      : `${formatCount(n)} older backup${n === 1 ? '' : 's'}`;
  const span =
    n === 1
      ? `made ${formatWhen(p.from, p.now)}`
      : `the oldest made ${formatWhen(p.from, p.now)}, the newest ${formatWhen(p.to, p.now)}`;
  const where = p.folder === undefined ? 'the disk holding the backup folder' : quote(p.folder);
  return notice(
    'ROOM_MADE',
    `The device needed room: Mooring removed ${which} (${span}), freeing ${formatBytes(p.freedBytes)}`,
    `Pinned backups and the latest are never removed; to keep more history, free up space on ${where} or choose a larger backup folder`,
    facts(p),
    p.beyondRetention > 0 ? 'warning' : 'info',
  );
}

export function connectionLost(p: {
  transport: 'usb' | 'wifi';
  retryAt?: number;
  now: number;
}): Notice {
  const how =
    p.transport === 'wifi' ? 'The device left the Wi-Fi network' : 'The device was disconnected';
  const retry =
    p.retryAt === undefined ? '' : `; Mooring tries again ${formatWhen(p.retryAt, p.now)}`;
  return notice(
    'CONNECTION_LOST',
    `${how} during the backup; the last complete backup is untouched${retry}`,
    p.transport === 'wifi'
      ? 'Keep the device on the same Wi-Fi network (and charging) until the backup finishes'
      : 'Keep the cable connected until the backup finishes',
    facts(p),
  );
}

/** The one MBErrorDomain table (codes → explanation, fix, severity), shared with the engine. */
export { MB_ERRORS } from '../format/mb-errors';

export function deviceError(p: { code: number; description?: string }): Notice {
  const known = mbErrorInfo(p.code);
  const said =
    p.description === undefined || p.description.trim() === '' ? undefined : quote(p.description);
  const explanation = known?.explanation ?? (said !== undefined ? `"${said}"` : 'an unknown error');
  const device = known !== undefined && said !== undefined ? `: "${said}"` : '';
  return notice(
    'DEVICE_ERROR',
    `The device stopped the backup: ${explanation} (MBErrorDomain ${p.code}${device})`,
    known?.fix ?? 'Try again; if it keeps failing, restart the device and report the error code',
    facts({ code: p.code, description: said }),
    known?.severity ?? 'error',
  );
}

export function verificationFailed(p: { problems: number; firstProblem?: string }): Notice {
  const first = p.firstProblem === undefined ? '' : `, first: ${quote(p.firstProblem)}`;
  return notice(
    'VERIFICATION_FAILED',
    `The backup arrived but failed verification (${formatCount(p.problems)} ${p.problems === 1 ? 'problem' : 'problems'}${first}); it was discarded and the previous backup kept`,
    'Back up again; if it fails again, run "mooring verify" and report what it says',
    facts({
      problems: p.problems,
      firstProblem: p.firstProblem === undefined ? undefined : quote(p.firstProblem),
    }),
  );
}

/**
 * H7h — a security notification: the device broke the protocol in a way a phone that works never
 * does (paths outside its folder, impossible lengths, malformed messages, trickling bytes). The
 * backup was stopped and nothing outside the device's folder was touched; `params.security` is
 * true so a UI or a webhook can single these out.
 */
export function deviceMisbehaved(p: {
  detail: string;
  refusedPaths?: number;
  firstRefusedPath?: string;
}): Notice {
  const n = p.refusedPaths ?? 0;
  const what =
    n > 0
      ? `tried to use ${formatCount(n)} unsafe ${n === 1 ? 'path' : 'paths'} (outside its backup folder, or too long or deep${p.firstRefusedPath === undefined ? '' : `, e.g. "${quote(p.firstRefusedPath)}"`}); Mooring refused every one`
      : `sent something a working iPhone never sends (${quote(p.detail)})`;
  return notice(
    'DEVICE_MISBEHAVED',
    `Security: the device ${what} and the backup was stopped; nothing outside the device's backup folder was written or read, and the last complete backup is untouched`,
    `If this happens again, do not trust this device: disconnect it, update or restore it, and report the message; ${WHERE_THE_LOG_IS} has the details`,
    facts({
      security: true,
      detail: quote(p.detail),
      refusedPaths: p.refusedPaths,
      firstRefusedPath: p.firstRefusedPath === undefined ? undefined : quote(p.firstRefusedPath),
    }),
  );
}

/** A failure with no more specific reason (a protocol error, this computer's disk, a bug). */
/** `fix`: what to do when the cause is known (else: Mooring retries; the log says more). */
export function backupFailed(p: { detail: string; fix?: string }): Notice {
  return notice(
    'BACKUP_FAILED',
    `The backup failed: ${quote(p.detail)}`,
    p.fix ??
      `Mooring tries again later; if it keeps failing, look at ${WHERE_THE_LOG_IS} and report it`,
    { detail: quote(p.detail) },
  );
}

/** The fix of a backup folder whose disk shares no files between backups (exFAT, FAT32). */
export const FOLDER_SHARES_NOTHING_FIX =
  'Choose a backup folder on a disk formatted APFS, NTFS, ext4, Btrfs or XFS, not exFAT or FAT32 (Settings → Backup folder, or mooring config set backup-dir DIR); the backups already made there stay readable';

export function cancelled(p: { by: 'user' | 'device' }): Notice {
  return notice(
    'CANCELLED',
    p.by === 'device' ? 'The backup was cancelled on the device' : 'The backup was cancelled',
    null,
    facts(p),
  );
}

export function interrupted(p: { startedAt?: number; now: number }): Notice {
  const when = p.startedAt === undefined ? '' : ` (started ${formatWhen(p.startedAt, p.now)})`;
  return notice(
    'INTERRUPTED',
    `The backup${when} was interrupted because Mooring stopped; the last complete backup is untouched and the next one runs when due`,
    null,
    facts(p),
  );
}

export function backupSucceeded(p: {
  bytes: number;
  durationMs: number;
  filesChanged: number;
  full?: boolean;
}): Notice {
  const kind = p.full === true ? 'Full backup' : 'Backup';
  return notice(
    'BACKUP_SUCCEEDED',
    `${kind} finished: ${formatBytes(p.bytes)} in ${formatDuration(p.durationMs)}, ${formatCount(p.filesChanged)} ${p.filesChanged === 1 ? 'file' : 'files'} changed`,
    null,
    facts(p),
  );
}

/** Removing old snapshots by the retention policy failed; the new backup itself is complete. */
export function pruneFailed(p: { detail: string }): Notice {
  return notice(
    'PRUNE_FAILED',
    `The backup is complete, but older backups could not be removed as the retention settings ask: ${quote(p.detail)}`,
    'Mooring tries again after the next backup; check that the backup folder is writable and has no files open in other programs',
    { detail: quote(p.detail) },
  );
}

/**
 * Opening the device's backups, the store found them changed outside a backup (a folder deleted or
 * replaced by hand or by another tool, its records unreadable) and brought its records in line.
 */
export function storeRecovered(p: { found: string }): Notice {
  return notice(
    'STORE_RECOVERED',
    `Mooring found the backups of this device changed outside a backup, and brought its records in line: ${quote(p.found)}`,
    'Nothing was deleted by Mooring. If no one changed the backup folder by hand or with another program, check the disk it is on; "mooring verify" proves the latest backup whole',
    { found: quote(p.found) },
  );
}

/** H8c: an encrypted backup is complete, but Mooring's password did not open it (not proven). */
export function encryptedNotOpened(p: {
  problem: 'NO_PASSWORD' | 'MISMATCH' | 'NOT_CHECKED';
}): Notice {
  const why =
    p.problem === 'NO_PASSWORD'
      ? 'Mooring knows no password for it'
      : p.problem === 'MISMATCH'
        ? 'the stored password does not open it'
        : 'Mooring keeps no passwords, so it did not try';
  return notice(
    'ENCRYPTED_NOT_OPENED',
    `The encrypted backup is complete, but Mooring could not check that it opens: ${why}. It still restores with the right password`,
    'Store the backup password (Settings, Encryption, or mooring encryption password --udid UDID) so every backup is checked',
    { problem: p.problem },
  );
}

// ---- pairing ----

export function pairingInvalid(p: { cause: 'refused' | 'expired' | 'missing' }): Notice {
  const why =
    p.cause === 'missing'
      ? 'this computer has no pairing record for the device'
      : p.cause === 'expired'
        ? 'the pairing has expired'
        : 'the device no longer trusts this computer';
  return notice(
    'PAIRING_INVALID',
    `Pairing no longer valid: ${why}`,
    'Connect the device by USB, unlock it and tap "Trust" (mooring pair --udid …)',
    facts(p),
  );
}

/** iOS forgets a Wi-Fi pairing some weeks after the last contact; warn before that. */
export function pairingExpiring(p: {
  lastContactAt: number;
  expiresAt: number;
  now: number;
}): Notice {
  return notice(
    'PAIRING_EXPIRING',
    p.expiresAt > p.now
      ? `The last contact with the device was ${formatWhen(p.lastContactAt, p.now)}; its pairing may expire ${formatWhen(p.expiresAt, p.now)}`
      : `The last contact with the device was ${formatWhen(p.lastContactAt, p.now)}; its pairing may have expired ${formatWhen(p.expiresAt, p.now)}`,
    "Connect the device by USB or bring it onto this computer's Wi-Fi network before then",
    facts(p),
  );
}

// ---- staleness and this computer ----

/** From this many days without a successful backup, NO_RECENT_BACKUP is an error. */
export const STALE_ERROR_DAYS = 7;

export function noRecentBackup(p: { days: number; lastSuccessAt?: number; now: number }): Notice {
  const days = Math.max(0, Math.floor(p.days));
  const msg =
    p.lastSuccessAt === undefined
      ? `No successful backup yet, ${days} ${days === 1 ? 'day' : 'days'} after this device was first seen`
      : `No successful backup for ${days} ${days === 1 ? 'day' : 'days'} (last one ${formatWhen(p.lastSuccessAt, p.now)})`;
  return notice(
    'NO_RECENT_BACKUP',
    msg,
    'Look at the reasons recorded for this device; connect it by USB and choose "Back up now" to get a backup today',
    facts({ days, lastSuccessAt: p.lastSuccessAt, now: p.now }),
    days >= STALE_ERROR_DAYS ? 'error' : 'warning',
  );
}

export function computerAsleep(p: { from: number; to: number; now: number }): Notice {
  return notice(
    'COMPUTER_ASLEEP',
    `This computer was asleep during the backup window: asleep ${formatWhen(p.from, p.now)}, awake again ${formatWhen(p.to, p.now)}`,
    'Keep this computer awake during the backup window (energy settings), or move the window to a time it is on',
    facts(p),
  );
}

/** Where backups go changed; the backups made until now stay in the old folder as they are. */
/** The webhook could not be reached; told here, since the webhook itself cannot tell it. */
export function webhookFailed(p: { detail: string }): Notice {
  return notice(
    'WEBHOOK_FAILED',
    `Mooring could not send its notices to the webhook: ${quote(p.detail)}. Until it can, they are only here`,
    'Check the webhook URL in Settings (or mooring config set webhook URL, or off to stop sending)',
    { detail: quote(p.detail) },
  );
}

export function backupDirChanged(p: { from: string; to: string }): Notice {
  return notice(
    'BACKUP_DIR_CHANGED',
    `New backups go to ${quote(p.to)}. The backups already in ${quote(p.from)} are left there as they are: Mooring no longer shows, prunes or adds to them (move or delete them yourself)`,
    null,
    { from: quote(p.from), to: quote(p.to) },
  );
}
