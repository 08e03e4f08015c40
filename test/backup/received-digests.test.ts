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
import { ReceivedDigests, receivedFileKey } from '../../src/backup/received-digests';

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
  assert.equal(got.key, receivedFileKey(lstatSync(path.join(root, 'f'))));
  received.record(got.key, got.sha1);
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
