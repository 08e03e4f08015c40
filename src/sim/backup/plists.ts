/**
 * The device-written property lists of a backup: Status.plist (§5.4), Manifest.plist (§5.2) and
 * the BackupKeyBag it carries (§7 layout; unencrypted here, so its keys protect nothing).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import {
  encodeBinaryPlist,
  isPlistDict,
  type PlistDict,
  type PlistValue,
} from '../../protocol/plist';
import type { AppInfo } from '../content/plan';

export type SnapshotState = 'uploading' | 'moving' | 'removing' | 'finished';

export interface StatusPlist {
  uuid: string;
  isFullBackup: boolean;
  snapshotState: SnapshotState;
  date: Date;
}

/** Status.plist `Version` as PMD3 and NETI write it (reference §9 item 5). */
export const STATUS_PLIST_VERSION = '3.3';
/** Manifest.plist `Version` / `SystemDomainsVersion` (iOS 17-era values; hosts only store them). */
export const MANIFEST_VERSION = '10.0';
export const SYSTEM_DOMAINS_VERSION = '24.0';

export function newBackupUuid(): string {
  return randomUUID().toUpperCase();
}

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

function wholeSeconds(d: Date): Date {
  return new Date(Math.floor(d.getTime() / 1000) * 1000);
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
    IsEncrypted: false,
    Lockdown: lockdown,
    SystemDomainsVersion: SYSTEM_DOMAINS_VERSION,
    Version: MANIFEST_VERSION,
    WasPasscodeSet: m.wasPasscodeSet,
  };
}

/** One keybag TLV record: 4-byte ASCII tag, u32 BE length, value. */
function tlv(tag: string, value: Buffer | number): Buffer {
  const v = typeof value === 'number' ? u32(value) : value;
  const head = Buffer.alloc(8);
  head.write(tag, 0, 4, 'latin1');
  head.writeUInt32BE(v.length, 4);
  return Buffer.concat([head, v]);
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0, 0);
  return b;
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

/** Parses keybag TLVs (used by tests and, later, by the encrypted path). Bounded by the input. */
export function parseKeyBag(buf: Buffer): Array<{ tag: string; value: Buffer }> {
  const out: Array<{ tag: string; value: Buffer }> = [];
  let off = 0;
  while (off + 8 <= buf.length) {
    const tag = buf.toString('latin1', off, off + 4);
    const len = buf.readUInt32BE(off + 4);
    if (off + 8 + len > buf.length)
      throw new RangeError(`keybag record ${tag} overruns the buffer`);
    out.push({ tag, value: buf.subarray(off + 8, off + 8 + len) });
    off += 8 + len;
  }
  if (off !== buf.length) throw new RangeError('keybag has trailing bytes');
  return out;
}
