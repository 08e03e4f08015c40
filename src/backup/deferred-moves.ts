/**
 * The device's moves of files from one folder into another under the same name, held until its
 * next message that is not a move (D38). A full backup stages every payload in
 * `<udid>/Snapshot/xx/` and then moves each into `<udid>/xx/`, which is empty: held together, such
 * a folder's moves are one rename of the folder (folder-ops `moveFolderOfFiles`) instead of one
 * per file, the Move phase's main cost. Anything else is renamed file by file, as before.
 *
 * Held moves stay exact: a move is held only while no held move reads or writes its folders
 * otherwise (each source folder goes to one destination folder, no folder is both a source and a
 * destination), so the groups touch disjoint paths and may be carried out in any order; and when a
 * held move names a folder of a group, or a folder above one, every move is carried out file by
 * file in the order the device sent them.
 */
import path from 'node:path';
import { moveFolderOfFiles } from './folder-ops';

/**
 * Moves held at most (each its name's bytes and one, off V8's heap: NameList); at the limit they
 * are carried out and holding begins again.
 */
export const MAX_DEFERRED_MOVES = 200_000;

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

/**
 * Names in one growing buffer, UTF-8, each ended by a "/" (which no name has). A phone's backup
 * holds 200,000 moves at once: as strings, each name kept the device's whole path alive (a slice
 * does) and the arrays holding them were reallocated as they grew, ~150 bytes a move on the job
 * thread's heap, scanned by every full collection; here it is the name's own bytes (D50).
 */
class NameList {
  private buf = Buffer.allocUnsafe(1024);
  private used = 0;

  push(name: string): void {
    const most = Buffer.byteLength(name) + 1;
    if (this.used + most > this.buf.length) {
      const bigger = Buffer.allocUnsafe(Math.max(2 * this.buf.length, this.used + most));
      this.buf.copy(bigger, 0, 0, this.used);
      this.buf = bigger;
    }
    this.used += this.buf.write(name, this.used);
    this.buf[this.used++] = SEPARATOR;
  }

  /** Every name, in order. */
  *[Symbol.iterator](): IterableIterator<string> {
    for (let at = 0; at < this.used;) {
      const end = this.buf.indexOf(SEPARATOR, at);
      yield this.buf.toString('utf8', at, end);
      at = end + 1;
    }
  }
}

const SEPARATOR = 0x2f; // "/"
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

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
  /** Every group's destination folder. */
  private readonly into = new Set<string>();
  /**
   * Every held move's group, in the device's order (its name is the group's next), as runs: a
   * group, then how many moves in a row are its.
   */
  private order: Array<Group | number> = [];
  private held = 0;

  get size(): number {
    return this.held;
  }

  /**
   * Holds the device's move of `from` onto `to` (confined to host paths `fromPath` and `onto`):
   * false unless it moves a name into another folder under the same name and may wait (the
   * caller carries out what is held, then asks again or moves it at once).
   */
  hold(from: string, to: string, fromPath: string, onto: string): boolean {
    if (this.held >= MAX_DEFERRED_MOVES) return false;
    const f = fromPath.lastIndexOf(path.sep);
    const t = onto.lastIndexOf(path.sep);
    const df = from.lastIndexOf('/');
    const dt = to.lastIndexOf('/');
    if (f <= 0 || t <= 0 || df <= 0 || dt <= 0) return false;
    const name = from.slice(df + 1);
    if (name !== fromPath.slice(f + 1) || name !== onto.slice(t + 1)) return false;
    // Held as UTF-8 (NameList), where a lone surrogate would not come back the same: moved at once.
    if (LONE_SURROGATE.test(name)) return false;
    const fromDir = fromPath.slice(0, f);
    const toDir = onto.slice(0, t);
    if (fromDir === toDir) return false;
    let g = this.groups.get(fromDir);
    if (g === undefined) {
      // A new pair of folders: neither may already take part in another group's moves.
      if (this.into.has(toDir) || this.into.has(fromDir) || this.groups.has(toDir)) return false;
      g = {
        from: fromDir,
        to: toDir,
        fromDevice: from.slice(0, df),
        toDevice: to.slice(0, dt),
        names: new NameList(),
      };
      this.groups.set(fromDir, g);
      this.into.add(toDir);
    } else if (g.to !== toDir) return false;
    g.names.push(name);
    this.held++;
    const last = this.order.length - 2;
    if (last >= 0 && this.order[last] === g) (this.order[last + 1] as number)++;
    else this.order.push(g, 1);
    return true;
  }

  /**
   * Carries out every held move and forgets them. `moveOne` moves one file the usual way (device
   * paths); `check` is called between groups and files (a stop throws from it). A failure of
   * `moveOne` is kept (the first) and the rest go on, as the device's own moves do.
   */
  async settle(
    moveOne: (from: string, to: string) => Promise<void>,
    check: () => void,
  ): Promise<DeferredMovesResult> {
    const groups = [...this.groups.values()];
    const order = this.order;
    this.order = [];
    this.held = 0;
    this.groups.clear();
    this.into.clear();
    const result: DeferredMovesResult = { folders: 0 };
    const one = async (g: Group, name: string): Promise<void> => {
      check();
      try {
        await moveOne(`${g.fromDevice}/${name}`, `${g.toDevice}/${name}`);
      } catch (e) {
        if (!('error' in result)) result.error = e;
      }
    };
    if (namesAGroupFolder(groups)) {
      const next = new Map(groups.map((g) => [g, g.names[Symbol.iterator]()]));
      for (let r = 0; r < order.length; r += 2) {
        const g = order[r] as Group;
        const names = next.get(g)!;
        for (let k = order[r + 1] as number; k > 0; k--) await one(g, names.next().value as string);
      }
      return result;
    }
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
      if (whole) result.folders++;
      else for (const name of names) await one(g, name);
    }
    return result;
  }
}

/**
 * Whether a held move's source or destination is one of the groups' folders or a folder above
 * one: carrying it out could change what another group moves, so order matters.
 */
function namesAGroupFolder(groups: readonly Group[]): boolean {
  // Parent folder → names of group folders (and of folders above them) in it.
  const folders = new Map<string, Set<string>>();
  for (const g of groups) {
    for (let dir of [g.from, g.to]) {
      for (;;) {
        const parent = path.dirname(dir);
        if (parent === dir) break;
        const names = folders.get(parent) ?? new Set<string>();
        if (names.has(path.basename(dir))) break; // and so is everything above it
        names.add(path.basename(dir));
        folders.set(parent, names);
        dir = parent;
      }
    }
  }
  for (const g of groups) {
    const a = folders.get(g.from);
    const b = folders.get(g.to);
    if (a === undefined && b === undefined) continue;
    for (const name of g.names) if (a?.has(name) === true || b?.has(name) === true) return true;
  }
  return false;
}
