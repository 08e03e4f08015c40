/**
 * Info.plist, the one file of a backup the host writes (reference §5.1, §10): device identity from
 * lockdownd, the user apps from installation_proxy, a few iTunes/iBooks files through AFC. Written
 * as XML (like libimobiledevice) to `<udid>/Info.plist`, by THE RULE (temp file + rename), before
 * the Backup request. Optional parts that fail are left out and reported, never fatal.
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { isMooringError } from '../util/errors';
import { encodeXmlPlist, setDictEntry } from '../protocol/plist';
import { isPlistDict, type PlistDict, type PlistValue } from '../protocol/plist/types';
import type { AfcClient } from '../services/afc';
import {
  INSTALLATION_PROXY_SERVICE_NAME,
  InstallationProxyClient,
} from '../services/installation-proxy';
import type { ServiceProvider } from '../lockdown/session';
import type { ValueReader } from '../lockdown/values';
import { writeFileAtomic } from './atomic-file';
import { PathConfiner } from './confine';
import { createDirectory } from './folder-ops';
import type { BackupTarget } from './target';

/** What iTunes calls itself when the device does not say (LIMD's fallback). */
export const DEFAULT_ITUNES_VERSION = '10.0.1';
/** Files copied into `iTunes Files` when present on the device (LIMD's list). */
export const ITUNES_FILE_NAMES: readonly string[] = [
  'ApertureAlbumPrefs',
  'IC-Info.sidb',
  'IC-Info.sidv',
  'PhotosFolderAlbums',
  'PhotosFolderName',
  'PhotosFolderPrefs',
  'VoiceMemos.plist',
  'iPhotoAlbumPrefs',
  'iTunesApplicationIDs',
  'iTunesPrefs',
  'iTunesPrefs.plist',
];
export const ITUNES_FILES_DIR = '/iTunes_Control/iTunes';
export const IBOOKS_DATA_PATH = '/Books/iBooksData2.plist';
/** Largest device file copied into Info.plist; bigger ones are left out. */
export const MAX_INFO_FILE_BYTES = 16 * 1024 * 1024;
/** App attributes installation_proxy is asked for. */
export const APP_ATTRIBUTES = ['CFBundleIdentifier', 'ApplicationSINF', 'iTunesMetadata'];

/** The lockdown part of a session this needs (a DeviceSession, or recorded values, has it). */
export type LockdownValues = Pick<ValueReader, 'getValue'>;

export interface InfoPlistMaterial {
  udid: string;
  /** The whole default lockdown domain. */
  values: PlistDict;
  itunesSettings: PlistDict;
  itunesVersion: string;
  apps: PlistDict[];
  itunesFiles: Record<string, Buffer>;
  ibooksData: Buffer | undefined;
  now: Date;
  guid: string;
}

/** Pure: the Info.plist dict from its material. */
export function buildInfoPlist(m: InfoPlistMaterial): PlistDict {
  const v = m.values;
  const str = (k: string): string | undefined => (typeof v[k] === 'string' ? v[k] : undefined);
  const applications: PlistDict = {};
  const installed: string[] = [];
  for (const app of m.apps) {
    const id = app.CFBundleIdentifier;
    if (typeof id !== 'string' || id.length === 0) continue;
    installed.push(id);
    const sinf = app.ApplicationSINF;
    const meta = app.iTunesMetadata;
    if (Buffer.isBuffer(sinf) && Buffer.isBuffer(meta)) {
      // The bundle id comes from the device: `__proto__` must stay a key, not a prototype.
      setDictEntry(applications, id, { ApplicationSINF: sinf, iTunesMetadata: meta });
    }
  }
  const info: PlistDict = {};
  const put = (key: string, value: PlistValue | undefined): void => {
    if (value !== undefined) info[key] = value;
  };
  put('Applications', applications);
  put('Build Version', str('BuildVersion'));
  put('Device Name', str('DeviceName'));
  put('Display Name', str('DeviceName'));
  put('GUID', m.guid);
  put('ICCID', str('IntegratedCircuitCardIdentity'));
  put('IMEI', str('InternationalMobileEquipmentIdentity'));
  put('Installed Applications', installed);
  put('Last Backup Date', m.now);
  put('MEID', str('MobileEquipmentIdentifier'));
  put('Phone Number', str('PhoneNumber'));
  put('Product Type', str('ProductType'));
  put('Product Version', str('ProductVersion'));
  put('Serial Number', str('SerialNumber'));
  put('Target Identifier', m.udid);
  put('Target Type', 'Device');
  put('Unique Identifier', m.udid.toUpperCase());
  if (m.ibooksData) put('iBooks Data 2', m.ibooksData);
  put('iTunes Files', { ...m.itunesFiles });
  put('iTunes Settings', m.itunesSettings);
  put('iTunes Version', m.itunesVersion);
  return info;
}

