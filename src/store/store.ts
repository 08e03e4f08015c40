/**
 * The versioned, crash-safe store of one device's backups under a destination folder:
 *
 *   <dest>/<UDID>/                          the latest complete backup, Finder/iTunes layout
 *   <dest>/.mooring/<UDID>/snapshots/<id>/  earlier complete backups (files hard-linked, shared)
 *   <dest>/.mooring/<UDID>/staging/<id>/<UDID>/  a backup in progress (hard-link copy of the latest)
 *   <dest>/.mooring/<UDID>/next/<UDID>/     the next backup's copy of the latest, made ahead (D42)
 *   <dest>/.mooring/<UDID>/journal.json     the commit or prune in progress
 *   <dest>/.mooring/<UDID>/snapshots.json   snapshot metadata
 *   <dest>/.mooring/<UDID>/lock             which process is changing any of this
 *
 * Commit is two renames under a journal (latest → snapshots/<prevId>, staging → latest); prune
 * renames a snapshot into trash/ before deleting it. Either is rolled forward by the next open.
 * A staging folder without a commit journal is never taken for a backup: it is discarded. A copy
 * made ahead in `next/` is taken only whole (its record is written last) and only while the latest
 * is still the folder it was made from.
 * Because files are shared by hard links, nothing here (nor in the backup engine) ever writes
 * into an existing file; deleting a snapshot only removes names.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { Worker } from 'node:worker_threads';
import { MooringError } from '../util/errors';
import { removeTree } from '../util/remove-tree';
import { INFO_PLIST, STATUS_PLIST } from '../format/layout';
import { readStatusPlist, type StatusPlistInfo } from '../format/status-plist';
import { exists, linkTree, mkdirOne, renameDurable, tempName, writeFileDurable } from './fs-util';
import {
  clearJournal,
  readJournal,
  writeJournal,
  type CommitJournal,
  type PruneJournal,
} from './journal';
import { compareSnapshotIds, dateOfSnapshotId, isSnapshotId, newSnapshotId } from './ids';
import { DeviceLock } from './lock';
import {
  emptyMetadata,
  isSoundRecord,
  readMetadata,
  recordDate,
  writeMetadata,
  type SnapshotDamage,
  type SnapshotRecord,
  type SnapshotStatus,
  type StoreMetadata,
} from './metadata';
import { damageFromReport } from './damage';
import {
  DEFAULT_RETENTION,
  planRetention,
  type RetentionDecision,
  type RetentionPolicy,
} from './retention';
import { planRoom, type RoomCandidate, type RoomPlan, type RoomPolicy } from './make-room';
import { stagedUsage, treeUsages, type VerifiedPayloads } from './usage';
import { readRowsAhead, verifyBackupFolder, type VerifyOptions, type VerifyReport } from './verify';
import type { RowsReadAhead } from './manifest-rows-off-thread';
import { PayloadChangeRecord } from './payload-changes';
import {
  diffBackups,
  extractFiles,
  listFiles,
  type BackupDiff,
  type BackupFileEntry,
  type DiffOptions,
  type ExtractResult,
  type FileQuery,
} from './browse';

/** The folder the engine writes into (the same shape as src/backup/target.ts's BackupTarget). */
export interface BackupTargetLike {
  readonly udid: string;
  readonly root: string;
  /** The engine reports what it changes (BackupTarget.trackChanges; Staging keeps a record). */
  trackChanges?(): (devicePath: string) => void;
  /** The device's Manifest.db is in (BackupTarget.manifestReceived; Staging reads it ahead). */
  manifestReceived?(file: string): void;
}

export interface SnapshotInfo {
  id: string;
  date: Date;
  pinned: boolean;
  isLatest: boolean;
  status: SnapshotStatus;
  isFull?: boolean;
  adopted: boolean;
  /** Payload files. */
  files: number;
  /** Logical bytes of all its files. */
  size: number;
  /** Bytes in no other snapshot: what deleting it would free. */
  exclusiveBytes: number;
  /** Its backup folder (`<dest>/<UDID>` for the latest). */
  path: string;
  /** A verification found it damaged on disk (see SnapshotStore.checkSnapshot). */
  damaged?: SnapshotDamage;
}

/** beginStaging options (fault matrix: repairing a damaged latest). */
export interface StagingOptions {
  /** Stage an empty folder instead of a hard-link copy of the latest (a full backup repairs). */
  fresh?: boolean;
  /**
   * Return once the staging folder exists and hard-link the latest into it meanwhile: the links
   * of a large backup take a second or more, which a job overlaps with opening the device's
   * session and the device's own preparation. `Staging.ready` settles when they are done. Before,
   * no one may write the staged folder except a new `Info.plist` (left out of the links for that:
   * every backup writes its own, before the device sends anything); once `topLevelReady` has
   * settled, the top-level files may be read and replaced, and anything may be done outside the
   * folders it names (D32).
   */
  linkInBackground?: boolean;
}

export interface CommitMeta {
  /** Whether the device sent everything (defaults to the staged Status.plist's IsFullBackup). */
  isFull?: boolean;
}

export type CommitStep =
  'journal' | 'moved-latest' | 'moved-staged' | 'metadata' | 'staging-removed' | 'cleared';
export type PruneStep = 'journal' | 'trashed' | 'metadata' | 'removed' | 'cleared';
/** Fault matrix kill points: opening (lock taken, recovery done) and staging (made, linked). */
export type OpenStep = 'locked' | 'recovered';
export type StagingStep = 'created' | 'linked';
/** Fault matrix kill point: the next backup's copy made, its record not yet written. */
export type NextStep = 'linked';
export type StoreOp = 'commit' | 'prune' | 'open' | 'staging' | 'next';

export interface StoreHooks {
  /**
   * Called after each durable step of a commit or prune. Crash tests stop the process here;
   * nothing else should use it.
   */
  afterStep?: (
    op: StoreOp,
    step: CommitStep | PruneStep | OpenStep | StagingStep | NextStep,
  ) => void | Promise<void>;
}

export interface StoreOptions {
  hooks?: StoreHooks;
  /** The clock for new snapshot ids (tests). */
  now?: () => Date;
  /**
   * A staging's verify reads Manifest.db's rows on another thread, and ahead (D34), from this
   * size on, unless its options say otherwise (tests: 0; default ROWS_OFF_THREAD_BYTES).
   */
  rowsOffThreadBytes?: number;
}

export interface RecoveryReport {
  /** The journal found and rolled forward. */
  journal?: 'commit' | 'prune';
  discardedStaging: string[];
  /** Id given to a backup folder found without metadata (another tool's, or replaced in place). */
  adopted?: string;
  /** Set when another process holds the lock, so recovery was left to it. */
  skipped?: string;
  /** Housekeeping after an interruption (a stale lock broken, a prune given up). */
  notes: string[];
  /**
   * What the store found changed about its backups outside a backup, and how it brought its
   * records in line: the person should hear of these (a folder deleted or replaced by hand or by
   * another tool, snapshots.json unreadable).
   */
  found: string[];
}

