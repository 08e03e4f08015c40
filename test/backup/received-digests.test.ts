/**
 * Files received are written and hashed on a worker thread (writeOffThread): they land by THE
 * RULE, say how they ended, and leave nothing behind when they fail; the SHA-1 taken on the way is
 * found again by what lstat says of the committed file, also after a move, and another file, even
 * of the same size and content, is not taken for it.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TempFile, isTempFileName } from '../../src/backup/atomic-file';
import { ReceivedDigests, type OffThreadEnd } from '../../src/backup/received-digests';
import { BATCH_BYTES, MAX_IN_FLIGHT, OffThreadSha1 } from '../../src/backup/sha1-off-thread';

const root = mkdtempSync(path.join(os.tmpdir(), 'mooring-received-'));
after(() => rmSync(root, { recursive: true, force: true }));
const sha1 = (b: Buffer): Buffer => createHash('sha1').update(b).digest();

test('small and large blocks: the digest is of all bytes written, keyed by the committed file', async () => {
  const content = Buffer.concat([Buffer.from('a small file'), Buffer.alloc(300_000, 7)]);
  const received = new ReceivedDigests();
  const { ended, done } = writeOne(received, path.join(root, 'f'), content, 12);
  await done;
  await received.settle();
  assert.deepEqual(await ended, { ok: true });
  const st = lstatSync(path.join(root, 'f'));
  assert.deepEqual(received.lookup(st), sha1(content));
  assert.equal(received.size, 1);
  // A move (the device's MoveItems) keeps the inode and the mtime.
  renameSync(path.join(root, 'f'), path.join(root, 'moved'));
  assert.deepEqual(received.lookup(lstatSync(path.join(root, 'moved'))), sha1(content));
  // The same bytes in another file are not what was received, nor is a file written here.
  writeFileSync(path.join(root, 'copy'), content);
  assert.equal(received.lookup(lstatSync(path.join(root, 'copy'))), undefined);
  const plain = TempFile.besideSync(path.join(root, 'plain'));
  plain.writeSync(content);
  await plain.commit();
  assert.equal(received.lookup(lstatSync(path.join(root, 'plain'))), undefined);
  received.forgetAll();
  assert.equal(received.lookup(lstatSync(path.join(root, 'moved'))), undefined);
  await received.close();
});

function collector(): { hasher: OffThreadSha1; digests: Buffer[]; lost: number[] } {
  const digests: Buffer[] = [];
  const lost: number[] = [];
  const hasher = new OffThreadSha1({
    onDigest: (d, written) => {
      assert.equal(written.ok, true);
      digests.push(Buffer.from(d));
    },
    onLost: () => lost.push(digests.length),
  });
  return { hasher, digests, lost };
}

test('many files across many batches, interleaved: each digest and file is its own, in order', async () => {
  const dir = mkdtempSync(path.join(root, 'many-'));
  const { hasher, digests, lost } = collector();
  const ids = Array.from({ length: 300 }, (_, i) => hasher.open(path.join(dir, `f${i}`))!);
  const contents = ids.map((_, i) => Buffer.alloc(1 + ((i * 7919) % 40_000), i));
  // Two files' blocks interleaved, as two files never are on the wire, but the worker must not care.
  for (let i = 0; i < ids.length; i += 2) {
    for (const j of [i, i + 1]) await hasher.update(ids[j]!, contents[j]!.subarray(0, 7));
    for (const j of [i, i + 1]) await hasher.update(ids[j]!, contents[j]!.subarray(7));
    assert.equal(hasher.end(ids[i]!), true);
    assert.equal(hasher.end(ids[i + 1]!), true);
  }
  // A file dropped midway gets no digest, shifts nothing, and is not left on disk.
  const dropped = hasher.open(path.join(dir, 'dropped'))!;
  await hasher.update(dropped, Buffer.from('partial'));
  hasher.drop(dropped);
  // One block larger than a batch.
  const big = Buffer.alloc(BATCH_BYTES * 2 + 123, 9);
  const bigId = hasher.open(path.join(dir, 'big'))!;
  await hasher.update(bigId, big);
  hasher.end(bigId);
  await hasher.settle();
  await hasher.close();
  assert.deepEqual(lost, []);
  assert.equal(digests.length, ids.length + 1);
  contents.forEach((c, j) => {
    assert.deepEqual(digests[j], sha1(c), `file ${j}`);
    assert.deepEqual(readFileSync(path.join(dir, `f${j}`)), c, `file ${j} on disk`);
  });
  assert.deepEqual(digests[ids.length], sha1(big));
  assert.equal(readdirSync(dir).includes('dropped'), false);
});

test('more than MAX_IN_FLIGHT batches ahead of the worker: the writer is asked to wait', async () => {
  const dir = mkdtempSync(path.join(root, 'wait-'));
  const { hasher, digests } = collector();
  const id = hasher.open(path.join(dir, 'f'))!;
  const block = Buffer.alloc(BATCH_BYTES, 1);
  let waits = 0;
  const all: Buffer[] = [];
  for (let i = 0; i < MAX_IN_FLIGHT * 3; i++) {
    const p = hasher.update(id, block);
    all.push(block);
    if (p) {
      waits++;
      await p;
    }
  }
  hasher.end(id);
  await hasher.settle();
  await hasher.close();
  // Nothing yields to the worker before an update returns a promise, so the limit is reached.
  assert.ok(waits > 0, 'update never asked to wait');
  assert.deepEqual(digests, [sha1(Buffer.concat(all))]);
});

test('closed with a batch in flight: what the stopped worker still sends is not taken for the next files', async () => {
  const dir = mkdtempSync(path.join(root, 'stale-'));
  const { hasher, digests, lost } = collector();
  const first = hasher.open(path.join(dir, 'first'))!;
  await hasher.update(first, Buffer.from('first'));
  hasher.end(first);
  hasher.flush();
  // Once the file holds its bytes, the worker closes it and posts the batch's results. This thread
  // takes no message meanwhile (it never yields), so they are still queued when close() stops the
  // worker, without a settle, and arrive while it is being stopped.
  const file = path.join(dir, 'first');
  const until = Date.now() + 10_000;
  while (!(existsSync(file) && statSync(file).size === 5) && Date.now() < until);
  const posted = Date.now() + 100;
  while (Date.now() < posted);
  await hasher.close();
  assert.deepEqual(lost, [0]);
  const second = hasher.open(path.join(dir, 'second'))!;
  await hasher.update(second, Buffer.from('second'));
  hasher.end(second);
  await hasher.settle(); // must wait for the new worker's answer
  await hasher.close();
  assert.deepEqual(digests, [sha1(Buffer.from('second'))]);
});

test('many files: each finds its own digest; another size, mtime or device finds none', async () => {
  const received = new ReceivedDigests();
  const N = 20_000; // several chunks of slots
  const id = (i: number) => ({
    dev: 2049,
    ino: 1_000_000 + i * 7,
    size: i,
    mtimeMs: 1.5e12 + i / 8,
  });
  const digest = (i: number) => sha1(Buffer.from(String(i)));
  for (let i = 0; i < N; i++) received.record(id(i), digest(i));
  assert.equal(received.size, N);
  for (const i of [0, 1, 8191, 8192, 12_345, N - 1]) {
    assert.deepEqual(received.lookup(id(i)), digest(i));
    assert.equal(received.lookup({ ...id(i), size: i + 1 }), undefined);
    assert.equal(received.lookup({ ...id(i), mtimeMs: id(i).mtimeMs + 1 }), undefined);
    assert.equal(received.lookup({ ...id(i), dev: 2050 }), undefined);
  }
  assert.equal(received.lookup({ ...id(5), ino: 3 }), undefined);
  // An inode used again by a later file of ours: the later one counts.
  received.record({ ...id(5), size: 99 }, digest(99));
  assert.equal(received.lookup(id(5)), undefined);
  assert.deepEqual(received.lookup({ ...id(5), size: 99 }), digest(99));
  assert.equal(received.size, N);
  await received.close();
});

/** Writes `content` as one received file, in blocks of `block` bytes; resolves with its end. */
function writeOne(
  received: ReceivedDigests,
  file: string,
  content: Buffer,
  block = 64 * 1024,
): { ended: Promise<OffThreadEnd>; done: Promise<void> } {
  let settleEnd!: (e: OffThreadEnd) => void;
  const ended = new Promise<OffThreadEnd>((r) => (settleEnd = r));
  const w = received.writeOffThread(file, settleEnd);
  assert.ok(w, 'the hashing thread should take the file');
  const done = (async () => {
    for (let off = 0; off < content.length; off += block) {
      const wait = w.write(content.subarray(off, off + block));
      if (wait) await wait;
    }
    w.end();
  })();
  return { ended, done };
}

