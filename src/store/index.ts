/** The versioned snapshot store of backups (see store.ts for the layout and the commit protocol). */
export * from './store';
export * from './retention';
export * from './verify';
export * from './browse';
export { isSnapshotId, dateOfSnapshotId, formatSnapshotId } from './ids';
export type { SnapshotDamage, SnapshotRecord, SnapshotStatus } from './metadata';
export { damageFromReport, describeDamage } from './damage';
export * from './attempts';
export * from './folder-backup';
export { combineRoomPlans, type RoomPlan, type RoomPolicy } from './make-room';
export { breakOwnStaleLock, noteJobThread, releaseLockOfThread } from './lock';
export { SHARE_REFUSED, sharingRefusedIn } from './fs-util';
export { ShareRefused } from './link-tree.worker';
