/**
 * The staged verify of an incremental with the engine's record of what it changed
 * (VerifyOptions.changesSinceBase, D26): a row identical to the verified base's whose payload the
 * engine did not change is not read — its payload is only lstat'ed (shown by a same-size rewrite
 * with its old mtime put back, which only a verify without the record finds) — while damage done
 * since the base's verify (removed, truncated, written), every row that differs, every row absent
 * from the base and every payload the engine changed is checked as before. The sums stay those of
 * a full verify, and a commit records what a walk finds. Without a usable record, every row.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { fileIdFor, payloadRelPath } from '../../src/format/file-id';
import { readManifestDb, writeManifestDb, type ManifestRow } from '../../src/format/manifest-db';
import { openStore } from '../../src/store';
import { linkTree } from '../../src/store/fs-util';
import { PayloadChangeRecord } from '../../src/store/payload-changes';
import {
  planStagingVerify,
  recordStagingVerify,
  verifyBackupFolder,
  type VerifyOptions,
  type VerifyReport,
} from '../../src/store/verify';
import { sampleEntries, tempDirs, UDID, walkedUsage, writeBackup, type FakeEntry } from './fixture';

const { tmp, cleanup } = tempDirs('mooring-verify-unchanged-');
after(cleanup);

const ENTRIES = sampleEntries(10);
const FILES = ENTRIES.filter((e) => (e.type ?? 'file') === 'file');
const rel = (e: FakeEntry): string => payloadRelPath(fileIdFor(e.domain, e.relativePath));

interface Staged {
  prev: string;
  staged: string;
  record: PayloadChangeRecord;
  baseCheckedAt: number;
}

/**
 * A verified base and its hard-link copy rewritten to `entries` as the engine would, each payload
 * it replaces reported to the record (writeBackup replaces exactly the payloads whose bytes differ).
 */
async function staged(entries = ENTRIES): Promise<Staged> {
  const root = tmp();
  const prev = path.join(root, 'prev', UDID);
  await writeBackup(prev, ENTRIES);
  const full = await verifyBackupFolder(prev, UDID);
  assert.ok(full.ok, JSON.stringify(full.problems));
  const s = path.join(root, 'staged', UDID);
  await fsp.mkdir(path.dirname(s));
  await linkTree(prev, s);
  const record = new PayloadChangeRecord(UDID);
  const before = new Map(ENTRIES.map((e) => [rel(e), e.content]));
  for (const e of entries)
    if ((e.type ?? 'file') === 'file' && before.get(rel(e)) !== e.content)
      record.note(`${UDID}/${rel(e)}`);
  await writeBackup(s, entries);
  return { prev, staged: s, record, baseCheckedAt: Date.parse(full.checkedAt!) };
}

function tracked(s: Staged, extra: VerifyOptions = {}): Promise<VerifyReport> {
  return verifyBackupFolder(s.staged, UDID, {
    hashOnlyUnshared: true,
    base: s.prev,
    changesSinceBase: s.record,
    baseCheckedAt: s.baseCheckedAt,
    ...extra,
  });
}

const untracked = (s: Staged): Promise<VerifyReport> =>
  verifyBackupFolder(s.staged, UDID, { hashOnlyUnshared: true, base: s.prev });

const problems = (r: VerifyReport): string[][] =>
  r.problems.map((p) => [p.kind, p.relativePath ?? '']).sort();

/** Other bytes of the same size, the old mtime put back: what an lstat cannot tell apart. */
async function stealthRewrite(file: string): Promise<void> {
  const st = await fsp.stat(file);
  const bytes = await fsp.readFile(file);
  bytes[0] = bytes[0]! ^ 0xff;
  await fsp.rm(file);
  await fsp.writeFile(file, bytes);
  await fsp.utimes(file, st.atime, st.mtime);
}

async function changeRow(
  dir: string,
  e: FakeEntry,
  change: (r: ManifestRow) => void,
): Promise<void> {
  const db = path.join(dir, 'Manifest.db');
  const rows = readManifestDb(db);
  change(rows.find((r) => r.relativePath === e.relativePath && r.domain === e.domain)!);
  await fsp.rm(db);
  writeManifestDb(db, rows);
}

/**
 * The comparison with the base made on this thread, and on another (store/manifest-rows-off-thread,
 * D33; a phone's Manifest.db is large enough): the same report either way.
 */
const COMPARERS = [
  { name: 'compared here', rowsOffThreadBytes: Infinity },
  { name: 'compared on another thread', rowsOffThreadBytes: 0 },
];

