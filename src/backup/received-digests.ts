/**
 * The SHA-1 of every file received in this run, computed while its blocks arrived, so the verify
 * that follows checks a new file against Manifest.db without reading it back from disk.
 *
 * Keyed by what lstat says of the file (device, inode, size, mtime), so a digest is used only for
 * the very file that was written: nothing writes into an existing file (THE RULE), an inode's bytes
 * are fixed once its temp file is renamed into place, and a move keeps the inode and the mtime. An
 * inode freed by a remove can be reused by a later file; one of ours gets its own entry, and a
 * copy (the only other way files appear under the backup folder during a run) forgets them all.
 */
import type { Stats } from 'node:fs';

export function receivedFileKey(st: Pick<Stats, 'dev' | 'ino' | 'size' | 'mtimeMs'>): string {
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}`;
}

export class ReceivedDigests {
  private readonly byKey = new Map<string, Buffer>();

  record(key: string, sha1: Buffer): void {
    this.byKey.set(key, sha1);
  }

  /** The SHA-1 taken while receiving the file lstat describes as `st`, if it is one of ours. */
  lookup(st: Pick<Stats, 'dev' | 'ino' | 'size' | 'mtimeMs'>): Buffer | undefined {
    return this.byKey.get(receivedFileKey(st));
  }

  forgetAll(): void {
    this.byKey.clear();
  }

  get size(): number {
    return this.byKey.size;
  }
}