export interface GatherOptions {
  udid: string;
  lockdown: LockdownValues;
  services: ServiceProvider;
  /** The backup's AFC connection; without it the iTunes/iBooks files are left out. */
  afc?: AfcClient;
  timeoutMs?: number;
  now?: Date;
}

export interface GatheredInfo {
  info: PlistDict;
  /** Optional parts that could not be read (left out of Info.plist). */
  warnings: string[];
}

/** Reads everything Info.plist needs from the device. Only the default domain is mandatory. */
export async function gatherInfoPlist(o: GatherOptions): Promise<GatheredInfo> {
  const warnings: string[] = [];
  const optional = async <T>(what: string, fallback: T, f: () => Promise<T>): Promise<T> => {
    try {
      return await f();
    } catch (e) {
      // Only device/protocol failures are optional; a dead connection is not.
      if (isMooringError(e, 'CLOSED')) throw e;
      warnings.push(`${what}: ${e instanceof Error ? e.message : String(e)}`);
      return fallback;
    }
  };
  const values = await o.lockdown.getValue();
  const itunesSettings = await optional('com.apple.iTunes', {}, async () => {
    const d = await o.lockdown.getValue('com.apple.iTunes');
    return isPlistDict(d) ? d : {};
  });
  const itunesVersion = await optional('MinITunesVersion', DEFAULT_ITUNES_VERSION, async () => {
    const s = await o.lockdown.getValue('com.apple.mobile.iTunes', 'MinITunesVersion');
    return typeof s === 'string' && s.length > 0 ? s : DEFAULT_ITUNES_VERSION;
  });
  const apps = await optional('installation_proxy Browse', [] as PlistDict[], async () => {
    const ip = new InstallationProxyClient(
      await o.services.startService(INSTALLATION_PROXY_SERVICE_NAME, {
        ...(o.timeoutMs === undefined ? {} : { readTimeoutMs: o.timeoutMs }),
      }),
    );
    try {
      return await ip.browse({
        applicationType: 'User',
        returnAttributes: APP_ATTRIBUTES,
        ...(o.timeoutMs === undefined ? {} : { timeoutMs: o.timeoutMs }),
      });
    } finally {
      ip.close();
    }
  });
  const itunesFiles: Record<string, Buffer> = {};
  let ibooksData: Buffer | undefined;
  const afc = o.afc;
  if (afc) {
    for (const name of ITUNES_FILE_NAMES) {
      const data = await optional(`AFC ${name}`, undefined, () =>
        readIfPresent(afc, `${ITUNES_FILES_DIR}/${name}`),
      );
      if (data) itunesFiles[name] = data;
    }
    ibooksData = await optional('AFC iBooksData2.plist', undefined, () =>
      readIfPresent(afc, IBOOKS_DATA_PATH),
    );
  }
  const info = buildInfoPlist({
    udid: o.udid,
    values: isPlistDict(values) ? values : {},
    itunesSettings,
    itunesVersion,
    apps,
    itunesFiles,
    ibooksData,
    now: o.now ?? new Date(),
    guid: randomBytes(16).toString('hex').toUpperCase(),
  });
  return { info, warnings };
}

/** A regular file's bytes, or undefined when absent, not a file, or too big. */
async function readIfPresent(afc: AfcClient, p: string): Promise<Buffer | undefined> {
  const st = await afc.getFileInfo(p);
  if (!st || st.type !== 'file' || st.size > MAX_INFO_FILE_BYTES) return undefined;
  return afc.readFile(p, { maxBytes: MAX_INFO_FILE_BYTES });
}

/** Writes `<root>/<udid>/Info.plist` as XML, creating `<udid>/` if needed, by THE RULE. */
export async function writeInfoPlist(target: BackupTarget, info: PlistDict): Promise<string> {
  const confiner = new PathConfiner(target);
  await createDirectory(target.root, path.join(target.root, target.udid));
  const file = await confiner.resolve(`${target.udid}/Info.plist`);
  await writeFileAtomic(file, encodeXmlPlist(info));
  return file;
}
