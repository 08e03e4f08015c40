/**
 * The final `ErrorCode`s the simulated device reports in DLMessageProcessMessage.
 * Codes marked "observed" appear in real device traffic (reference §4.7, MBErrorDomain); the others
 * are the simulator's own choices for situations no public trace shows, kept distinct so hosts and
 * tests can tell them apart.
 */
export const MbError = {
  OK: 0,
  /** observed (Hello): no protocol version in common. */
  NO_COMMON_VERSION: 1,
  /** observed: "Failed to create snapshot: File exists (17) at path "/private/var"" after an
   *  interrupted backup, until the phone restarts (libimobiledevice#1257). */
  SNAPSHOT_EXISTS: 3,
  /** observed: "Multiple errors uploading files". */
  UPLOAD_FAILED: 104,
  /** observed: "Insufficient free disk space on drive to back up". */
  INSUFFICIENT_SPACE: 105,
  /** observed: backup properties / database unreadable, downloads failed, missing payloads. */
  BAD_BACKUP: 205,
  /** simulator's choice: the user cancelled on the device (syncCancelRequest). */
  CANCELLED: 202,
  /** simulator's choice: the iOS 16.1+ passcode prompt was not answered. */
  PASSCODE_NOT_ENTERED: 208,
  /** simulator's choice: a request this simulated device does not implement. */
  NOT_SUPPORTED: 45,
  /** simulator's choice: the request itself was malformed (bad identifiers, wrong types). */
  BAD_REQUEST: 22,
  /** simulator's choice (no public trace): ChangePassword/Restore with a wrong backup password. */
  WRONG_PASSWORD: 207,
  /** simulator's choice: encryption already on (enable) or off (change/disable). */
  ENCRYPTION_STATE: 211,
} as const;

/** A reason to end the current request with a non-zero ErrorCode. */
export class BackupFailure extends Error {
  constructor(
    readonly errorCode: number,
    message: string,
  ) {
    super(message);
    this.name = 'BackupFailure';
  }
}

/** The connection was dropped on purpose (fault injection); nothing more is sent. */
export class ConnectionDropped extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConnectionDropped';
  }
}
