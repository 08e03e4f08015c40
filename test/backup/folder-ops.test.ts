/**
 * The per-file filesystem work of a backup, now done with synchronous calls: moveItem's one-rename
 * fast path and its fallbacks, removeItem of a file, a tree or nothing, and TempFile's small
 * (synchronous) and large (thread-pool) writes still obeying THE RULE (a new inode, renamed over).
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, promises as fsp, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  createDirectory,
  listDirectory,
  moveFolderOfFiles,
  moveItem,
  removeItem,
} from '../../src/backup/folder-ops';
import { buildInfoPlist } from '../../src/backup/info-plist';
import { SYNC_WRITE_MAX_BYTES, TempFile } from '../../src/backup/atomic-file';

const root = mkdtempSync(path.join(os.tmpdir(), 'mooring-folder-ops-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const fresh = async (): Promise<string> => {
  const d = path.join(root, String(n++));
  await fsp.mkdir(d);
  return d;
};

test('createDirectory: creates missing levels below the root; an existing folder is fine', async () => {
  const d = await fresh();
  const deep = path.join(d, 'UDID', 'aa', 'bb');
  await createDirectory(d, deep);
  assert.equal((await fsp.lstat(deep)).isDirectory(), true);
  await createDirectory(d, deep); // again: success
  await fsp.writeFile(path.join(d, 'UDID', 'file'), 'x');
  await assert.rejects(createDirectory(d, path.join(d, 'UDID', 'file')), { code: 'EEXIST' });
  await assert.rejects(createDirectory(d, path.join(d, 'UDID', 'file', 'below')), {
    code: 'ENOTDIR',
  });
  await assert.rejects(createDirectory(d, path.join(root, 'elsewhere')), { code: 'EINVAL' });
});

test('createDirectory: a removed backup folder is not re-created (ENOENT), at any depth', async () => {
  const d = await fresh();
  const staging = path.join(d, 'dest', 'staging');
  await fsp.mkdir(staging, { recursive: true });
  await fsp.rm(path.join(d, 'dest'), { recursive: true });
  for (const dir of [path.join(staging, 'UDID'), path.join(staging, 'UDID', 'aa', 'bb')]) {
    await assert.rejects(createDirectory(staging, dir), { code: 'ENOENT' });
  }
  await assert.rejects(fsp.lstat(path.join(d, 'dest')), { code: 'ENOENT' });
});

test('moveItem: a file over a file replaces the name, never the shared inode', async () => {
  const d = await fresh();
  await fsp.writeFile(path.join(d, 'new'), 'new');
  await fsp.writeFile(path.join(d, 'old'), 'old');
  await fsp.link(path.join(d, 'old'), path.join(d, 'older-snapshot'));
  await moveItem(path.join(d, 'new'), path.join(d, 'old'));
  assert.equal(await fsp.readFile(path.join(d, 'old'), 'utf8'), 'new');
  assert.equal(await fsp.readFile(path.join(d, 'older-snapshot'), 'utf8'), 'old');
  await assert.rejects(fsp.lstat(path.join(d, 'new')), { code: 'ENOENT' });
});

test('moveItem: a missing source fails with ENOENT and leaves the destination alone', async () => {
  const d = await fresh();
  await fsp.mkdir(path.join(d, 'dst'));
  await fsp.writeFile(path.join(d, 'dst', 'f'), 'keep');
  await assert.rejects(moveItem(path.join(d, 'nothing'), path.join(d, 'dst')), {
    code: 'ENOENT',
  });
  await assert.rejects(moveItem(path.join(d, 'nothing'), path.join(d, 'nothing')), {
    code: 'ENOENT',
  });
  assert.equal(await fsp.readFile(path.join(d, 'dst', 'f'), 'utf8'), 'keep');
});

test('moveItem: folders and files in each other’s way are replaced', async () => {
  const d = await fresh();
  // A file over a non-empty folder (rename says EISDIR).
  await fsp.writeFile(path.join(d, 'f'), 'file');
  await fsp.mkdir(path.join(d, 'dir1', 'sub'), { recursive: true });
  await moveItem(path.join(d, 'f'), path.join(d, 'dir1'));
  assert.equal(await fsp.readFile(path.join(d, 'dir1'), 'utf8'), 'file');
  // A folder over a file (ENOTDIR).
  await fsp.mkdir(path.join(d, 'dir2'));
  await fsp.writeFile(path.join(d, 'dir2', 'x'), 'x');
  await moveItem(path.join(d, 'dir2'), path.join(d, 'dir1'));
  assert.equal(await fsp.readFile(path.join(d, 'dir1', 'x'), 'utf8'), 'x');
  // A folder over a non-empty folder (ENOTEMPTY), and over an empty one (plain rename).
  await fsp.mkdir(path.join(d, 'dir3'));
  await fsp.writeFile(path.join(d, 'dir3', 'y'), 'y');
  await moveItem(path.join(d, 'dir3'), path.join(d, 'dir1'));
  assert.deepEqual(await fsp.readdir(path.join(d, 'dir1')), ['y']);
  await fsp.mkdir(path.join(d, 'empty'));
  await moveItem(path.join(d, 'dir1'), path.join(d, 'empty'));
  assert.deepEqual(await fsp.readdir(path.join(d, 'empty')), ['y']);
  // Onto itself: nothing happens.
  await moveItem(path.join(d, 'empty'), path.join(d, 'empty'));
  assert.deepEqual(await fsp.readdir(d), ['empty']);
});

/** A folder `src` with `names` in it, and an empty `dst` beside it. */
async function stagedFolder(names: string[]): Promise<{ src: string; dst: string }> {
  const d = await fresh();
  const src = path.join(d, 'Snapshot', 'ab');
  const dst = path.join(d, 'ab');
  await fsp.mkdir(src, { recursive: true, mode: 0o750 });
  await fsp.chmod(src, 0o750);
  await fsp.mkdir(dst);
  for (const name of names) await fsp.writeFile(path.join(src, name), name);
  return { src, dst };
}

