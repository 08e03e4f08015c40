/**
 * The device side of a `Backup` request, in the order a real device plays it (reference §4.6):
 * read the previous state from the host, check for leftovers and free space, upload Status.plist,
 * the payloads into Snapshot/, a complete new Manifest.db + Manifest.plist, move everything into
 * place, remove what was deleted, and finish with Status.plist "finished" and ErrorCode 0.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { MooringError } from '../../util/errors';
import {
  dlContentsOfDirectory,
  dlCreateDirectory,
  dlGetFreeDiskSpace,
  dlMoveItems,
  dlPurgeDiskSpace,
  dlRemoveItems,
} from '../../protocol/device-link';
import { encodeBinaryPlist, isPlistDict, type PlistDict } from '../../protocol/plist';
import { fileIdFor, payloadRelPath } from '../../format/file-id';
import { MANIFEST_FLAG, readManifestDb, type ManifestRow } from '../../format/manifest-db';
import { entryIndex } from '../content/model';
import { ManifestCache, type ManifestDelta } from './manifest-cache';
import { encodeStatusPlist, type SnapshotState } from '../../format/status-plist';
import type { ContentEntry } from '../content/model';
import type { UploadItem } from './dl-peer';
import { BackupFailure, MbError } from './errors';
import { runEvilUpload } from './evil';
import { buildManifestPlist, buildUnencryptedKeyBag, newBackupUuid } from './plists';
import { randomBytes } from 'node:crypto';
import { encryptPayload, wrapClassKey } from '../../format/encryption';
import { MANIFEST_KEY_CLASS, fileKeyFor, sameKeyBag, type SimEncryptionKeys } from './encryption';
import { encryptFileTo } from './encrypt-file';
import {
  checkCancelled,
  fetchBackupFiles,
  needsPasscodePrompt,
  requestIdentifier,
  requestOptions,
  sleep,
  type HostBackupFiles,
  type SessionContext,
} from './session';

/** Free space a real device insists on beyond the upload itself (pymobiledevice3 #1879). */
export const FREE_SPACE_MARGIN_BYTES = 128 * 1024 * 1024;
/** Extra a device asks the host to purge beyond the deficit. */
export const PURGE_EXTRA_BYTES = 2 * 1024 * 1024 * 1024;
/** Upload batching: one DLMessageUploadFiles carries at most this much. */
export const UPLOAD_BATCH_FILES = 256;
export const UPLOAD_BATCH_BYTES = 64 * 1024 * 1024;
/** Entries per MoveItems / RemoveItems message (keeps each plist frame small). */
export const MOVE_BATCH = 5_000;
/** Longest injected delay honoured (delayFirstMessageMs fault). */
const MAX_DELAY_MS = 10 * 60_000;

export interface BackupOutcome {
  incremental: boolean;
  uploadedFiles: number;
  uploadedBytes: number;
  removedFiles: number;
}

interface PayloadPlan {
  entry: ContentEntry;
  fileId: string;
}

export function bucketPath(udid: string, fileId: string, snapshot: boolean): string {
  return `${udid}/${snapshot ? 'Snapshot/' : ''}${payloadRelPath(fileId)}`;
}

/** Whether the host's previous backup can serve as the base of an incremental one. */
export function previousBackupUsable(
  prev: HostBackupFiles,
  udid: string,
  enc?: SimEncryptionKeys,
): string | undefined {
  if (!prev.status) return 'no readable Status.plist';
  if (prev.status.SnapshotState !== 'finished') return 'the previous backup did not finish';
  if (!prev.manifestPlist) return 'no readable Manifest.plist';
  // A keybag change (encryption on/off, a new password) makes devices send a full backup.
  const wasEncrypted = prev.manifestPlist.IsEncrypted === true;
  if (wasEncrypted && !enc) return 'backups are no longer encrypted';
  if (!wasEncrypted && enc) return 'backups are now encrypted';
  if (enc && !sameKeyBag(enc, prev.manifestPlist.BackupKeyBag))
    return 'the backup password changed (new keybag)';
  const lockdown = prev.manifestPlist.Lockdown;
  if (
    isPlistDict(lockdown) &&
    lockdown.UniqueDeviceID !== undefined &&
    lockdown.UniqueDeviceID !== udid
  ) {
    return 'the previous backup is of another device';
  }
  if (!prev.manifestRows && !prev.manifestDelta) return 'no readable Manifest.db';
  return undefined;
}