/** SnapshotStore.prepareNext: the next backup's copy of the latest, made ahead (D42). */
export interface PreparedNext {
  /** The snapshot it is a copy of (the latest). */
  base: string;
  /** It was there already, made from this very latest: nothing was done. */
  reused: boolean;
  /** Files hard-linked (or cloned) now. */
  files: number;
  seconds: number;
}

export interface PruneResult {
  pruned: RetentionDecision[];
  kept: RetentionDecision[];
}

/** The file that says who is working on a device's backups (store/lock). */
export function deviceLockFile(dest: string, udid: string): string {
  return path.join(path.resolve(dest), '.mooring', udid, 'lock');
}

/** UDIDs as used in backup folder names: hex with an optional dash, nothing path-like. */
const UDID = /^[A-Za-z0-9][A-Za-z0-9-]{0,63}$/;

/**
 * In `staging/<id>/`, beside `<udid>/` (the device never sees it, the commit does not take it): the
 * read ahead's own link to the device's Manifest.db, so the device may move the file meanwhile.
 */
const READ_AHEAD_LINK = 'read-ahead-Manifest.db';

/** In `next/`, written last: the copy beside it is complete, and what it was made from (D42). */
const NEXT_RECORD = 'next.json';
/** The device lock's purpose while prepareNext holds it (another process's message shows it). */
const PREPARING = 'preparing the next backup';

export class Staging implements BackupTargetLike {
  private state: 'open' | 'committed' | 'discarded' | 'failed' = 'open';
  private _verified: VerifiedPayloads | undefined;
  /** What the engine changed since the links were made; none until an engine asks to track. */
  private changes: PayloadChangeRecord | undefined;
  private linking: Promise<void> = Promise.resolve();
  private topLevel: Promise<ReadonlySet<string>> = Promise.resolve(new Set());
  private readonly stopLinking = new AbortController();
  /** The options the coming verify will be given (expectVerify), and its rows' read begun. */
  private expectedVerify: VerifyOptions | undefined;
  private readAhead: RowsReadAhead | undefined;

  /** @internal created by SnapshotStore.beginStaging */
  constructor(
    private readonly store: SnapshotStore,
    readonly id: string,
    /** `staging/<id>`, which contains `<udid>/`. */
    readonly root: string,
    readonly udid: string,
    /** The folder it was staged from by hard links (the latest snapshot), if any. */
    readonly baseDir?: string,
    /** Its copy of the latest was made ahead, after the previous backup (D42): ready at once. */
    readonly preparedAhead = false,
  ) {}

  /**
   * Settles when the staged folder holds its hard-link copy of the latest (at once unless it
   * was begun with `linkInBackground`); rejects when that copy failed (the staging can then
   * only be discarded).
   */
  get ready(): Promise<void> {
    return this.linking;
  }

  /**
   * Settles once the staged folder's top level is in place — the latest's top-level files linked,
   * its folders made — with the names of the folders the links may still be filling until
   * `ready` (none once the copy is complete, or when it was made before beginStaging returned).
   * Rejects when the copy failed before. Messages of the device that stay out of those folders
   * may be handled from then on (backup/linking-gate, D32).
   */
  get topLevelReady(): Promise<ReadonlySet<string>> {
    return this.topLevel;
  }

  /** @internal SnapshotStore.beginStaging: the links made in the background. */
  _linkInBackground(
    link: (signal: AbortSignal, onTopLevel: (folders: readonly string[]) => void) => Promise<void>,
  ): void {
    let topLevel!: (folders: ReadonlySet<string>) => void;
    const made = new Promise<ReadonlySet<string>>((resolve) => (topLevel = resolve));
    this.linking = link(this.stopLinking.signal, (folders) => topLevel(new Set(folders)));
    // A copy that fails before its top level is in place fails that wait too.
    this.topLevel = Promise.race([made, this.linking.then(() => new Set<string>())]);
    // Awaited by ready, topLevelReady, commit and discard; never an unhandled rejection meanwhile.
    this.linking.catch(() => undefined);
    this.topLevel.catch(() => undefined);
  }

  /** @internal commit and discard: no link is being made any more (stopped first on discard). */
  async _linksSettled(stop: boolean): Promise<void> {
    if (stop) this.stopLinking.abort();
    await this.linking.catch((e: unknown) => {
      if (!stop) throw e;
    });
  }

  /** The staged backup folder, `<root>/<udid>`. */
  get backupDir(): string {
    return path.join(this.root, this.udid);
  }

  get isOpen(): boolean {
    return this.state === 'open';
  }

  /**
   * Makes the staged backup the latest (journaled; see the file comment). Refused unless its
   * Status.plist says finished. The lock is released whatever happens; after a failure the
   * journal stays and the next open (or the next operation) finishes the commit.
   */
  async commit(meta: CommitMeta = {}): Promise<SnapshotInfo> {
    this.assertOpen();
    await this.endReadAhead(); // a verify not made after all
    // A copy that failed leaves the staging open: the caller discards it.
    await this._linksSettled(false);
    try {
      const info = await this.store._commit(this, meta);
      this.state = 'committed';
      return info;
    } catch (e) {
      if (!(e instanceof MooringError && e.detail === 'NOT_FINISHED')) this.state = 'failed';
      throw e;
    }
  }

  /** Throws the staged backup away and releases the lock. */
  async discard(): Promise<void> {
    if (this.state !== 'open') return;
    this.state = 'discarded';
    await this.endReadAhead();
    await this.store._discard(this);
  }

  /**
   * The options `verify` will be given, told before the engine runs: its read of Manifest.db's
   * rows then begins as soon as the device has sent the file (manifestReceived, D34).
   */
  expectVerify(opts: VerifyOptions): void {
    this.expectedVerify = opts;
  }

  /**
   * BackupTarget.manifestReceived: `file` (in this folder, under Snapshot/ until the device moves
   * it) is the device's new Manifest.db, complete. With expectVerify told, the verify's read of its
   * rows begins now, on another thread, while the device moves its files into place; the verify
   * takes it only if it is still the very file, and the read it makes (RowsReadAhead).
   */
  manifestReceived(file: string): void {
    if (this.state !== 'open' || this.expectedVerify === undefined) return;
    void this.endReadAhead();
    this.readAhead = readRowsAhead(
      file,
      this.verifyOptions(this.expectedVerify),
      path.join(this.root, READ_AHEAD_LINK),
    );
  }

  /** @internal tests: the thread reading ahead, until a verify takes it or it is ended. */
  get _readAheadWorker(): Worker | undefined {
    return this.readAhead?.worker;
  }

  private async endReadAhead(): Promise<void> {
    const ahead = this.readAhead;
    this.readAhead = undefined;
    await ahead?.end();
  }