test('moveFolderOfFiles (D38): the files land under their names, same inodes; the source folder stays, empty, with its mode', async () => {
  const { src, dst } = await stagedFolder(['ab01', 'ab02', 'ab03']);
  const inodes = await Promise.all(
    ['ab01', 'ab02', 'ab03'].map((n) => fsp.stat(path.join(src, n))),
  );
  assert.equal(moveFolderOfFiles(src, dst, ['ab02', 'ab01', 'ab03']), true);
  assert.deepEqual((await fsp.readdir(dst)).sort(), ['ab01', 'ab02', 'ab03']);
  for (const [i, n] of ['ab01', 'ab02', 'ab03'].entries()) {
    assert.equal((await fsp.stat(path.join(dst, n))).ino, inodes[i]!.ino);
    assert.equal(await fsp.readFile(path.join(dst, n), 'utf8'), n);
  }
  assert.deepEqual(await fsp.readdir(src), []);
  assert.equal((await fsp.stat(src)).mode & 0o777, 0o750);
});

test('moveFolderOfFiles (D38): anything but exactly those files into an empty folder is false, with nothing changed', async () => {
  const cases: Array<[string, (x: { src: string; dst: string }) => Promise<void>, string[]]> = [
    ['a file not moved', async () => undefined, ['ab01']],
    ['a name not there', async () => undefined, ['ab01', 'ab02', 'ab09']],
    ['a name twice', async () => undefined, ['ab01', 'ab01']],
    [
      'a folder among the files',
      async ({ src }) => fsp.mkdir(path.join(src, 'ab02x')),
      ['ab01', 'ab02', 'ab02x'],
    ],
    [
      'a link among the files',
      async ({ src }) => fsp.symlink('ab01', path.join(src, 'ab03')),
      ['ab01', 'ab02', 'ab03'],
    ],
    [
      'a destination not empty',
      async ({ dst }) => fsp.writeFile(path.join(dst, 'old'), 'x'),
      ['ab01', 'ab02'],
    ],
    ['no destination folder', async ({ dst }) => fsp.rmdir(dst), ['ab01', 'ab02']],
    [
      'a file as the destination',
      async ({ dst }) => fsp.rmdir(dst).then(() => fsp.writeFile(dst, 'x')),
      ['ab01', 'ab02'],
    ],
    ['no source folder', async ({ src }) => fsp.rm(src, { recursive: true }), ['ab01', 'ab02']],
  ];
  for (const [what, arrange, names] of cases) {
    const x = await stagedFolder(['ab01', 'ab02']);
    await arrange(x);
    const before = await tree(path.dirname(x.dst));
    assert.equal(moveFolderOfFiles(x.src, x.dst, names), false, what);
    assert.deepEqual(await tree(path.dirname(x.dst)), before, what);
  }
});

