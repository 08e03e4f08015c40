/**
 * The device's moves of files from one folder into another under the same name, held until its
 * next message that is not a move (D38). A full backup stages every payload in
 * `<udid>/Snapshot/xx/` and then moves each into `<udid>/xx/`, which is empty: held together, such
 * a folder's moves are one rename of the folder (folder-ops `moveFolderOfFiles`) instead of one
 * per file, the Move phase's main cost. Anything else is renamed file by file, as before.
 *
 * Held moves stay exact: a move is held only while no held move reads or writes its folders
 * otherwise (each source folder goes to one destination folder, no folder is both a source and a
 * destination), and while no held move's path is a group's folder or a folder above one (D51):
 * so the groups touch disjoint paths, and carrying them out group by group leaves what the
 * device's order would. A move that would break this is not held; the caller carries out what is
 * held first.
 */
import path from 'node:path';
import { moveFolderOfFiles } from './folder-ops';

/**
 * The held names' bytes at most (a backup's name, 40 hex digits, is 21: ~1.2 million moves).
 * A phone's moves come in the order its files were sent, every folder's mixed with the others':
 * a folder is moved whole only if all its moves are held at once, so at a limit of 200,000 moves
 * a 500,000-file backup renamed 400,000 files one by one (~8 s, D51).
 */
export const MAX_HELD_NAME_BYTES = 24 << 20;

/**
 * Moves held at most from one folder: carrying out a group makes its names strings, all at once
 * (to compare them with the folder), and a phone's largest folder holds a few thousand files.
 */
export const MAX_GROUP_MOVES = 200_000;

/** The moves of files from one host folder into another. */
interface Group {
  /** Host folders. */
  from: string;
  to: string;
  /** How the device spelled them (the first time), to move a file on its own. */
  fromDevice: string;
  toDevice: string;
  /** Each file's name, in the order the device sent them. */
  names: NameList;
}

/** A name of 40 lowercase hex digits (a backup's fileID): held as its 20 bytes. */
const HEX_NAME = /^[0-9a-f]{40}$/;
/** Starts a name held as 20 bytes; no name held as text starts with it (a device's paths have no NUL). */
const PACKED = 0x00;
const PACKED_BYTES = 21;
const SEPARATOR = 0x2f; // "/", which ends each name held as text (no name has one)
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** The first chunk of a NameList; each next is twice as large, up to NAME_CHUNK_MAX. */
const NAME_CHUNK_FIRST = 1024;
const NAME_CHUNK_MAX = 16 * 1024;

/**
 * Names in chunks of bytes: a fileID as a marker and its 20 bytes, any other name as UTF-8 ended
 * by a "/". A phone's backup holds hundreds of thousands of moves at once: as strings, each name
 * kept the device's whole path alive (a slice does) and the arrays holding them were reallocated
 * as they grew, ~150 bytes a move on the job thread's heap, scanned by every full collection; here
 * it is 21 bytes off the heap (D50, D51). Chunks are added, never copied into a larger one: the
 * copies left behind, of a few hundred groups at once, were ~20 MiB waiting for a full collection
 * at the top of a 500,000-file backup's peak (D52).
 */
class NameList {
  /** The filled chunks, as views of what each holds (its unused end stays); no entry spans two. */
  private readonly full: Buffer[] = [];
  private buf = Buffer.allocUnsafe(NAME_CHUNK_FIRST);
  private at = 0;
  /** Bytes held. */
  used = 0;
  count = 0;

  /** The entry `name` is held as. */
  static entry(name: string): Buffer {
    if (HEX_NAME.test(name)) {
      const b = Buffer.allocUnsafe(PACKED_BYTES);
      b[0] = PACKED;
      b.write(name, 1, 'hex');
      return b;
    }
    return Buffer.from(`${name}/`);
  }

