/**
 * Confinement of device paths: lexical refusals, symlinks anywhere along the existing prefix, and
 * the folders remembered during a run.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isMooringError } from '../../src/util/errors';
import {
  devicePathSegments,
  MAX_CONFINED_PATH_BYTES,
  MAX_CONFINED_PATH_DEPTH,
  PathConfiner,
  touchesFolders,
} from '../../src/backup/confine';
import { TempFile } from '../../src/backup/atomic-file';

const UDID = '00008030-001A2B3C4D5E6F70';
let outer: string;
let root: string;
let confiner: PathConfiner;

before(async () => {
  outer = await fsp.mkdtemp(path.join(os.tmpdir(), 'mooring-confine-'));
  root = path.join(outer, 'root');
  await fsp.mkdir(path.join(root, UDID, 'Snapshot', 'ab'), { recursive: true });
  await fsp.mkdir(path.join(outer, 'outside'));
  await fsp.writeFile(path.join(outer, 'outside', 'secret'), 'x');
  confiner = new PathConfiner({ udid: UDID, root });
});

after(async () => {
  await fsp.rm(outer, { recursive: true, force: true });
});

const unsafe = (e: unknown): boolean => isMooringError(e, 'UNSAFE_PATH');

test('ordinary device paths resolve under root/<udid>', async () => {
  assert.equal(await confiner.resolve(UDID), path.join(root, UDID));
  assert.equal(
    await confiner.resolve(`${UDID}/Snapshot/ab/ab12`),
    path.join(root, UDID, 'Snapshot', 'ab', 'ab12'),
  );
  // Not yet existing folders are fine (CreateDirectory makes them).
  assert.equal(
    await confiner.resolve(`${UDID}/new/deeper/x`),
    path.join(root, UDID, 'new/deeper/x'),
  );
  // Empty and "." segments are dropped (a trailing slash is harmless).
  assert.equal(await confiner.resolve(`${UDID}//./Snapshot/`), path.join(root, UDID, 'Snapshot'));
});

test('lexical refusals carry the path', () => {
  const bad = [
    '',
    `/${UDID}/Status.plist`,
    '/etc/passwd',
    `${UDID}/../other/Status.plist`,
    `${UDID}/Snapshot/../../x`,
    '..',
    `OTHERDEVICE/Status.plist`,
    `${UDID}x/Status.plist`,
    `Status.plist`,
    `${UDID}/a\0b`,
    `${UDID}\\..\\x`,
    `C:/${UDID}/x`,
    `c:${UDID}`,
    `\\\\server\\share`,
    `${UDID}/${'a'.repeat(MAX_CONFINED_PATH_BYTES)}`,
    `${UDID}/${Array(MAX_CONFINED_PATH_DEPTH).fill('d').join('/')}`,
  ];
  for (const p of bad) {
    assert.throws(
      () => devicePathSegments(UDID, p),
      (e) => unsafe(e) && (e as { detail?: unknown }).detail !== undefined,
      JSON.stringify(p.slice(0, 60)),
    );
  }
  // Depth limit is inclusive of the UDID segment.
  assert.doesNotThrow(() =>
    devicePathSegments(UDID, [UDID, ...Array(MAX_CONFINED_PATH_DEPTH - 1).fill('d')].join('/')),
  );
});

test('a symlink anywhere along the existing prefix is refused', async () => {
  // A symlinked folder inside the device folder, pointing outside.
  await fsp.symlink(path.join(outer, 'outside'), path.join(root, UDID, 'link'));
  await assert.rejects(confiner.resolve(`${UDID}/link`), unsafe);
  await assert.rejects(confiner.resolve(`${UDID}/link/secret`), unsafe);
  await assert.rejects(confiner.resolve(`${UDID}/link/new/file`), unsafe);
  // A symlinked file (even pointing inside) is refused too: we never write through links.
  await fsp.symlink(path.join(root, UDID, 'Snapshot'), path.join(root, UDID, 'inside-link'));
  await assert.rejects(confiner.resolve(`${UDID}/inside-link`), unsafe);
  await fsp.writeFile(path.join(root, UDID, 'real'), 'x');
  await fsp.symlink('real', path.join(root, UDID, 'Status.plist'));
  await assert.rejects(confiner.resolve(`${UDID}/Status.plist`), unsafe);
});

test('the device folder itself being a symlink is refused', async () => {
  const r2 = path.join(outer, 'root2');
  await fsp.mkdir(r2);
  await fsp.symlink(path.join(outer, 'outside'), path.join(r2, UDID));
  const c = new PathConfiner({ udid: UDID, root: r2 });
  await assert.rejects(c.resolve(`${UDID}/secret`), unsafe);
  await assert.rejects(c.resolve(UDID), unsafe);
});

test('a root reached through a symlink is fine (the user chose it)', async () => {
  const alias = path.join(outer, 'alias');
  await fsp.symlink(root, alias);
  const c = new PathConfiner({ udid: UDID, root: alias });
  assert.equal(await c.resolve(`${UDID}/Snapshot`), path.join(alias, UDID, 'Snapshot'));
});

test('a regular file in the middle of the path is not a confinement problem (ENOTDIR later)', async () => {
  await fsp.writeFile(path.join(root, UDID, 'plainfile'), 'x');
  assert.equal(
    await confiner.resolve(`${UDID}/plainfile/below`),
    path.join(root, UDID, 'plainfile', 'below'),
  );
});

test('resolveEntry says what the path names: file, folder, missing', async () => {
  const c = new PathConfiner({ udid: UDID, root });
  await fsp.writeFile(path.join(root, UDID, 'Snapshot', 'ab', 'f1'), 'x');
  const kindOf = (p: string): string => c.resolveEntry(p).kind;
  assert.equal(kindOf(`${UDID}/Snapshot/ab/f1`), 'file');
  assert.equal(kindOf(`${UDID}/Snapshot/ab`), 'dir');
  assert.equal(kindOf(`${UDID}/Snapshot/ab/none`), 'missing');
  assert.equal(kindOf(`${UDID}/Snapshot/none/deeper`), 'missing');
  assert.equal(
    c.resolveEntry(`${UDID}/Snapshot/none/deeper`).path,
    path.join(root, UDID, 'Snapshot', 'none', 'deeper'),
  );
  assert.equal(touchesFolders(c.resolveEntry(`${UDID}/Snapshot/ab/f1`)), false);
  assert.equal(touchesFolders(c.resolveEntry(`${UDID}/Snapshot/ab`)), true);
});

test('below folders checked earlier in the run, the last component is still checked', async () => {
  const c = new PathConfiner({ udid: UDID, root });
  const dir = path.join(root, UDID, 'Snapshot', 'cd');
  await fsp.mkdir(dir);
  assert.equal(c.resolveSync(`${UDID}/Snapshot/cd/first`), path.join(dir, 'first'));
  // Planted after the folders were remembered: a symlink as the last component, and as a folder.
  await fsp.symlink(path.join(outer, 'outside', 'secret'), path.join(dir, 'link'));
  await fsp.symlink(path.join(outer, 'outside'), path.join(dir, 'linkdir'));
  assert.throws(() => c.resolveSync(`${UDID}/Snapshot/cd/link`), unsafe);
  assert.throws(() => c.resolveSync(`${UDID}/Snapshot/cd/linkdir/x`), unsafe);
});

test('after forgetAll, a remembered folder that became a symlink is refused', async () => {
  const c = new PathConfiner({ udid: UDID, root });
  const dir = path.join(root, UDID, 'Snapshot', 'ef');
  await fsp.mkdir(dir);
  c.resolveSync(`${UDID}/Snapshot/ef/x`);
  // What a device's move or remove would do (the engine calls forgetAll before it).
  await fsp.rm(dir, { recursive: true });
  await fsp.symlink(path.join(outer, 'outside'), dir);
  c.forgetAll();
  assert.throws(() => c.resolveSync(`${UDID}/Snapshot/ef/secret`), unsafe);
});

test('resolveForReplace: a link as the last component is replaced by the new file, never followed', async () => {
  const c = new PathConfiner({ udid: UDID, root });
  const dir = path.join(root, UDID, 'Snapshot', '0a');
  await fsp.mkdir(dir);
  c.resolveSync(`${UDID}/Snapshot/0a/first`); // the folder is now remembered
  const secret = path.join(outer, 'outside', 'secret');
  const before = await fsp.readFile(secret, 'utf8');
  await fsp.symlink(secret, path.join(dir, 'link'));
  const target = c.resolveForReplace(`${UDID}/Snapshot/0a/link`);
  assert.equal(target, path.join(dir, 'link'));
  // What the receive does with it: a new file beside it, renamed onto the name.
  const sink = TempFile.besideSync(target);
  sink.writeSync(Buffer.from('from the device'));
  sink.commitSync();
  assert.equal(await fsp.readFile(secret, 'utf8'), before, 'the link was followed');
  assert.ok((await fsp.lstat(target)).isFile());
  assert.equal(await fsp.readFile(target, 'utf8'), 'from the device');
  // Folders are still checked: through a linked folder, or with lexical tricks, it is refused.
  await fsp.symlink(path.join(outer, 'outside'), path.join(dir, 'linkdir'));
  assert.throws(() => c.resolveForReplace(`${UDID}/Snapshot/0a/linkdir/x`), unsafe);
  assert.throws(() => c.resolveForReplace(`${UDID}/Snapshot/0a/../../../outside/x`), unsafe);
  assert.throws(() => c.resolveForReplace(`OTHER/Snapshot/0a/x`), unsafe);
  // A folder not checked yet in this run is walked as before.
  assert.throws(
    () => new PathConfiner({ udid: UDID, root }).resolveForReplace(`${UDID}/Snapshot/0a/linkdir/y`),
    unsafe,
  );
});

test('resolveForReplace below a folder it already resolved a file in: every lexical rule still holds', async () => {
  const c = new PathConfiner({ udid: UDID, root });
  const dir = path.join(root, UDID, 'Snapshot', '1b');
  await fsp.mkdir(dir);
  // The second file in a folder takes the short way (the folder as the device spelled it).
  c.resolveForReplace(`${UDID}/Snapshot/1b/first`);
  assert.equal(c.resolveForReplace(`${UDID}/Snapshot/1b/second`), path.join(dir, 'second'));
  const cold = new PathConfiner({ udid: UDID, root });
  const deep = `${UDID}/${Array.from({ length: MAX_CONFINED_PATH_DEPTH - 2 }, () => 'd').join('/')}`;
  await fsp.mkdir(path.join(root, deep), { recursive: true });
  c.resolveForReplace(`${deep}/f`);
  c.resolveForReplace(`${deep}/g`); // that folder's spelling is remembered, at depth 31
  for (const bad of [
    `${UDID}/Snapshot/1b/..`,
    `${UDID}/Snapshot/1b/a\0b`,
    `${UDID}/Snapshot/1b/a\\b`,
    `${UDID}/Snapshot/1b/${'x'.repeat(MAX_CONFINED_PATH_BYTES)}`,
    `${deep}/g/h`, // 33 levels
  ]) {
    assert.throws(() => cold.resolveForReplace(bad), unsafe, JSON.stringify(bad.slice(0, 80)));
    assert.throws(() => c.resolveForReplace(bad), unsafe, JSON.stringify(bad.slice(0, 80)));
  }
  // "x/." and "x/" name the folder itself, not a file in it: never taken as a file's folder.
  assert.equal(c.resolveForReplace(`${UDID}/Snapshot/1b/.`), dir);
  assert.equal(c.resolveForReplace(`${UDID}/Snapshot/1b/`), dir);
  assert.equal(c.resolveForReplace(`${UDID}/Snapshot/1b/./third`), path.join(dir, 'third'));
  assert.equal(c.resolveForReplace(`${UDID}/Snapshot/1b/./fourth`), path.join(dir, 'fourth'));
  assert.equal(c.resolveForReplace(`${UDID}/Snapshot//1b/fifth`), path.join(dir, 'fifth'));
  assert.equal(c.resolveForReplace(`${UDID}/Snapshot/1b/sixth`), path.join(dir, 'sixth'));
});

test('after forgetAll, a folder whose files took the short way is walked again', async () => {
  const c = new PathConfiner({ udid: UDID, root });
  const dir = path.join(root, UDID, 'Snapshot', '2c');
  await fsp.mkdir(dir);
  c.resolveForReplace(`${UDID}/Snapshot/2c/a`);
  c.resolveForReplace(`${UDID}/Snapshot/2c/b`);
  await fsp.rm(dir, { recursive: true });
  await fsp.symlink(path.join(outer, 'outside'), dir);
  c.forgetAll();
  assert.throws(() => c.resolveForReplace(`${UDID}/Snapshot/2c/secret`), unsafe);
  assert.throws(() => c.resolveMoveSource(`${UDID}/Snapshot/2c/secret`), unsafe);
});
