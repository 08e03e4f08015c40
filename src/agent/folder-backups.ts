/**
 * What the backup folder holds of each device, read into its runtime: at start, after each of its
 * backups, when the folder moves, and before every round of decisions (two `stat`s while nothing
 * changed). The schedule counts a backup made there by `mooring backup` beside the agent, and a
 * folder without a backup of the device (moved to an empty one, the device's folder deleted)
 * makes the next backup due now (see scheduleLastSuccess).
 */
import { readFolderBackup, type FolderBackup, type FolderBackupReading } from '../store';
import type { AgentContext } from './agent-context';

export interface FolderFacts {
  /** The backup folder read (readings of an earlier folder are not used). */
  dest: string;
  reading: FolderBackupReading;
  /** ctx.now() when it was read: a success recorded after this is not in it yet. */
  readAt: number;
}

/** The device's folder facts, when they are of the folder backups go to now. */
export function currentFolderFacts(ctx: AgentContext, udid: string): FolderFacts | undefined {
  const f = ctx.runtime(udid).folder;
  return f !== undefined && f.dest === ctx.backupDir ? f : undefined;
}

const same = (a: FolderBackup | undefined, b: FolderBackup): boolean =>
  JSON.stringify(a) === JSON.stringify(b);

/**
 * Reads the device's records in the backup folder into its runtime (`folder`, `latestSnapshot`).
 * Returns whether what they say changed. Never throws; a folder that cannot be read is logged
 * once per reason, and the history decides meanwhile. While a read of the device is under way,
 * asking again joins it rather than starting another; `fresh` (after a commit, or a move) reads
 * again once it is done, so that what was just written is in.
 */
export function readDeviceFolder(
  ctx: AgentContext,
  udid: string,
  o: { fresh?: boolean } = {},
): Promise<boolean> {
  const rt = ctx.runtime(udid);
  const pending = rt.folderRead;
  if (pending !== undefined && o.fresh !== true) return pending;
  const read: Promise<boolean> = (pending ?? Promise.resolve(false))
    .then(() => readOnce(ctx, udid))
    .finally(() => {
      if (rt.folderRead === read) rt.folderRead = undefined;
    });
  rt.folderRead = read;
  return read;
}

async function readOnce(ctx: AgentContext, udid: string): Promise<boolean> {
  const dest = ctx.backupDir;
  const before = currentFolderFacts(ctx, udid);
  const reading = await readFolderBackup(dest, udid, before?.reading);
  const rt = ctx.runtime(udid);
  if (dest !== ctx.backupDir) return false; // moved meanwhile: the move reads it anew
  rt.folder = { dest, reading, readAt: ctx.now() };
  const v = reading.value;
  // Not known (a disk unplugged): the last one known stays, as the disk still holds it.
  if (v.state === 'known') rt.latestSnapshot = v.latest;
  if (same(before?.reading.value, v)) return false;
  if (v.state === 'unknown')
    ctx.log(`cannot tell which backups of ${udid} ${dest} holds: ${v.why}`);
  return true;
}