/** Every path below `d` with its kind and inode. */
async function tree(d: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fsp.readdir(d, { recursive: true }))
    out.push(`${e} ${(await fsp.lstat(path.join(d, e))).ino}`);
  return out.sort();
}

test('removeItem: a file, a tree, nothing', async () => {
  const d = await fresh();
  await fsp.writeFile(path.join(d, 'f'), 'x');
  await fsp.mkdir(path.join(d, 't', 'u'), { recursive: true });
  await fsp.writeFile(path.join(d, 't', 'u', 'g'), 'y');
  await fsp.symlink('/etc', path.join(d, 'link'));
  await removeItem(path.join(d, 'f'));
  await removeItem(path.join(d, 't'));
  await removeItem(path.join(d, 'link')); // the link goes, never what it points to
  await removeItem(path.join(d, 'never-was'));
  assert.deepEqual(await fsp.readdir(d), []);
});

test('TempFile: small and large writes land whole, in a new inode renamed over the old', async () => {
  const d = await fresh();
  const target = path.join(d, 'payload');
  await fsp.writeFile(target, 'old');
  await fsp.link(target, path.join(d, 'shared'));
  const small = Buffer.alloc(SYNC_WRITE_MAX_BYTES, 1);
  const large = Buffer.alloc(SYNC_WRITE_MAX_BYTES * 3 + 7, 2);
  const t = await TempFile.beside(target);
  assert.equal(path.dirname(t.path), d);
  await t.write(small);
  await t.write(large);
  await t.write(Buffer.from('end'));
  assert.equal(await fsp.readFile(target, 'utf8'), 'old', 'nothing visible before the commit');
  await t.commit();
  const got = await fsp.readFile(target);
  assert.deepEqual(got, Buffer.concat([small, large, Buffer.from('end')]));
  assert.equal(await fsp.readFile(path.join(d, 'shared'), 'utf8'), 'old');
  assert.deepEqual((await fsp.readdir(d)).sort(), ['payload', 'shared']);

  const gone = await TempFile.beside(target);
  await gone.write(small);
  await gone.discard();
  await gone.discard(); // twice is fine
  assert.deepEqual((await fsp.readdir(d)).sort(), ['payload', 'shared']);
  assert.deepEqual(await fsp.readFile(target), got);
});

test('TempFile.append: blocks written behind land whole and in order; commit waits, discard too', async () => {
  const d = await fresh();
  const target = path.join(d, 'payload');
  const blocks = [
    Buffer.alloc(SYNC_WRITE_MAX_BYTES * 2, 1), // behind
    Buffer.alloc(SYNC_WRITE_MAX_BYTES * 4 + 3, 2), // behind: waits for the first
    Buffer.alloc(100, 3), // small: written at once, after the one behind
    Buffer.alloc(SYNC_WRITE_MAX_BYTES + 1, 4),
  ];
  const t = await TempFile.beside(target);
  let waits = 0;
  for (const b of blocks) {
    const wait = t.append(b);
    if (wait) {
      waits++;
      await wait;
    }
  }
  assert.ok(waits >= 2, 'a block after a large one waits for it');
  assert.throws(() => t.commitSync(), /flush first/, 'no synchronous commit under a running write');
  await t.flush();
  t.commitSync();
  assert.deepEqual(await fsp.readFile(target), Buffer.concat(blocks));

  // Discarded with a write still running: the write finishes first, then nothing is left.
  const gone = await TempFile.beside(path.join(d, 'gone'));
  assert.equal(gone.append(Buffer.alloc(SYNC_WRITE_MAX_BYTES * 8, 5)), undefined);
  await gone.discard();
  assert.deepEqual(await fsp.readdir(d), ['payload']);
});