test('written off-thread: each file is on disk with its bytes, its digest is kept, ends come in order', async () => {
  const dir = mkdtempSync(path.join(root, 'off-'));
  const received = new ReceivedDigests();
  const order: number[] = [];
  const contents = Array.from({ length: 200 }, (_, i) => Buffer.alloc((i * 7919) % 70_000, i));
  contents.push(Buffer.alloc(BATCH_BYTES * 3 + 5, 3)); // larger than a batch, in many blocks
  for (const [i, c] of contents.entries()) {
    const { ended, done } = writeOne(received, path.join(dir, `f${i}`), c, 10_000);
    await done;
    void ended.then((e) => {
      assert.deepEqual(e, { ok: true });
      order.push(i);
    });
  }
  await received.settle();
  assert.deepEqual(
    order,
    contents.map((_, i) => i),
  );
  for (const [i, c] of contents.entries()) {
    const file = path.join(dir, `f${i}`);
    assert.deepEqual(readFileSync(file), c, `f${i}'s bytes`);
    assert.deepEqual(received.lookup(lstatSync(file)), sha1(c), `f${i}'s digest`);
  }
  assert.equal(received.size, contents.length);
  await received.close();
  assert.deepEqual(readdirSync(dir).filter(isTempFileName), []);
});

test('written off-thread onto an existing name: a new inode replaces it, the old inode (an older snapshot’s link) is untouched', async () => {
  const dir = mkdtempSync(path.join(root, 'rule-'));
  const older = path.join(dir, 'older');
  writeFileSync(older, 'the previous backup');
  const target = path.join(dir, 'target');
  linkSync(older, target); // as a staging folder links the latest snapshot's files
  const received = new ReceivedDigests();
  const { ended, done } = writeOne(received, target, Buffer.from('the new version'));
  await done;
  await received.settle();
  assert.deepEqual(await ended, { ok: true });
  assert.equal(readFileSync(target, 'utf8'), 'the new version');
  assert.equal(readFileSync(older, 'utf8'), 'the previous backup');
  assert.notEqual(lstatSync(target).ino, lstatSync(older).ino);
  assert.deepEqual(received.lookup(lstatSync(target)), sha1(Buffer.from('the new version')));
  await received.close();
  assert.deepEqual(readdirSync(dir).sort(), ['older', 'target']);
});

