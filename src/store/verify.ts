/**
 * Verification of one backup folder `<UDID>/`: every file entry of Manifest.db has its payload,
 * of the right size and (unencrypted backups) the right SHA-1; Status.plist says finished;
 * Info.plist and Manifest.plist are readable and name this device. The report lists exactly what
 * is missing or damaged. Nothing is written: the folder may be the latest backup or a snapshot.
 *
 * Speed (docs/BENCHMARKS.md): the per-file existence and size checks are synchronous lstat calls in
 * bounded runs between yields to the event loop (an awaited fs call costs ~6× more main-thread time
 * than the syscall itself); only the hashing reads are asynchronous, each of CHECK_CONCURRENCY
 * slots reusing one buffer. When every row is read, a large Manifest.db's rows are read and decoded
 * on another thread meanwhile (store/manifest-rows-off-thread, D31). With `hashOnlyUnshared`, files
 * still shared by a hard link with an earlier snapshot (link count > 1: hashed when that snapshot
 * was verified) get the size check only; planStagingVerify decides when a full re-hash is due (bit
 * rot). With `base` too (the verified snapshot it was staged from), Manifest.db rows identical to
 * the base's are compared inside SQLite and not decoded again: only their MBFile Size is read
 * (mbFileSummary), so the row work of an incremental follows what changed; a row that differs is
 * decoded, validated and, even when its payload is shared, hashed. With `changesSinceBase` (the
 * engine's record of the paths it changed in the staged folder) and `baseCheckedAt`, an identical
 * row whose payload the engine did not touch is not even read: its payload is lstat'ed, and when it
 * is still a regular file not modified since the base's verify checked it, that check stands (D26);
 * a large Manifest.db is then compared on another thread while this one lstat's (D33).
 */
import { createHash } from 'node:crypto';
import {
  closeSync,
  constants as fsc,
  lstatSync,
  openSync,
  promises as fsp,
  readSync,
  type Stats,
} from 'node:fs';
import path from 'node:path';
import { isMooringError } from '../util/errors';
import {
  INFO_PLIST,
  MANIFEST_DB,
  MANIFEST_PLIST,
  SNAPSHOT_DIR,
  STATUS_PLIST,
} from '../format/layout';
import {
  isKnownRow,
  iterateManifestDb,
  iterateManifestDbAgainst,
  MANIFEST_FLAG,
  manifestNamesOf,
  type IterateManifestOptions,
  type KnownManifestRow,
  type ManifestRowFacts,
  type ManifestRowProblem,
} from '../format/manifest-db';
import { decodeMbFile } from '../format/mbfile';
import { payloadRelPath } from '../format/file-id';
import { readInfoPlist } from '../format/info-plist';
import { readManifestPlist } from '../format/manifest-plist';
import { readStatusPlist } from '../format/status-plist';
import { TurnBudget, writeFileDurable } from './fs-util';
import { comparedRows, manifestRows, RowsReadAhead } from './manifest-rows-off-thread';
import { fileIdsOf } from './manifest-rows.worker';
import type { PayloadChanges } from './payload-changes';

export type VerifyProblemKind =
  | 'folder'
  | 'status-plist'
  | 'info-plist'
  | 'manifest-plist'
  | 'manifest-db'
  | 'manifest-row'
  | 'missing'
  | 'not-a-file'
  | 'size'
  | 'digest'
  | 'unreadable';

export interface VerifyProblem {
  kind: VerifyProblemKind;
  fileId?: string;
  domain?: string;
  relativePath?: string;
  problem: string;
}

