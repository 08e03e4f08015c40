/**
 * The simulated device's own copy of the Manifest.db it last built, so that an incremental backup
 * costs what changed rather than what the device holds (docs/BENCHMARKS.md, issue 6).
 *
 * `<content>/manifest-cache/Manifest.db` holds the rows of the device's content at generation
 * `state.json.generation` (ContentStore's change journal), built with the backup keys `keyId`.
 * - Building the next Manifest.db: the cached file, with only the rows the journal names since
 *   then deleted and re-inserted (instead of encoding every MBFile again), is what is uploaded.
 *   A backup runs this in slices beside its uploads.
 * - Reading the host's previous Manifest.db: when it is the cached file byte for byte (hosts keep
 *   what the device sent), it is the device's own and only the journal's keys are looked at.
 *   Both the byte comparison (FileSink, as the file arrives) and the journal keys' cached rows
 *   (beginCompare) are done while the host is still sending.
 *   Otherwise the host's rows identical in every column to a cached row are the device's own; only
 *   the others are decoded and validated (in SQLite: ATTACH + NOT EXISTS on the cache's fileID
 *   key). The host file stays untrusted: its shape is checked (row count, duplicates), every row
 *   that differs is validated as readManifestDb does.
 * Without a usable cache (first backup, a journal reset by a restore or wipe, other keys), both
 * fall back to the full work, and the cache is rebuilt.
 */
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { fileIdFor } from '../../format/file-id';
import {
  checkManifestShape,
  decodeManifestRow,
  isManifestRow,
  MANIFEST_ROW_SELECT,
  manifestRowColumns,
  MAX_MANIFEST_ROWS,
  openManifestDb,
  prepareRowInsert,
  writeManifestDb,
  type ManifestRow,
} from '../../format/manifest-db';
import { MooringError } from '../../util/errors';
import type { ContentEntry } from '../content/model';
import { entryIndexes, entryKey } from '../content/model';
import type { ContentStore } from '../content/store';
import type { SimEncryptionKeys } from './encryption';

export const MANIFEST_CACHE_DIR = 'manifest-cache';
/** Piece size when comparing the host's Manifest.db with the cache byte for byte. */
const COMPARE_CHUNK_BYTES = 4 * 1024 * 1024;
/** Longest stretch of the cache's read-ahead or update without letting the event loop turn. */
const UPDATE_SLICE_MS = 3;
/** Changed entries encoded into rows at a time by the update. */
const UPDATE_ROWS_AT_ONCE = 64;

interface CacheState {
  /** -1 while the file is being changed (a crash then leaves an unusable cache, not a wrong one). */
  generation: number;
  keyId: string;
}

/** The host's previous Manifest.db, as far as it differs from what the device last built. */
export interface ManifestDelta {
  /** Keys whose host row may differ from the current entry: all other host rows are current. */
  candidates: Set<string>;
  /** The host's row for a candidate key (undefined: the host has none). */
  previousRow(key: string): ManifestRow | undefined;
  /** Host rows decoded (the others were compared in SQLite only). */
  decodedRows: number;
  /** The host's file was the cached one byte for byte (no row compared). */
  identical: boolean;
}

export type RowsFor = (entries: readonly ContentEntry[]) => Array<Omit<ManifestRow, 'fileId'>>;

function keyIdOf(enc: SimEncryptionKeys | undefined): string {
  if (!enc) return 'plain';
  return createHash('sha256').update(enc.keyBag).update(enc.fileKeySecret).digest('hex');
}

export class ManifestCache {
  readonly dir: string;
  readonly dbFile: string;
  private readonly stateFile: string;
  /** What beginCompare read ahead: valid for the cache state named by `stamp`. */
  private early: Promise<{ stamp: string; rows: Map<string, ManifestRow> } | undefined> | undefined;

  constructor(
    private readonly store: ContentStore,
    private readonly enc: SimEncryptionKeys | undefined,
  ) {
    this.dir = path.join(store.dir, MANIFEST_CACHE_DIR);
    this.dbFile = path.join(this.dir, 'Manifest.db');
    this.stateFile = path.join(this.dir, 'state.json');
  }

