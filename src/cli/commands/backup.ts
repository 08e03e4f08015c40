/**
 * `mooring backup`: one backup of one device into the versioned store. The engine writes into a
 * staged copy of the latest backup; only a backup the device finished and that verifies is
 * committed, atomically. Anything else leaves the latest complete backup exactly as it was.
 */
import { runBackupJob, type JobEncryption, type JobOutcome } from '../../job';
import { type CliContext, requirePairRecord, resolveEndpoint, type Via } from '../context';
import { humanProgress, jsonProgress, type ProgressSink } from '../progress';
import { requireChosenFolder, resolveDestination } from '../agent-settings';
import type { RoomPolicy } from '../../store';
import { FileSecretStore, passwordCandidates, secretsDir } from '../../secrets'; // H8b

export interface BackupArgs {
  udid?: string;
  via: Via;
  dest?: string;
  full: boolean;
  /** D48: the device may have the oldest snapshots removed when it lacks room. */
  makeRoom?: boolean;
  json: boolean;
  /** Rewrite one status line in place (stderr is a terminal). */
  live: boolean;
  signal?: AbortSignal;
}

export type BackupOutcome = JobOutcome;

export const EXIT_BACKUP_FAILED = 1;

export const EXIT_CANCELLED = 130;

/** `--make-room`: no retention policy of its own; the oldest snapshots first (D48). */
const OLDEST_FIRST: RoomPolicy = {
  retention: { keepAllDays: Infinity, dailyDays: Infinity, weeklyDays: Infinity },
  beyondRetention: true,
};

/** H8b: the stored passwords, and the era of the one that opens a new backup remembered. */
export function encryptionCheck(dataDir: string, udid: string): JobEncryption {
  const secrets = new FileSecretStore(secretsDir(dataDir));
  return {
    passwords: passwordCandidates(secrets, udid),
    onOpened: (keyBagId, password) => secrets.rememberEra(udid, keyBagId, password),
  };
}

export async function backupCommand(ctx: CliContext, a: BackupArgs): Promise<number> {
  const progress: ProgressSink = a.json
    ? jsonProgress(ctx.out)
    : humanProgress((t) => process.stderr.write(t), a.live);
  const endpoint = await resolveEndpoint(ctx, a.udid, a.via);
  const { record } = await requirePairRecord(ctx, endpoint.udid);
  const destination = await resolveDestination(a.dest, ctx.dataDir, ctx.err);
  requireChosenFolder(destination);
  const dest = destination.dir;
  // On a thread of its own when it can (job/job-thread); the crash-test hook goes with it.
  const outcome = await runBackupJob({
    endpoint,
    record,
    dest,
    full: a.full,
    ...(a.makeRoom === true ? { makeRoom: OLDEST_FIRST } : {}),
    ...(a.signal ? { signal: a.signal } : {}),
    onEvent: (e) => progress.event(e),
    log: (line) => process.stderr.write(`mooring: ${line}\n`),
    // H8b: an encrypted backup is opened with the stored password after verify.
    encryption: encryptionCheck(ctx.dataDir, endpoint.udid),
  });
  // Nothing was backed up (the store, the connection or the session refused, or the commit
  // failed): an error the CLI reports as such, not a backup result.
  if (outcome.error) throw outcome.error;
  progress.done();
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
        encryption: outcome.encryption, // H8b
        roomMade: outcome.roomMade, // D48
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
