/**
 * Runs one backup for the agent: takes the device's slot and records the attempt synchronously
 * (so two callers can never both start one), runs the job (src/job) in the background, follows
 * its events into the device's status, and records how it ended with the time the scheduler will
 * try again. The end is announced only once the slot is free, so whoever hears it may start the next.
 */
import { promises as fsp } from 'node:fs';
import {
  encryptedNotOpened,
  roomMade,
  waitingForPasscode,
  type AttemptRow,
  type AttemptTrigger,
  type Transport,
} from '../history';
import { runBackupJob, type JobEvent, type JobOutcome } from '../job';
import { decide } from '../scheduler';
import { dateOfSnapshotId, type RoomPlan } from '../store';
import { isMooringError, MooringError } from '../util/errors';
import { errText, type AgentContext } from './agent-context';
import { pruneByRetention } from './auto-prune';
import { readRoomPolicy } from './config';
import { readDeviceFolder } from './folder-backups';
import { prepareNextBackup } from './prepare-next';
import { recordStoreFindings } from './store-findings';
import { CONTACT_READS, type DeviceContact } from './device-contact';
import { classifyOutcome } from './outcome-notice';

/** An error's causes, each on from the one before, for the log (" ← cause ← its cause"). */
function causes(e: Error | undefined): string {
  const out: string[] = [];
  for (let c = e?.cause; c !== undefined && c !== null && out.length < 5;) {
    out.push(c instanceof Error ? c.message : String(c));
    c = c instanceof Error ? c.cause : undefined;
  }
  return out.map((m) => ` ← ${m}`).join('');
}

/** MooringError detail: the chosen backup folder is not there. */
const FOLDER_MISSING = 'BACKUP_DIR_MISSING';

export type StartResult = { attemptId: number } | { code: string; message: string };

/**
 * H7f fault matrix: when the history database is locked by another process (or briefly
 * unwritable) as a backup ends, recording its end is tried again after these delays, so the
 * attempt does not stay "running" until the next start calls it interrupted.
 */
export const FINISH_RETRY_DELAYS_MS = [1000, 3000, 10_000, 30_000, 60_000, 120_000];

export class BackupRunner {
  private readonly jobs = new Set<Promise<void>>();
  /** Attempt ends not recorded yet (history locked), by attempt id: tried again on a timer. */
  private readonly unrecorded = new Map<number, () => boolean>();

  constructor(
    private readonly ctx: AgentContext,
    private readonly contact: Pick<DeviceContact, 'pairRecord' | 'readValues'>,
  ) {}

  /**
   * Each device's next-backup copy being made after its last backup (D42). It runs in the
   * background, outside the device's slot, so that the outcome is told at once; the device's next
   * job waits for it first (its links are the ones that job would make) and takes it whole.
   */
  private readonly preparing = new Map<string, { stop: AbortController; done: Promise<void> }>();

  /** Resolves once every backup started has ended and been recorded (and, stopping, its copy). */
  async settle(): Promise<void> {
    await Promise.allSettled([...this.jobs]);
    if (this.ctx.stopping) for (const p of this.preparing.values()) p.stop.abort();
    await Promise.all([...this.preparing.values()].map((p) => p.done));
    this.flushUnrecorded();
  }

  /** Settles once the device's next-backup copy being made, if any, is done (or dropped). */
  nextPrepared(udid: string): Promise<void> {
    return this.preparing.get(udid)?.done ?? Promise.resolve();
  }

  /**
   * The device's next-backup copy, when its last backup was made without one (before this agent
   * started: by an earlier version, by `mooring backup`, or a copy dropped since). Nothing is done
   * while a backup of it runs (its success makes one) or when the chosen backup folder is missing
   * (the store would make it again on the system disk). Settles when the copy is made, found
   * already made (`reused`), or given up (logged).
   */
  async prepareIfMissing(udid: string): Promise<void> {
    const { ctx } = this;
    const busy = (): boolean => ctx.stopping || ctx.coordinator.isRunning(udid);
    if (busy() || !ctx.runtime(udid).latestSnapshot) return;
    if (!this.preparing.has(udid)) {
      try {
        await this.checkChosenFolder();
      } catch (e) {
        ctx.log(`not preparing the next backup of ${udid}: ${errText(e)}`);
        return;
      }
      // A backup may have taken the slot meanwhile: it makes the copy after it succeeds.
      if (!busy() && !this.preparing.has(udid)) this.prepareNext(udid);
    }
    await this.nextPrepared(udid);
  }

  /** Starts the device's next-backup copy in the background (prepareNextBackup never rejects). */
  private prepareNext(udid: string): void {
    const entry = { stop: new AbortController(), done: Promise.resolve() };
    entry.done = prepareNextBackup(this.ctx, udid, entry.stop.signal).then(() => {
      if (this.preparing.get(udid) === entry) this.preparing.delete(udid);
    });
    this.preparing.set(udid, entry);
  }