/** Whether the host's previous row `p` already holds entry `e` as it is now. */
function unchangedSince(e: ContentEntry, p: ManifestRow | undefined): boolean {
  return (
    p !== undefined &&
    p.flags === MANIFEST_FLAG.file &&
    p.file.size === e.size &&
    p.file.lastModified === e.mtime &&
    (p.file.digest === undefined ||
      e.sha1 === undefined ||
      p.file.digest.toString('hex') === e.sha1)
  );
}

/**
 * Files to upload: all of them for a full backup, new or changed ones for an incremental; and the
 * host's files that no longer exist. `previous`: the host's rows, or (ManifestCache) only where
 * they may differ from what the device holds — then the work follows what changed.
 */
export function planUploads(
  entries: readonly ContentEntry[],
  previous: readonly ManifestRow[] | ManifestDelta | undefined,
): { uploads: PayloadPlan[]; deleted: string[] } {
  if (previous !== undefined && !Array.isArray(previous))
    return planFromDelta(entries, previous as ManifestDelta);
  const prevById = new Map((previous ?? []).map((r) => [r.fileId, r]));
  const uploads: PayloadPlan[] = [];
  const current = new Set<string>();
  for (const e of entries) {
    if (e.type !== 'file') continue;
    const fileId = fileIdFor(e.domain, e.relativePath);
    current.add(fileId);
    if (!unchangedSince(e, prevById.get(fileId))) uploads.push({ entry: e, fileId });
  }
  const deleted = ((previous ?? []) as readonly ManifestRow[])
    .filter((r) => r.flags === MANIFEST_FLAG.file && !current.has(r.fileId))
    .map((r) => r.fileId);
  return { uploads, deleted };
}

/**
 * planUploads from a ManifestDelta: only the candidate keys are looked at (found by binary search,
 * not by a key built for every entry). Uploads keep the entries' order, deletions the candidates'.
 */
function planFromDelta(
  entries: readonly ContentEntry[],
  delta: ManifestDelta,
): { uploads: PayloadPlan[]; deleted: string[] } {
  const changed: number[] = [];
  const deleted: string[] = [];
  for (const key of delta.candidates) {
    const [domain, relativePath] = key.split('\u0000') as [string, string];
    const i = entryIndex(entries, domain, relativePath);
    const e = i >= 0 ? entries[i]! : undefined;
    if (e !== undefined && e.type === 'file') {
      if (!unchangedSince(e, delta.previousRow(key))) changed.push(i);
      continue;
    }
    // No file at this key on the device now: the host's file there, if it has one, goes.
    const r = delta.previousRow(key);
    if (r !== undefined && r.flags === MANIFEST_FLAG.file) deleted.push(r.fileId);
  }
  const uploads = changed
    .sort((a, b) => a - b)
    .map((i) => {
      const e = entries[i]!;
      return { entry: e, fileId: fileIdFor(e.domain, e.relativePath) };
    });
  return { uploads, deleted };
}

export function manifestRowsFor(
  entries: readonly ContentEntry[],
  enc?: SimEncryptionKeys,
): Array<Omit<ManifestRow, 'fileId'>> {
  return entries.map((e) => ({
    domain: e.domain,
    relativePath: e.relativePath,
    flags: MANIFEST_FLAG[e.type],
    file: {
      relativePath: e.relativePath,
      lastModified: e.mtime,
      lastStatusChange: e.ctime,
      birth: e.birth,
      size: e.type === 'dir' ? 0 : e.size,
      mode: e.mode,
      userId: e.uid,
      groupId: e.gid,
      inode: e.inode,
      protectionClass: e.protectionClass,
      flags: 0,
      ...(e.type === 'symlink' && e.target !== undefined ? { target: e.target } : {}),
      ...(e.type === 'file' && e.sha1 !== undefined ? { digest: Buffer.from(e.sha1, 'hex') } : {}),
      ...(e.type === 'file' && enc ? { encryptionKey: wrappedFileKey(enc, e) } : {}),
    },
  }));
}

