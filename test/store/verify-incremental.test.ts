/**
 * verify of a staged backup that shares most files with the previous snapshot by hard links:
 * `hashOnlyUnshared` hashes only the files new in this backup, still finds every removed or
 * truncated file, and planStagingVerify says when a full re-hash is due.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { fileIdFor, payloadRelPath } from '../../src/format/file-id';
import { linkTree } from '../../src/store/fs-util';
import {
  planStagingVerify,
  recordStagingVerify,
  sha1File,
  sha1FileSync,
  verifyBackupFolder,
  VERIFY_STATE_FILE,
} from '../../src/store/verify';
import { sampleEntries, tempDirs, UDID, writeBackup, type FakeEntry } from './fixture';

const { tmp, cleanup } = tempDirs('mooring-verify-inc-');
after(cleanup);

// Six small files and one of 600 KB (hashed by the asynchronous path, in several chunks).
const BIG: FakeEntry = {
  domain: 'CameraRollDomain',
  relativePath: 'Media/DCIM/100APPLE/IMG_9000.MOV',
  content: Buffer.alloc(1_300_000, 'movie '),
};
const ENTRIES = [...sampleEntries(6), BIG];
const FILES = ENTRIES.filter((e) => (e.type ?? 'file') === 'file');

/** A backup, and a hard-link copy of it (what the store stages for an incremental). */
async function previousAndStaged(): Promise<{ prev: string; staged: string }> {
  const root = tmp();
  const prev = path.join(root, 'prev', UDID);
  await writeBackup(prev, ENTRIES);
  const staged = path.join(root, 'staged', UDID);
  await fsp.mkdir(path.dirname(staged));
  await linkTree(prev, staged);
  return { prev, staged };
}

function payload(dir: string, e: FakeEntry): string {
  return path.join(dir, payloadRelPath(fileIdFor(e.domain, e.relativePath)));
}

test('files shared with the previous snapshot are size-checked, not hashed; new files are hashed', async () => {
  const { staged } = await previousAndStaged();
  const all = await verifyBackupFolder(staged, UDID);
  assert.ok(all.ok, JSON.stringify(all.problems));
  assert.equal(all.hashed, FILES.length);

  const shared = await verifyBackupFolder(staged, UDID, { hashOnlyUnshared: true });
  assert.ok(shared.ok, JSON.stringify(shared.problems));
  assert.equal(shared.hashed, 0);
  assert.equal(shared.sharedNotHashed, FILES.length);

  // The device sends one file anew (a new inode, link count 1): that one is hashed.
  const changed = { ...FILES[1]!, content: 'new content' };
  await writeBackup(
    staged,
    ENTRIES.map((e) => (e === FILES[1] ? changed : e)),
  );
  const one = await verifyBackupFolder(staged, UDID, { hashOnlyUnshared: true });
  assert.ok(one.ok, JSON.stringify(one.problems));
  assert.equal(one.hashed, 1);
  assert.equal(one.sharedNotHashed, FILES.length - 1);
});

test('a new file with wrong bytes of the right size is found by its digest', async () => {
  const { staged } = await previousAndStaged();
  const e = FILES[3]!;
  const file = payload(staged, e);
  const bytes = await fsp.readFile(file);
  bytes[0] = bytes[0]! ^ 0xff;
  await fsp.rm(file);
  await fsp.writeFile(file, bytes); // a new inode, as every received file
  const r = await verifyBackupFolder(staged, UDID, { hashOnlyUnshared: true });
  assert.equal(r.ok, false);
  assert.deepEqual(
    r.problems.map((p) => [p.kind, p.relativePath]),
    [['digest', e.relativePath]],
  );
  assert.equal(r.hashed, 1);
});

