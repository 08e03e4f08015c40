/**
 * The device side of a `Restore` request (as `idevicebackup2 restore` sends it): download the
 * backup's Manifest.plist and Manifest.db from the host, validate them, download every payload the
 * restore needs (verified against the manifest's size and digest), and rebuild the content store
 * from the manifest (files, directories, symlinks, modes, times).
 */
import type { PlistDict } from '../../protocol/plist';
import { entryTypeForFlags, type ManifestRow } from '../../format/manifest-db';
import { S_IFDIR, S_IFLNK, S_IFMT, S_IFREG } from '../../format/mbfile';
import type { ContentEntry } from '../content/model';
import type { RestoredItem } from '../content/store';
import { BackupFailure, MbError } from './errors';
import { DecryptingSink, StagingSink } from './sinks';
import {
  unlockBackupKeyBagAsync,
  unwrapClassKey,
  type UnlockedKeyBag,
} from '../../format/encryption';
import { isMooringError } from '../../util/errors';
import { passwordField } from './encryption';
import { bucketPath } from './backup-session';
import {
  checkCancelled,
  fetchBackupFiles,
  requestIdentifier,
  requestOptions,
  type SessionContext,
} from './session';

/** Payloads asked for per DLMessageDownloadFiles. */
export const RESTORE_BATCH_FILES = 256;
/** Longest symlink target accepted from a backup. */
export const MAX_LINK_TARGET_CHARS = 1024;

export interface RestoreOptions {
  restoreSystemFiles: boolean;
  preserveSettings: boolean;
  removeItemsNotRestored: boolean;
  shouldReboot: boolean;
}

function bool(v: unknown, dflt: boolean): boolean {
  return typeof v === 'boolean' ? v : dflt;
}

export function parseRestoreOptions(opts: PlistDict): RestoreOptions {
  return {
    restoreSystemFiles: bool(opts.RestoreSystemFiles, false),
    preserveSettings: bool(opts.RestorePreserveSettings, true),
    removeItemsNotRestored: bool(opts.RemoveItemsNotRestored, false),
    shouldReboot: bool(opts.RestoreShouldReboot, true),
  };
}

const APP_DOMAIN = /^AppDomain(Group|Plugin)?-/;

/** Which (domain, path) a restore with these options touches. */
export function restoreScope(o: RestoreOptions): (domain: string, relativePath: string) => boolean {
  return (domain, relativePath) => {
    if (!o.restoreSystemFiles && !APP_DOMAIN.test(domain)) return false;
    if (
      o.preserveSettings &&
      domain === 'HomeDomain' &&
      /^Library\/Preferences(\/|$)/.test(relativePath)
    )
      return false;
    return true;
  };
}

function entryFromRow(row: ManifestRow): ContentEntry {
  const type = entryTypeForFlags(row.flags)!;
  const f = row.file;
  const typeBits = type === 'file' ? S_IFREG : type === 'dir' ? S_IFDIR : S_IFLNK;
  const e: ContentEntry = {
    domain: row.domain,
    relativePath: row.relativePath,
    type,
    size: type === 'dir' ? 0 : f.size,
    mode: (f.mode & ~S_IFMT & 0o7777) | typeBits,
    mtime: f.lastModified,
    ctime: f.lastStatusChange,
    birth: f.birth,
    inode: f.inode,
    uid: f.userId,
    gid: f.groupId,
    protectionClass: f.protectionClass,
  };
  if (type === 'symlink') {
    const t = f.target ?? '';
    if (t.length === 0 || t.length > MAX_LINK_TARGET_CHARS || t.includes('\u0000')) {
      throw new BackupFailure(
        MbError.BAD_BACKUP,
        `Error reading backup database (bad symlink target for ${row.domain}/${row.relativePath})`,
      );
    }
    e.target = t;
    e.size = Buffer.byteLength(t);
  }
  return e;
}

function fileKeyOf(bag: UnlockedKeyBag, wrapped: Buffer, row: ManifestRow): Buffer {
  try {
    return unwrapClassKey(bag, wrapped);
  } catch (e) {
    throw new BackupFailure(
      MbError.BAD_BACKUP,
      `The key of ${row.domain}/${row.relativePath} does not unwrap: ${(e as Error).message}`,
    );
  }
}

export interface RestoreOutcome {
  restoredFiles: number;
  restoredEntries: number;
}

