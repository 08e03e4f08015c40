/** One backup of one device into the versioned store (used by `mooring backup` and the agent). */
export {
  backupToStore,
  describeRecovery,
  diskFullError,
  isDiskFull,
  type JobEvent,
  type JobOptions,
  type JobOutcome,
  type JobStage,
  type JobEncryption, // H8b
  type EncryptionCheck, // H8b
} from './backup-to-store';
export {
  runBackupJob,
  JOB_THREAD_ENV,
  JOB_YOUNG_GENERATION_MB,
  type RunJobOptions,
} from './job-thread';
export { CRASH_AT_ENV, crashTestStoreOptions } from './crash-test';
export { GC_STATS_ENV } from './gc-count';
