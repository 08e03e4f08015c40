/**
 * The host's DeviceLink loop during a Backup (reference §4.4, §10): one handler per device message,
 * each answering with exactly the status reply libimobiledevice gives, until the device's final
 * DLMessageProcessMessage (or its Disconnect). Every device path is confined to `<root>/<udid>/`;
 * refusals get an error status and are recorded.
 *
 * A handler failing on a local file tells the device (errno-mapped status) and the loop goes on; a
 * broken stream, a malformed message, a timeout or a stop ends the loop by throwing.
 */
import { promises as fsp } from 'node:fs';
import { MooringError } from '../util/errors';
import {
  DL_EMPTY_PARAMETER,
  DL_MULTI_STATUS_CODE,
  DL_MULTI_STATUS_TEXT,
  dlMultiStatusPayload,
  normalizeDlStatusCode,
  type DeviceDlMessage,
} from '../protocol/device-link';
import type { PlistDict, PlistValue } from '../protocol/plist/types';
import type { DeviceLinkConnection } from '../services/device-link/connection';
import { PathConfiner, touchesFolders, type ConfinedEntry } from './confine';
import { DeferredMoves } from './deferred-moves';
import type { ReceivedDigests } from './received-digests';
import { dlStatusForError, isDiskFullStatus, type DlErrorStatus } from './dl-status';
import { receiveFilesFromDevice, sendFilesToDevice, type FileStreamContext } from './file-streams';
import {
  copyItem,
  createDirectory,
  listDirectory,
  moveItem,
  removeItem,
  renameFileOnto,
} from './folder-ops';
import { BackupStopped, withDeadline, type Interrupt } from './interrupt';
import { TransferMeter, type TransferProgress } from './transfer-meter';
import type { LinkingGate } from './linking-gate';
import type { BackupTarget } from './target';
import { purgeShortfall } from './outcome-messages';

/** Refused paths kept in the result (a hostile device could send thousands). */
export const MAX_RECORDED_REFUSALS = 1000;

/** H7h: unknown device messages answered before the backup is given up (real devices send none). */
export const MAX_UNKNOWN_DL_MESSAGES = 1000;

/** The text LIMD answers to a request it cannot honour (e.g. PurgeDiskSpace). */
export const NOT_SUPPORTED_TEXT = 'Operation not supported';

export interface DeviceLinkHostOptions {
  dl: DeviceLinkConnection;
  target: BackupTarget;
  interrupt: Interrupt;
  /** The device's next message, with the caller's deadlines and stall watchdog. */
  nextMessage: () => Promise<DeviceDlMessage>;
  /** Deadline for each read inside a file stream, and each write to the device. */
  blockReadMs: number;
  onProgress?: (p: TransferProgress) => void;
  onRefusedPath?: (devicePath: string, reason: string) => void;
  /** Every device message, before it is handled (phase tracking). */
  onMessage?: (m: DeviceDlMessage) => void;
  /** Keeps the SHA-1 of every file received, for the verify (backup/received-digests). */
  received?: ReceivedDigests;
  /** The store still links the previous backup into the target: what must wait for it (D32). */
  linking?: LinkingGate;
  /**
   * The device asked for room (PurgeDiskSpace, D48): free what may be freed of what it lacks,
   * `shortBytes` (0 when it asks only for the margin it adds). True when anything was removed.
   * Without it, or when nothing was, the request is answered as one we cannot honour; either way
   * the device asks for the free space again and decides.
   */
  makeRoom?: MakeRoom;
}

export type MakeRoom = (shortBytes: number) => Promise<boolean>;

/**
 * Purge requests passed to `makeRoom` in one session. A device asks once, then re-checks the free
 * space; a hostile one asking over and over must not walk the store again each time.
 */
export const MAX_ROOM_REQUESTS = 3;

/** What Apple's own host answers when it could not purge (pymobiledevice3 PR #1884). */
export const PURGE_FAILED_TEXT = 'DLPurgeDiskSpace failed to purge';

/** How the loop ended. */
export type DeviceLinkEnd =
  | {
      kind: 'response';
      errorCode: number;
      errorDescription: string | undefined;
      message: PlistDict;
    }
  | { kind: 'disconnect'; reason: string | undefined };

type Handler = (m: DeviceDlMessage) => Promise<DeviceLinkEnd | undefined>;
type HandlerTable = {
  [T in DeviceDlMessage['type']]: (
    m: Extract<DeviceDlMessage, { type: T }>,
  ) => Promise<DeviceLinkEnd | undefined>;
};