  /**
   * Entry keys changed since the cache was built; undefined when the cache cannot be used. `stamp`
   * names this state of the cache and content: equal stamps, nothing of either changed between.
   */
  private async changes(): Promise<
    { generation: number; changed: Set<string>; stamp: string } | undefined
  > {
    let state: Partial<CacheState>;
    try {
      state = JSON.parse(await fsp.readFile(this.stateFile, 'utf8')) as Partial<CacheState>;
    } catch {
      return undefined;
    }
    if (typeof state.generation !== 'number' || state.keyId !== keyIdOf(this.enc)) return undefined;
    const changed = this.store.changedSince(state.generation);
    if (!changed) return undefined;
    const st = await fsp.stat(this.dbFile, { bigint: true }).catch(() => undefined);
    if (!st) return undefined;
    const stamp = [state.generation, this.store.generation, st.size, st.mtimeNs, st.ino].join('/');
    return { generation: state.generation, changed, stamp };
  }

  /**
   * Call before asking the host for its Manifest.db (no lock needed): notes the cache's state and,
   * on the next turn of the event loop, reads the cached rows of the changed keys, while the host
   * is still sending. compareHost uses them if the cache and content have not moved since (the
   * same stamp), so that the device answers at once when the host's file arrives. The device
   * knows what it last sent before the host sends it back: no different on the wire.
   */
  async beginCompare(): Promise<void> {
    const c = await this.changes().catch(() => undefined);
    if (!c) return;
    this.early = this.readAhead(c.changed)
      .then((rows) => ({ stamp: c.stamp, rows }))
      .catch(() => undefined); // e.g. another session is rewriting the cache: compare later
  }

  /**
   * The cache's rows of `keys`, read in slices of a few ms from the next turn of the event loop
   * on: the host's stream, arriving meanwhile, is still read as it comes.
   */
  private async readAhead(keys: Set<string>): Promise<Map<string, ManifestRow>> {
    await nextTurn();
    const db = openManifestDb(this.dbFile);
    try {
      const byId = db.prepare(`SELECT ${manifestRowColumns()} FROM Files WHERE fileID = ?`);
      const rows = new Map<string, ManifestRow>();
      let slice: string[] = [];
      let lastTurn = performance.now();
      for (const key of keys) {
        slice.push(key);
        if (slice.length < 16) continue;
        for (const [k, r] of cachedRows(byId, slice)) rows.set(k, r);
        slice = [];
        if (performance.now() - lastTurn >= UPDATE_SLICE_MS) {
          await nextTurn();
          lastTurn = performance.now();
        }
      }
      for (const [k, r] of cachedRows(byId, slice)) rows.set(k, r);
      return rows;
    } finally {
      db.close();
    }
  }

  private async writeState(generation: number): Promise<void> {
    const tmp = `${this.stateFile}.tmp`;
    await fsp.writeFile(tmp, JSON.stringify({ generation, keyId: keyIdOf(this.enc) }));
    await fsp.rename(tmp, this.stateFile);
  }

