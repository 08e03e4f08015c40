/**
 * Removes a file or a whole tree, as `fs.rm(p, { recursive: true, force: true })` does, with a
 * bounded number of file system calls in flight (D50).
 *
 * Why not fs.rm: Node 20's recursive rm starts a call for every entry of a folder at once, and
 * recurses into every subfolder at once, so removing a backup of 300,000 files held ~100,000
 * requests, each with its callbacks and path buffers: the thread's heap went from 15 to 100 MiB
 * and the process's RSS past 300 MiB (808 MiB with a heap snapshot taken). Backups that size are
 * removed by every prune, every discarded staging and every failed backup. Here a folder is read
 * a batch of names at a time (opendir), at most IN_FLIGHT unlinks are waited on per folder, and
 * subfolders are removed one after another, so memory is bounded by the depth, not the count.
 *
 * Symlinks are removed, never followed. A missing path is fine; any other error is thrown once the
 * calls in flight have ended, and what was removed by then stays removed.
 */
import { promises as fsp, type Dir } from 'node:fs';
import path from 'node:path';

/** Unlinks waited on at once in one folder: enough to keep libuv's four threads busy. */
const IN_FLIGHT = 16;
/** Names read from a folder per call. */
const READ_BATCH = 128;
/** Retries of a folder that is not empty yet or busy (Windows deletes lazily), 100 ms apart more each time. */
const FOLDER_RETRIES = 3;
const RETRY_STEP_MS = 100;

export async function removeTree(target: string): Promise<void> {
  let isDir: boolean;
  try {
    isDir = (await fsp.lstat(target)).isDirectory();
  } catch (e) {
    if (errnoOf(e) === 'ENOENT') return;
    throw e;
  }
  if (isDir) await removeFolder(target, FOLDER_RETRIES);
  else await removeFile(target);
}

async function removeFolder(dir: string, retries: number): Promise<void> {
  await emptyFolder(dir);
  try {
    await fsp.rmdir(dir);
  } catch (e) {
    const errno = errnoOf(e);
    if (errno === 'ENOENT') return;
    // Something new in it (another writer), or a Windows delete still pending: empty it again.
    if (
      retries > 0 &&
      (errno === 'ENOTEMPTY' || errno === 'EEXIST' || errno === 'EBUSY' || errno === 'EPERM')
    ) {
      await new Promise((r) => setTimeout(r, RETRY_STEP_MS * (FOLDER_RETRIES - retries + 1)));
      await removeFolder(dir, retries - 1);
      return;
    }
    throw e;
  }
}

/** Removes everything in `dir` (missing: nothing to do). */
async function emptyFolder(dir: string): Promise<void> {
  let handle: Dir;
  try {
    handle = await fsp.opendir(dir, { bufferSize: READ_BATCH });
  } catch (e) {
    if (errnoOf(e) === 'ENOENT') return;
    throw e;
  }
  const inFlight = new Set<Promise<void>>();
  let failure: { error: unknown } | undefined;
  const started = (p: Promise<void>): void => {
    const tracked: Promise<void> = p
      .catch((e: unknown) => {
        failure ??= { error: e };
      })
      .finally(() => inFlight.delete(tracked));
    inFlight.add(tracked);
  };
  try {
    // Names already returned may be removed while the folder is read (POSIX readdir).
    for await (const entry of handle) {
      const child = path.join(dir, entry.name);
      if (entry.isDirectory()) {
        await removeFolder(child, FOLDER_RETRIES);
      } else {
        if (inFlight.size >= IN_FLIGHT) await Promise.race(inFlight);
        if (failure) break;
        started(removeFile(child));
      }
      if (failure) break;
    }
  } catch (e) {
    failure ??= { error: e };
  } finally {
    await Promise.all(inFlight); // tracked promises never reject
  }
  if (failure) throw failure.error;
}

async function removeFile(file: string): Promise<void> {
  try {
    await fsp.unlink(file);
  } catch (e) {
    const errno = errnoOf(e);
    if (errno === 'ENOENT') return;
    // A folder after all (EISDIR on Linux, EPERM on macOS), or a read-only file on Windows.
    if (errno !== 'EISDIR' && errno !== 'EPERM') throw e;
    const st = await fsp.lstat(file).catch(() => {
      throw e;
    });
    if (st.isDirectory()) return removeFolder(file, FOLDER_RETRIES);
    if (process.platform !== 'win32') throw e;
    await fsp.chmod(file, 0o666);
    await fsp.unlink(file);
  }
}

function errnoOf(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}