  push(name: string): void {
    this.count++;
    const packed = HEX_NAME.test(name);
    const most = packed ? PACKED_BYTES : Buffer.byteLength(name) + 1;
    if (this.at + most > this.buf.length) {
      this.full.push(this.buf.subarray(0, this.at));
      this.buf = Buffer.allocUnsafe(Math.max(Math.min(this.buf.length * 2, NAME_CHUNK_MAX), most));
      this.at = 0;
    }
    const before = this.at;
    if (packed) {
      this.buf[this.at] = PACKED;
      this.at += 1 + this.buf.write(name, this.at + 1, 'hex');
    } else {
      this.at += this.buf.write(name, this.at);
      this.buf[this.at++] = SEPARATOR;
    }
    this.used += this.at - before;
  }

  /** Whether `entry` (NameList.entry) is held. */
  has(entry: Buffer): boolean {
    for (const chunk of this.chunks()) {
      for (let at = 0, end = 0; at < chunk.length; at = end) {
        end = next(chunk, at);
        if (end - at === entry.length && chunk.compare(entry, 0, entry.length, at, end) === 0)
          return true;
      }
    }
    return false;
  }

  /** Every name, in order. */
  *[Symbol.iterator](): IterableIterator<string> {
    for (const chunk of this.chunks()) {
      for (let at = 0; at < chunk.length;) {
        const end = next(chunk, at);
        yield chunk[at] === PACKED
          ? chunk.toString('hex', at + 1, end)
          : chunk.toString('utf8', at, end - 1);
        at = end;
      }
    }
  }

  private chunks(): Buffer[] {
    return [...this.full, this.buf.subarray(0, this.at)];
  }
}

/** Where the entry after the one at `at` of `chunk` starts. */
function next(chunk: Buffer, at: number): number {
  return chunk[at] === PACKED ? at + PACKED_BYTES : chunk.indexOf(SEPARATOR, at) + 1;
}

/** How the held moves went. */
export interface DeferredMovesResult {
  /** Folders moved whole. */
  folders: number;
  /** The first failure of a file moved on its own. */
  error?: unknown;
}

export class DeferredMoves {
  /** By source folder, in the order each was first seen. */
  private readonly groups = new Map<string, Group>();
  /** By destination folder. */
  private readonly into = new Map<string, Group>();
  /** The groups' folders and every folder above them, by the folder they are in: no held move may name one. */
  private readonly folders = new Map<string, Set<string>>();
  private held = 0;
  private bytes = 0;

  get size(): number {
    return this.held;
  }

  /**
   * Holds the device's move of `from` onto `to` (confined to host paths `fromPath` and `onto`):
   * false unless it moves a name into another folder under the same name and may wait (the
   * caller carries out what is held, then asks again or moves it at once).
   */
  hold(from: string, to: string, fromPath: string, onto: string): boolean {
    const f = fromPath.lastIndexOf(path.sep);
    const t = onto.lastIndexOf(path.sep);
    const df = from.lastIndexOf('/');
    const dt = to.lastIndexOf('/');
    if (f <= 0 || t <= 0 || df <= 0 || dt <= 0) return false;
    const name = from.slice(df + 1);
    if (name !== fromPath.slice(f + 1) || name !== onto.slice(t + 1)) return false;
    // Held as UTF-8 (NameList), where a lone surrogate would not come back the same: moved at once.
    if (LONE_SURROGATE.test(name)) return false;
    if (this.bytes + Buffer.byteLength(name) + 1 > MAX_HELD_NAME_BYTES) return false;
    const fromDir = fromPath.slice(0, f);
    const toDir = onto.slice(0, t);
    if (fromDir === toDir) return false;
    // Its own paths must not be a group's folder, nor a folder above one.
    if (this.isGroupFolder(fromDir, name) || this.isGroupFolder(toDir, name)) return false;
    let g = this.groups.get(fromDir);
    if (g === undefined) {
      g = this.newGroup(fromDir, toDir, from.slice(0, df), to.slice(0, dt), name);
      if (g === undefined) return false;
    } else if (g.to !== toDir || g.names.count >= MAX_GROUP_MOVES) return false;
    const before = g.names.used;
    g.names.push(name);
    this.bytes += g.names.used - before;
    this.held++;
    return true;
  }