export interface VerifyReport {
  ok: boolean;
  /** The backup folder checked (`…/<UDID>`). */
  path: string;
  udid: string;
  snapshotState?: string;
  encrypted: boolean;
  /** False when Manifest.db could not be read (or is encrypted): payloads were not checked. */
  contentsChecked: boolean;
  /** Manifest.db rows read, file entries among them, their bytes, files whose SHA-1 was checked. */
  entries: number;
  files: number;
  bytes: number;
  hashed: number;
  /** Files not hashed because they are shared with an earlier snapshot (`hashOnlyUnshared`). */
  sharedNotHashed?: number;
  /** Manifest.db rows identical to the base's, not decoded again (VerifyOptions.base). */
  knownRows?: number;
  /**
   * Of `files`, those identical to the base's whose payload neither this backup nor anything
   * since the base's verify changed: their row not read, their payload only lstat'ed
   * (VerifyOptions.changesSinceBase).
   */
  unchangedFiles?: number;
  /** When the payload checks began (ISO; set when they ran): VerifyOptions.baseCheckedAt of the next. */
  checkedAt?: string;
  /**
   * Bytes of the listed payloads that have a single link (in no other snapshot); set when the
   * contents were checked. With `files` and `bytes` it is what a commit records (Staging.verify).
   */
  exclusiveBytes?: number;
  /** Of `hashed`, files whose SHA-1 was taken while receiving them (VerifyOptions.received). */
  hashedWhileReceiving?: number;
  /** Manifest.db's rows were read, or compared, on another thread (VerifyOptions.rowsOffThreadBytes). */
  rowsReadOffThread?: boolean;
  /** That thread had begun before the verify (VerifyOptions.readAhead). */
  rowsReadAhead?: boolean;
  /** At most `maxProblems` of them; `problemCount` counts all. */
  problems: VerifyProblem[];
  problemCount: number;
  notes: string[];
}

/** The SHA-1 taken while receiving the file lstat describes, if this run received it. */
export interface ReceivedDigestLookup {
  lookup(st: Stats): Buffer | undefined;
}

export interface VerifyOptions {
  /** Check content digests where the backup has them (default true). */
  hash?: boolean;
  /**
   * Hash only files with a single link (new in this backup); files shared by hard links with an
   * earlier, already verified snapshot get the existence and size checks only (default false).
   */
  hashOnlyUnshared?: boolean;
  /**
   * With `hashOnlyUnshared` only: the backup folder this one was staged from, verified before
   * (the same precondition). Manifest.db rows identical to its rows are not validated and decoded
   * again; only their MBFile Size is read for the size check.
   */
  base?: string;
  /**
   * With `base`: the payloads the engine changed since the folder was linked from `base`
   * (Staging's record). With `baseCheckedAt` too, a row identical to the base's whose payload is
   * not among them is not read: its payload is still the very file (a hard link) the base's verify
   * checked, size and digest, unless something outside Mooring changed it since — so it is
   * lstat'ed, and checked in full if it is missing, no regular file, or modified since (D26).
   */
  changesSinceBase?: PayloadChanges;
  /** When the base's verify began its payload checks (VerifyReport.checkedAt, epoch ms). */
  baseCheckedAt?: number;
  /**
   * SHA-1s taken while the files of this backup were received: a file found there (same inode,
   * size and mtime) is checked against its digest without being read back. The engine's
   * backup/received-digests fills one; the store sees only this lookup.
   */
  received?: ReceivedDigestLookup;
  maxProblems?: number;
  /**
   * The Manifest.db size from which its rows are read and decoded (every row read: no `base`),
   * or compared with the base's (`changesSinceBase`), on another thread while this one checks the
   * payloads (store/manifest-rows-off-thread; default ROWS_OFF_THREAD_BYTES).
   */
  rowsOffThreadBytes?: number;
  /**
   * The rows' read begun before the verify (readRowsAhead, D34): taken when it is of the very file
   * and the read this verify makes, ended by the verify otherwise.
   */
  readAhead?: RowsReadAhead;
}

export const MAX_REPORTED_PROBLEMS = 10_000;
/** Coarsest filesystem mtime granularity allowed for (FAT: 2 s), for D26's "modified since". */
const MTIME_MARGIN_MS = 2_000;
/** Payloads checked at once. */
const CHECK_CONCURRENCY = 8;
const HASH_CHUNK_BYTES = 1024 * 1024;

