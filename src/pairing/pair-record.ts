/**
 * Pair records (reference §2.2): the per-device plist a host stores after pairing, holding the
 * certificates and keys that open every later TLS session, the HostID the device remembers,
 * and the EscrowBag that lets backups run while the device is locked.
 *
 * A record comes from a file or from usbmuxd, so it is checked on the way in: every required key
 * present with the right type, every certificate and key readable, and each private key the one
 * its certificate names. Whatever is wrong, the fix is the same (pair again), and the message
 * says so.
 */
import { X509Certificate, createPrivateKey, randomUUID } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { MooringError } from '../util/errors';
import { decodePlist, encodeXmlPlist, isPlistDict } from '../protocol/plist';
import type { PlistDict, PlistValue } from '../protocol/plist';
import type { PairingCertificates } from './certificates';

/** A pair record is about 10 KiB; anything far bigger is not one. */
export const MAX_PAIR_RECORD_BYTES = 1 << 20;
/** Pair records are flat dicts; a little room for writers that add nested extras. */
const PAIR_RECORD_PLIST_LIMITS = { maxDepth: 8, maxObjects: 10_000 };

export interface PairRecord {
  DeviceCertificate: Buffer; // PEM
  HostCertificate: Buffer; // PEM
  HostPrivateKey: Buffer; // PEM (PKCS#8 from us; PKCS#1 accepted)
  RootCertificate: Buffer; // PEM
  RootPrivateKey: Buffer; // PEM
  HostID: string;
  SystemBUID: string;
  WiFiMACAddress?: string;
  EscrowBag?: Buffer;
  UDID?: string;
}

type DataKey = 'DeviceCertificate' | 'HostCertificate' | 'HostPrivateKey' | 'RootCertificate';
const CERTIFICATE_KEYS = ['DeviceCertificate', 'HostCertificate', 'RootCertificate'] as const;

/**
 * Parses a pair record (XML or binary plist). `udid` names the device in error messages; when
 * omitted the record's own UDID key (if any) is used.
 */
export function parsePairRecord(bytes: Buffer, udid?: string): PairRecord {
  let who = udid ?? 'this device';
  const fail = (what: string, cause?: unknown): never => {
    throw new MooringError('PAIRING', `pair record for ${who} ${what}: pair the device again`, {
      cause,
    });
  };
  if (bytes.length > MAX_PAIR_RECORD_BYTES) {
    fail(`is ${bytes.length} bytes, more than the ${MAX_PAIR_RECORD_BYTES}-byte limit`);
  }
  let root: PlistValue;
  try {
    root = decodePlist(bytes, PAIR_RECORD_PLIST_LIMITS);
  } catch (e) {
    return fail('is not a readable property list', e);
  }
  if (!isPlistDict(root)) return fail('is not a dictionary');
  const dict: PlistDict = root;
  if (udid === undefined && typeof dict.UDID === 'string') who = dict.UDID;

  const typeName = (v: PlistValue): string =>
    Buffer.isBuffer(v)
      ? 'data'
      : v instanceof Date
        ? 'date'
        : Array.isArray(v)
          ? 'array'
          : isPlistDict(v)
            ? 'dict'
            : typeof v;
  const get = <T extends PlistValue>(
    key: string,
    want: 'data' | 'string',
    required: boolean,
  ): T | undefined => {
    const v = dict[key];
    if (v === undefined) return required ? fail(`is missing ${key}`) : undefined;
    const ok = want === 'data' ? Buffer.isBuffer(v) : typeof v === 'string';
    if (!ok) fail(`has ${key} of type ${typeName(v)} (expected ${want})`);
    return v as T;
  };
  const data = (key: DataKey | 'RootPrivateKey'): Buffer =>
    get<Buffer>(key, 'data', true) as Buffer;
  const text = (key: string): string => {
    const s = get<string>(key, 'string', true) as string;
    if (s.trim() === '') fail(`has an empty ${key}`);
    return s;
  };

  const record: PairRecord = {
    DeviceCertificate: data('DeviceCertificate'),
    HostCertificate: data('HostCertificate'),
    HostPrivateKey: data('HostPrivateKey'),
    RootCertificate: data('RootCertificate'),
    RootPrivateKey: data('RootPrivateKey'),
    HostID: text('HostID'),
    SystemBUID: text('SystemBUID'),
  };
  const wifi = get<string>('WiFiMACAddress', 'string', false);
  if (wifi !== undefined) record.WiFiMACAddress = wifi;
  const escrow = get<Buffer>('EscrowBag', 'data', false);
  if (escrow !== undefined) record.EscrowBag = escrow;
  const recordUdid = get<string>('UDID', 'string', false);
  if (recordUdid !== undefined) record.UDID = recordUdid;

  // Check the crypto material now, so a damaged record fails here with a clear message rather
  // than later as an opaque TLS error.
  const certs = new Map<string, X509Certificate>();
  for (const key of CERTIFICATE_KEYS) {
    try {
      certs.set(key, new X509Certificate(record[key]));
    } catch (e) {
      fail(`has an unreadable ${key}`, e);
    }
  }
  const checkKey = (keyName: 'HostPrivateKey' | 'RootPrivateKey', certName: DataKey): void => {
    let key: KeyObject;
    try {
      key = createPrivateKey(record[keyName]);
    } catch (e) {
      return fail(`has an unreadable ${keyName}`, e);
    }
    if (!(certs.get(certName) as X509Certificate).checkPrivateKey(key)) {
      fail(`has a ${keyName} that does not match its ${certName}`);
    }
  };
  checkKey('HostPrivateKey', 'HostCertificate');
  checkKey('RootPrivateKey', 'RootCertificate');
  return record;
}

