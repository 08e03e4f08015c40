/** What every mobilebackup2 request handler of the simulated device works with. */
import path from 'node:path';
import type { PlistDict } from '../../protocol/plist';
import { decodePlist, isPlistDict } from '../../protocol/plist';
import type { ContentStore } from '../content/store';
import type { SimDeviceApi } from '../contracts';
import type { DeviceLinkPeer } from './dl-peer';
import { BackupFailure, MbError } from './errors';
import { openManifestDb, readManifestDb, type ManifestRow } from '../../format/manifest-db';
import { FileSink, MemorySink } from './sinks';
import { decryptPayload, unwrapClassKey, type UnlockedKeyBag } from '../../format/encryption';
import { isMooringError } from '../../util/errors';
import { promises as fsp } from 'node:fs';
import type { SimBackupEncryption } from './encryption';
import type { ManifestDelta } from './manifest-cache';

export interface SessionContext {
  dl: DeviceLinkPeer;
  device: SimDeviceApi;
  store: ContentStore;
  /** Private scratch folder for this request (Manifest.db in and out). */
  workDir: string;
  passcodeTimeoutMs: number;
  /** True once the user cancelled on the device (syncCancelRequest). */
  cancelled: () => boolean;
  /** Backup encryption state (keybag, class keys) of this device. */
  encryption: SimBackupEncryption;
}

/**
 * Unlocks an encrypted host backup's keybag (Manifest.plist BackupKeyBag): the device's own
 * current keys for an incremental, or the user's password for a restore. undefined: cannot.
 */
export type KeyBagUnlocker = (keyBag: Buffer) => Promise<UnlockedKeyBag | undefined>;

/** Bounds on what the device downloads from the host. */
export const MAX_SMALL_PLIST_BYTES = 16 * 1024 * 1024;
export const MAX_MANIFEST_DB_BYTES = 1024 * 1024 * 1024;

/** UDIDs as used in backup folder names: hex with an optional dash, nothing path-like. */
const IDENTIFIER = /^[A-Za-z0-9][A-Za-z0-9-]{0,63}$/;

export function requestIdentifier(req: PlistDict, key: string): string | undefined {
  const v = req[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !IDENTIFIER.test(v)) {
    throw new BackupFailure(MbError.BAD_REQUEST, `${key} is not a device identifier`);
  }
  return v;
}

export function requestOptions(req: PlistDict): PlistDict {
  const o = req.Options;
  return isPlistDict(o) ? o : {};
}

export function checkCancelled(ctx: SessionContext): void {
  if (ctx.cancelled())
    throw new BackupFailure(MbError.CANCELLED, 'The operation was cancelled on the device');
}

/** The backup's own files as the device reads them back from the host. */
export interface HostBackupFiles {
  status?: PlistDict;
  /** Raw Manifest.plist bytes (kept raw: a zero-byte file is itself meaningful). */
  manifestPlistBytes?: Buffer;
  manifestPlist?: PlistDict;
  manifestRows?: ManifestRow[];
  /** The host's rows compared with the device's own cache (backup-session, ManifestCache). */
  manifestDelta?: ManifestDelta;
  /** With `rows: false`: the plain (decrypted) Manifest.db, opened once, its rows not yet read. */
  manifestDbFile?: string;
  /** With `reference` (and a plain Manifest.db): whether it arrived as the reference's bytes. */
  manifestDbSameAsReference?: boolean;
  /** Why a file that was sent could not be used. */
  problems: string[];
}

/**
 * Downloads `<dir>/Status.plist`, `Manifest.plist`, `Manifest.db` (those asked for) in one
 * DLMessageDownloadFiles and parses what arrives. Missing or unreadable files are reported, not
 * thrown: the caller decides (a backup falls back to full, a restore fails). `reference`: a file
 * the Manifest.db is compared with as it arrives (manifestDbSameAsReference).
 */
