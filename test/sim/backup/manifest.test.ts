import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { decodePlist, encodeBinaryPlist, isPlistDict } from '../../../src/protocol/plist';
import { ContentStore } from '../../../src/sim/content/store';
import { fileIdFor } from '../../../src/format/file-id';
import { S_IFDIR } from '../../../src/format/mbfile';
import { readManifestDb, writeManifestDb } from '../../../src/format/manifest-db';
import { encodeStatusPlist } from '../../../src/format/status-plist';
import { parseKeyBag } from '../../../src/format/keybag';
import { manifestRowsFor, planUploads } from '../../../src/sim/backup/backup-session';
import { buildManifestPlist, buildUnencryptedKeyBag } from '../../../src/sim/backup/plists';
import { tempDirs } from '../../helpers/temp-dirs';

const { tmp, cleanup } = tempDirs('mooring-manifest-');
after(cleanup);

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