export async function verifyBackupFolder(
  dir: string,
  udid: string,
  opts: VerifyOptions = {},
): Promise<VerifyReport> {
  try {
    return await verifyFolder(dir, udid, opts);
  } finally {
    await opts.readAhead?.end(); // not taken: not of this file, or its rows not read
  }
}

async function verifyFolder(dir: string, udid: string, opts: VerifyOptions): Promise<VerifyReport> {
  const maxProblems = opts.maxProblems ?? MAX_REPORTED_PROBLEMS;
  const report: VerifyReport = {
    ok: false,
    path: dir,
    udid,
    encrypted: false,
    contentsChecked: false,
    entries: 0,
    files: 0,
    bytes: 0,
    hashed: 0,
    sharedNotHashed: 0,
    problems: [],
    problemCount: 0,
    notes: [],
  };
  /** Counts a problem and records it unless there are `maxProblems` already; says which. */
  const add = (p: VerifyProblem): boolean => {
    report.problemCount++;
    if (report.problems.length >= maxProblems) return false;
    report.problems.push(p);
    return true;
  };
  const message = (e: unknown): string => (e instanceof Error ? e.message : String(e));

  try {
    const st = await fsp.stat(dir);
    if (!st.isDirectory()) throw new Error(`${dir} is not a folder`);
  } catch (e) {
    add({ kind: 'folder', problem: `the backup folder cannot be read: ${message(e)}` });
    return report;
  }

  try {
    const status = await readStatusPlist(path.join(dir, STATUS_PLIST));
    report.snapshotState = status.snapshotState;
    if (status.snapshotState !== 'finished') {
      add({
        kind: 'status-plist',
        problem: `Status.plist says SnapshotState "${status.snapshotState}", not "finished": the backup did not complete`,
      });
    }
  } catch (e) {
    add({ kind: 'status-plist', problem: message(e) });
  }

  try {
    const info = await readInfoPlist(path.join(dir, INFO_PLIST));
    if (info.targetIdentifier.toUpperCase() !== udid.toUpperCase()) {
      add({
        kind: 'info-plist',
        problem: `Info.plist is of device ${info.targetIdentifier}, not ${udid}`,
      });
    }
  } catch (e) {
    add({ kind: 'info-plist', problem: message(e) });
  }

  try {
    const manifest = await readManifestPlist(path.join(dir, MANIFEST_PLIST));
    report.encrypted = manifest.isEncrypted;
    if (manifest.udid !== undefined && manifest.udid.toUpperCase() !== udid.toUpperCase()) {
      add({
        kind: 'manifest-plist',
        problem: `Manifest.plist is of device ${manifest.udid}, not ${udid}`,
      });
    }
  } catch (e) {
    add({ kind: 'manifest-plist', problem: message(e) });
  }

  if (report.encrypted) {
    report.notes.push(
      'The backup is encrypted: Manifest.db cannot be read without the password, so file payloads were not checked.',
    );
  } else {
    const rows = rowsReadOf(opts);
    await checkPayloads(
      dir,
      hashModeOf(opts),
      rows.kind === 'all' ? undefined : rows.base,
      rows.kind === 'compared' ? rows.unchanged : undefined,
      opts,
      report,
      add,
    );
  }

  try {
    await fsp.lstat(path.join(dir, SNAPSHOT_DIR));
    report.notes.push(
      'A Snapshot/ folder (an interrupted transfer) is present; it is not part of the backup.',
    );
  } catch {
    // the usual case
  }
  report.ok = report.problemCount === 0;
  return report;
}

