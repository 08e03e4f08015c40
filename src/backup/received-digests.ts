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
 * slot, inode-slots.ts: 4 bytes a cell, at most half full) and a 48-byte slot in shared chunks,
 * nothing on V8's heap.
 */
import type { Stats } from 'node:fs';
import { errnoError } from './dl-status';
import { InodeSlots } from './inode-slots';
import { OffThreadSha1, type WrittenFile } from './sha1-off-thread';

export type FileIdentity = Pick<Stats, 'dev' | 'ino' | 'size' | 'mtimeMs'>;

/** How a file written off-thread ended: committed, or not (and why). */
export type OffThreadEnd = { ok: true } | { ok: false; error: NodeJS.ErrnoException };

/**
 * Told how a file written off-thread ended, with the tag it was given. One function can serve a
 * whole upload: a file then costs no closure of its own, which would outlive two young
 * collections while its end comes back and so end as old-generation garbage (D50).
 */
export type OffThreadEnds = (end: OffThreadEnd, tag: number) => void;

/** A received file that the hashing thread also writes (ReceivedDigests.writeOffThread). */
export interface OffThreadFile {
  /** Adds a block (copied at once). A promise: wait for it before the next block. */
  write(data: Buffer): Promise<void> | undefined;
  /** Every byte is in: the file is committed, and its `onEnd` called, later. */
  end(): void;
  /** Not kept: the file is deleted; `onEnd` is never called. */
  drop(): void;
}

// SHA-1 (20), the file system's index in `devs` (4), size, mtimeMs, inode (8 each, as doubles)
const SLOT_BYTES = 48;
const DEV_AT = 20;
const SIZE_AT = 24;
const MTIME_AT = 32;
const INO_AT = 40;
const SLOTS_PER_CHUNK = 8192;

export class ReceivedDigests {
  private readonly slotOf = new InodeSlots((slot) =>
    this.chunks[Math.floor(slot / SLOTS_PER_CHUNK)]!.readDoubleLE(
      (slot % SLOTS_PER_CHUNK) * SLOT_BYTES + INO_AT,
    ),
  );
  private readonly chunks: Buffer[] = [];
  /** The file systems (st.dev) seen: one, unless the backup folder spans mounts. */
  private readonly devs: number[] = [];
  private used = 0;
  /** Each file ended and not yet answered, in order. */
  private readonly writtenEnds = new EndQueue();
  /** Files ended, and answered, so far; a file ended before `wantedFrom` is forgotten (forgetAll). */
  private endedCount = 0;
  private answeredCount = 0;
  private wantedFrom = 0;
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
   * ended, with `tag`; at the latest in `settle`.
   */
  writeOffThread(finalPath: string, onEnd: OffThreadEnds, tag = 0): OffThreadFile | undefined {
    if (this.retired) return undefined;
    const id = this.hasher.open(finalPath);
    if (id === undefined) return undefined;
    return new FileOffThread(this, this.hasher, id, onEnd, tag);
  }

  /** @internal FileOffThread.end */
  _ended(id: number, onEnd: OffThreadEnds, tag: number): void {
    if (!this.hasher.end(id)) {
      onEnd({ ok: false, error: threadGone() }, tag);
      return;
    }
    this.writtenEnds.push(onEnd, tag);
    this.endedCount++;
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
    const [chunk, off] = this.place(slot, true);
    sha1.copy(chunk, off, 0, 20);
    let dev = this.devs.indexOf(file.dev);
    if (dev < 0) dev = this.devs.push(file.dev) - 1;
    chunk.writeUInt32LE(dev, off + DEV_AT);
    chunk.writeDoubleLE(file.size, off + SIZE_AT);
    chunk.writeDoubleLE(file.mtimeMs, off + MTIME_AT);
    chunk.writeDoubleLE(file.ino, off + INO_AT);
    this.slotOf.set(file.ino, slot); // after the slot holds its inode (InodeSlots reads it)
  }

  /** The SHA-1 taken while receiving the file lstat describes as `st`, if it is one of ours. */
  lookup(st: FileIdentity): Buffer | undefined {
    const slot = this.slotOf.get(st.ino);
    if (slot === undefined) return undefined;
    const [chunk, off] = this.place(slot, false);
    if (
      chunk.readDoubleLE(off + SIZE_AT) !== st.size ||
      chunk.readDoubleLE(off + MTIME_AT) !== st.mtimeMs ||
      this.devs[chunk.readUInt32LE(off + DEV_AT)] !== st.dev
    )
      return undefined;
    return chunk.subarray(off, off + 20);
  }

