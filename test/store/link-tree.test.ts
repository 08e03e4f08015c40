/**
 * linkTree, the hard-link copy a staging starts from, both ways it runs: in this thread (a small
 * tree) and in worker threads (a large one, or `inThreadEntries: 0`). Proves both make the same
 * copy (files shared by inode, symlinks recreated, FIFOs skipped and counted, `leaveOut` and
 * `dstExists` obeyed, the same counts), that a large tree goes to the workers by itself, that a
 * worker's failure arrives as the same error as in this thread (errno fields, MooringError for a
 * refused share), that an abort stops the workers, and that no worker is left to keep a process up.
 */
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readlinkSync, statSync, symlinkSync } from 'node:fs';
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { linkTree, type LinkTreeOptions, type LinkTreeStats } from '../../src/store/fs-util';
import { ShareRefused } from '../../src/store/link-tree.worker';
import { isMooringError } from '../../src/util/errors';
import { tempDirs } from './fixture';

const { tmp, cleanup } = tempDirs('mooring-link-tree-');
after(cleanup);

const IN_THREAD: LinkTreeOptions = { inThreadEntries: Number.MAX_SAFE_INTEGER };
/** Every folder linked by the workers (whose errors must arrive as this thread's would). */
const WORKERS: LinkTreeOptions = { inThreadEntries: 0, linkWhileWorkersStart: false };
/** As a large tree is linked: this thread takes folders too until a worker runs. */
const BOTH: LinkTreeOptions = { inThreadEntries: 0 };

/** A backup-like tree: files at the top, hash folders, a nested folder, symlinks and FIFOs. */
function smallTree(): string {
  const src = tmp();
  writeFileSync(path.join(src, 'Manifest.db'), 'db');
  writeFileSync(path.join(src, 'Info.plist'), 'info');
  symlinkSync('Manifest.db', path.join(src, 'top-link'));
  execFileSync('mkfifo', [path.join(src, 'top-fifo')]);
  for (const d of ['00', '3f', 'a1', 'ff']) {
    mkdirSync(path.join(src, d));
    for (let i = 0; i < 5; i++) writeFileSync(path.join(src, d, `${d}file${i}`), `${d}/${i}`);
  }
  mkdirSync(path.join(src, 'a1', 'nested', 'deeper'), { recursive: true });
  writeFileSync(path.join(src, 'a1', 'nested', 'deeper', 'inner'), 'inner');
  symlinkSync('../../00/00file1', path.join(src, 'a1', 'nested', 'rel-link'));
  execFileSync('mkfifo', [path.join(src, 'ff', 'fifo')]);
  return src;
}

/** `folders` hash folders of `perFolder` empty files each. */
function wideTree(folders: number, perFolder: number): string {
  const src = tmp();
  writeFileSync(path.join(src, 'Manifest.db'), 'db');
  for (let d = 0; d < folders; d++) {
    const dir = path.join(src, d.toString(16).padStart(2, '0'));
    mkdirSync(dir);
    for (let i = 0; i < perFolder; i++) writeFileSync(path.join(dir, `${d}-${i}`), '');
  }
  return src;
}

interface Entry {
  kind: 'dir' | 'file' | 'symlink';
  ino?: number;
  target?: string;
}

/** Every entry under `root` except FIFOs (which a copy must not have), by relative path. */
function listing(root: string): Map<string, Entry> {
  const out = new Map<string, Entry>();
  const walk = (rel: string): void => {
    for (const e of readdirSync(path.join(root, rel), { withFileTypes: true })) {
      const r = rel === '' ? e.name : `${rel}/${e.name}`;
      if (e.isDirectory()) {
        out.set(r, { kind: 'dir' });
        walk(r);
      } else if (e.isFile()) out.set(r, { kind: 'file', ino: statSync(path.join(root, r)).ino });
      else if (e.isSymbolicLink())
        out.set(r, { kind: 'symlink', target: readlinkSync(path.join(root, r)) });
      else out.set(r, { kind: 'dir', target: 'not a file, folder or symlink' });
    }
  };
  walk('');
  return out;
}