/** How a verify reads Manifest.db's rows (see VerifyOptions). */
type RowsRead =
  /** Every row, decoded and validated (a large file's on another thread). */
  | { kind: 'all' }
  /** Compared with the base's inside SQLite (a large file on another thread); then what differs. */
  | { kind: 'compared'; base: string; unchanged: { changes: PayloadChanges; checkedAt: number } }
  /** Every row, the base's identical ones summarised (iterateManifestDbAgainst), here. */
  | { kind: 'against'; base: string };

function rowsReadOf(opts: VerifyOptions): RowsRead {
  if (opts.base === undefined || opts.hashOnlyUnshared !== true) return { kind: 'all' };
  const base = path.join(opts.base, MANIFEST_DB);
  const changes = opts.changesSinceBase;
  const checkedAt = opts.baseCheckedAt;
  return changes !== undefined &&
    !changes.overflowed &&
    checkedAt !== undefined &&
    Number.isFinite(checkedAt)
    ? { kind: 'compared', base, unchanged: { changes, checkedAt } }
    : { kind: 'against', base };
}

/**
 * The read a verify with `opts` would make of `manifestDb`, begun now (RowsReadAhead, D34, through
 * a hard link at `linkAt`), when it is one a thread makes: hand it to that verify as `readAhead`.
 */
export function readRowsAhead(
  manifestDb: string,
  opts: VerifyOptions,
  linkAt: string,
): RowsReadAhead | undefined {
  const rows = rowsReadOf(opts);
  if (rows.kind === 'against') return undefined;
  return RowsReadAhead.start(manifestDb, {
    linkAt,
    ...(rows.kind === 'compared' ? { base: rows.base } : {}),
    ...(opts.rowsOffThreadBytes !== undefined ? { offThreadBytes: opts.rowsOffThreadBytes } : {}),
  });
}

type HashMode = 'all' | 'unshared' | 'none';

function hashModeOf(opts: VerifyOptions): HashMode {
  if (opts.hash === false) return 'none';
  return opts.hashOnlyUnshared === true ? 'unshared' : 'all';
}

/** Large files queued for the asynchronous hashing slots before they are hashed. */
const HASH_QUEUE = 64;
/** Files up to this size are hashed with synchronous reads (one read, no thread-pool hops). */
const SYNC_HASH_MAX_BYTES = 256 * 1024;

/** A row as verify checks it: decoded, or known from the base (only Size read). */
type Row = ManifestRowFacts | KnownManifestRow;

function sizeOf(r: Row): number {
  return isKnownRow(r) ? r.size : r.file.size;
}

/** The row's 20-byte SHA-1, if it has one (a known row's archive is decoded only now). */
function digestOf(r: Row): Buffer | undefined {
  const d = isKnownRow(r) ? (r.hasDigest ? decodeMbFile(r.blob).digest : undefined) : r.file.digest;
  return d !== undefined && d.length === 20 ? d : undefined;
}

function hasDigest(r: Row): boolean {
  return isKnownRow(r) ? r.hasDigest : r.file.digest !== undefined && r.file.digest.length === 20;
}

/**
 * Each row is checked as it is read and then dropped: no batch of rows (or of their Stats) lives
 * across a yield to the event loop, so what 100,000 rows allocate dies young instead of being
 * promoted to the old generation (that garbage was the peak RSS of many-file backups). Only large
 * files wait, in a short queue, for the asynchronous hashing slots.
 */