  forgetAll(): void {
    // Digests still on their way belong to files that may no longer be what they were.
    this.wantedFrom = this.endedCount;
    this.slotOf.clear();
    this.chunks.length = 0;
    this.used = 0;
  }

  get size(): number {
    return this.slotOf.size;
  }

  private arrived(sha1: Buffer, written: WrittenFile): void {
    const onEnd = this.writtenEnds.firstEnd();
    if (onEnd === undefined) return;
    const tag = this.writtenEnds.firstTag();
    this.writtenEnds.shift();
    const wanted = this.answeredCount++ >= this.wantedFrom;
    if (!written.ok) {
      onEnd({ ok: false, error: errnoError(written.code, written.message) }, tag);
      return;
    }
    if (wanted) this.record(written, sha1);
    onEnd(OK, tag);
  }

  private lost(): void {
    // Written files whose end did not come back: whether they are complete is unknown.
    this.answeredCount = this.endedCount;
    for (let onEnd = this.writtenEnds.firstEnd(); onEnd; onEnd = this.writtenEnds.firstEnd()) {
      const tag = this.writtenEnds.firstTag();
      this.writtenEnds.shift();
      onEnd({ ok: false, error: threadGone() }, tag);
    }
  }

  private place(slot: number, grow: boolean): [Buffer, number] {
    const i = Math.floor(slot / SLOTS_PER_CHUNK);
    if (grow && i === this.chunks.length)
      this.chunks.push(Buffer.alloc(SLOTS_PER_CHUNK * SLOT_BYTES));
    return [this.chunks[i]!, (slot % SLOTS_PER_CHUNK) * SLOT_BYTES];
  }
}

const OK: OffThreadEnd = Object.freeze({ ok: true });

/**
 * A queue of (onEnd, tag) in a ring that doubles when full: thousands of files wait for their end
 * at once, and an array shifted and pushed would leave its old backing stores as garbage.
 */
class EndQueue {
  private ends: Array<OffThreadEnds | undefined> = new Array<undefined>(1024).fill(undefined);
  private tags = new Float64Array(1024);
  private head = 0;
  private count = 0;

  push(onEnd: OffThreadEnds, tag: number): void {
    if (this.count === this.ends.length) this.grow();
    const i = (this.head + this.count) & (this.ends.length - 1);
    this.ends[i] = onEnd;
    this.tags[i] = tag;
    this.count++;
  }

  /** The first one's onEnd, or undefined when empty. */
  firstEnd(): OffThreadEnds | undefined {
    return this.count === 0 ? undefined : this.ends[this.head];
  }

  firstTag(): number {
    return this.tags[this.head]!;
  }

  shift(): void {
    if (this.count === 0) return;
    this.ends[this.head] = undefined;
    this.head = (this.head + 1) & (this.ends.length - 1);
    this.count--;
  }

  private grow(): void {
    const n = this.ends.length;
    const ends = new Array<OffThreadEnds | undefined>(2 * n).fill(undefined);
    const tags = new Float64Array(2 * n);
    for (let k = 0; k < n; k++) {
      ends[k] = this.ends[(this.head + k) & (n - 1)];
      tags[k] = this.tags[(this.head + k) & (n - 1)]!;
    }
    this.ends = ends;
    this.tags = tags;
    this.head = 0;
  }
}

/** One object a file, its methods shared (no closures of its own: see OffThreadEnds). */
class FileOffThread implements OffThreadFile {
  constructor(
    private readonly owner: ReceivedDigests,
    private readonly hasher: OffThreadSha1,
    private readonly id: number,
    private readonly onEnd: OffThreadEnds,
    private readonly tag: number,
  ) {}

  write(data: Buffer): Promise<void> | undefined {
    return this.hasher.update(this.id, data);
  }

  end(): void {
    this.owner._ended(this.id, this.onEnd, this.tag);
  }

  drop(): void {
    this.hasher.drop(this.id);
  }
}

function threadGone(): NodeJS.ErrnoException {
  return errnoError('EIO', 'the thread writing received files stopped');
}