/** The MBFile EncryptionKey of an entry: its file key wrapped by its class key. */
export function wrappedFileKey(enc: SimEncryptionKeys, e: ContentEntry): Buffer {
  const clas = enc.unlocked.classKeys.has(e.protectionClass) ? e.protectionClass : 3;
  return wrapClassKey(enc.unlocked, clas, plainFileKey(enc, e));
}

function plainFileKey(enc: SimEncryptionKeys, e: ContentEntry): Buffer {
  return fileKeyFor(enc, fileIdFor(e.domain, e.relativePath), {
    size: e.size,
    mtime: e.mtime,
    ...(e.sha1 !== undefined ? { sha1: e.sha1 } : {}),
  });
}

class Backup {
  private readonly udid: string;
  private readonly uuid = newBackupUuid();
  private isFull = true;
  private tmpCounter = 0;

  constructor(private readonly ctx: SessionContext) {
    this.udid = ctx.device.udid;
  }

  private log(event: string, fields: Record<string, unknown> = {}): void {
    this.ctx.device.log(`mobilebackup2.${event}`, fields);
  }

  async run(req: PlistDict): Promise<BackupOutcome> {
    const { ctx, udid } = this;
    const target = requestIdentifier(req, 'TargetIdentifier');
    requestIdentifier(req, 'SourceIdentifier');
    if (target !== undefined && target !== udid) {
      throw new BackupFailure(
        MbError.BAD_REQUEST,
        `TargetIdentifier ${target} is not this device (${udid})`,
      );
    }
    const forceFull = requestOptions(req).ForceFullBackup === true;
    const enc = await ctx.encryption.current();

    if (needsPasscodePrompt(ctx.device.values().ProductVersion)) {
      this.log('passcode-prompt');
      if (!(await ctx.device.requestPasscode(ctx.passcodeTimeoutMs))) {
        throw new BackupFailure(
          MbError.PASSCODE_NOT_ENTERED,
          'The passcode was not entered on the device, so the backup cannot start',
        );
      }
    }
    const delay = ctx.device.faults.delayFirstMessageMs;
    if (delay !== undefined && delay > 0) await sleep(Math.min(delay, MAX_DELAY_MS));
    checkCancelled(ctx);

    // 1. The previous backup, as the host has it (Manifest.db read below, with the lock held).
    // While it arrives, the device reads ahead what comparing it with its own cache needs.
    const cache = new ManifestCache(ctx.store, enc);
    await cache.beginCompare();
    const prev = await fetchBackupFiles(
      ctx,
      udid,
      ['Status.plist', 'Manifest.plist', 'Manifest.db'],
      async (keyBag) => (enc && sameKeyBag(enc, keyBag) ? enc.unlocked : undefined),
      { rows: false, reference: cache.dbFile },
    );
    this.log('previous-received'); // the host's files are here; reading them follows
    if (prev.manifestPlistBytes !== undefined && prev.manifestPlistBytes.length === 0) {
      // What real devices do with an empty Manifest.plist (reference §4.6 step 1, GH#1582).
      throw new BackupFailure(
        MbError.BAD_BACKUP,
        'Error reading backup properties (Manifest.plist is empty)',
      );
    }

    return ctx.store
      .withLock(async () => {
        // The content, its journal and the device's Manifest.db cache stay put from here on.
        const entries = ctx.store.currentEntries();
        await readPreviousManifest(prev, cache);
        const why = forceFull ? 'ForceFullBackup requested' : previousBackupUsable(prev, udid, enc);
        this.isFull = why !== undefined;
        this.log('mode', {
          incremental: !this.isFull,
          reason: why ?? 'previous backup usable',
          problems: prev.problems,
          ...(prev.manifestDelta
            ? {
                decodedRows: prev.manifestDelta.decodedRows,
                hostManifestIdentical: prev.manifestDelta.identical,
              }
            : {}),
        });
        checkCancelled(ctx);

        // 2. Leftovers of an interrupted run.
        const snapshotListing = await this.contentsOf(`${udid}/Snapshot`);
        await this.contentsOf(udid);

        const previous = prev.manifestDelta ?? prev.manifestRows;
        const plan = planUploads(entries, this.isFull ? undefined : previous);
        // A full backup over an older one still drops payloads that no longer exist.
        const deleted = !this.isFull
          ? plan.deleted
          : previous === undefined
            ? [] // nothing on the host to drop (and no second pass over every entry)
            : planUploads(entries, previous).deleted;
        const uploadBytes = plan.uploads.reduce((a, p) => a + p.entry.size, 0);
        this.log('plan', {
          files: plan.uploads.length,
          bytes: uploadBytes,
          deleted: deleted.length,
        });

        // 3. Free space on the host.
        await this.ensureSpace(uploadBytes + entries.length * 512);
        checkCancelled(ctx);

        // 4. Folders.
        if (Object.keys(snapshotListing).length > 0)
          await this.expectOk(dlRemoveItems([`${udid}/Snapshot`], 0), 'RemoveItems');
        await this.expectOk(dlCreateDirectory(udid), 'CreateDirectory');
        await this.expectOk(dlCreateDirectory(`${udid}/Snapshot`), 'CreateDirectory');

        // 5. Status, then payloads into Snapshot/.
        await this.uploadStatus('uploading', 0);
        const buckets = [...new Set(plan.uploads.map((p) => p.fileId.slice(0, 2)))].sort();
        for (const b of buckets)
          await this.expectOk(dlCreateDirectory(`${udid}/Snapshot/${b}`), 'CreateDirectory');
        const evil = ctx.device.faults.evil;
        if (evil !== undefined) await runEvilUpload(ctx, evil);
        // The device's next Manifest.db is built beside the uploads: it depends on the entries
        // only, and is sent after them, as before. Not beside the round trips above: its slices
        // would delay every reply (the uploads' long streams leave the host work in the socket).
        const dbBuilt = cache.build(entries, (es) => manifestRowsFor(es, enc));
        let sent: { uploadedFiles: number; done: number };
        try {
          sent = await this.uploadPayloads(plan.uploads, uploadBytes, enc);
        } catch (err) {
          await dbBuilt.catch(() => undefined); // not left writing the cache after the lock
          throw err;
        }
        const { uploadedFiles, done } = sent;
        this.log('uploaded', { files: uploadedFiles, bytes: done });

        // Manifest.db and Manifest.plist, complete, into Snapshot/.
        const dbFile = await dbBuilt;
        let dbUpload = dbFile;
        let manifestKey: Buffer | undefined;
        if (enc) {
          // Manifest.db under a fresh key, wrapped as ManifestKey in Manifest.plist (iOS ≥ 10.2).
          const key = randomBytes(32);
          manifestKey = wrapClassKey(enc.unlocked, MANIFEST_KEY_CLASS, key);
          dbUpload = path.join(ctx.workDir, 'Manifest.db.enc');
          await fsp.writeFile(dbUpload, encryptPayload(key, await fsp.readFile(dbFile)));
        }
        const manifestPlist = encodeBinaryPlist(
          buildManifestPlist({
            values: ctx.device.values(),
            domain: (n) => ctx.device.domain(n),
            apps: ctx.store.apps(),
            keyBag: enc ? enc.keyBag : buildUnencryptedKeyBag(),
            wasPasscodeSet: ctx.device.passcode.kind !== 'none',
            date: new Date(),
            ...(manifestKey !== undefined ? { manifestKey } : {}),
          }),
        );
        await this.upload(
          [
            {
              devicePath: this.tmpName(),
              hostPath: `${udid}/Snapshot/Manifest.db`,
              source: { kind: 'file', path: dbUpload },
            },
            {
              devicePath: this.tmpName(),
              hostPath: `${udid}/Snapshot/Manifest.plist`,
              source: { kind: 'buffer', data: manifestPlist },
            },
          ],
          90,
        );
        return { plan, deleted, uploadedFiles, done };
      })
      .then(async ({ plan, deleted, uploadedFiles, done }) => {
        // 6. Move into place.
        checkCancelled(ctx);
        await this.uploadStatus('moving', 91);
        const buckets = [...new Set(plan.uploads.map((p) => p.fileId.slice(0, 2)))].sort();
        for (const b of buckets)
          await this.expectOk(dlCreateDirectory(`${udid}/${b}`), 'CreateDirectory');
        const moves: Array<[string, string]> = plan.uploads.map((p) => [
          bucketPath(udid, p.fileId, true),
          bucketPath(udid, p.fileId, false),
        ]);
        moves.push([`${udid}/Snapshot/Manifest.db`, `${udid}/Manifest.db`]);
        moves.push([`${udid}/Snapshot/Manifest.plist`, `${udid}/Manifest.plist`]);
        for (let i = 0; i < moves.length; i += MOVE_BATCH) {
          const part = Object.fromEntries(moves.slice(i, i + MOVE_BATCH));
          await this.expectOk(dlMoveItems(part, 91 + (4 * i) / moves.length), 'MoveItems');
        }

        // 7. Remove what no longer exists, the stale mbdx index and the Snapshot folder.
        await this.uploadStatus('removing', 96);
        const removes = deleted.map((id) => bucketPath(udid, id, false));
        removes.push(`${udid}/Manifest.mbdx`, `${udid}/Snapshot`);
        for (let i = 0; i < removes.length; i += MOVE_BATCH) {
          await this.expectOk(
            dlRemoveItems(removes.slice(i, i + MOVE_BATCH), 96 + (3 * i) / removes.length),
            'RemoveItems',
          );
        }

        // 8. Finished.
        await this.uploadStatus('finished', 100);
        this.log('finished', {
          incremental: !this.isFull,
          files: uploadedFiles,
          bytes: done,
          removed: deleted.length,
        });
        return {
          incremental: !this.isFull,
          uploadedFiles,
          uploadedBytes: done,
          removedFiles: deleted.length,
        };
      });
  }