export class DeviceLinkHost {
  readonly meter = new TransferMeter();
  /** Device paths refused by confinement (first MAX_RECORDED_REFUSALS). */
  readonly refusedPaths: string[] = [];
  refusedCount = 0;
  /** Free space we last reported (bytes), and what the device last asked us to purge. */
  freeBytesReported: number | undefined;
  purgeRequestedBytes: number | undefined;
  /** The free space reported before that purge request: what its deficit was counted from. */
  freeBytesBeforePurge: number | undefined;
  /** Host-side file failures reported to the device. */
  fileErrors = 0;
  /** One of them was our disk (or quota) being full. */
  diskFull = false;
  /** Messages we had no handler for (answered "not supported"). */
  readonly unknownMessages: string[] = [];
  unknownCount = 0; // H7h
  /** Purge requests passed to makeRoom so far (MAX_ROOM_REQUESTS). */
  private roomRequests = 0;

  /**
   * The first failure of a file in an upload answered before it was written (D37), not yet told
   * to the device: the next status reply tells it.
   */
  private untold: DlErrorStatus | undefined;
  /** An upload was answered before its files were all written: settle before anything else. */
  private unsettled = false;
  /** Moves answered but not carried out yet (D38): carried out before any other message. */
  private readonly heldMoves = new DeferredMoves();

  private readonly confiner: PathConfiner;
  private readonly streams: FileStreamContext;
  private readonly handlers: HandlerTable = {
    DownloadFiles: (m) => this.downloadFiles(m),
    UploadFiles: (m) => this.uploadFiles(m),
    GetFreeDiskSpace: () => this.getFreeDiskSpace(),
    PurgeDiskSpace: (m) => this.purgeDiskSpace(m),
    ContentsOfDirectory: (m) => this.contentsOfDirectory(m),
    CreateDirectory: (m) => this.createDirectory(m),
    MoveItems: (m) => this.moveItems(m),
    RemoveItems: (m) => this.removeItems(m),
    CopyItem: (m) => this.copyItem(m),
    Disconnect: async (m) => ({ kind: 'disconnect', reason: m.reason }),
    ProcessMessage: async (m) => finalResponse(m.message),
    VersionExchange: () => this.notSupported('DLMessageVersionExchange'),
    DeviceReady: () => this.notSupported('DLMessageDeviceReady'),
    Unknown: (m) => this.notSupported(m.name),
  };

  constructor(private readonly opts: DeviceLinkHostOptions) {
    this.confiner = new PathConfiner(opts.target);
    this.streams = {
      dl: opts.dl,
      confiner: this.confiner,
      interrupt: opts.interrupt,
      blockReadMs: opts.blockReadMs,
      send: (buf) =>
        opts.interrupt.race(
          withDeadline(opts.dl.writeRaw(buf), opts.blockReadMs, 'sending a file to the device'),
        ),
      ...(opts.received ? { received: opts.received } : {}),
      ...(opts.linking ? { linking: opts.linking } : {}),
      onRefused: (p, e) => this.refused(p, e),
      onBytes: (n) => {
        this.meter.addBytes(n);
        this.progress(false);
      },
      onFileReceived: () => this.meter.addFile(),
    };
  }

  /** Answers device messages until the final response or a Disconnect. */
  async run(): Promise<DeviceLinkEnd> {
    for (;;) {
      this.opts.interrupt.check();
      const msg = await this.opts.nextMessage();
      this.opts.onMessage?.(msg);
      if (this.opts.linking?.holds(msg) === true)
        await this.opts.interrupt.race(this.opts.linking.done);
      if (await this.settle(msg)) continue;
      const end = await (this.handlers[msg.type] as Handler)(msg);
      this.progress(true);
      if (end) return end;
    }
  }

  /**
   * Before any message but an upload, every file answered early is written (D37): a move, remove,
   * listing or download sees it whole, and the end of the loop knows how every file went. Before
   * any message but a move, every move answered early is carried out (D38). A file that failed
   * meanwhile is told in this message's reply, instead of doing what it asks, when that reply is a
   * bare status (the device gives up on an error; a download's reply follows its file stream, so
   * a download is done and its reply tells it; an upload's reply tells it). True when answered.
   */
  private async settle(msg: DeviceDlMessage): Promise<boolean> {
    if (msg.type === 'UploadFiles') {
      await this.settleMoves();
      return false;
    }
    if (this.unsettled) {
      await this.opts.interrupt.race(this.opts.received?.settle() ?? Promise.resolve());
      this.unsettled = false;
    }
    if (msg.type !== 'MoveItems') await this.settleMoves();
    const untold = this.untold;
    if (untold === undefined || !ANSWERED_BY_STATUS.has(msg.type)) return false;
    this.untold = undefined;
    await this.reply(untold.code, untold.text, {});
    return true;
  }

