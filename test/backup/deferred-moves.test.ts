/**
 * D38, D51: the device's file moves held until its next message, carried out as one rename per
 * folder when a folder's files all go into an empty one, and file by file, each folder's in the
 * device's order, otherwise; a move whose order would matter is not held. Real folders; `moveOne`
 * is the per-file move the host gives (here a plain rename, or the host's general move).
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  mkdtempSync,
  promises as fsp,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import {
  DeferredMoves,
  MAX_GROUP_MOVES,
  MAX_HELD_NAME_BYTES,
} from '../../src/backup/deferred-moves';
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

test(`hold: at most ${MAX_HELD_NAME_BYTES} bytes of names are held`, () => {
  const d = new DeferredMoves();
  const long = 'n'.repeat(1023); // 1,024 bytes held with its separator
  const fit = MAX_HELD_NAME_BYTES / 1024;
  for (let i = 0; i < fit; i++) {
    const name = `${long.slice(String(i).length)}${i}`;
    assert.equal(d.hold(`U/S/${name}`, `U/T/${name}`, `/r/U/S/${name}`, `/r/U/T/${name}`), true);
  }
  assert.equal(d.size, fit);
  assert.equal(d.hold('U/S/x', 'U/T/x', '/r/U/S/x', '/r/U/T/x'), false);
});

test(`hold: at most ${MAX_GROUP_MOVES} moves from one folder`, () => {
  const d = new DeferredMoves();
  const h = (from: string, to: string): boolean => d.hold(from, to, `/r/${from}`, `/r/${to}`);
  for (let i = 0; i < MAX_GROUP_MOVES; i++) assert.equal(h(`U/S/${i}`, `U/T/${i}`), true);
  assert.equal(h('U/S/x', 'U/T/x'), false, 'that folder is full');
  assert.equal(h('U/S2/x', 'U/T2/x'), true, 'another is not');
});

test("hold: a move whose path is a group's folder or above one is not held, nor a group under a held name", () => {
  const d = new DeferredMoves();
  const h = (from: string, to: string): boolean => d.hold(from, to, `/r/${from}`, `/r/${to}`);
  assert.equal(h('U/Snapshot/ab/x', 'U/ab/x'), true);
  assert.equal(h('U/new/ab', 'U/ab'), false, 'replaces the folder ab');
  assert.equal(h('U/Snapshot', 'U/old/Snapshot'), false, 'moves the folder above Snapshot/ab');
  assert.equal(h('U/a/b', 'U/a/b/c/b'), false, 'a folder into itself');
  assert.equal(h('U/new/zz', 'U/zz'), true);
  assert.equal(h('U/new/cd', 'U/cd'), true);
  assert.equal(h('U/Snapshot/cd/y', 'U/cd/y'), false, 'a group under the held U/cd');
  assert.equal(d.size, 3);
});

test('hold: a held name is found in any chunk of its folder, fileID or text', () => {
  const d = new DeferredMoves();
  const h = (from: string, to: string): boolean => d.hold(from, to, `/r/${from}`, `/r/${to}`);
  // A text name of 4,000 bytes (more than the next chunk would be: one of its own), then 1,000
  // fileIDs of 21 bytes and 1,000 text names: ~32 KB, chunks of 1, 2, 4 and 8 KiB, then 16 KiB ones.
  const id = (i: number): string => i.toString(16).padStart(40, 'a');
  const names = [
    'L'.repeat(4000),
    ...Array.from({ length: 2000 }, (_, i) => (i % 2 === 0 ? id(i) : `name ${i}`)),
  ];
  for (const name of names) assert.equal(h(`U/new/${name}`, `U/dst/${name}`), true);
  // A group under a held path is refused, wherever that name lies among the chunks.
  for (const at of [0, 1, 2, 100, 101, 1000, 1001, 1998, 1999, 2000])
    assert.equal(h(`U/S/${at}/f`, `U/new/${names[at]}/f`), false, `under the held name ${at}`);
  assert.equal(h('U/S/x/f', `U/new/${id(1)}/f`), true, 'a name not held (odd: sent as text)');
  assert.equal(d.size, names.length + 1);
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

test("a held move that would replace a group's folder waits: the end is the device order's", async () => {
  // A file from new/ replaces the folder ab after Snapshot/ab's file went into it: in the device's
  // order the folder (with that file) is replaced; grouped, the file would come first and the
  // move into ab would fail instead. So that move is not held until the others are carried out.
  const root = await staged({ ab: ['ab1'] });
  await fsp.mkdir(path.join(root, 'U/new'));
  await fsp.writeFile(path.join(root, 'U/new/zz'), 'z');
  await fsp.writeFile(path.join(root, 'U/new/ab'), 'a file now');
  const d = new DeferredMoves();
  const calls: string[] = [];
  const moveOne = async (from: string, to: string): Promise<void> => {
    calls.push(from);
    await moveItem(path.join(root, from), path.join(root, to)); // the host's general move
  };
  const held = holdAll(d, root, [
    ['U/new/zz', 'U/zz'],
    ['U/Snapshot/ab/ab1', 'U/ab/ab1'],
    ['U/new/ab', 'U/ab'],
  ]);
  assert.deepEqual(held, [true, true, false]);
  assert.deepEqual(await d.settle(moveOne, noStop), { folders: 1 });
  assert.equal(d.hold('U/new/ab', 'U/ab', `${root}/U/new/ab`, `${root}/U/ab`), true);
  assert.deepEqual(await d.settle(moveOne, noStop), { folders: 0 });
  assert.deepEqual(calls, ['U/new/zz', 'U/new/ab']);
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

test("settle: a folder's names past its first chunk of names come back in order", async () => {
  // 300 names of 40 hex digits, as a backup's: 6 KB, so the names take several chunks.
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

test('settle: fileIDs held as bytes and other names as text come back as sent, in order', async () => {
  const hex = (i: number): string => `${i.toString(16).padStart(8, '0')}${'9f'.repeat(16)}`;
  const names = [
    hex(1),
    'Manifest.db',
    hex(2).toUpperCase(), // not a fileID's spelling: held as text
    `${hex(3)}.x`,
    'é',
    hex(0), // a fileID beginning with 00
    hex(4).slice(0, 39),
  ];
  const root = await staged({ ab: names });
  await fsp.writeFile(path.join(root, 'U/ab/old'), 'x'); // not empty: moved file by file
  const d = new DeferredMoves();
  assert.ok(
    holdAll(
      d,
      root,
      names.map((n) => [`U/Snapshot/ab/${n}`, `U/ab/${n}`]),
    ).every(Boolean),
  );
  const r = renamer(root);
  assert.deepEqual(await d.settle(r.moveOne, noStop), { folders: 0 });
  assert.deepEqual(
    r.calls,
    names.map((n) => `U/Snapshot/ab/${n} -> U/ab/${n}`),
  );
});

/** Every entry under `dir`: a folder as `name/`, a file with its contents. */
function tree(dir: string, prefix = ''): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) =>
    a.name < b.name ? -1 : 1,
  )) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(`${prefix}${e.name}/`, ...tree(p, `${prefix}${e.name}/`));
    else out.push(`${prefix}${e.name}=${readFileSync(p, 'utf8')}`);
  }
  return out;
}

