/**
 * Deterministic randomness for the synthetic device: a small seeded PRNG for structural decisions
 * (names, sizes, times) and a bulk keystream for file bytes.
 *
 * Why two: structure needs a few thousand draws, which a JS xoshiro handles; file bytes can reach
 * gigabytes, which a per-word JS loop would make slow. AES-256-CTR over zeros, keyed per file, runs
 * in OpenSSL at several GB/s and gives every file its own reproducible, incompressible bytes
 * (like real HEIC/MOV data) without depending on the order files are generated in.
 */
import { createCipheriv, createHash, type Cipher } from 'node:crypto';

/** xoshiro128** seeded through splitmix32 from a string; 32-bit state words. */
export class Prng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  constructor(seedText: string) {
    const h = createHash('sha256').update(seedText).digest();
    this.s0 = h.readUInt32LE(0);
    this.s1 = h.readUInt32LE(4);
    this.s2 = h.readUInt32LE(8);
    this.s3 = h.readUInt32LE(12);
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1; // all-zero state is a fixed point
  }

  /** Next unsigned 32-bit value. */
  next(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform in [0, 1). */
  float(): number {
    return this.next() / 0x1_0000_0000;
  }

  /** Uniform integer in [lo, hi] (inclusive). */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.float() * (hi - lo + 1));
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError('pick from an empty list');
    return items[this.int(0, items.length - 1)]!;
  }

  /** Pareto-distributed weight ≥ 1 (heavy tail: a few draws dominate), capped to keep sizes sane. */
  pareto(alpha: number, cap: number): number {
    const u = this.float();
    return Math.min(cap, Math.pow(1 - u, -1 / alpha));
  }

  /** `count` distinct indexes from [0, n), in draw order (partial Fisher–Yates). */
  sample(n: number, count: number): number[] {
    const idx = Array.from({ length: n }, (_, i) => i);
    const k = Math.min(count, n);
    for (let i = 0; i < k; i++) {
      const j = this.int(i, n - 1);
      const tmp = idx[i]!;
      idx[i] = idx[j]!;
      idx[j] = tmp;
    }
    return idx.slice(0, k);
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** Size of the zero buffer the keystream encrypts per step; also the write chunk size. */
export const KEYSTREAM_CHUNK_BYTES = 1 << 20;
const ZEROS = Buffer.alloc(KEYSTREAM_CHUNK_BYTES);

/** Reproducible pseudo-random bytes for one file, produced in bounded chunks. */
export class Keystream {
  private readonly cipher: Cipher;

  constructor(keyText: string) {
    const key = createHash('sha256').update(keyText).digest();
    this.cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  }

  /** The next `n` bytes (n ≤ KEYSTREAM_CHUNK_BYTES). */
  take(n: number): Buffer {
    if (n > KEYSTREAM_CHUNK_BYTES) throw new RangeError('keystream chunk too large');
    return this.cipher.update(ZEROS.subarray(0, n));
  }
}