  /** Streams the payloads into Snapshot/ in batches; what was sent (files, bytes). */
  private async uploadPayloads(
    uploads: PayloadPlan[],
    uploadBytes: number,
    enc: SimEncryptionKeys | undefined,
  ): Promise<{ uploadedFiles: number; done: number }> {
    const { ctx, udid } = this;
    let done = 0;
    let uploadedFiles = 0;
    for (const batch of batches(uploads)) {
      checkCancelled(ctx);
      const items: UploadItem[] = [];
      for (const p of batch) {
        let source = ctx.store.blobPathOfId(p.fileId);
        if (enc) {
          // Encrypted on the way out, as a device does; Size in Manifest.db stays plaintext.
          const out = path.join(ctx.workDir, `enc-${p.fileId}`);
          await encryptFileTo(source, out, plainFileKey(enc, p.entry));
          source = out;
        }
        items.push({
          devicePath: `/var/mobile/.backup/${p.entry.domain}/${p.entry.relativePath}`,
          hostPath: bucketPath(udid, p.fileId, true),
          source: { kind: 'file', path: source },
        });
      }
      const batchBytes = batch.reduce((a, p) => a + p.entry.size, 0);
      const r = await ctx.dl.uploadFiles(items, progress(done, uploadBytes), batchBytes, {
        cancelled: ctx.cancelled,
      });
      if (r.code !== 0) {
        throw new BackupFailure(
          MbError.UPLOAD_FAILED,
          `Multiple errors uploading files (host: ${r.text ?? r.code})`,
        );
      }
      if (r.unreadable.length > 0) {
        throw new BackupFailure(
          MbError.UPLOAD_FAILED,
          `Multiple errors uploading files (the device could not read ${r.unreadable.length}, e.g. ${r.unreadable[0]!})`,
        );
      }
      if (enc)
        for (const it of items)
          if (it.source.kind === 'file') await fsp.rm(it.source.path, { force: true });
      uploadedFiles += r.sent;
      done += batch.slice(0, r.sent).reduce((a, p) => a + p.entry.size, 0);
      checkCancelled(ctx);
    }
    return { uploadedFiles, done };
  }

