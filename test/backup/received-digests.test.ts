/**
 * The SHA-1 taken while a file is received (TempFile with a ReceivedDigests sink, hashed on a
 * worker thread) is found again by what lstat says of the committed file, also after a move;
 * another file, even of the same size and content, is not taken for it.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { lstatSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TempFile } from '../../src/backup/atomic-file';
import { ReceivedDigests } from '../../src/backup/received-digests';
import { BATCH_BYTES, MAX_IN_FLIGHT, OffThreadSha1 } from '../../src/backup/sha1-off-thread';

const root = mkdtempSync(path.join(os.tmpdir(), 'mooring-received-'));
after(() => rmSync(root, { recursive: true, force: true }));
const sha1 = (b: Buffer): Buffer => createHash('sha1').update(b).digest();

test('small and large blocks: the digest is of all bytes written, keyed by the committed file', async () => {
  const small = Buffer.from('a small file');
  const large = Buffer.alloc(300_000, 7);
  const received = new ReceivedDigests();
  const f = TempFile.besideSync(path.join(root, 'f'), { sha1: received.sink() });
  await f.writeSync(small);
  assert.equal(f.append(large), undefined); // written behind
  await f.commit();
  await received.settle();
  const st = lstatSync(path.join(root, 'f'));
  assert.deepEqual(received.lookup(st), sha1(Buffer.concat([small, large])));
  assert.equal(received.size, 1);
  // A move (the device's MoveItems) keeps the inode and the mtime.
  renameSync(path.join(root, 'f'), path.join(root, 'moved'));
  assert.deepEqual(
    received.lookup(lstatSync(path.join(root, 'moved'))),
    sha1(Buffer.concat([small, large])),
  );
  // The same bytes in another file are not what was received.
  writeFileSync(path.join(root, 'copy'), Buffer.concat([small, large]));
  assert.equal(received.lookup(lstatSync(path.join(root, 'copy'))), undefined);
  received.forgetAll();
  assert.equal(received.lookup(lstatSync(path.join(root, 'moved'))), undefined);
  await received.close();
});

test('a file without a sink, or discarded, has no digest; one still hashing when forgetAll runs is not recorded', async () => {
  const received = new ReceivedDigests();
  const plain = TempFile.besideSync(path.join(root, 'plain'));
  await plain.writeSync(Buffer.from('x'));
  await plain.commit();
  const dropped = TempFile.besideSync(path.join(root, 'dropped'), { sha1: received.sink() });
  await dropped.writeSync(Buffer.from('y'));
  await dropped.discard();
  // Committed, but its digest is still on its way when a copy makes every digest suspect.
  const late = TempFile.besideSync(path.join(root, 'late'), { sha1: received.sink() });
  await late.writeSync(Buffer.from('z'));
  await late.commit();
  received.forgetAll();
  const kept = TempFile.besideSync(path.join(root, 'kept'), { sha1: received.sink() });
  await kept.writeSync(Buffer.from('k'));
  await kept.commit();
  await received.close();
  assert.equal(received.lookup(lstatSync(path.join(root, 'plain'))), undefined);
  assert.equal(received.lookup(lstatSync(path.join(root, 'late'))), undefined);
  assert.deepEqual(received.lookup(lstatSync(path.join(root, 'kept'))), sha1(Buffer.from('k')));
  assert.equal(received.size, 1);
});

function collector(): { hasher: OffThreadSha1; digests: Buffer[]; lost: number[] } {
  const digests: Buffer[] = [];
  const lost: number[] = [];
  const hasher = new OffThreadSha1({
    onDigest: (d) => digests.push(Buffer.from(d)),
    onLost: () => lost.push(digests.length),
  });
  return { hasher, digests, lost };
}

test('many files across many batches, interleaved: each digest is its own file’s, in order', async () => {
  const { hasher, digests, lost } = collector();
  const ids = Array.from({ length: 300 }, () => hasher.begin());
  const contents = ids.map((_, i) => Buffer.alloc(1 + ((i * 7919) % 40_000), i));
  // Two files' blocks interleaved, as two files never are on the wire, but the worker must not care.
  for (let i = 0; i < ids.length; i += 2) {
    for (const j of [i, i + 1]) await hasher.update(ids[j]!, contents[j]!.subarray(0, 7));
    for (const j of [i, i + 1]) await hasher.update(ids[j]!, contents[j]!.subarray(7));
    assert.equal(hasher.end(ids[i]!), true);
    assert.equal(hasher.end(ids[i + 1]!), true);
  }
  // A file dropped midway gets no digest and shifts nothing.
  const dropped = hasher.begin();
  await hasher.update(dropped, Buffer.from('partial'));
  hasher.drop(dropped);
  // One block larger than a batch.
  const big = Buffer.alloc(BATCH_BYTES * 2 + 123, 9);
  const bigId = hasher.begin();
  await hasher.update(bigId, big);
  hasher.end(bigId);
  await hasher.settle();
  await hasher.close();
  assert.deepEqual(lost, []);
  assert.equal(digests.length, ids.length + 1);
  contents.forEach((c, j) => assert.deepEqual(digests[j], sha1(c), `file ${j}`));
  assert.deepEqual(digests[ids.length], sha1(big));
});

test('more than MAX_IN_FLIGHT batches ahead of the worker: the writer is asked to wait', async () => {
  const { hasher, digests } = collector();
  const id = hasher.begin();
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

test('a worker that cannot start loses its digests (the verify reads those files back) and never hangs', async () => {
  const received = new ReceivedDigests({ workerName: 'no-such.worker' });
  const f = TempFile.besideSync(path.join(root, 'lost'), { sha1: received.sink() });
  await f.writeSync(Buffer.from('lost digest'));
  await f.commit();
  await received.close();
  assert.equal(received.lookup(lstatSync(path.join(root, 'lost'))), undefined);
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
