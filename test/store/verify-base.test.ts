/**
 * verify of a staged incremental backup against the snapshot it was staged from (`base`): rows of
 * Manifest.db identical to the verified base's are not decoded again (only their Size is read),
 * and the verify still finds a shared file whose size changed, a new file with wrong bytes, and a
 * row whose MBFile changed. Also: mbFileSummary reads the same Size as decodeMbFile.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { fileIdFor, payloadRelPath } from '../../src/format/file-id';
import {
  isKnownRow,
  iterateManifestDbAgainst,
  readManifestDb,
  writeManifestDb,
  type ManifestRow,
} from '../../src/format/manifest-db';
import { decodeMbFile, encodeMbFile, mbFileSummary, S_IFREG } from '../../src/format/mbfile';
import Database from 'better-sqlite3';
import { openStore } from '../../src/store';
import { linkTree } from '../../src/store/fs-util';
import { verifyBackupFolder } from '../../src/store/verify';
import { sampleEntries, tempDirs, UDID, writeBackup, type FakeEntry } from './fixture';

const { tmp, cleanup } = tempDirs('mooring-verify-base-');
after(cleanup);

const BIG: FakeEntry = {
  domain: 'CameraRollDomain',
  relativePath: 'Media/DCIM/100APPLE/IMG_9000.MOV',
  content: Buffer.alloc(700_000, 'movie '),
};
const ENTRIES = [...sampleEntries(6), BIG];
const FILES = ENTRIES.filter((e) => (e.type ?? 'file') === 'file');

/**
 * A verified backup `prev`, and `staged`: a hard-link copy of it with a Manifest.db rewritten by
 * the "device" (a new file, identical rows), as an incremental backup leaves it.
 */
async function prevAndStaged(entries = ENTRIES): Promise<{ prev: string; staged: string }> {
  const root = tmp();
  const prev = path.join(root, 'prev', UDID);
  await writeBackup(prev, ENTRIES);
  const staged = path.join(root, 'staged', UDID);
  await fsp.mkdir(path.dirname(staged));
  await linkTree(prev, staged);
  await writeBackup(staged, entries);
  return { prev, staged };
}

const payload = (dir: string, e: FakeEntry): string =>
  path.join(dir, payloadRelPath(fileIdFor(e.domain, e.relativePath)));

const problems = (r: { problems: Array<{ kind: string; relativePath?: string }> }): string[][] =>
  r.problems.map((p) => [p.kind, p.relativePath ?? '']).sort();

/** Rewrites staged Manifest.db with `change` applied to the row of `e`. */
async function changeRow(
  staged: string,
  e: FakeEntry,
  change: (r: ManifestRow) => void,
): Promise<void> {
  const db = path.join(staged, 'Manifest.db');
  const rows = readManifestDb(db);
  const row = rows.find((r) => r.relativePath === e.relativePath && r.domain === e.domain)!;
  change(row);
  await fsp.rm(db);
  writeManifestDb(db, rows);
}

test('rows identical to the base are known (not decoded); the verify passes and hashes nothing shared', async () => {
  const { prev, staged } = await prevAndStaged();
  const rows = [
    ...iterateManifestDbAgainst(path.join(staged, 'Manifest.db'), path.join(prev, 'Manifest.db')),
  ];
  assert.equal(rows.length, ENTRIES.length);
  assert.ok(rows.every(isKnownRow));
  const big = rows.find((r) => r.relativePath === BIG.relativePath)!;
  assert.ok(isKnownRow(big));
  assert.equal(big.size, (BIG.content as Buffer).length);
  assert.equal(big.hasDigest, true);

  const r = await verifyBackupFolder(staged, UDID, { hashOnlyUnshared: true, base: prev });
  assert.ok(r.ok, JSON.stringify(r.problems));
  assert.equal(r.files, FILES.length);
  assert.equal(r.entries, ENTRIES.length);
  assert.equal(r.hashed, 0);
  assert.equal(r.sharedNotHashed, FILES.length);
  const plain = await verifyBackupFolder(staged, UDID, { hashOnlyUnshared: true });
  assert.equal(r.bytes, plain.bytes);
  assert.equal(r.knownRows, ENTRIES.length);
  assert.equal(plain.knownRows, undefined);
});