async function checkPayloads(
  dir: string,
  mode: HashMode,
  baseDb: string | undefined,
  unchanged: { changes: PayloadChanges; checkedAt: number } | undefined,
  opts: Pick<VerifyOptions, 'received' | 'rowsOffThreadBytes' | 'readAhead'>,
  report: VerifyReport,
  add: (p: VerifyProblem) => boolean,
): Promise<void> {
  const { received } = opts;
  const rowsOpts = {
    ...(opts.rowsOffThreadBytes !== undefined ? { offThreadBytes: opts.rowsOffThreadBytes } : {}),
    ...(opts.readAhead !== undefined ? { readAhead: opts.readAhead } : {}),
    onWorker: () => (report.rowsReadOffThread = true),
    onReadAhead: () => (report.rowsReadAhead = true),
  };
  const db = path.join(dir, MANIFEST_DB);
  report.checkedAt = new Date().toISOString();
  // payloadPath without path.join's normalisation per file (a few µs × every row).
  const prefix = path.join(dir, '.') + path.sep;
  const payloadOf = (fileId: string): string => prefix + payloadRelPath(fileId);
  // One hash buffer per slot for the whole verify (a fresh 1 MiB per file made the peak RSS
  // depend on how many files were hashed).
  const buffers = Array.from({ length: CHECK_CONCURRENCY }, () =>
    Buffer.allocUnsafe(HASH_CHUNK_BYTES),
  );
  /** Recorded problems of rows that came without their names (read on another thread). */
  const unnamed: Array<VerifyProblem & { fileId: string }> = [];
  const problem = (r: Row, kind: VerifyProblemKind, text: string): void => {
    const { fileId, domain, relativePath } = r;
    if (domain !== undefined && relativePath !== undefined)
      add({ kind, fileId, domain, relativePath, problem: text });
    else {
      const p = { kind, fileId, problem: text };
      if (add(p)) unnamed.push(p);
    }
  };
  const toHash: Array<[Row, Buffer]> = [];
  let exclusiveBytes = 0;
  const check = (r: Row): void => {
    const st = statPayload(payloadOf, r, problem);
    if (!st) return;
    if (st.nlink <= 1) exclusiveBytes += st.size;
    if (mode === 'none' || !hasDigest(r)) return;
    let digest: Buffer | undefined;
    let taken: Buffer | undefined;
    // Shared with the verified base by a hard link: its hash was checked then, unless its row
    // differs from the base's (the base's verify does not vouch for a new digest). With the
    // unchanged rows left out, a known row comes only when the engine changed its payload: the
    // link may be another of the base's files now, so it is hashed.
    if (
      mode === 'unshared' &&
      st.nlink > 1 &&
      (!baseCompared || (isKnownRow(r) && unchanged === undefined))
    )
      report.sharedNotHashed = (report.sharedNotHashed ?? 0) + 1;
    else if ((digest = expectedDigest(r)) === undefined) {
      // a known row whose archive no longer decodes: reported by expectedDigest
    } else if (received !== undefined && (taken = received.lookup(st)) !== undefined) {
      report.hashedWhileReceiving = (report.hashedWhileReceiving ?? 0) + 1;
      checkDigest(r, digest, () => taken!);
    } else if (sizeOf(r) > SYNC_HASH_MAX_BYTES) toHash.push([r, digest]);
    else checkDigest(r, digest, () => sha1FileSync(payloadOf(r.fileId), sizeOf(r), buffers[0]!));
  };
  const hashQueued = async (): Promise<void> => {
    let next = 0;
    await Promise.all(
      buffers.map(async (buf) => {
        for (let i = next++; i < toHash.length; i = next++) {
          const [r, digest] = toHash[i]!;
          const actual = await sha1File(payloadOf(r.fileId), sizeOf(r), buf).catch(
            (e: unknown) => e as Error,
          );
          checkDigest(r, digest, () => {
            if (actual instanceof Error) throw actual;
            return actual;
          });
        }
      }),
    );
    toHash.length = 0;
  };
  const expectedDigest = (r: Row): Buffer | undefined => {
    try {
      return digestOf(r);
    } catch (e) {
      problem(r, 'manifest-row', `MBFile: ${(e as Error).message}`);
      return undefined;
    }
  };
  const checkDigest = (r: Row, expected: Buffer, digest: () => Buffer): void => {
    let actual: Buffer;
    try {
      actual = digest();
    } catch (e) {
      problem(r, 'unreadable', (e as Error).message);
      return;
    }
    report.hashed++;
    if (!actual.equals(expected)) {
      problem(
        r,
        'digest',
        `the payload's SHA-1 is ${actual.toString('hex')}, Manifest.db says ${expected.toString('hex')}`,
      );
    }
  };
  let baseCompared = false;
  /**
   * With `unchanged`: the rowids of the rows read in full after the comparison — those that differ
   * from the base's, whose payload the engine changed, or whose payload is not as the base's
   * verify left it.
   */
  const whole: number[] = [];
  /**
   * An unchanged row's payload (D26): a regular file whose mtime is before the base's checks began
   * has the size and bytes they found; anything else — removed, replaced, truncated, written — is
   * checked in full. A whole-second mtime may come from a coarse filesystem clock (FAT: 2 s), so
   * it must be that much earlier.
   */
  const since = unchanged?.checkedAt ?? 0;
  const checkUnchanged = (rowid: number, fileId: string): void => {
    const st = lstatSync(prefix + fileId.slice(0, 2) + path.sep + fileId, {
      throwIfNoEntry: false,
    });
    const m = st?.mtimeMs ?? Infinity;
    if (!st?.isFile() || m >= (m % 1000 === 0 ? since - MTIME_MARGIN_MS : since)) {
      whole.push(rowid);
      return;
    }
    report.files++;
    report.bytes += st.size;
    report.unchangedFiles = (report.unchangedFiles ?? 0) + 1;
    if (st.nlink <= 1) exclusiveBytes += st.size;
  };
  const iterateOpts: IterateManifestOptions = {
    onInvalid: (p: ManifestRowProblem) => add({ kind: 'manifest-row', ...p }),
    onBase: (attached: boolean) => (baseCompared = attached),
  };
  const { fileIds: changedIds, buckets: changedBuckets } = unchanged?.changes ?? {};
  /** A row identical to the base's (so its fileID is valid) whose payload the engine left alone. */
  const untouched = (fileId: string): boolean =>
    !changedIds!.has(fileId) && !changedBuckets!.has(fileId.slice(0, 2));
  /** A file row counted and checked; a promise when the hashing queue is full (await it). */
  const checkFileRow = (row: Row): Promise<void> | undefined => {
    if (row.flags !== MANIFEST_FLAG.file) return undefined;
    report.files++;
    report.bytes += sizeOf(row);
    check(row);
    return toHash.length >= HASH_QUEUE ? hashQueued() : undefined;
  };
  // Let timers and sockets run between runs of synchronous checks.
  const budget = new TurnBudget();
  try {
    const compared =
      unchanged !== undefined && baseDb !== undefined
        ? await comparedRows(db, baseDb, rowsOpts)
        : undefined;
    if (compared !== undefined) {
      // Only rowid, fileID, flags and SQLite's verdict come here; what differs is read after.
      baseCompared = true;
      for await (const b of compared) {
        const fileIdAt = fileIdsOf(b.fileIds);
        for (let i = 0; i < b.rowids.length; i++) {
          const fileId = b.same[i] === 1 ? fileIdAt(i) : undefined;
          if (fileId !== undefined && untouched(fileId)) {
            report.knownRows = (report.knownRows ?? 0) + 1;
            if (b.flags[i] === MANIFEST_FLAG.file) checkUnchanged(b.rowids[i]!, fileId);
          } else whole.push(b.rowids[i]!);
        }
        report.entries += b.rowids.length;
        await budget.turn();
      }
      // Differing rows (decoded, validated, hashed even when shared) and payloads not as the
      // base's verify left them.
      if (whole.length > 0) {
        for (const row of iterateManifestDb(db, {
          rowids: whole,
          onInvalid: iterateOpts.onInvalid,
        })) {
          const queueFull = checkFileRow(row);
          if (queueFull) await queueFull;
          await budget.tick();
        }
      }
      await hashQueued();
    } else {
      const rows =
        baseDb !== undefined
          ? iterateManifestDbAgainst(db, baseDb, iterateOpts)
          : manifestRows(db, { ...rowsOpts, onInvalid: iterateOpts.onInvalid! });
      for await (const row of rows) {
        report.entries++;
        if (isKnownRow(row)) report.knownRows = (report.knownRows ?? 0) + 1;
        const queueFull = checkFileRow(row);
        if (queueFull) await queueFull;
        await budget.tick();
      }
      await hashQueued();
    }
    report.contentsChecked = true;
    report.exclusiveBytes = exclusiveBytes;
  } catch (e) {
    add({
      kind: 'manifest-db',
      problem: isMooringError(e) ? e.message : `Manifest.db cannot be read: ${String(e)}`,
    });
  }
  nameProblems(db, unnamed);
}

