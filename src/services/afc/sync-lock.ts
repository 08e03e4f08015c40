/**
 * The iTunes sync lock: an exclusive AFC lock on /com.apple.itunes.lock_sync that tells the device
 * (and other hosts) a sync is running. The notifications posted around it belong to the backup
 * orchestration; this is only the file part (reference §6.1 steps 6 and 8).
 */
import { AfcFileMode } from '../../protocol/afc';
import type { AfcClient } from './client';

export const SYNC_LOCK_PATH = '/com.apple.itunes.lock_sync';

export interface SyncLock {
  readonly handle: number;
  /** Unlock and close the file; safe to call twice. */
  release(): Promise<void>;
}

/** Opens the lock file read-write (creating it) and takes the exclusive lock with the retry policy. */
export async function acquireSyncLock(
  afc: AfcClient,
  opts: { attempts?: number; intervalMs?: number } = {},
): Promise<SyncLock> {
  const handle = await afc.fileOpen(SYNC_LOCK_PATH, AfcFileMode.RW);
  try {
    await afc.fileLock(handle, 'exclusive', opts);
  } catch (e) {
    await afc.fileClose(handle).catch(() => undefined);
    throw e;
  }
  let released = false;
  return {
    handle,
    async release(): Promise<void> {
      if (released) return;
      released = true;
      try {
        await afc.fileLock(handle, 'unlock');
      } finally {
        await afc.fileClose(handle);
      }
    },
  };
}