for (const where of COMPARERS) {
  const compared = (s: Staged, extra: VerifyOptions = {}): Promise<VerifyReport> =>
    tracked(s, { rowsOffThreadBytes: where.rowsOffThreadBytes, ...extra });

  test(`${where.name}: unchanged rows are not read, only lstat'ed: damage since the base's verify is found`, async () => {
    const changed = { ...FILES[0]!, content: 'a new version of file 0' };
    const s = await staged(ENTRIES.map((e) => (e === FILES[0] ? changed : e)));
    const full = await untracked(s);
    assert.ok(full.ok, JSON.stringify(full.problems));
    const r = await compared(s);
    assert.ok(r.ok, JSON.stringify(r.problems));
    assert.equal(r.unchangedFiles, FILES.length - 1);
    assert.equal(r.hashed, 1); // the changed one
    assert.equal(r.rowsReadOffThread === true, where.rowsOffThreadBytes === 0);
    assert.deepEqual(
      [r.entries, r.files, r.bytes, r.exclusiveBytes],
      [full.entries, full.files, full.bytes, full.exclusiveBytes],
    );
    // Not read: a same-size rewrite that kept its mtime stands (as for any file shared with the
    // base, hashOnlyUnshared); a verify that hashes every file (the periodic one) finds it.
    await stealthRewrite(path.join(s.staged, rel(FILES[5]!)));
    assert.ok((await compared(s)).ok);
    const all = await verifyBackupFolder(s.staged, UDID);
    assert.deepEqual(problems(all), [['digest', FILES[5]!.relativePath]]);
    // Removed, truncated or written since the base's verify (outside Mooring): found.
    await fsp.rm(path.join(s.staged, rel(FILES[3]!)));
    await fsp.truncate(path.join(s.staged, rel(FILES[4]!)), 1);
    await fsp.appendFile(path.join(s.staged, rel(FILES[6]!)), '!');
    const r2 = await compared(s);
    assert.deepEqual(
      problems(r2),
      [
        ['missing', FILES[3]!.relativePath],
        ['size', FILES[4]!.relativePath],
        ['size', FILES[6]!.relativePath],
      ].sort(),
    );
    assert.equal(r2.unchangedFiles, FILES.length - 4); // the changed one and the three damaged
  });

  test(`${where.name}: a row that differs from the base is checked even when its payload was not touched`, async () => {
    const s = await staged();
    await changeRow(s.staged, FILES[2]!, (r) => (r.file.size += 1));
    await changeRow(
      s.staged,
      FILES[5]!,
      (r) => (r.file.digest = createHash('sha1').update('x').digest()),
    );
    assert.deepEqual(
      problems(await compared(s)),
      [
        ['size', FILES[2]!.relativePath],
        ['digest', FILES[5]!.relativePath],
      ].sort(),
    );
  });

  test(`${where.name}: a changed or new file with wrong bytes, or missing, is found`, async () => {
    const added: FakeEntry = {
      domain: 'HomeDomain',
      relativePath: 'Library/new.txt',
      content: 'n',
    };
    const changedA = { ...FILES[1]!, content: 'changed A' };
    const changedB = { ...FILES[2]!, content: 'changed B' };
    const changedC = { ...FILES[3]!, content: 'changed C' };
    const map = new Map<FakeEntry, FakeEntry>([
      [FILES[1]!, changedA],
      [FILES[2]!, changedB],
      [FILES[3]!, changedC],
    ]);
    const s = await staged([...ENTRIES.map((e) => map.get(e) ?? e), added]);
    s.record.note(`${UDID}/${rel(added)}`);
    assert.ok((await compared(s)).ok);
    const at = (e: FakeEntry): string => path.join(s.staged, rel(e));
    await fsp.rm(at(changedA)); // removed
    await fsp.writeFile(at(changedB), 'changed b'); // same size, other bytes
    await fsp.writeFile(at(changedC), 'changed C, longer'); // other size
    await fsp.rm(at(added));
    const r = await compared(s);
    assert.deepEqual(
      problems(r),
      [
        ['missing', changedA.relativePath],
        ['digest', changedB.relativePath],
        ['size', changedC.relativePath],
        ['missing', added.relativePath],
      ].sort(),
    );
    assert.equal(r.unchangedFiles, FILES.length - 3);
  });

  test(`${where.name}: without a usable record or the base's check time, every row is read`, async () => {
    const s = await staged();
    await stealthRewrite(path.join(s.staged, rel(FILES[6]!)));
    const found = [['digest', FILES[6]!.relativePath]];
    assert.ok((await compared(s)).ok); // not read, as above
    const noTime = await compared(s, { baseCheckedAt: Number.NaN });
    assert.deepEqual(problems(noTime), found);
    assert.equal(noTime.unchangedFiles, undefined);
    // A record that gave up (the device folder itself touched).
    s.record.note(UDID);
    assert.equal(s.record.overflowed, true);
    assert.deepEqual(problems(await compared(s)), found);
    // A name another filesystem would see as the payload's (case, trailing dot) counts as it.
    const s2 = await staged();
    await stealthRewrite(path.join(s2.staged, rel(FILES[7]!)));
    s2.record.note(`${UDID}/${rel(FILES[7]!).toUpperCase()}.`);
    assert.deepEqual(problems(await compared(s2)), [['digest', FILES[7]!.relativePath]]);
  });
}

