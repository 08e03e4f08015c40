/**
 * How one backup attempt ended, as the history records it: the attempt's outcome and the notice
 * a person reads (a reason code with a message and a fix). Pure: every fact comes in `f`.
 */
import {
  backupFailed,
  backupSucceeded,
  busy,
  cancelled,
  connectionLost,
  deviceError,
  deviceLocked,
  deviceMisbehaved,
  FOLDER_SHARES_NOTHING_FIX,
  interrupted,
  notEnoughSpace,
  notUnlocked24h,
  notUnlockedSinceReboot,
  pairingInvalid,
  passcodeNotEntered,
  verificationFailed,
  wifiUnreachable,
  type FinishedOutcome,
  type Notice,
  type Transport,
} from '../history';
import { isDiskFull, type JobOutcome } from '../job';
import { SHARE_REFUSED } from '../store';
import { devicePathSegments } from '../backup'; // H7h
import { AfcStatus } from '../protocol/afc';
import { NOT_UNLOCKED_SINCE_BOOT } from '../lockdown/errors';
import { isMooringError } from '../util/errors';

/** MBErrorDomain codes the agent treats specially (reference §4.7, DECISIONS D11). */
const MB_INSUFFICIENT_SPACE = 105;
const MB_PASSCODE_NOT_ENTERED = 208;

export interface OutcomeFacts {
  job: JobOutcome;
  transport: Transport;
  startedAt: number;
  now: number;
  /** The agent is stopping: a cancel is an interruption, not the user's. */
  stopping: boolean;
  /** Wi-Fi address dialled, for "could not be reached at …". */
  address?: string;
  /** The backup folder (for "free up space on …"). */
  folder: string;
  /** D48: whether the oldest snapshots may go beyond retention when the device lacks room. */
  makeRoom?: boolean;
  /** When the scheduler will try again after this failure. */
  retryAt?: number;
  /** How long the passcode prompt stayed up. */
  passcodeWaitedMs?: number;
  /** What the lock watcher saw: since when without a break, and its last lock or unlock. */
  lockState?: { observedSince: number | undefined; lastActivity: number | undefined };
}

const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * Locked, and seen by the lock watcher without a break for a day with no lock or unlock (a lock
 * comes right after being unlocked): nobody has unlocked it for 24 hours. What was not watched
 * is not claimed: a device away today may have been unlocked many times.
 */
function notUnlockedForADay(f: OutcomeFacts): boolean {
  const l = f.lockState;
  if (l?.observedSince === undefined || f.now - l.observedSince < DAY_MS) return false;
  return l.lastActivity === undefined || f.now - l.lastActivity >= DAY_MS;
}

/**
 * D48: why no room was made, when the device asked for it: "make room" is off and older backups
 * are there it could have removed, or even every older backup would not have been enough.
 */
function roomFacts(f: OutcomeFacts): { makeRoom?: 'off' | 'out-of-reach'; possibleBytes?: number } {
  const plan = f.job.roomMade;
  if (plan === undefined) return {};
  if (f.makeRoom === false) return plan.beyondPossible > 0 ? { makeRoom: 'off' } : {};
  const reach = plan.outOfReach;
  return reach ? { makeRoom: 'out-of-reach', possibleBytes: reach.possibleBytes } : {};
}

export interface ClassifiedOutcome {
  outcome: FinishedOutcome;
  notice: Notice;
  /** The device refused our pairing (remember for pairing health). */
  refused: boolean;
  deviceErrorCode?: number;
}

function failure(notice: Notice, extra: Partial<ClassifiedOutcome> = {}): ClassifiedOutcome {
  return { outcome: 'failure', notice, refused: false, ...extra };
}

