/**
 * What the simulated device puts into its backup's plists: Manifest.plist (§5.2) from its lockdown
 * values and apps, and the BackupKeyBag (§7 layout; unencrypted here, so its keys protect nothing).
 * The formats themselves (Status.plist, keybag TLVs, version strings) live in src/format.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { isPlistDict, type PlistDict, type PlistValue } from '../../protocol/plist';
import { encodeKeyBagRecord as tlv } from '../../format/keybag';
import { MANIFEST_VERSION, SYSTEM_DOMAINS_VERSION } from '../../format/manifest-plist';
import { wholeSeconds } from '../../format/status-plist';
import type { AppInfo } from '../content/plan';

export function newBackupUuid(): string {
  return randomUUID().toUpperCase();
}

/** Converts a loosely typed lockdown value into a plist value (undefined if it has no plist form). */
export function toPlistValue(v: unknown, depth = 0): PlistValue | undefined {
  if (depth > 16) return undefined;
  if (typeof v === 'string' || typeof v === 'boolean' || typeof v === 'bigint') return v;
  if (typeof v === 'number') return Number.isFinite(v) ? v : undefined;
  if (Buffer.isBuffer(v) || v instanceof Date) return v;
  if (Array.isArray(v)) {
    const out: PlistValue[] = [];
    for (const x of v) {
      const c = toPlistValue(x, depth + 1);
      if (c !== undefined) out.push(c);
    }
    return out;
  }
  if (typeof v === 'object' && v !== null) {
    const out: PlistDict = {};
    for (const [k, x] of Object.entries(v)) {
      const c = toPlistValue(x, depth + 1);
      if (c !== undefined) out[k] = c;
    }
    return out;
  }
  return undefined;
}

const LOCKDOWN_KEYS = [
  'BuildVersion',
  'DeviceName',
  'ProductType',
  'ProductVersion',
  'SerialNumber',
  'UniqueDeviceID',
];
const LOCKDOWN_DOMAINS = [
  'com.apple.Accessibility',
  'com.apple.mobile.data_sync',
  'com.apple.mobile.wireless_lockdown',
  'com.apple.mobile.iTunes.accessories',
];

export interface ManifestPlistInput {
  values: Record<string, unknown>;
  domain: (name: string) => Record<string, unknown>;
  apps: AppInfo[];
  keyBag: Buffer;
  wasPasscodeSet: boolean;
  date: Date;
  /** Encrypted backups: `keyBag` is the password keybag and this is the wrapped Manifest.db key. */
  manifestKey?: Buffer;
}

export function buildManifestPlist(m: ManifestPlistInput): PlistDict {
  const lockdown: PlistDict = {};
  for (const k of LOCKDOWN_KEYS) {
    const v = toPlistValue(m.values[k]);
    if (v !== undefined) lockdown[k] = v;
  }
  for (const d of LOCKDOWN_DOMAINS) {
    let v: PlistValue | undefined;
    try {
      v = toPlistValue(m.domain(d));
    } catch {
      v = undefined;
    }
    lockdown[d] = v !== undefined && isPlistDict(v) ? v : {};
  }
  const applications: PlistDict = {};
  for (const a of m.apps) {
    applications[a.CFBundleIdentifier] = {
      CFBundleIdentifier: a.CFBundleIdentifier,
      CFBundleVersion: a.CFBundleVersion,
      ContainerContentClass: 'Data/Application',
      Path: a.Path,
    };
  }
  return {
    Applications: applications,
    BackupKeyBag: m.keyBag,
    Date: wholeSeconds(m.date),
    IsEncrypted: m.manifestKey !== undefined,
    Lockdown: lockdown,
    ...(m.manifestKey !== undefined ? { ManifestKey: m.manifestKey } : {}),
    SystemDomainsVersion: SYSTEM_DOMAINS_VERSION,
    Version: MANIFEST_VERSION,
    WasPasscodeSet: m.wasPasscodeSet,
  };
}

/**
 * A backup keybag in the real TLV layout (§7): header records, then one record group per data
 * protection class. Unencrypted backups carry one too; its wrapped keys are random filler here.
 * The encrypted path will replace WPKY with RFC 3394-wrapped class keys derived from a password.
 */
export function buildUnencryptedKeyBag(): Buffer {
  const parts = [
    tlv('VERS', 3),
    tlv('TYPE', 1), // 1 = backup keybag
    tlv('UUID', randomBytes(16)),
    tlv('HMCK', randomBytes(40)),
    tlv('WRAP', 0),
    tlv('SALT', randomBytes(20)),
    tlv('ITER', 10_000),
  ];
  for (let cls = 1; cls <= 11; cls++) {
    parts.push(
      tlv('UUID', randomBytes(16)),
      tlv('CLAS', cls),
      tlv('WRAP', 0),
      tlv('KTYP', 0),
      tlv('WPKY', randomBytes(40)),
    );
  }
  return Buffer.concat(parts);
}