test('a removed or truncated shared file is still found without hashing', async () => {
  const { prev, staged } = await previousAndStaged();
  await fsp.rm(payload(staged, FILES[0]!));
  // Truncating a shared inode damages the previous snapshot too: both report it by size.
  await fsp.truncate(payload(prev, BIG), 1000);
  const r = await verifyBackupFolder(staged, UDID, { hashOnlyUnshared: true });
  assert.equal(r.ok, false);
  assert.deepEqual(r.problems.map((p) => [p.kind, p.relativePath]).sort(), [
    ['missing', FILES[0]!.relativePath],
    ['size', BIG.relativePath],
  ]);
  assert.equal(r.hashed, 0);
});

test('bit rot inside a shared file is left to the periodic full re-hash', async () => {
  const { staged } = await previousAndStaged();
  const fh = await fsp.open(payload(staged, BIG), 'r+');
  await fh.write(Buffer.from('X'), 0, 1, 700_000); // in place: same inode, same size
  await fh.close();
  const quick = await verifyBackupFolder(staged, UDID, { hashOnlyUnshared: true });
  assert.ok(quick.ok, 'the quick verify does not read shared files');
  const full = await verifyBackupFolder(staged, UDID);
  assert.deepEqual(
    full.problems.map((p) => [p.kind, p.relativePath]),
    [['digest', BIG.relativePath]],
  );
});

test('sha1File and sha1FileSync agree, whatever the buffer size', async () => {
  const { prev } = await previousAndStaged();
  const file = payload(prev, BIG);
  const size = (BIG.content as Buffer).length;
  const whole = await sha1File(file, size);
  assert.deepEqual(await sha1File(file, size, Buffer.alloc(4096)), whole);
  assert.deepEqual(sha1FileSync(file, size, Buffer.alloc(7777)), whole);
  assert.notDeepEqual(sha1FileSync(file, size - 1, Buffer.alloc(4096)), whole);
});

test('planStagingVerify: full hash first, then only new files, a full re-hash every N backups or days', async () => {
  const state = tmp();
  const policy = { everyBackups: 3, maxAgeDays: 7 };
  const day = (n: number): Date => new Date(Date.UTC(2026, 10, n));
  // Nothing verified yet (or no previous snapshot): everything is hashed.
  assert.equal(
    (await planStagingVerify(state, undefined, policy, day(1))).hashOnlyUnshared,
    undefined,
  );
  assert.equal((await planStagingVerify(state, 'A', policy, day(1))).hashOnlyUnshared, undefined);
  await recordStagingVerify(state, 'A', {}, day(1));
  assert.equal((await fsp.stat(path.join(state, VERIFY_STATE_FILE))).isFile(), true);

  // A was verified by us: B hashes only its new files.
  const b = await planStagingVerify(state, 'A', policy, day(2));
  assert.equal(b.hashOnlyUnshared, true, b.why);
  await recordStagingVerify(state, 'B', b, day(2));
  // A base we did not verify (adopted from another tool, or a lost record): everything.
  assert.equal((await planStagingVerify(state, 'X', policy, day(2))).hashOnlyUnshared, undefined);

  const c = await planStagingVerify(state, 'B', policy, day(3));
  assert.equal(c.hashOnlyUnshared, true);
  await recordStagingVerify(state, 'C', c, day(3));
  // Third backup since the full hash: due.
  const d = await planStagingVerify(state, 'C', policy, day(4));
  assert.equal(d.hashOnlyUnshared, undefined, d.why);
  await recordStagingVerify(state, 'D', d, day(4));
  assert.equal((await planStagingVerify(state, 'D', policy, day(5))).hashOnlyUnshared, true);
  // Seven days after the full hash: due again.
  const late = await planStagingVerify(state, 'D', policy, day(11));
  assert.equal(late.hashOnlyUnshared, undefined);
  assert.match(late.why, /7 days/);

  // A damaged record is not trusted.
  await fsp.writeFile(path.join(state, VERIFY_STATE_FILE), '{"version":1,"verifiedId":"D"');
  assert.equal((await planStagingVerify(state, 'D', policy, day(5))).hashOnlyUnshared, undefined);
});