test('held and carried out as the host does, any moves leave what the device order leaves', async () => {
  // Folders and names that collide on purpose: a name that is also a folder, moves into and out
  // of each other's folders, a file replacing a folder, moves of missing files.
  const pairs = [
    ['U/Snapshot/ab', 'U/ab'],
    ['U/Snapshot/cd', 'U/cd'],
    ['U/new', 'U'],
    ['U', 'U/new'],
    ['U/Snapshot', 'U'],
    ['U/ab', 'U/cd'],
    ['U/new', 'U/ab'],
    ['U/cd', 'U/Snapshot/ab'],
  ] as const;
  const names = ['f1', 'f2', 'ab', 'cd', 'Snapshot', '0123456789abcdef0123456789abcdef01234567'];
  const move = fc
    .tuple(fc.constantFrom(...pairs), fc.constantFrom(...names))
    .map(([[from, to], name]) => ({ from, to, name }));
  let run = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(move, { minLength: 1, maxLength: 12 }), async (moves) => {
      const roots = [0, 1].map((k) => path.join(outer, `model-${run}-${k}`));
      run++;
      for (const root of roots) {
        for (const dir of ['U/Snapshot/ab', 'U/Snapshot/cd', 'U/ab', 'U/new'])
          await fsp.mkdir(path.join(root, dir), { recursive: true });
        for (const [dir, name] of [
          ['U/Snapshot/ab', 'f1'],
          ['U/Snapshot/ab', 'f2'],
          ['U/Snapshot/cd', 'f1'],
          ['U/Snapshot/cd', '0123456789abcdef0123456789abcdef01234567'],
          ['U/new', 'ab'],
          ['U/new', 'f2'],
        ] as const)
          await fsp.writeFile(path.join(root, dir, name), `${dir}/${name}`);
      }
      const [byDevice, byHost] = roots as [string, string];
      const general = (root: string) => async (from: string, to: string) =>
        moveItem(path.join(root, from), path.join(root, to));
      // The device's order, one move at a time.
      for (const m of moves)
        await general(byDevice)(`${m.from}/${m.name}`, `${m.to}/${m.name}`).catch(() => undefined);
      // The host: hold; else carry out what is held and hold again; else move it now.
      const d = new DeferredMoves();
      const settle = (): Promise<unknown> => d.settle(general(byHost), noStop);
      for (const m of moves) {
        const [from, to] = [`${m.from}/${m.name}`, `${m.to}/${m.name}`];
        const hold = (): boolean =>
          d.hold(from, to, path.join(byHost, from), path.join(byHost, to));
        if (hold()) continue;
        await settle();
        if (hold()) continue;
        await general(byHost)(from, to).catch(() => undefined);
      }
      await settle();
      assert.deepEqual(tree(byHost), tree(byDevice));
      for (const root of roots) rmSync(root, { recursive: true, force: true });
    }),
    { numRuns: 400 },
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
