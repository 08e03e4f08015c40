/**
 * The writing thread's O_DIRECT path (sha1.worker.ts): past DIRECT_AFTER bytes a file's bytes go
 * to disk from the thread's own aligned buffers, not through the page cache. Every size around its
 * boundaries lands byte for byte, in pieces that end on them and pieces that cross them, with more
 * large files open than it has buffers, and with it turned off; and `fincore` (util-linux) shows
 * the page cache really was skipped.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { OffThreadSha1 } from '../../src/backup/sha1-off-thread';
import { DIRECT_AFTER, SLOT_BYTES, SLOTS } from '../../src/backup/sha1.worker';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'mooring-direct-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));
const sha1 = (b: Buffer): Buffer => createHash('sha1').update(b).digest();

/** Bytes that differ at every offset, so a block written at the wrong place shows. */
function content(size: number, seed: number): Buffer {
  const b = Buffer.alloc(size);
  let x = seed * 2_654_435_761 + 1;
  for (let i = 0; i + 4 <= size; i += 4) {
    x = (x * 1_103_515_245 + 12_345) >>> 0;
    b.writeUInt32LE(x, i);
  }
  for (let i = size - (size % 4); i < size; i++) b[i] = i & 0xff;
  return b;
}

/** Whether O_DIRECT works in `dir` here (some file systems refuse it: then there is nothing to see). */
function directWorksIn(dir: string): boolean {
  if (fs.constants.O_DIRECT === undefined) return false;
  const probe = path.join(dir, 'probe');
  try {
    fs.closeSync(
      fs.openSync(probe, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_DIRECT),
    );
    return true;
  } catch {
    return false;
  } finally {
    fs.rmSync(probe, { force: true });
  }
}

/** Bytes of `file` in the page cache, as util-linux's fincore reports them. */
function cachedBytes(file: string): number {
  return Number(
    execFileSync('fincore', ['--bytes', '--noheadings', '--output', 'RES', file]).toString().trim(),
  );
}

interface Case {
  size: number;
  /** Sizes of the pieces handed over, repeated; the last piece is whatever is left. */
  pieces: number[];
}

const A = DIRECT_AFTER;
const CASES: Case[] = [
  { size: A - 1, pieces: [14_213] },
  { size: A, pieces: [A] },
  { size: A + 1, pieces: [A] }, // a piece ends exactly where O_DIRECT begins
  { size: A + 1, pieces: [A - 5, 7] }, // a piece crosses it
  { size: A + 4096, pieces: [16_384] },
  { size: A + SLOT_BYTES, pieces: [14_213] }, // one full buffer, nothing after it
  { size: A + 2 * SLOT_BYTES + 4095, pieces: [65_536, 3] },
  { size: A + 2 * SLOT_BYTES + 4097, pieces: [SLOT_BYTES + 17] },
  { size: 5 * SLOT_BYTES + 7, pieces: [1_000_003] },
  { size: 2 * SLOT_BYTES + 3, pieces: [300_001] },
  { size: 3 * SLOT_BYTES, pieces: [12_289] },
];

/**
 * Writes every case's file with all of them open at once, their pieces interleaved round-robin
 * (more large files than SLOTS: some get no buffer and use the page cache), and checks each.
 */
async function writeInterleaved(dir: string): Promise<Map<string, Buffer>> {
  const digests: Buffer[] = [];
  const hasher = new OffThreadSha1({
    onDigest: (d, written) => {
      assert.equal(written.ok, true);
      digests.push(Buffer.from(d));
    },
    onLost: () => assert.fail('a digest was lost'),
  });
  const files = CASES.map((c, i) => ({
    ...c,
    name: path.join(dir, `f${i}`),
    bytes: content(c.size, i + 1),
    off: 0,
    turn: 0,
  }));
  const ids = files.map((f) => hasher.open(f.name)!);
  let left = files.length;
  const ended = new Set<number>();
  while (left > 0) {
    for (const [i, f] of files.entries()) {
      if (ended.has(i)) continue;
      const n = Math.min(f.pieces[f.turn++ % f.pieces.length]!, f.bytes.length - f.off);
      const wait = hasher.update(ids[i]!, f.bytes.subarray(f.off, f.off + n));
      f.off += n;
      if (wait) await wait;
      if (f.off === f.bytes.length) {
        assert.equal(hasher.end(ids[i]!), true);
        ended.add(i);
        left--;
      }
    }
  }
  await hasher.settle();
  await hasher.close();
  // Digests come in the order the files ended.
  const order = [...ended];
  const out = new Map<string, Buffer>();
  order.forEach((i, k) => {
    const f = files[i]!;
    assert.deepEqual(digests[k], sha1(f.bytes), `f${i}'s digest`);
    const onDisk = fs.readFileSync(f.name);
    assert.equal(onDisk.length, f.bytes.length, `f${i}'s size`);
    assert.ok(onDisk.equals(f.bytes), `f${i}'s bytes (size ${f.size})`);
    out.set(f.name, f.bytes);
  });
  return out;
}

