/**
 * Disk usage of snapshots that share files by hard links: each one's logical size, its payload
 * count, and the bytes it alone holds (inodes that appear in no other snapshot, so deleting it
 * frees them).
 */
import { lstatSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { isBucketName } from '../format/layout';
import { walkFiles } from './fs-util';

export interface TreeUsage {
  /** Payload files (`<xx>/<fileID>`). */
  files: number;
  /** Logical bytes of every regular file in the tree. */
  size: number;
  exclusiveBytes: number;
}

/**
 * Usage of each tree in `dirs` (missing trees count as empty). Files with one link are exclusive
 * by themselves; only multiply-linked inodes go into the cross-tree map, keyed by (dev, ino).
 */
export async function treeUsages(dirs: readonly string[]): Promise<TreeUsage[]> {
  // inode → [index of the one tree holding it, or -1 when several do; its size]
  const owners = new Map<string, [number, number]>();
  const out: TreeUsage[] = dirs.map(() => ({ files: 0, size: 0, exclusiveBytes: 0 }));
  for (const [i, dir] of dirs.entries()) {
    const u = out[i]!;
    try {
      await walkFiles(dir, (f) => {
        u.size += f.size;
        const slash = f.rel.indexOf('/');
        if (slash > 0 && isBucketName(f.rel.slice(0, slash)) && f.rel.indexOf('/', slash + 1) < 0)
          u.files++;
        if (f.nlink <= 1) {
          u.exclusiveBytes += f.size;
          return;
        }
        const o = owners.get(f.inode);
        if (o === undefined) owners.set(f.inode, [i, f.size]);
        else if (o[0] !== i) o[0] = -1;
      });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
  }
  for (const [owner, size] of owners.values()) if (owner >= 0) out[owner]!.exclusiveBytes += size;
  return out;
}

/** A backup folder's listed payloads as a verify just found them (VerifyReport files, bytes, exclusiveBytes). */
export interface VerifiedPayloads {
  files: number;
  bytes: number;
  /** Bytes of those with a single link. */
  exclusiveBytes: number;
}

/**
 * A staged backup folder's usage for its commit record, where "exclusive" means a single link
 * (what no other snapshot shares). With `verified` — a verify that just lstat'ed every payload
 * Manifest.db lists, nothing written since — the payloads are not stat'ed a second time: the
 * bucket folders are only listed, and when they hold as many names as there are verified
 * payloads (which all exist there, so the names are exactly those), the verify's sums are the
 * buckets'. Anything else (an unlisted name, a folder that is not a bucket) walks the tree.
 */
export async function stagedUsage(dir: string, verified?: VerifiedPayloads): Promise<TreeUsage> {
  const listed = verified === undefined ? undefined : listedUsage(dir, verified);
  if (listed) return listed;
  const u: TreeUsage = { files: 0, size: 0, exclusiveBytes: 0 };
  await walkFiles(dir, (f) => {
    u.size += f.size;
    if (/^[0-9a-f]{2}\/[0-9a-f]{40}$/.test(f.rel)) u.files++;
    if (f.nlink <= 1) u.exclusiveBytes += f.size;
  });
  return u;
}

function listedUsage(dir: string, verified: VerifiedPayloads): TreeUsage | undefined {
  let names = 0;
  const u: TreeUsage = {
    files: verified.files,
    size: verified.bytes,
    exclusiveBytes: verified.exclusiveBytes,
  };
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.isDirectory()) {
      if (!isBucketName(e.name)) return undefined;
      names += readdirSync(path.join(dir, e.name)).length;
    } else if (e.isFile()) {
      // Manifest.db and the plists: stat'ed here (walkFiles, too, counts only regular files).
      const st = lstatSync(path.join(dir, e.name), { throwIfNoEntry: false });
      if (!st?.isFile()) return undefined;
      u.size += st.size;
      if (st.nlink <= 1) u.exclusiveBytes += st.size;
    }
  }
  return names === verified.files ? u : undefined;
}
