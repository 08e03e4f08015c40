/**
 * The filesystem side of the DeviceLink folder requests (reference §4.4), on paths that were
 * already confined. Everything obeys THE RULE (brief: hard-linked snapshots share inodes): nothing
 * here opens an existing file for writing — removes unlink, moves rename, copies create new files.
 */
import {
  constants as fsc,
  lstatSync,
  mkdirSync,
  opendirSync,
  promises as fsp,
  readdirSync,
  renameSync,
  unlinkSync,
} from 'node:fs';
import path from 'node:path';
import { DlFileType } from '../protocol/device-link';
import { setDictEntry } from '../protocol/plist';
import type { PlistDict } from '../protocol/plist/types';
import { errnoOf } from '../util/errors';
import { removeTree } from '../util/remove-tree';
import { isTempFileName } from './atomic-file';
import { errnoError } from './dl-status';

/** Most entries one DLContentsOfDirectory answer lists (real backup folders have ≤ 260). */
export const MAX_LISTING_ENTRIES = 100_000;
/** Most files and folders one DLMessageCopyItem may copy, and how deep. */
export const MAX_COPY_ENTRIES = 1_000_000;
export const MAX_COPY_DEPTH = 32;

async function lstatOrUndefined(p: string): Promise<import('node:fs').Stats | undefined> {
  try {
    return await fsp.lstat(p);
  } catch (e) {
    if (errnoOf(e) === 'ENOENT') return undefined;
    throw e;
  }
}

// The per-file requests below (listing entries, mkdir, remove, move) use synchronous calls: a
// backup makes one per file, and an awaited fs call costs several times the syscall itself in
// thread-pool hand-offs (docs/BENCHMARKS.md). Whole trees (remove, copy) stay asynchronous.

/**
 * Non-recursive listing: name → {DLFileType, DLFileSize, DLFileModificationDate}. A missing folder
 * lists as empty (what the device expects). Symlinks and other odd entries are "Unknown" and never
 * followed; our own temp files are left out.
 */
export async function listDirectory(dir: string): Promise<PlistDict> {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (e) {
    const errno = errnoOf(e);
    if (errno === 'ENOENT' || errno === 'ENOTDIR') return {};
    throw e;
  }
  const out: PlistDict = {};
  let n = 0;
  for (const name of names.sort()) {
    if (isTempFileName(name)) continue;
    if (n++ >= MAX_LISTING_ENTRIES) break;
    const st = lstatSync(path.join(dir, name), { throwIfNoEntry: false });
    if (!st) continue; // removed meanwhile
    // Names were chosen by the device: `__proto__` must stay a key, not a prototype.
    setDictEntry(out, name, {
      DLFileType: st.isDirectory()
        ? DlFileType.DIRECTORY
        : st.isFile()
          ? DlFileType.REGULAR
          : DlFileType.UNKNOWN,
      DLFileSize: st.size,
      DLFileModificationDate: st.mtime,
    });
  }
  return out;
}

/**
 * mkdir -p below `root`, mode 0755; an existing folder is success, an existing file is EEXIST.
 * `root` itself is never created: a backup folder removed (or a disk unplugged) mid-backup must
 * stay gone and fail the backup, not be re-created half-empty by the device's next request.
 */
export async function createDirectory(root: string, dir: string): Promise<void> {
  const rel = path.relative(root, dir);
  if (rel === '' || rel === '..' || rel.startsWith(`..${path.sep}`) || path.isAbsolute(rel)) {
    throw errnoError('EINVAL', `${dir} is not below ${root}`);
  }
  try {
    mkdirSync(dir, { mode: 0o755 }); // the usual case: the parent exists
  } catch (e) {
    const errno = errnoOf(e);
    if (errno === 'ENOENT') {
      let current = root;
      for (const segment of rel.split(path.sep)) {
        current = path.join(current, segment);
        try {
          mkdirSync(current, { mode: 0o755 });
        } catch (e2) {
          if (errnoOf(e2) !== 'EEXIST') throw e2;
        }
      }
    } else if (errno !== 'EEXIST') throw e;
  }
  if (!lstatSync(dir).isDirectory())
    throw errnoError('EEXIST', `${dir} exists and is not a directory`);
}

/** Deletes a file or a whole tree (unlinking; symlinks are removed, never followed). Missing is fine. */
export async function removeItem(p: string): Promise<void> {
  try {
    unlinkSync(p); // the usual case: one file
    return;
  } catch (e) {
    const errno = errnoOf(e);
    if (errno === 'ENOENT') return;
    // A folder (EISDIR on Linux, EPERM on macOS) or another refusal: the general way decides.
    if (errno !== 'EISDIR' && errno !== 'EPERM' && errno !== 'EACCES') throw e;
  }
  await removeTree(p);
}

