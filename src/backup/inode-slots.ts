/**
 * Inode number → slot number, for ReceivedDigests: one entry per file received in a run, so
 * hundreds of thousands of them.
 *
 * Open addressing in one typed array instead of a Map: a Map's entries live on V8's heap, and
 * one that grows through a whole backup is copied by young collections and promoted on the way
 * (an inode above 2^31 is a heap number of its own, too), part of a many-file backup's peak RSS
 * (docs/BENCHMARKS.md, seventh pass). A typed array is one external block, which the collector
 * neither copies nor scans. The inodes themselves are not kept here: each slot's owner has it
 * (`inodeOf`), so a cell is 4 bytes, not 12 (D50).
 */

const FIRST_CAPACITY = 1024;

export class InodeSlots {
  /** Each cell holds a slot + 1, so 0 is empty. */
  private cells = new Int32Array(FIRST_CAPACITY);
  private count = 0;

  /** `inodeOf(slot)`: the inode a slot was set for (read again on every probe). */
  constructor(private readonly inodeOf: (slot: number) => number) {}

  get size(): number {
    return this.count;
  }

  /** The slot of `ino`, if one was set since the last clear(). */
  get(ino: number): number | undefined {
    const mask = this.cells.length - 1;
    for (let i = hash(ino) & mask; ; i = (i + 1) & mask) {
      const s = this.cells[i]!;
      if (s === 0) return undefined;
      if (this.inodeOf(s - 1) === ino) return s - 1;
    }
  }

  /**
   * Sets (or replaces) the slot of `ino`, which `inodeOf(slot)` must already give.
   * `slot`: 0 … 2^31 − 2.
   */
  set(ino: number, slot: number): void {
    // At most half full: probes stay short, and there is always an empty cell to stop at.
    if ((this.count + 1) * 2 > this.cells.length) this.grow();
    if (this.place(this.cells, ino, slot + 1)) this.count++;
  }

  clear(): void {
    this.cells = new Int32Array(FIRST_CAPACITY);
    this.count = 0;
  }

  /** Puts a stored (+1) slot in; true when `ino` was not there before. */
  private place(cells: Int32Array, ino: number, stored: number): boolean {
    const mask = cells.length - 1;
    for (let i = hash(ino) & mask; ; i = (i + 1) & mask) {
      const s = cells[i]!;
      if (s === 0) {
        cells[i] = stored;
        return true;
      }
      if (this.inodeOf(s - 1) === ino) {
        cells[i] = stored;
        return false;
      }
    }
  }

  private grow(): void {
    const cells = new Int32Array(this.cells.length * 2);
    for (const s of this.cells) if (s !== 0) this.place(cells, this.inodeOf(s - 1), s);
    this.cells = cells;
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
