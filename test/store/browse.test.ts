/** files / extract / diff on synthetic backups, including hostile ones. */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, promises as fsp, readFileSync } from 'node:fs';
import path from 'node:path';
import { encodeBinaryPlist } from '../../src/protocol/plist';
import { fileIdFor } from '../../src/format/file-id';
import { diffBackups, extractFiles, fileMatcher, listFiles } from '../../src/store/browse';
import { isMooringError } from '../../src/util/errors';
import { insertRawFileRow, tempDirs, UDID, writeBackup, type FakeEntry } from './fixture';

const { tmp, cleanup } = tempDirs('mooring-browse-');
after(cleanup);

const ENTRIES: FakeEntry[] = [
  { domain: 'HomeDomain', relativePath: 'Library', type: 'dir', mtime: 1_600_000_000 },
  { domain: 'HomeDomain', relativePath: 'Library/SMS', type: 'dir' },
  {
    domain: 'HomeDomain',
    relativePath: 'Library/SMS/sms.db',
    content: 'messages',
    mtime: 1_650_000_000,
  },
  { domain: 'HomeDomain', relativePath: 'Library/Notes/notes.txt', content: 'notes' },
  { domain: 'HomeDomain', relativePath: 'Library/sms-link', type: 'symlink', target: 'SMS/sms.db' },
  {
    domain: 'HomeDomain',
    relativePath: 'Library/evil-link',
    type: 'symlink',
    target: '../../../etc',
  },
  {
    domain: 'CameraRollDomain',
    relativePath: 'Media/DCIM/100APPLE/IMG_0001.JPG',
    content: 'jpeg1',
  },
  {
    domain: 'CameraRollDomain',
    relativePath: 'Media/DCIM/100APPLE/IMG_0002.jpg',
    content: 'jpeg2',
  },
  { domain: 'AppDomain-com.example.app', relativePath: 'Documents/a.txt', content: 'app' },
];

async function backup(entries: FakeEntry[], opts: { noDigest?: boolean } = {}): Promise<string> {
  const dir = path.join(tmp(), UDID);
  await writeBackup(dir, entries, opts);
  return dir;
}

async function names(dir: string, q: Parameters<typeof listFiles>[1]): Promise<string[]> {
  const out: string[] = [];
  for await (const e of listFiles(dir, q)) out.push(`${e.domain}/${e.relativePath}`);
  return out;
}

test('patterns: substring, file-name glob, path glob, domain glob; case-insensitive', async () => {
  const dir = await backup(ENTRIES);
  assert.deepEqual(await names(dir, { pattern: '*.jpg' }), [
    'CameraRollDomain/Media/DCIM/100APPLE/IMG_0001.JPG',
    'CameraRollDomain/Media/DCIM/100APPLE/IMG_0002.jpg',
  ]);
  assert.deepEqual(await names(dir, { pattern: 'sms' }), [
    'HomeDomain/Library/SMS',
    'HomeDomain/Library/SMS/sms.db',
    'HomeDomain/Library/sms-link',
  ]);
  assert.deepEqual(await names(dir, { pattern: 'Library/*' }), [
    'HomeDomain/Library/SMS',
    'HomeDomain/Library/evil-link',
    'HomeDomain/Library/sms-link',
  ]);
  assert.deepEqual(await names(dir, { pattern: 'Library/**.db' }), [
    'HomeDomain/Library/SMS/sms.db',
  ]);
  assert.deepEqual(await names(dir, { domain: 'AppDomain-*' }), [
    'AppDomain-com.example.app/Documents/a.txt',
  ]);
  assert.equal((await names(dir, { domain: 'HomeDomain' })).length, 6);
  assert.equal((await names(dir, {})).length, ENTRIES.length);
  const m = fileMatcher({ pattern: 'IMG_000[12].*' });
  assert.ok(m('X', 'a/IMG_0001.JPG') && !m('X', 'a/IMG_0003.JPG'));
  const entries = [];
  for await (const e of listFiles(dir, { pattern: 'sms.db' })) entries.push(e);
  assert.equal(entries[0]!.type, 'file');
  assert.equal(entries[0]!.size, 8);
  assert.equal(entries[0]!.mtime.getTime(), 1_650_000_000_000);
  assert.match(entries[0]!.digest ?? '', /^[0-9a-f]{40}$/);
});

