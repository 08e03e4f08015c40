/**
 * Disk usage of snapshots that share files by hard links: each one's logical size, its payload
 * count, and the bytes it alone holds (inodes that appear in no other snapshot, so deleting it
 * frees them).
 */
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