test('written off-thread: a file that cannot be created says why, a dropped one leaves nothing, the others are kept', async () => {
  const dir = mkdtempSync(path.join(root, 'fail-'));
  const received = new ReceivedDigests();
  const missing = writeOne(received, path.join(dir, 'no-such-folder', 'f'), Buffer.from('x'));
  const folder = path.join(dir, 'a-folder');
  mkdirSync(folder);
  const ontoFolder = writeOne(received, folder, Buffer.from('y')); // rename(2) refuses a folder
  const dropped = received.writeOffThread(path.join(dir, 'dropped'), () =>
    assert.fail('a dropped file has no end'),
  );
  assert.ok(dropped);
  await dropped.write(Buffer.alloc(1000, 1));
  dropped.drop();
  const kept = writeOne(received, path.join(dir, 'kept'), Buffer.from('kept'));
  await Promise.all([missing.done, ontoFolder.done, kept.done]);
  await received.settle();
  const m = await missing.ended;
  assert.equal(m.ok, false);
  assert.equal(!m.ok && m.error.code, 'ENOENT');
  const f = await ontoFolder.ended;
  assert.equal(f.ok, false);
  assert.match(!f.ok ? String(f.error.code) : '', /^(EISDIR|ENOTEMPTY|EEXIST)$/);
  assert.deepEqual(await kept.ended, { ok: true });
  await received.close();
  // Nothing half-written stays: no temp file beside the folder, no dropped file.
  assert.deepEqual(readdirSync(dir).sort(), ['a-folder', 'kept']);
  assert.deepEqual(readdirSync(folder), []);
});

