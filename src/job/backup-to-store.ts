/**
 * One backup of one device into the versioned store, start to end: open the store (it recovers
 * an interrupted commit and refuses a second backup of this device), stage a copy of the latest
 * backup, open a lockdown session, run the engine into the staging, verify, and commit only a
 * backup the device finished and that verifies. Anything else discards the staging, so the
 * latest complete backup stays exactly as it was.
 *
 * Used by `mooring backup` and by the agent. It knows no schedule and no history: it returns a
 * JobOutcome that says how far it got (`stage`) and why it stopped, and never throws for what a
 * device, a connection or a disk does.
 */
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import {
  freeBytesOf,
  ReceivedDigests,
  runBackup,
  type BackupEvent,
  type BackupResult,
  type BackupTimeouts,
} from '../backup';
import { DeviceSession, type DeviceEndpoint, type ValueQuery, type ValueReader } from '../lockdown';
import { MbErrorCode } from '../format/mb-errors';
import type { PairRecord } from '../pairing/pair-record';
import {
  appendAttempt,
  planStagingVerify,
  recordStagingVerify,
  combineRoomPlans,
  describeDamage,
  openStore,
  SHARE_REFUSED,
  ShareRefused,
  sharingRefusedIn,
  type SnapshotDamage,
  type RecoveryReport,
  type RoomPlan,
  type RoomPolicy,
  type SnapshotInfo,
  type SnapshotStore,
  type Staging,
  type StoreOptions,
  type VerifyReport,
} from '../store';
import { formatBytes } from '../util/bytes';
import { checkEncryptedBackup, type PasswordCandidates } from '../store/encrypted'; // H8b
import { isMooringError, MooringError } from '../util/errors';

export type JobEvent = BackupEvent | { type: 'store'; message: string };

/** How far a job got: the step it ended in (a success ends in 'commit'). */
export type JobStage = 'store' | 'connect' | 'session' | 'backup' | 'verify' | 'commit';

export interface JobOptions {
  endpoint: DeviceEndpoint;
  record: PairRecord;
  /** The destination folder holding `<UDID>/` and `.mooring/`. */
  dest: string;
  full?: boolean;
  signal?: AbortSignal;
  onEvent?: (e: JobEvent) => void;
  storeOptions?: StoreOptions;
  timeouts?: Partial<BackupTimeouts>;
  /**
   * Called once the lockdown session is open, before the backup starts: the agent reads the
   * device's values there (name, version, passcode) and notes the successful contact. Errors
   * it throws are ignored.
   */
  onSession?: (values: ValueReader) => Promise<void> | void;
  /**
   * Every value onSession reads. A job on its own thread (job-thread) reads exactly these from
   * the session and hands onSession a reader that answers them; another read fails there.
   */
  sessionReads?: readonly ValueQuery[];
  /** Lockdown label (default 'mooring'). */
  label?: string;
  /** H8b: how an encrypted backup is opened after verify (see checkEncryptedStaging). */
  encryption?: JobEncryption;
  /**
   * D48: when the device asks for room, what may go (store/make-room). Without it the request is
   * refused, and a device that lacks room fails with MBErrorDomain 105.
   */
  makeRoom?: RoomPolicy;
}

/** Everything the CLI prints and the agent records. */
export interface JobOutcome {
  ok: boolean;
  udid: string;
  /** One human line. */
  message: string;
  /** The engine's result; a job that failed before the engine ran has an empty one. */
  result: BackupResult;
  verify?: VerifyReport;
  snapshot?: SnapshotInfo;
  /** Free bytes on the destination's disk, measured after a failure. */
  freeBytes?: number;
  stage: JobStage;
  /** What stopped a job before or after the engine (store, connection, session, commit). */
  error?: Error;
  /** What the store repaired on opening, as one line. */
  recovered?: string;
  /** What the store found changed outside a backup when it opened (RecoveryReport.found). */
  storeFound?: string[];
  /**
   * The latest backup was found damaged on disk (marked by a verification, or found when this
   * backup's staged copy did not verify): this job made a full backup into a fresh snapshot.
   */
  repaired?: { id: string; damage: SnapshotDamage };
  /**
   * Our own backup folder failed during the job (removed, read-only, full): found by probing it
   * after a failure, because the device then only reports that the host did not answer.
   */
  folderProblem?: FolderProblem;
  /** H8b: an encrypted backup, and whether Mooring's password opened it. */
  encryption?: EncryptionCheck;
  /** D48: the device asked for room, and this is what was removed for it (a failed job too). */
  roomMade?: RoomPlan;
}

