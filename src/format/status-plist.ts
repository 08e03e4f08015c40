/**
 * Status.plist (reference §5.4): written by the device at each phase of a backup; a backup is
 * complete only when its SnapshotState is "finished".
 */
import { encodeBinaryPlist } from '../protocol/plist';
import { decodePlistDict, FieldReader, readBoundedFile } from './plist-file';

export type SnapshotState = 'uploading' | 'moving' | 'removing' | 'finished';

export interface StatusPlist {
  uuid: string;
  isFullBackup: boolean;
  snapshotState: SnapshotState;
  date: Date;
}

/** What a host reads back: the state is required, the rest is as the writer left it. */
export interface StatusPlistInfo {
  /** Usually a SnapshotState; kept as written so a reader can report an unknown one. */
  snapshotState: string;
  uuid?: string;
  isFullBackup?: boolean;
  date?: Date;
  backupState?: string;
  version?: string;
}

/** Status.plist `Version` as PMD3 and NETI write it (reference §9 item 5). */
export const STATUS_PLIST_VERSION = '3.3';
/** Status.plist is a handful of keys; anything large is not one. */
export const MAX_STATUS_PLIST_BYTES = 64 * 1024;

export function encodeStatusPlist(s: StatusPlist): Buffer {
  return encodeBinaryPlist({
    BackupState: 'new',
    Date: wholeSeconds(s.date),
    IsFullBackup: s.isFullBackup,
    SnapshotState: s.snapshotState,
    UUID: s.uuid,
    Version: STATUS_PLIST_VERSION,
  });
}

export function wholeSeconds(d: Date): Date {
  return new Date(Math.floor(d.getTime() / 1000) * 1000);
}

/** Decodes Status.plist bytes; MALFORMED (naming `file` when given) when damaged. */
export function decodeStatusPlist(buf: Buffer, file?: string): StatusPlistInfo {
  const d = decodePlistDict(buf, 'Status.plist', file);
  const f = new FieldReader(d, 'Status.plist', file);
  const out: StatusPlistInfo = { snapshotState: f.requiredString('SnapshotState') };
  const uuid = f.string('UUID');
  if (uuid !== undefined) out.uuid = uuid;
  const full = f.boolean('IsFullBackup');
  if (full !== undefined) out.isFullBackup = full;
  const date = f.date('Date');
  if (date !== undefined) out.date = date;
  const state = f.string('BackupState');
  if (state !== undefined) out.backupState = state;
  const version = f.string('Version');
  if (version !== undefined) out.version = version;
  return out;
}

export async function readStatusPlist(file: string): Promise<StatusPlistInfo> {
  return decodeStatusPlist(
    await readBoundedFile(file, MAX_STATUS_PLIST_BYTES, 'Status.plist'),
    file,
  );
}