test('TempFile: a commit the rename refuses fails and leaves no temp file', async () => {
  const d = await fresh();
  await fsp.mkdir(path.join(d, 'x', 'y'), { recursive: true }); // a folder where the file goes
  const t = await TempFile.beside(path.join(d, 'x'));
  await t.write(Buffer.from('data'));
  await assert.rejects(t.commit(), { code: 'EISDIR' });
  assert.deepEqual(await fsp.readdir(d), ['x']);
});

test('a name or bundle id "__proto__" from the device stays an entry, not a prototype (fuzzing find)', async () => {
  const d = await fresh();
  await fsp.writeFile(path.join(d, '__proto__'), 'x');
  const listing = await listDirectory(d);
  assert.deepEqual(Object.keys(listing), ['__proto__']);
  assert.equal(Object.getPrototypeOf(listing), Object.prototype);
  const info = buildInfoPlist({
    udid: '00008030-001A2B3C4D5E6F70',
    values: {},
    itunesSettings: {},
    itunesVersion: '10.0.1',
    apps: [
      {
        CFBundleIdentifier: '__proto__',
        ApplicationSINF: Buffer.alloc(1),
        iTunesMetadata: Buffer.alloc(1),
      },
    ],
    itunesFiles: {},
    ibooksData: undefined,
    now: new Date(0),
    guid: 'G',
  });
  const apps = info.Applications as Record<string, unknown>;
  assert.deepEqual(Object.keys(apps), ['__proto__']);
  assert.equal(Object.getPrototypeOf(apps), Object.prototype);
});

test('TempFile.freshSync: a new name is written in place; an existing name (a link) never is', async () => {
  const d = await fresh();
  // Nothing there: the file is created under its own name (O_EXCL), no temp name, no rename.
  const target = path.join(d, 'new');
  const t = TempFile.freshSync(target);
  assert.equal(t.path, target);
  t.writeSync(Buffer.from('hello'));
  assert.deepEqual(await fsp.readdir(d), ['new'], 'no temp file beside it');
  t.commitSync();
  assert.equal(await fsp.readFile(target, 'utf8'), 'hello');

  // A hard link to an older snapshot's file: written beside and renamed over, the old inode kept.
  const older = path.join(d, 'older');
  await fsp.writeFile(older, 'complete backup');
  const linked = path.join(d, 'linked');
  await fsp.link(older, linked);
  const u = TempFile.freshSync(linked);
  assert.notEqual(u.path, linked);
  u.writeSync(Buffer.from('new content'));
  u.commitSync();
  assert.equal(await fsp.readFile(older, 'utf8'), 'complete backup');
  assert.equal(await fsp.readFile(linked, 'utf8'), 'new content');

  // A symlink (even dangling) is not followed: O_EXCL sees it, the rename replaces the link.
  const outside = path.join(d, 'outside');
  const link = path.join(d, 'link');
  await fsp.symlink(outside, link);
  const v = TempFile.freshSync(link);
  v.writeSync(Buffer.from('x'));
  v.commitSync();
  assert.ok((await fsp.lstat(link)).isFile());
  await assert.rejects(fsp.stat(outside), { code: 'ENOENT' });

  // Discarded (the device gave up on the file): the partial file under the new name is removed.
  const w = TempFile.freshSync(path.join(d, 'partial'));
  w.writeSync(Buffer.from('half'));
  await w.discard();
  assert.deepEqual((await fsp.readdir(d)).sort(), ['link', 'linked', 'new', 'older']);
});