  /**
   * A group for the moves from `fromDir` into `toDir`, its first being `name`'s; undefined when
   * either folder already takes part in another group's moves, or when a held move, or this one,
   * names one of them or a folder above them.
   */
  private newGroup(
    fromDir: string,
    toDir: string,
    fromDevice: string,
    toDevice: string,
    name: string,
  ): Group | undefined {
    if (this.into.has(toDir) || this.into.has(fromDir) || this.groups.has(toDir)) return undefined;
    const added = this.foldersAbove([fromDir, toDir]);
    if (added.get(fromDir)?.has(name) === true || added.get(toDir)?.has(name) === true)
      return undefined; // it moves a folder above its own source or destination
    for (const [dir, names] of added) {
      for (const n of names) if (this.isHeld(dir, n)) return undefined;
    }
    for (const [dir, names] of added) {
      const known = this.folders.get(dir);
      if (known === undefined) this.folders.set(dir, names);
      else for (const n of names) known.add(n);
    }
    const g: Group = { from: fromDir, to: toDir, fromDevice, toDevice, names: new NameList() };
    this.groups.set(fromDir, g);
    this.into.set(toDir, g);
    return g;
  }

  /** Whether `dir/name` is one of the groups' folders or a folder above one. */
  private isGroupFolder(dir: string, name: string): boolean {
    return this.folders.get(dir)?.has(name) === true;
  }

  /** Whether `dir/name` is a held move's source or destination. */
  private isHeld(dir: string, name: string): boolean {
    const entry = NameList.entry(name);
    return (
      this.groups.get(dir)?.names.has(entry) === true ||
      this.into.get(dir)?.names.has(entry) === true
    );
  }

  /** The folders `dirs` and those above them not yet known, by the folder they are in. */
  private foldersAbove(dirs: string[]): Map<string, Set<string>> {
    const added = new Map<string, Set<string>>();
    for (let dir of dirs) {
      for (;;) {
        const parent = path.dirname(dir);
        if (parent === dir) break;
        const base = path.basename(dir);
        if (this.folders.get(parent)?.has(base) === true) break; // and so is everything above it
        const names = added.get(parent) ?? new Set<string>();
        if (names.has(base)) break;
        names.add(base);
        added.set(parent, names);
        dir = parent;
      }
    }
    return added;
  }

  /**
   * Carries out every held move and forgets them, a group at a time. `moveOne` moves one file the
   * usual way (device paths); `check` is called between groups and files (a stop throws from it).
   * A failure of `moveOne` is kept (the first) and the rest go on, as the device's own moves do.
   */
  async settle(
    moveOne: (from: string, to: string) => Promise<void>,
    check: () => void,
  ): Promise<DeferredMovesResult> {
    const groups = [...this.groups.values()];
    this.held = 0;
    this.bytes = 0;
    this.groups.clear();
    this.into.clear();
    this.folders.clear();
    const result: DeferredMovesResult = { folders: 0 };
    for (const g of groups) {
      check();
      let whole = false;
      const names = [...g.names];
      try {
        whole = moveFolderOfFiles(g.from, g.to, names);
      } catch (e) {
        // The files moved, but their folder could not be made again (a file-by-file move would
        // have left it, empty): the device is told.
        if (!('error' in result)) result.error = e;
        result.folders++;
        continue;
      }
      if (whole) {
        result.folders++;
        continue;
      }
      for (const name of names) {
        check();
        try {
          await moveOne(`${g.fromDevice}/${name}`, `${g.toDevice}/${name}`);
        } catch (e) {
          if (!('error' in result)) result.error = e;
        }
      }
    }
    return result;
  }
}
