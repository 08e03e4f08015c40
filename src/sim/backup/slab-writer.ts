/**
 * How the simulated device writes an upload stream (reference §4.5): paths, block headers, end
 * markers and file bytes are laid out in one large buffer (a "slab"), file bytes read straight
 * into it, and the slab is written whole. One socket write per ~1 MiB instead of one per piece,
 * and no copy of the data between the file read and the socket: the simulator must feed a host
 * far faster than any host consumes (issue 6), so its own per-byte and per-file work stays small.
 *
 * A written slab is reused only when `reusable` says the stream let go of it (a socket with
 * nothing left to write has handed it to the kernel or to TLS); an in-memory socket pair passes
 * buffers to its reader as they are, so there each flush starts a fresh slab. Reuse matters: a
 * fresh 1 MiB buffer per write cost page faults and full garbage collections.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import { DlFileCode, MAX_DL_PATH_BYTES, encodeDlPath } from '../../protocol/device-link';

/** Data block size for uploads: bounded so memory does not grow with file size. */
export const UPLOAD_BLOCK_BYTES = 128 * 1024;
/** `[u32 length + 1][code]` in front of each block's bytes. */
export const DL_BLOCK_HEADER_BYTES = 5;
/** Eight full blocks and room for the paths and markers around them. */
export const SLAB_BYTES = 8 * (UPLOAD_BLOCK_BYTES + DL_BLOCK_HEADER_BYTES) + 16 * 1024;
/** Longest stretch without letting timers and other connections run (a fast host never blocks). */
const MAX_BUSY_MS = 20;

/** `[u32 n+1][0x0C]` at `at`, for the `n` data bytes that follow it. */
export function writeDataBlockHeader(buf: Buffer, at: number, n: number): void {
  buf.writeUInt32BE(n + 1, at);
  buf[at + 4] = DlFileCode.FILE_DATA;
}

export class SlabWriter {
  private slab: Buffer;
  private used = 0;
  private lastTurn = performance.now();

  constructor(
    private readonly write: (buf: Buffer) => Promise<void>,
    private readonly reusable: () => boolean,
    private readonly slabBytes = SLAB_BYTES,
  ) {
    this.slab = Buffer.allocUnsafe(slabBytes);
  }

  /** Room for `n` bytes at `buf[at…]` (flushing first when the slab is too full); see commit. */
  async reserve(n: number): Promise<{ buf: Buffer; at: number }> {
    if (this.used + n > this.slab.length) {
      await this.flush();
      if (n > this.slab.length) this.slab = Buffer.allocUnsafe(n);
    }
    return { buf: this.slab, at: this.used };
  }

  /** The `n` bytes written at the reserved place belong to the stream now. */
  commit(n: number): void {
    this.used += n;
  }

  /**
   * A file-stream path, `[u32 n][n bytes UTF-8]`, written in place (no Buffer of its own per
   * path); an over-long one is refused by the protocol's own encoder.
   */
  async putPath(p: string): Promise<void> {
    const n = Buffer.byteLength(p, 'utf8');
    if (n > MAX_DL_PATH_BYTES) return this.put(encodeDlPath(p));
    const { buf, at } = await this.reserve(4 + n);
    buf.writeUInt32BE(n, at);
    buf.write(p, at + 4, n, 'utf8');
    this.commit(4 + n);
  }

  /** Copies a small piece (a marker) into the stream. */
  async put(piece: Buffer): Promise<void> {
    const { buf, at } = await this.reserve(piece.length);
    piece.copy(buf, at);
    this.commit(piece.length);
  }

  /** Forgets what a stream that failed part-way left in the slab (nothing of it is sent). */
  reset(): void {
    this.used = 0;
  }

  /** Writes what the slab holds and starts a fresh one. */
  async flush(): Promise<void> {
    if (this.used === 0) return;
    const out = this.slab.subarray(0, this.used);
    this.used = 0;
    await this.write(out);
    if (this.slab.length !== this.slabBytes || !this.reusable())
      this.slab = Buffer.allocUnsafe(this.slabBytes);
    await this.yieldNow();
  }

  /**
   * Lets the event loop turn when the stream has been written for a while without waiting (the
   * host reads as fast as we write): cancel notifications, pings and timers still get served.
   */
  private async yieldNow(): Promise<void> {
    const now = performance.now();
    if (now - this.lastTurn < MAX_BUSY_MS) return;
    await nextTurn();
    this.lastTurn = performance.now();
  }
}