test('extract recreates domain/relativePath with mtimes, and nothing escapes `to`', async () => {
  const dir = await backup(ENTRIES);
  // Hostile rows the device could have written: an escaping path and a file beneath a link.
  insertRawFileRow(dir, 'HomeDomain', '../../../escape');

  const to = tmp();
  const outside = tmp();
  // A link left in `to` by an earlier extraction (or anyone) pointing outside.
  await fsp.mkdir(path.join(to, 'AppDomain-com.example.app'), { recursive: true });
  await fsp.symlink(outside, path.join(to, 'AppDomain-com.example.app', 'Documents'));

  const r = await extractFiles(dir, {}, to);
  assert.equal(r.files, 4); // a.txt would have gone through the planted link
  assert.equal(r.symlinks, 1);
  const skipped = r.skipped.map((s) => `${s.domain}/${s.relativePath}: ${s.problem}`).join('\n');
  assert.match(skipped, /HomeDomain\/\.\.\/\.\.\/\.\.\/escape: unsafe path/);
  assert.match(skipped, /evil-link: symlink target "..\/..\/..\/etc" leaves its domain/);
  assert.match(skipped, /Documents\/a\.txt: .*resolves outside/);
  assert.deepEqual(await fsp.readdir(outside), []);
  assert.equal(existsSync(path.join(to, '..', 'escape')), false);

  assert.equal(readFileSync(path.join(to, 'HomeDomain/Library/SMS/sms.db'), 'utf8'), 'messages');
  assert.equal(readFileSync(path.join(to, 'HomeDomain/Library/sms-link'), 'utf8'), 'messages');
  const st = await fsp.stat(path.join(to, 'HomeDomain/Library/SMS/sms.db'));
  assert.equal(st.mtimeMs, 1_650_000_000_000);
  assert.equal((await fsp.stat(path.join(to, 'HomeDomain/Library'))).mtimeMs, 1_600_000_000_000);

  // Extracting again replaces files (a link planted at a file's place is replaced, not followed).
  const planted = path.join(to, 'HomeDomain/Library/Notes/notes.txt');
  await fsp.rm(planted);
  const victim = path.join(outside, 'victim');
  await fsp.writeFile(victim, 'keep me');
  await fsp.symlink(victim, planted);
  const again = await extractFiles(dir, { pattern: 'notes.txt' }, to);
  assert.equal(again.files, 1);
  assert.equal(readFileSync(victim, 'utf8'), 'keep me');
  assert.equal((await fsp.lstat(planted)).isFile(), true);
  assert.equal(readFileSync(planted, 'utf8'), 'notes');

  // A missing payload is reported, not fatal.
  const dir2 = await backup(ENTRIES);
  await fsp.rm(path.join(dir2, fileIdFor('HomeDomain', 'Library/SMS/sms.db').slice(0, 2)), {
    recursive: true,
  });
  const r2 = await extractFiles(dir2, { pattern: 'sms.db' }, tmp());
  assert.equal(r2.files, 0);
  assert.match(r2.skipped[0]!.problem, /payload is missing/);
});

test('diff groups added, removed and changed by domain, by digest when there is one', async () => {
  const a = await backup(ENTRIES);
  const next = ENTRIES.filter((e) => !e.relativePath.endsWith('IMG_0001.JPG')).map((e) => {
    if (e.relativePath === 'Library/Notes/notes.txt') return { ...e, content: 'NOTES' };
    if (e.relativePath === 'Library/SMS') return { ...e, mtime: 1 }; // a folder's mtime: no change
    return e;
  });
  next.push({
    domain: 'CameraRollDomain',
    relativePath: 'Media/DCIM/100APPLE/IMG_0003.JPG',
    content: 'new',
  });
  const b = await backup(next);
  const d = await diffBackups(a, b);
  assert.deepEqual(
    d.domains.map((x) => [
      x.domain,
      x.added.map((e) => e.relativePath),
      x.removed.map((e) => e.relativePath),
      x.changed.map((e) => [e.relativePath, e.changes]),
    ]),
    [
      [
        'CameraRollDomain',
        ['Media/DCIM/100APPLE/IMG_0003.JPG'],
        ['Media/DCIM/100APPLE/IMG_0001.JPG'],
        [],
      ],
      ['HomeDomain', [], [], [['Library/Notes/notes.txt', ['content']]]],
    ],
  );
  assert.deepEqual([d.added, d.removed, d.changed], [1, 1, 1]);
  assert.deepEqual(await diffBackups(a, a), {
    domains: [],
    added: 0,
    removed: 0,
    changed: 0,
    invalidRows: 0,
  });

  // Without digests a new mtime is what tells a changed file.
  const c = await backup(ENTRIES, { noDigest: true });
  const e2 = ENTRIES.map((e) =>
    e.relativePath === 'Documents/a.txt' ? { ...e, mtime: 1_800_000_000 } : e,
  );
  const c2 = await backup(e2, { noDigest: true });
  const dc = await diffBackups(c, c2);
  assert.deepEqual(
    dc.domains.map((x) => x.changed.map((e) => e.changes)),
    [[['mtime']]],
  );
});

test('encrypted backups are refused for browsing', async () => {
  const dir = await backup(ENTRIES);
  await fsp.writeFile(path.join(dir, 'Manifest.plist'), encodeBinaryPlist({ IsEncrypted: true }));
  await assert.rejects(
    names(dir, {}),
    (e) => isMooringError(e, 'USAGE') && /encrypted/.test(e.message),
  );
  await assert.rejects(extractFiles(dir, {}, tmp()), (e) => isMooringError(e, 'USAGE'));
  await assert.rejects(diffBackups(dir, dir), (e) => isMooringError(e, 'USAGE'));
});
