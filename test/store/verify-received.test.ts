/**
 * verify with the SHA-1s taken while the files were received (VerifyOptions.received): the files
 * received are checked against those digests without being read back; a file that is not the one
 * received (replaced by another inode, or changed size) is read and hashed, or fails its size check.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { ReceivedDigests } from '../../src/backup/received-digests';
import { fileIdFor, payloadRelPath } from '../../src/format/file-id';
import { verifyBackupFolder } from '../../src/store/verify';
import { sampleEntries, tempDirs, UDID, writeBackup, type FakeEntry } from './fixture';

const { tmp, cleanup } = tempDirs('mooring-verify-received-');
after(cleanup);

const BIG: FakeEntry = {
  domain: 'CameraRollDomain',
  relativePath: 'Media/DCIM/100APPLE/IMG_9001.MOV',
  content: Buffer.alloc(700_000, 'movie '),
};
const ENTRIES = [...sampleEntries(5), BIG];
const FILES = ENTRIES.filter((e) => (e.type ?? 'file') === 'file');
const payload = (dir: string, e: FakeEntry): string =>
  path.join(dir, payloadRelPath(fileIdFor(e.domain, e.relativePath)));

/** A backup whose payloads were all "received": rewritten as the engine writes them (D30). */
async function receivedBackup(): Promise<{ dir: string; received: ReceivedDigests }> {
  const dir = path.join(tmp(), UDID);
  await writeBackup(dir, ENTRIES);
  const received = new ReceivedDigests();
  for (const e of FILES) {
    const file = payload(dir, e);
    const bytes = await fsp.readFile(file);
    const w = received.writeOffThread(file, (end) => assert.deepEqual(end, { ok: true }));
    assert.ok(w);
    await w.write(bytes);
    w.end();
  }
  await received.close();
  return { dir, received };
}

test('the files received are checked by the digests taken on arrival', async () => {
  const { dir, received } = await receivedBackup();
  const r = await verifyBackupFolder(dir, UDID, { received });
  assert.ok(r.ok, JSON.stringify(r.problems));
  assert.equal(r.hashed, FILES.length);
  assert.equal(r.hashedWhileReceiving, FILES.length);
  const plain = await verifyBackupFolder(dir, UDID);
  assert.equal(plain.hashed, FILES.length);
  assert.equal(plain.hashedWhileReceiving, undefined);
});

test('the digest on arrival is what is compared (a wrong one is reported, nothing read back)', async () => {
  const { dir } = await receivedBackup();
  const lying = { lookup: () => Buffer.alloc(20, 0xee) };
  const r = await verifyBackupFolder(dir, UDID, { received: lying });
  assert.equal(r.ok, false);
  assert.equal(r.problemCount, FILES.length);
  assert.ok(r.problems.every((p) => p.kind === 'digest'));
});

test('a file replaced after it arrived (another inode) is read back and its damage found', async () => {
  const { dir, received } = await receivedBackup();
  const replaced = payload(dir, FILES[0]!);
  const size = (await fsp.stat(replaced)).size;
  await fsp.rm(replaced);
  await fsp.writeFile(replaced, Buffer.alloc(size, 'x')); // same size, other bytes
  const big = payload(dir, BIG);
  const bigBytes = await fsp.readFile(big);
  bigBytes[1234] = bigBytes[1234]! ^ 0xff;
  await fsp.rm(big);
  await fsp.writeFile(big, bigBytes);
  const r = await verifyBackupFolder(dir, UDID, { received });
  assert.deepEqual(
    r.problems.map((p) => [p.kind, p.relativePath]).sort(),
    [
      ['digest', FILES[0]!.relativePath],
      ['digest', BIG.relativePath],
    ].sort(),
  );
  assert.equal(r.hashedWhileReceiving, FILES.length - 2);
});

test('a received file that changed size fails the size check before any digest', async () => {
  const { dir, received } = await receivedBackup();
  await fsp.truncate(payload(dir, BIG), 10);
  const r = await verifyBackupFolder(dir, UDID, { received });
  assert.deepEqual(
    r.problems.map((p) => [p.kind, p.relativePath]),
    [['size', BIG.relativePath]],
  );
});