for (const [way, opts] of [
  ['in this thread', IN_THREAD],
  ['in worker threads', WORKERS],
  ['in worker threads and this thread', BOTH],
] as const) {
  test(`${way}: files shared by inode, symlinks recreated, FIFOs skipped, leaveOut obeyed`, async () => {
    const src = smallTree();
    const dst = path.join(tmp(), 'copy');
    const stats = await linkTree(src, dst, { ...opts, leaveOut: ['Info.plist'] });
    const want = listing(src);
    want.delete('Info.plist');
    for (const fifo of ['top-fifo', 'ff/fifo']) want.delete(fifo);
    assert.deepEqual(listing(dst), want);
    const expected: LinkTreeStats = {
      dirs: 7,
      linked: 22,
      cloned: 0,
      symlinks: 2,
      skipped: 2,
      workers: opts === IN_THREAD ? 0 : Math.min(4, os.availableParallelism()),
    };
    const { workerNice: _, ...counted } = stats; // its own test below
    assert.deepEqual(counted, expected);
  });

  test(`${way}: into an existing empty folder (dstExists)`, async () => {
    const src = smallTree();
    const dst = tmp();
    const stats = await linkTree(src, dst, { ...opts, dstExists: true });
    assert.equal(stats.linked, 23);
    assert.equal(
      statSync(path.join(dst, 'Info.plist')).ino,
      statSync(path.join(src, 'Info.plist')).ino,
    );
    assert.equal(listing(dst).size, listing(src).size - 2);
  });

  test(`${way}: a file the filesystem will neither link nor clone fails with IO, its code as detail`, async (t) => {
    // Another filesystem than the source's: link(2) says EXDEV, and no clone crosses either.
    const other = '/dev/shm';
    const src = smallTree();
    let shm: string;
    try {
      if (statSync(other).dev === statSync(src).dev) return t.skip('no second filesystem');
      shm = path.join(other, `mooring-link-tree-${process.pid}-${way.length}`);
      mkdirSync(shm);
    } catch {
      return t.skip('no /dev/shm');
    }
    try {
      // The top-level files left out: the refusal comes from a folder (a worker's, in the workers).
      const copy = linkTree(src, path.join(shm, 'copy'), {
        ...opts,
        leaveOut: ['Manifest.db', 'Info.plist'],
      });
      await assert.rejects(copy, (e) => {
        assert.ok(isMooringError(e, 'IO'), String(e));
        assert.equal(e.detail, 'SHARE_REFUSED');
        assert.match(
          e.message,
          /^Cannot share .+ with the new backup: the filesystem refuses hard links \(EXDEV\)/,
        );
        // The file and the code, and under them the clone refusal.
        assert.ok(e.cause instanceof ShareRefused, String(e.cause));
        assert.equal(e.cause.code, 'EXDEV');
        assert.ok(e.cause.cause instanceof Error, 'the clone refusal as cause');
        return true;
      });
    } finally {
      execFileSync('rm', ['-rf', shm]);
    }
  });
}

test('the same system-call error from a worker as from this thread: code, errno, syscall, path', async () => {
  const seen = [];
  for (const opts of [IN_THREAD, WORKERS, BOTH]) {
    const src = smallTree();
    const dst = tmp();
    // A folder already there: mkdir says EEXIST.
    mkdirSync(path.join(dst, '3f'));
    const e = await linkTree(src, dst, { ...opts, dstExists: true }).then(
      () => assert.fail('linked into an existing folder'),
      (x: unknown) => x as NodeJS.ErrnoException,
    );
    assert.ok(e instanceof Error);
    assert.equal(e.code, 'EEXIST');
    assert.equal(e.syscall, 'mkdir');
    assert.equal(e.path, path.join(dst, '3f'));
    seen.push({ ...e, message: e.message.replace(dst, '<dst>'), path: '' });
  }
  assert.deepEqual(seen[1], seen[0]);
  assert.deepEqual(seen[2], seen[0]);
});

test('a large tree goes to the workers by itself; a small one stays in this thread', async () => {
  const large = wideTree(32, 130);
  const stats = await linkTree(large, path.join(tmp(), 'copy'));
  assert.equal(stats.linked, 32 * 130 + 1);
  assert.equal(stats.dirs, 33);
  assert.ok(stats.workers > 0, 'workers used');
  const small = await linkTree(smallTree(), path.join(tmp(), 'copy'));
  assert.equal(small.workers, 0);
});

test('on Linux the workers link at a lower priority than the thread that started them, which keeps its own', async () => {
  const mine = os.getPriority();
  const stats = await linkTree(wideTree(8, 20), path.join(tmp(), 'copy'), WORKERS);
  assert.ok(stats.workers > 0, 'workers used');
  if (process.platform === 'linux') assert.equal(stats.workerNice, Math.min(19, mine + 10));
  else assert.equal(stats.workerNice, undefined);
  // A thread's own nice value on Linux: the workers' change did not reach this thread.
  assert.equal(os.getPriority(), mine);
  const here = await linkTree(wideTree(8, 20), path.join(tmp(), 'copy'), IN_THREAD);
  assert.equal(here.workerNice, undefined);
});