  /**
   * BackupTarget.trackChanges: the engine (every PathConfiner on this folder) reports each path
   * before it changes it. Without an engine asking, there is no record and the verify checks
   * every payload.
   */
  trackChanges(): (devicePath: string) => void {
    // Nothing to compare with (a first or fresh backup): every row is read anyway, keep no record.
    if (this.baseDir === undefined) return () => undefined;
    const record = (this.changes ??= new PayloadChangeRecord(this.udid));
    return (devicePath) => record.note(devicePath);
  }

  /**
   * With `hashOnlyUnshared` (the snapshot it was staged from was verified), the rows of
   * Manifest.db identical to that snapshot's are not decoded again (VerifyOptions.base); with
   * `baseCheckedAt` too and the engine's record of what it changed, those whose payload it did
   * not change are not read at all (VerifyOptions.changesSinceBase).
   */
  async verify(opts: VerifyOptions = {}): Promise<VerifyReport> {
    const readAhead = this.readAhead;
    this.readAhead = undefined;
    this._verified = undefined;
    const report = await verifyBackupFolder(this.backupDir, this.udid, {
      ...this.verifyOptions(opts),
      ...(readAhead !== undefined ? { readAhead } : {}),
    });
    if (report.ok && report.contentsChecked && report.exclusiveBytes !== undefined)
      this._verified = {
        files: report.files,
        bytes: report.bytes,
        exclusiveBytes: report.exclusiveBytes,
      };
    return report;
  }

  private verifyOptions(given: VerifyOptions): VerifyOptions {
    const rowsOffThreadBytes = given.rowsOffThreadBytes ?? this.store._rowsOffThreadBytes;
    const opts = rowsOffThreadBytes === undefined ? given : { ...given, rowsOffThreadBytes };
    return opts.hashOnlyUnshared === true && opts.base === undefined && this.baseDir !== undefined
      ? {
          ...opts,
          base: this.baseDir,
          ...(this.changes && !this.changes.overflowed ? { changesSinceBase: this.changes } : {}),
        }
      : opts;
  }

  /**
   * @internal What the last verify found of the listed payloads (the commit records their sizes
   * without a second walk); unset when it found problems or could not read Manifest.db. Nothing
   * may write into the staging between that verify and the commit (the job does not).
   */
  get verifiedPayloads(): VerifiedPayloads | undefined {
    return this._verified;
  }

  private assertOpen(): void {
    if (this.state !== 'open')
      throw new MooringError('USAGE', `staging ${this.id} is already ${this.state}`);
  }
}

export class SnapshotStore {
  readonly dest: string;
  readonly latestDir: string;
  readonly stateDir: string;
  readonly snapshotsDir: string;
  readonly stagingDir: string;
  readonly trashDir: string;
  /** The next backup's copy of the latest, made ahead (prepareNext, D42). */
  readonly nextDir: string;
  readonly journalFile: string;
  readonly metadataFile: string;
  readonly lockFile: string;
  recovery: RecoveryReport = { discardedStaging: [], notes: [], found: [] };
  /** Set when a read met unreadable records (see loadMetadata); taken by the next reconcile. */
  private recordsLost: string | undefined;

  private lock: DeviceLock | undefined;
  private lockUsers = 0;
  private chain: Promise<unknown> = Promise.resolve();
  private activeStaging: string | undefined;
  private readonly now: () => Date;
  private readonly hooks: StoreHooks;
  /** @internal StoreOptions.rowsOffThreadBytes, for its stagings. */
  readonly _rowsOffThreadBytes: number | undefined;

  /** @internal use openStore */
  constructor(
    dest: string,
    readonly udid: string,
    opts: StoreOptions = {},
  ) {
    this.dest = path.resolve(dest);
    this.latestDir = path.join(this.dest, udid);
    this.stateDir = path.join(this.dest, '.mooring', udid);
    this.snapshotsDir = path.join(this.stateDir, 'snapshots');
    this.stagingDir = path.join(this.stateDir, 'staging');
    this.trashDir = path.join(this.stateDir, 'trash');
    this.nextDir = path.join(this.stateDir, 'next');
    this.journalFile = path.join(this.stateDir, 'journal.json');
    this.metadataFile = path.join(this.stateDir, 'snapshots.json');
    this.lockFile = deviceLockFile(this.dest, udid);
    this.now = opts.now ?? (() => new Date());
    this.hooks = opts.hooks ?? {};
    this._rowsOffThreadBytes = opts.rowsOffThreadBytes;
  }