  /** Takes the slot and records the attempt synchronously; the backup runs on in the background. */
  start(udid: string, trigger: AttemptTrigger, transport: Transport): StartResult {
    const { ctx } = this;
    if (ctx.stopping) return { code: 'STOPPING', message: 'Mooring is stopping' };
    const slot = ctx.coordinator.tryAcquire(udid, trigger);
    if (!slot.ok) {
      return {
        code: slot.reasonCode,
        message:
          slot.reasonCode === 'ALREADY_RUNNING'
            ? `A backup of ${ctx.view.label(udid)} is already running`
            : 'The limit of backups running at the same time is reached',
      };
    }
    const job = slot.job;
    let attemptId: number;
    try {
      if (ctx.db.getDevice(udid) === undefined) ctx.db.upsertDevice({ udid });
      attemptId = ctx.db.startAttempt({ udid, trigger, transport, startedAt: ctx.now() });
    } catch (e) {
      job.release();
      return { code: 'FAILED', message: errText(e) };
    }
    const rt = ctx.runtime(udid);
    const presence = ctx.registry.get(udid);
    rt.running = {
      attemptId,
      trigger,
      transport,
      startedAt: ctx.now(),
      phase: 'connecting',
      bytes: 0,
      files: 0,
      percent: null,
      quietSince: null,
      passcodeWaiting: false,
      ...(transport === 'wifi' && presence?.wifi ? { address: presence.wifi.host } : {}),
    };
    rt.lastReason = 'RUNNING';
    rt.next = { code: 'RUNNING', message: 'A backup is running', at: null };
    const attempt = ctx.db.getAttempt(attemptId);
    if (attempt) ctx.emit({ type: 'attempt', attempt });
    ctx.log(`backup of ${udid} started: attempt ${attemptId}, ${trigger}, over ${transport}`);
    ctx.emitDevice(udid);
    ctx.emitAgent();
    const work = this.runJob(udid, attemptId, transport, job.signal)
      .catch((e: unknown) => {
        ctx.log(`backup of ${udid} ended badly: ${errText(e)}`);
        return undefined;
      })
      .then((announce) => {
        job.release();
        this.jobs.delete(work);
        announce?.();
        ctx.emitAgent();
        ctx.redecide();
      });
    this.jobs.add(work);
    return { attemptId };
  }

  private async runJob(
    udid: string,
    attemptId: number,
    transport: Transport,
    signal: AbortSignal,
  ): Promise<() => void> {
    const { ctx } = this;
    let outcome: JobOutcome;
    // D48: what may go when the device lacks room; read once, for the job and for its notice.
    const room = readRoomPolicy(ctx.db, udid, (problem) => ctx.log(`settings: ${problem}`));
    try {
      await this.nextPrepared(udid);
      const endpoint = ctx.registry.endpoint(udid, { prefer: transport });
      if (!endpoint) throw new MooringError('CLOSED', `${udid} is no longer reachable`);
      await this.checkChosenFolder();
      const record = await this.contact.pairRecord(udid);
      outcome = await runBackupJob({
        endpoint,
        record,
        dest: ctx.backupDir,
        signal,
        ...(ctx.backupTimeouts ? { timeouts: ctx.backupTimeouts } : {}),
        onEvent: (e) => this.onJobEvent(udid, attemptId, e),
        onSession: (s) => this.contact.readValues(udid, s),
        sessionReads: CONTACT_READS,
        makeRoom: room,
        log: (line) => ctx.log(line),
        // H8c: every encrypted backup is opened with the stored passwords after verify.
        ...(ctx.encryption ? { encryption: ctx.encryption.jobEncryption(udid) } : {}),
      });
    } catch (e) {
      const error = e instanceof Error ? e : new Error(String(e));
      outcome = {
        ok: false,
        udid,
        message: error.message,
        stage: isMooringError(e, 'PAIRING')
          ? 'session'
          : isMooringError(e, 'IO') && e.detail === FOLDER_MISSING
            ? 'store'
            : 'connect',
        error,
        result: {
          ok: false,
          message: error.message,
          bytesReceived: 0,
          filesReceived: 0,
          refusedPaths: [],
          durationMs: 0,
          warnings: [],
        },
      };
    }
    // H8c: whether the latest backup opens; a streak of unopened backups is told once.
    const toldUnopened = ctx.encryption?.status(udid).latestOpens === false;
    ctx.encryption?.afterJob(udid, outcome);
    // The new snapshot is in the device's status before the attempt that made it is recorded: a
    // client that sees the success then sees its snapshot too.
    if (outcome.ok) await readDeviceFolder(ctx, udid, { fresh: true });
    if (outcome.roomMade) this.recordRoomMade(udid, attemptId, outcome.roomMade);
    const announce = this.finishJob(udid, attemptId, transport, outcome, room.beyondRetention);
    recordStoreFindings(ctx, udid, outcome.storeFound, attemptId);
    const enc = outcome.ok ? outcome.encryption : undefined;
    if (enc && !enc.opened && enc.problem !== undefined && !toldUnopened) {
      ctx.record({ ...encryptedNotOpened({ problem: enc.problem }), udid, attemptId });
    }
    if (outcome.ok) {
      // Still inside the device's slot: no other backup of it can start while old ones go.
      if (outcome.snapshot && !ctx.stopping) await pruneByRetention(ctx, udid, attemptId);
      await readDeviceFolder(ctx, udid, { fresh: true });
      if (outcome.snapshot && !ctx.stopping) this.prepareNext(udid);
    }
    return announce;
  }

