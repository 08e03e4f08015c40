import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { PlistUid, decodePlist, encodeBinaryPlist, isPlistDict } from '../../../src/protocol/plist';
import { ContentStore } from '../../../src/sim/content/store';
import { fileIdFor, S_IFDIR, S_IFREG } from '../../../src/sim/content/model';
import { decodeMbFile, encodeMbFile, type MbFileRecord } from '../../../src/sim/backup/mbfile';
import { readManifestDb, writeManifestDb } from '../../../src/sim/backup/manifest-db';
import { manifestRowsFor, planUploads } from '../../../src/sim/backup/backup-session';
import {
  buildManifestPlist,
  buildUnencryptedKeyBag,
  encodeStatusPlist,
  parseKeyBag,
} from '../../../src/sim/backup/plists';
import { isMooringError } from '../../../src/util/errors';

const dirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(path.join(os.tmpdir(), 'mooring-manifest-'));
  dirs.push(d);
  return d;
}
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const REC: MbFileRecord = {
  relativePath: 'Library/SMS/sms.db',
  lastModified: 1_710_000_000,
  lastStatusChange: 1_710_000_001,
  birth: 1_700_000_000,
  size: 40960,
  mode: S_IFREG | 0o644,
  userId: 501,
  groupId: 501,
  inode: 123456,
  protectionClass: 4,
  flags: 0,
  digest: Buffer.alloc(20, 7),
};

test('MBFile is a real NSKeyedArchiver archive and round-trips', () => {
  const buf = encodeMbFile(REC);
  const top = decodePlist(buf);
  assert.ok(isPlistDict(top));
  assert.equal(top.$archiver, 'NSKeyedArchiver');
  assert.equal(top.$version, 100000);
  assert.ok(isPlistDict(top.$top) && top.$top.root instanceof PlistUid);
  const objects = top.$objects as unknown[];
  assert.equal(objects[0], '$null');
  const root = objects[(top.$top.root as PlistUid).value];
  assert.ok(isPlistDict(root as never));
  const r = root as Record<string, unknown>;
  assert.ok(r.RelativePath instanceof PlistUid);
  assert.equal(objects[(r.RelativePath as PlistUid).value], REC.relativePath);
  const cls = objects[(r.$class as PlistUid).value] as Record<string, unknown>;
  assert.deepEqual(cls, { $classname: 'MBFile', $classes: ['MBFile', 'NSObject'] });
  assert.deepEqual(decodeMbFile(buf), REC);
  const link = { ...REC, digest: undefined, target: '../Preferences', mode: 0o120755 };
  delete link.digest;
  assert.deepEqual(decodeMbFile(encodeMbFile(link)), link);
});

test('hostile MBFile archives are refused', () => {
  const wrap = (objects: unknown[], root = 1): Buffer =>
    encodeBinaryPlist({
      $archiver: 'NSKeyedArchiver',
      $version: 100000,
      $top: { root: new PlistUid(root) },
      $objects: objects as never,
    });
  const cls = { $classname: 'MBFile', $classes: ['MBFile', 'NSObject'] };
  const cases: Buffer[] = [
    encodeBinaryPlist(['not', 'a', 'dict']),
    encodeBinaryPlist({ $archiver: 'Other', $objects: [], $top: { root: new PlistUid(1) } }),
    wrap(['$null', { RelativePath: new PlistUid(9), Mode: 1, $class: new PlistUid(2) }, cls]), // UID out of range
    wrap([
      '$null',
      { RelativePath: new PlistUid(2), Mode: 1, $class: new PlistUid(3) },
      'x',
      { $classname: 'NSData' },
    ]),
    wrap(['$null', { RelativePath: new PlistUid(2), $class: new PlistUid(3) }, 'x', cls]), // no Mode
    wrap([
      '$null',
      { RelativePath: new PlistUid(2), Mode: 'x', $class: new PlistUid(3) },
      'x',
      cls,
    ]),
    wrap([
      '$null',
      { RelativePath: new PlistUid(2), Mode: 1, Digest: new PlistUid(2), $class: new PlistUid(3) },
      'x',
      cls,
    ]),
    wrap(['$null'], 5),
    Buffer.from('garbage'),
    Buffer.concat([Buffer.from('bplist00'), Buffer.alloc(70_000)]),
  ];
  for (const [i, c] of cases.entries()) {
    assert.throws(
      () => decodeMbFile(c),
      (e) => isMooringError(e, 'MALFORMED') || isMooringError(e, 'LIMIT'),
      `case ${i}`,
    );
  }
});

