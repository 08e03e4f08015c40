/**
 * Confinement of device-sent paths. Every path in a DeviceLink message or file stream is chosen by
 * the device, which is untrusted: a compromised or buggy phone must not be able to make us write,
 * move, list or delete anything outside its own folder `<root>/<udid>/`.
 *
 * Lexical rules first (relative, starts with the device's UDID, no `..`, no NUL or backslash,
 * bounded length and depth), then the filesystem: no component of the existing prefix may be a
 * symlink, and the deepest existing component must really lie under the root (realpath). Paths that
 * do not exist yet are fine: mkdir/rename create real directories and files, never links.
 */
import { lstatSync, realpathSync, type Stats } from 'node:fs';
import path from 'node:path';
import { MooringError } from '../util/errors';
import { MAX_DL_PATH_BYTES } from '../protocol/device-link';
import type { BackupTarget } from './target';

/** Longest device path accepted (UTF-8 bytes), as LIMD's file-name bound. */
export const MAX_CONFINED_PATH_BYTES = MAX_DL_PATH_BYTES;
/** Deepest device path accepted (segments, the UDID included); real ones have at most 4. */
export const MAX_CONFINED_PATH_DEPTH = 32;

function unsafe(devicePath: string, why: string): MooringError {
  const shown = devicePath.length > 200 ? `${devicePath.slice(0, 200)}…` : devicePath;
  return new MooringError('UNSAFE_PATH', `refused device path ${JSON.stringify(shown)}: ${why}`, {
    detail: shown,
  });
}

/**
 * The lexical checks: returns the path's segments (empty and "." segments dropped), the first
 * being the UDID. Throws UNSAFE_PATH. A rule on a single segment added here must be added to
 * isPlainName too: PathConfiner.resolveForReplace checks a file's name with that alone.
 */
export function devicePathSegments(udid: string, devicePath: string): string[] {
  if (typeof devicePath !== 'string' || devicePath.length === 0) {
    throw unsafe(String(devicePath), 'it is empty');
  }
  if (devicePath.includes('\0')) throw unsafe(devicePath, 'it contains a NUL character');
  // A UTF-16 unit is at most 3 bytes of UTF-8: only a path that long can be over the bound.
  if (
    devicePath.length * 3 > MAX_CONFINED_PATH_BYTES &&
    Buffer.byteLength(devicePath, 'utf8') > MAX_CONFINED_PATH_BYTES
  ) {
    throw unsafe(devicePath, `it is longer than ${MAX_CONFINED_PATH_BYTES} bytes`);
  }
  // A backslash is a separator on Windows; no real device path contains one.
  if (devicePath.includes('\\')) throw unsafe(devicePath, 'it contains a backslash');
  // Without backslashes, absolute on either system means a leading "/" or a drive ("C:").
  if (devicePath.startsWith('/') || /^[A-Za-z]:/.test(devicePath)) {
    throw unsafe(devicePath, 'it is absolute');
  }
  // This runs for every file and every move a device sends: one pass, no filtered copy.
  const segments: string[] = [];
  for (const s of devicePath.split('/')) {
    if (s === '..') throw unsafe(devicePath, 'it contains a ".." segment');
    if (s !== '' && s !== '.') segments.push(s);
  }
  if (segments.length > MAX_CONFINED_PATH_DEPTH) {
    throw unsafe(devicePath, `it is deeper than ${MAX_CONFINED_PATH_DEPTH} levels`);
  }
  if (segments[0] !== udid)
    throw unsafe(devicePath, `it is not inside the device's folder ${udid}/`);
  if (process.platform === 'win32' && segments.some((s) => s.includes(':'))) {
    throw unsafe(devicePath, 'it contains ":" (an alternate data stream on Windows)');
  }
  return segments;
}

/** Most folder spellings PathConfiner remembers (a backup has ~520 folders: 256 buckets, twice). */
const MAX_KNOWN_PARENTS = 4096;

/** What a resolved path names on disk right now (its last component, by lstat). */
export type ConfinedEntryKind = 'missing' | 'file' | 'dir' | 'other';

export interface ConfinedEntry {
  path: string;
  kind: ConfinedEntryKind;
}

/**
 * Resolves device paths for one target; remembers the root's real path, and the folders it has
 * already checked during this run. The checks use synchronous calls (an lstat per segment and one
 * realpath): this runs for every file a device sends, and an awaited fs call costs several times
 * the syscall in thread-pool hand-offs.
 *
 * A backup of many small files resolves the same few hundred folders (`<udid>/Snapshot/xx`) once
 * per file, twice more for the final move. A folder checked once (lstat: a real folder, its real
 * path inside the root) is not checked again, so such a path costs one lstat, of its last
 * component, which is always checked (except for a file renamed onto it: `resolveForReplace`). Only the engine changes the namespace under the root during
 * a run, and only a move, remove or copy can put something else where a checked folder was: the
 * caller calls `forgetAll()` before any of those touches a folder (`touchesFolders`). Creating
 * folders and files never creates links (THE RULE).
 *
 * Change tracking (BackupTarget.trackChanges): every resolution is taken as an intent to change
 * the path and is reported to the target before it is returned (a refused path is not), except
 * `resolveForRead` (listings, sources of copies) and `resolveForMkdir` of a folder that already
 * exists. So an operation cannot change a path it did not report: it had to resolve it first.
 */
