/**
 * D38: the device's file moves held until its next message, carried out as one rename per folder
 * when a folder's files all go into an empty one, and file by file, in the device's order,
 * otherwise. Real folders; `moveOne` is the per-file move the host gives (here a plain rename).
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, promises as fsp, renameSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DeferredMoves, MAX_DEFERRED_MOVES } from '../../src/backup/deferred-moves';
import { moveItem } from '../../src/backup/folder-ops';

const outer = mkdtempSync(path.join(os.tmpdir(), 'mooring-deferred-moves-'));
after(() => rmSync(outer, { recursive: true, force: true }));
let n = 0;

/** A root with `U/Snapshot/<folder>/<files>` and the empty `U/<folder>` for each. */
async function staged(folders: Record<string, string[]>): Promise<string> {
  const root = path.join(outer, String(n++));
  for (const [folder, files] of Object.entries(folders)) {
    await fsp.mkdir(path.join(root, 'U', 'Snapshot', folder), { recursive: true });
    await fsp.mkdir(path.join(root, 'U', folder), { recursive: true });
    for (const f of files) await fsp.writeFile(path.join(root, 'U', 'Snapshot', folder, f), f);
  }
  return root;
}

/** Holds device moves as the host would (host paths = root + device path). */
function holdAll(d: DeferredMoves, root: string, moves: Array<[string, string]>): boolean[] {
  return moves.map(([from, to]) => d.hold(from, to, path.join(root, from), path.join(root, to)));
}

/** A per-file move that renames, and records what it was asked. */
function renamer(root: string): {
  calls: string[];
  moveOne: (from: string, to: string) => Promise<void>;
} {
  const calls: string[] = [];
  return {
    calls,
    moveOne: async (from, to) => {
      calls.push(`${from} -> ${to}`);
      renameSync(path.join(root, from), path.join(root, to));
    },
  };
}

const noStop = (): void => undefined;

test('hold: only a file moved under its own name, each source folder into one folder, no folder both', () => {
  const d = new DeferredMoves();
  const h = (from: string, to: string): boolean => d.hold(from, to, `/r/${from}`, `/r/${to}`);
  assert.equal(h('U/Snapshot/ab/x', 'U/ab/x'), true);
  assert.equal(h('U/Snapshot/ab/y', 'U/ab/y'), true);
  assert.equal(h('U/Snapshot/ab/z', 'U/ab/other'), false, 'renamed on the way');
  assert.equal(h('U/Snapshot/ab/z', 'U/cd/z'), false, 'a second destination for Snapshot/ab');
  assert.equal(h('U/Snapshot/cd/z', 'U/ab/z'), false, 'a second source into ab');
  assert.equal(h('U/ab/x', 'U/old/x'), false, 'a destination used as a source');
  assert.equal(h('U/other/x', 'U/Snapshot/ab/x'), false, 'a source used as a destination');
  assert.equal(h('U/ab/x', 'U/ab/x'), false, 'within one folder');
  assert.equal(h('x', 'U/x'), false, 'no folder');
  assert.equal(h('U/Snapshot/cd/z', 'U/cd/z'), true);
  assert.equal(d.size, 3);
});

test(`hold: at most ${MAX_DEFERRED_MOVES} moves are held`, () => {
  const d = new DeferredMoves();
  for (let i = 0; i < MAX_DEFERRED_MOVES; i++) {
    const name = `f${i}`;
    assert.equal(d.hold(`U/S/${name}`, `U/T/${name}`, `/r/U/S/${name}`, `/r/U/T/${name}`), true);
  }
  assert.equal(d.hold('U/S/last', 'U/T/last', '/r/U/S/last', '/r/U/T/last'), false);
});

test('settle: each folder whose files all go into an empty one is one rename; the source stays, empty', async () => {
  const root = await staged({ ab: ['ab1', 'ab2'], cd: ['cd1'] });
  const inodeOf = async (p: string): Promise<number> => (await fsp.stat(path.join(root, p))).ino;
  const folderInode = await inodeOf('U/Snapshot/ab');
  const d = new DeferredMoves();
  // Interleaved, as a device may send them.
  const held = holdAll(d, root, [
    ['U/Snapshot/ab/ab2', 'U/ab/ab2'],
    ['U/Snapshot/cd/cd1', 'U/cd/cd1'],
    ['U/Snapshot/ab/ab1', 'U/ab/ab1'],
  ]);
  assert.deepEqual(held, [true, true, true]);
  const r = renamer(root);
  const result = await d.settle(r.moveOne, noStop);
  assert.deepEqual(result, { folders: 2 });
  assert.deepEqual(r.calls, []);
  assert.equal(await inodeOf('U/ab'), folderInode, 'the folder itself was moved');
  assert.deepEqual((await fsp.readdir(path.join(root, 'U/ab'))).sort(), ['ab1', 'ab2']);
  assert.deepEqual(await fsp.readdir(path.join(root, 'U/cd')), ['cd1']);
  assert.deepEqual(await fsp.readdir(path.join(root, 'U/Snapshot/ab')), []);
  assert.deepEqual(await fsp.readdir(path.join(root, 'U/Snapshot/cd')), []);
  assert.equal(d.size, 0);
});