// ---- H8b: encrypted backups are opened after every backup -------------------------------------

export interface JobEncryption {
  /** The passwords that may open this device's backups (secret store, by keybag era). */
  passwords: PasswordCandidates;
  /** The password that opened this backup's keybag: the caller keeps it for that era. */
  onOpened?: (keyBagId: string, password: string) => Promise<void> | void;
  /** Files decrypted in full (default store/encrypted.ts DEFAULT_SAMPLE_FILES). */
  sample?: number;
}

export interface EncryptionCheck {
  /** Whether Mooring's password opened it (Manifest.db and the sample decrypted). */
  opened: boolean;
  /** Why not: no password known, the known ones do not match, or not checked (no hook). */
  problem?: 'NO_PASSWORD' | 'MISMATCH' | 'NOT_CHECKED';
  keyBagId?: string;
  /** Files decrypted in full, of `files`. */
  decrypted?: number;
  files?: number;
}

/**
 * After verify, for an encrypted backup: unlock the keybag, decrypt Manifest.db and a random
 * sample of files. Decided (issue 8): a password that is missing or does not match does NOT stop
 * the commit: the device made a complete backup, restorable with the right password; the outcome
 * says Mooring cannot open it and what to run. Files that do not decrypt with the right password
 * are damage, like a wrong size: the backup is not committed and the previous one stays.
 */
async function checkEncryptedStaging(
  o: JobOptions,
  dir: string,
): Promise<{ check: EncryptionCheck; damage?: string; note?: string }> {
  const udid = o.endpoint.udid;
  if (!o.encryption) {
    return {
      check: { opened: false, problem: 'NOT_CHECKED' },
      note: 'the backup is encrypted; Mooring was given no password, so it did not open it',
    };
  }
  try {
    const r = await checkEncryptedBackup(dir, o.encryption.passwords, {
      ...(o.encryption.sample === undefined ? {} : { sample: o.encryption.sample }),
    });
    const check: EncryptionCheck = {
      opened: r.ok,
      keyBagId: r.keyBagId,
      decrypted: r.decrypted,
      files: r.files,
    };
    if (!r.ok) {
      return {
        check,
        damage: `${r.problemCount} encrypted file(s) do not decrypt, e.g. ${r.problems[0] ?? 'unknown'}`,
      };
    }
    await Promise.resolve(o.encryption.onOpened?.(r.keyBagId, r.password)).catch(() => undefined);
    return { check };
  } catch (e) {
    if (!isMooringError(e, 'WRONG_PASSWORD')) {
      return {
        check: { opened: false },
        damage: `it cannot be decrypted: ${(e as Error).message}`,
      };
    }
    const problem = e.detail === 'NO_PASSWORD' ? 'NO_PASSWORD' : 'MISMATCH';
    return {
      check: { opened: false, problem },
      note:
        problem === 'NO_PASSWORD'
          ? `Mooring cannot open this backup: it is encrypted and Mooring knows no password for it; run "mooring encryption password --udid ${udid}"`
          : `Mooring cannot open this backup: the stored password does not match; run "mooring encryption password --udid ${udid}"`,
    };
  }
}

export type FolderProblem = 'gone' | 'read-only' | 'not-writable' | 'full';

/**
 * After a failed job: can we still write into the backup folder? A device reports a host that
 * stopped answering (MBErrorDomain 104 "CreateDirectory failed") however our disk failed; this
 * says which. Undefined when the folder is fine (the failure was elsewhere).
 */
