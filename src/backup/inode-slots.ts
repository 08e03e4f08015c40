/**
 * Inode number → slot number, for ReceivedDigests: one entry per file received in a run, so
 * hundreds of thousands of them.
 *
 * Open addressing in two typed arrays instead of a Map: a Map's entries live on V8's heap, and
 * one that grows through a whole backup is copied by young collections and promoted on the way
 * (an inode above 2^31 is a heap number of its own, too), part of a many-file backup's peak RSS
 * (docs/BENCHMARKS.md, seventh pass). Typed arrays are one external block each, which the
 * collector neither copies nor scans.
 */

const FIRST_CAPACITY = 1024;

export class InodeSlots {
  /** Inodes as doubles (exact below 2^53); `slots` holds each one's slot + 1, so 0 is empty. */
  private keys = new Float64Array(FIRST_CAPACITY);
  private slots = new Int32Array(FIRST_CAPACITY);
  private count = 0;

  get size(): number {
    return this.count;
  }

  /** The slot of `ino`, if one was set since the last clear(). */
  get(ino: number): number | undefined {
    const mask = this.keys.length - 1;
    for (let i = hash(ino) & mask; ; i = (i + 1) & mask) {
      const s = this.slots[i]!;
      if (s === 0) return undefined;
      if (this.keys[i] === ino) return s - 1;
    }
  }

  /** Sets (or replaces) the slot of `ino`. `slot`: 0 … 2^31 − 2. */
  set(ino: number, slot: number): void {
    // At most half full: probes stay short, and there is always an empty cell to stop at.
    if ((this.count + 1) * 2 > this.keys.length) this.grow();
    if (this.place(this.keys, this.slots, ino, slot + 1)) this.count++;
  }

  clear(): void {
    this.keys = new Float64Array(FIRST_CAPACITY);
    this.slots = new Int32Array(FIRST_CAPACITY);
    this.count = 0;
  }

  /** Puts a stored (+1) slot in; true when `ino` was not there before. */
  private place(keys: Float64Array, slots: Int32Array, ino: number, stored: number): boolean {
    const mask = keys.length - 1;
    for (let i = hash(ino) & mask; ; i = (i + 1) & mask) {
      if (slots[i] === 0) {
        keys[i] = ino;
        slots[i] = stored;
        return true;
      }
      if (keys[i] === ino) {
        slots[i] = stored;
        return false;
      }
    }
  }

  private grow(): void {
    const keys = new Float64Array(this.keys.length * 2);
    const slots = new Int32Array(this.slots.length * 2);
    for (let i = 0; i < this.keys.length; i++) {
      if (this.slots[i] !== 0) this.place(keys, slots, this.keys[i]!, this.slots[i]!);
    }
    this.keys = keys;
    this.slots = slots;
  }
}

/**
 * Both 32-bit halves of the inode, through murmur3's finalizer: the table takes the low bits, and
 * inodes that share them (numbers a power of two apart) must still land apart.
 */
function hash(ino: number): number {
  let h = (ino >>> 0) ^ Math.imul(Math.floor(ino / 0x1_0000_0000) >>> 0, 0x9e37_79b1);
  h = Math.imul(h ^ (h >>> 16), 0x85eb_ca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2_ae35);
  return (h ^ (h >>> 16)) >>> 0;
}
