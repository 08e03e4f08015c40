/**
 * Filesystem primitives the store is built from: durable small writes (temp file, fsync, rename,
 * fsync of the folder), directory fsync, and the hard-link copy of a backup tree.
 */
import {
  constants as fsc,
  copyFileSync,
  linkSync,
  lstatSync,
  mkdirSync,
  promises as fsp,
  readdirSync,
  readlinkSync,
  symlinkSync,
} from 'node:fs';
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
 * mkdir of one level, an existing folder being fine. Never `-p`: the store's folders live in the
 * backup folder, and a backup folder removed (or a disk unplugged) mid-backup must stay gone.
 */
export async function mkdirOne(dir: string): Promise<void> {
  try {
    await fsp.mkdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
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

const NO_LINK = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'EMLINK', 'EXDEV', 'ENOSYS']);

/**
 * Longest run of synchronous filesystem calls before yielding to the event loop. The tree walks
 * below use synchronous calls: for 100,000 files an awaited call each costs ~20 µs of main-thread
 * time in the thread-pool hand-off against ~3 µs for the call itself (docs/BENCHMARKS.md), and
 * waiting for many at once saves nothing. Yielding keeps timers and sockets (an agent's API)
 * served meanwhile.
 */
const MAX_SYNC_TURN_NS = 20_000_000n;

/** Awaits a macrotask when the current synchronous run is long enough. */
export class TurnBudget {
  private start = process.hrtime.bigint();
  private ops = 0;

  async tick(): Promise<void> {
    // Reading the clock costs too: check it every 64 operations.
    if ((++this.ops & 63) !== 0 || process.hrtime.bigint() - this.start < MAX_SYNC_TURN_NS) return;
    await new Promise<void>((resolve) => setImmediate(resolve));
    this.start = process.hrtime.bigint();
  }
}

/**
 * Recreates the tree `src` at `dst` (which must not exist): folders are made anew, regular files
 * are hard-linked, never byte-copied. Where the filesystem refuses a hard link (too many links to
 * one inode, or no hard links at all), a copy-on-write clone is tried (APFS, Btrfs, XFS); if that
 * is refused too the copy fails with IO, rather than silently duplicating the bytes.
 */
export interface LinkTreeOptions {
  /** Names directly under `src` left out (not linked, not copied). */
  leaveOut?: readonly string[];
  /** `dst` exists already (empty): only its contents are made. */
  dstExists?: boolean;
  /** Stops the copy between two entries (it then rejects: IO, detail ABORTED). */
  signal?: AbortSignal;
}

export async function linkTree(
  src: string,
  dst: string,
  opts: LinkTreeOptions = {},
): Promise<LinkTreeStats> {
  const stats: LinkTreeStats = { dirs: 0, linked: 0, cloned: 0, symlinks: 0, skipped: 0 };
  const stack: Array<[string, string]> = [[src, dst]];
  const budget = new TurnBudget();
  const leaveOut = new Set(opts.leaveOut ?? []);
  while (stack.length > 0) {
    const [from, to] = stack.pop()!;
    const top = from === src;
    if (!top || opts.dstExists !== true) mkdirSync(to);
    stats.dirs++;
    for (const e of readdirSync(from, { withFileTypes: true })) {
      if (opts.signal?.aborted === true)
        throw new MooringError('IO', `the copy of ${src} was stopped`, { detail: 'ABORTED' });
      if (top && leaveOut.has(e.name)) continue;
      const f = path.join(from, e.name);
      const t = path.join(to, e.name);
      if (e.isDirectory()) stack.push([f, t]);
      else if (e.isFile()) shareFile(f, t, stats);
      else if (e.isSymbolicLink()) {
        symlinkSync(readlinkSync(f), t);
        stats.symlinks++;
      } else stats.skipped++;
      await budget.tick();
    }
  }
  return stats;
}

function shareFile(from: string, to: string, stats: LinkTreeStats): void {
  try {
    linkSync(from, to);
    stats.linked++;
    return;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? '';
    if (!NO_LINK.has(code)) throw e;
    try {
      copyFileSync(from, to, fsc.COPYFILE_FICLONE_FORCE | fsc.COPYFILE_EXCL);
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
  const budget = new TurnBudget();
  while (stack.length > 0) {
    const rel = stack.pop()!;
    const abs = rel === '' ? root : path.join(root, rel);
    let entries;
    try {
      entries = readdirSync(abs, { withFileTypes: true });
    } catch (e) {
      // A folder removed meanwhile (a concurrent prune) is simply not there any more.
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' && rel !== '') continue;
      throw e;
    }
    for (const e of entries) {
      const childRel = rel === '' ? e.name : `${rel}/${e.name}`;
      if (e.isDirectory()) stack.push(childRel);
      else if (e.isFile()) {
        // 64-bit values: inode numbers can exceed 2^53. throwIfNoEntry: a removed file is skipped.
        const st = lstatSync(path.join(root, childRel), { bigint: true, throwIfNoEntry: false });
        if (st?.isFile()) {
          const r = visit({
            rel: childRel,
            inode: `${st.dev}:${st.ino}`,
            size: Number(st.size),
            nlink: Number(st.nlink),
          });
          if (r) await r;
        }
      }
      await budget.tick();
    }
  }
}