  private tmpName(): string {
    this.tmpCounter++;
    return `/var/tmp/tmp.${this.tmpCounter}.${this.uuid.slice(0, 6)}`;
  }

  private async contentsOf(dir: string): Promise<PlistDict> {
    const r = await this.ctx.dl.call(dlContentsOfDirectory(dir));
    if (r.code !== 0) return {};
    return isPlistDict(r.payload) ? r.payload : {};
  }

  private async expectOk(
    msg: Parameters<SessionContext['dl']['call']>[0],
    what: string,
  ): Promise<void> {
    const r = await this.ctx.dl.call(msg);
    if (r.code !== 0) {
      throw new BackupFailure(
        MbError.UPLOAD_FAILED,
        `${what} failed on the host: ${r.text ?? 'error'} (${r.code})`,
      );
    }
  }

  private async upload(items: UploadItem[], pct: number): Promise<void> {
    let total = 0;
    for (const i of items)
      total +=
        i.source.kind === 'buffer' ? i.source.data.length : (await fsp.stat(i.source.path)).size;
    const r = await this.ctx.dl.uploadFiles(items, pct, total);
    if (r.code !== 0) {
      throw new BackupFailure(
        MbError.UPLOAD_FAILED,
        `Multiple errors uploading files (host: ${r.text ?? r.code})`,
      );
    }
  }