/** Gives the problems of rows that came without their names those names, read by fileID. */
function nameProblems(db: string, problems: Array<VerifyProblem & { fileId: string }>): void {
  if (problems.length === 0) return;
  let names: ReturnType<typeof manifestNamesOf>;
  try {
    names = manifestNamesOf(
      db,
      problems.map((p) => p.fileId),
    );
  } catch {
    return; // the fileID still names the payload
  }
  for (const p of problems) {
    const n = names.get(p.fileId);
    if (n !== undefined) {
      p.domain = n.domain;
      p.relativePath = n.relativePath;
    }
  }
}

/** Existence, type and size of one payload; its Stats when they are right. */
function statPayload(
  payloadOf: (fileId: string) => string,
  row: Row,
  problem: (r: Row, kind: VerifyProblemKind, text: string) => void,
): Stats | undefined {
  let st: Stats;
  try {
    st = lstatSync(payloadOf(row.fileId));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR')
      problem(row, 'missing', 'the payload file is missing');
    else problem(row, 'unreadable', (e as Error).message);
    return undefined;
  }
  if (!st.isFile()) {
    problem(row, 'not-a-file', 'the payload is not a regular file');
    return undefined;
  }
  if (st.size !== sizeOf(row)) {
    problem(row, 'size', `the payload is ${st.size} bytes, Manifest.db says ${sizeOf(row)}`);
    return undefined;
  }
  return st;
}

