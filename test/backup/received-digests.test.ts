/**
 * The SHA-1 taken while a file is received (TempFile with `hash`) is found again by what lstat
 * says of the committed file, also after a move; another file, even of the same size and content,
 * is not taken for it.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { lstatSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TempFile } from '../../src/backup/atomic-file';
import { ReceivedDigests } from '../../src/backup/received-digests';

const root = mkdtempSync(path.join(os.tmpdir(), 'mooring-received-'));
after(() => rmSync(root, { recursive: true, force: true }));
const sha1 = (b: Buffer): Buffer => createHash('sha1').update(b).digest();

test('small and large blocks: the digest is of all bytes written, keyed by the committed file', async () => {
  const small = Buffer.from('a small file');
  const large = Buffer.alloc(300_000, 7);
  const received = new ReceivedDigests();
  const f = TempFile.besideSync(path.join(root, 'f'), { hash: true });
  f.writeSync(small);
  assert.equal(f.append(large), undefined); // written behind
  await f.commit();
  const got = f.receivedDigest!;
  assert.deepEqual(got.sha1, sha1(Buffer.concat([small, large])));
  const st = lstatSync(path.join(root, 'f'));
  assert.deepEqual(
    [got.file.dev, got.file.ino, got.file.size, got.file.mtimeMs],
    [st.dev, st.ino, st.size, st.mtimeMs],
  );
  received.record(got.file, got.sha1);
  // A move (the device's MoveItems) keeps the inode and the mtime.
  renameSync(path.join(root, 'f'), path.join(root, 'moved'));
  assert.deepEqual(received.lookup(lstatSync(path.join(root, 'moved'))), got.sha1);
  // The same bytes in another file are not what was received.
  writeFileSync(path.join(root, 'copy'), Buffer.concat([small, large]));
  assert.equal(received.lookup(lstatSync(path.join(root, 'copy'))), undefined);
  received.forgetAll();
  assert.equal(received.lookup(lstatSync(path.join(root, 'moved'))), undefined);
});

test('without `hash`, or when discarded, no digest is offered', async () => {
  const plain = TempFile.besideSync(path.join(root, 'plain'));
  plain.writeSync(Buffer.from('x'));
  await plain.commit();
  assert.equal(plain.receivedDigest, undefined);
  const dropped = TempFile.besideSync(path.join(root, 'dropped'), { hash: true });
  dropped.writeSync(Buffer.from('y'));
  await dropped.discard();
  assert.equal(dropped.receivedDigest, undefined);
});

test('many files: each finds its own digest; another size, mtime or device finds none', () => {
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
});
