/**
 * One backup of one device into a BackupTarget, the way libimobiledevice's idevicebackup2 drives
 * it (reference §6.1, §10): observe notifications, take the sync lock, mobilebackup2 Hello, write
 * Info.plist, send Backup, answer the DeviceLink loop, then always unlock, post syncDidFinish,
 * disconnect and shut the notification proxy down.
 *
 * Success = the device's final ErrorCode 0 AND `<udid>/Status.plist` says SnapshotState finished.
 * Every other ending is a result with ok:false and one human line; runBackup does not throw for
 * anything the device, the connection or the disk does.
 */
import path from 'node:path';
import { isMooringError, MooringError } from '../util/errors';
import { STATUS_PLIST } from '../format/layout';
import { readStatusPlist } from '../format/status-plist';
import type { DeviceDlMessage } from '../protocol/device-link';
import type { ServiceProvider } from '../lockdown/session';
import {
  AFC_LOCK_INTERVAL_MS,
  AFC_SERVICE_NAME,
  AfcClient,
  acquireSyncLock,
  type SyncLock,
} from '../services/afc';
import {
  DEFAULT_SHUTDOWN_TIMEOUT_MS,
  NOTIFICATION_PROXY_SERVICE_NAME,
  NotificationProxyClient,
  Notifications,
} from '../services/notification-proxy';
import { MobileBackup2Client } from '../services/mobilebackup2/client';
import { DeviceLinkHost, type DeviceLinkEnd, type MakeRoom } from './device-link-host';
import {
  DEFAULT_BACKUP_TIMEOUTS,
  type BackupEvent,
  type BackupFailureKind,
  type BackupPhase,
  type BackupResult,
  type BackupTimeouts,
} from './events';
import { gatherInfoPlist, writeInfoPlist, type LockdownValues } from './info-plist';
import { BackupStopped, Interrupt, withDeadline, type StopReason } from './interrupt';
import {
  DEVICE_CANCEL_MESSAGE,
  purgeShortfall,
  DISK_FULL_MESSAGE,
  MbErrorCode,
  PASSCODE_MESSAGE,
  USER_CANCEL_MESSAGE,
  deviceErrorMessage,
  isCancelDescription,
  isPasscodeDescription,
} from './outcome-messages';
import { LinkingGate } from './linking-gate';
import type { BackupTarget, TargetLinking } from './target';
import type { ReceivedDigests } from './received-digests';

/** What runBackup needs of a session: services plus lockdown values (DeviceSession has both). */
export type BackupSession = ServiceProvider & LockdownValues;

export interface BackupOptions {
  session: BackupSession;
  target: BackupTarget;
  /** Ask the device for a full backup (ForceFullBackup) instead of an incremental one. */
  full?: boolean;
  /** Our cancel (the CLI maps Ctrl-C to it). */
  signal?: AbortSignal;
  onEvent?: (e: BackupEvent) => void;
  timeouts?: Partial<BackupTimeouts>;
  /** Keeps the SHA-1 of every file received, so the verify need not read them back. */
  received?: ReceivedDigests;
  /**
   * The target's copy of the previous backup, which the store may still be making
   * (StagingOptions.linkInBackground). Only Info.plist is written before its top level is in
   * place; then device messages are handled, those that would touch a folder still being filled
   * once the copy is complete (backup/linking-gate, D32). A copy that fails stops the backup.
   */
  targetLinking?: TargetLinking;
  /** What the device asks for when it lacks room (DeviceLinkHostOptions.makeRoom, D48). */
  makeRoom?: MakeRoom;
}

/** Notifications observed during a backup (reference §6.1 step 2). */
export const OBSERVED_NOTIFICATIONS: readonly string[] = [
  Notifications.SYNC_CANCEL_REQUEST,
  Notifications.SYNC_SUSPEND_REQUEST,
  Notifications.SYNC_RESUME_REQUEST,
  Notifications.BACKUP_DOMAIN_CHANGED,
  Notifications.PASSCODE_PROMPT_PRESENTED,
  Notifications.PASSCODE_PROMPT_DISMISSED,
];

export async function runBackup(opts: BackupOptions): Promise<BackupResult> {
  if (opts.target.udid !== opts.session.udid) {
    throw new MooringError(
      'USAGE',
      `the backup target is for ${opts.target.udid}, but the session is with ${opts.session.udid}`,
    );
  }
  return new BackupRun(opts).run();
}

