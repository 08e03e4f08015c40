/**
 * `mooring backup`: one backup of one device into the versioned store. The engine writes into a
 * staged copy of the latest backup; only a backup the device finished and that verifies is
 * committed, atomically. Anything else leaves the latest complete backup exactly as it was.
 */
import { runBackup, type BackupResult } from '../../backup';
import { DeviceSession } from '../../lockdown';
import { MooringError } from '../../util/errors';
import {
  appendAttempt,
  openStore,
  type RecoveryReport,
  type SnapshotInfo,
  type StoreOptions,
  type VerifyReport,
} from '../../store';
import { type CliContext, requirePairRecord, resolveEndpoint, type Via } from '../context';
import { formatBytes, humanProgress, jsonProgress, type ProgressSink } from '../progress';
import { destination } from '../store-access';

export interface BackupArgs {
  udid?: string;
  via: Via;
  dest?: string;
  full: boolean;
  json: boolean;
  /** Rewrite one status line in place (stderr is a terminal). */
  live: boolean;
  signal?: AbortSignal;
}

export interface BackupOutcome {
  ok: boolean;
  udid: string;
  message: string;
  result: BackupResult;
  verify?: VerifyReport;
  snapshot?: SnapshotInfo;
}

export const EXIT_BACKUP_FAILED = 1;

function describeRecovery(r: RecoveryReport): string | undefined {
  const parts: string[] = [];
  if (r.journal) parts.push(`finished an interrupted ${r.journal}`);
  if (r.discardedStaging.length > 0) {
    parts.push(`discarded ${r.discardedStaging.length} unfinished backup(s)`);
  }
  if (r.adopted) parts.push(`adopted an existing backup as snapshot ${r.adopted}`);
  return parts.length > 0 ? `Store recovered: ${parts.join('; ')}.` : undefined;
}
export const EXIT_CANCELLED = 130;

/**
 * TEST FAULT HOOK, used only by the crash-safety tests (test/cli/backup-crash*.test.ts):
 * `MOORING_CRASH_AT=commit:<step>` (a CommitStep, e.g. `commit:moved-latest`; or `prune:<step>`)
 * makes this process SIGKILL itself right after that durable step of the store (StoreHooks.afterStep,
 * also during the recovery of an earlier interrupted commit). Those steps emit no events, so an
 * outside kill cannot be aimed at them. Unset (always, in normal use) it changes nothing.
 */
export const CRASH_AT_ENV = 'MOORING_CRASH_AT';

export function crashTestStoreOptions(env: NodeJS.ProcessEnv = process.env): StoreOptions {
  const at = env[CRASH_AT_ENV];
  if (!at) return {};
  return {
    hooks: {
      afterStep: (op, step) => {
        if (`${op}:${step}` === at) process.kill(process.pid, 'SIGKILL');
      },
    },
  };
}

/** The store could not write (staging, journal, metadata) because the disk is full: one clear line. */
function diskFull(e: unknown, doing: string): unknown {
  const code = (e as NodeJS.ErrnoException | null)?.code;
  if (code !== 'ENOSPC' && code !== 'EDQUOT') return e;
  return new MooringError(
    'IO',
    `Not enough free space on this computer to ${doing} (${(e as Error).message})`,
    { cause: e },
  );
}

export async function backupCommand(ctx: CliContext, a: BackupArgs): Promise<number> {
  const progress: ProgressSink = a.json
    ? jsonProgress(ctx.out)
    : humanProgress((t) => process.stderr.write(t), a.live);
  const endpoint = await resolveEndpoint(ctx, a.udid, a.via);
  const { record } = await requirePairRecord(ctx, endpoint.udid);
  const dest = destination(a.dest, ctx.dataDir);
  // The store first: it recovers an interrupted commit and refuses a second backup of this device.
  const store = await openStore(dest, endpoint.udid, crashTestStoreOptions());
  const recovered = describeRecovery(store.recovery);
  if (recovered) progress.event({ type: 'store', message: recovered });
  const startedAt = new Date().toISOString();
  const staging = await store.beginStaging().catch((e: unknown) => {
    throw diskFull(e, `start a backup in ${dest}`);
  });
  let outcome: BackupOutcome | undefined;
  try {
    const session = await DeviceSession.open(endpoint, record, { label: 'mooring' });
    let result: BackupResult;
    try {
      result = await runBackup({
        session,
        target: staging,
        full: a.full,
        ...(a.signal ? { signal: a.signal } : {}),
        onEvent: (e) => progress.event(e),
      });
    } finally {
      await session.close();
    }
    outcome = { ok: false, udid: endpoint.udid, message: result.message, result };
    if (result.ok) {
      progress.event({ type: 'store', message: 'Verifying the backup…' });
      const report = await staging.verify();
      outcome.verify = report;
      if (report.ok) {
        outcome.snapshot = await staging
          .commit(result.isFull === undefined ? {} : { isFull: result.isFull })
          .catch((e: unknown) => {
            throw diskFull(e, 'commit the backup');
          });
        outcome.ok = true;
        outcome.message =
          `Backup complete: ${result.filesReceived} files, ${formatBytes(result.bytesReceived)} received; ` +
          `snapshot ${outcome.snapshot.id} verified (${report.files} files) in ${outcome.snapshot.path}`;
      } else {
        outcome.message =
          `The device finished, but the backup does not verify (${report.problemCount} problems, ` +
          `e.g. ${report.problems[0]?.problem ?? 'unknown'}); the previous backup is kept unchanged`;
      }
    }
  } finally {
    if (!outcome?.ok) await staging.discard();
  }
  progress.done();
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
    transport: endpoint.transport,
  }).catch((e: unknown) => {
    ctx.err(`Warning: could not record this attempt: ${(e as Error).message}`);
  });
  if (a.json) {
    ctx.out(
      JSON.stringify({
        type: 'result',
        ok: outcome.ok,
        udid: outcome.udid,
        message: outcome.message,
        failure: outcome.result.failure,
        errorCode: outcome.result.errorCode,
        bytesReceived: outcome.result.bytesReceived,
        filesReceived: outcome.result.filesReceived,
        refusedPaths: outcome.result.refusedPaths,
        isFull: outcome.result.isFull,
        durationMs: outcome.result.durationMs,
        snapshot: outcome.snapshot && { id: outcome.snapshot.id, path: outcome.snapshot.path },
        verify: outcome.verify && {
          ok: outcome.verify.ok,
          files: outcome.verify.files,
          problemCount: outcome.verify.problemCount,
        },
      }),
    );
  } else if (outcome.ok) ctx.out(outcome.message);
  else ctx.err(`mooring: ${outcome.message}`);
  if (outcome.ok) return 0;
  return outcome.result.cancelled && outcome.result.cancelledBy === 'user'
    ? EXIT_CANCELLED
    : EXIT_BACKUP_FAILED;
}
