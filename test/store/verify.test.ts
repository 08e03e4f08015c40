/** verify: exactly what is missing or damaged in a backup folder. */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { encodeBinaryPlist, encodeXmlPlist } from '../../src/protocol/plist';
import { fileIdFor, payloadRelPath } from '../../src/format/file-id';
import { verifyBackupFolder, type VerifyOptions, type VerifyReport } from '../../src/store/verify';
import { sampleEntries, tempDirs, UDID, writeBackup, type FakeEntry } from './fixture';

const { tmp, cleanup } = tempDirs('mooring-verify-');
after(cleanup);

const ENTRIES = sampleEntries(6);
const FILES = ENTRIES.filter((e) => (e.type ?? 'file') === 'file');

let golden: string | undefined;
/** A fresh copy of one good backup folder. */
async function good(opts: { noDigest?: boolean } = {}): Promise<string> {
  const dir = path.join(tmp(), UDID);
  if (opts.noDigest) {
    await writeBackup(dir, ENTRIES, { noDigest: true });
    return dir;
  }
  if (!golden) {
    golden = path.join(tmp(), UDID);
    await writeBackup(golden, ENTRIES);
  }
  await fsp.cp(golden, dir, { recursive: true });
  return dir;
}

function payload(dir: string, e: FakeEntry): string {
  return path.join(dir, payloadRelPath(fileIdFor(e.domain, e.relativePath)));
}

/**
 * Manifest.db's rows read on this thread, and on another (store/manifest-rows-off-thread; a
 * phone's Manifest.db is large enough): the same report either way.
 */
const READERS = [
  { name: 'rows read here', rowsOffThreadBytes: Infinity },
  { name: 'rows read on another thread', rowsOffThreadBytes: 0 },
];

function only(r: VerifyReport): { kind: string; relativePath?: string; problem: string } {
  assert.equal(r.ok, false);
  assert.equal(r.problems.length, 1, JSON.stringify(r.problems));
  return r.problems[0]!;
}

