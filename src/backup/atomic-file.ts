/**
 * THE RULE that keeps hard-linked snapshots safe: the engine never opens an existing backup file for
 * writing. Every file is written to a fresh temp file in the same directory (O_EXCL: a new inode)
 * and renamed over its final name, so the inode an older snapshot shares is never touched, and a
 * reader never sees a half-written file. One exception to the second half: a file the device
 * uploads to a name where nothing exists yet is created under that name directly (still O_EXCL, a
 * new inode), saving a rename per file; that only happens in a staging folder, which nothing reads
 * before the verify has checked every file's size and digest.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { promisify } from 'node:util';
import path from 'node:path';
import { TEMP_FILE_PREFIX } from './sha1.worker';

// Names of our in-progress files, hidden from the device's directory listings; defined where the
// thread that writes received files (which imports only Node's modules) can see it too.
export { TEMP_FILE_PREFIX };

export function isTempFileName(name: string): boolean {
  return name.startsWith(TEMP_FILE_PREFIX);
}

/**
 * Blocks up to this size are written with a synchronous call. Small files (most of a phone's)
 * then cost no thread-pool hand-off at all; larger blocks go through the thread pool so the disk
 * write overlaps reading the next block from the device (`append`), and a slow disk does not
 * hold up the event loop.
 */
export const SYNC_WRITE_MAX_BYTES = 64 * 1024;

const writeAsync = promisify(fs.write);

// Temp names: random per process, then a counter (a random draw per file cost ~50 µs under
// load). O_EXCL still refuses any name that exists, whoever made it.
const TEMP_NAME_RUN = `${randomBytes(6).toString('hex')}-`;
let tempNameCounter = 0;

/**
 * A new file next to `finalPath`, committed by rename or discarded by unlink. Open, close and
 * rename are synchronous (each a few microseconds; see SYNC_WRITE_MAX_BYTES for writes).
 */
export class TempFile {
  private closed = false;
  private finished = false;
  /** A large block's write still running in the thread pool (append). */
  private behind: Promise<void> | undefined;

  private constructor(
    readonly path: string,
    readonly finalPath: string,
    private readonly fd: number,
  ) {}

  static async beside(finalPath: string): Promise<TempFile> {
    return TempFile.besideSync(finalPath);
  }

  static besideSync(finalPath: string): TempFile {
    const tempPath = path.join(
      path.dirname(finalPath),
      `${TEMP_FILE_PREFIX}${TEMP_NAME_RUN}${(tempNameCounter++).toString(36)}`,
    );
    // 'wx' = O_CREAT|O_EXCL: fails rather than reuse anything that already exists.
    const fd = fs.openSync(tempPath, 'wx', 0o644);
    return new TempFile(tempPath, finalPath, fd);
  }

  /**
   * A new file for `finalPath`: created under that very name when nothing is there (O_EXCL), so
   * committing it needs no rename; beside it, as `besideSync`, when something is (a link to an
   * older snapshot's file, an earlier upload, a folder). For a staging folder only: until the
   * commit, `finalPath` holds a partial file (see THE RULE).
   */
  static freshSync(finalPath: string): TempFile {
    let fd: number;
    try {
      fd = fs.openSync(finalPath, 'wx', 0o644);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      return TempFile.besideSync(finalPath);
    }
    return new TempFile(finalPath, finalPath, fd);
  }

  /** Writes all of `data` (awaited, so the caller's reads wait for the disk: backpressure). */
  async write(data: Buffer): Promise<void> {
    let off = 0;
    while (off < data.length) {
      const n = data.length - off;
      off +=
        n <= SYNC_WRITE_MAX_BYTES
          ? fs.writeSync(this.fd, data, off, n)
          : (await writeAsync(this.fd, data, off, n)).bytesWritten;
    }
  }

  /**
   * Appends `data` without waiting for a large block's write: it runs in the thread pool while
   * the caller reads the next block, and the next append (or flush) waits for it first. One
   * write in flight, so memory stays at two blocks. Blocks up to SYNC_WRITE_MAX_BYTES are written
   * at once. Returns a promise only when the caller must wait (for the write before); a failed
   * write's error comes out of the next append or flush. `data` must not be reused meanwhile.
   */
  append(data: Buffer): Promise<void> | undefined {
    if (this.behind) return this.flush().then(() => this.append(data));
    if (data.length <= SYNC_WRITE_MAX_BYTES) {
      this.writeSync(data);
      return undefined;
    }
    const p = this.write(data);
    p.catch(() => undefined); // observed by flush()
    this.behind = p;
    return undefined;
  }

  /** Waits for the write append left running, if any; throws its error. */
  async flush(): Promise<void> {
    const p = this.behind;
    if (!p) return;
    try {
      await p;
    } finally {
      if (this.behind === p) this.behind = undefined;
    }
  }

  /** write(), synchronously: for blocks up to SYNC_WRITE_MAX_BYTES. */
  writeSync(data: Buffer): void {
    let off = 0;
    while (off < data.length) off += fs.writeSync(this.fd, data, off, data.length - off);
  }

  /** Closes and renames over the final name (replacing a file there, never writing into it). */
  async commit(): Promise<void> {
    await this.flush();
    this.commitSync();
  }

  /** commit(), synchronously; after flush() when append() was used. */
  commitSync(): void {
    if (this.behind)
      throw new Error('TempFile: commit while a write is still running (flush first)');
    if (this.finished) return;
    this.finished = true;
    try {
      this.close();
      if (this.path !== this.finalPath) fs.renameSync(this.path, this.finalPath);
    } catch (e) {
      try {
        fs.rmSync(this.path, { force: true });
      } catch {
        // the error that matters is e
      }
      throw e;
    }
  }

  /** Closes and deletes the temp file; never throws. */
  async discard(): Promise<void> {
    if (this.finished) return;
    this.finished = true;
    // Never close the fd under a running write: the number could be reused by the next open.
    await this.behind?.catch(() => undefined);
    this.behind = undefined;
    try {
      this.close();
    } catch {
      // discarding anyway
    }
    try {
      fs.rmSync(this.path, { force: true });
    } catch {
      // best effort: a stray temp file is hidden from the device and never committed
    }
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    fs.closeSync(this.fd);
  }
}

/** Whole small file (Info.plist), written by THE RULE. */
export async function writeFileAtomic(finalPath: string, data: Buffer): Promise<void> {
  const tmp = await TempFile.beside(finalPath);
  try {
    await tmp.write(data);
  } catch (e) {
    await tmp.discard();
    throw e;
  }
  await tmp.commit();
}
