/**
 * The store's read paths for the agent's snapshot browser: openStoreReadOnly (no folder, no lock,
 * no recovery), listFilesPage (a cursor in SQLite, bounded work per page, damaged rows skipped),
 * diff with a bounded list and exact counts, and the glob matcher that cannot be made to backtrack.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, promises as fsp } from 'node:fs';
import path from 'node:path';
import {
  diffBackups,
  listFiles,
  listFilesPage,
  type FilePosition,
  type FileQuery,
} from '../../src/store/browse';
import { globMatcher } from '../../src/store/glob';
import { DeviceLock } from '../../src/store/lock';
import { openStore, openStoreReadOnly } from '../../src/store';
import { isMooringError } from '../../src/util/errors';
import {
  insertRawFileRow,
  sampleEntries,
  tempDirs,
  UDID,
  writeBackup,
  type FakeEntry,
} from './fixture';

const { tmp, cleanup } = tempDirs('mooring-readonly-');
after(cleanup);

async function backup(entries: FakeEntry[]): Promise<string> {
  const dir = path.join(tmp(), UDID);
  await writeBackup(dir, entries);
  return dir;
}

const key = (e: { domain: string; relativePath: string }): string =>
  `${e.domain}/${e.relativePath}`;

async function all(dir: string, q: FileQuery): Promise<string[]> {
  const out: string[] = [];
  for await (const e of listFiles(dir, q)) out.push(key(e));
  return out;
}

async function paged(
  dir: string,
  q: FileQuery,
  limit: number,
  maxScan?: number,
): Promise<{ names: string[]; pages: number }> {
  const names: string[] = [];
  let after: FilePosition | undefined;
  let pages = 0;
  do {
    const p = await listFilesPage(dir, q, {
      limit,
      ...(after ? { after } : {}),
      ...(maxScan ? { maxScan } : {}),
    });
    assert.ok(p.entries.length <= limit);
    names.push(...p.entries.map(key));
    after = p.next;
    pages++;
    assert.ok(pages < 1000, 'paging ends');
  } while (after);
  return { names, pages };
}

test('glob: * stays in a folder, ** crosses, ?, sets, negation, literal [; case-insensitive', () => {
  const m = (g: string, s: string): boolean => globMatcher(g)(s);
  assert.ok(m('*.jpg', 'IMG_1.JPG'));
  assert.ok(!m('*.jpg', 'a/IMG_1.JPG'));
  assert.ok(m('Library/**.db', 'Library/SMS/deep/sms.db'));
  assert.ok(!m('Library/*.db', 'Library/SMS/sms.db'));
  assert.ok(m('IMG_000[12].*', 'img_0002.heic') && !m('IMG_000[12].*', 'IMG_0003.heic'));
  assert.ok(m('IMG_[0-9]?', 'IMG_42') && !m('IMG_[0-9]?', 'IMG_x2'));
  assert.ok(m('[!a]*', 'b') && !m('[!a]*', 'abc'));
  assert.ok(m('a[b', 'a[b'));
  assert.ok(!m('?', '/'));
  assert.ok(m('**', 'x/y/z') && m('*', '') && !m('?', ''));
});

test('glob: a pattern built to backtrack is answered (linear matching)', () => {
  // As a RegExp (.*a.*a…b) this takes exponential time on a long run of "a".
  const hostile = `${'**a'.repeat(40)}**b`;
  const subject = 'a'.repeat(1024);
  assert.equal(globMatcher(hostile)(subject), false);
  assert.equal(globMatcher(hostile)(`${subject}b`), true);
  const files = `${'*a'.repeat(60)}*b`;
  assert.equal(globMatcher(files)(subject), false);
});

test('listFilesPage: pages join to the full listing; the cursor is a position', async () => {
  const dir = await backup(sampleEntries(25));
  for (const q of [{}, { domain: 'HomeDomain' }, { pattern: '*.JPG' }, { domain: 'Camera*' }]) {
    const whole = await all(dir, q);
    assert.ok(whole.length > 3);
    const { names, pages } = await paged(dir, q, 3);
    assert.deepEqual(names, whole, JSON.stringify(q));
    assert.equal(pages, Math.ceil(whole.length / 3), 'no empty trailing page');
  }
  // Continuing after a position that is not an entry: the next ones in order.
  const after = { domain: 'HomeDomain', relativePath: 'Library/file1' };
  const p = await listFilesPage(dir, {}, { after, limit: 2 });
  assert.deepEqual(p.entries.map(key), [
    'HomeDomain/Library/file10.txt',
    'HomeDomain/Library/file12.txt',
  ]);
  // Past the end: nothing, and no cursor.
  const end = await listFilesPage(
    dir,
    {},
    { after: { domain: '\uffff', relativePath: '' }, limit: 5 },
  );
  assert.deepEqual([end.entries.length, end.next], [0, undefined]);
});

test('listFilesPage: a rare match costs bounded rows per call, with a cursor to go on', async () => {
  const dir = await backup(sampleEntries(40));
  const whole = await all(dir, { pattern: 'IMG_1039.JPG' });
  assert.equal(whole.length, 1);
  const first = await listFilesPage(dir, { pattern: 'IMG_1039.JPG' }, { limit: 10, maxScan: 5 });
  assert.equal(first.entries.length, 0, 'the match is further than 5 rows');
  assert.ok(first.next, 'a cursor to continue');
  const { names, pages } = await paged(dir, { pattern: 'IMG_1039.JPG' }, 10, 5);
  assert.deepEqual(names, whole);
  assert.ok(pages >= 8, `${pages} pages of at most 5 rows`);
});

test('listFilesPage: damaged rows are counted and skipped, the rest is listed', async () => {
  const dir = await backup(sampleEntries(6));
  insertRawFileRow(dir, 'HomeDomain', '../../escape');
  const p = await listFilesPage(dir, {}, { limit: 100 });
  assert.equal(p.invalid, 1);
  assert.equal(p.entries.length, sampleEntries(6).length);
  assert.ok(!p.entries.some((e) => e.relativePath.includes('..')));
});

test('diff with maxEntries: exact counts per domain, lists cut, truncated said', async () => {
  const a = await backup(sampleEntries(20));
  const b = await backup(
    sampleEntries(20)
      .filter((e) => !e.relativePath.endsWith('IMG_1001.JPG'))
      .map((e) => (e.content ? { ...e, content: `${String(e.content)}!` } : e)),
  );
  const full = await diffBackups(a, b);
  assert.equal(full.truncated, undefined, 'unchanged shape without the option');
  const cut = await diffBackups(a, b, { maxEntries: 4 });
  assert.deepEqual([cut.added, cut.removed, cut.changed], [full.added, full.removed, full.changed]);
  assert.equal(full.changed, 19);
  assert.equal(cut.truncated, true);
  const listed = cut.domains.reduce(
    (n, d) => n + d.added.length + d.removed.length + d.changed.length,
    0,
  );
  assert.equal(listed, 4);
  for (const d of cut.domains) {
    const f = full.domains.find((x) => x.domain === d.domain)!;
    assert.deepEqual(d.counts, {
      added: f.added.length,
      removed: f.removed.length,
      changed: f.changed.length,
    });
  }
  assert.equal((await diffBackups(a, b, { maxEntries: 100 })).truncated, false);
});

test('openStoreReadOnly: creates nothing, takes no lock, reads while another holds it', async () => {
  const dest = tmp();
  const ro = openStoreReadOnly(dest, UDID);
  assert.deepEqual(await ro.list(), []);
  assert.equal(existsSync(path.join(dest, '.mooring')), false, 'no folder created');
  await assert.rejects(ro.resolve(), (e) => isMooringError(e, 'USAGE'));

  const store = await openStore(dest, UDID);
  const s1 = await store.beginStaging();
  await writeBackup(s1.backupDir, sampleEntries(4));
  const first = await s1.commit();

  // A backup in progress holds the lock; the reader neither waits for it nor touches it.
  const s2 = await store.beginStaging();
  const lockBefore = await fsp.readFile(store.lockFile, 'utf8');
  const reader = openStoreReadOnly(dest, UDID);
  const list = await reader.list();
  assert.deepEqual(
    list.map((s) => s.id),
    [first.id],
  );
  assert.equal((await reader.resolve('latest')).id, first.id);
  const names: string[] = [];
  for await (const e of reader.files({ pattern: '*.txt' })) names.push(key(e));
  assert.equal(names.length, 2);
  assert.equal(await fsp.readFile(store.lockFile, 'utf8'), lockBefore, 'the lock is untouched');
  // openStore, by contrast, finds it taken and leaves recovery to its owner.
  assert.match((await openStore(dest, UDID)).recovery.skipped ?? '', /in use/);
  await assert.rejects(DeviceLock.acquire(store.lockFile, 'test'), /in use/);

  await writeBackup(s2.backupDir, sampleEntries(5));
  const second = await s2.commit();
  assert.deepEqual(
    (await reader.list()).map((s) => s.id),
    [first.id, second.id],
  );
  assert.throws(
    () => openStoreReadOnly(dest, '../x'),
    (e) => isMooringError(e, 'USAGE'),
  );
});