class BackupRun {
  private readonly t: BackupTimeouts;
  private readonly interrupt = new Interrupt();
  private readonly started = Date.now();
  private readonly warnings: string[] = [];
  private phase: BackupPhase | undefined;
  private transferStarted = false;
  private passcodeUp = false;
  private passcodeTimer: NodeJS.Timeout | undefined;
  /** When the current wait for a device message began (reset when a passcode prompt closes). */
  private waitStart = 0;
  private np: NotificationProxyClient | undefined;
  private afc: AfcClient | undefined;
  private lock: SyncLock | undefined;
  private mb2: MobileBackup2Client | undefined;
  private host: DeviceLinkHost | undefined;

  constructor(private readonly o: BackupOptions) {
    this.t = { ...DEFAULT_BACKUP_TIMEOUTS, ...o.timeouts };
  }

  private get udid(): string {
    return this.o.target.udid;
  }

  private emit(e: BackupEvent): void {
    try {
      this.o.onEvent?.(e);
    } catch {
      // A failing listener must not break the backup.
    }
  }

  private setPhase(p: BackupPhase): void {
    if (this.phase === p) return;
    this.phase = p;
    this.emit({ type: 'phase', phase: p });
  }

  private warn(message: string): void {
    this.warnings.push(message);
    this.emit({ type: 'warning', message });
  }

