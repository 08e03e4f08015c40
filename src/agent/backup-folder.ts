/**
 * Moving where backups go (the backup-dir setting): the new folder must exist or be creatable,
 * be writable, which is checked by creating it and writing (then removing) a probe file, and
 * share files between snapshots (a hard link or a clone: exFAT and FAT32 do neither, and there
 * the first backup would work and every later one fail). Synchronous on purpose: setConfig answers at once, and no backup can start between the check
 * and the switch. The old folder is left exactly as it is.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { sharingRefusedIn } from '../store';
import { MooringError } from '../util/errors';

export function prepareBackupFolder(dir: string): void {
  const fail = (
    why: string,
    cause?: unknown,
    todo = 'Choose a folder this user may write to',
  ): never => {
    throw new MooringError(
      'USAGE',
      `backup-dir: cannot use ${JSON.stringify(dir)}: ${why}. ${todo}`,
      cause === undefined ? {} : { cause },
    );
  };
  try {
    fs.mkdirSync(dir, { recursive: true });
  } catch (e) {
    fail((e as Error).message, e);
  }
  let st: fs.Stats;
  try {
    st = fs.statSync(dir);
  } catch (e) {
    return fail((e as Error).message, e);
  }
  if (!st.isDirectory()) fail('it is not a folder');
  // A random name: never mistake someone's file for ours, never delete what we did not create.
  const probe = path.join(
    dir,
    `.mooring-write-test-${process.pid}-${randomBytes(6).toString('hex')}`,
  );
  try {
    fs.writeFileSync(probe, 'mooring', { flag: 'wx' });
  } catch (e) {
    fail(`it is not writable (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, e);
  }
  fs.rmSync(probe, { force: true });
  const refused = sharingRefusedIn(dir);
  if (refused !== undefined) {
    fail(
      `its disk cannot share files between backups (hard links refused: ${refused}; no copy-on-write clones either), so every backup after the first would fail`,
      undefined,
      'Choose a folder on a disk formatted APFS, NTFS, ext4, Btrfs or XFS (not exFAT or FAT32)',
    );
  }
}

/**
 * The folder a validated change list (checkConfig) moves backups to: the chosen path, or the
 * default folder when backup-dir is reset; undefined when backup-dir is not among the changes.
 */
export function backupFolderSetting(
  parsed: readonly (readonly [key: string, value: unknown])[],
  defaultDir: string,
): string | undefined {
  const change = parsed.find(([key]) => key === 'backup-dir');
  if (change === undefined) return undefined;
  return typeof change[1] === 'string' ? change[1] : defaultDir;
}