test('a shared (hard-linked) file whose size changed is found from the known row', async () => {
  const { prev, staged } = await prevAndStaged();
  await fsp.truncate(payload(staged, BIG), 1000);
  await fsp.appendFile(payload(staged, FILES[0]!), 'grown');
  const r = await verifyBackupFolder(staged, UDID, { hashOnlyUnshared: true, base: prev });
  assert.deepEqual(
    problems(r),
    [
      ['size', BIG.relativePath],
      ['size', FILES[0]!.relativePath],
    ].sort(),
  );
  assert.equal(r.hashed, 0);
});

test('a new file, or a changed one, with wrong bytes is found by its digest', async () => {
  const added: FakeEntry = {
    domain: 'HomeDomain',
    relativePath: 'Library/new.txt',
    content: 'new file',
  };
  const changed = { ...FILES[1]!, content: 'changed content' };
  const { prev, staged } = await prevAndStaged([
    ...ENTRIES.map((e) => (e === FILES[1] ? changed : e)),
    added,
  ]);
  const ok = await verifyBackupFolder(staged, UDID, { hashOnlyUnshared: true, base: prev });
  assert.ok(ok.ok, JSON.stringify(ok.problems));
  assert.equal(ok.hashed, 2);
  for (const e of [added, changed]) {
    const file = payload(staged, e);
    const bytes = await fsp.readFile(file);
    bytes[0] = bytes[0]! ^ 0xff;
    await fsp.rm(file);
    await fsp.writeFile(file, bytes);
  }
  const r = await verifyBackupFolder(staged, UDID, { hashOnlyUnshared: true, base: prev });
  assert.deepEqual(
    problems(r),
    [
      ['digest', added.relativePath],
      ['digest', changed.relativePath],
    ].sort(),
  );
});

test('a row whose MBFile changed is decoded: a new size, a new digest or a broken archive is found', async () => {
  const { prev, staged } = await prevAndStaged();
  await changeRow(staged, FILES[2]!, (r) => (r.file.size += 1));
  // The payload is still the base's (shared): a new digest in the row is checked all the same.
  await changeRow(staged, BIG, (r) => (r.file.digest = createHash('sha1').update('x').digest()));
  const r = await verifyBackupFolder(staged, UDID, { hashOnlyUnshared: true, base: prev });
  assert.deepEqual(
    problems(r),
    [
      ['digest', BIG.relativePath],
      ['size', FILES[2]!.relativePath],
    ].sort(),
  );
  assert.equal(r.hashed, 1);
  assert.equal(r.knownRows, ENTRIES.length - 2);

  const { prev: p2, staged: s2 } = await prevAndStaged();
  const db = path.join(s2, 'Manifest.db');
  const w = new Database(db);
  w.prepare('UPDATE Files SET file = ? WHERE fileID = ?').run(
    Buffer.from('bplist00 not an archive'),
    fileIdFor(FILES[3]!.domain, FILES[3]!.relativePath),
  );
  w.close();
  const broken = await verifyBackupFolder(s2, UDID, { hashOnlyUnshared: true, base: p2 });
  assert.deepEqual(problems(broken), [['manifest-row', FILES[3]!.relativePath]]);
});

test('a base that cannot be read: every row is decoded, the verify is the same', async () => {
  const { staged } = await prevAndStaged();
  const nowhere = path.join(tmp(), 'nothing-here');
  const r = await verifyBackupFolder(staged, UDID, { hashOnlyUnshared: true, base: nowhere });
  assert.ok(r.ok, JSON.stringify(r.problems));
  assert.equal(r.sharedNotHashed, FILES.length);
  await fsp.truncate(payload(staged, BIG), 10);
  const bad = await verifyBackupFolder(staged, UDID, { hashOnlyUnshared: true, base: nowhere });
  assert.deepEqual(problems(bad), [['size', BIG.relativePath]]);
});