test('through the store: the plan carries the base check time, the staging its record; the commit records what a walk finds', async () => {
  const dest = tmp();
  const store = await openStore(dest, UDID);
  const s1 = await store.beginStaging();
  await writeBackup(s1.backupDir, ENTRIES);
  const plan1 = await planStagingVerify(store.stateDir, undefined);
  const r1 = await s1.verify(plan1);
  assert.ok(r1.ok);
  const c1 = await s1.commit();
  await recordStagingVerify(store.stateDir, c1.id, plan1, undefined, r1);

  const s2 = await store.beginStaging();
  const note = s2.trackChanges();
  const v2 = ENTRIES.filter((e) => e !== FILES[8]).map((e) =>
    e === FILES[1] ? { ...e, content: 'changed, longer content' } : e,
  );
  note(`${UDID}/${rel(FILES[1]!)}`);
  note(`${UDID}/${rel(FILES[8]!)}`);
  await fsp.rm(path.join(s2.backupDir, rel(FILES[8]!)));
  await writeBackup(s2.backupDir, v2);
  const plan2 = await planStagingVerify(store.stateDir, c1.id);
  assert.equal(plan2.baseCheckedAt, Date.parse(r1.checkedAt!));
  const r2 = await s2.verify(plan2);
  assert.ok(r2.ok, JSON.stringify(r2.problems));
  // Changed, removed, and the last one, whose row (its MBFile InodeNumber) moved up a place.
  assert.equal(r2.unchangedFiles, FILES.length - 3);
  const expected = await walkedUsage(s2.backupDir);
  const c2 = await s2.commit();
  assert.deepEqual(
    [c2.files, c2.size, c2.exclusiveBytes],
    [expected.files, expected.size, expected.exclusiveBytes],
  );
  await recordStagingVerify(store.stateDir, c2.id, plan2, undefined, r2);
  const plan3 = await planStagingVerify(store.stateDir, c2.id);
  assert.equal(plan3.baseCheckedAt, Date.parse(r2.checkedAt!));
  // A staging no engine tracked (no record): every row read.
  const s3 = await store.beginStaging();
  await stealthRewrite(path.join(s3.backupDir, rel(FILES[0]!)));
  assert.deepEqual(problems(await s3.verify(plan3)), [['digest', FILES[0]!.relativePath]]);
  await s3.discard();
});

test("a payload the engine moved onto another's name (still a link of the base's) is hashed", async () => {
  const twins: FakeEntry[] = [
    { domain: 'HomeDomain', relativePath: 'Library/twin-a', content: 'same length A' },
    { domain: 'HomeDomain', relativePath: 'Library/twin-b', content: 'same length B' },
  ];
  const root = tmp();
  const prev = path.join(root, 'prev', UDID);
  await writeBackup(prev, twins);
  const full = await verifyBackupFolder(prev, UDID);
  const staged = path.join(root, 'staged', UDID);
  await fsp.mkdir(path.dirname(staged));
  await linkTree(prev, staged);
  const record = new PayloadChangeRecord(UDID);
  const [a, b] = twins.map((e) => `${UDID}/${rel(e)}`);
  record.note(a!);
  record.note(b!);
  await fsp.rename(path.join(staged, rel(twins[0]!)), path.join(staged, rel(twins[1]!)));
  const r = await verifyBackupFolder(staged, UDID, {
    hashOnlyUnshared: true,
    base: prev,
    changesSinceBase: record,
    baseCheckedAt: Date.parse(full.checkedAt!),
  });
  assert.deepEqual(
    problems(r),
    [
      ['missing', twins[0]!.relativePath],
      ['digest', twins[1]!.relativePath],
    ].sort(),
  );
});
