/**
 * The staging's verify reads Manifest.db's rows from a thread begun when the device sent the file
 * (Staging.expectVerify and manifestReceived, D34): for a first backup (every row) and an
 * incremental (compared with the verified base), with the report a verify made afresh gives; a
 * read ahead that no verify takes is ended with the staging.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { fileIdFor, payloadRelPath } from '../../src/format/file-id';
import { openStore, type Staging } from '../../src/store';
import {
  planStagingVerify,
  recordStagingVerify,
  type VerifyOptions,
  type VerifyReport,
} from '../../src/store/verify';
import { sampleEntries, tempDirs, UDID, writeBackup, type FakeEntry } from './fixture';

const { tmp, cleanup } = tempDirs('mooring-read-ahead-');
after(cleanup);

/**
 * As the engine meets the device: Manifest.db arrives in Snapshot/ and the staging is told, then
 * the device moves it into place (one rename: the same inode).
 */
async function deviceSends(s: Staging, entries: FakeEntry[]): Promise<void> {
  await writeBackup(s.backupDir, entries);
  const snap = path.join(s.backupDir, 'Snapshot', 'Manifest.db');
  await fsp.mkdir(path.dirname(snap));
  await fsp.rename(path.join(s.backupDir, 'Manifest.db'), snap);
  s.manifestReceived(snap);
  assert.ok(s._readAheadWorker, 'the read began');
  await fsp.rename(snap, path.join(s.backupDir, 'Manifest.db'));
  await fsp.rmdir(path.dirname(snap));
}

/** What a verify found, without how it read the rows or when. */
function findings(r: VerifyReport): unknown {
  const { rowsReadAhead: _a, rowsReadOffThread: _b, checkedAt: _c, ...rest } = r;
  return rest;
}

test('the verify takes the rows read since the device sent Manifest.db: a first backup, then an incremental (D34)', async () => {
  const store = await openStore(tmp(), UDID);
  const v1 = sampleEntries(12);
  // A phone's Manifest.db is large enough to be read on another thread; these are told to be.
  const plan1: VerifyOptions = {
    ...(await planStagingVerify(store.stateDir, undefined)),
    rowsOffThreadBytes: 0,
  };
  const s1 = await store.beginStaging();
  s1.expectVerify(plan1);
  await deviceSends(s1, v1);
  const r1 = await s1.verify(plan1);
  assert.ok(r1.ok, JSON.stringify(r1.problems));
  assert.equal(r1.rowsReadAhead, true);
  assert.equal(r1.hashed, r1.files);
  assert.deepEqual(await fsp.readdir(s1.root), [UDID], "the read's own link is gone");
  assert.deepEqual(findings(await s1.verify(plan1)), findings(r1), 'as a verify made afresh');
  const c1 = await s1.commit();
  await recordStagingVerify(store.stateDir, c1.id, plan1, new Date(), r1);

  const s2 = await store.beginStaging();
  const changed = v1.findIndex((e) => (e.type ?? 'file') === 'file');
  const v2 = v1.map((e, i) => (i === changed ? { ...e, content: 'changed since' } : e));
  const note = s2.trackChanges();
  note(`${UDID}/${payloadRelPath(fileIdFor(v2[changed]!.domain, v2[changed]!.relativePath))}`);
  const plan2: VerifyOptions = {
    ...(await planStagingVerify(store.stateDir, c1.id)),
    rowsOffThreadBytes: 0,
  };
  assert.equal(plan2.hashOnlyUnshared, true);
  s2.expectVerify(plan2);
  await deviceSends(s2, v2);
  const r2 = await s2.verify(plan2);
  assert.ok(r2.ok, JSON.stringify(r2.problems));
  assert.equal(r2.rowsReadAhead, true);
  assert.ok((r2.unchangedFiles ?? 0) > 0, 'compared with the base: unchanged rows not read');
  assert.equal(r2.hashed, 1);
  assert.deepEqual(findings(await s2.verify(plan2)), findings(r2), 'as a verify made afresh');
  await s2.commit();
});

test('a read ahead no verify takes ends with the staging; none begins unless a verify is expected', async () => {
  const store = await openStore(tmp(), UDID);
  const s = await store.beginStaging();
  const v = sampleEntries(6);
  s.expectVerify({ rowsOffThreadBytes: 0 });
  await deviceSends(s, v);
  const worker = s._readAheadWorker!;
  const exited = once(worker, 'exit');
  await s.discard();
  await exited;
  assert.equal(s._readAheadWorker, undefined);

  const unplanned = await store.beginStaging();
  await writeBackup(unplanned.backupDir, v);
  unplanned.manifestReceived(path.join(unplanned.backupDir, 'Manifest.db'));
  assert.equal(unplanned._readAheadWorker, undefined);
  const r = await unplanned.verify({ rowsOffThreadBytes: 0 });
  assert.ok(r.ok);
  assert.equal(r.rowsReadAhead, undefined);
  await unplanned.discard();
});

test('a Manifest.db sent again replaces the read begun on the first: the verify takes the read of the second', async () => {
  const store = await openStore(tmp(), UDID);
  const s = await store.beginStaging();
  s.expectVerify({ rowsOffThreadBytes: 0 });
  await deviceSends(s, sampleEntries(4));
  const first = s._readAheadWorker!;
  const firstEnded = once(first, 'exit');
  // The device sends a new one (a new inode, other rows) and moves it over the first.
  await deviceSends(s, sampleEntries(9));
  await firstEnded;
  assert.notEqual(s._readAheadWorker, first);
  const r = await s.verify({ rowsOffThreadBytes: 0 });
  assert.ok(r.ok, JSON.stringify(r.problems));
  assert.equal(r.rowsReadAhead, true);
  assert.equal(r.entries, sampleEntries(9).length);
  assert.deepEqual(await fsp.readdir(s.root), [UDID]);
  await s.discard();
});