/**
 * rename(src, dst). A destination that exists is removed first when a rename could not replace
 * it (a folder on either side); a file over a file is replaced by rename itself, atomically. The
 * source is checked first, so a bogus move never deletes the destination.
 *
 * The usual case (a file over a file or over nothing) is one rename: it fails without touching
 * anything when the source is missing (ENOENT, reaching the device as −6) or when a folder is in
 * the way, and only then are the two looked at.
 */
export async function moveItem(src: string, dst: string): Promise<void> {
  if (path.resolve(src) === path.resolve(dst)) {
    lstatSync(src); // ENOENT for a missing source, as any other move
    return;
  }
  if (renameFileOnto(src, dst)) return;
  const s = lstatSync(src);
  const d = lstatSync(dst, { throwIfNoEntry: false });
  if (d && (d.isDirectory() || s.isDirectory())) await removeItem(dst);
  renameSync(src, dst);
}

/**
 * One rename(src, dst): true when done. False, with nothing changed, when a folder is in the way
 * (on either side), so the caller takes moveItem's general path; other errors (ENOENT for a
 * missing source) are thrown. A link at `dst` is replaced, never followed.
 */
export function renameFileOnto(src: string, dst: string): boolean {
  try {
    renameSync(src, dst);
    return true;
  } catch (e) {
    const errno = errnoOf(e);
    if (errno === 'EISDIR' || errno === 'ENOTDIR' || errno === 'ENOTEMPTY' || errno === 'EEXIST')
      return false;
    throw e;
  }
}

/**
 * Moves every file of folder `src` into the empty folder `dst` under the same names, as one rename
 * of the folder itself (replacing the empty `dst`), then makes `src` again, empty, with its mode:
 * the state that renaming each file would leave, for one rename instead of one per file (D38).
 * Only when `src` holds exactly `names`, each a regular file, and `dst` is an empty folder; false,
 * with nothing changed, otherwise or when the rename is refused (Windows cannot replace a folder),
 * and the caller renames the files one by one. Both paths were confined by the caller.
 */
export function moveFolderOfFiles(src: string, dst: string, names: readonly string[]): boolean {
  if (!isEmptyFolder(dst)) return false;
  let entries: import('node:fs').Dirent[];
  try {
    entries = readdirSync(src, { withFileTypes: true });
  } catch {
    return false;
  }
  if (entries.length !== names.length) return false;
  const wanted = new Set(names);
  if (wanted.size !== names.length) return false; // a name moved twice: the second one fails
  for (const e of entries) if (!e.isFile() || !wanted.has(e.name)) return false;
  let mode: number;
  try {
    mode = lstatSync(src).mode & 0o7777;
    renameSync(src, dst);
  } catch {
    return false;
  }
  mkdirSync(src, { mode }); // a failure here comes after the move: the caller tells the device
  return true;
}

/** A folder with nothing in it (false for anything else, or nothing there). */
function isEmptyFolder(dir: string): boolean {
  let d: import('node:fs').Dir;
  try {
    d = opendirSync(dir);
  } catch {
    return false;
  }
  try {
    return d.readSync() === null;
  } finally {
    d.closeSync();
  }
}

/**
 * Copies a file or a folder tree into NEW files (O_EXCL after removing the destination; reflinks
 * where the filesystem has them, still new inodes). Symlinks and special files are refused.
 */
export async function copyItem(src: string, dst: string): Promise<void> {
  await fsp.lstat(src); // ENOENT before anything at the destination is touched
  if (path.resolve(src) === path.resolve(dst)) return;
  if (await lstatOrUndefined(dst)) await removeItem(dst);
  const budget = { entries: 0 };
  await copyTree(src, dst, 0, budget);
}

async function copyTree(
  src: string,
  dst: string,
  depth: number,
  budget: { entries: number },
): Promise<void> {
  if (++budget.entries > MAX_COPY_ENTRIES) {
    throw errnoError('EFBIG', `copy of more than ${MAX_COPY_ENTRIES} entries refused`);
  }
  const st = await fsp.lstat(src);
  if (st.isSymbolicLink()) throw errnoError('ELOOP', `${src} is a symlink`);
  if (st.isFile()) {
    await fsp.copyFile(src, dst, fsc.COPYFILE_EXCL | fsc.COPYFILE_FICLONE);
    return;
  }
  if (!st.isDirectory()) throw errnoError('EINVAL', `${src} is not a file or folder`);
  if (depth >= MAX_COPY_DEPTH)
    throw errnoError('ELOOP', `copy deeper than ${MAX_COPY_DEPTH} levels`);
  await fsp.mkdir(dst, { mode: 0o755 });
  for (const name of (await fsp.readdir(src)).sort()) {
    if (isTempFileName(name)) continue;
    await copyTree(path.join(src, name), path.join(dst, name), depth + 1, budget);
  }
}