  /** D48: older snapshots removed for the device's room are told, before the attempt's end. */
  private recordRoomMade(udid: string, attemptId: number, plan: RoomPlan): void {
    const { ctx } = this;
    const removed = [...plan.byRetention, ...plan.beyondRetention];
    if (removed.length === 0) return;
    ctx.log(
      `made room for the backup of ${udid}: removed ${removed.join(', ')} (${plan.freesBytes} bytes; the device lacked ${plan.neededBytes})`,
    );
    const dates = removed.flatMap((id) => dateOfSnapshotId(id)?.getTime() ?? []);
    const now = ctx.now();
    ctx.record({
      ...roomMade({
        byRetention: plan.byRetention.length,
        beyondRetention: plan.beyondRetention.length,
        from: dates.length > 0 ? Math.min(...dates) : now,
        to: dates.length > 0 ? Math.max(...dates) : now,
        freedBytes: plan.freesBytes,
        folder: ctx.backupDir,
        now,
      }),
      udid,
      attemptId,
    });
  }

  /**
   * A backup folder the person chose (often on an external disk) must still be there: the store
   * would otherwise create it again, and the backups would silently fill the system disk.
   */
  private async checkChosenFolder(): Promise<void> {
    const { ctx } = this;
    if (ctx.settings().backupDir === null) return;
    const st = await fsp.stat(ctx.backupDir).catch(() => undefined);
    if (st?.isDirectory()) return;
    throw new MooringError(
      'IO',
      `the backup folder ${ctx.backupDir} is missing: connect the disk it is on, or choose another folder in the settings (backup-dir)`,
      { detail: FOLDER_MISSING },
    );
  }

  private onJobEvent(udid: string, attemptId: number, e: JobEvent): void {
    const { ctx } = this;
    const running = ctx.runtime(udid).running;
    if (!running || running.attemptId !== attemptId || ctx.stopping) return;
    /** The start of a quiet spell (null: the device talks); the front ends hear of a change. */
    const quietSince = (since: number | null): void => {
      if (running.quietSince === since) return;
      running.quietSince = since;
      ctx.emitDevice(udid);
    };
    switch (e.type) {
      case 'phase':
        running.phase = e.phase;
        ctx.emitDevice(udid);
        break;
      case 'progress':
        running.bytes = e.bytesReceived;
        running.files = e.filesReceived;
        // The device's percentage, once it sent one (0 before its first upload).
        if (e.percent > 0 || running.percent !== null) running.percent = e.percent;
        quietSince(null);
        ctx.emit({
          type: 'progress',
          udid,
          attemptId,
          phase: running.phase,
          bytes: e.bytesReceived,
          files: e.filesReceived,
          percent: running.percent,
        });
        break;
      case 'stalled':
        // Told once per quiet spell (repeated every stall notice); its start stays as first told.
        if (running.quietSince === null) quietSince(ctx.now() - e.waitingMs);
        break;
      case 'resumed':
        quietSince(null);
        break;
      case 'passcode-requested':
        running.passcodeWaiting = true;
        running.passcodeSince = ctx.now();
        ctx.record({ ...waitingForPasscode(), udid, attemptId });
        ctx.emitDevice(udid);
        break;
      case 'passcode-dismissed':
        running.passcodeWaiting = false;
        ctx.emitDevice(udid);
        break;
      case 'warning':
        ctx.log(`backup of ${udid}: ${e.message}`);
        break;
      default:
        break;
    }
  }