test('settle: a folder not moved whole is moved file by file, in order; a failure is kept and the rest go on', async () => {
  const root = await staged({ ab: ['ab1', 'ab2', 'ab3'], cd: ['cd1'] });
  await fsp.writeFile(path.join(root, 'U/cd/old'), 'x'); // cd is not empty
  const d = new DeferredMoves();
  holdAll(d, root, [
    ['U/Snapshot/ab/ab3', 'U/ab/ab3'],
    ['U/Snapshot/ab/gone', 'U/ab/gone'], // not there: fails
    ['U/Snapshot/ab/ab1', 'U/ab/ab1'], // ab2 stays: ab is not moved whole
    ['U/Snapshot/cd/cd1', 'U/cd/cd1'],
  ]);
  const r = renamer(root);
  const result = await d.settle(r.moveOne, noStop);
  assert.equal(result.folders, 0);
  assert.equal((result.error as NodeJS.ErrnoException).code, 'ENOENT');
  assert.deepEqual(r.calls, [
    'U/Snapshot/ab/ab3 -> U/ab/ab3',
    'U/Snapshot/ab/gone -> U/ab/gone',
    'U/Snapshot/ab/ab1 -> U/ab/ab1',
    'U/Snapshot/cd/cd1 -> U/cd/cd1',
  ]);
  assert.deepEqual(await fsp.readdir(path.join(root, 'U/Snapshot/ab')), ['ab2']);
  assert.deepEqual((await fsp.readdir(path.join(root, 'U/cd'))).sort(), ['cd1', 'old']);
});

test('settle: when a held move names a folder of another group, everything goes file by file in the device order', async () => {
  // A file from new/ replaces the folder ab after Snapshot/ab's file went into it: in the device's
  // order the folder (with that file) is replaced; grouped, the file would come first and the
  // move into ab would fail instead. So the order is kept.
  const root = await staged({ ab: ['ab1'] });
  await fsp.mkdir(path.join(root, 'U/new'));
  await fsp.writeFile(path.join(root, 'U/new/zz'), 'z');
  await fsp.writeFile(path.join(root, 'U/new/ab'), 'a file now');
  const d = new DeferredMoves();
  const held = holdAll(d, root, [
    ['U/new/zz', 'U/zz'],
    ['U/Snapshot/ab/ab1', 'U/ab/ab1'],
    ['U/new/ab', 'U/ab'],
  ]);
  assert.deepEqual(held, [true, true, true]);
  const calls: string[] = [];
  const result = await d.settle(async (from, to) => {
    calls.push(from);
    await moveItem(path.join(root, from), path.join(root, to)); // the host's general move
  }, noStop);
  assert.deepEqual(result, { folders: 0 });
  assert.deepEqual(calls, ['U/new/zz', 'U/Snapshot/ab/ab1', 'U/new/ab']);
  assert.equal(await fsp.readFile(path.join(root, 'U/ab'), 'utf8'), 'a file now');
  assert.deepEqual(await fsp.readdir(path.join(root, 'U/Snapshot/ab')), []);
});

