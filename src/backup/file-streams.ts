/**
 * The raw file streams of DLMessageDownloadFiles (we send files to the device) and
 * DLMessageUploadFiles (the device sends files to us), reference §4.5. Both stream, so memory does
 * not grow with file size: sending, one block at a time, each read awaited; receiving, at most
 * MAX_IN_FLIGHT batches with the thread that writes the files (D30), or, written here, two blocks
 * (a large block is written while the next one is read, TempFile.append).
 */
import { constants as fsc, promises as fsp } from 'node:fs';
import path from 'node:path';
import { MANIFEST_DB, SNAPSHOT_DIR } from '../format/layout';
import { isMooringError } from '../util/errors';
import type { OffThreadEnd, OffThreadFile, ReceivedDigests } from './received-digests';
import {
  DlFileCode,
  DlFileStreamDecoder,
  encodeDlDataBlocks,
  encodeDlErrorBlock,
  encodeDlPath,
  encodeDlStreamEnd,
  encodeDlSuccessBlock,
  NOT_BUFFERED,
  type DlBlock,
  type DlFileError,
} from '../protocol/device-link';
import type { DeviceLinkConnection } from '../services/device-link/connection';
import { TempFile } from './atomic-file';
import type { PathConfiner } from './confine';
import { dlStatusForError, errnoError, isDiskFullStatus, type DlErrorStatus } from './dl-status';
import type { Interrupt } from './interrupt';
import type { LinkingGate } from './linking-gate';

/** A file we send is read this much at a time (and sent as 32 KiB blocks). */
const SEND_READ_BYTES = 1024 * 1024;

/** How the two names of each uploaded file are called in errors. */
const DEVICE_SIDE = 'device-side file name';
const HOST_SIDE = 'host-side file name';

/** Largest upload block accepted from the device (it uses far smaller ones); bounds memory. */
export const MAX_UPLOAD_BLOCK_BYTES = 16 * 1024 * 1024;

// O_NOFOLLOW where the platform has it: a last guard behind the confinement check.
const OPEN_READ_FLAGS = fsc.O_RDONLY | (fsc.O_NOFOLLOW ?? 0);

export interface FileStreamContext {
  dl: DeviceLinkConnection;
  confiner: PathConfiner;
  interrupt: Interrupt;
  /** Deadline for each read inside an upload stream. */
  blockReadMs: number;
  /** Raw bytes to the device, with a deadline and the stop race. */
  send(buf: Buffer): Promise<void>;
  /** A device path was refused (confinement). */
  onRefused(devicePath: string, error: unknown): void;
  /** Payload bytes of an upload arrived. */
  onBytes(n: number): void;
  /** One uploaded file was committed. */
  onFileReceived(): void;
  /**
   * Where to keep the SHA-1 of each file received, for the verify (none: not taken); its thread
   * also writes the files (D30). Without it, or once that thread is gone, they are written here.
   */
  received?: ReceivedDigests;
  /** The store still links the previous backup into the target: a file there waits for it (D32). */
  linking?: LinkingGate;
}

/**
 * DownloadFiles: for each path, `[path]` then data blocks and success, or an error block. Returns
 * the files that failed (the caller answers −13 "Multi status" with them). Unlike LIMD we carry on
 * after a failed file; devices accept both.
 */
export async function sendFilesToDevice(
  ctx: FileStreamContext,
  paths: readonly string[],
): Promise<Map<string, DlFileError>> {
  const failed = new Map<string, DlFileError>();
  for (const devicePath of paths) {
    ctx.interrupt.check();
    await ctx.send(encodeDlPath(devicePath));
    let error: DlErrorStatus | undefined;
    try {
      let hostPath: string;
      try {
        hostPath = ctx.confiner.resolveForRead(devicePath).path; // sent, not changed
      } catch (e) {
        throw isMooringError(e, 'UNSAFE_PATH') ? e : new LocalFileError(e); // e.g. EACCES on lstat
      }
      await sendOneFile(ctx, hostPath);
    } catch (e) {
      if (isMooringError(e, 'UNSAFE_PATH')) ctx.onRefused(devicePath, e);
      else if (!isFileError(e)) throw e; // the connection or a stop: not this file's fault
      error = dlStatusForError(e);
      await ctx.send(encodeDlErrorBlock(DlFileCode.LOCAL_ERROR, error.text));
    }
    if (error) failed.set(devicePath, error);
  }
  await ctx.send(encodeDlStreamEnd());
  return failed;
}