  /** @internal */
  async _init(): Promise<void> {
    await fsp.mkdir(this.stateDir, { recursive: true });
    try {
      await this.takeLock('recovery');
    } catch (e) {
      if (e instanceof MooringError && e.detail === 'LOCKED') {
        this.recovery.skipped = e.message;
        return;
      }
      // A full or read-only disk: no recovery now, but the backups can still be read and verified.
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOSPC' || code === 'EDQUOT' || code === 'EROFS') {
        this.recovery.skipped = `cannot take the lock (${(e as Error).message})`;
        return;
      }
      throw e;
    }
    try {
      await this.step('open', 'locked');
      await this.recover();
      await this.step('open', 'recovered');
    } finally {
      await this.dropLock();
    }
  }

  // ---- locking ---------------------------------------------------------------------------

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const r = this.chain.then(fn, fn);
    this.chain = r.catch(() => undefined);
    return r;
  }

  private async takeLock(purpose: string): Promise<void> {
    if (this.lockUsers === 0) {
      this.lock = await DeviceLock.acquire(this.lockFile, purpose);
      if (this.lock.brokeStale)
        this.recovery.notes.push(`broke a stale lock (${this.lock.brokeStale})`);
    }
    this.lockUsers++;
  }

  private async dropLock(): Promise<void> {
    this.lockUsers = Math.max(0, this.lockUsers - 1);
    if (this.lockUsers === 0 && this.lock) {
      const l = this.lock;
      this.lock = undefined;
      await l.release();
    }
  }

  private async withLock<T>(purpose: string, fn: () => Promise<T>): Promise<T> {
    return this.serial(async () => {
      await this.takeLock(purpose);
      try {
        return await fn();
      } finally {
        await this.dropLock();
      }
    });
  }

  private async step(
    op: StoreOp,
    s: CommitStep | PruneStep | OpenStep | StagingStep | NextStep,
  ): Promise<void> {
    await this.hooks.afterStep?.(op, s);
  }

  // ---- recovery --------------------------------------------------------------------------

  /** With the lock held: finish a journaled operation, discard stray staging, reconcile. */
  private async recover(): Promise<void> {
    const j = await readJournal(this.journalFile);
    if (j) {
      this.recovery.journal = j.op;
      if (j.op === 'commit') await this.applyCommit(j);
      else await this.recoverPrune(j);
    }
    for (const name of await readdirOrEmpty(this.stagingDir)) {
      if (name === this.activeStaging) continue;
      await removeTree(path.join(this.stagingDir, name));
      this.recovery.discardedStaging.push(name);
    }
    // A copy made ahead that was stopped before its record: never taken, so removed (D42).
    if ((await exists(this.nextDir)) && !(await exists(path.join(this.nextDir, NEXT_RECORD))))
      await this.removeNext();
    for (const name of await readdirOrEmpty(this.trashDir)) {
      await removeTree(path.join(this.trashDir, name)).catch((e: unknown) => {
        this.recovery.notes.push(`could not empty trash/${name} (${(e as Error).message})`);
      });
    }
    for (const name of await readdirOrEmpty(this.stateDir)) {
      // Files written atomically, and a copy made ahead that was being removed (removeNext).
      if (/\.tmp-\d+-[0-9a-f]+$/.test(name)) await removeTree(path.join(this.stateDir, name));
    }
    await this.reconcile();
  }

  /** Before any change: a failed operation of this process may have left a journal. */
  private async finishPending(): Promise<void> {
    if (await exists(this.journalFile)) await this.recover();
  }

  private async loadMetadata(): Promise<StoreMetadata> {
    const { meta, malformed } = await this.readOrEmpty();
    if (malformed !== undefined) {
      // A journal replayed over unreadable records writes them anew without the pins: the
      // reconcile that follows must pin what it adds back (see reconcile).
      this.recordsLost ??= malformed;
      this.recovery.notes.push(`${malformed}; read as empty`);
    }
    return meta;
  }

  /**
   * `malformed`: why snapshots.json could not be read; `missing`: there is none. Either way the
   * records start empty.
   */
  private async readOrEmpty(): Promise<{
    meta: StoreMetadata;
    malformed?: string;
    missing?: boolean;
  }> {
    try {
      const meta = await readMetadata(this.metadataFile, this.udid);
      return meta === undefined ? { meta: emptyMetadata(this.udid), missing: true } : { meta };
    } catch (e) {
      if (e instanceof MooringError && e.code === 'MALFORMED') {
        return { meta: emptyMetadata(this.udid), malformed: e.message };
      }
      throw e;
    }
  }

  /**
   * Makes snapshots.json agree with the folders: records without a folder go, folders without
   * a record are added, and a `<dest>/<UDID>` that is not the latest we recorded (made by
   * idevicebackup2 or Finder, or overwritten in place by them) is adopted with a new id.
   */
  private async reconcile(): Promise<StoreMetadata> {
    const { meta, malformed, missing } = await this.readOrEmpty();
    const present = new Set<string>();
    for (const name of await readdirOrEmpty(this.snapshotsDir)) {
      if (isSnapshotId(name) && (await isDir(path.join(this.snapshotsDir, name))))
        present.add(name);
    }
    // Records lost (unreadable, deleted, or rewritten from an unreadable file by a journal's
    // replay) are rebuilt from the folders with every snapshot pinned: retention must not
    // remove a snapshot whose pin went with the file.
    const lost =
      malformed ??
      this.recordsLost ??
      // Older snapshots are only ever made by our commits, which write the records first (a
      // latest alone, without them, is another program's backup to adopt).
      (missing === true && present.size > 0 ? 'snapshots.json is missing' : undefined);
    this.recordsLost = undefined;
    const rebuilt = lost !== undefined;
    if (rebuilt) {
      this.recovery.found.push(
        `${lost}; rebuilt from the folders, with every snapshot pinned, since which were pinned is not known: unpin those not worth keeping`,
      );
    }
    const before = JSON.stringify(meta);
    const records = new Map(meta.snapshots.map((r) => [r.id, r]));
    for (const id of [...records.keys()]) {
      if (id !== meta.latest && !present.has(id)) {
        records.delete(id);
        this.recovery.found.push(`snapshot ${id} has no folder any more; forgotten`);
      }
    }
    for (const id of present) {
      if (records.has(id)) continue;
      const status = await statusOf(path.join(this.snapshotsDir, id));
      records.set(id, this.recordFromDisk(id, dateOfSnapshotId(id)!, status, false, rebuilt));
      if (!rebuilt) this.recovery.found.push(`snapshot ${id} had no record; added`);
    }
    if (await isDir(this.latestDir)) {
      const status = await statusOf(this.latestDir);
      const cur = meta.latest === null ? undefined : records.get(meta.latest);
      const same =
        cur !== undefined &&
        (cur.uuid === undefined || status?.uuid === undefined || cur.uuid === status.uuid);
      if (!same) {
        if (cur) {
          records.delete(cur.id);
          this.recovery.found.push(
            `the latest backup (${cur.id}) was replaced in place by another tool`,
          );
        }
        const date = status?.date ?? (await mtimeOf(this.latestDir));
        const id = newSnapshotId(date, (x) => records.has(x) || present.has(x));
        // Rebuilt: our own latest, not another program's.
        records.set(id, this.recordFromDisk(id, date, status, !rebuilt, rebuilt));
        meta.latest = id;
        this.recovery.adopted = id;
      }
    } else if (meta.latest !== null) {
      records.delete(meta.latest);
      this.recovery.found.push(`the latest backup folder ${this.latestDir} is gone`);
      meta.latest = null;
    }
    meta.snapshots = [...records.values()];
    const after: StoreMetadata = { ...meta, snapshots: sortById(meta.snapshots) };
    if (JSON.stringify(after) !== before) await writeMetadata(this.metadataFile, after);
    return after;
  }

  private recordFromDisk(
    id: string,
    date: Date,
    status: StatusPlistInfo | undefined,
    adopted: boolean,
    pinned = false,
  ): SnapshotRecord {
    const r: SnapshotRecord = {
      id,
      date: date.toISOString(),
      pinned,
      status: status?.snapshotState === 'finished' ? 'complete' : 'incomplete',
      udid: this.udid,
    };
    if (adopted) r.adopted = true;
    if (status?.isFullBackup !== undefined) r.isFull = status.isFullBackup;
    if (status?.uuid !== undefined) r.uuid = status.uuid;
    return r;
  }

  // ---- staging and commit ----------------------------------------------------------------

  /**
   * Starts a backup: takes the device lock (held until commit or discard) and creates
   * `staging/<id>/<UDID>/` as a hard-link copy of the latest backup, which the engine then
   * updates by replacing files, never by writing into them.
   */
  async beginStaging(opts: StagingOptions = {}): Promise<Staging> {
    return this.serial(async () => {
      if (this.activeStaging !== undefined)
        throw new MooringError('USAGE', `a backup is already staged (${this.activeStaging})`);
      await this.takeLock('backup');
      try {
        await this.recover();
        const meta = await this.loadMetadata();
        const ids = new Set(meta.snapshots.map((r) => r.id));
        for (const name of await readdirOrEmpty(this.stagingDir)) ids.add(name);
        const newest = [...ids].filter(isSnapshotId).sort(compareSnapshotIds).pop();
        const id = newSnapshotId(this.now(), (x) => ids.has(x), newest);
        const root = path.join(this.stagingDir, id);
        await mkdirOne(this.stagingDir);
        await fsp.mkdir(root);
        await this.step('staging', 'created');
        const staged = path.join(root, this.udid);
        const base = !opts.fresh && (await isDir(this.latestDir)) ? this.latestDir : undefined;
        // A repair (fresh) must not take a copy of the damaged latest; any other backup takes the
        // copy made ahead if it is of this latest, and removes it otherwise.
        const prepared = base !== undefined && (await this.takeNext(meta.latest, staged));
        if (base === undefined) await this.removeNext();
        const staging = new Staging(this, id, root, this.udid, base, prepared);
        if (prepared) {
          await this.step('staging', 'linked');
        } else if (base !== undefined && opts.linkInBackground === true) {
          await fsp.mkdir(staged);
          staging._linkInBackground(async (signal, onTopLevel) => {
            await linkTree(base, staged, {
              dstExists: true,
              leaveOut: [INFO_PLIST],
              signal,
              onTopLevel,
            });
            await this.step('staging', 'linked');
          });
        } else {
          if (base !== undefined) await linkTree(base, staged);
          else await fsp.mkdir(staged);
          await this.step('staging', 'linked');
        }
        this.activeStaging = id;
        return staging;
      } catch (e) {
        await this.dropLock();
        throw e;
      }
    });
  }

  /**
   * Makes the next backup's copy of the latest now, in `next/`, as beginStaging would make it
   * (every file hard-linked, Info.plist left out), so that the next backup of this device starts
   * with its folder complete instead of waiting for 100,000 links (D42). The agent calls it after
   * each backup; the links run at their lower priority (D35). Its record, written last, names the
   * latest it was made from and that folder's top level; a backup takes the copy only while both
   * still match. Undefined when there is no latest; `reused` when the copy was there already.
   * Refused while this store has a backup staged; `signal` stops it (nothing is left).
   *
   * The device lock is held only to begin and to write the record, not while the links are made:
   * a backup, a pin or a prune by another process is never refused for it. What they may do
   * meanwhile is found at the end: a commit gives the latest a new Manifest.db and Status.plist
   * (the copy is then dropped), and a backup or an open that finds the copy without its record
   * removes it (the links then fail, and the copy is dropped). Only the agent makes copies.
   */
  async prepareNext(opts: { signal?: AbortSignal } = {}): Promise<PreparedNext | undefined> {
    const begun = await this.withLock(PREPARING, async () => {
      if (this.activeStaging !== undefined)
        throw new MooringError('USAGE', `a backup is staged (${this.activeStaging})`);
      await this.finishPending();
      const meta = await this.reconcile();
      const top = meta.latest === null ? undefined : await topLevelIdentity(this.latestDir);
      if (meta.latest === null || top === undefined) {
        await this.removeNext();
        return undefined;
      }
      if (await this.nextIsOf(meta.latest, top)) return { base: meta.latest, top, reused: true };
      await this.removeNext();
      await fsp.mkdir(this.nextDir);
      return { base: meta.latest, top, reused: false };
    });
    if (begun === undefined) return undefined;
    const { base, top } = begun;
    if (begun.reused) return { base, reused: true, files: 0, seconds: 0 };
    const t0 = performance.now();
    const copy = path.join(this.nextDir, this.udid);
    let files: number;
    try {
      const stats = await linkTree(this.latestDir, copy, {
        leaveOut: [INFO_PLIST],
        ...(opts.signal ? { signal: opts.signal } : {}),
      });
      files = stats.linked + stats.cloned;
      await this.step('next', 'linked');
      await this.withLock(PREPARING, async () => {
        const latest = (await this.loadMetadata()).latest;
        if (latest !== base || (await topLevelIdentity(this.latestDir)) !== top)
          throw new MooringError('IO', `${this.latestDir} changed while it was being copied`);
        if ((await topLevelIdentity(copy)) !== top)
          throw new MooringError('IO', `the copy in ${this.nextDir} was removed while it was made`);
        const record: NextRecord = { base, top };
        await writeFileDurable(path.join(this.nextDir, NEXT_RECORD), JSON.stringify(record));
      });
    } catch (e) {
      // Without the lock: nothing but this method makes `next/`, and only one agent calls it.
      await this.removeNext();
      throw e;
    }
    return { base, reused: false, files, seconds: (performance.now() - t0) / 1000 };
  }

  /**
   * Whether `next/` holds a whole copy of the latest, which `latest` names and whose top level
   * reads `latestTop` now (topLevelIdentity).
   */
  private async nextIsOf(latest: string, latestTop: string): Promise<boolean> {
    let record: NextRecord;
    try {
      record = JSON.parse(
        await fsp.readFile(path.join(this.nextDir, NEXT_RECORD), 'utf8'),
      ) as NextRecord;
    } catch {
      return false; // none, or unreadable: not taken
    }
    if (record?.base !== latest || record.top !== latestTop) return false;
    // Hard links are the same inodes: the copy's top level reads exactly as the latest's.
    return (await topLevelIdentity(path.join(this.nextDir, this.udid))) === latestTop;
  }

  /**
   * beginStaging: moves the copy made ahead to `staged` when it is of the latest `latest`, and
   * removes whatever else `next/` holds. True when it was taken.
   */
  private async takeNext(latest: string | null, staged: string): Promise<boolean> {
    if (!(await exists(this.nextDir))) return false;
    const top = latest === null ? undefined : await topLevelIdentity(this.latestDir);
    const usable = latest !== null && top !== undefined && (await this.nextIsOf(latest, top));
    if (usable) await fsp.rename(path.join(this.nextDir, this.udid), staged);
    await this.removeNext();
    return usable;
  }

  /**
   * Removes `next/`, renamed aside first: links the agent may still be making into it (when
   * another process drops a copy not finished yet) then fail on its old path instead of refilling
   * the folder being removed. An open removes what a crash leaves aside (a `.tmp-` name).
   */
  private async removeNext(): Promise<void> {
    const aside = tempName(this.nextDir);
    try {
      await fsp.rename(this.nextDir, aside);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw e;
    }
    await removeTree(aside);
  }

  /** @internal Staging.commit */
  async _commit(staging: Staging, meta: CommitMeta): Promise<SnapshotInfo> {
    return this.serial(async () => {
      let keepLock = false;
      try {
        if (!this.lock || !(await this.lock.stillHeld())) {
          throw new MooringError(
            'USAGE',
            `the device lock was lost while staging ${staging.id}; the staged backup cannot be committed`,
          );
        }
        const staged = staging.backupDir;
        // Until the staged backup is known to be finished, the caller may still discard it.
        keepLock = true;
        let status: StatusPlistInfo;
        try {
          status = await readStatusPlist(path.join(staged, STATUS_PLIST));
        } catch (e) {
          throw new MooringError(
            'PROTOCOL',
            `the staged backup cannot be committed: ${(e as Error).message}`,
            { detail: 'NOT_FINISHED', cause: e },
          );
        }
        if (status.snapshotState !== 'finished') {
          throw new MooringError(
            'PROTOCOL',
            `the staged backup's Status.plist says "${status.snapshotState}", not "finished"; it cannot be committed`,
            { detail: 'NOT_FINISHED' },
          );
        }
        keepLock = false;
        // One link means no other snapshot shares it: the new snapshot's own bytes. The sizes of
        // the payloads come from the verify that just checked them, when it did (stagedUsage).
        const {
          files,
          size,
          exclusiveBytes: exclusive,
        } = await stagedUsage(staged, staging.verifiedPayloads);
        const current = await this.reconcile();
        const prevId = (await isDir(this.latestDir)) ? current.latest : null;
        const record: SnapshotRecord = {
          id: staging.id,
          date: dateOfSnapshotId(staging.id)!.toISOString(),
          pinned: false,
          status: 'complete',
          udid: this.udid,
          bytes: size,
          files,
        };
        const isFull = meta.isFull ?? status.isFullBackup;
        if (isFull !== undefined) record.isFull = isFull;
        if (status.uuid !== undefined) record.uuid = status.uuid;
        const j: CommitJournal = {
          op: 'commit',
          id: staging.id,
          prevId,
          record,
          startedAt: new Date().toISOString(),
        };
        await mkdirOne(this.snapshotsDir);
        await writeJournal(this.journalFile, j);
        await this.step('commit', 'journal');
        await this.applyCommit(j);
        return {
          id: record.id,
          date: recordDate(record),
          pinned: false,
          isLatest: true,
          status: 'complete',
          ...(isFull !== undefined ? { isFull } : {}),
          adopted: false,
          files,
          size,
          exclusiveBytes: exclusive,
          path: this.latestDir,
        };
      } finally {
        if (!keepLock) {
          this.activeStaging = undefined;
          await this.dropLock();
        }
      }
    });
  }

  /** @internal Staging.discard */
  async _discard(staging: Staging): Promise<void> {
    return this.serial(async () => {
      try {
        // A copy still being made would go on creating names in the folder being removed.
        await staging._linksSettled(true);
        await removeTree(staging.root);
      } finally {
        if (this.activeStaging === staging.id) {
          this.activeStaging = undefined;
          await this.dropLock();
        }
      }
    });
  }

  /** Rolls a commit forward from whatever step it reached. Idempotent. */
  private async applyCommit(j: CommitJournal): Promise<void> {
    const staged = path.join(this.stagingDir, j.id, this.udid);
    await mkdirOne(this.snapshotsDir);
    const extra: SnapshotRecord[] = [];
    if (await exists(staged)) {
      if (await exists(this.latestDir)) {
        let prevDest: string;
        if (j.prevId === null) {
          // A backup folder appeared beside ours (another tool) after the journal was written:
          // keep it as a snapshot rather than lose it.
          const status = await statusOf(this.latestDir);
          const meta = await this.loadMetadata();
          const ids = new Set([...meta.snapshots.map((r) => r.id), j.id]);
          const id = newSnapshotId(status?.date ?? (await mtimeOf(this.latestDir)), (x) =>
            ids.has(x),
          );
          extra.push(this.recordFromDisk(id, dateOfSnapshotId(id)!, status, true));
          prevDest = path.join(this.snapshotsDir, id);
        } else prevDest = path.join(this.snapshotsDir, j.prevId);
        if (await exists(prevDest)) {
          throw new MooringError(
            'IO',
            `Cannot finish committing ${j.id}: both ${this.latestDir} and ${prevDest} exist. ` +
              `Nothing was changed; move one of them aside and run again.`,
          );
        }
        await renameDurable(this.latestDir, prevDest);
      }
      await this.step('commit', 'moved-latest');
      await renameDurable(staged, this.latestDir);
      await this.step('commit', 'moved-staged');
    } else if (!(await exists(this.latestDir))) {
      throw new MooringError(
        'IO',
        `Cannot finish committing ${j.id}: neither the staged backup nor ${this.latestDir} exists`,
      );
    }
    const meta = await this.loadMetadata();
    const records = new Map(meta.snapshots.map((r) => [r.id, r]));
    records.set(j.id, j.record);
    for (const r of extra) records.set(r.id, r);
    if (j.prevId !== null && !records.has(j.prevId)) {
      const status = await statusOf(path.join(this.snapshotsDir, j.prevId));
      records.set(
        j.prevId,
        // Its record was lost with an unreadable file: pinned, as reconcile pins the others.
        this.recordFromDisk(
          j.prevId,
          dateOfSnapshotId(j.prevId)!,
          status,
          false,
          this.recordsLost !== undefined,
        ),
      );
    }
    await writeMetadata(this.metadataFile, {
      version: 1,
      udid: this.udid,
      latest: j.id,
      snapshots: [...records.values()],
    });
    await this.step('commit', 'metadata');
    await removeTree(path.join(this.stagingDir, j.id));
    await this.step('commit', 'staging-removed');
    await clearJournal(this.journalFile);
    await this.step('commit', 'cleared');
  }

  // ---- snapshots ---------------------------------------------------------------------------

  /** Every snapshot, oldest first, with its sizes (walks every tree: seconds on a large store). */
  async list(): Promise<SnapshotInfo[]> {
    const meta = await this.loadMetadata();
    const recs = sortById(meta.snapshots);
    const dirs = recs.map((r) => this.dirOf(r.id, meta));
    const usage = await treeUsages(dirs);
    return recs.map((r, i) => {
      const u = usage[i]!;
      const info: SnapshotInfo = {
        id: r.id,
        date: recordDate(r),
        pinned: r.pinned,
        isLatest: r.id === meta.latest,
        status: r.status,
        adopted: r.adopted === true,
        files: u.files,
        size: u.size,
        exclusiveBytes: u.exclusiveBytes,
        path: dirs[i]!,
      };
      if (r.isFull !== undefined) info.isFull = r.isFull;
      if (r.damaged) info.damaged = r.damaged;
      return info;
    });
  }

  // ---- damage (fault matrix: a damaged snapshot is found, marked, and repaired) ----------

  /** The latest snapshot's damage mark, if a verification found it damaged. */
  async latestDamage(): Promise<{ id: string; damage: SnapshotDamage } | undefined> {
    const meta = await this.loadMetadata();
    const r = meta.snapshots.find((x) => x.id === meta.latest);
    return r?.damaged ? { id: r.id, damage: r.damaged } : undefined;
  }

  /**
   * Verifies a committed snapshot and records the result in snapshots.json: damaged when the
   * check fails (the next backup then makes a full one into a new snapshot), the mark cleared
   * when it passes again. The record is best effort: verification alone never fails on it
   * (`recorded` says whether it was written, e.g. not while another process holds the lock).
   */
  async checkSnapshot(
    ref?: string,
    opts?: VerifyOptions,
  ): Promise<{ id: string; report: VerifyReport; recorded: boolean }> {
    const { id, path: dir } = await this.resolve(ref);
    const report = await verifyBackupFolder(dir, this.udid, opts);
    let recorded = false;
    try {
      recorded = await this.setDamage(id, report.ok ? undefined : damageFromReport(report));
    } catch {
      recorded = false;
    }
    return { id, report, recorded };
  }

  /** Sets or clears a snapshot's damage mark; false when there was nothing to change. */
  async setDamage(id: string, damage: SnapshotDamage | undefined): Promise<boolean> {
    return this.withLock('mark', async () => {
      const meta = await this.loadMetadata();
      const r = meta.snapshots.find((x) => x.id === id);
      if (!r || (damage === undefined && r.damaged === undefined)) return false;
      if (damage) r.damaged = damage;
      else delete r.damaged;
      await writeMetadata(this.metadataFile, meta);
      return true;
    });
  }

  private dirOf(id: string, meta: StoreMetadata): string {
    return id === meta.latest ? this.latestDir : path.join(this.snapshotsDir, id);
  }

  /** The backup folder of a snapshot id (or 'latest' / undefined for the latest). */
  async resolve(ref?: string): Promise<{ id: string; path: string }> {
    const meta = await this.loadMetadata();
    const id = ref === undefined || ref === 'latest' ? meta.latest : ref;
    if (id === null) {
      throw new MooringError('USAGE', `there is no backup of ${this.udid} in ${this.dest} yet`);
    }
    if (!meta.snapshots.some((r) => r.id === id)) {
      throw new MooringError(
        'USAGE',
        `no snapshot "${id}" of ${this.udid}; \`mooring snapshots\` lists them`,
      );
    }
    return { id, path: this.dirOf(id, meta) };
  }

  async pin(ref: string): Promise<void> {
    await this.setPinned(ref, true);
  }

  async unpin(ref: string): Promise<void> {
    await this.setPinned(ref, false);
  }

  private async setPinned(ref: string, pinned: boolean): Promise<void> {
    await this.withLock('pin', async () => {
      await this.finishPending();
      const meta = await this.reconcile();
      const { id } = await this.resolve(ref);
      const r = meta.snapshots.find((x) => x.id === id)!;
      if (r.pinned === pinned) return;
      r.pinned = pinned;
      await writeMetadata(this.metadataFile, meta);
    });
  }

  /** What `prune` would do (nothing changes). */
  async planPrune(
    policy: RetentionPolicy = DEFAULT_RETENTION,
    now: Date = this.now(),
  ): Promise<PruneResult> {
    return split(this.decide(await this.loadMetadata(), policy, now));
  }

  private decide(meta: StoreMetadata, policy: RetentionPolicy, now: Date): RetentionDecision[] {
    return planRetention(
      meta.snapshots.map((r) => ({
        id: r.id,
        date: recordDate(r),
        pinned: r.pinned,
        isLatest: r.id === meta.latest,
        sound: isSoundRecord(r),
      })),
      policy,
      now,
    );
  }

  /**
   * Deletes the snapshots the policy does not keep (journaled: each is renamed into trash/ first,
   * so a crash leaves it whole or gone, never half). Only names are removed: files that other
   * snapshots share stay.
   */
  async prune(
    policy: RetentionPolicy = DEFAULT_RETENTION,
    now: Date = this.now(),
  ): Promise<PruneResult> {
    return this.withLock('prune', async () => {
      await this.finishPending();
      const meta = await this.reconcile();
      const result = split(this.decide(meta, policy, now));
      if (result.pruned.length === 0) return result;
      const j: PruneJournal = {
        op: 'prune',
        ids: result.pruned.map((d) => d.id),
        startedAt: new Date().toISOString(),
      };
      await writeJournal(this.journalFile, j);
      await this.step('prune', 'journal');
      await this.applyPrune(j);
      return result;
    });
  }

  /**
   * Room for a backup the device says will not fit (D48): removes the snapshots the retention
   * policy no longer keeps and, with `beyondRetention`, as few of the oldest others (never pinned,
   * never the latest) as free `bytes` in all, or none of those when even all of them would not.
   * While the latest is missing or not sound (a repair's full backup has not succeeded yet), the
   * newest sound snapshot is the last good backup, and stays too. One journaled prune, as `prune`;
   * one that fails part-way is finished or given up at once (recoverPrune), and the plan then names
   * only what went. Safe while this store has a backup staged: the staging is a copy of the
   * latest, which is never removed, and its links keep what it shares.
   */
  async makeRoom(bytes: number, opts: RoomPolicy & { now?: Date }): Promise<RoomPlan> {
    return this.withLock('prune', async () => {
      await this.finishPending();
      const meta = await this.reconcile();
      const decisions = this.decide(meta, opts.retention, opts.now ?? this.now());
      const kept = new Set(decisions.filter((d) => d.keep).map((d) => d.id));
      const records = sortById(meta.snapshots);
      const latest = records.find((r) => r.id === meta.latest);
      const lastGood =
        latest && isSoundRecord(latest) ? latest : records.filter(isSoundRecord).pop();
      const candidate = (r: SnapshotRecord): RoomCandidate => ({
        id: r.id,
        dir: this.dirOf(r.id, meta),
      });
      const older = records.filter((r) => r !== latest && r !== lastGood);
      const beyond = older.filter((r) => kept.has(r.id) && !r.pinned);
      const plan = await planRoom({
        neededBytes: bytes,
        byRetention: older.filter((r) => !kept.has(r.id)).map(candidate),
        candidates: opts.beyondRetention ? beyond.map(candidate) : [],
        beyondPossible: beyond.length,
      });
      const ids = [...plan.byRetention, ...plan.beyondRetention];
      if (ids.length === 0) return plan;
      const j: PruneJournal = { op: 'prune', ids, startedAt: new Date().toISOString() };
      await writeJournal(this.journalFile, j);
      await this.step('prune', 'journal');
      try {
        await this.applyPrune(j);
      } catch (e) {
        // Finished, or given up with a note: never left for a later commit's journal to replace.
        await this.recoverPrune(j);
        const left = new Set(await readdirOrEmpty(this.snapshotsDir));
        plan.byRetention = plan.byRetention.filter((id) => !left.has(id));
        plan.beyondRetention = plan.beyondRetention.filter((id) => !left.has(id));
        plan.failed = (e as Error).message;
        await this.forgetRemoved([...plan.byRetention, ...plan.beyondRetention]).catch(() => {});
      }
      return plan;
    });
  }

  /** Records (and trash) of snapshots a given-up prune had already moved out of snapshots/. */
  private async forgetRemoved(ids: string[]): Promise<void> {
    const gone = new Set(ids);
    const meta = await this.loadMetadata();
    if (meta.snapshots.some((r) => gone.has(r.id))) {
      await writeMetadata(this.metadataFile, {
        ...meta,
        snapshots: meta.snapshots.filter((r) => !gone.has(r.id)),
      });
    }
    for (const id of gone) await removeTree(path.join(this.trashDir, id));
  }

  /**
   * An interrupted prune is finished if it can be; if it cannot (the cause persists, e.g. a
   * read-only trash), it is given up, never left to block every later backup: a prune only
   * removes what the retention policy already let go, or what "make room" was allowed to (D48),
   * and reconcile() then makes the metadata match the folders. The next prune plans again.
   */
  private async recoverPrune(j: PruneJournal): Promise<void> {
    try {
      await this.applyPrune(j);
    } catch (e) {
      this.recovery.notes.push(
        `an interrupted prune could not be finished (${(e as Error).message}); it was given up and the next prune plans again`,
      );
      await clearJournal(this.journalFile);
    }
  }

  /** Rolls a prune forward. Idempotent; never touches the latest. */
  private async applyPrune(j: PruneJournal): Promise<void> {
    const meta = await this.loadMetadata();
    const ids = j.ids.filter((id) => id !== meta.latest);
    await mkdirOne(this.trashDir);
    for (const id of ids) {
      const from = path.join(this.snapshotsDir, id);
      if (!(await exists(from))) continue;
      const to = path.join(this.trashDir, id);
      await removeTree(to);
      await renameDurable(from, to);
      await this.step('prune', 'trashed');
    }
    const gone = new Set(ids);
    await writeMetadata(this.metadataFile, {
      ...meta,
      snapshots: meta.snapshots.filter((r) => !gone.has(r.id)),
    });
    await this.step('prune', 'metadata');
    for (const id of ids) await removeTree(path.join(this.trashDir, id));
    await this.step('prune', 'removed');
    await clearJournal(this.journalFile);
    await this.step('prune', 'cleared');
  }

  // ---- verify and browse --------------------------------------------------------------------

  /**
   * Verifies a backup folder: a snapshot id, 'latest' (the default), a staging (or any
   * BackupTarget), or a path to a backup folder (`…/<UDID>` or the folder containing it).
   */
  async verify(target?: string | BackupTargetLike, opts?: VerifyOptions): Promise<VerifyReport> {
    return verifyBackupFolder(await this.folderOf(target), this.udid, opts);
  }

  private async folderOf(target?: string | BackupTargetLike): Promise<string> {
    if (typeof target === 'object') return path.join(target.root, target.udid);
    if (target === undefined || target === 'latest' || isSnapshotId(target))
      return (await this.resolve(target)).path;
    const abs = path.resolve(target);
    if (path.basename(abs) !== this.udid && (await isDir(path.join(abs, this.udid))))
      return path.join(abs, this.udid);
    return abs;
  }

  /** The files of a snapshot (default: the latest) matching the query, sorted. */
  async *files(q: FileQuery & { snapshot?: string } = {}): AsyncGenerator<BackupFileEntry> {
    yield* listFiles((await this.resolve(q.snapshot)).path, q);
  }

  /** Copies matching files of a snapshot out to `to` (see extractFiles). */
  async extract(q: FileQuery & { snapshot?: string; to: string }): Promise<ExtractResult> {
    return extractFiles((await this.resolve(q.snapshot)).path, q, q.to);
  }

  /** What was added, removed and changed from snapshot `a` to snapshot `b`, by domain. */
  async diff(a: string, b: string, opts?: DiffOptions): Promise<BackupDiff> {
    return diffBackups((await this.resolve(a)).path, (await this.resolve(b)).path, opts);
  }
}

