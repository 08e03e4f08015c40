/**
 * The commit's usage record (files, bytes, bytes in no other snapshot) taken from the verify that
 * just checked the staged payloads instead of a second walk: the same figures as a walk, and a walk
 * again whenever the folder holds anything the verify did not list.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { openStore } from '../../src/store';
import { stagedUsage } from '../../src/store/usage';
import { sampleEntries, tempDirs, UDID, walkedUsage, writeBackup } from './fixture';

const { tmp, cleanup } = tempDirs('mooring-staged-usage-');
after(cleanup);

test("a verified staging's commit records what a walk of it finds (full, then incremental)", async () => {
  const store = await openStore(tmp(), UDID);
  const v1 = sampleEntries(12);
  const s1 = await store.beginStaging();
  await writeBackup(s1.backupDir, v1);
  const r1 = await s1.verify();
  assert.ok(r1.ok);
  assert.equal(r1.exclusiveBytes, r1.bytes); // nothing shared yet
  const expected1 = await walkedUsage(s1.backupDir);
  const c1 = await s1.commit();
  assert.deepEqual(
    [c1.files, c1.size, c1.exclusiveBytes],
    [expected1.files, expected1.size, expected1.exclusiveBytes],
  );

  const s2 = await store.beginStaging();
  const v2 = v1
    .slice(1)
    .map((e, i) => (i === 2 ? { ...e, content: 'changed, longer content' } : e));
  await writeBackup(s2.backupDir, v2);
  const r2 = await s2.verify({ hashOnlyUnshared: true });
  assert.ok(r2.ok);
  assert.equal(r2.exclusiveBytes, 'changed, longer content'.length);
  const expected2 = await walkedUsage(s2.backupDir);
  assert.ok(expected2.exclusiveBytes < expected2.size); // shares most files with the first
  const c2 = await s2.commit();
  assert.deepEqual(
    [c2.files, c2.size, c2.exclusiveBytes],
    [expected2.files, expected2.size, expected2.exclusiveBytes],
  );
  const listed = (await store.list()).at(-1)!;
  assert.equal(c2.size, listed.size);
  assert.equal(c2.files, listed.files);
});

test('a file Manifest.db does not list (in a bucket or another folder) is counted by a walk', async () => {
  const store = await openStore(tmp(), UDID);
  const s = await store.beginStaging();
  await writeBackup(s.backupDir, sampleEntries(6));
  assert.ok((await s.verify()).ok);
  // Unlisted: the verify cannot see them, the commit must.
  await fsp.mkdir(path.join(s.backupDir, 'ab'), { recursive: true });
  await fsp.writeFile(path.join(s.backupDir, 'ab', 'ab'.padEnd(40, '0')), 'stray payload');
  await fsp.mkdir(path.join(s.backupDir, 'Snapshot'));
  await fsp.writeFile(path.join(s.backupDir, 'Snapshot', 'left-over'), 'twelve bytes');
  const expected = await walkedUsage(s.backupDir);
  const c = await s.commit();
  assert.deepEqual(
    [c.files, c.size, c.exclusiveBytes],
    [expected.files, expected.size, expected.exclusiveBytes],
  );
});

test('stagedUsage takes the verified sums only when the buckets hold exactly that many names', async () => {
  const store = await openStore(tmp(), UDID);
  const s = await store.beginStaging();
  await writeBackup(s.backupDir, sampleEntries(5));
  const r = await s.verify();
  assert.ok(r.ok);
  const verified = s.verifiedPayloads!;
  assert.deepEqual(verified, { files: r.files, bytes: r.bytes, exclusiveBytes: r.exclusiveBytes });
  const walk = await walkedUsage(s.backupDir);
  assert.deepEqual(await stagedUsage(s.backupDir, verified), walk);
  // Sums that are not the tree's show which source was used: the listing, for the payloads...
  const fake = { ...verified, bytes: verified.bytes + 1000, exclusiveBytes: 7 };
  const used = await stagedUsage(s.backupDir, fake);
  assert.equal(used.size, walk.size + 1000);
  // ...and a walk as soon as one more name sits in a bucket, or one is missing.
  assert.deepEqual(await stagedUsage(s.backupDir, { ...fake, files: verified.files - 1 }), walk);
  assert.deepEqual(await stagedUsage(s.backupDir, undefined), walk);
  // A verify that finds a problem leaves nothing for the commit to trust.
  await fsp.writeFile(path.join(s.backupDir, 'Status.plist'), 'not a plist');
  assert.equal((await s.verify()).ok, false);
  assert.equal(s.verifiedPayloads, undefined);
  await s.discard();
});