test('written off-thread while forgetAll runs: the end still comes, the digest is not kept', async () => {
  const dir = mkdtempSync(path.join(root, 'forget-'));
  const received = new ReceivedDigests();
  const before = writeOne(received, path.join(dir, 'before'), Buffer.from('before'));
  await before.done;
  received.forgetAll(); // its digest may still be on its way
  const after = writeOne(received, path.join(dir, 'after'), Buffer.from('after'));
  await after.done;
  await received.settle();
  assert.deepEqual(await before.ended, { ok: true });
  assert.deepEqual(await after.ended, { ok: true });
  assert.equal(received.lookup(lstatSync(path.join(dir, 'before'))), undefined);
  assert.deepEqual(received.lookup(lstatSync(path.join(dir, 'after'))), sha1(Buffer.from('after')));
  await received.close();
});

test('a writing thread that cannot start: its files end as failed (never as written), and the next file is the caller’s to write', async () => {
  const dir = mkdtempSync(path.join(root, 'gone-'));
  const received = new ReceivedDigests({ workerName: 'no-such.worker' });
  const first = writeOne(received, path.join(dir, 'first'), Buffer.from('lost'));
  await first.done;
  await received.settle();
  const e = await first.ended;
  assert.equal(e.ok, false);
  assert.equal(!e.ok && e.error.code, 'EIO');
  assert.equal(
    received.writeOffThread(path.join(dir, 'next'), () => undefined),
    undefined,
  );
  await received.close();
});

test('retired: the digests taken so far are kept, and no file is written off-thread again (the caller writes it)', async () => {
  const dir = mkdtempSync(path.join(root, 'retired-'));
  const received = new ReceivedDigests();
  const before = Buffer.alloc(5000, 7);
  const { done } = writeOne(received, path.join(dir, 'before'), before, 1000);
  await done;
  await received.retire();
  assert.deepEqual(received.lookup(lstatSync(path.join(dir, 'before'))), sha1(before));
  assert.equal(
    received.writeOffThread(path.join(dir, 'after'), () => undefined),
    undefined,
  );
  assert.equal(
    received.writeOffThread(path.join(dir, 'later'), () => undefined),
    undefined,
  );
  assert.deepEqual(readdirSync(dir), ['before']);
  await received.close();
});

test('one function for many files: each end comes once, with its tag, in order, past the queue wrapping and growing', async () => {
  const dir = mkdtempSync(path.join(root, 'tags-'));
  const received = new ReceivedDigests();
  // Recorded, not asserted here: a throw inside would stop the thread's answers from being counted.
  const seen: number[] = [];
  const failed: number[] = [];
  const onEnd = (end: OffThreadEnd, tag: number): void => {
    (end.ok ? seen : failed).push(tag);
  };
  const writeMany = (from: number, to: number): void => {
    for (let tag = from; tag < to; tag++) {
      const w = received.writeOffThread(path.join(dir, `f${tag}`), onEnd, tag);
      assert.ok(w);
      assert.equal(w.write(Buffer.from(`file ${tag}`)), undefined); // small: never a wait
      w.end();
    }
  };
  // 800 answered, so the queue's head has moved on; then 2,500 more at once, before any answer
  // comes: they wrap around its first 1,024 places, and it grows twice.
  writeMany(0, 800);
  await received.settle();
  assert.equal(seen.length, 800);
  writeMany(800, 3300);
  await received.settle();
  assert.deepEqual(failed, []);
  assert.deepEqual(
    seen,
    Array.from({ length: 3300 }, (_, i) => i),
  );
  assert.equal(received.size, 3300);
  for (const tag of [0, 799, 800, 1823, 3299]) {
    const file = path.join(dir, `f${tag}`);
    assert.deepEqual(received.lookup(lstatSync(file)), sha1(Buffer.from(`file ${tag}`)), file);
  }
  await received.close();
});
