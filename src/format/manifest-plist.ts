/**
 * Manifest.plist (reference §5.2): written by the device; says whether the backup is encrypted and
 * which device it is of.
 */
import {
  decodePlistDict,
  FieldReader,
  MAX_BACKUP_PLIST_BYTES,
  readBoundedFile,
} from './plist-file';
import type { PlistDict } from '../protocol/plist';

/** Manifest.plist `Version` / `SystemDomainsVersion` (iOS 17-era values; hosts only store them). */
export const MANIFEST_VERSION = '10.0';
export const SYSTEM_DOMAINS_VERSION = '24.0';

export interface ManifestPlistInfo {
  isEncrypted: boolean;
  /** Lockdown.UniqueDeviceID. */
  udid?: string;
  deviceName?: string;
  productVersion?: string;
  date?: Date;
  version?: string;
  wasPasscodeSet?: boolean;
  /** Encrypted backups of iOS ≥ 10.2 carry the key that protects Manifest.db. */
  hasManifestKey: boolean;
  raw: PlistDict;
}

export function decodeManifestPlist(buf: Buffer, file?: string): ManifestPlistInfo {
  const d = decodePlistDict(buf, 'Manifest.plist', file);
  const f = new FieldReader(d, 'Manifest.plist', file);
  const out: ManifestPlistInfo = {
    isEncrypted: f.boolean('IsEncrypted') ?? false,
    hasManifestKey: d.ManifestKey !== undefined,
    raw: d,
  };
  const lockdown = f.subDict('Lockdown');
  if (lockdown) {
    const l = new FieldReader(lockdown, 'Manifest.plist Lockdown', file);
    const udid = l.string('UniqueDeviceID');
    if (udid !== undefined) out.udid = udid;
    const name = l.string('DeviceName');
    if (name !== undefined) out.deviceName = name;
    const pv = l.string('ProductVersion');
    if (pv !== undefined) out.productVersion = pv;
  }
  const date = f.date('Date');
  if (date !== undefined) out.date = date;
  const version = f.string('Version');
  if (version !== undefined) out.version = version;
  const pass = f.boolean('WasPasscodeSet');
  if (pass !== undefined) out.wasPasscodeSet = pass;
  return out;
}

export async function readManifestPlist(file: string): Promise<ManifestPlistInfo> {
  return decodeManifestPlist(
    await readBoundedFile(file, MAX_BACKUP_PLIST_BYTES, 'Manifest.plist'),
    file,
  );
}
