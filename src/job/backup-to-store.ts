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
import { promises as fsp } from 'node:fs';
import { runBackup, type BackupEvent, type BackupResult, type BackupTimeouts } from '../backup';
import { DeviceSession, type DeviceEndpoint } from '../lockdown';
import type { PairRecord } from '../pairing/pair-record';
import {
  appendAttempt,
  openStore,
  type RecoveryReport,
  type SnapshotInfo,
  type SnapshotStore,
  type Staging,
  type StoreOptions,
  type VerifyReport,
} from '../store';
import { formatBytes } from '../util/bytes';
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
  onSession?: (session: DeviceSession) => Promise<void> | void;
  /** Lockdown label (default 'mooring'). */
  label?: string;
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
}

export function describeRecovery(r: RecoveryReport): string | undefined {
  const parts: string[] = [];
  if (r.journal) parts.push(`finished an interrupted ${r.journal}`);
  if (r.discardedStaging.length > 0) {
    parts.push(`discarded ${r.discardedStaging.length} unfinished backup(s)`);
  }
  if (r.adopted) parts.push(`adopted an existing backup as snapshot ${r.adopted}`);
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

/** Free bytes for an unprivileged writer on the disk holding `dir` (or its nearest parent). */
export async function freeBytesAt(dir: string): Promise<number | undefined> {
  try {
    const st = await fsp.statfs(dir);
    return st.bavail * st.bsize;
  } catch {
    return undefined;
  }
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
  const fail = async (
    stage: JobStage,
    error: unknown,
    extra: Partial<JobOutcome> = {},
  ): Promise<JobOutcome> => {
    const err = asError(error);
    const out: JobOutcome = {
      ok: false,
      udid,
      message: err.message,
      result: emptyResult(err.message),
      stage,
      error: err,
      ...extra,
    };
    const free = await freeBytesAt(o.dest);
    if (free !== undefined) out.freeBytes = free;
    return out;
  };

  let store: SnapshotStore;
  try {
    store = await openStore(o.dest, udid, o.storeOptions ?? {});
  } catch (e) {
    return fail('store', diskFullError(e, `open the backup folder ${o.dest}`));
  }
  const recovered = describeRecovery(store.recovery);
  if (recovered) emit({ type: 'store', message: recovered });
  const extra = recovered ? { recovered } : {};
  const startedAt = new Date().toISOString();
  let staging: Staging;
  try {
    staging = await store.beginStaging();
  } catch (e) {
    return fail('store', diskFullError(e, `start a backup in ${o.dest}`), extra);
  }

  let outcome: JobOutcome | undefined;
  try {
    outcome = await stagedBackup(o, staging, emit);
  } catch (e) {
    // Only bugs and our own disk get here (the engine itself never throws for the device).
    outcome = await fail('backup', e, extra);
  } finally {
    if (!outcome?.ok) {
      await staging.discard().catch(() => undefined);
    }
  }
  if (recovered) outcome.recovered = recovered;
  if (!outcome.ok && outcome.freeBytes === undefined) {
    const free = await freeBytesAt(o.dest);
    if (free !== undefined) outcome.freeBytes = free;
  }
  if (outcome.stage !== 'store' && outcome.stage !== 'connect' && outcome.stage !== 'session') {
    // On a full disk the record itself may not fit: that must not hide the outcome.
    await appendAttempt(store.stateDir, {
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
      emit({
        type: 'warning',
        message: `could not record this attempt in the store: ${(e as Error).message}`,
      });
    });
  }
  return outcome;
}

/** Session → engine → verify → commit, inside an open staging. */
async function stagedBackup(
  o: JobOptions,
  staging: Staging,
  emit: (e: JobEvent) => void,
): Promise<JobOutcome> {
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
      ...(o.full === undefined ? {} : { full: o.full }),
      ...(o.signal ? { signal: o.signal } : {}),
      ...(o.timeouts ? { timeouts: o.timeouts } : {}),
      onEvent: emit,
    });
  } finally {
    await session.close();
  }
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
    report = await staging.verify();
  } catch (e) {
    return { ...outcome, ...failed('verify', diskFullError(e, 'verify the backup')) };
  }
  outcome.verify = report;
  if (!report.ok) {
    outcome.message =
      `The device finished, but the backup does not verify (${report.problemCount} problems, ` +
      `e.g. ${report.problems[0]?.problem ?? 'unknown'}); the previous backup is kept unchanged`;
    return outcome;
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
  outcome.ok = true;
  outcome.message =
    `Backup complete: ${result.filesReceived} files, ${formatBytes(result.bytesReceived)} received; ` +
    `snapshot ${outcome.snapshot.id} verified (${report.files} files) in ${outcome.snapshot.path}`;
  return outcome;
}
