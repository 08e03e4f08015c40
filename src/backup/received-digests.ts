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
 * The files are written, and hashed on the way, by a worker thread (`writeOffThread`,
 * sha1-off-thread.ts, D30): each file's identity and digest are recorded when that thread says the
 * file is committed, always in the order the files were ended, and `settle` waits for the last one
 * before the verify, and before the reply to an upload unless that upload was answered early (D37).
 *
 * A phone has hundreds of thousands of files: each costs an entry in a typed-array index (inode →
 * slot, inode-slots.ts) and a 48-byte slot in shared chunks, nothing on V8's heap.
 */
import type { Stats } from 'node:fs';
import { errnoError } from './dl-status';
import { InodeSlots } from './inode-slots';
import { OffThreadSha1, type WrittenFile } from './sha1-off-thread';

export type FileIdentity = Pick<Stats, 'dev' | 'ino' | 'size' | 'mtimeMs'>;

/** How a file written off-thread ended: committed, or not (and why). */
export type OffThreadEnd = { ok: true } | { ok: false; error: NodeJS.ErrnoException };

/** A received file that the hashing thread also writes (ReceivedDigests.writeOffThread). */
export interface OffThreadFile {
  /** Adds a block (copied at once). A promise: wait for it before the next block. */
  write(data: Buffer): Promise<void> | undefined;
  /** Every byte is in: the file is committed, and its `onEnd` called, later. */
  end(): void;
  /** Not kept: the file is deleted; `onEnd` is never called. */
  drop(): void;
}

// SHA-1 (20), padding (4), size, mtimeMs, dev (8 each, as doubles)
const SLOT_BYTES = 48;
const SLOTS_PER_CHUNK = 8192;

export class ReceivedDigests {
  private readonly slotOf = new InodeSlots();
  private readonly chunks: Buffer[] = [];
  private used = 0;
  /**
   * Each file ended and not yet answered, in order: its onEnd, and whether its digest is still
   * wanted (forgetAll says no).
   */
  private writtenEnds: Array<{ onEnd: (end: OffThreadEnd) => void; wanted: boolean }> = [];
  private writtenHead = 0;
  private retired = false;
  private readonly hasher: OffThreadSha1;

  /** `workerName`: see OffThreadSha1. */
  constructor(opts: { workerName?: string } = {}) {
    this.hasher = new OffThreadSha1(
      { onDigest: (sha1, written) => this.arrived(sha1, written), onLost: () => this.lost() },
      opts.workerName,
    );
  }

  /**
   * A file the hashing thread writes as well, to `finalPath` by THE RULE, so the thread reading
   * the device's stream makes no file system call for it (D30). Undefined when that thread is
   * gone: the caller writes the file itself. `onEnd` comes after `end`, in the order files were
   * ended; at the latest in `settle`.
   */
  writeOffThread(finalPath: string, onEnd: (end: OffThreadEnd) => void): OffThreadFile | undefined {
    if (this.retired) return undefined;
    const id = this.hasher.open(finalPath);
    if (id === undefined) return undefined;
    const hasher = this.hasher;
    return {
      write: (data) => hasher.update(id, data),
      end: () => {
        if (!hasher.end(id)) {
          onEnd({ ok: false, error: threadGone() });
          return;
        }
        this.writtenEnds.push({ onEnd, wanted: true });
      },
      drop: () => hasher.drop(id),
    };
  }

  /** Every committed file's digest has come (or is known lost). */
  async settle(): Promise<void> {
    await this.hasher.settle();
  }

  /** The files ended so far go to the writing thread now; their ends come later (`settle`). */
  flush(): void {
    this.hasher.flush();
  }

  /** settle(), then stops the hashing thread (it starts again if more files come). */
  async close(): Promise<void> {
    await this.hasher.settle();
    await this.hasher.close();
  }

  /**
   * close(), and the thread is not started again: files from now on are written by the caller
   * (writeOffThread says undefined) and their digests not taken, so the verify reads them back.
   * For the end of the device's uploads (its Manifest.db is in; a Status.plist may follow), so
   * the thread's memory is not held through the Move phase and the verify.
   */
  async retire(): Promise<void> {
    this.retired = true;
    await this.close();
  }

  /**
   * The digest of `file`, in a new slot: an inode used again by a later file of ours points to
   * the later slot.
   */
  record(file: FileIdentity, sha1: Buffer): void {
    const slot = this.used++;
    this.slotOf.set(file.ino, slot);
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
    // Digests still on their way belong to files that may no longer be what they were.
    for (let i = this.writtenHead; i < this.writtenEnds.length; i++)
      this.writtenEnds[i]!.wanted = false;
    this.slotOf.clear();
    this.chunks.length = 0;
    this.used = 0;
  }

  get size(): number {
    return this.slotOf.size;
  }

  private arrived(sha1: Buffer, written: WrittenFile): void {
    const end = this.writtenEnds[this.writtenHead++];
    if (this.writtenHead > 4096 && this.writtenHead * 2 > this.writtenEnds.length) {
      this.writtenEnds = this.writtenEnds.slice(this.writtenHead);
      this.writtenHead = 0;
    }
    if (end === undefined) return;
    if (!written.ok) {
      end.onEnd({ ok: false, error: errnoError(written.code, written.message) });
      return;
    }
    if (end.wanted) this.record(written, sha1);
    end.onEnd({ ok: true });
  }

  private lost(): void {
    // Written files whose end did not come back: whether they are complete is unknown.
    const ends = this.writtenEnds.slice(this.writtenHead);
    this.writtenEnds = [];
    this.writtenHead = 0;
    for (const { onEnd } of ends) onEnd({ ok: false, error: threadGone() });
  }

  private place(slot: number, grow: boolean): [Buffer, number] {
    const i = Math.floor(slot / SLOTS_PER_CHUNK);
    if (grow && i === this.chunks.length)
      this.chunks.push(Buffer.alloc(SLOTS_PER_CHUNK * SLOT_BYTES));
    return [this.chunks[i]!, (slot % SLOTS_PER_CHUNK) * SLOT_BYTES];
  }
}

function threadGone(): NodeJS.ErrnoException {
  return errnoError('EIO', 'the thread writing received files stopped');
}
