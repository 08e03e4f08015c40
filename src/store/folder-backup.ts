/**
 * What a backup folder holds of one device, read from snapshots.json without opening the store
 * (no lock, no recovery, nothing written), for the agent's schedule: a backup made by `mooring
 * backup` beside the agent counts, and a folder with no backup of the device (backup-dir moved
 * to an empty one, or the device's folder deleted) makes the next backup due now.
 */
import { promises as fsp, type Stats } from 'node:fs';
import path from 'node:path';
import { isMooringError } from '../util/errors';
import { isSoundRecord, readMetadata, recordDate, type SnapshotRecord } from './metadata';

/** A snapshot as the schedule sees it: its id and when it began. */
export interface SnapshotMark {
  id: string;
  at: number;
}

export type FolderBackup =
  | {
      state: 'known';
      /** The newest sound snapshot (complete, not marked damaged); null when there is none. */
      sound: SnapshotMark | null;
      /** The one `<dest>/<UDID>` holds, sound or not (what the next backup starts from). */
      latest: SnapshotMark | null;
    }
  /** The folder is missing (a disk unplugged), or its records cannot be read now. */
  | { state: 'unknown'; why: string };

export interface FolderBackupReading {
  value: FolderBackup;
  /** What the records file looked like when read: the same key means the same answer. */
  key: string;
}

const markOf = (r: SnapshotRecord | undefined): SnapshotMark | null =>
  r === undefined ? null : { id: r.id, at: recordDate(r).getTime() };
const NOTHING: FolderBackup = { state: 'known', sound: null, latest: null };

async function statOrUndefined(p: string): Promise<Stats | undefined> {
  try {
    return await fsp.stat(p);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw e;
  }
}

/**
 * Reads `<dest>/.mooring/<UDID>/snapshots.json`. `last` is the previous reading of the same folder:
 * while the file is unchanged (inode, size and mtime: it is only ever replaced by a rename) it is
 * returned as it was, so looking every minute costs two `stat`s. Never throws.
 */
export async function readFolderBackup(
  dest: string,
  udid: string,
  last?: FolderBackupReading,
): Promise<FolderBackupReading> {
  const unknown = (why: string, key = `unknown:${why}`): FolderBackupReading => ({
    value: { state: 'unknown', why },
    key,
  });
  const stateDir = path.join(dest, '.mooring', udid);
  const file = path.join(stateDir, 'snapshots.json');
  try {
    const folder = await statOrUndefined(dest);
    if (folder === undefined || !folder.isDirectory())
      return unknown('the backup folder is missing');
    const st = await statOrUndefined(file);
    if (st === undefined) {
      // No records: nothing here unless another program's backup (to adopt) or our snapshots
      // (records lost) are, which the next backup's open sorts out.
      const latest = await statOrUndefined(path.join(dest, udid));
      const snapshots = await statOrUndefined(path.join(stateDir, 'snapshots'));
      if (latest === undefined && snapshots === undefined) return { value: NOTHING, key: 'empty' };
      return unknown('the device folder has no records yet');
    }
    const key = `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}`;
    if (last !== undefined && last.key === key) return last;
    const meta = await readMetadata(file, udid);
    if (meta === undefined) return { value: NOTHING, key: 'empty' }; // removed since the stat
    const latest = meta.snapshots.find((r) => r.id === meta.latest);
    return {
      value: {
        state: 'known',
        sound: markOf(meta.snapshots.filter(isSoundRecord).at(-1)), // sorted by id, which is by time
        latest: markOf(latest),
      },
      key,
    };
  } catch (e) {
    // A damaged snapshots.json (MALFORMED) or an I/O error: the history decides meanwhile.
    return unknown(isMooringError(e) ? e.message : `cannot read ${file}: ${(e as Error).message}`);
  }
}
