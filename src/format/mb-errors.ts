/**
 * MBErrorDomain codes a device reports when it ends a backup (the ErrorCode of its final
 * status), with what each means for the user and what to do. The one table for every layer
 * that explains a device error: the backup engine's outcome lines and the agent's history.
 *
 * Sources: reference §4.7 for the codes seen in the wild; DECISIONS D11 for 202 and 208, which
 * we chose where no public trace exists (the simulator uses the same numbers).
 */

/** MBErrorDomain codes with a known meaning. */
export const MbErrorCode = {
  KEYCHAIN: 1,
  SNAPSHOT_EXISTS: 3,
  BAD_STATUS: 103,
  UPLOAD_FAILED: 104,
  INSUFFICIENT_SPACE: 105,
  CANCELLED: 202,
  BAD_BACKUP: 205,
  PASSCODE_NOT_ENTERED: 208,
  SETUP_NOT_FINISHED: 212,
} as const;

export interface MbErrorInfo {
  /** Completes "The device stopped the backup: …" (lower case, no full stop). */
  explanation: string;
  /** What the user can do, as an imperative sentence (no full stop). */
  fix: string;
  severity: 'info' | 'warning' | 'error';
}

export const MB_ERRORS: Readonly<Record<number, MbErrorInfo>> = Object.freeze({
  [MbErrorCode.KEYCHAIN]: {
    explanation: 'the device could not back up its keychain (it was locked)',
    fix: 'Unlock the device and keep it unlocked until the backup has started',
    severity: 'error',
  },
  // "Failed to create snapshot: File exists (17) at path /private/var" after a backup was cut
  // off; users report that only a restart of the phone clears it (libimobiledevice#1257).
  [MbErrorCode.SNAPSHOT_EXISTS]: {
    explanation:
      'the device could not begin its backup: an earlier backup that was cut off left its snapshot behind',
    fix: 'Restart the device, then back up again (only a restart clears it)',
    severity: 'error',
  },
  [MbErrorCode.BAD_STATUS]: {
    explanation: 'the device could not read the backup status this computer sent',
    fix: "Try again; if it keeps failing, make the next backup a full one (move this device's folder out of the backup folder, or run mooring backup --full)",
    severity: 'error',
  },
  [MbErrorCode.UPLOAD_FAILED]: {
    explanation: 'the device could not send some of its files',
    fix: 'Try again; if it keeps failing, restart the device',
    severity: 'error',
  },
  [MbErrorCode.INSUFFICIENT_SPACE]: {
    explanation: 'there is not enough free space on this computer',
    fix: 'Free up space on the disk holding the backup folder or choose another backup folder',
    severity: 'error',
  },
  [MbErrorCode.CANCELLED]: {
    explanation: 'the backup was cancelled',
    fix: 'Start the backup again when the device is free',
    severity: 'info',
  },
  [MbErrorCode.BAD_BACKUP]: {
    explanation:
      'the device could not use the previous backup in this folder (damaged or incomplete)',
    // Mooring's job asks again for a full backup at once (job/backup-to-store), so this is seen
    // only when that one failed too.
    fix: 'Restart the device and back up again; Mooring already asked it for a full backup instead',
    severity: 'error',
  },
  [MbErrorCode.PASSCODE_NOT_ENTERED]: {
    explanation: 'nobody entered the passcode on the device',
    fix: 'Enter the passcode on the device when it asks during a backup',
    severity: 'warning',
  },
  [MbErrorCode.SETUP_NOT_FINISHED]: {
    explanation: 'the device has not finished its setup',
    fix: 'Finish the setup assistant on the device, then back up',
    severity: 'error',
  },
});

/** The table's entry for `code`, if it has one. */
export function mbErrorInfo(code: number): MbErrorInfo | undefined {
  return Object.prototype.hasOwnProperty.call(MB_ERRORS, code) ? MB_ERRORS[code] : undefined;
}
