/** The backup engine: one backup of one device into a BackupTarget (the store supplies targets). */
export type { BackupTarget } from './target';
export {
  runBackup,
  readStatus,
  OBSERVED_NOTIFICATIONS,
  type BackupOptions,
  type BackupSession,
} from './run-backup';
export { freeBytesOf, type MakeRoom } from './device-link-host';
export {
  DEFAULT_BACKUP_TIMEOUTS,
  type BackupEvent,
  type BackupFailureKind,
  type BackupPhase,
  type BackupResult,
  type BackupTimeouts,
} from './events';
export type { TransferProgress } from './transfer-meter';
export { PathConfiner, devicePathSegments } from './confine';
export { TEMP_FILE_PREFIX, isTempFileName } from './atomic-file';
export { ReceivedDigests } from './received-digests';