  /** Records how the attempt ended; returns what tells the front ends (after the slot is free). */
  private finishJob(
    udid: string,
    attemptId: number,
    transport: Transport,
    job: JobOutcome,
    makeRoom: boolean,
  ): () => void {
    const { ctx } = this;
    const rt = ctx.runtime(udid);
    const running = rt.running;
    const now = ctx.now();
    const facts = {
      job,
      transport,
      makeRoom,
      startedAt: running?.startedAt ?? now,
      now,
      stopping: ctx.stopping,
      folder: ctx.backupDir,
      ...(running?.address === undefined ? {} : { address: running.address }),
      ...(running?.passcodeSince === undefined
        ? {}
        : { passcodeWaitedMs: now - running.passcodeSince }),
      lockState: {
        observedSince: ctx.lockWatcher.observedSince(udid),
        lastActivity: rt.lastUnlockedAt,
      },
    };
    let c = classifyOutcome(facts);
    if (!job.ok) {
      // The whole technical story for the log; the notice keeps it short.
      ctx.log(
        `backup of ${udid} (attempt ${attemptId}) ended at its ${job.stage} stage: ${job.message}${causes(job.error)}`,
      );
    }
    if (c.outcome === 'failure') {
      const retryAt = this.retryAfterFailure(udid, now, c.notice.reasonCode, running?.trigger);
      if (retryAt !== undefined) c = classifyOutcome({ ...facts, retryAt });
    }
    let attempt: AttemptRow | undefined;
    const end = {
      outcome: c.outcome,
      notice: c.notice,
      bytes: job.result.bytesReceived,
      files: job.result.filesReceived,
      endedAt: now,
      ...(job.snapshot ? { snapshotId: job.snapshot.id } : {}),
      ...(c.deviceErrorCode === undefined ? {} : { deviceErrorCode: c.deviceErrorCode }),
    };
    try {
      attempt = ctx.db.finishAttempt(attemptId, end);
    } catch (e) {
      ctx.log(`could not record the end of attempt ${attemptId}: ${errText(e)}; will try again`);
      this.recordLater(attemptId, () => ctx.db.finishAttempt(attemptId, end));
    }
    rt.running = undefined;
    rt.lastReason = c.notice.reasonCode;
    if (c.refused) rt.refusedAt = now;
    let n: ReturnType<typeof ctx.db.listHistory>['items'][number] | undefined;
    try {
      n = ctx.db.listHistory({ udid, limit: 1 }).items[0];
    } catch (e) {
      ctx.log(`could not read the history of ${udid}: ${errText(e)}`);
    }
    const notice = c.notice;
    return () => {
      if (n && n.attemptId === attemptId) ctx.notifier.announce(n);
      if (attempt) ctx.emit({ type: 'attempt', attempt });
      ctx.setNext(udid, { code: notice.reasonCode, message: notice.message, at: null });
      ctx.emitDevice(udid);
    };
  }

  /** H7f: tries `write` again after each of FINISH_RETRY_DELAYS_MS until it succeeds. */
  private recordLater(attemptId: number, write: () => AttemptRow): void {
    const { ctx } = this;
    const tryOnce = (): boolean => {
      try {
        const attempt = write();
        this.unrecorded.delete(attemptId);
        ctx.log(`recorded the end of attempt ${attemptId}`);
        ctx.emit({ type: 'attempt', attempt });
        return true;
      } catch {
        return false;
      }
    };
    this.unrecorded.set(attemptId, tryOnce);
    const next = (i: number): void => {
      const delay = FINISH_RETRY_DELAYS_MS[i];
      if (delay === undefined) {
        this.unrecorded.delete(attemptId);
        ctx.log(`gave up recording the end of attempt ${attemptId}`);
        return;
      }
      const t = setTimeout(() => {
        if (this.unrecorded.has(attemptId) && !tryOnce()) next(i + 1);
      }, delay);
      t.unref();
    };
    next(0);
  }

  /** Last chance on stop: records whatever attempt ends are still waiting. */
  flushUnrecorded(): void {
    for (const tryOnce of [...this.unrecorded.values()]) tryOnce();
  }

  /** When the scheduler would try again after this failure (for "tries again at …"). */
  private retryAfterFailure(
    udid: string,
    now: number,
    reason: string,
    trigger: AttemptTrigger | undefined,
  ): number | undefined {
    const { ctx } = this;
    const policy = ctx.policyOf(udid);
    const s = ctx.stateOf(udid, now, policy);
    s.running = false;
    s.passcodeWaiting = false;
    s.consecutiveFailures += 1;
    if (trigger !== 'manual') s.attemptsToday += 1;
    s.lastAttemptAt = new Date(now);
    s.lastFailureReason = reason;
    s.reachable = { usb: true, wifi: true };
    const d = decide(new Date(now), ctx.timeZone, { ...policy, paused: false, enabled: true }, s, {
      running: 0,
      concurrency: 1,
    });
    if (d.action !== 'skip') return undefined;
    if (d.reasonCode === 'RETRY_BACKOFF') return d.params.retryAt.getTime();
    if (d.reasonCode === 'RETRY_CAP_REACHED') return d.params.nextDayAt.getTime();
    return undefined;
  }
}