test('settle: names beyond ASCII come back as the device sent them, in its order across runs of folders', async () => {
  // The names are held as UTF-8 bytes (D50): accents, an emoji, a name in two scripts.
  const ab = ['café', '😀 photo', 'ab3'];
  const cd = ['Ωmega', 'файл'];
  const root = await staged({ ab, cd });
  await fsp.writeFile(path.join(root, 'U/cd/old'), 'x'); // cd not empty: both go file by file
  await fsp.writeFile(path.join(root, 'U/Snapshot/ab/stays'), 'y'); // ab not moved whole
  const d = new DeferredMoves();
  const order: Array<[string, string]> = [
    ['ab', ab[0]!],
    ['ab', ab[1]!],
    ['cd', cd[0]!],
    ['ab', ab[2]!],
    ['cd', cd[1]!],
  ];
  const held = holdAll(
    d,
    root,
    order.map(([f, name]) => [`U/Snapshot/${f}/${name}`, `U/${f}/${name}`]),
  );
  assert.deepEqual(held, [true, true, true, true, true]);
  assert.equal(
    d.hold(
      'U/Snapshot/ab/\ud800x',
      'U/ab/\ud800x',
      `${root}/U/Snapshot/ab/\ud800x`,
      `${root}/U/ab/\ud800x`,
    ),
    false,
    'a lone surrogate would not come back the same from UTF-8: moved at once',
  );
  assert.equal(d.size, 5);
  const r = renamer(root);
  assert.deepEqual(await d.settle(r.moveOne, noStop), { folders: 0 });
  // Grouped by folder (each folder's names in the device's order), as a folder not moved whole goes.
  assert.deepEqual(r.calls, [
    ...ab.map((n) => `U/Snapshot/ab/${n} -> U/ab/${n}`),
    ...cd.map((n) => `U/Snapshot/cd/${n} -> U/cd/${n}`),
  ]);
  assert.deepEqual((await fsp.readdir(path.join(root, 'U/ab'))).sort(), [...ab].sort());
  assert.deepEqual((await fsp.readdir(path.join(root, 'U/cd'))).sort(), [...cd, 'old'].sort());
});

test("settle: a folder's names past the first kilobyte of its buffer come back in order", async () => {
  // 300 names of 40 hex digits, as a backup's: 12 KB, so the names' buffer grows several times.
  const names = Array.from({ length: 300 }, (_, i) => i.toString(16).padStart(40, '0'));
  const root = await staged({ ab: names });
  await fsp.writeFile(path.join(root, 'U/ab/old'), 'x'); // not empty: moved file by file
  const d = new DeferredMoves();
  const held = holdAll(
    d,
    root,
    names.map((n) => [`U/Snapshot/ab/${n}`, `U/ab/${n}`]),
  );
  assert.ok(held.every(Boolean));
  const r = renamer(root);
  assert.deepEqual(await d.settle(r.moveOne, noStop), { folders: 0 });
  assert.deepEqual(
    r.calls,
    names.map((n) => `U/Snapshot/ab/${n} -> U/ab/${n}`),
  );
});

test('settle: in the device order, names beyond ASCII and runs of one folder are replayed exactly', async () => {
  const root = await staged({ ab: ['é1', 'é2', 'é3'], cd: ['ü1'] });
  await fsp.mkdir(path.join(root, 'U/new'));
  await fsp.writeFile(path.join(root, 'U/new/ab'), 'a file now');
  const d = new DeferredMoves();
  const moves: Array<[string, string]> = [
    ['U/Snapshot/ab/é1', 'U/ab/é1'],
    ['U/Snapshot/ab/é2', 'U/ab/é2'],
    ['U/Snapshot/cd/ü1', 'U/cd/ü1'],
    ['U/Snapshot/ab/é3', 'U/ab/é3'],
    ['U/new/ab', 'U/ab'], // names the folder ab: everything in the device's order
  ];
  assert.deepEqual(holdAll(d, root, moves), [true, true, true, true, true]);
  const calls: string[] = [];
  await d.settle(async (from, to) => {
    calls.push(`${from} -> ${to}`);
    await moveItem(path.join(root, from), path.join(root, to));
  }, noStop);
  assert.deepEqual(
    calls,
    moves.map(([from, to]) => `${from} -> ${to}`),
  );
});

test('settle: a stop between folders ends it there', async () => {
  const root = await staged({ ab: ['ab1'], cd: ['cd1'] });
  const d = new DeferredMoves();
  holdAll(d, root, [
    ['U/Snapshot/ab/ab1', 'U/ab/ab1'],
    ['U/Snapshot/cd/cd1', 'U/cd/cd1'],
  ]);
  let checks = 0;
  await assert.rejects(
    d.settle(renamer(root).moveOne, () => {
      if (++checks === 2) throw new Error('stopped');
    }),
    /stopped/,
  );
  assert.deepEqual(await fsp.readdir(path.join(root, 'U/ab')), ['ab1']);
  assert.deepEqual(await fsp.readdir(path.join(root, 'U/Snapshot/cd')), ['cd1']);
});
