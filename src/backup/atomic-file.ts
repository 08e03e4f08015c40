/**
 * THE RULE that keeps hard-linked snapshots safe: the engine never opens an existing backup file for
 * writing. Every file is written to a fresh temp file in the same directory (O_EXCL: a new inode)
 * and renamed over its final name, so the inode an older snapshot shares is never touched, and a
 * reader never sees a half-written file.
 */
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';

/** Names of our in-progress files; hidden from the device's directory listings. */
export const TEMP_FILE_PREFIX = '.mooring-tmp-';

export function isTempFileName(name: string): boolean {
  return name.startsWith(TEMP_FILE_PREFIX);
}

/** A new file next to `finalPath`, committed by rename or discarded by unlink. */
export class TempFile {
  private closed = false;
  private finished = false;

  private constructor(
    readonly path: string,
    readonly finalPath: string,
    private readonly handle: fsp.FileHandle,
  ) {}

  static async beside(finalPath: string): Promise<TempFile> {
    const tempPath = path.join(
      path.dirname(finalPath),
      `${TEMP_FILE_PREFIX}${randomBytes(8).toString('hex')}`,
    );
    // 'wx' = O_CREAT|O_EXCL: fails rather than reuse anything that already exists.
    const handle = await fsp.open(tempPath, 'wx', 0o644);
    return new TempFile(tempPath, finalPath, handle);
  }

  /** Writes all of `data` (awaited, so the caller's reads wait for the disk: backpressure). */
  async write(data: Buffer): Promise<void> {
    let off = 0;
    while (off < data.length) {
      const { bytesWritten } = await this.handle.write(data, off, data.length - off);
      off += bytesWritten;
    }
  }

  /** Closes and renames over the final name (replacing a file there, never writing into it). */
  async commit(): Promise<void> {
    if (this.finished) return;
    this.finished = true;
    try {
      await this.close();
      await fsp.rename(this.path, this.finalPath);
    } catch (e) {
      await fsp.rm(this.path, { force: true }).catch(() => undefined);
      throw e;
    }
  }

  /** Closes and deletes the temp file; never throws. */
  async discard(): Promise<void> {
    if (this.finished) return;
    this.finished = true;
    await this.close().catch(() => undefined);
    await fsp.rm(this.path, { force: true }).catch(() => undefined);
  }

  private async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.handle.close();
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
