/** The names inside a backup folder `<UDID>/` (reference §5). */
import path from 'node:path';
import { payloadRelPath } from './file-id';

export const INFO_PLIST = 'Info.plist';
export const STATUS_PLIST = 'Status.plist';
export const MANIFEST_PLIST = 'Manifest.plist';
export const MANIFEST_DB = 'Manifest.db';
/** Transient: payloads land here during a backup and are moved into place at the end (§4.8). */
export const SNAPSHOT_DIR = 'Snapshot';

/** The payload of `fileId` inside the backup folder `backupDir`. */
export function payloadPath(backupDir: string, fileId: string): string {
  return path.join(backupDir, payloadRelPath(fileId));
}

/** Bucket folder names: two lower-case hex digits. */
export function isBucketName(name: string): boolean {
  return /^[0-9a-f]{2}$/.test(name);
}