export class PathConfiner {
  private realRoot: string | undefined;
  private deviceDir: string | undefined;
  /** Host paths of folders checked during this run; with each, all its ancestors below root. */
  private readonly knownDirs = new Set<string>();
  /**
   * Device paths of folders in knownDirs, as the device spelled them (`<udid>/Snapshot/0a`), that
   * passed the lexical checks: each with its host path and depth. A file below one needs only its
   * own name checked (`resolveForReplace`); cleared with knownDirs.
   */
  private readonly knownParents = new Map<string, { host: string; depth: number }>();

  /** The target's change recorder, if it keeps one. */
  private readonly willChange: ((devicePath: string) => void) | undefined;

  constructor(readonly target: BackupTarget) {
    this.willChange = target.trackChanges?.();
  }

  /** The host path for `devicePath` (to be changed), or UNSAFE_PATH (detail: the device path). */
  async resolve(devicePath: string): Promise<string> {
    return this.resolveEntry(devicePath).path;
  }

  /** resolve(), synchronously (throws instead of rejecting). */
  resolveSync(devicePath: string): string {
    return this.resolveEntry(devicePath).path;
  }

  /** resolveEntry() for a path only read (listed, sent, copied from): not reported as changed. */
  resolveForRead(devicePath: string): ConfinedEntry {
    const segments = devicePathSegments(this.target.udid, devicePath);
    return this.locate(devicePath, segments);
  }

  /** resolveEntry() for mkdir -p: an existing folder stays as it is, so it is not reported. */
  resolveForMkdir(devicePath: string): ConfinedEntry {
    const entry = this.resolveForRead(devicePath);
    if (entry.kind !== 'dir') this.willChange?.(devicePath);
    return entry;
  }

  /**
   * resolveSync() for a path a new file is put at (TempFile.freshSync): only its folder is
   * checked, not its last component — the file is created with O_EXCL, which fails on anything
   * there (a link included, never followed), and is then written beside it and renamed onto it:
   * rename(2) replaces a link instead of following it, and fails on a folder. Saves an lstat per
   * received file.
   */
  resolveForReplace(devicePath: string): string {
    // A backup's files come a few hundred folders over and over: below a folder whose device
    // path passed every check, only the last name and the whole path's length are left to check.
    const cut = typeof devicePath === 'string' ? devicePath.lastIndexOf('/') : -1;
    const known = cut > 0 ? this.knownParents.get(devicePath.slice(0, cut)) : undefined;
    if (known !== undefined && known.depth < MAX_CONFINED_PATH_DEPTH) {
      const name = devicePath.slice(cut + 1);
      if (isPlainName(name) && devicePath.length * 3 <= MAX_CONFINED_PATH_BYTES) {
        this.willChange?.(devicePath);
        return known.host + path.sep + name;
      }
    }
    const segments = devicePathSegments(this.target.udid, devicePath);
    const n = segments.length;
    if (n > 1) {
      this.deviceDir ??= path.join(this.target.root, this.target.udid);
      let parent = this.deviceDir;
      for (let i = 1; i < n - 1; i++) parent += path.sep + segments[i]!;
      if (this.knownDirs.has(parent)) {
        this.rememberParent(devicePath, cut, parent, n - 1);
        this.willChange?.(devicePath);
        return parent + path.sep + segments[n - 1]!;
      }
    }
    return this.resolveEntry(devicePath).path;
  }

  /**
   * Remembers the device's spelling of a checked folder, `devicePath` up to `cut` (its last "/"),
   * only when what follows is a plain name: "x/." or "x/" names x itself, not a file in it.
   * Spellings are remembered as sent ("a//b" and "a/b" are two), so their number is bounded.
   */
  private rememberParent(devicePath: string, cut: number, host: string, depth: number): void {
    if (cut <= 0 || this.knownParents.size >= MAX_KNOWN_PARENTS) return;
    if (!isPlainName(devicePath.slice(cut + 1))) return;
    this.knownParents.set(devicePath.slice(0, cut), { host, depth });
  }

  /**
   * resolveForReplace() for the source of a move tried as one rename: its folder is checked, its
   * own name is not looked at (rename(2) moves a link itself, never what it points to, and fails
   * with nothing changed on a folder in the way). Undefined when the source is a folder checked
   * during this run: moving one must take the general way (`forgetAll`). A folder not checked
   * yet may be renamed as it is: no checked folder lies below it (each is remembered with all its
   * ancestors), and a checked folder it replaces (rename only replaces an empty one) is still a
   * real folder at that path. Saves the device's Move phase an lstat per file.
   */
  resolveMoveSource(devicePath: string): string | undefined {
    const p = this.resolveForReplace(devicePath);
    return this.knownDirs.has(p) ? undefined : p;
  }

