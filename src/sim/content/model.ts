/**
 * The simulated device's file tree, as the content store keeps it and as backups describe it.
 * One entry per (domain, relativePath), the same key iOS backups use.
 */
import type { EntryType } from '../../format/manifest-db';

/** How a regular file's bytes are produced, so `mutate` can produce a believable new revision. */
export type ContentKind = 'random' | 'text' | 'plist' | 'sqlite-sms' | 'sqlite-addressbook';

/** The "mobile" user and group every user-data file on iOS belongs to. */
export const MOBILE_UID = 501;

export interface ContentEntry {
  domain: string;
  /** '' for a domain's root directory. No leading '/', '/'-separated, no '.' or '..' segments. */
  relativePath: string;
  type: EntryType;
  /** Bytes for files; 0 for directories; the target's length for symlinks (as lstat reports). */
  size: number;
  /** Full st_mode including the type bits. */
  mode: number;
  /** Unix seconds. */
  mtime: number;
  ctime: number;
  birth: number;
  inode: number;
  uid: number;
  gid: number;
  /** Data-protection class (NSFileProtection*): 0 for dirs/links, mostly 3 for files. */
  protectionClass: number;
  /** Lower-case hex digests of the content (files only). */
  sha256?: string;
  sha1?: string;
  /** Symlink target, relative, inside the same domain. */
  target?: string;
  kind?: ContentKind;
  /** Content revision: 0 at generation, the mutate step that last rewrote it afterwards. */
  revision?: number;
}

/** One line of `listing()`: what must be equal before a backup and after a restore. */
export interface ListingEntry {
  domain: string;
  relativePath: string;
  type: EntryType;
  size: number;
  mode: number;
  mtime: number;
  sha256?: string;
  target?: string;
}

export interface ListingJson {
  files: number;
  directories: number;
  symlinks: number;
  /** Sum of regular file sizes. */
  bytes: number;
  /** Sorted by domain, then relativePath (code-unit order). */
  entries: ListingEntry[];
}

export function entryKey(domain: string, relativePath: string): string {
  return `${domain}\u0000${relativePath}`;
}

export function compareEntries(
  a: { domain: string; relativePath: string },
  b: { domain: string; relativePath: string },
): number {
  if (a.domain !== b.domain) return a.domain < b.domain ? -1 : 1;
  if (a.relativePath === b.relativePath) return 0;
  return a.relativePath < b.relativePath ? -1 : 1;
}

export function toListingEntry(e: ContentEntry): ListingEntry {
  const out: ListingEntry = {
    domain: e.domain,
    relativePath: e.relativePath,
    type: e.type,
    size: e.size,
    mode: e.mode,
    mtime: e.mtime,
  };
  if (e.type === 'file' && e.sha256 !== undefined) out.sha256 = e.sha256;
  if (e.type === 'symlink' && e.target !== undefined) out.target = e.target;
  return out;
}

export function buildListing(entries: readonly ContentEntry[]): ListingJson {
  const sorted = [...entries].sort(compareEntries);
  let files = 0;
  let directories = 0;
  let symlinks = 0;
  let bytes = 0;
  for (const e of sorted) {
    if (e.type === 'file') {
      files++;
      bytes += e.size;
    } else if (e.type === 'dir') directories++;
    else symlinks++;
  }
  return { files, directories, symlinks, bytes, entries: sorted.map(toListingEntry) };
}

/** Entry arrays already seen to be in compareEntries order (checked once per array). */
const sortedArrays = new WeakSet<readonly ContentEntry[]>();

/**
 * Whether `entries` are in compareEntries order (what entryIndex's binary search needs); checked
 * once per array. The store checks an index it opens at start-up, so a backup never pays for it.
 */
export function inKeyOrder(entries: readonly ContentEntry[]): boolean {
  if (sortedArrays.has(entries)) return true;
  for (let i = 1; i < entries.length; i++)
    if (compareEntries(entries[i - 1]!, entries[i]!) >= 0) return false;
  sortedArrays.add(entries);
  return true;
}

/** Sorts `entries` in place into compareEntries order, and remembers that it is. */
export function sortEntries(entries: ContentEntry[]): ContentEntry[] {
  entries.sort(compareEntries);
  sortedArrays.add(entries);
  return entries;
}

/**
 * Position of the entry (domain, relativePath) in `entries`, or -1: a binary search when the
 * array is in compareEntries order (the store keeps it so), a scan otherwise. Lets a backup look
 * up the few keys that changed instead of building a key for each of 100,000 entries.
 */
export function entryIndex(
  entries: readonly ContentEntry[],
  domain: string,
  relativePath: string,
): number {
  const key = { domain, relativePath };
  if (!inKeyOrder(entries))
    return entries.findIndex((e) => e.domain === domain && e.relativePath === relativePath);
  let lo = 0;
  let hi = entries.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const c = compareEntries(entries[mid]!, key);
    if (c === 0) return mid;
    if (c < 0) lo = mid + 1;
    else hi = mid - 1;
  }
  return -1;
}

/** Positions in `entries` of the existing entries among `keys` (entryKey form), ascending. */
export function entryIndexes(entries: readonly ContentEntry[], keys: Iterable<string>): number[] {
  const out: number[] = [];
  for (const key of keys) {
    const [domain, relativePath] = key.split('\u0000') as [string, string];
    const i = entryIndex(entries, domain, relativePath);
    if (i >= 0) out.push(i);
  }
  return out.sort((a, b) => a - b);
}