/** A failure of the local file (errno), as opposed to the connection or a stop. */
class LocalFileError extends Error {
  readonly code: string | undefined;
  constructor(cause: unknown) {
    super(cause instanceof Error ? cause.message : String(cause), { cause });
    const code = (cause as { code?: unknown } | null)?.code;
    this.code = typeof code === 'string' ? code : undefined;
  }
}

function isFileError(e: unknown): boolean {
  return e instanceof LocalFileError || isMooringError(e, 'UNSAFE_PATH');
}

async function sendOneFile(ctx: FileStreamContext, hostPath: string): Promise<void> {
  let fh: fsp.FileHandle;
  try {
    fh = await fsp.open(hostPath, OPEN_READ_FLAGS);
  } catch (e) {
    throw new LocalFileError(e);
  }
  try {
    const st = await fh.stat().catch((e: unknown) => {
      throw new LocalFileError(e);
    });
    if (st.isDirectory()) throw new LocalFileError(errnoError('EISDIR', 'is a directory'));
    if (!st.isFile()) throw new LocalFileError(errnoError('EINVAL', 'not a regular file'));
    const buf = Buffer.allocUnsafe(SEND_READ_BYTES);
    for (;;) {
      ctx.interrupt.check();
      let n: number;
      try {
        n = (await fh.read(buf, 0, buf.length, null)).bytesRead;
      } catch (e) {
        // Data blocks may already be out: the error block below still ends this file cleanly.
        throw new LocalFileError(e);
      }
      if (n === 0) break;
      // One read and one write per MiB, in 32 KiB blocks (a 100 MB Manifest.db was ~3,000 awaited
      // round trips). The blocks are a copy, so the read buffer is reused; writeRaw waits for
      // the socket.
      await ctx.send(encodeDlDataBlocks(buf.subarray(0, n)));
    }
    await ctx.send(encodeDlSuccessBlock());
  } finally {
    await fh.close().catch(() => undefined);
  }
}

export interface UploadOutcome {
  /** The first host-side failure (what the status reply reports), if any. */
  firstError: DlErrorStatus | undefined;
  filesFailed: number;
  /** Some file failed because our disk is full. */
  diskFull: boolean;
  /** Files the device itself could not read (it sent an error block instead of data). */
  deviceFailures: number;
  /**
   * The host path of a Manifest.db received whole (`<udid>/Snapshot/Manifest.db`, or in place),
   * committed by the time the outcome is returned.
   */
  manifestDb?: string;
  /**
   * False when the upload may be answered before its files are all written (D37): every one went
   * into `<udid>/Snapshot/`, none is a Manifest.db, and the writing thread may still have some. The
   * counts above are then what is known so far; set `late` before replying, and each failure
   * known afterwards goes there instead.
   */
  settled: boolean;
  late?: (error: DlErrorStatus) => void;
}

/**
 * UploadFiles: per file `[device path][host path]` then blocks, until a zero length where the next
 * device path would be. Each file goes to a temp file beside its target, renamed over it on success
 * (THE RULE). A failing file is drained and discarded; the stream stays in step. With
 * `ctx.received`, its thread writes the files (D30), and the outcome is complete once every one
 * of them has ended (settle) — except for an upload that only stages files in `Snapshot/`, which
 * returns at once (`settled` false, D37): the device moves them only after its uploads, and the
 * host settles before any message but an upload.
 */
