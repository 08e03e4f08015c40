/**
 * Removes a file or a whole tree as `fs.rm(p, { recursive: true, force: true })` does, with a
 * bounded number of file system calls in flight (D50).
 *
 * Why not fs.rm: Node 20's recursive rm starts a call for every entry of a folder at once, and
 * recurses into every subfolder at once, so removing a backup of 100,000 files held ~100,000
 * requests, each with its callbacks and path buffers: the thread's heap went from 15 to 100 MiB
 * and the process's RSS past 300 MiB. Backups that size are removed by every prune, every
 * discarded staging and every failed backup.
 *
 * As fs.rm: a folder is first simply removed, and emptied only when it has something in it, so a
 * folder that cannot go for another reason (a mount point, a parent not writable) is left as it
 * is; names are taken as bytes, so one that is not UTF-8 is removed too; symlinks are removed,
 * never followed; a missing path is fine. Unlike it: a folder is read BATCH names at a time, its
 * handle closed before they are removed (some file systems skip names when a folder changes while
 * it is read: HFS+, NFS, SMB), at most IN_FLIGHT unlinks are waited on per folder and subfolders
 * are removed one after another, so memory is bounded by the depth, not the count. A failure is
 * thrown once the calls in flight have ended; what was removed by then stays removed. On Windows,
 * where a delete can still be pending or a file held by another program, a few retries.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { errnoOf } from './errors';

/** Unlinks waited on at once in one folder: enough to keep libuv's four threads busy. */
const IN_FLIGHT = 16;
/** Names read from a folder before its handle is closed and they are removed. */
const BATCH = 1024;
/** Times a folder is emptied again when something came into it meanwhile. */
const EMPTYINGS = 3;
/** Windows: retries of a busy file or folder, or one whose delete is pending, 100 ms apart more each time. */
const WINDOWS_RETRIES = 3;
const RETRY_STEP_MS = 100;
const WINDOWS = process.platform === 'win32';
const SEP = Buffer.from(path.sep);

export async function removeTree(target: string): Promise<void> {
  const at = Buffer.from(target);
  let isDir: boolean;
  try {
    isDir = (await fsp.lstat(at)).isDirectory();
  } catch (e) {
    if (errnoOf(e) === 'ENOENT') return;
    throw e;
  }
  if (isDir) await removeFolder(at);
  else await removeFile(at);
}

async function removeFolder(dir: Buffer): Promise<void> {
  let emptied = 0;
  let waits = 0;
  for (;;) {
    try {
      await fsp.rmdir(dir);
      return;
    } catch (e) {
      const errno = errnoOf(e);
      if (errno === 'ENOENT') return;
      // What rmdir says of a folder with something in it (EPERM on some systems, as fs.rm knows).
      const notEmpty = errno === 'ENOTEMPTY' || errno === 'EEXIST' || errno === 'EPERM';
      if (notEmpty && emptied < EMPTYINGS) {
        emptied++;
        await emptyFolder(dir);
        continue;
      }
      if (WINDOWS && (notEmpty || errno === 'EBUSY') && waits < WINDOWS_RETRIES) {
        await sleep(RETRY_STEP_MS * ++waits);
        continue;
      }
      throw e;
    }
  }
}

/** Removes what is in `dir`, BATCH names at a time (missing: nothing to do). */
async function emptyFolder(dir: Buffer): Promise<void> {
  const batch = new Batch();
  for (;;) {
    await batch.read(dir);
    if (batch.count === 0) return;
    const removed = await removeEntries(dir, batch);
    // All read at once; or none of them was there any more (nothing to gain from reading again).
    if (batch.count < BATCH || removed === 0) return;
  }
}

/**
 * Names read from a folder, kept as bytes in one buffer: a batch lives while its files are
 * removed, long enough for an object a name to be promoted and become old-generation garbage.
 */
class Batch {
  private names = Buffer.allocUnsafe(64 * 1024);
  private readonly ends = new Int32Array(BATCH);
  private readonly dirs = new Uint8Array(BATCH);
  count = 0;

  async read(dir: Buffer): Promise<void> {
    this.count = 0;
    let handle;
    try {
      // Node's types know only string names; 'buffer' gives each name's bytes (as fs.rm reads them).
      handle = await fsp.opendir(dir, { encoding: 'buffer' as BufferEncoding, bufferSize: 128 });
    } catch (e) {
      if (errnoOf(e) === 'ENOENT') return;
      throw e;
    }
    try {
      let used = 0;
      while (this.count < BATCH) {
        const d = await handle.read();
        if (d === null) break;
        const name = d.name as unknown as Buffer;
        if (used + name.length > this.names.length) {
          const bigger = Buffer.allocUnsafe(2 * (used + name.length));
          this.names.copy(bigger, 0, 0, used);
          this.names = bigger;
        }
        used += name.copy(this.names, used);
        this.ends[this.count] = used;
        this.dirs[this.count++] = d.isDirectory() ? 1 : 0;
      }
    } finally {
      await handle.close();
    }
  }

  /** `dir`/name of entry `i`, a new buffer. */
  child(dir: Buffer, i: number): Buffer {
    const from = i === 0 ? 0 : this.ends[i - 1]!;
    return Buffer.concat([dir, SEP, this.names.subarray(from, this.ends[i])]);
  }

  isDir(i: number): boolean {
    return this.dirs[i] === 1;
  }
}

/** How many of the batch were removed here (the others were gone already); throws the first failure. */
async function removeEntries(dir: Buffer, batch: Batch): Promise<number> {
  const inFlight = new Set<Promise<void>>();
  let removed = 0;
  let failure: { error: unknown } | undefined;
  const track = (p: Promise<boolean>): void => {
    const tracked: Promise<void> = p
      .then((did) => {
        if (did) removed++;
      })
      .catch((e: unknown) => {
        failure ??= { error: e };
      })
      .finally(() => inFlight.delete(tracked));
    inFlight.add(tracked);
  };
  try {
    for (let i = 0; i < batch.count; i++) {
      if (failure) break;
      const child = batch.child(dir, i);
      if (batch.isDir(i)) {
        await removeFolder(child);
        removed++;
        continue;
      }
      if (inFlight.size >= IN_FLIGHT) await Promise.race(inFlight);
      if (failure) break;
      track(removeFile(child));
    }
  } catch (e) {
    failure ??= { error: e };
  } finally {
    await Promise.all(inFlight); // tracked promises never reject
  }
  if (failure) throw failure.error;
  return removed;
}

/** True when removed here, false when it was gone already. */
async function removeFile(file: Buffer): Promise<boolean> {
  for (let waits = 0; ;) {
    try {
      await fsp.unlink(file);
      return true;
    } catch (e) {
      const errno = errnoOf(e);
      if (errno === 'ENOENT') return false;
      if (errno === 'EISDIR' || errno === 'EPERM') {
        // A folder after all (EISDIR on Linux, EPERM on macOS)?
        let isDir: boolean;
        try {
          isDir = (await fsp.lstat(file)).isDirectory();
        } catch (l) {
          if (errnoOf(l) === 'ENOENT') return false;
          throw e;
        }
        if (isDir) {
          await removeFolder(file);
          return true;
        }
      }
      if (WINDOWS && (errno === 'EPERM' || errno === 'EBUSY') && waits < WINDOWS_RETRIES) {
        // A read-only file is EPERM there; a file another program holds, or one being deleted, too.
        if (errno === 'EPERM') await fsp.chmod(file, 0o666).catch(() => undefined);
        await sleep(RETRY_STEP_MS * ++waits);
        continue;
      }
      throw e;
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