let big: string;
before(() => {
  big = wideTree(256, 60);
});

test('an abort while the workers link stops them: ABORTED, and nothing is written after', async () => {
  const dst = tmp();
  const stop = new AbortController();
  // The top level is made first (its file and its 256 folders); the workers take the folders in
  // order: aborted as soon as one has linked a file into the first.
  const first = path.join(dst, '00');
  const poll = setInterval(() => {
    if (readdirSync(dst).includes('00') && readdirSync(first).length > 0) stop.abort();
  }, 1);
  try {
    await assert.rejects(
      linkTree(big, dst, { ...WORKERS, dstExists: true, signal: stop.signal }),
      (e) => isMooringError(e, 'IO') && e.detail === 'ABORTED',
    );
  } finally {
    clearInterval(poll);
  }
  const filesIn = (): number =>
    readdirSync(dst).reduce(
      (n, d) => (d.length === 2 ? n + readdirSync(path.join(dst, d)).length : n),
      0,
    );
  const made = filesIn();
  assert.ok(made > 0 && made < 256 * 60, `stopped before the end (${made} of ${256 * 60} files)`);
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(filesIn(), made, 'no worker still writing');
});

test('an abort before the start, and one while the workers start, reject ABORTED', async () => {
  const stop = new AbortController();
  stop.abort();
  await assert.rejects(
    linkTree(big, path.join(tmp(), 'copy'), { ...WORKERS, signal: stop.signal }),
    (e) => isMooringError(e, 'IO') && e.detail === 'ABORTED',
  );
  const starting = new AbortController();
  const copying = linkTree(big, path.join(tmp(), 'copy'), { ...BOTH, signal: starting.signal });
  // The top-level entries take microtasks only: the workers are starting by the next macrotask.
  setImmediate(() => starting.abort());
  await assert.rejects(copying, (e) => isMooringError(e, 'IO') && e.detail === 'ABORTED');
});

test(
  'no worker keeps a process up: it exits by itself after a copy, a failure and an abort',
  { timeout: 60_000 },
  async () => {
    const script = `
    const { linkTree } = require(${JSON.stringify(path.join(__dirname, '../../src/store/fs-util'))});
    const path = require('node:path');
    const [src, out] = process.argv.slice(1);
    (async () => {
      const ok = await linkTree(src, path.join(out, 'a'), { inThreadEntries: 0 });
      console.log('linked', ok.linked, ok.workers > 0);
      await linkTree(src, path.join(out, 'a'), { inThreadEntries: 0, dstExists: true }).catch((e) => console.log('failed', e.code));
      const stop = new AbortController();
      const p = linkTree(src, path.join(out, 'b'), { inThreadEntries: 0, signal: stop.signal });
      stop.abort();
      await p.catch((e) => console.log('stopped', e.detail));
    })();`;
    const child = spawn(process.execPath, ['--import', 'tsx', '-e', script, big, tmp()], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise((resolve) => child.on('exit', resolve));
    assert.equal(code, 0);
    assert.equal(out, `linked ${256 * 60 + 1} true\nfailed EEXIST\nstopped ABORTED\n`);
  },
);

for (const [how, opts] of [
  ['in this thread', IN_THREAD],
  ['by the workers', WORKERS],
] as const)
  test(`the top level is made first, then the folders filled (${how}): onTopLevel in between`, async () => {
    const src = smallTree();
    const dst = path.join(tmp(), 'copy');
    const seen: Array<{ folders: string[]; top: string[]; inside: number }> = [];
    await linkTree(src, dst, {
      ...opts,
      onTopLevel: (folders) =>
        seen.push({
          folders: [...folders].sort(),
          top: readdirSync(dst).sort(),
          inside: folders.reduce((n, f) => n + readdirSync(path.join(dst, f)).length, 0),
        }),
    });
    assert.equal(seen.length, 1, 'told once');
    const [at] = seen;
    assert.deepEqual(at!.folders, ['00', '3f', 'a1', 'ff']);
    // Every top-level file, link and folder in place (not the FIFO), every folder still empty.
    assert.deepEqual(at!.top, ['00', '3f', 'Info.plist', 'Manifest.db', 'a1', 'ff', 'top-link']);
    assert.equal(at!.inside, 0);
    const want = listing(src);
    for (const fifo of ['top-fifo', 'ff/fifo']) want.delete(fifo);
    assert.deepEqual(listing(dst), want);
  });