/** The failure reason as decide() sees it afterwards (lastFailureReason), before the notice. */
export function classifyOutcome(f: OutcomeFacts): ClassifiedOutcome {
  const { job, now } = f;
  const r = job.result;
  const retry = f.retryAt === undefined ? {} : { retryAt: f.retryAt };
  const code = r.errorCode !== undefined && r.errorCode !== 0 ? r.errorCode : undefined;
  const withCode = code === undefined ? {} : { deviceErrorCode: code };

  if (job.ok) {
    return {
      outcome: 'success',
      notice: backupSucceeded({
        bytes: r.bytesReceived,
        durationMs: r.durationMs,
        filesChanged: r.filesReceived,
        ...(r.isFull === undefined ? {} : { full: r.isFull }),
      }),
      refused: false,
    };
  }
  if (r.cancelled === true || r.failure === 'cancelled') {
    if (r.cancelledBy === 'device') {
      return { outcome: 'cancelled', notice: cancelled({ by: 'device' }), refused: false };
    }
    return f.stopping
      ? {
          outcome: 'interrupted',
          notice: interrupted({ startedAt: f.startedAt, now }),
          refused: false,
        }
      : { outcome: 'cancelled', notice: cancelled({ by: 'user' }), refused: false };
  }
  if (job.stage === 'verify' && job.verify !== undefined && !job.verify.ok) {
    const first = job.verify.problems[0]?.problem;
    return failure(
      verificationFailed({
        problems: job.verify.problemCount,
        ...(first === undefined ? {} : { firstProblem: first }),
      }),
    );
  }
  // H7h: a device that broke the protocol or reached outside its folder: a security notification.
  const misbehaved = misbehaviour(r, job.udid);
  if (misbehaved) return failure(deviceMisbehaved(misbehaved), withCode);
  if (r.failure === 'passcode' || code === MB_PASSCODE_NOT_ENTERED) {
    return failure(
      passcodeNotEntered({ waitedMs: f.passcodeWaitedMs ?? 0, ...retry, now }),
      withCode,
    );
  }
  const diskFull =
    code === MB_INSUFFICIENT_SPACE ||
    (r.failure === 'local-io' && /free space/i.test(r.message)) ||
    isDiskFull(job.error) ||
    job.folderProblem === 'full'; // H7f: found by probing the folder after the failure
  if (diskFull) {
    return failure(
      notEnoughSpace({
        ...(r.neededBytes === undefined ? {} : { neededBytes: r.neededBytes }),
        freeBytes: job.freeBytes ?? 0,
        folder: f.folder,
        ...roomFacts(f),
      }),
      withCode,
    );
  }
  // The folder took the first backup, but its disk cannot share files with the next (exFAT).
  if (isMooringError(job.error, 'IO') && job.error.detail === SHARE_REFUSED) {
    return failure(backupFailed({ detail: job.message, fix: FOLDER_SHARES_NOTHING_FIX }));
  }
  // H7f: our own backup folder failed (removed, read-only): the device only saw a silent host.
  if (job.folderProblem && job.folderProblem !== 'full') {
    return failure(backupFailed({ detail: job.message }));
  }
  if (r.failure === 'connection-lost' || r.failure === 'timeout') {
    return failure(connectionLost({ transport: f.transport, ...retry, now }));
  }
  const err = job.error;
  if (job.stage === 'session' && (isMooringError(err, 'PAIRING') || isMooringError(err, 'TLS'))) {
    return { ...failure(pairingInvalid({ cause: 'refused' })), refused: true };
  }
  if (job.stage === 'connect') {
    return failure(
      f.transport === 'wifi'
        ? wifiUnreachable(f.address === undefined ? {} : { address: f.address })
        : connectionLost({ transport: 'usb', ...retry, now }),
    );
  }
  if (job.stage === 'store' && lockedStore(err)) {
    return failure(busy({ other: 'backup' }));
  }
  const cause =
    r.cause ?? (isMooringError(err) ? { code: err.code, detail: err.detail } : undefined);
  if (cause?.code === 'DEVICE_ERROR' && cause.detail === AfcStatus.OP_WOULD_BLOCK) {
    return failure(busy({ other: 'sync' }));
  }
  if (cause?.detail === NOT_UNLOCKED_SINCE_BOOT) return failure(notUnlockedSinceReboot());
  if (cause?.detail === 'PasswordProtected' || cause?.detail === 'EscrowLocked') {
    if (!notUnlockedForADay(f)) return failure(deviceLocked());
    const last = f.lockState?.lastActivity;
    return failure(notUnlocked24h({ ...(last === undefined ? {} : { lastUnlockAt: last }), now }));
  }
  if (code !== undefined) {
    return failure(
      deviceError({
        code,
        ...(r.errorDescription === undefined ? {} : { description: r.errorDescription }),
      }),
      withCode,
    );
  }
  return failure(backupFailed({ detail: job.message }));
}

/** H7h: error codes that mean the device sent what the protocol does not allow. */
const HOSTILE_CAUSES: ReadonlySet<string> = new Set([
  'MALFORMED',
  'LIMIT',
  'FRAME_TOO_LARGE',
  'PROTOCOL',
]);
/** What the engine puts before a protocol failure (the notice says it its own way). */
const INVALID_PREFIX = /^The device sent something invalid, so the backup was stopped: /;
/** Hello's "no common protocol version": an iOS too old or too new, not a hostile device. */
const MB2_NO_COMMON_VERSION = 1;

/** H7h: the facts of a security notification, when the result shows the device misbehaving. */
function misbehaviour(
  r: JobOutcome['result'],
  udid: string,
): { detail: string; refusedPaths?: number; firstRefusedPath?: string } | undefined {
  // Only paths the device itself made unsafe (`..`, absolute, another folder, too long or deep);
  // a symlink on this computer is the backup folder's problem, not the device's.
  const refused = (r.refusedPaths ?? []).filter((p) => !lexicallySafe(udid, p));
  if (refused.length > 0) {
    return { detail: r.message, refusedPaths: refused.length, firstRefusedPath: refused[0]! };
  }
  const cause = r.cause;
  if (
    r.failure === 'protocol' &&
    cause !== undefined &&
    HOSTILE_CAUSES.has(cause.code) &&
    !(cause.code === 'PROTOCOL' && cause.detail === MB2_NO_COMMON_VERSION)
  ) {
    return { detail: r.message.replace(INVALID_PREFIX, '') };
  }
  return undefined;
}

function lexicallySafe(udid: string, devicePath: string): boolean {
  try {
    devicePathSegments(udid, devicePath);
    return true;
  } catch {
    return false;
  }
}

/** The store's device lock is held by another process (another `mooring backup`). */
function lockedStore(err: Error | undefined): boolean {
  return isMooringError(err) && err.detail === 'LOCKED';
}
