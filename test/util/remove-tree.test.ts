import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { removeTree } from '../../src/util/remove-tree';
import { tempDirs } from '../helpers/temp-dirs';
import { SMALL_DISK_SKIP, SmallDisk } from '../helpers/small-disk';

const { tmp, cleanup } = tempDirs('mooring-rmtree-');
after(cleanup);

/** A backup-like tree: `folders` hash folders of `perFolder` files, and a nested one. */
function makeTree(root: string, folders: number, perFolder: number): number {
  let files = 0;
  for (let d = 0; d < folders; d++) {
    const dir = path.join(root, 'Snapshot', d.toString(16).padStart(2, '0'));
    fs.mkdirSync(dir, { recursive: true });
    for (let f = 0; f < perFolder; f++, files++)
      fs.writeFileSync(path.join(dir, `f${f}`), `${d}.${f}`);
  }
  fs.mkdirSync(path.join(root, 'a', 'b', 'c', 'empty'), { recursive: true });
  fs.writeFileSync(path.join(root, 'a', 'b', 'c', 'deep'), 'x');
  fs.writeFileSync(path.join(root, 'Manifest.db'), 'db');
  return files + 2;
}

/** The most file system requests seen in flight at once (each turn of the event loop) during `run`. */
async function peakRequests(run: () => Promise<void>): Promise<number> {
  let peak = 0;
  let done = false;
  const sample = (): void => {
    const n = process.getActiveResourcesInfo().filter((r) => r.startsWith('FSReq')).length;
    peak = Math.max(peak, n);
    if (!done) setImmediate(sample);
  };
  setImmediate(sample);
  try {
    await run();
  } finally {
    done = true;
  }
  return peak;
}

test('removeTree removes a whole tree, and a symlink in it without following it', async () => {
  const root = tmp();
  const tree = path.join(root, 'backup');
  makeTree(tree, 5, 40);
  const outside = path.join(root, 'outside');
  fs.mkdirSync(outside);
  fs.writeFileSync(path.join(outside, 'keep'), 'mine');
  fs.symlinkSync(outside, path.join(tree, 'Snapshot', 'to-folder'));
  fs.symlinkSync(path.join(outside, 'keep'), path.join(tree, 'a', 'to-file'));
  fs.symlinkSync(path.join(root, 'nowhere'), path.join(tree, 'dangling'));

  await removeTree(tree);

  assert.equal(fs.existsSync(tree), false);
  assert.deepEqual(fs.readdirSync(root), ['outside']);
  assert.equal(fs.readFileSync(path.join(outside, 'keep'), 'utf8'), 'mine');
});

test('removeTree: a missing path is fine; a file or a symlink given is removed alone', async () => {
  const root = tmp();
  await removeTree(path.join(root, 'missing'));
  await removeTree(path.join(root, 'missing', 'below'));
  fs.writeFileSync(path.join(root, 'file'), 'x');
  fs.mkdirSync(path.join(root, 'dir'));
  fs.writeFileSync(path.join(root, 'dir', 'inside'), 'y');
  fs.symlinkSync(path.join(root, 'dir'), path.join(root, 'link'));

  await removeTree(path.join(root, 'file'));
  await removeTree(path.join(root, 'link'));

  assert.deepEqual(fs.readdirSync(root), ['dir']);
  assert.deepEqual(fs.readdirSync(path.join(root, 'dir')), ['inside']);
});

test('removeTree keeps a bounded number of requests in flight, where fs.rm starts one per entry', async () => {
  const ours = path.join(tmp(), 'backup');
  const theirs = path.join(tmp(), 'backup');
  const files = makeTree(ours, 8, 500);
  assert.equal(makeTree(theirs, 8, 500), files);

  const peakOurs = await peakRequests(() => removeTree(ours));
  const peakNode = await peakRequests(() =>
    fs.promises.rm(theirs, { recursive: true, force: true }),
  );

  assert.equal(fs.existsSync(ours), false);
  assert.equal(fs.existsSync(theirs), false);
  // 16 unlinks of one folder, plus a read of it and of each folder above it.
  assert.ok(peakOurs <= 24, `at most 24 requests in flight, saw ${peakOurs}`);
  // The probe sees what fs.rm does with the same 4,002 files (one request per entry of a folder).
  assert.ok(peakNode >= 500, `fs.rm had ${peakNode} in flight`);
});

test('removeTree: a folder read in batches while it empties, and names that are not UTF-8', async () => {
  const root = tmp();
  const flat = path.join(root, 'flat');
  fs.mkdirSync(flat);
  // More than one batch of names (1,024): the folder is read again after each batch is removed.
  for (let i = 0; i < 2600; i++) fs.writeFileSync(path.join(flat, `f${i}`), '');
  if (process.platform === 'linux') {
    // Linux takes any bytes in a name; others refuse these.
    const raw = (...bytes: number[]): Buffer =>
      Buffer.concat([Buffer.from(`${flat}/`), Buffer.from(bytes)]);
    fs.writeFileSync(raw(0xff, 0xfe, 0x41), 'not UTF-8');
    fs.mkdirSync(raw(0xc3, 0x28));
    fs.writeFileSync(Buffer.concat([raw(0xc3, 0x28), Buffer.from('/inside')]), 'x');
  }
  await removeTree(flat);
  assert.equal(fs.existsSync(flat), false);
});

test('removeTree: an error other than "missing" is thrown', async () => {
  const root = tmp();
  fs.writeFileSync(path.join(root, 'file'), 'x');
  await assert.rejects(removeTree(path.join(root, 'file', 'below')), { code: 'ENOTDIR' });
  assert.ok(fs.existsSync(path.join(root, 'file')));
});

test(
  'removeTree: a folder that cannot go is left as it is, as fs.rm leaves it, and the error is thrown',
  { skip: SMALL_DISK_SKIP },
  async () => {
    const root = tmp();
    const tree = path.join(root, 'backup');
    makeTree(tree, 2, 30);
    const mountPoint = path.join(tree, 'Snapshot', 'mounted');
    fs.mkdirSync(mountPoint);
    const disk = new SmallDisk(mountPoint);
    disk.mount(1024 * 1024);
    try {
      fs.writeFileSync(path.join(mountPoint, 'on-the-mount'), 'z');
      // rmdir of a mount point is EBUSY: tried first, before anything in it is touched.
      await assert.rejects(removeTree(tree), (e: unknown) => {
        assert.equal((e as NodeJS.ErrnoException).code, 'EBUSY');
        return true;
      });
      assert.deepEqual(fs.readdirSync(mountPoint), ['on-the-mount']);
    } finally {
      disk.unmount();
    }
    await removeTree(tree);
    assert.equal(fs.existsSync(tree), false);
  },
);