  /**
   * resolveSync(), and what the path names now (a move or remove uses it: `touchesFolders`).
   * Reported as changed.
   */
  resolveEntry(devicePath: string): ConfinedEntry {
    const segments = devicePathSegments(this.target.udid, devicePath);
    const entry = this.locate(devicePath, segments);
    this.willChange?.(devicePath);
    return entry;
  }

  /** The filesystem checks of a lexically checked path. */
  private locate(devicePath: string, segments: string[]): ConfinedEntry {
    this.realRoot ??= realpathSync.native(this.target.root);
    this.deviceDir ??= path.join(this.target.root, this.target.udid);
    // Segments are lexically clean (no separators, "." or ".."), so concatenation gives what
    // path.join would; segments[0] is the UDID.
    const n = segments.length;
    let hostPath = this.deviceDir;
    for (let i = 1; i < n; i++) hostPath += path.sep + segments[i]!;
    // The usual case: the parent folder was checked earlier in this run (and so were all above
    // it), so only the last component is looked at.
    if (n > 1) {
      const last = segments[n - 1]!;
      const parent = hostPath.slice(0, hostPath.length - last.length - path.sep.length);
      if (this.knownDirs.has(parent)) {
        const st = lstatOrUndefined(hostPath);
        if (st?.isSymbolicLink()) throw unsafe(devicePath, `${last} on this computer is a symlink`);
        if (st?.isDirectory()) this.knownDirs.add(hostPath);
        return { path: hostPath, kind: kindOf(st) };
      }
    }
    return { path: hostPath, kind: this.walk(devicePath, segments) };
  }

  /** Every segment not remembered yet: lstat each, then realpath. Returns the last one's kind. */
  private walk(devicePath: string, segments: string[]): ConfinedEntryKind {
    let current = this.target.root;
    let deepestExisting = this.target.root;
    let kind: ConfinedEntryKind = 'missing';
    /** A folder above the last component was checked now, not remembered. */
    let newFolders = false;
    const dirs: string[] = [];
    for (let i = 0; i < segments.length; i++) {
      const segment = segments[i]!;
      const last = i === segments.length - 1;
      current = i === 0 ? this.deviceDir! : current + path.sep + segment;
      if (!last && this.knownDirs.has(current)) {
        deepestExisting = current;
        continue;
      }
      const st = lstatOrUndefined(current);
      // The rest does not exist (yet): nothing below can be a link.
      if (st === undefined) break;
      if (st.isSymbolicLink()) throw unsafe(devicePath, `${segment} on this computer is a symlink`);
      deepestExisting = current;
      if (!last) newFolders = true;
      if (st.isDirectory()) dirs.push(current);
      if (last) kind = kindOf(st);
    }
    // Below remembered folders only the last component was looked at, and it is no link: the real
    // path is known to be inside without asking.
    if (newFolders) {
      const real = realpathSync.native(deepestExisting);
      const rel = path.relative(this.realRoot!, real);
      if (rel === '..' || rel.startsWith(`..${path.sep}`) || path.isAbsolute(rel)) {
        throw unsafe(devicePath, 'it resolves outside the backup folder');
      }
    }
    for (const d of dirs) this.knownDirs.add(d);
    return kind;
  }

  /** A move, remove or copy is about to change folders under the root: check everything again. */
  forgetAll(): void {
    this.knownDirs.clear();
    this.knownParents.clear();
  }
}

/**
 * A last segment that devicePathSegments would keep as it is and accept: not empty, "." or "..",
 * no NUL, no backslash (no "/": it is what follows the last one), no ":" on Windows.
 */
function isPlainName(name: string): boolean {
  return (
    name !== '' &&
    name !== '.' &&
    name !== '..' &&
    !name.includes('\0') &&
    !name.includes('\\') &&
    (process.platform !== 'win32' || !name.includes(':'))
  );
}

/**
 * lstat, with undefined for a path that does not exist (ENOENT, or ENOTDIR: a file in the middle,
 * which the operation itself will report to the device). No exception is built for ENOENT, the
 * usual answer for a new file: building one costs more than the lstat itself.
 */
function lstatOrUndefined(p: string): Stats | undefined {
  try {
    return lstatSync(p, { throwIfNoEntry: false });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
    throw e;
  }
}

function kindOf(st: Stats | undefined): ConfinedEntryKind {
  if (st === undefined) return 'missing';
  return st.isDirectory() ? 'dir' : st.isFile() ? 'file' : 'other';
}

/**
 * Whether an operation on these entries may move, replace or delete a folder (and so must come
 * after `forgetAll()`): anything but files and missing paths.
 */
export function touchesFolders(...entries: ConfinedEntry[]): boolean {
  return entries.some((e) => e.kind === 'dir' || e.kind === 'other');
}