test('Manifest.db has the real schema and is readable by the sqlite3 CLI and plistutil', async () => {
  const dir = tmp();
  const store = await ContentStore.open(dir, { files: 40, bytes: 500_000, seed: 3 });
  const entries = store.snapshot();
  const db = path.join(dir, 'Manifest.db');
  assert.equal(writeManifestDb(db, manifestRowsFor(entries)), entries.length);

  const schema = execFileSync('sqlite3', [db, '.schema'], { encoding: 'utf8' });
  assert.match(
    schema,
    /CREATE TABLE Files \(fileID TEXT PRIMARY KEY, domain TEXT, relativePath TEXT, flags INTEGER, file BLOB\)/,
  );
  assert.match(schema, /CREATE TABLE Properties \(key TEXT PRIMARY KEY, value BLOB\)/);
  assert.match(schema, /CREATE INDEX \w+ ON Files\(domain\)/);
  const counts = execFileSync(
    'sqlite3',
    [db, 'SELECT flags, count(*) FROM Files GROUP BY flags ORDER BY flags'],
    {
      encoding: 'utf8',
    },
  );
  const byType = (t: string): number => entries.filter((e) => e.type === t).length;
  assert.equal(counts.trim(), `1|${byType('file')}\n2|${byType('dir')}\n4|${byType('symlink')}`);
  const id = execFileSync(
    'sqlite3',
    [db, "SELECT fileID FROM Files WHERE relativePath = 'Library/SMS/sms.db'"],
    {
      encoding: 'utf8',
    },
  );
  assert.equal(id.trim(), '3d0d7e5fb2ce288813306e4d4636395e047a3d28');

  // A blob extracted by the sqlite3 CLI, converted by libplist's plistutil.
  const blobFile = path.join(dir, 'blob.bplist');
  execFileSync('sqlite3', [
    db,
    `SELECT writefile('${blobFile}', file) FROM Files WHERE fileID = '${id.trim()}'`,
  ]);
  const xml = execFileSync('plistutil', ['-i', blobFile, '-f', 'xml'], { encoding: 'utf8' });
  assert.match(xml, /<string>NSKeyedArchiver<\/string>/);
  assert.match(xml, /<string>Library\/SMS\/sms.db<\/string>/);
  assert.match(xml, /<string>MBFile<\/string>/);

  const rows = readManifestDb(db);
  assert.equal(rows.length, entries.length);
  const sms = rows.find((r) => r.relativePath === 'Library/SMS/sms.db')!;
  const e = entries.find((x) => x.relativePath === 'Library/SMS/sms.db')!;
  assert.equal(sms.flags, 1);
  assert.equal(sms.file.size, e.size);
  assert.equal(sms.file.lastModified, e.mtime);
  assert.equal(sms.file.digest?.toString('hex'), e.sha1);
  const dirRow = rows.find((r) => r.flags === 2)!;
  assert.equal(dirRow.file.mode & 0o170000, S_IFDIR);
  const link = rows.find((r) => r.flags === 4)!;
  assert.ok(link.file.target);
});

function corruptDb(
  dir: string,
  name: string,
  sql: string,
  rows: Array<[string, string, string, number, Buffer]>,
): string {
  const file = path.join(dir, name);
  const db = new Database(file);
  db.exec(sql);
  for (const r of rows) db.prepare('INSERT INTO Files VALUES (?, ?, ?, ?, ?)').run(...r);
  db.close();
  return file;
}