  /** Carries out the moves held (D38); a failure is told in the next status reply. */
  private async settleMoves(): Promise<void> {
    if (this.heldMoves.size === 0) return;
    const done = await this.heldMoves.settle(
      (from, to) => this.moveOne(from, to),
      () => this.opts.interrupt.check(),
    );
    // Folders were replaced: what the confiner remembers of them may be stale.
    if (done.folders > 0) this.confiner.forgetAll();
    if ('error' in done) {
      const s = dlStatusForError(done.error);
      this.fileErrors++;
      if (isDiskFullStatus(s)) this.diskFull = true;
      this.untold ??= s;
    }
  }

  /** Takes the failure not yet told, if any, before `own` (it came earlier in the stream). */
  private takeUntold(own: DlErrorStatus | undefined): DlErrorStatus | undefined {
    const first = this.untold ?? own;
    this.untold = undefined;
    return first;
  }

  private progress(force: boolean): void {
    const p = this.meter.take(force);
    if (p) this.opts.onProgress?.(p);
  }

  private refused(devicePath: string, e: unknown): void {
    this.refusedCount++;
    if (this.refusedPaths.length < MAX_RECORDED_REFUSALS) {
      this.refusedPaths.push(devicePath);
      this.opts.onRefusedPath?.(devicePath, e instanceof Error ? e.message : String(e));
    }
  }

  private reply(code: number, text?: string, payload?: PlistValue): Promise<void> {
    return this.opts.interrupt.race(
      withDeadline(
        this.opts.dl.sendStatusResponse(code, text, payload),
        this.opts.blockReadMs,
        'a status reply to the device',
      ),
    );
  }

  private replyError(s: DlErrorStatus): Promise<void> {
    this.fileErrors++;
    if (isDiskFullStatus(s)) this.diskFull = true;
    return this.reply(s.code, s.text, {});
  }

  /** Confines a path; a refusal is recorded and rethrown (the caller turns it into a status). */
  private async resolve(devicePath: string): Promise<string> {
    return this.resolveEntry(devicePath).path;
  }

  /** `resolve()` of `devicePath`; a refusal is recorded and rethrown. */
  private confinedOr<T>(resolve: () => T, devicePath: string): T {
    try {
      return resolve();
    } catch (e) {
      if (e instanceof MooringError && e.code === 'UNSAFE_PATH') this.refused(devicePath, e);
      throw e;
    }
  }

  /**
   * `intent` says how the path is resolved (confine.ts): to change it (reported to a target that
   * tracks changes), only to read it, or for mkdir -p.
   */
  private resolveEntry(
    devicePath: string,
    intent: 'change' | 'read' | 'mkdir' = 'change',
  ): ConfinedEntry {
    return this.confinedOr(
      () =>
        intent === 'read'
          ? this.confiner.resolveForRead(devicePath)
          : intent === 'mkdir'
            ? this.confiner.resolveForMkdir(devicePath)
            : this.confiner.resolveEntry(devicePath),
      devicePath,
    );
  }

  private async downloadFiles(
    m: Extract<DeviceDlMessage, { type: 'DownloadFiles' }>,
  ): Promise<undefined> {
    this.meter.setPercent(m.progress);
    const failed = await sendFilesToDevice(this.streams, m.paths);
    const untold = this.takeUntold(undefined);
    if (untold) await this.reply(untold.code, untold.text, {});
    else if (failed.size === 0) await this.reply(0, undefined, {});
    else await this.reply(DL_MULTI_STATUS_CODE, DL_MULTI_STATUS_TEXT, dlMultiStatusPayload(failed));
    return undefined;
  }

  private async uploadFiles(
    m: Extract<DeviceDlMessage, { type: 'UploadFiles' }>,
  ): Promise<undefined> {
    this.meter.setPercent(m.progress);
    const outcome = await receiveFilesFromDevice(this.streams);
    this.fileErrors += outcome.filesFailed;
    if (outcome.diskFull) this.diskFull = true;
    const error = this.takeUntold(outcome.firstError);
    if (!outcome.settled) {
      // Answered before its files are all written (D37): a failure from now on is told later.
      this.unsettled = true;
      outcome.late = (e) => {
        this.fileErrors++;
        if (isDiskFullStatus(e)) this.diskFull = true;
        this.untold ??= e;
      };
    }
    if (error) await this.reply(error.code, error.text, {});
    else await this.reply(0, undefined, {});
    if (outcome.manifestDb !== undefined) {
      // The device's payloads are in (Manifest.db comes last): the writing thread's memory is
      // freed for the verify's read, which the store may begin now (D34).
      await this.opts.received?.retire();
      try {
        this.opts.target.manifestReceived?.(outcome.manifestDb);
      } catch {
        // the store reading it early only saves time
      }
    }
    return undefined;
  }