  async run(): Promise<BackupResult> {
    const onAbort = (): void => this.interrupt.stop('user');
    if (this.o.signal?.aborted) this.interrupt.stop('user');
    this.o.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const end = await this.backup();
      this.setPhase('finishing');
      return await this.judge(end);
    } catch (e) {
      return this.failed(e);
    } finally {
      this.o.signal?.removeEventListener('abort', onAbort);
      clearTimeout(this.passcodeTimer);
      await this.cleanUp();
      // The last files' digests, taken on a worker thread while we said goodbye; the verify next.
      await this.o.received?.close();
    }
  }

  /** Everything up to the end of the DeviceLink loop. */
  private async backup(): Promise<DeviceLinkEnd> {
    const { session } = this.o;
    const ir = this.interrupt;
    ir.check();

    this.setPhase('connecting');
    // The three services start side by side (lockdown serialises the StartService requests; the
    // connections, TLS handshakes and mobilebackup2's version exchange overlap). Each one that
    // started is kept for cleanUp even when another failed; the first failure, in this order, is
    // the one reported.
    const [np, afc, mb2] = await Promise.allSettled([
      this.owned(session.startService(NOTIFICATION_PROXY_SERVICE_NAME), (c) => c.close()),
      this.owned(session.startService(AFC_SERVICE_NAME), (c) => c.close()),
      this.owned(
        MobileBackup2Client.start(session, { timeoutMs: this.t.setupMs }),
        (c) => void c.disconnect(),
      ),
    ]);
    if (np.status === 'fulfilled') this.np = new NotificationProxyClient(np.value);
    if (afc.status === 'fulfilled')
      this.afc = new AfcClient(afc.value, { timeoutMs: this.t.setupMs });
    if (mb2.status === 'fulfilled') this.mb2 = mb2.value;
    for (const r of [np, afc, mb2]) if (r.status === 'rejected') throw r.reason;
    // All three started (the loop threw otherwise).
    const npClient = this.np!;
    const afcClient = this.afc!;
    const mb2Client = this.mb2!;
    npClient.on('notification', (name) => this.onNotification(name));
    for (const name of OBSERVED_NOTIFICATIONS) await ir.race(npClient.observe(name));

    this.setPhase('locking');
    await ir.race(npClient.post(Notifications.SYNC_WILL_START));
    await ir.race(npClient.post(Notifications.SYNC_LOCK_REQUEST));
    this.lock = await this.owned(
      acquireSyncLock(afcClient, {
        attempts: Math.max(1, Math.ceil(this.t.lockWaitMs / AFC_LOCK_INTERVAL_MS)),
        intervalMs: AFC_LOCK_INTERVAL_MS,
      }),
      (l) => void l.release(),
    );
    await ir.race(npClient.post(Notifications.SYNC_DID_START));

    this.setPhase('preparing');
    const gathered = await ir.race(
      gatherInfoPlist({
        udid: this.udid,
        lockdown: session,
        services: session,
        afc: afcClient,
        timeoutMs: this.t.setupMs,
      }),
    );
    for (const w of gathered.warnings) this.warn(`Info.plist: ${w}`);
    await writeInfoPlist(this.o.target, gathered.info);
    ir.check();

    const dl = mb2Client.deviceLink;
    await ir.race(
      dl.sendProcessMessage({
        MessageName: 'Backup',
        TargetIdentifier: this.udid,
        SourceIdentifier: this.udid,
        // As LIMD: an empty Options dict unless a full backup is forced.
        Options: this.o.full === true ? { ForceFullBackup: true } : {},
      }),
    );
    // The device prepares its backup meanwhile; its first messages read the previous backup's
    // top level.
    const linking =
      this.o.targetLinking === undefined
        ? undefined
        : await ir.race(LinkingGate.open(this.o.target.udid, this.o.targetLinking));
    this.host = new DeviceLinkHost({
      dl,
      target: this.o.target,
      interrupt: ir,
      blockReadMs: this.t.blockReadMs,
      nextMessage: () => this.nextMessage(),
      ...(this.o.received ? { received: this.o.received } : {}),
      ...(linking ? { linking } : {}),
      ...(this.o.makeRoom ? { makeRoom: this.o.makeRoom } : {}),
      onProgress: (p) => this.emit({ type: 'progress', ...p }),
      onRefusedPath: (p, reason) => this.emit({ type: 'refused-path', path: p, reason }),
      onMessage: () => {
        this.transferStarted = true;
        if (!this.passcodeUp) this.setPhase('transferring');
      },
    });
    return await this.host.run();
  }

  /** A started resource, or BackupStopped; a resource that arrives after the stop is disposed. */
  private async owned<T>(p: Promise<T>, dispose: (v: T) => void): Promise<T> {
    try {
      return await this.interrupt.race(p);
    } catch (e) {
      if (e instanceof BackupStopped) p.then(dispose, () => undefined);
      throw e;
    }
  }

  /**
   * The stall watchdog: while waiting for the device, report 'stalled' every stallNoticeMs (the
   * connection is alive, the device may be preparing), and give up only at the deadline. A closed
   * or failed connection ends the wait at once (StreamReader rejects with CLOSED). A header
   * timeout is safe to retry, so a passcode prompt simply extends the wait.
   */
  private async nextMessage(): Promise<DeviceDlMessage> {
    const dl = this.mb2!.deviceLink;
    const deadlineMs = this.transferStarted ? this.t.messageMs : this.t.firstMessageMs;
    this.waitStart = Date.now();
    let stalled = false;
    const notice = setInterval(() => {
      if (this.passcodeUp) return; // waiting for the user, not for the device
      stalled = true;
      this.emit({
        type: 'stalled',
        waitingMs: Date.now() - this.waitStart,
        phase: this.phase ?? 'preparing',
      });
    }, this.t.stallNoticeMs);
    try {
      for (;;) {
        // While the passcode sheet is up the wait is the user's, bounded by passcodeMs instead.
        const left = this.passcodeUp ? deadlineMs : deadlineMs - (Date.now() - this.waitStart);
        if (left <= 0) {
          throw new MooringError(
            'TIMEOUT',
            `the device sent nothing for ${formatDuration(deadlineMs)}`,
          );
        }
        try {
          const msg = await this.interrupt.race(dl.receive(left));
          if (stalled) this.emit({ type: 'resumed', waitedMs: Date.now() - this.waitStart });
          return msg;
        } catch (e) {
          if (!isMooringError(e, 'TIMEOUT')) throw e;
        }
      }
    } finally {
      clearInterval(notice);
    }
  }

  private onNotification(name: string): void {
    switch (name) {
      case Notifications.SYNC_CANCEL_REQUEST:
        if (this.interrupt.reason === undefined) {
          this.emit({ type: 'device-cancelled' });
          this.interrupt.stop('device');
        }
        break;
      case Notifications.PASSCODE_PROMPT_PRESENTED:
        if (this.passcodeUp) break;
        this.passcodeUp = true;
        this.emit({ type: 'passcode-requested' });
        this.setPhase('waiting-for-passcode');
        this.passcodeTimer = setTimeout(() => this.interrupt.stop('passcode'), this.t.passcodeMs);
        break;
      case Notifications.PASSCODE_PROMPT_DISMISSED:
        if (!this.passcodeUp) break;
        this.passcodeUp = false;
        clearTimeout(this.passcodeTimer);
        this.waitStart = Date.now();
        this.emit({ type: 'passcode-dismissed' });
        this.setPhase(this.transferStarted ? 'transferring' : 'preparing');
        break;
      default:
        // Suspend/resume and domain_changed need no action from a backup host.
        break;
    }
  }

  /** After the loop: the device's verdict, then Status.plist's. */
  private async judge(end: DeviceLinkEnd): Promise<BackupResult> {
    if (end.kind === 'disconnect') {
      return this.result(false, {
        failure: 'protocol',
        message: `The device ended the backup without a result${end.reason ? ` (${end.reason})` : ''}`,
      });
    }
    if (end.errorCode !== 0) {
      const desc = end.errorDescription;
      const cancelled = isCancelDescription(end.errorCode, desc);
      const passcode = isPasscodeDescription(end.errorCode, desc);
      if (this.host?.diskFull && !cancelled && !passcode) {
        // The device gave up because we could not store its files: our disk, not its fault.
        return this.result(false, {
          failure: 'local-io',
          errorCode: end.errorCode,
          ...(desc !== undefined ? { errorDescription: desc } : {}),
          message: DISK_FULL_MESSAGE,
        });
      }
      return this.result(false, {
        failure: passcode ? 'passcode' : cancelled ? 'cancelled' : 'device-error',
        ...(cancelled && !passcode ? { cancelled: true, cancelledBy: 'device' as const } : {}),
        errorCode: end.errorCode,
        ...(desc !== undefined ? { errorDescription: desc } : {}),
        ...this.neededSpace(end.errorCode),
        message: deviceErrorMessage(end.errorCode, desc, {
          freeBytes: this.host?.freeBytesReported,
          purgeRequestedBytes: this.host?.purgeRequestedBytes,
          freeBytesBeforePurge: this.host?.freeBytesBeforePurge,
        }),
      });
    }
    const status = await readStatus(this.o.target);
    if (status.state !== 'finished') {
      return this.result(false, {
        failure: 'not-finished',
        errorCode: 0,
        message: `The device reported success, but Status.plist ${
          status.state === undefined ? 'could not be read' : `says "${status.state}"`
        }, so the backup is not complete`,
      });
    }
    return this.result(true, {
      errorCode: 0,
      message: 'Backup complete',
      ...(status.isFull !== undefined ? { isFull: status.isFull } : {}),
    });
  }

  /** For MBErrorDomain 105: what the device lacked (its purge request minus the margin it adds). */
  private neededSpace(code: number): { neededBytes?: number } {
    const free = this.host?.freeBytesReported;
    const purge = this.host?.purgeRequestedBytes;
    if (code !== MbErrorCode.INSUFFICIENT_SPACE || free === undefined || purge === undefined) {
      return {};
    }
    const deficit = purgeShortfall(purge);
    // Counted from the free space the device saw before it asked: room made since (D48) raised
    // the free space, not what the backup needs.
    return deficit > 0 ? { neededBytes: (this.host?.freeBytesBeforePurge ?? free) + deficit } : {};
  }

  private failed(e: unknown): BackupResult {
    if (e instanceof BackupStopped) return this.stopped(e.reason);
    const msg = e instanceof Error ? e.message : String(e);
    const where = this.phase ?? 'connecting';
    if (isMooringError(e)) {
      const cause = { code: e.code, ...(e.detail === undefined ? {} : { detail: e.detail }) };
      return { ...this.classify(e, msg, where), cause };
    }
    const errno = (e as { code?: unknown } | null)?.code;
    if (errno === 'ENOSPC' || errno === 'EDQUOT') {
      return this.result(false, { failure: 'local-io', message: DISK_FULL_MESSAGE });
    }
    if (typeof errno === 'string') {
      return this.result(false, {
        failure: 'local-io',
        message: `Could not write the backup folder ${this.o.target.root}: ${msg}`,
      });
    }
    return this.result(false, { failure: 'internal', message: `Internal error: ${msg}` });
  }

  /** A MooringError met on the way, as a failure kind and one line. */
  private classify(e: MooringError, msg: string, where: BackupPhase): BackupResult {
    switch (e.code) {
      case 'CLOSED':
        return this.result(false, {
          failure: 'connection-lost',
          message: `The connection to the device was lost while ${phaseText(where)}: ${msg}`,
        });
      case 'TIMEOUT':
        return this.result(false, {
          failure: 'timeout',
          message: `The device stopped responding while ${phaseText(where)}: ${msg}`,
        });
      case 'MALFORMED':
      case 'LIMIT':
      case 'FRAME_TOO_LARGE':
      case 'PROTOCOL':
        return this.result(false, {
          failure: 'protocol',
          message: `The device sent something invalid, so the backup was stopped: ${msg}`,
        });
      case 'IO':
        return this.result(false, { failure: 'local-io', message: msg });
      case 'UNSAFE_PATH':
        return this.result(false, {
          failure: 'local-io',
          message: `The backup folder is unsafe: ${msg}`,
        });
      default:
        return this.result(false, { failure: 'setup', message: msg });
    }
  }

  private stopped(reason: StopReason): BackupResult {
    if (reason === 'passcode') {
      return this.result(false, { failure: 'passcode', message: PASSCODE_MESSAGE });
    }
    return this.result(false, {
      failure: 'cancelled',
      cancelled: true,
      cancelledBy: reason,
      message: reason === 'device' ? DEVICE_CANCEL_MESSAGE : USER_CANCEL_MESSAGE,
    });
  }

  private result(ok: boolean, extra: Partial<BackupResult> & { message: string }): BackupResult {
    const meter = this.host?.meter;
    const refused = this.host?.refusedPaths ?? [];
    // A device that sent paths outside its folder usually fails because of our refusal: say so,
    // or the line only blames "files the device could not send". JSON-quoted: hostile bytes.
    const why =
      !ok && refused.length > 0
        ? ` (the device tried to write outside its backup folder: ${this.host!.refusedCount} ` +
          `path(s) refused, e.g. ${JSON.stringify(refused[0])})`
        : '';
    return {
      ok,
      bytesReceived: meter?.bytesReceived ?? 0,
      filesReceived: meter?.filesReceived ?? 0,
      refusedPaths: [...refused],
      durationMs: Date.now() - this.started,
      warnings: this.warnings,
      ...extra,
      message: extra.message + why,
    };
  }

  /**
   * Always, in LIMD's order: unlock, syncDidFinish, Disconnect, NP Shutdown. Each step has a
   * deadline (a wedged device must not hold us here) and the connections are closed regardless.
   */
  private async cleanUp(): Promise<void> {
    const limit = Math.min(this.t.setupMs, DEFAULT_SHUTDOWN_TIMEOUT_MS);
    const bounded = (p: Promise<unknown>, what: string): Promise<unknown> =>
      withDeadline(p, limit, what).catch((e: unknown) => e);
    if (this.lock) {
      const e = await bounded(this.lock.release(), 'unlocking the sync lock');
      if (e) this.warn(`releasing the sync lock: ${errText(e)}`);
    }
    // syncDidFinish closes the syncDidStart we posted once the lock was ours (as LIMD).
    if (this.np && this.lock) {
      await bounded(this.np.post(Notifications.SYNC_DID_FINISH), 'posting syncDidFinish');
    }
    if (this.mb2) {
      await bounded(this.mb2.disconnect(), 'DLMessageDisconnect');
      this.mb2.deviceLink.connection.close();
    }
    this.afc?.close();
    if (this.np) {
      await bounded(this.np.shutdown(limit), 'notification_proxy Shutdown');
      this.np.close();
    }
  }
}

/** SnapshotState and IsFullBackup from `<udid>/Status.plist`; undefined fields when unreadable. */
export async function readStatus(
  target: BackupTarget,
): Promise<{ state: string | undefined; isFull: boolean | undefined }> {
  try {
    const s = await readStatusPlist(path.join(target.root, target.udid, STATUS_PLIST));
    return { state: s.snapshotState, isFull: s.isFullBackup };
  } catch {
    return { state: undefined, isFull: undefined };
  }
}

function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function phaseText(p: BackupPhase): string {
  switch (p) {
    case 'connecting':
      return 'connecting';
    case 'locking':
      return 'taking the sync lock';
    case 'preparing':
      return 'the device prepared the backup';
    case 'waiting-for-passcode':
      return 'waiting for the passcode';
    case 'transferring':
      return 'transferring';
    case 'finishing':
      return 'finishing';
  }
}

function formatDuration(ms: number): string {
  if (ms >= 60_000 && ms % 60_000 === 0) return `${ms / 60_000} min`;
  if (ms >= 1000) return `${Math.round(ms / 100) / 10} s`;
  return `${ms} ms`;
}

export type { BackupFailureKind };