test('readManifestDb refuses hostile manifests', () => {
  const dir = tmp();
  const schema =
    'CREATE TABLE Files (fileID TEXT PRIMARY KEY, domain TEXT, relativePath TEXT, flags INTEGER, file BLOB)';
  const good = (rel: string, mode = S_IFREG | 0o644): Buffer =>
    encodeMbFile({ ...REC, relativePath: rel, mode });
  const row = (
    domain: string,
    rel: string,
    flags = 1,
    file = good(rel),
  ): [string, string, string, number, Buffer] => [fileIdFor(domain, rel), domain, rel, flags, file];
  const garbage = path.join(dir, 'garbage.db');
  writeFileSync(garbage, Buffer.alloc(4096, 0x42));
  const cases: Array<[string, string]> = [
    ['garbage', garbage],
    ['missing', path.join(dir, 'nope.db')],
    ['no Files table', corruptDb(dir, 'a.db', 'CREATE TABLE Other (x)', [])],
    ['path escape', corruptDb(dir, 'b.db', schema, [row('HomeDomain', '../../etc/passwd')])],
    ['absolute path', corruptDb(dir, 'c.db', schema, [row('HomeDomain', '/etc/passwd')])],
    ['domain with slash', corruptDb(dir, 'd.db', schema, [row('Home/Domain', 'x')])],
    [
      'bad fileID',
      corruptDb(dir, 'e.db', schema, [['0'.repeat(40), 'HomeDomain', 'x', 1, good('x')]]),
    ],
    ['unknown flags', corruptDb(dir, 'f.db', schema, [row('HomeDomain', 'x', 3)])],
    [
      'not an MBFile',
      corruptDb(dir, 'g.db', schema, [row('HomeDomain', 'x', 1, Buffer.from('nope'))]),
    ],
    ['mode disagrees', corruptDb(dir, 'h.db', schema, [row('HomeDomain', 'x', 2, good('x'))])],
    ['path mismatch', corruptDb(dir, 'i.db', schema, [row('HomeDomain', 'x', 1, good('y'))])],
    [
      'symlink without target',
      corruptDb(dir, 'j.db', schema, [row('HomeDomain', 'x', 4, good('x', 0o120755))]),
    ],
  ];
  for (const [what, file] of cases) {
    assert.throws(
      () => readManifestDb(file),
      (e) => isMooringError(e, 'MALFORMED'),
      what,
    );
  }
  const many = corruptDb(dir, 'k.db', schema, [
    row('HomeDomain', 'a'),
    row('HomeDomain', 'b'),
    row('HomeDomain', 'c'),
  ]);
  assert.throws(
    () => readManifestDb(many, 2),
    (e) => isMooringError(e, 'LIMIT'),
  );
  assert.equal(readManifestDb(many).length, 3);
});

test('planUploads: full uploads every file, incremental only the changed ones', async () => {
  const dir = tmp();
  const store = await ContentStore.open(dir, { files: 30, bytes: 300_000, seed: 4 });
  const before = store.snapshot();
  const db = path.join(dir, 'prev.db');
  writeManifestDb(db, manifestRowsFor(before));
  const prev = readManifestDb(db);
  const full = planUploads(before, undefined);
  assert.equal(full.uploads.length, 30);
  assert.equal(planUploads(before, prev).uploads.length, 0);
  const r = await store.mutate({ add: 2, modify: 3, delete: 4 });
  const inc = planUploads(store.snapshot(), prev);
  const uploaded = inc.uploads.map((p) => `${p.entry.domain}/${p.entry.relativePath}`).sort();
  assert.deepEqual(uploaded, [...r.added, ...r.modified].sort());
  assert.deepEqual(
    inc.deleted.sort(),
    r.deleted.map((p) => fileIdFor(p.slice(0, p.indexOf('/')), p.slice(p.indexOf('/') + 1))).sort(),
  );
});

test('Status.plist, Manifest.plist and the keybag have the documented shape', () => {
  const status = decodePlist(
    encodeStatusPlist({
      uuid: 'ABC',
      isFullBackup: true,
      snapshotState: 'finished',
      date: new Date(1_700_000_000_500),
    }),
  );
  assert.deepEqual(status, {
    BackupState: 'new',
    Date: new Date(1_700_000_000_000),
    IsFullBackup: true,
    SnapshotState: 'finished',
    UUID: 'ABC',
    Version: '3.3',
  });
  const bag = buildUnencryptedKeyBag();
  const tlvs = parseKeyBag(bag);
  assert.deepEqual(
    tlvs.slice(0, 7).map((t) => t.tag),
    ['VERS', 'TYPE', 'UUID', 'HMCK', 'WRAP', 'SALT', 'ITER'],
  );
  assert.equal(tlvs.filter((t) => t.tag === 'CLAS').length, 11);
  assert.throws(() => parseKeyBag(Buffer.concat([bag, Buffer.from('VERS\0\0\0\x09')])));
  const m = buildManifestPlist({
    values: { DeviceName: 'Phone', ProductVersion: '17.5', UniqueDeviceID: 'X-1', Junk: () => 1 },
    domain: (n) => (n === 'com.apple.mobile.data_sync' ? { Contacts: { Enabled: true } } : {}),
    apps: [],
    keyBag: bag,
    wasPasscodeSet: true,
    date: new Date(0),
  });
  const back = decodePlist(encodeBinaryPlist(m));
  assert.ok(isPlistDict(back));
  assert.equal(back.IsEncrypted, false);
  assert.ok(Buffer.isBuffer(back.BackupKeyBag));
  assert.ok(isPlistDict(back.Lockdown));
  assert.equal(back.Lockdown.UniqueDeviceID, 'X-1');
  assert.deepEqual(back.Lockdown['com.apple.mobile.data_sync'], { Contacts: { Enabled: true } });
  assert.equal(back.Lockdown.Junk, undefined);
  assert.equal(typeof back.Version, 'string');
  assert.equal(typeof back.SystemDomainsVersion, 'string');
});
