/**
 * The SHA-1 of every file received in this run, computed while its blocks arrived, so the verify
 * that follows checks a new file against Manifest.db without reading it back from disk.
 *
 * Found by what lstat says of the file (device, inode, size, mtime), so a digest is used only for
 * the very file that was written: nothing writes into an existing file (THE RULE), an inode's bytes
 * are fixed once its temp file is renamed into place, and a move keeps the inode and the mtime. An
 * inode freed by a remove can be reused by a later file; one of ours gets its own entry, and a
 * copy (the only other way files appear under the backup folder during a run) forgets them all.
 *
 * A phone has hundreds of thousands of files: each costs one Map entry (inode → slot) and a
 * 48-byte slot in shared chunks, not a key string and a Buffer object of its own.
 */
import type { Stats } from 'node:fs';

export type FileIdentity = Pick<Stats, 'dev' | 'ino' | 'size' | 'mtimeMs'>;

const SLOT_BYTES = 48; // SHA-1 (20), padding (4), size, mtimeMs, dev (8 each, as doubles)
const SLOTS_PER_CHUNK = 8192;

export class ReceivedDigests {
  private readonly slotOf = new Map<number, number>();
  private readonly chunks: Buffer[] = [];
  private used = 0;

  record(file: FileIdentity, sha1: Buffer): void {
    let slot = this.slotOf.get(file.ino);
    if (slot === undefined) {
      slot = this.used++;
      this.slotOf.set(file.ino, slot);
    }
    const [chunk, off] = this.place(slot, true);
    sha1.copy(chunk, off, 0, 20);
    chunk.writeDoubleLE(file.size, off + 24);
    chunk.writeDoubleLE(file.mtimeMs, off + 32);
    chunk.writeDoubleLE(file.dev, off + 40);
  }

  /** The SHA-1 taken while receiving the file lstat describes as `st`, if it is one of ours. */
  lookup(st: FileIdentity): Buffer | undefined {
    const slot = this.slotOf.get(st.ino);
    if (slot === undefined) return undefined;
    const [chunk, off] = this.place(slot, false);
    if (
      chunk.readDoubleLE(off + 24) !== st.size ||
      chunk.readDoubleLE(off + 32) !== st.mtimeMs ||
      chunk.readDoubleLE(off + 40) !== st.dev
    )
      return undefined;
    return chunk.subarray(off, off + 20);
  }

  forgetAll(): void {
    this.slotOf.clear();
    this.chunks.length = 0;
    this.used = 0;
  }

  get size(): number {
    return this.slotOf.size;
  }

  private place(slot: number, grow: boolean): [Buffer, number] {
    const i = Math.floor(slot / SLOTS_PER_CHUNK);
    if (grow && i === this.chunks.length)
      this.chunks.push(Buffer.alloc(SLOTS_PER_CHUNK * SLOT_BYTES));
    return [this.chunks[i]!, (slot % SLOTS_PER_CHUNK) * SLOT_BYTES];
  }
}