  /** Free bytes for an unprivileged user (bavail), as an integer. */
  private async getFreeDiskSpace(): Promise<undefined> {
    let free: number;
    try {
      free = await freeBytesOf(this.opts.target.root);
    } catch (e) {
      await this.replyError(dlStatusForError(e));
      return undefined;
    }
    this.freeBytesReported = free;
    await this.reply(0, undefined, free);
    return undefined;
  }

  /**
   * Room, if the caller may make it (D48); then the free space (code 0, as NETI answers) or a
   * refusal. Either way the device asks for the free space again and decides (105 if short).
   */
  private async purgeDiskSpace(
    m: Extract<DeviceDlMessage, { type: 'PurgeDiskSpace' }>,
  ): Promise<undefined> {
    if (m.bytesToFree !== undefined) {
      this.purgeRequestedBytes = m.bytesToFree;
      this.freeBytesBeforePurge = this.freeBytesReported;
    }
    const makeRoom = this.opts.makeRoom;
    if (!makeRoom) {
      await this.reply(-1, NOT_SUPPORTED_TEXT, {});
      return undefined;
    }
    // Awaited even when cancelled: the removal is journaled, and the store's lock is ours.
    const made =
      ++this.roomRequests <= MAX_ROOM_REQUESTS &&
      (await makeRoom(purgeShortfall(m.bytesToFree ?? 0)).catch(() => false));
    const free = made ? await freeBytesOf(this.opts.target.root).catch(() => undefined) : undefined;
    if (free === undefined) await this.reply(-1, PURGE_FAILED_TEXT, {});
    else await this.reply(0, undefined, free);
    return undefined;
  }

  private async contentsOfDirectory(
    m: Extract<DeviceDlMessage, { type: 'ContentsOfDirectory' }>,
  ): Promise<undefined> {
    let listing: PlistDict;
    try {
      listing = await listDirectory(this.resolveEntry(m.path, 'read').path);
    } catch (e) {
      await this.replyError(dlStatusForError(e));
      return undefined;
    }
    await this.reply(0, undefined, listing);
    return undefined;
  }

  private async createDirectory(
    m: Extract<DeviceDlMessage, { type: 'CreateDirectory' }>,
  ): Promise<undefined> {
    try {
      await createDirectory(this.confiner.target.root, this.resolveEntry(m.path, 'mkdir').path);
    } catch (e) {
      await this.replyError(dlStatusForError(e));
      return undefined;
    }
    // LIMD answers CreateDirectory with the empty-parameter string as payload (reference §10).
    await this.reply(0, undefined, DL_EMPTY_PARAMETER);
    return undefined;
  }

  private async moveItems(m: Extract<DeviceDlMessage, { type: 'MoveItems' }>): Promise<undefined> {
    this.meter.setPercent(m.progress);
    let first: DlErrorStatus | undefined;
    for (const [from, to] of m.moves) {
      this.opts.interrupt.check();
      try {
        // The usual move, a file onto a name: held (D38), else one rename.
        const paths = this.renamePaths(from, to);
        if (paths !== undefined) {
          if (this.heldMoves.hold(from, to, ...paths)) continue;
          await this.settleMoves();
          if (this.heldMoves.hold(from, to, ...paths)) continue;
          if (renameFileOnto(...paths)) continue;
        }
        await this.settleMoves();
        await this.moveInGeneral(from, to);
      } catch (e) {
        if (e instanceof BackupStopped) throw e; // from settleMoves: the loop ends
        first ??= dlStatusForError(e);
      }
    }
    if (first) {
      this.fileErrors++;
      if (isDiskFullStatus(first)) this.diskFull = true;
    }
    const error = this.takeUntold(first);
    if (error) await this.reply(error.code, error.text, {});
    else await this.reply(0, undefined, {});
    return undefined;
  }

  /** One move as the device asked it, carried out now (a held one, or one that cannot wait). */
  private async moveOne(from: string, to: string): Promise<void> {
    const paths = this.renamePaths(from, to);
    if (paths !== undefined && renameFileOnto(...paths)) return;
    await this.moveInGeneral(from, to);
  }