  /**
   * The host's Manifest.db (a plain, already opened-once copy) compared with the cache; undefined
   * when the cache cannot be used (the caller then reads every row). Throws MALFORMED / LIMIT on
   * what a device refuses: a bad shape, an invalid row among those that differ.
   * `sameAsCache`: whether the file was found, as it arrived, to be the cache's bytes (a
   * FileSink with the cache as reference, after beginCompare); trusted only if the cache has not
   * moved since beginCompare, otherwise the files are compared here.
   * Call with the content store's lock held (the cache and the journal must not move).
   */
  async compareHost(
    hostDb: string,
    opts: { sameAsCache?: boolean } = {},
  ): Promise<ManifestDelta | undefined> {
    const c = await this.changes();
    if (!c) return undefined;
    const early = await this.early;
    this.early = undefined;
    const ahead = early !== undefined && early.stamp === c.stamp ? early : undefined;
    // What hosts do: keep the file the device sent byte for byte. Then it is the device's own, and
    // only the journal's keys can differ from what the device holds (no row needs reading).
    const same =
      ahead !== undefined && opts.sameAsCache !== undefined
        ? opts.sameAsCache
        : await sameBytes(hostDb, this.dbFile);
    if (same) return ahead ? ownDeltaOf(c.changed, ahead.rows) : this.ownDelta(c.changed);
    const db = openManifestDb(hostDb);
    try {
      const count = checkManifestShape(db, hostDb, MAX_MANIFEST_ROWS);
      db.prepare('ATTACH DATABASE ? AS cache').run(this.dbFile);
      // The cache is ours and keyed by fileID: one index lookup per host row.
      const differing = db.prepare(
        `SELECT ${MANIFEST_ROW_SELECT} FROM main.Files n WHERE NOT EXISTS (SELECT 1 FROM cache.Files c
          WHERE c.fileID = n.fileID AND c.domain = n.domain AND c.relativePath = n.relativePath
          AND c.flags = n.flags AND c.file = n.file)`,
      );
      const hostRows = new Map<string, ManifestRow>();
      for (const raw of differing.iterate() as IterableIterator<Record<string, unknown>>) {
        const row = decodeManifestRow(raw);
        if (!isManifestRow(row)) {
          throw new MooringError('MALFORMED', `Manifest.db (${hostDb}): ${row.problem}`);
        }
        hostRows.set(entryKey(row.domain, row.relativePath), row);
      }
      const cacheCount = (
        db.prepare('SELECT count(*) AS n FROM cache.Files').get() as { n: number }
      ).n;
      // Cached rows the host lacks (only looked for when the counts say there are some); a LEFT
      // JOIN, so that a host file without a fileID index costs a temporary index, not a scan per row.
      const missing = new Set<string>();
      if (count - hostRows.size !== cacheCount) {
        const rows = db
          .prepare(
            `SELECT c.domain AS domain, c.relativePath AS relativePath FROM cache.Files c
              LEFT JOIN main.Files n ON n.fileID = c.fileID WHERE n.fileID IS NULL`,
          )
          .all() as Array<{ domain: string; relativePath: string }>;
        for (const r of rows) missing.add(entryKey(r.domain, r.relativePath));
      }
      const candidates = new Set<string>([...c.changed, ...hostRows.keys(), ...missing]);
      const cached = db.prepare(`SELECT ${manifestRowColumns()} FROM cache.Files WHERE fileID = ?`);
      // Rows of the cache the host has unchanged, for the (few) candidates: read now, while the
      // file is open and the cache cannot change.
      const fromCache = cachedRows(
        cached,
        [...c.changed].filter((key) => !hostRows.has(key) && !missing.has(key)),
      );
      return {
        candidates,
        previousRow: (key) => hostRows.get(key) ?? fromCache.get(key),
        decodedRows: hostRows.size + fromCache.size,
        identical: false,
      };
    } finally {
      db.close();
    }
  }

  /** The delta when the host holds exactly the cached file: the changed keys, rows from the cache. */
  private ownDelta(changed: Set<string>): ManifestDelta {
    const db = openManifestDb(this.dbFile);
    try {
      const cached = db.prepare(`SELECT ${manifestRowColumns()} FROM Files WHERE fileID = ?`);
      return ownDeltaOf(changed, cachedRows(cached, changed));
    } finally {
      db.close();
    }
  }

  /**
   * Builds the cache now if it cannot be used (new content, other keys): at start-up, as a phone
   * has its file database before any backup, so that a device's first backup does not spend
   * seconds encoding every row while a host waits (and is measured: issue 6). True if built.
   */
  async prepare(rowsFor: RowsFor): Promise<boolean> {
    return this.store.withLock(async () => {
      if (await this.changes()) return false;
      await this.build(this.store.currentEntries(), rowsFor);
      return true;
    });
  }

  /**
   * Brings the cache to the store's current generation and returns its path: the complete
   * Manifest.db for `entries` (the store's current snapshot). Only the journal's keys are
   * re-encoded when the cache is usable; otherwise every row is written. Lock held, as above.
   */
  async build(entries: readonly ContentEntry[], rowsFor: RowsFor): Promise<string> {
    const c = await this.changes();
    await fsp.mkdir(this.dir, { recursive: true });
    await this.writeState(-1);
    if (c && (await this.update(entries, c.changed, rowsFor))) {
      // only the changed rows were written
    } else {
      await fsp.rm(this.dbFile, { force: true });
      await fsp.rm(`${this.dbFile}-journal`, { force: true });
      writeManifestDb(this.dbFile, rowsFor(entries));
    }
    await this.writeState(this.store.generation);
    return this.dbFile;
  }