function split(decisions: RetentionDecision[]): PruneResult {
  return { pruned: decisions.filter((d) => !d.keep), kept: decisions.filter((d) => d.keep) };
}

function sortById(rs: SnapshotRecord[]): SnapshotRecord[] {
  return [...rs].sort((a, b) => compareSnapshotIds(a.id, b.id));
}

/** NEXT_RECORD's contents. */
interface NextRecord {
  base: string;
  /** topLevelIdentity of the latest when the copy was made. */
  top: string;
}

/**
 * A backup folder's top level but Info.plist (every backup writes its own), as one comparable
 * string: each name with its file's device, inode, size and mtime to the nanosecond, or "folder". A
 * tool that rewrote the backup gave it a new Manifest.db and Status.plist, so this tells whether a
 * copy is still of it. Undefined when the folder is gone.
 */
async function topLevelIdentity(dir: string): Promise<string | undefined> {
  let names: string[];
  try {
    names = (await fsp.readdir(dir)).filter((n) => n !== INFO_PLIST).sort();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  const out: Array<[string, string]> = [];
  for (const name of names) {
    const st = await fsp.lstat(path.join(dir, name), { bigint: true });
    out.push([name, st.isDirectory() ? 'folder' : `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}`]);
  }
  return JSON.stringify(out);
}

async function readdirOrEmpty(dir: string): Promise<string[]> {
  try {
    return await fsp.readdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
}

async function isDir(p: string): Promise<boolean> {
  try {
    return (await fsp.lstat(p)).isDirectory();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
}

async function statusOf(dir: string): Promise<StatusPlistInfo | undefined> {
  try {
    return await readStatusPlist(path.join(dir, STATUS_PLIST));
  } catch {
    return undefined;
  }
}

async function mtimeOf(dir: string): Promise<Date> {
  try {
    return (await fsp.stat(path.join(dir, STATUS_PLIST))).mtime;
  } catch {
    return (await fsp.stat(dir)).mtime;
  }
}

/**
 * Opens (creating `<dest>/.mooring/<udid>/` if needed) the snapshot store of one device and
 * recovers it: a journaled commit or prune is rolled forward, stray staging is discarded, and a
 * backup folder without metadata is adopted as the latest. When another process holds the lock,
 * recovery is left to it (`recovery.skipped` says so) and read-only use still works.
 */
export async function openStore(
  dest: string,
  udid: string,
  opts: StoreOptions = {},
): Promise<SnapshotStore> {
  if (!UDID.test(udid)) throw new MooringError('USAGE', `"${udid}" is not a device UDID`);
  const store = new SnapshotStore(dest, udid, opts);
  await store._init();
  return store;
}

/** What a reader may do with a store: look, never change. */
export type ReadOnlyStore = Pick<
  SnapshotStore,
  | 'udid'
  | 'dest'
  | 'latestDir'
  | 'stateDir'
  | 'snapshotsDir'
  | 'journalFile'
  | 'list'
  | 'resolve'
  | 'files'
  | 'diff'
  | 'verify'
>;

/**
 * The store of one device for reading only, for a browser beside a running agent: no folder is
 * created, no lock is taken and no recovery runs, so it can never make a backup that starts at
 * the same moment fail with "in use" (openStore takes the lock for its recovery). It reads
 * snapshots.json as it is; while a commit or prune is half done (journal.json present) a
 * snapshot folder may briefly be missing, which readers report as "try again".
 */
export function openStoreReadOnly(dest: string, udid: string): ReadOnlyStore {
  if (!UDID.test(udid)) throw new MooringError('USAGE', `"${udid}" is not a device UDID`);
  return new SnapshotStore(dest, udid);
}