for (const reader of READERS) {
  const verify = (dir: string, udid: string, opts: VerifyOptions = {}): Promise<VerifyReport> =>
    verifyBackupFolder(dir, udid, { ...opts, rowsOffThreadBytes: reader.rowsOffThreadBytes });

  test(`${reader.name}: a whole backup verifies, with every file hashed`, async () => {
    const r = await verify(await good(), UDID);
    assert.ok(r.ok, JSON.stringify(r.problems));
    assert.equal(r.snapshotState, 'finished');
    assert.equal(r.entries, ENTRIES.length);
    assert.equal(r.files, 6);
    assert.equal(r.hashed, 6);
    assert.equal(
      r.bytes,
      FILES.reduce((n, e) => n + Buffer.byteLength(e.content as string), 0),
    );
    assert.equal(r.contentsChecked, true);
    assert.equal(r.rowsReadOffThread === true, reader.rowsOffThreadBytes === 0);
  });

  test(`${reader.name}: a missing, a truncated and a byte-flipped payload are each reported by name`, async () => {
    const e = FILES[2]!;
    let dir = await good();
    await fsp.unlink(payload(dir, e));
    let p = only(await verify(dir, UDID));
    assert.deepEqual(
      [p.kind, p.relativePath, p.problem],
      ['missing', e.relativePath, 'the payload file is missing'],
    );

    dir = await good();
    const full = await fsp.readFile(payload(dir, e));
    await fsp.truncate(payload(dir, e), full.length - 5);
    p = only(await verify(dir, UDID));
    assert.equal(p.kind, 'size');
    assert.match(
      p.problem,
      new RegExp(`${full.length - 5} bytes, Manifest.db says ${full.length}`),
    );

    dir = await good();
    full[7] = full[7]! ^ 0x01;
    await fsp.writeFile(payload(dir, e), full);
    const r = await verify(dir, UDID);
    p = only(r);
    assert.equal(p.kind, 'digest');
    assert.equal(r.hashed, 6);
    // Without hashing, the same damage passes: size only.
    assert.ok((await verify(dir, UDID, { hash: false })).ok);

    // A backup without digests is checked by size: the flip is invisible, the truncation is not.
    dir = await good({ noDigest: true });
    const buf = await fsp.readFile(payload(dir, e));
    buf[0] = buf[0]! ^ 0xff;
    await fsp.writeFile(payload(dir, e), buf);
    const r2 = await verify(dir, UDID);
    assert.ok(r2.ok);
    assert.equal(r2.hashed, 0);
    await fsp.truncate(payload(dir, e), 1);
    assert.equal(only(await verify(dir, UDID)).kind, 'size');
  });

  test(`${reader.name}: a payload that is a symlink is not accepted`, async () => {
    const dir = await good();
    const e = FILES[1]!;
    await fsp.unlink(payload(dir, e));
    await fsp.symlink('/etc/hostname', payload(dir, e));
    assert.equal(only(await verify(dir, UDID)).kind, 'not-a-file');
  });

  test(`${reader.name}: bad Status.plist, Info.plist and Manifest.plist are reported`, async () => {
    let dir = await good();
    await fsp.writeFile(path.join(dir, 'Status.plist'), 'not a plist at all');
    let p = only(await verify(dir, UDID));
    assert.equal(p.kind, 'status-plist');
    assert.match(p.problem, /Status\.plist is not a readable plist/);
    assert.ok(p.problem.includes(dir), 'names the file');

    dir = await good();
    await fsp.writeFile(
      path.join(dir, 'Status.plist'),
      encodeBinaryPlist({ SnapshotState: 'uploading', UUID: 'X' }),
    );
    const r = await verify(dir, UDID);
    assert.equal(r.snapshotState, 'uploading');
    assert.match(only(r).problem, /"uploading", not "finished"/);

    dir = await good();
    await fsp.rm(path.join(dir, 'Status.plist'));
    assert.match(only(await verify(dir, UDID)).problem, /Status\.plist is missing/);

    dir = await good();
    await fsp.writeFile(
      path.join(dir, 'Info.plist'),
      encodeXmlPlist({ 'Target Identifier': 'OTHER' }),
    );
    p = only(await verify(dir, UDID));
    assert.deepEqual(
      [p.kind, p.problem],
      ['info-plist', `Info.plist is of device OTHER, not ${UDID}`],
    );

    dir = await good();
    await fsp.writeFile(path.join(dir, 'Info.plist'), encodeXmlPlist({ 'Device Name': 'x' }));
    assert.match(only(await verify(dir, UDID)).problem, /Info\.plist has no Target Identifier/);

    dir = await good();
    await fsp.writeFile(path.join(dir, 'Manifest.plist'), Buffer.alloc(0));
    assert.equal(only(await verify(dir, UDID)).kind, 'manifest-plist');
  });

  test(`${reader.name}: Manifest.db damage: a missing file, a hostile row, many problems capped`, async () => {
    let dir = await good();
    await fsp.rm(path.join(dir, 'Manifest.db'));
    let r = await verify(dir, UDID);
    assert.equal(only(r).kind, 'manifest-db');
    assert.equal(r.contentsChecked, false);

    dir = await good();
    const db = new Database(path.join(dir, 'Manifest.db'));
    db.prepare(
      "UPDATE Files SET relativePath = '../../etc/passwd' WHERE flags = 1 AND rowid = (SELECT min(rowid) FROM Files WHERE flags = 1)",
    ).run();
    db.close();
    r = await verify(dir, UDID);
    const p = only(r);
    assert.equal(p.kind, 'manifest-row');
    assert.match(p.problem, /unsafe path/);
    assert.equal(r.files, 5); // the rest were still checked

    dir = await good();
    for (const e of FILES) await fsp.unlink(payload(dir, e));
    r = await verify(dir, UDID, { maxProblems: 2 });
    assert.equal(r.problems.length, 2);
    assert.equal(r.problemCount, 6);
  });
}

test('an encrypted backup is checked as far as it can be, and says so', async () => {
  const dir = await good();
  await fsp.writeFile(
    path.join(dir, 'Manifest.plist'),
    encodeBinaryPlist({ IsEncrypted: true, Lockdown: { UniqueDeviceID: UDID } }),
  );
  await fsp.writeFile(path.join(dir, 'Manifest.db'), Buffer.alloc(4096, 0xaa)); // ciphertext
  const r = await verifyBackupFolder(dir, UDID);
  assert.ok(r.ok);
  assert.equal(r.encrypted, true);
  assert.equal(r.contentsChecked, false);
  assert.match(r.notes.join(' '), /encrypted/);
  const missing = await verifyBackupFolder(path.join(dir, 'nope'), UDID);
  assert.equal(only(missing).kind, 'folder');
});