  /**
   * Deletes the rows of `changed` keys and inserts the current ones; false if the file would not.
   * In slices of a few ms: a backup runs it beside its uploads (which mostly wait on the host).
   * No journal on disk and no fsync: state.json says -1 until it is done, so a crash mid-way
   * leaves an unusable cache (rebuilt), never a wrong one.
   */
  private async update(
    entries: readonly ContentEntry[],
    changedKeys: Set<string>,
    rowsFor: RowsFor,
  ): Promise<boolean> {
    // In the entries' order (the order rows were inserted in before, so the same file).
    const changed = entryIndexes(entries, changedKeys).map((i) => entries[i]!);
    let db: Database.Database;
    try {
      db = new Database(this.dbFile, { fileMustExist: true });
    } catch {
      return false;
    }
    let lastTurn = performance.now();
    const pace = async (): Promise<void> => {
      if (performance.now() - lastTurn < UPDATE_SLICE_MS) return;
      await nextTurn();
      lastTurn = performance.now();
    };
    try {
      db.pragma('journal_mode = MEMORY');
      db.pragma('synchronous = OFF');
      const del = db.prepare('DELETE FROM Files WHERE fileID = ?');
      const insert = prepareRowInsert(db);
      db.exec('BEGIN');
      try {
        for (const key of changedKeys) {
          const [domain, relativePath] = key.split('\u0000') as [string, string];
          del.run(fileIdFor(domain, relativePath));
          await pace();
        }
        for (let i = 0; i < changed.length; i += UPDATE_ROWS_AT_ONCE) {
          for (const r of rowsFor(changed.slice(i, i + UPDATE_ROWS_AT_ONCE))) {
            insert(r);
            await pace();
          }
        }
        db.exec('COMMIT');
      } finally {
        if (db.inTransaction) db.exec('ROLLBACK');
      }
      return true;
    } catch {
      return false;
    } finally {
      db.close();
    }
  }
}

/** The delta when the host holds exactly the cached file: the changed keys, rows from the cache. */
function ownDeltaOf(changed: Set<string>, fromCache: Map<string, ManifestRow>): ManifestDelta {
  return {
    candidates: new Set(changed),
    previousRow: (key) => fromCache.get(key),
    decodedRows: fromCache.size,
    identical: true,
  };
}

/** Whether two files hold the same bytes (read in large pieces; a size difference ends it at once). */
export async function sameBytes(a: string, b: string): Promise<boolean> {
  let fa: fsp.FileHandle | undefined;
  let fb: fsp.FileHandle | undefined;
  try {
    fa = await fsp.open(a, 'r');
    fb = await fsp.open(b, 'r');
    const [sa, sb] = await Promise.all([fa.stat(), fb.stat()]);
    if (sa.size !== sb.size) return false;
    const ba = Buffer.allocUnsafe(COMPARE_CHUNK_BYTES);
    const bb = Buffer.allocUnsafe(COMPARE_CHUNK_BYTES);
    for (let off = 0; off < sa.size; off += COMPARE_CHUNK_BYTES) {
      const n = Math.min(COMPARE_CHUNK_BYTES, sa.size - off);
      const [ra, rb] = await Promise.all([fa.read(ba, 0, n, off), fb.read(bb, 0, n, off)]);
      if (ra.bytesRead !== n || rb.bytesRead !== n) return false;
      if (!ba.subarray(0, n).equals(bb.subarray(0, n))) return false;
    }
    return true;
  } catch {
    return false; // a missing or unreadable cache: compare row by row instead
  } finally {
    await fa?.close();
    await fb?.close();
  }
}

/** The cache's rows for these `domain\0relativePath` keys (a statement selecting by fileID). */
function cachedRows(
  byFileId: Database.Statement,
  keys: Iterable<string>,
): Map<string, ManifestRow> {
  const rows = new Map<string, ManifestRow>();
  for (const key of keys) {
    const [domain, relativePath] = key.split('\u0000') as [string, string];
    const raw = byFileId.get(fileIdFor(domain, relativePath)) as
      Record<string, unknown> | undefined;
    if (!raw) continue;
    const row = decodeManifestRow(raw);
    if (isManifestRow(row)) rows.set(key, row);
  }
  return rows;
}