test('files of every size around the O_DIRECT boundaries land byte for byte', async () => {
  const dir = fs.mkdtempSync(path.join(root, 'on-'));
  // More large files open at once than there are O_DIRECT buffers: some must do without.
  assert.ok(CASES.filter((c) => c.size > DIRECT_AFTER + 4096).length > SLOTS);
  const files = await writeInterleaved(dir);
  assert.equal(files.size, CASES.length);
});

test('with MOORING_DIRECT_IO=0 the same files land the same way, all through the page cache', async (t) => {
  const dir = fs.mkdtempSync(path.join(root, 'off-'));
  process.env.MOORING_DIRECT_IO = '0'; // read by the next worker as it starts
  t.after(() => delete process.env.MOORING_DIRECT_IO);
  const files = await writeInterleaved(dir);
  for (const [name, bytes] of files) {
    assert.equal(cachedBytes(name), Math.ceil(bytes.length / 4096) * 4096, `${name} cached`);
  }
});

test('a large file skips the page cache past DIRECT_AFTER (fincore)', async (t) => {
  const dir = fs.mkdtempSync(path.join(root, 'cache-'));
  if (!directWorksIn(dir)) {
    t.skip(`O_DIRECT is refused in ${dir}`);
    return;
  }
  const hasher = new OffThreadSha1({ onDigest: () => undefined, onLost: () => undefined });
  const size = 8 * SLOT_BYTES + 1234;
  const bytes = content(size, 99);
  const file = path.join(dir, 'big');
  const id = hasher.open(file)!;
  for (let off = 0; off < size; off += 14_213) {
    const wait = hasher.update(id, bytes.subarray(off, off + 14_213));
    if (wait) await wait;
  }
  hasher.end(id);
  await hasher.settle();
  await hasher.close();
  // Asked before the file is read back (reading caches it). The first DIRECT_AFTER bytes and the
  // last partial block went through the page cache; nothing else did.
  const cached = cachedBytes(file);
  assert.ok(
    cached >= DIRECT_AFTER && cached <= DIRECT_AFTER + 4096,
    `${cached} bytes of ${size} in the page cache (${DIRECT_AFTER}–${DIRECT_AFTER + 4096} expected)`,
  );
  assert.ok(fs.readFileSync(file).equals(bytes));
});

test(
  'a disk that fills up in the O_DIRECT part: that file fails and is gone, the next one lands',
  { skip: process.getuid?.() === 0 ? false : 'needs root to mount a small tmpfs' },
  async (t) => {
    const mnt = fs.mkdtempSync(path.join(root, 'full-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=3m,mode=0755', 'tmpfs', mnt]);
    t.after(() => execFileSync('umount', ['-l', mnt]));
    const ends: Array<{ ok: boolean; code?: string; digest: Buffer }> = [];
    const hasher = new OffThreadSha1({
      onDigest: (d, written) =>
        ends.push({ ok: written.ok, code: written.ok ? undefined : written.code, digest: d }),
      onLost: () => assert.fail('a digest was lost'),
    });
    const tooBig = content(5 * SLOT_BYTES, 7);
    const fits = content(SLOT_BYTES + SLOT_BYTES / 2 + 5, 8);
    for (const [name, bytes] of [
      ['too-big', tooBig],
      ['fits', fits],
    ] as const) {
      const id = hasher.open(path.join(mnt, name))!;
      for (let off = 0; off < bytes.length; off += 14_213) {
        const wait = hasher.update(id, bytes.subarray(off, off + 14_213));
        if (wait) await wait;
      }
      hasher.end(id);
      await hasher.settle();
    }
    await hasher.close();
    assert.deepEqual(
      ends.map((e) => [e.ok, e.code]),
      [
        [false, 'ENOSPC'],
        [true, undefined],
      ],
    );
    assert.deepEqual(ends[1]!.digest, sha1(fits));
    assert.deepEqual(fs.readdirSync(mnt), ['fits']);
    assert.ok(fs.readFileSync(path.join(mnt, 'fits')).equals(fits));
  },
);

test(
  'a disk full exactly where an O_DIRECT write begins: the write fails whole, the file is gone',
  { skip: process.getuid?.() === 0 ? false : 'needs root to mount a small tmpfs' },
  async (t) => {
    const mnt = fs.mkdtempSync(path.join(root, 'exact-'));
    // Room for the page-cache part and one O_DIRECT buffer: the next write has no byte of room.
    const size = DIRECT_AFTER + SLOT_BYTES;
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0755`, 'tmpfs', mnt]);
    t.after(() => execFileSync('umount', ['-l', mnt]));
    const ends: Array<{ ok: boolean; code?: string }> = [];
    const hasher = new OffThreadSha1({
      onDigest: (_d, written) =>
        ends.push({ ok: written.ok, ...(written.ok ? {} : { code: written.code }) }),
      onLost: () => assert.fail('a digest was lost'),
    });
    const id = hasher.open(path.join(mnt, 'f'))!;
    const wait = hasher.update(id, content(size + SLOT_BYTES, 9));
    if (wait) await wait;
    hasher.end(id);
    await hasher.settle();
    await hasher.close();
    assert.deepEqual(ends, [{ ok: false, code: 'ENOSPC' }]);
    assert.deepEqual(fs.readdirSync(mnt), []);
  },
);
