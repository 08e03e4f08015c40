/**
 * Info.plist (reference §5.1): written by the host before the Backup request, from lockdown values
 * and installation_proxy's app list. Readers use it to tell which device a backup belongs to.
 */
import type { PlistDict } from '../protocol/plist';
import {
  decodePlistDict,
  FieldReader,
  MAX_BACKUP_PLIST_BYTES,
  readBoundedFile,
} from './plist-file';

export interface InfoPlistInfo {
  /** `Target Identifier`: the device's UDID; required. */
  targetIdentifier: string;
  uniqueIdentifier?: string;
  deviceName?: string;
  displayName?: string;
  productType?: string;
  productVersion?: string;
  buildVersion?: string;
  serialNumber?: string;
  lastBackupDate?: Date;
  raw: PlistDict;
}

export function decodeInfoPlist(buf: Buffer, file?: string): InfoPlistInfo {
  const d = decodePlistDict(buf, 'Info.plist', file);
  const f = new FieldReader(d, 'Info.plist', file);
  const out: InfoPlistInfo = { targetIdentifier: f.requiredString('Target Identifier'), raw: d };
  const pairs: Array<[keyof InfoPlistInfo, string]> = [
    ['uniqueIdentifier', 'Unique Identifier'],
    ['deviceName', 'Device Name'],
    ['displayName', 'Display Name'],
    ['productType', 'Product Type'],
    ['productVersion', 'Product Version'],
    ['buildVersion', 'Build Version'],
    ['serialNumber', 'Serial Number'],
  ];
  for (const [prop, key] of pairs) {
    const v = f.string(key);
    if (v !== undefined) (out as unknown as Record<string, string>)[prop] = v;
  }
  const last = f.date('Last Backup Date');
  if (last !== undefined) out.lastBackupDate = last;
  return out;
}

export async function readInfoPlist(file: string): Promise<InfoPlistInfo> {
  return decodeInfoPlist(await readBoundedFile(file, MAX_BACKUP_PLIST_BYTES, 'Info.plist'), file);
}
