/**
 * Filesystem primitives the store is built from: durable small writes (temp file, fsync, rename,
 * fsync of the folder), directory fsync, and the hard-link copy of a backup tree.
 */
import { constants as fsc, promises as fsp } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { MooringError } from '../util/errors';

/** Whether `p` exists (without following a final symlink). */
export async function exists(p: string): Promise<boolean> {
  try {
    await fsp.lstat(p);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
}

/**
 * Makes a rename or unlink inside `dir` durable. Windows cannot open a folder for fsync; its
 * renames are journaled by NTFS, so it is skipped there.
 */
export async function fsyncDir(dir: string): Promise<void> {
  if (process.platform === 'win32') return;
  const fh = await fsp.open(dir, fsc.O_RDONLY);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export function tempName(file: string): string {
  return `${file}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
}

/** Replaces `file` with `data` atomically and durably (readers see the old or the new, never half). */
export async function writeFileDurable(file: string, data: string | Buffer): Promise<void> {
  const tmp = tempName(file);
  const fh = await fsp.open(tmp, 'wx', 0o644);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await fsp.rename(tmp, file);
  } catch (e) {
    await fsp.rm(tmp, { force: true });
    throw e;
  }
  await fsyncDir(path.dirname(file));
}

/** Renames and makes both folders' entries durable. */
export async function renameDurable(from: string, to: string): Promise<void> {
  await fsp.rename(from, to);
  await fsyncDir(path.dirname(to));
  if (path.dirname(from) !== path.dirname(to)) await fsyncDir(path.dirname(from));
}

export async function unlinkDurable(file: string): Promise<void> {
  try {
    await fsp.unlink(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  await fsyncDir(path.dirname(file));
}

export interface LinkTreeStats {
  dirs: number;
  /** Files shared by a hard link (no bytes written). */
  linked: number;
  /** Files shared by a copy-on-write clone where hard links are refused (e.g. too many links). */
  cloned: number;
  symlinks: number;
  /** Sockets, FIFOs, devices: not part of a backup, not copied. */
  skipped: number;
}

/** Link operations in flight at once (libuv runs them on its thread pool). */
const LINK_CONCURRENCY = 16;
const NO_LINK = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'EMLINK', 'EXDEV', 'ENOSYS']);

/**
 * Recreates the tree `src` at `dst` (which must not exist): folders are made anew, regular files
 * are hard-linked, never byte-copied. Where the filesystem refuses a hard link (too many links to
 * one inode, or no hard links at all), a copy-on-write clone is tried (APFS, Btrfs, XFS); if that
 * is refused too the copy fails with IO, rather than silently duplicating the bytes.
 */
export async function linkTree(src: string, dst: string): Promise<LinkTreeStats> {
  const stats: LinkTreeStats = { dirs: 0, linked: 0, cloned: 0, symlinks: 0, skipped: 0 };
  const stack: Array<[string, string]> = [[src, dst]];
  while (stack.length > 0) {
    const [from, to] = stack.pop()!;
    await fsp.mkdir(to);
    stats.dirs++;
    const entries = await fsp.readdir(from, { withFileTypes: true });
    const files: string[] = [];
    for (const e of entries) {
      if (e.isDirectory()) stack.push([path.join(from, e.name), path.join(to, e.name)]);
      else if (e.isFile()) files.push(e.name);
      else if (e.isSymbolicLink()) {
        await fsp.symlink(await fsp.readlink(path.join(from, e.name)), path.join(to, e.name));
        stats.symlinks++;
      } else stats.skipped++;
    }
    for (let i = 0; i < files.length; i += LINK_CONCURRENCY) {
      await Promise.all(
        files
          .slice(i, i + LINK_CONCURRENCY)
          .map((name) => shareFile(path.join(from, name), path.join(to, name), stats)),
      );
    }
  }
  return stats;
}

async function shareFile(from: string, to: string, stats: LinkTreeStats): Promise<void> {
  try {
    await fsp.link(from, to);
    stats.linked++;
    return;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? '';
    if (!NO_LINK.has(code)) throw e;
    try {
      await fsp.copyFile(from, to, fsc.COPYFILE_FICLONE_FORCE | fsc.COPYFILE_EXCL);
      stats.cloned++;
    } catch (cause) {
      throw new MooringError(
        'IO',
        `Cannot share ${from} with the new backup: the filesystem refuses hard links (${code}) ` +
          `and copy-on-write clones. Use a destination on a filesystem with hard links (APFS, ` +
          `ext4, Btrfs, XFS, NTFS).`,
        { detail: code, cause },
      );
    }
  }
}

export interface FileVisit {
  /** Path relative to the walked root, '/'-separated. */
  rel: string;
  /** `dev:ino`, from 64-bit stat values (inode numbers can exceed 2^53). */
  inode: string;
  size: number;
  nlink: number;
}

/** Calls `visit` for every regular file under `root` (symlinks are not followed). */
export async function walkFiles(
  root: string,
  visit: (f: FileVisit) => void | Promise<void>,
): Promise<void> {
  const stack: string[] = [''];
  while (stack.length > 0) {
    const rel = stack.pop()!;
    const abs = rel === '' ? root : path.join(root, rel);
    let entries;
    try {
      entries = await fsp.readdir(abs, { withFileTypes: true });
    } catch (e) {
      // A folder removed meanwhile (a concurrent prune) is simply not there any more.
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' && rel !== '') continue;
      throw e;
    }
    for (const e of entries) {
      const childRel = rel === '' ? e.name : `${rel}/${e.name}`;
      if (e.isDirectory()) stack.push(childRel);
      else if (e.isFile()) {
        let st;
        try {
          st = await fsp.lstat(path.join(root, childRel), { bigint: true });
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
          throw err;
        }
        if (!st.isFile()) continue;
        await visit({
          rel: childRel,
          inode: `${st.dev}:${st.ino}`,
          size: Number(st.size),
          nlink: Number(st.nlink),
        });
      }
    }
  }
}