test('a base without a fileID key and with a duplicated row: each row is still seen once', async () => {
  const { prev, staged } = await prevAndStaged();
  const odd = path.join(tmp(), UDID);
  await fsp.mkdir(odd, { recursive: true });
  const w = new Database(path.join(odd, 'Manifest.db'));
  w.exec(
    'CREATE TABLE Files (fileID TEXT, domain TEXT, relativePath TEXT, flags INTEGER, file BLOB)',
  );
  w.prepare('ATTACH ? AS p').run(path.join(prev, 'Manifest.db'));
  w.exec('INSERT INTO Files SELECT * FROM p.Files; INSERT INTO Files SELECT * FROM p.Files');
  w.close();
  const rows = [
    ...iterateManifestDbAgainst(path.join(staged, 'Manifest.db'), path.join(odd, 'Manifest.db')),
  ];
  assert.equal(rows.length, ENTRIES.length);
  assert.ok(rows.every(isKnownRow));
  const r = await verifyBackupFolder(staged, UDID, { hashOnlyUnshared: true, base: odd });
  assert.ok(r.ok, JSON.stringify(r.problems));
  assert.equal(r.entries, ENTRIES.length);
});

test('base is used only with hashOnlyUnshared (its precondition: the base was verified)', async () => {
  const { prev, staged } = await prevAndStaged();
  // Bit rot in a shared file: a full verify with a base given still hashes everything.
  const fh = await fsp.open(payload(staged, BIG), 'r+');
  await fh.write(Buffer.from('X'), 0, 1, 500_000);
  await fh.close();
  const r = await verifyBackupFolder(staged, UDID, { base: prev });
  assert.deepEqual(problems(r), [['digest', BIG.relativePath]]);
  assert.equal(r.hashed, FILES.length);
});

test('mbFileSummary reads the Size and Digest presence decodeMbFile reads, or declines', () => {
  const base = {
    relativePath: 'Media/x',
    lastModified: 1,
    lastStatusChange: 2,
    birth: 3,
    mode: S_IFREG | 0o644,
    userId: 501,
    groupId: 501,
    inode: 7,
    protectionClass: 3,
    flags: 0,
  };
  for (const size of [0, 1, 255, 256, 65_535, 65_536, 2 ** 32 - 1, 2 ** 32, 2 ** 40 + 3]) {
    for (const digest of [undefined, Buffer.alloc(20, 1)]) {
      const blob = encodeMbFile({ ...base, size, ...(digest ? { digest } : {}) });
      assert.deepEqual(mbFileSummary(blob), { size, hasDigest: digest !== undefined });
      assert.equal(decodeMbFile(blob).size, size);
    }
  }
  const blob = encodeMbFile({ ...base, size: 12345, digest: Buffer.alloc(20) });
  assert.equal(mbFileSummary(Buffer.from('not a plist at all, not at all, not at all')), undefined);
  for (let cut = 0; cut < blob.length; cut++) {
    // Truncated: declined (never a wrong size, never a throw).
    assert.equal(mbFileSummary(blob.subarray(0, cut)), undefined, `cut at ${cut}`);
  }
  for (let i = 0; i < blob.length; i++) {
    const flipped = Buffer.from(blob);
    flipped[i] = flipped[i]! ^ 0x5a;
    const s = mbFileSummary(flipped);
    let decoded: number | undefined;
    try {
      decoded = decodeMbFile(flipped).size;
    } catch {
      decoded = undefined;
    }
    if (s !== undefined && decoded !== undefined) assert.equal(s.size, decoded, `byte ${i}`);
  }
});

test("a store's staged incremental is verified against the snapshot it was staged from", async () => {
  const store = await openStore(tmp(), UDID);
  const first = await store.beginStaging();
  await writeBackup(first.backupDir, ENTRIES);
  await first.commit();
  const second = await store.beginStaging();
  const changed = { ...FILES[0]!, content: 'changed in the second backup' };
  await writeBackup(
    second.backupDir,
    ENTRIES.map((e) => (e === FILES[0] ? changed : e)),
  );
  const r = await second.verify({ hashOnlyUnshared: true });
  assert.ok(r.ok, JSON.stringify(r.problems));
  assert.equal(r.knownRows, ENTRIES.length - 1);
  assert.equal(r.hashed, 1);
  // A full re-hash (the plan's other answer) does not use the base.
  const full = await second.verify({});
  assert.equal(full.knownRows, undefined);
  assert.equal(full.hashed, FILES.length);
  await second.discard();
});