export async function runRestore(ctx: SessionContext, req: PlistDict): Promise<RestoreOutcome> {
  const { device, dl, store } = ctx;
  const target = requestIdentifier(req, 'TargetIdentifier');
  if (target !== undefined && target !== device.udid) {
    throw new BackupFailure(
      MbError.BAD_REQUEST,
      `TargetIdentifier ${target} is not this device (${device.udid})`,
    );
  }
  const source = requestIdentifier(req, 'SourceIdentifier') ?? device.udid;
  const opts = parseRestoreOptions(requestOptions(req));
  device.log('mobilebackup2.restore', { source, ...opts });

  // Encrypted backups: the keybag is unlocked with the password the host passes (§4.3).
  const password =
    passwordField(requestOptions(req).Password, 'Password') ??
    passwordField(req.Password, 'Password');
  let bag: UnlockedKeyBag | undefined;
  let wrongPassword = false;
  const files = await fetchBackupFiles(
    ctx,
    source,
    ['Manifest.plist', 'Manifest.db'],
    async (kb) => {
      if (password === undefined) return undefined;
      try {
        bag = await unlockBackupKeyBagAsync(kb, password);
        return bag;
      } catch (e) {
        if (!isMooringError(e, 'WRONG_PASSWORD')) throw e;
        wrongPassword = true;
        return undefined;
      }
    },
  );
  if (!files.manifestPlist) {
    throw new BackupFailure(
      MbError.BAD_BACKUP,
      `Error reading backup properties (${files.problems.join('; ') || 'Manifest.plist missing'})`,
    );
  }
  const encrypted = files.manifestPlist.IsEncrypted === true;
  if (encrypted && password === undefined)
    throw new BackupFailure(
      MbError.WRONG_PASSWORD,
      'The backup is encrypted: a password is required',
    );
  if (encrypted && wrongPassword)
    throw new BackupFailure(MbError.WRONG_PASSWORD, 'The backup password is incorrect');
  if (!files.manifestRows) {
    throw new BackupFailure(
      MbError.BAD_BACKUP,
      `Error reading backup database (${files.problems.join('; ') || 'Manifest.db missing'})`,
    );
  }
  checkCancelled(ctx);

  const inScope = restoreScope(opts);
  const rows = files.manifestRows.filter((r) => inScope(r.domain, r.relativePath));
  const entries = rows.map(entryFromRow);
  const fileRows = rows.filter((r) => r.flags === 1);
  const staged = new Map<string, StagingSink>();
  try {
    for (let i = 0; i < fileRows.length; i += RESTORE_BATCH_FILES) {
      checkCancelled(ctx);
      const batch = fileRows.slice(i, i + RESTORE_BATCH_FILES);
      const byPath = new Map(batch.map((r) => [bucketPath(source, r.fileId, false), r]));
      const outcome = await dl.downloadFiles(
        [...byPath.keys()],
        (100 * i) / Math.max(1, fileRows.length),
        async (p) => {
          const row = byPath.get(p)!;
          const sink = new StagingSink(await store.stagingWriter(), row.file.size);
          staged.set(row.fileId, sink);
          if (!encrypted) return sink;
          const wrapped = row.file.encryptionKey;
          if (!bag || !wrapped)
            throw new BackupFailure(
              MbError.BAD_BACKUP,
              `Error reading backup database (no EncryptionKey for ${row.domain}/${row.relativePath})`,
            );
          return new DecryptingSink(sink, fileKeyOf(bag, wrapped, row));
        },
      );
      const missing = [...outcome.failed.keys(), ...outcome.skipped];
      if (missing.length > 0) {
        throw new BackupFailure(
          MbError.BAD_BACKUP,
          `Manifest references files not in backup (${missing.length} missing, e.g. ${missing[0]!})`,
        );
      }
      for (const r of batch) {
        const d = staged.get(r.fileId)?.digest;
        if (!d || d.size !== r.file.size) {
          throw new BackupFailure(
            MbError.BAD_BACKUP,
            `Payload of ${r.domain}/${r.relativePath} has the wrong size`,
          );
        }
        const digest = r.file.digest;
        if (digest !== undefined && digest.length === 20 && digest.toString('hex') !== d.sha1) {
          throw new BackupFailure(
            MbError.BAD_BACKUP,
            `Payload of ${r.domain}/${r.relativePath} does not match its digest`,
          );
        }
      }
    }
    const items: RestoredItem[] = entries.map((e, i) => {
      const row = rows[i]!;
      if (e.type !== 'file') return { entry: e };
      const sink = staged.get(row.fileId)!;
      return {
        entry: { ...e, sha256: sink.digest!.sha256, sha1: sink.digest!.sha1 },
        stagedPath: sink.path,
      };
    });
    checkCancelled(ctx);
    await store.applyRestore(items, { inScope, removeNotRestored: opts.removeItemsNotRestored });
  } catch (err) {
    await store.clearStaging();
    throw err;
  }
  device.log('mobilebackup2.restored', {
    files: fileRows.length,
    entries: entries.length,
    reboot: opts.shouldReboot,
  });
  return { restoredFiles: fileRows.length, restoredEntries: entries.length };
}