/**
 * SHA-1 of the first `size` bytes (the caller checked the size), in bounded chunks; `buf`
 * (reused by the caller across files) sets the chunk size.
 */
export async function sha1File(
  file: string,
  size: number,
  buf: Buffer = Buffer.allocUnsafe(Math.min(HASH_CHUNK_BYTES, Math.max(size, 1))),
): Promise<Buffer> {
  const fh = await fsp.open(file, fsc.O_RDONLY | fsc.O_NOFOLLOW);
  try {
    const h = createHash('sha1');
    let pos = 0;
    while (pos < size) {
      const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, size - pos), pos);
      if (bytesRead === 0) break;
      h.update(buf.subarray(0, bytesRead));
      pos += bytesRead;
    }
    return h.digest();
  } finally {
    await fh.close();
  }
}

/** sha1File with synchronous reads, for small files. */
export function sha1FileSync(file: string, size: number, buf: Buffer): Buffer {
  const fd = openSync(file, fsc.O_RDONLY | fsc.O_NOFOLLOW);
  try {
    const h = createHash('sha1');
    let pos = 0;
    while (pos < size) {
      const n = readSync(fd, buf, 0, Math.min(buf.length, size - pos), pos);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
      pos += n;
    }
    return h.digest();
  } finally {
    closeSync(fd);
  }
}

// ---- when a backup's verify may skip hashing the files it shares with the previous one -------

/** A full re-hash of every file at least this often (bit rot in shared files). */
export interface RehashPolicy {
  /** Backups between two full re-hashes (1 = hash everything every time). */
  everyBackups: number;
  /** Days between two full re-hashes. */
  maxAgeDays: number;
}

export const DEFAULT_REHASH_POLICY: RehashPolicy = { everyBackups: 10, maxAgeDays: 7 };

