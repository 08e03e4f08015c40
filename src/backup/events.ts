/** What runBackup tells its caller: live events, the final result, and the deadlines it keeps. */
import type { TransferProgress } from './transfer-meter';

export type BackupPhase =
  'connecting' | 'locking' | 'preparing' | 'waiting-for-passcode' | 'transferring' | 'finishing';

export type BackupEvent =
  | { type: 'phase'; phase: BackupPhase }
  | ({ type: 'progress' } & TransferProgress)
  | { type: 'passcode-requested' }
  | { type: 'passcode-dismissed' }
  | { type: 'device-cancelled' }
  | { type: 'refused-path'; path: string; reason: string }
  /** Nothing from the device for `waitingMs` while the connection is alive (it may be preparing). */
  | { type: 'stalled'; waitingMs: number; phase: BackupPhase }
  /** The device spoke again after a stall. */
  | { type: 'resumed'; waitedMs: number }
  /** Something optional went wrong (an Info.plist extra, the unlock at the end). */
  | { type: 'warning'; message: string };

/** Why a backup failed, for callers that act on it (exit codes, retries). */
export type BackupFailureKind =
  | 'device-error' // the device ended with a non-zero ErrorCode
  | 'not-finished' // ErrorCode 0, but Status.plist does not say finished
  | 'cancelled'
  | 'passcode'
  | 'connection-lost'
  | 'timeout'
  | 'protocol' // the device sent something malformed or out of place
  | 'setup' // lockdown, services, sync lock or Hello refused
  | 'local-io' // our own disk
  | 'internal';

export interface BackupResult {
  ok: boolean;
  failure?: BackupFailureKind;
  cancelled?: boolean;
  cancelledBy?: 'user' | 'device';
  /** The device's final ErrorCode (MBErrorDomain), when it sent one. */
  errorCode?: number;
  errorDescription?: string;
  /** One human line. */
  message: string;
  bytesReceived: number;
  filesReceived: number;
  /** Device paths refused by confinement (first 1000). */
  refusedPaths: string[];
  /** From the final Status.plist's IsFullBackup, when readable. */
  isFull?: boolean;
  durationMs: number;
  /** Optional parts that failed (Info.plist extras, unlock, …). */
  warnings: string[];
  /**
   * The MooringError behind a failure that was not the device's final ErrorCode (its `code` and
   * `detail`, e.g. DEVICE_ERROR + 'PasswordProtected' or the AFC status of a busy sync lock), so
   * callers can classify it without reading the message.
   */
  cause?: { code: string; detail?: string | number };
  /** Free space the device said it lacks (MBErrorDomain 105), from its purge request, when known. */
  neededBytes?: number;
}

export interface BackupTimeouts {
  /** Each setup reply: lockdown, service start, Hello, AFC, notification_proxy. */
  setupMs: number;
  /** Longest wait for the device's first message after Backup (a big phone scans for minutes). */
  firstMessageMs: number;
  /** Longest wait for each later message. */
  messageMs: number;
  /** Each read inside a file stream. */
  blockReadMs: number;
  /** A 'stalled' event every this long while waiting. */
  stallNoticeMs: number;
  /** How long a passcode prompt may stay up before we give up. */
  passcodeMs: number;
  /** How long to retry the sync lock while another program holds it (LIMD: 50 × 200 ms). */
  lockWaitMs: number;
}

export const DEFAULT_BACKUP_TIMEOUTS: Readonly<BackupTimeouts> = {
  setupMs: 30_000,
  firstMessageMs: 10 * 60_000,
  messageMs: 10 * 60_000,
  blockReadMs: 5 * 60_000,
  stallNoticeMs: 15_000,
  passcodeMs: 10 * 60_000,
  lockWaitMs: 10_000,
};
