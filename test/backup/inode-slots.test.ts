/**
 * InodeSlots against a Map, the structure it replaces: the same answers for the inodes a
 * filesystem hands out (runs of consecutive numbers, numbers a power of two apart, numbers above
 * 2^32), through growth, replacement and clear. The inode of each slot is its owner's, here a Map.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import { InodeSlots } from '../../src/backup/inode-slots';

/** Deterministic pseudo-random numbers (xorshift32), so a failure can be replayed. */
function rng(seed: number): () => number {
  let x = seed;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x1_0000_0000;
  };
}

function inodes(): number[] {
  const rand = rng(7);
  const out: number[] = [];
  for (let i = 0; i < 30_000; i++) out.push(2_000_000 + i); // one run, as a new folder gets
  for (let i = 0; i < 2_000; i++) out.push(i * 4096 + 12); // the same low bits, 2^12 apart
  for (let i = 0; i < 2_000; i++) out.push(0x1_0000_0000 * (i + 1) + 5); // equal low 32 bits
  for (let i = 0; i < 10_000; i++) out.push(Math.floor(rand() * 2 ** 53)); // anywhere below 2^53
  return out;
}

/** An index, and where its owner keeps each slot's inode; `put` sets both, as ReceivedDigests does. */
function indexed(): { slots: InodeSlots; put: (ino: number, slot: number) => void } {
  const inodeOfSlot = new Map<number, number>();
  const slots = new InodeSlots((slot) => inodeOfSlot.get(slot)!);
  return {
    slots,
    put: (ino, slot) => {
      inodeOfSlot.set(slot, ino);
      slots.set(ino, slot);
    },
  };
}

test('answers as a Map does: sets, replacements and misses, through growth', () => {
  const { slots, put } = indexed();
  const map = new Map<number, number>();
  const all = inodes();
  all.forEach((ino, i) => {
    put(ino, i);
    map.set(ino, i);
  });
  // Every tenth inode gets a later slot, as when a removed file's inode is used again.
  for (let i = 0; i < all.length; i += 10) {
    put(all[i]!, all.length + i);
    map.set(all[i]!, all.length + i);
  }
  assert.equal(slots.size, map.size);
  for (const [ino, slot] of map) assert.equal(slots.get(ino), slot, `inode ${ino}`);
  for (const missing of [1, 2_000_000 - 1, 2_000_000 + 30_000, 4096 * 2_000 + 12, 2 ** 53 - 1]) {
    assert.equal(map.has(missing), false);
    assert.equal(slots.get(missing), undefined, `inode ${missing}`);
  }
});

test('slot 0 and the largest slot are kept apart from "empty"', () => {
  const { slots, put } = indexed();
  put(11, 0);
  put(12, 2 ** 31 - 2);
  assert.equal(slots.get(11), 0);
  assert.equal(slots.get(12), 2 ** 31 - 2);
  assert.equal(slots.get(13), undefined);
});

test('clear forgets everything, and the index fills again', () => {
  const { slots, put } = indexed();
  for (let i = 1; i <= 5_000; i++) put(i, i);
  slots.clear();
  assert.equal(slots.size, 0);
  assert.equal(slots.get(42), undefined);
  put(42, 7);
  assert.equal(slots.get(42), 7);
  assert.equal(slots.size, 1);
});