/** `<stateDir>/verify-state.json`: which snapshot Mooring verified last, and how. */
export const VERIFY_STATE_FILE = 'verify-state.json';

interface VerifyState {
  version: 1;
  /** The snapshot whose files were all hashed (fully, or new ones on top of a verified base). */
  verifiedId: string;
  fullHashAt: string;
  backupsSinceFullHash: number;
  /** When its verify began the payload checks (VerifyOptions.baseCheckedAt). */
  checkedAt?: string;
}

export interface StagingVerifyPlan extends VerifyOptions {
  /** Why the verify hashes everything or only the new files (shown in logs). */
  why: string;
}

async function readVerifyState(stateDir: string): Promise<VerifyState | undefined> {
  try {
    const v = JSON.parse(
      await fsp.readFile(path.join(stateDir, VERIFY_STATE_FILE), 'utf8'),
    ) as Partial<VerifyState>;
    if (
      v.version === 1 &&
      typeof v.verifiedId === 'string' &&
      typeof v.fullHashAt === 'string' &&
      Number.isFinite(Date.parse(v.fullHashAt)) &&
      typeof v.backupsSinceFullHash === 'number'
    ) {
      const state = v as VerifyState;
      if (typeof state.checkedAt !== 'string' || !Number.isFinite(Date.parse(state.checkedAt)))
        delete state.checkedAt;
      return state;
    }
  } catch {
    // missing or unreadable: a full hash is due
  }
  return undefined;
}

/**
 * How to verify a staged backup built on the latest snapshot `baseId`: hash only its new files
 * when Mooring itself verified that snapshot (so every file it shares was hashed when it arrived)
 * and no full re-hash is due; otherwise hash everything. Existence and size are always checked.
 */
export async function planStagingVerify(
  stateDir: string,
  baseId: string | undefined,
  policy: RehashPolicy = DEFAULT_REHASH_POLICY,
  now: Date = new Date(),
): Promise<StagingVerifyPlan> {
  const state = await readVerifyState(stateDir);
  if (baseId === undefined) return { why: 'first backup: every file hashed' };
  if (!state || state.verifiedId !== baseId)
    return { why: `snapshot ${baseId} was not verified by Mooring: every file hashed` };
  if (state.backupsSinceFullHash + 1 >= policy.everyBackups)
    return { why: `full re-hash every ${policy.everyBackups} backups` };
  if (now.getTime() - Date.parse(state.fullHashAt) >= policy.maxAgeDays * 86_400_000)
    return { why: `full re-hash every ${policy.maxAgeDays} days` };
  return {
    hashOnlyUnshared: true,
    ...(state.checkedAt !== undefined ? { baseCheckedAt: Date.parse(state.checkedAt) } : {}),
    why: 'files shared with the verified previous snapshot: size checked, not re-hashed',
  };
}

/**
 * After a commit: `snapshotId` verified with `plan`, `report` what that verify found (best effort;
 * a lost record only costs a full hash).
 */
export async function recordStagingVerify(
  stateDir: string,
  snapshotId: string,
  plan: VerifyOptions,
  now: Date = new Date(),
  report?: Pick<VerifyReport, 'ok' | 'contentsChecked' | 'checkedAt'>,
): Promise<void> {
  const prev = await readVerifyState(stateDir);
  const partial = plan.hashOnlyUnshared === true && prev !== undefined;
  const state: VerifyState = {
    version: 1,
    verifiedId: snapshotId,
    fullHashAt: partial ? prev.fullHashAt : now.toISOString(),
    backupsSinceFullHash: partial ? prev.backupsSinceFullHash + 1 : 0,
  };
  if (report?.ok === true && report.contentsChecked && report.checkedAt !== undefined)
    state.checkedAt = report.checkedAt;
  await writeFileDurable(path.join(stateDir, VERIFY_STATE_FILE), `${JSON.stringify(state)}\n`);
}