/**
 * The record as a plist dict, keys in the order libimobiledevice writes them (its generator adds
 * the certificates and keys, then SystemBUID and HostID; pairing adds EscrowBag and
 * WiFiMACAddress). UDID, which libimobiledevice never writes, goes last.
 */
export function pairRecordToPlist(r: PairRecord): PlistDict {
  const d: PlistDict = {
    DeviceCertificate: r.DeviceCertificate,
    HostPrivateKey: r.HostPrivateKey,
    HostCertificate: r.HostCertificate,
    RootPrivateKey: r.RootPrivateKey,
    RootCertificate: r.RootCertificate,
    SystemBUID: r.SystemBUID,
    HostID: r.HostID,
  };
  if (r.EscrowBag !== undefined) d.EscrowBag = r.EscrowBag;
  if (r.WiFiMACAddress !== undefined) d.WiFiMACAddress = r.WiFiMACAddress;
  if (r.UDID !== undefined) d.UDID = r.UDID;
  return d;
}

/** The record as an XML plist, the form usbmuxd and libimobiledevice store on disk. */
export function serializePairRecord(r: PairRecord): Buffer {
  return encodeXmlPlist(pairRecordToPlist(r));
}

export interface PairRecordInput {
  certificates: PairingCertificates;
  hostId: string;
  systemBuid: string;
  /** The device's WiFiAddress, read before Pair (reference §2.4 step 3). */
  wifiMacAddress?: string;
  /** From the device's Pair reply. */
  escrowBag?: Buffer;
  udid?: string;
}

/** Assembles the record a host stores after a successful Pair. */
export function pairRecordForDevice(input: PairRecordInput): PairRecord {
  const c = input.certificates;
  const record: PairRecord = {
    DeviceCertificate: Buffer.from(c.deviceCertPem),
    HostCertificate: Buffer.from(c.hostCertPem),
    HostPrivateKey: Buffer.from(c.hostKeyPem),
    RootCertificate: Buffer.from(c.rootCertPem),
    RootPrivateKey: Buffer.from(c.rootKeyPem),
    HostID: input.hostId,
    SystemBUID: input.systemBuid,
  };
  if (input.wifiMacAddress !== undefined) record.WiFiMACAddress = input.wifiMacAddress;
  if (input.escrowBag !== undefined) record.EscrowBag = input.escrowBag;
  if (input.udid !== undefined) record.UDID = input.udid;
  return record;
}

/** A fresh HostID: a random UUID in upper case, as libimobiledevice generates it. */
export function newHostId(): string {
  return randomUUID().toUpperCase();
}

/**
 * The `PairRecord` dict of a lockdownd Pair/ValidatePair/Unpair request: the public half only.
 * Private keys never leave the host (libimobiledevice strips them the same way).
 */
export function pairRequestRecord(r: PairRecord): PlistDict {
  return {
    DeviceCertificate: r.DeviceCertificate,
    HostCertificate: r.HostCertificate,
    RootCertificate: r.RootCertificate,
    SystemBUID: r.SystemBUID,
    HostID: r.HostID,
  };
}