  /**
   * The host paths of a move tried as one rename, which replaces a file or link there and never
   * follows a link, so only the two names' folders need confining; undefined for a checked folder
   * moved or a move onto itself (the general way).
   */
  private renamePaths(from: string, to: string): [string, string] | undefined {
    const fromPath = this.confinedOr(() => this.confiner.resolveMoveSource(from), from);
    if (fromPath === undefined) return undefined;
    const onto = this.confinedOr(() => this.confiner.resolveForReplace(to), to);
    return onto === fromPath ? undefined : [fromPath, onto];
  }

  /**
   * A folder in the way (rename refused, nothing changed), a checked folder moved, or a move onto
   * itself: each name looked at, and a folder replaced if need be.
   */
  private async moveInGeneral(from: string, to: string): Promise<void> {
    const source = this.resolveEntry(from);
    const dest = this.resolveEntry(to);
    // A folder moved or replaced: the confiner's remembered folders may be gone.
    if (touchesFolders(source, dest)) this.confiner.forgetAll();
    await moveItem(source.path, dest.path);
  }

  private async removeItems(
    m: Extract<DeviceDlMessage, { type: 'RemoveItems' }>,
  ): Promise<undefined> {
    this.meter.setPercent(m.progress);
    let first: DlErrorStatus | undefined;
    for (const p of m.paths) {
      this.opts.interrupt.check();
      try {
        const target = this.resolveEntry(p);
        if (touchesFolders(target)) this.confiner.forgetAll();
        await removeItem(target.path);
      } catch (e) {
        first ??= dlStatusForError(e);
      }
    }
    if (first) await this.replyError(first);
    else await this.reply(0, undefined, {});
    return undefined;
  }

  private async copyItem(m: Extract<DeviceDlMessage, { type: 'CopyItem' }>): Promise<undefined> {
    try {
      const source = this.resolveEntry(m.source, 'read').path;
      const dest = await this.resolve(m.destination);
      this.confiner.forgetAll(); // it replaces whatever is at dest, folders included
      // Its new files may reuse inodes of removed ones we hashed while receiving.
      this.opts.received?.forgetAll();
      await copyItem(source, dest);
    } catch (e) {
      await this.replyError(dlStatusForError(e));
      return undefined;
    }
    await this.reply(0, undefined, {});
    return undefined;
  }

  /** A message we have no handler for: answer like an unsupported request, so the device never waits. */
  private async notSupported(name: string): Promise<undefined> {
    // H7h: a device that only chats (unknown messages for ever) must not keep the backup open.
    if (++this.unknownCount > MAX_UNKNOWN_DL_MESSAGES) {
      throw new MooringError(
        'PROTOCOL',
        `the device sent more than ${MAX_UNKNOWN_DL_MESSAGES} messages Mooring does not know (e.g. ${JSON.stringify(this.unknownMessages[0])})`,
      );
    }
    if (this.unknownMessages.length < 100) this.unknownMessages.push(name);
    await this.reply(-1, NOT_SUPPORTED_TEXT, {});
    return undefined;
  }
}

/** Messages whose whole answer is one status reply (not a file stream, not the loop's end). */
const ANSWERED_BY_STATUS: ReadonlySet<DeviceDlMessage['type']> = new Set([
  'GetFreeDiskSpace',
  'PurgeDiskSpace',
  'ContentsOfDirectory',
  'CreateDirectory',
  'MoveItems',
  'RemoveItems',
  'CopyItem',
  'VersionExchange',
  'DeviceReady',
  'Unknown',
] as const);

/** The final DLMessageProcessMessage: ErrorCode (int64-normalised), ErrorDescription. */
function finalResponse(message: PlistDict): DeviceLinkEnd {
  let errorCode = 0;
  if (message.ErrorCode !== undefined) {
    try {
      errorCode = normalizeDlStatusCode(message.ErrorCode);
    } catch {
      errorCode = -1; // present but not an integer: certainly not success
    }
  }
  const d = message.ErrorDescription;
  return {
    kind: 'response',
    errorCode,
    errorDescription: typeof d === 'string' ? d.slice(0, 4096) : undefined,
    message,
  };
}

/** Free bytes for an unprivileged user (bavail) on the disk holding `dir`, as an integer. */
export async function freeBytesOf(dir: string): Promise<number> {
  const st = await fsp.statfs(dir, { bigint: true });
  const bytes = st.bavail * st.bsize;
  return bytes > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(bytes);
}