export async function receiveFilesFromDevice(ctx: FileStreamContext): Promise<UploadOutcome> {
  const dec = new DlFileStreamDecoder(ctx.dl.reader, {
    timeoutMs: ctx.blockReadMs,
    maxBlockBytes: MAX_UPLOAD_BLOCK_BYTES,
  });
  const outcome: UploadOutcome = {
    firstError: undefined,
    filesFailed: 0,
    diskFull: false,
    deviceFailures: 0,
    settled: true,
  };
  const deviceDir = path.join(ctx.confiner.target.root, ctx.confiner.target.udid);
  const manifestDbs = [
    path.join(deviceDir, SNAPSHOT_DIR, MANIFEST_DB),
    path.join(deviceDir, MANIFEST_DB),
  ];
  const staging = path.join(deviceDir, SNAPSHOT_DIR) + path.sep;
  /** Every file so far went into Snapshot/ and is no Manifest.db: see UploadOutcome.settled. */
  let onlyStaged = true;
  // The reply names the first file that failed in the stream's order, also when a file written
  // off-thread says so after later ones failed here.
  let firstErrorAt = Infinity;
  const failed = (error: DlErrorStatus, at: number): void => {
    if (outcome.late) {
      outcome.late(error);
      return;
    }
    if (at < firstErrorAt) {
      firstErrorAt = at;
      outcome.firstError = error;
    }
    outcome.filesFailed++;
    if (isDiskFullStatus(error)) outcome.diskFull = true;
  };
  /** The Manifest.db files among those written off-thread, by their place in the stream. */
  const manifestDbAt = new Map<number, string>();
  // One function for every file of the upload, each told apart by its place (OffThreadEnds).
  const offThreadEnded = (end: OffThreadEnd, at: number): void => {
    if (!end.ok) failed(dlStatusForError(end.error), at);
    else {
      ctx.onFileReceived();
      const db = manifestDbAt.get(at);
      if (db !== undefined) outcome.manifestDb = db;
    }
  };
  for (let at = 0; ; at++) {
    // Whole files already buffered are taken without an await (DlFileStreamDecoder); a stop
    // still ends the loop between files.
    ctx.interrupt.check();
    let devicePath = dec.readPathNow(DEVICE_SIDE);
    if (devicePath === NOT_BUFFERED)
      devicePath = await ctx.interrupt.race(dec.readPath(DEVICE_SIDE));
    if (devicePath === null) {
      if (onlyStaged && ctx.received) {
        ctx.received.flush();
        outcome.settled = false;
      } else await ctx.received?.settle();
      return outcome;
    }
    let hostRelative = dec.readRequiredPathNow(HOST_SIDE);
    if (hostRelative === NOT_BUFFERED)
      hostRelative = await ctx.interrupt.race(dec.readRequiredPath(HOST_SIDE));
    if (ctx.linking?.blocks(hostRelative) === true) await ctx.interrupt.race(ctx.linking.done);
    let target: string | undefined;
    let error: DlErrorStatus | undefined;
    try {
      target = ctx.confiner.resolveForReplace(hostRelative);
    } catch (e) {
      if (isMooringError(e, 'UNSAFE_PATH')) ctx.onRefused(hostRelative, e);
      error = dlStatusForError(e);
    }
    const manifestDb = target !== undefined && manifestDbs.includes(target) ? target : undefined;
    // A refused path (no target) is answered now whatever the rest: it does not stop an early reply.
    if (target !== undefined && (manifestDb !== undefined || !target.startsWith(staging)))
      onlyStaged = false;
    // A file written off-thread tells how it went later, at the latest in settle().
    if (manifestDb !== undefined) manifestDbAt.set(at, manifestDb);
    const offThread =
      target === undefined ? undefined : ctx.received?.writeOffThread(target, offThreadEnded, at);
    let sink: TempFile | undefined;
    if (target !== undefined && offThread === undefined) {
      try {
        sink = TempFile.freshSync(target);
      } catch (e) {
        error = dlStatusForError(e);
      }
    }
    let end: FileEnd;
    try {
      end = offThread
        ? await receiveOffThread(ctx, dec, offThread)
        : await receiveBlocks(ctx, dec, sink);
    } catch (e) {
      offThread?.drop();
      await sink?.discard();
      throw e;
    }
    if (end.kind === 'host-error') error ??= end.error;
    if (error) failed(error, at);
    else if (end.kind === 'device-error') outcome.deviceFailures++;
    else if (end.kind === 'committed' && manifestDb !== undefined) outcome.manifestDb = manifestDb;
  }
}

