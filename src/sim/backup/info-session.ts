/**
 * `Info` and `List` requests: the device reads the host's last backup and answers with text in
 * `Content` (idevicebackup2 prints it). Minimal by design: a short summary and a CSV of files.
 */
import type { PlistDict } from '../../protocol/plist';
import { decodePlist, isPlistDict } from '../../protocol/plist';
import { BackupFailure, MbError } from './errors';
import { MemorySink } from './sinks';
import {
  fetchBackupFiles,
  MAX_SMALL_PLIST_BYTES,
  requestIdentifier,
  type SessionContext,
} from './session';
import { sameKeyBag } from './encryption';

/** Longest Content string sent back (keeps the final frame bounded). */
export const MAX_CONTENT_CHARS = 8 * 1024 * 1024;

function text(v: unknown): string {
  if (v instanceof Date) return v.toISOString();
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return String(v);
  return '';
}

export async function runInfo(ctx: SessionContext, req: PlistDict): Promise<string> {
  const source =
    requestIdentifier(req, 'SourceIdentifier') ??
    requestIdentifier(req, 'TargetIdentifier') ??
    ctx.device.udid;
  const info = new MemorySink(MAX_SMALL_PLIST_BYTES);
  await ctx.dl.downloadFiles([`${source}/Info.plist`], 0, async () => info);
  const files = await fetchBackupFiles(ctx, source, ['Status.plist', 'Manifest.plist']);
  let infoDict: PlistDict = {};
  if (info.result) {
    try {
      const v = decodePlist(info.result, { maxDepth: 32, maxObjects: 200_000 });
      if (isPlistDict(v)) infoDict = v;
    } catch {
      // an unreadable Info.plist just leaves its lines out
    }
  }
  if (!files.manifestPlist && !files.status && Object.keys(infoDict).length === 0) {
    throw new BackupFailure(MbError.BAD_BACKUP, `No backup of ${source} found on the computer`);
  }
  const m = files.manifestPlist ?? {};
  const lockdown = isPlistDict(m.Lockdown) ? m.Lockdown : {};
  const s = files.status ?? {};
  const lines = [
    `Device Name: ${text(infoDict['Device Name'] ?? lockdown.DeviceName)}`,
    `Product Type: ${text(infoDict['Product Type'] ?? lockdown.ProductType)}`,
    `Product Version: ${text(infoDict['Product Version'] ?? lockdown.ProductVersion)}`,
    `Unique Identifier: ${text(lockdown.UniqueDeviceID ?? source)}`,
    `Last Backup Date: ${text(s.Date ?? m.Date)}`,
    `Snapshot State: ${text(s.SnapshotState)}`,
    `Full Backup: ${text(s.IsFullBackup)}`,
    `Encrypted: ${text(m.IsEncrypted)}`,
  ];
  return lines.join('\n') + '\n';
}

function csvField(s: string): string {
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export async function runList(ctx: SessionContext, req: PlistDict): Promise<string> {
  const source =
    requestIdentifier(req, 'SourceIdentifier') ??
    requestIdentifier(req, 'TargetIdentifier') ??
    ctx.device.udid;
  // An encrypted backup of this device's current keybag is listed with the device's own keys.
  const enc = await ctx.encryption.current();
  const files = await fetchBackupFiles(
    ctx,
    source,
    ['Manifest.plist', 'Manifest.db'],
    async (kb) => (enc && sameKeyBag(enc, kb) ? enc.unlocked : undefined),
  );
  if (!files.manifestRows) {
    throw new BackupFailure(
      MbError.BAD_BACKUP,
      `Error reading backup database (${files.problems.join('; ') || 'Manifest.db missing'})`,
    );
  }
  const parts = ['Domain,RelativePath,Flags,Size,LastModified,FileID\n'];
  let length = parts[0]!.length;
  for (const r of files.manifestRows) {
    const line = `${csvField(r.domain)},${csvField(r.relativePath)},${r.flags},${r.file.size},${r.file.lastModified},${r.fileId}\n`;
    if (length + line.length > MAX_CONTENT_CHARS) {
      parts.push('(truncated)\n');
      break;
    }
    parts.push(line);
    length += line.length;
  }
  return parts.join('');
}
