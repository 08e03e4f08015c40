import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { promises as fsp, readFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { decodePlist, isPlistDict } from '../../../src/protocol/plist';
import { ContentStore, INDEX_FILE } from '../../../src/sim/content/store';
import type { ListingJson } from '../../../src/sim/content/model';
import { targetStaysInDomain } from '../../../src/format/file-id';
import { S_IFMT, S_IFREG } from '../../../src/format/mbfile';
import { isMooringError } from '../../../src/util/errors';
import { tempDirs } from '../../helpers/temp-dirs';

const { tmp, cleanup } = tempDirs('mooring-content-');
after(cleanup);

const SMALL = { files: 60, bytes: 2_000_000, seed: 7 };

function fingerprint(l: ListingJson): string {
  return createHash('sha256').update(JSON.stringify(l)).digest('hex');
}

test('same seed gives the same tree; another seed another tree', async () => {
  const a = await (await ContentStore.open(tmp(), SMALL)).listing();
  const b = await (await ContentStore.open(tmp(), SMALL)).listing();
  const c = await (await ContentStore.open(tmp(), { ...SMALL, seed: 8 })).listing();
  assert.equal(fingerprint(a), fingerprint(b));
  assert.notEqual(fingerprint(a), fingerprint(c));
});

test('the tree honours --files and --bytes and looks like a phone', async () => {
  const store = await ContentStore.open(tmp(), SMALL);
  const l = await store.listing();
  assert.equal(l.files, 60);
  assert.equal(l.bytes, 2_000_000);
  const files = l.entries.filter((e) => e.type === 'file');
  assert.equal(
    files.reduce((a, e) => a + e.size, 0),
    2_000_000,
  );
  const has = (domain: string, re: RegExp): boolean =>
    files.some((e) => e.domain === domain && re.test(e.relativePath));
  assert.ok(has('HomeDomain', /^Library\/SMS\/sms\.db$/));
  assert.ok(has('HomeDomain', /^Library\/AddressBook\/AddressBook\.sqlitedb$/));
  assert.ok(has('HomeDomain', /^Library\/Preferences\/.+\.plist$/));
  assert.ok(has('CameraRollDomain', /^Media\/DCIM\/100APPLE\/IMG_\d{4}\.HEIC$/));
  assert.ok(files.some((e) => e.domain.startsWith('AppDomain-')));
  assert.ok(files.some((e) => e.domain.startsWith('AppDomainGroup-')));
  // Sorted by domain, then path.
  const keys = l.entries.map((e) => `${e.domain}\u0000${e.relativePath}`);
  assert.deepEqual(keys, [...keys].sort());
  // Skewed sizes: the biggest tenth of the files holds most of the bytes.
  const sizes = files.map((e) => e.size).sort((x, y) => y - x);
  const top = sizes.slice(0, Math.ceil(sizes.length / 10)).reduce((a, b) => a + b, 0);
  assert.ok(top > l.bytes / 2, `top 10% hold ${top} of ${l.bytes}`);
  // Every file's folder exists as a directory entry; modes carry the type bits.
  const dirSet = new Set(
    l.entries.filter((e) => e.type === 'dir').map((e) => `${e.domain}/${e.relativePath}`),
  );
  for (const f of files) {
    assert.equal(f.mode & S_IFMT, S_IFREG);
    const parent = f.relativePath.split('/').slice(0, -1).join('/');
    assert.ok(dirSet.has(`${f.domain}/${parent}`), `missing dir for ${f.relativePath}`);
    assert.match(f.sha256 ?? '', /^[0-9a-f]{64}$/);
  }
  const links = l.entries.filter((e) => e.type === 'symlink');
  assert.ok(links.length >= 2);
  for (const s of links)
    assert.ok(s.target && targetStaysInDomain(s.relativePath, s.target), s.relativePath);
});

test('blobs on disk match the listing, and the structured files are real', async () => {
  const store = await ContentStore.open(tmp(), SMALL);
  assert.deepEqual(await store.verifyBlobs(), []);
  const entries = store.snapshot();
  const sms = entries.find((e) => e.relativePath === 'Library/SMS/sms.db')!;
  const db = new Database(store.blobPath(sms), { readonly: true });
  try {
    const n = (db.prepare('SELECT count(*) AS n FROM message').get() as { n: number }).n;
    assert.ok(n >= 40);
  } finally {
    db.close();
  }
  const pref = entries.find(
    (e) => e.relativePath === 'Library/Preferences/com.apple.springboard.plist',
  )!;
  const bytes = readFileSync(store.blobPath(pref));
  assert.equal(bytes.subarray(0, 8).toString('latin1'), 'bplist00');
  assert.ok(isPlistDict(decodePlist(bytes)));
  assert.equal(createHash('sha256').update(bytes).digest('hex'), pref.sha256);
  const heic = entries.find((e) => e.relativePath.endsWith('.HEIC'))!;
  const head = readFileSync(store.blobPath(heic)).subarray(4, 12).toString('latin1');
  assert.equal(head, 'ftypheic');
});

test('reopening is the same device; options only matter the first time', async () => {
  const dir = tmp();
  const a = await (await ContentStore.open(dir, SMALL)).listing();
  const b = await (await ContentStore.open(dir, { files: 5, bytes: 10, seed: 99 })).listing();
  assert.deepEqual(b, a);
});

test('mutate is deterministic and does what it says', async () => {
  const s1 = await ContentStore.open(tmp(), SMALL);
  const s2 = await ContentStore.open(tmp(), SMALL);
  const before = await s1.listing();
  const r1 = await s1.mutate({ add: 3, modify: 4, delete: 2 });
  const r2 = await s2.mutate({ add: 3, modify: 4, delete: 2 });
  assert.deepEqual(r1, r2);
  const after1 = await s1.listing();
  assert.equal(fingerprint(after1), fingerprint(await s2.listing()));
  assert.equal(r1.added.length, 3);
  assert.equal(r1.modified.length, 4);
  assert.equal(r1.deleted.length, 2);
  assert.equal(after1.files, before.files + 3 - 2);
  const byPath = (l: ListingJson): Map<string, (typeof l.entries)[number]> =>
    new Map(l.entries.map((e) => [`${e.domain}/${e.relativePath}`, e]));
  const b = byPath(before);
  const a = byPath(after1);
  for (const p of r1.deleted) assert.ok(b.has(p) && !a.has(p));
  for (const p of r1.added) assert.ok(!b.has(p) && a.get(p)?.type === 'file');
  for (const p of r1.modified) {
    assert.notEqual(a.get(p)!.sha256, b.get(p)!.sha256);
    assert.ok(a.get(p)!.mtime > b.get(p)!.mtime);
  }
  // The next step differs from the first.
  const r3 = await s1.mutate({ add: 3 });
  assert.notDeepEqual(r3.added, r1.added);
  assert.deepEqual(await s1.verifyBlobs(), []);
});

test('wipe erases all content; mutate still works afterwards', async () => {
  const dir = tmp();
  const store = await ContentStore.open(dir, SMALL);
  await store.wipe();
  const l = await store.listing();
  assert.deepEqual(l, { files: 0, directories: 0, symlinks: 0, bytes: 0, entries: [] });
  await assert.rejects(fsp.stat(path.join(dir, 'content', 'blobs')), /ENOENT/);
  assert.ok(store.apps().length >= 3, 'apps stay installed');
  const reopened = await (await ContentStore.open(dir, SMALL)).listing();
  assert.equal(reopened.entries.length, 0);
  const r = await store.mutate({ add: 2, modify: 5, delete: 5 });
  assert.equal(r.added.length, 2);
  assert.equal(r.modified.length, 0);
  assert.equal((await store.listing()).files, 2);
});

test('applyRestore commits staged bytes and metadata', async () => {
  const src = await ContentStore.open(tmp(), SMALL);
  const dst = await ContentStore.open(tmp(), { ...SMALL, seed: 1 });
  await dst.wipe();
  const items = [];
  for (const e of src.snapshot()) {
    if (e.type !== 'file') {
      items.push({ entry: e });
      continue;
    }
    const w = await dst.stagingWriter();
    await w.write(readFileSync(src.blobPath(e)));
    await w.close();
    items.push({ entry: e, stagedPath: w.tmpPath });
  }
  await dst.applyRestore(items, { inScope: () => true, removeNotRestored: true });
  assert.deepEqual(await dst.listing(), await src.listing());
  assert.deepEqual(await dst.verifyBlobs(), []);
});

test('applyRestore keeps out-of-scope entries and removes in-scope leftovers only when asked', async () => {
  const store = await ContentStore.open(tmp(), SMALL);
  const before = await store.listing();
  const appOnly = (d: string): boolean => d.startsWith('AppDomain');
  await store.applyRestore([], { inScope: (d) => appOnly(d), removeNotRestored: false });
  assert.deepEqual(await store.listing(), before);
  await store.applyRestore([], { inScope: (d) => appOnly(d), removeNotRestored: true });
  const l = await store.listing();
  assert.ok(l.entries.every((e) => !appOnly(e.domain)));
  assert.equal(l.entries.length, before.entries.filter((e) => !appOnly(e.domain)).length);
  assert.deepEqual(await store.verifyBlobs(), []);
});

test('bad options and a corrupt index are refused clearly', async () => {
  await assert.rejects(ContentStore.open(tmp(), { files: -1 }), (e) => isMooringError(e, 'USAGE'));
  await assert.rejects(ContentStore.open(tmp(), { bytes: 1.5 }), (e) => isMooringError(e, 'USAGE'));
  const store = await ContentStore.open(tmp(), SMALL);
  await assert.rejects(store.mutate({ add: -3 }), (e) => isMooringError(e, 'USAGE'));
  const dir = tmp();
  await fsp.mkdir(path.join(dir, 'content'), { recursive: true });
  await fsp.writeFile(path.join(dir, 'content', INDEX_FILE), '{"format":"other"}');
  await assert.rejects(ContentStore.open(dir, SMALL), (e) => isMooringError(e, 'IO'));
  await fsp.writeFile(path.join(dir, 'content', INDEX_FILE), '{not json');
  await assert.rejects(ContentStore.open(dir, SMALL), (e) => isMooringError(e, 'IO'));
});

test('a tiny budget keeps the realistic files first', async () => {
  const l = await (await ContentStore.open(tmp(), { files: 3, bytes: 0, seed: 2 })).listing();
  assert.equal(l.files, 3);
  assert.deepEqual(
    l.entries
      .filter((e) => e.type === 'file')
      .map((e) => e.relativePath)
      .sort(),
    [
      'Library/AddressBook/AddressBook.sqlitedb',
      'Library/Preferences/.GlobalPreferences.plist',
      'Library/SMS/sms.db',
    ],
  );
});