type FileEnd =
  | { kind: 'committed' }
  /** Handed to the thread that writes it; its OffThreadEnd says how it went. */
  | { kind: 'ended' }
  | { kind: 'host-error'; error: DlErrorStatus }
  | { kind: 'device-error' }
  /** Drained without a place to write (refused or unopenable path). */
  | { kind: 'drained' };

/**
 * Whether the block after a file's data keeps the file: a 0x0B right after data is an end marker
 * (LIMD; seen from iOS 17 betas), not a failure.
 */
function endsWell(block: DlBlock, sawData: boolean): boolean {
  return block.kind === 'success' || (block.kind === 'remote-error' && sawData);
}

/**
 * Blocks of one file, copied to the thread that writes and hashes it (D30), in the pieces they
 * arrived in: a block larger than a socket read is never joined first, so each byte is copied
 * once on this thread.
 */
async function receiveOffThread(
  ctx: FileStreamContext,
  dec: DlFileStreamDecoder,
  file: OffThreadFile,
): Promise<FileEnd> {
  let sawData = false;
  for (;;) {
    let block = dec.readBlockHeadNow();
    if (block === NOT_BUFFERED) block = await ctx.interrupt.race(dec.readBlockHead());
    if (block.kind === 'data') {
      sawData = true;
      while (dec.dataLeft > 0) {
        const piece = dec.readDataNow() ?? (await ctx.interrupt.race(dec.readData()));
        const wait = file.write(piece);
        if (wait) await wait;
      }
      ctx.onBytes(block.length);
      continue;
    }
    if (endsWell(block, sawData)) {
      file.end();
      return { kind: 'ended' };
    }
    file.drop();
    return { kind: 'device-error' };
  }
}

/** Blocks of one file, written to `sinkIn` (or drained when there is none). */
async function receiveBlocks(
  ctx: FileStreamContext,
  dec: DlFileStreamDecoder,
  sinkIn: TempFile | undefined,
): Promise<FileEnd> {
  let sink = sinkIn;
  let error: DlErrorStatus | undefined;
  let sawData = false;
  for (;;) {
    let block = dec.readBlockNow();
    if (block === NOT_BUFFERED) block = await ctx.interrupt.race(dec.readBlock());
    if (block.kind === 'data') {
      sawData = true;
      ctx.onBytes(block.data.length);
      if (sink) {
        try {
          // Small blocks (most files are one) are written at once, without an await; a large
          // one is written while the next block is read (TempFile.append).
          const wait = sink.append(block.data);
          if (wait) await wait;
        } catch (e) {
          // e.g. ENOSPC: keep draining this file so the stream stays in step.
          error = dlStatusForError(e);
          await sink.discard();
          sink = undefined;
        }
      }
      continue;
    }
    const ok = endsWell(block, sawData);
    if (sink && ok && !error) {
      try {
        await sink.flush(); // the last block's write
      } catch (e) {
        error = dlStatusForError(e);
        await sink.discard();
        sink = undefined;
      }
    }
    if (error) return { kind: 'host-error', error };
    if (!sink) return { kind: 'drained' };
    if (!ok) {
      await sink.discard();
      return { kind: 'device-error' };
    }
    try {
      sink.commitSync();
    } catch (e) {
      return { kind: 'host-error', error: dlStatusForError(e) };
    }
    ctx.onFileReceived();
    return { kind: 'committed' };
  }
}