export async function probeBackupFolder(
  dest: string,
): Promise<{ problem: FolderProblem; message: string } | undefined> {
  try {
    await fsp.access(dest);
  } catch {
    return {
      problem: 'gone',
      message: `The backup folder ${dest} disappeared during the backup (removed, or its disk was disconnected); nothing was saved from this backup`,
    };
  }
  const probe = path.join(dest, `.mooring-probe-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    await fsp.writeFile(probe, 'x');
    await fsp.rm(probe, { force: true });
    return undefined;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EROFS')
      return {
        problem: 'read-only',
        message: `The backup folder ${dest} became read-only during the backup (its disk was remounted read-only or has errors); the previous backup is kept unchanged`,
      };
    if (code === 'ENOSPC' || code === 'EDQUOT')
      return {
        problem: 'full',
        message: `Not enough free space on this computer to finish the backup in ${dest}; the previous backup is kept unchanged`,
      };
    if (code === 'EACCES' || code === 'EPERM')
      return {
        problem: 'not-writable',
        message: `The backup folder ${dest} cannot be written any more (permission denied); the previous backup is kept unchanged`,
      };
    return undefined;
  }
}

/**
 * A file the staging could not share (SHARE_REFUSED) on a disk that does share files (a new
 * probe file links): that file is the cause (immutable, another user's under Linux's
 * protected_hardlinks), not the disk, so the person is not told to change disks.
 */
function blameOneFile(outcome: JobOutcome, dest: string): void {
  const e = outcome.error;
  if (!isMooringError(e, 'IO') || e.detail !== SHARE_REFUSED) return;
  if (!(e.cause instanceof ShareRefused)) return;
  const { from, code } = e.cause;
  let refused: string | undefined;
  try {
    refused = sharingRefusedIn(dest);
  } catch {
    return; // the folder itself is the trouble; the probe of the folder says so
  }
  if (refused !== undefined) return;
  outcome.error = new MooringError(
    'IO',
    `Cannot share ${from} with the new backup (${code}), though this folder's disk shares other files: check that file's owner and attributes (made by another user, or immutable); the previous backup is kept unchanged`,
    { detail: 'LINK_REFUSED', cause: e },
  );
  outcome.message = outcome.error.message;
}

export function describeRecovery(r: RecoveryReport): string | undefined {
  const parts: string[] = [];
  if (r.journal) parts.push(`finished an interrupted ${r.journal}`);
  if (r.discardedStaging.length > 0) {
    parts.push(`discarded ${r.discardedStaging.length} unfinished backup(s)`);
  }
  if (r.adopted) parts.push(`adopted an existing backup as snapshot ${r.adopted}`);
  parts.push(...r.found);
  return parts.length > 0 ? `Store recovered: ${parts.join('; ')}.` : undefined;
}

/** ENOSPC/EDQUOT from our own disk, as one clear line; other errors unchanged. */
export function diskFullError(e: unknown, doing: string): unknown {
  const code = (e as NodeJS.ErrnoException | null)?.code;
  if (code !== 'ENOSPC' && code !== 'EDQUOT') return e;
  return new MooringError(
    'IO',
    `Not enough free space on this computer to ${doing} (${(e as Error).message})`,
    { cause: e },
  );
}

export function isDiskFull(e: unknown): boolean {
  const seen = new Set<unknown>();
  for (let x: unknown = e; x !== undefined && x !== null && !seen.has(x);) {
    seen.add(x);
    const code = (x as NodeJS.ErrnoException).code;
    if (code === 'ENOSPC' || code === 'EDQUOT') return true;
    x = (x as { cause?: unknown }).cause;
  }
  return false;
}

function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}

/**
 * A job that stopped before or outside the engine, told by `error` (its message is the outcome's),
 * with the free space on the destination's disk.
 */
export async function failedOutcome(
  o: Pick<JobOptions, 'endpoint' | 'dest'>,
  stage: JobStage,
  error: unknown,
  extra: Partial<JobOutcome> = {},
): Promise<JobOutcome> {
  const err = asError(error);
  const out: JobOutcome = {
    ok: false,
    udid: o.endpoint.udid,
    message: err.message,
    result: emptyResult(err.message),
    stage,
    error: err,
    ...extra,
  };
  const free = await freeBytesOf(o.dest).catch(() => undefined);
  if (free !== undefined) out.freeBytes = free;
  return out;
}

/** The engine's result for a job that failed before or without the engine. */
function emptyResult(message: string): BackupResult {
  return {
    ok: false,
    message,
    bytesReceived: 0,
    filesReceived: 0,
    refusedPaths: [],
    durationMs: 0,
    warnings: [],
  };
}

/** Errors that mean we never got a working connection (as opposed to a refused session). */
function isConnectFailure(e: unknown): boolean {
  return (
    isMooringError(e, 'USBMUXD') ||
    isMooringError(e, 'TIMEOUT') ||
    isMooringError(e, 'CLOSED') ||
    (e as NodeJS.ErrnoException | null)?.code === 'ECONNREFUSED'
  );
}

export async function backupToStore(o: JobOptions): Promise<JobOutcome> {
  const udid = o.endpoint.udid;
  const emit = (e: JobEvent): void => {
    try {
      o.onEvent?.(e);
    } catch {
      // a failing listener must not break the backup
    }
  };

  let store: SnapshotStore;
  try {
    store = await openStore(o.dest, udid, o.storeOptions ?? {});
  } catch (e) {
    return failedOutcome(o, 'store', diskFullError(e, `open the backup folder ${o.dest}`));
  }
  const recovered = describeRecovery(store.recovery);
  if (recovered) emit({ type: 'store', message: recovered });
  // On every outcome from here, failed ones too: this open brought the records in line, so no
  // later open will find the same changes to tell.
  const found = store.recovery.found;
  const extra: Partial<JobOutcome> = {
    ...(recovered ? { recovered } : {}),
    ...(found.length > 0 ? { storeFound: [...found] } : {}),
  };
  const startedAt = new Date().toISOString();
  // Fault matrix: a latest marked damaged is repaired by a full backup into a fresh staging
  // (a link copy would carry the damage into the new snapshot).
  let repair = await store.latestDamage().catch(() => undefined);
  // The device could not use the previous backup (MBErrorDomain 205): asked again, once, for a
  // full backup into a fresh staging, instead of failing the same way at every attempt.
  let refusedPrevious = false;
  const rooms: RoomPlan[] = [];
  let outcome: JobOutcome | undefined;
  for (let round = 0; round < 2 && outcome === undefined; round++) {
    if (refusedPrevious) {
      emit({
        type: 'store',
        message:
          'The device could not use the previous backup (MBErrorDomain 205); asking it for a full backup into a new snapshot',
      });
    } else if (repair) {
      emit({
        type: 'store',
        message: `The latest backup (${repair.id}) is damaged (${describeDamage(repair.damage)}); making a full backup into a new snapshot`,
      });
    }
    let staging: Staging;
    try {
      // The hard links of the latest are made while the device's session opens (stagedBackup).
      staging = await store.beginStaging({
        ...(repair || refusedPrevious ? { fresh: true } : {}),
        linkInBackground: true,
      });
    } catch (e) {
      return failedOutcome(o, 'store', diskFullError(e, `start a backup in ${o.dest}`), extra);
    }
    try {
      const full = repair !== undefined || refusedPrevious;
      const r = await stagedBackup(full ? { ...o, full: true } : o, staging, emit, store, rooms);
      if (r === 'latest-damaged') repair = await store.latestDamage().catch(() => undefined);
      else if (
        !r.ok &&
        !full &&
        o.full !== true &&
        r.result.errorCode === MbErrorCode.BAD_BACKUP &&
        !o.signal?.aborted
      ) {
        refusedPrevious = true;
      } else outcome = r;
    } catch (e) {
      // Only bugs and our own disk get here (the engine itself never throws for the device).
      outcome = await failedOutcome(o, 'backup', e, extra);
    } finally {
      if (!outcome?.ok) {
        await staging.discard().catch(() => undefined);
      }
    }
    if (outcome === undefined && repair === undefined && !refusedPrevious) break;
  }
  if (outcome === undefined) {
    outcome = await failedOutcome(
      o,
      'verify',
      new MooringError('IO', 'the latest backup is damaged and could not be repaired'),
      extra,
    );
  }
  if (repair && outcome.ok) outcome.repaired = repair;
  const roomMade = combineRoomPlans(rooms);
  if (roomMade) outcome.roomMade = roomMade;
  if (!outcome.ok) blameOneFile(outcome, o.dest);
  if (!outcome.ok && outcome.stage !== 'connect' && outcome.stage !== 'session') {
    const folder = await probeBackupFolder(o.dest);
    if (folder && !(folder.problem === 'full' && /free space/i.test(outcome.message))) {
      outcome.message = `${folder.message} (${outcome.message})`;
      outcome.folderProblem = folder.problem;
    }
  }
  if (recovered) outcome.recovered = recovered;
  // Findings of later reconciles in this job (its commit) too.
  if (store.recovery.found.length > 0) outcome.storeFound = [...store.recovery.found];
  if (!outcome.ok && outcome.freeBytes === undefined) {
    const free = await freeBytesOf(o.dest).catch(() => undefined);
    if (free !== undefined) outcome.freeBytes = free;
  }
  if (outcome.stage !== 'store' && outcome.stage !== 'connect' && outcome.stage !== 'session') {
    await recordAttempt(store.stateDir, o, startedAt, outcome, emit);
  }
  return outcome;
}

/**
 * Puts one attempt on the store's record (attempts.jsonl). On a full disk the record itself may
 * not fit: that must not hide the outcome, so a failure is only a warning.
 */
export async function recordAttempt(
  stateDir: string,
  o: Pick<JobOptions, 'endpoint'>,
  startedAt: string,
  outcome: JobOutcome,
  warn: (e: JobEvent) => void,
): Promise<void> {
  await appendAttempt(stateDir, {
    startedAt,
    endedAt: new Date().toISOString(),
    ok: outcome.ok,
    message: outcome.message,
    ...(outcome.result.failure ? { failure: outcome.result.failure } : {}),
    ...(outcome.result.errorCode === undefined ? {} : { errorCode: outcome.result.errorCode }),
    bytesReceived: outcome.result.bytesReceived,
    filesReceived: outcome.result.filesReceived,
    refusedPaths: outcome.result.refusedPaths,
    ...(outcome.snapshot ? { snapshot: outcome.snapshot.id } : {}),
    transport: o.endpoint.transport,
  }).catch((e: unknown) => {
    warn({
      type: 'warning',
      message: `could not record this attempt in the store: ${(e as Error).message}`,
    });
  });
}

/**
 * D48: the device's request for room, answered from the store within `policy`; each plan is kept
 * for the outcome, and told as it happens. True when a snapshot was removed.
 */
function roomMaker(
  store: SnapshotStore,
  policy: RoomPolicy,
  emit: (e: JobEvent) => void,
  rooms: RoomPlan[],
): (shortBytes: number) => Promise<boolean> {
  return async (shortBytes) => {
    let plan: RoomPlan;
    try {
      plan = await store.makeRoom(shortBytes, policy);
    } catch (e) {
      emit({ type: 'warning', message: `could not make room: ${(e as Error).message}` });
      return false;
    }
    rooms.push(plan);
    const removed = [...plan.byRetention, ...plan.beyondRetention];
    const short = shortBytes > 0 ? `; the device lacks ${formatBytes(shortBytes)}` : '';
    if (removed.length > 0) {
      emit({
        type: 'store',
        message: `Removed ${removed.length} older snapshot(s) to make room (${formatBytes(plan.freesBytes)} freed): ${removed.join(', ')}${short}`,
      });
    } else if (plan.outOfReach) {
      emit({
        type: 'store',
        message: `No snapshot removed to make room: removing every older one would free only ${formatBytes(plan.outOfReach.possibleBytes)}${short}`,
      });
    }
    return removed.length > 0;
  };
}

/** Session → engine → verify → commit, inside an open staging. */
async function stagedBackup(
  o: JobOptions,
  staging: Staging,
  emit: (e: JobEvent) => void,
  store: SnapshotStore,
  rooms: RoomPlan[],
): Promise<JobOutcome | 'latest-damaged'> {
  const udid = o.endpoint.udid;
  const failed = (stage: JobStage, e: unknown): JobOutcome => {
    const error = asError(e);
    return {
      ok: false,
      udid,
      message: error.message,
      result: emptyResult(error.message),
      stage,
      error,
    };
  };
  // The SHA-1 of each file as it arrives: the verify then reads back only what it did not see.
  const received = new ReceivedDigests();
  // H6: hash only the files this backup added unless a full re-hash is due (store/verify.ts).
  // Planned now, so that the verify's read of Manifest.db begins when the device has sent it (D34).
  const verifyPlan = await planStagingVerify(
    store.stateDir,
    await store.resolve('latest').then(
      (l) => l.id,
      () => undefined,
    ),
  );
  staging.expectVerify({ ...verifyPlan, received });
  let session: DeviceSession;
  try {
    session = await DeviceSession.open(o.endpoint, o.record, { label: o.label ?? 'mooring' });
  } catch (e) {
    return failed(isConnectFailure(e) ? 'connect' : 'session', e);
  }
  let result: BackupResult;
  try {
    try {
      await o.onSession?.(session);
    } catch {
      // reading extra facts is optional
    }
    result = await runBackup({
      session,
      target: staging,
      // The device prepares while the links are made; then it may read and write outside the
      // folders still being filled (D32).
      targetLinking: { topLevel: staging.topLevelReady, done: staging.ready },
      received,
      ...(o.full === undefined ? {} : { full: o.full }),
      ...(o.signal ? { signal: o.signal } : {}),
      ...(o.timeouts ? { timeouts: o.timeouts } : {}),
      ...(o.makeRoom ? { makeRoom: roomMaker(store, o.makeRoom, emit, rooms) } : {}),
      onEvent: emit,
    });
  } finally {
    await session.close();
  }
  // A staged copy that failed (a full disk, a folder removed) is the store's failure.
  const linked = await staging.ready.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (linked !== undefined)
    return failed('store', diskFullError(linked, `start a backup in ${o.dest}`));
  const outcome: JobOutcome = {
    ok: false,
    udid,
    message: result.message,
    result,
    stage: 'backup',
  };
  if (!result.ok) return outcome;

  outcome.stage = 'verify';
  emit({ type: 'store', message: 'Verifying the backup…' });
  let report: VerifyReport;
  try {
    report = await staging.verify({ ...verifyPlan, received });
  } catch (e) {
    return { ...outcome, ...failed('verify', diskFullError(e, 'verify the backup')) };
  }
  outcome.verify = report;
  if (!report.ok && o.full !== true && result.isFull !== true) {
    // The staged copy inherits the latest's files: when the latest itself is damaged (it is now
    // marked), the caller repairs it at once with a full backup instead of failing every time.
    const latest = await store.checkSnapshot('latest', { hash: false }).catch(() => undefined);
    if (latest && !latest.report.ok && latest.recorded) return 'latest-damaged';
  }
  if (!report.ok) {
    outcome.message =
      `The device finished, but the backup does not verify (${report.problemCount} problems, ` +
      `e.g. ${report.problems[0]?.problem ?? 'unknown'}); the previous backup is kept unchanged`;
    return outcome;
  }
  // H8b: an encrypted backup must open with the user's password (see checkEncryptedStaging).
  let encryptionNote: string | undefined;
  if (report.encrypted) {
    emit({ type: 'store', message: 'Opening the encrypted backup with its password…' });
    const enc = await checkEncryptedStaging(o, path.join(staging.root, staging.udid));
    outcome.encryption = enc.check;
    if (enc.damage) {
      outcome.message = `The device finished, but the encrypted backup does not verify (${enc.damage}); the previous backup is kept unchanged`;
      return outcome;
    }
    encryptionNote = enc.note;
    if (enc.note) emit({ type: 'warning', message: enc.note });
  }
  outcome.stage = 'commit';
  try {
    outcome.snapshot = await staging.commit(
      result.isFull === undefined ? {} : { isFull: result.isFull },
    );
  } catch (e) {
    const error = asError(diskFullError(e, 'commit the backup'));
    return { ...outcome, message: error.message, error };
  }
  // H6: remember what was verified, for the next backup's plan (a lost record costs a full hash).
  await recordStagingVerify(
    store.stateDir,
    outcome.snapshot.id,
    verifyPlan,
    undefined,
    report,
  ).catch(() => undefined);
  outcome.ok = true;
  outcome.message =
    `Backup complete: ${result.filesReceived} files, ${formatBytes(result.bytesReceived)} received; ` +
    `snapshot ${outcome.snapshot.id} verified (${report.files} files` +
    // D26: those the backup left as they were in the verified previous snapshot are not re-read.
    (report.unchangedFiles
      ? `, ${report.unchangedFiles} unchanged since the previous snapshot, not re-read`
      : '') +
    `) in ${outcome.snapshot.path}`;
  // H8b
  if (outcome.encryption?.opened) {
    outcome.message += `; encrypted, opens with the stored password (${outcome.encryption.decrypted} files decrypted)`;
  } else if (encryptionNote) outcome.message += `. ${encryptionNote}`;
  return outcome;
}