export async function fetchBackupFiles(
  ctx: SessionContext,
  dir: string,
  want: Array<'Status.plist' | 'Manifest.plist' | 'Manifest.db'>,
  unlock?: KeyBagUnlocker,
  opts: { rows?: boolean; reference?: string } = {},
): Promise<HostBackupFiles> {
  const status = new MemorySink(MAX_SMALL_PLIST_BYTES);
  const manifest = new MemorySink(MAX_SMALL_PLIST_BYTES);
  const db = new FileSink(
    path.join(ctx.workDir, 'host-Manifest.db'),
    MAX_MANIFEST_DB_BYTES,
    opts.reference,
  );
  const sinkFor: Record<string, MemorySink | FileSink> = {
    [`${dir}/Status.plist`]: status,
    [`${dir}/Manifest.plist`]: manifest,
    [`${dir}/Manifest.db`]: db,
  };
  const paths = want.map((w) => `${dir}/${w}`);
  await ctx.dl.downloadFiles(paths, 0, async (p) => sinkFor[p]!);
  const out: HostBackupFiles = { problems: [] };
  if (status.result) {
    const v = parseSmallPlist(status.result);
    if (v) out.status = v;
    else out.problems.push('Status.plist is not a plist dict');
  }
  if (manifest.result) {
    out.manifestPlistBytes = manifest.result;
    const v = manifest.result.length > 0 ? parseSmallPlist(manifest.result) : undefined;
    if (v) out.manifestPlist = v;
    else out.problems.push('Manifest.plist is not a plist dict');
  }
  if (db.complete) {
    try {
      let dbFile = db.file;
      if (out.manifestPlist?.IsEncrypted === true) {
        dbFile = await decryptManifestDb(out.manifestPlist, db.file, unlock);
        if (dbFile === '') throw new Error('encrypted with a keybag this device cannot unlock');
      }
      if (opts.rows === false) {
        openManifestDb(dbFile).close();
        out.manifestDbFile = dbFile;
        // Compared as received: meaningful only if what was received is the plain file.
        if (dbFile === db.file && db.sameAsReference !== undefined)
          out.manifestDbSameAsReference = db.sameAsReference;
      } else out.manifestRows = readManifestDb(dbFile);
    } catch (err) {
      out.problems.push(`Manifest.db: ${(err as Error).message}`);
    }
  }
  return out;
}

/** H8a: Manifest.db of an encrypted backup → a decrypted copy ('' when the keybag is not ours). */
async function decryptManifestDb(
  manifest: PlistDict,
  file: string,
  unlock: KeyBagUnlocker | undefined,
): Promise<string> {
  const keyBag = manifest.BackupKeyBag;
  const wrapped = manifest.ManifestKey;
  if (!unlock || !Buffer.isBuffer(keyBag) || !Buffer.isBuffer(wrapped)) return '';
  const bag = await unlock(keyBag);
  if (!bag) return '';
  let plain: Buffer;
  try {
    plain = decryptPayload(unwrapClassKey(bag, wrapped), await fsp.readFile(file));
  } catch (e) {
    if (isMooringError(e)) throw new Error(`Manifest.db does not decrypt: ${e.message}`);
    throw e;
  }
  const out = `${file}.plain`;
  await fsp.writeFile(out, plain, { mode: 0o600 });
  return out;
}

function parseSmallPlist(buf: Buffer): PlistDict | undefined {
  try {
    const v = decodePlist(buf, { maxDepth: 32, maxObjects: 200_000 });
    return isPlistDict(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

/** "17.5" → true when at least 16.1 (the passcode prompt for backups arrived in iOS 16.1). */
export function needsPasscodePrompt(productVersion: unknown): boolean {
  if (typeof productVersion !== 'string') return false;
  const m = /^(\d+)\.(\d+)/.exec(productVersion);
  if (!m) return false;
  const major = Number(m[1]);
  const minor = Number(m[2]);
  return major > 16 || (major === 16 && minor >= 1);
}

/** A pause inside a device-side session; unref'd so a stopped simulator never keeps its host alive. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}