  private async uploadStatus(state: SnapshotState, pct: number): Promise<void> {
    const data = encodeStatusPlist({
      uuid: this.uuid,
      isFullBackup: this.isFull,
      snapshotState: state,
      date: new Date(),
    });
    await this.upload(
      [
        {
          devicePath: this.tmpName(),
          hostPath: `${this.udid}/Status.plist`,
          source: { kind: 'buffer', data },
        },
      ],
      pct,
    );
  }

  private async freeSpace(): Promise<number> {
    const r = await this.ctx.dl.call(dlGetFreeDiskSpace());
    const v = r.payload;
    if (r.code !== 0 || (typeof v !== 'number' && typeof v !== 'bigint') || v < 0) {
      throw new BackupFailure(
        MbError.INSUFFICIENT_SPACE,
        'The computer did not report its free disk space',
      );
    }
    return typeof v === 'bigint'
      ? Number(v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : v)
      : v;
  }

  /** Proceed iff free > needed + 128 MiB; otherwise ask for a purge once and re-check (§4.6 step 3). */
  private async ensureSpace(needed: number): Promise<void> {
    const lowDisk = (): boolean => this.ctx.device.faults.lowDisk === true;
    let free = await this.freeSpace();
    if (!lowDisk() && free > needed + FREE_SPACE_MARGIN_BYTES) return;
    const deficit = Math.max(0, needed + FREE_SPACE_MARGIN_BYTES - free);
    this.log('purge-request', { free, needed, lowDiskFault: lowDisk() });
    await this.ctx.dl.call(dlPurgeDiskSpace(deficit + PURGE_EXTRA_BYTES, 4)); // any answer: the device re-checks
    free = await this.freeSpace();
    if (lowDisk() || free <= needed + FREE_SPACE_MARGIN_BYTES) {
      throw new BackupFailure(
        MbError.INSUFFICIENT_SPACE,
        'Insufficient free disk space on drive to back up',
      );
    }
  }
}

function progress(done: number, total: number): number {
  return total === 0 ? 0 : Math.min(89, (89 * done) / total);
}

function* batches(plans: PayloadPlan[]): Generator<PayloadPlan[]> {
  let cur: PayloadPlan[] = [];
  let bytes = 0;
  for (const p of plans) {
    if (
      cur.length > 0 &&
      (cur.length >= UPLOAD_BATCH_FILES || bytes + p.entry.size > UPLOAD_BATCH_BYTES)
    ) {
      yield cur;
      cur = [];
      bytes = 0;
    }
    cur.push(p);
    bytes += p.entry.size;
  }
  if (cur.length > 0) yield cur;
}

/**
 * Reads the host's Manifest.db into `prev`: compared with the device's cache when it can be (only
 * the rows that differ decoded), every row otherwise. A file the device refuses is a problem.
 */
async function readPreviousManifest(prev: HostBackupFiles, cache: ManifestCache): Promise<void> {
  if (prev.manifestDbFile === undefined) return;
  try {
    const delta = await cache.compareHost(prev.manifestDbFile, {
      ...(prev.manifestDbSameAsReference !== undefined
        ? { sameAsCache: prev.manifestDbSameAsReference }
        : {}),
    });
    if (delta) prev.manifestDelta = delta;
    else prev.manifestRows = readManifestDb(prev.manifestDbFile);
  } catch (err) {
    prev.problems.push(`Manifest.db: ${(err as Error).message}`);
  }
}

export async function runBackup(ctx: SessionContext, req: PlistDict): Promise<BackupOutcome> {
  try {
    return await new Backup(ctx).run(req);
  } catch (err) {
    if (err instanceof MooringError && err.code === 'IO') {
      throw new BackupFailure(
        MbError.UPLOAD_FAILED,
        `The device could not read its own files: ${err.message}`,
      );
    }
    throw err;
  }
}
