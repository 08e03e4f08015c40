/**
 * Who the simulated device is: UDID, serial numbers, MAC addresses, model, iOS version and the
 * device RSA key behind `DevicePublicKey`. Values are derived deterministically from a seed (or
 * from a given UDID), so two simulators started the same way look alike; the result is persisted
 * in the state directory so a restart is the same device (same UDID, same key, same pairings).
 */
import { createHash, randomInt } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { generateDeviceKeyPair } from '../pairing/certificates';
import { MooringError } from '../util/errors';

export interface DeviceIdentity {
  /** lockdown UniqueDeviceID, modern "8-16" form, e.g. 00008120-001A2B3C4D5E6F70. */
  udid: string;
  /** What usbmuxd reports as SerialNumber: the UDID without its dash (24 chars). */
  usbSerial: string;
  /** Apple serial number, e.g. F2LXXXXXXXXX. */
  serialNumber: string;
  /** ECID; below 2^53 so it stays an exact JS number. */
  uniqueChipID: number;
  /** Lower-case, colon-separated; also the Bonjour instance prefix and the pair record's WiFiMACAddress. */
  wifiMac: string;
  bluetoothMac: string;
  deviceName: string;
  productType: string;
  hardwareModel: string;
  chipID: number;
  productVersion: string;
  buildVersion: string;
  /** Opaque bytes handed out as EscrowBag on Pair (base64 in the JSON file). */
  escrowBag: string;
  /** PEM, PKCS#1 `RSA PUBLIC KEY`, as lockdownd publishes DevicePublicKey. */
  devicePublicKeyPem: string;
  /** PEM, PKCS#8. */
  devicePrivateKeyPem: string;
}

export interface IdentityOptions {
  udid?: string;
  name?: string;
  ios?: string;
  seed?: number;
}

export const IDENTITY_FILE = 'identity.json';
export const DEFAULT_IOS_VERSION = '17.5';
export const DEFAULT_DEVICE_NAME = 'Mooring Test iPhone';

/** The model we impersonate: an iPhone 14 Pro (A16, chip id 0x8120). */
const PRODUCT_TYPE = 'iPhone15,2';
const HARDWARE_MODEL = 'D73AP';
const CHIP_ID = 0x8120;

/** Real build numbers for the versions tests are likely to ask for. */
const KNOWN_BUILDS: Record<string, string> = {
  '15.7': '19H12',
  '16.0': '20A362',
  '16.1': '20B82',
  '16.6': '20G75',
  '16.7': '20H19',
  '17.0': '21A329',
  '17.1': '21B80',
  '17.2': '21C62',
  '17.3': '21D50',
  '17.4': '21E219',
  '17.5': '21F79',
  '17.6': '21G80',
  '18.0': '22A3354',
  '18.1': '22B83',
  '18.2': '22C152',
  '18.3': '22D63',
  '18.4': '22E240',
  '18.5': '22F76',
  '18.6': '22G86',
};

const UDID_8_16 = /^[0-9A-F]{8}-[0-9A-F]{16}$/;
const UDID_LEGACY = /^[0-9a-f]{40}$/;
const IOS_VERSION = /^(\d{1,2})\.(\d{1,2})(?:\.(\d{1,2}))?$/;

/** Validates a --udid value; returns the canonical spelling or throws USAGE. */
export function normaliseUdid(udid: string): string {
  const up = udid.toUpperCase();
  if (UDID_8_16.test(up)) return up;
  if (/^[0-9A-F]{24}$/.test(up)) return `${up.slice(0, 8)}-${up.slice(8)}`;
  if (UDID_LEGACY.test(udid.toLowerCase())) return udid.toLowerCase();
  throw new MooringError(
    'USAGE',
    `--udid: "${udid}" is not a UDID (expected 00008120-001A2B3C4D5E6F70 or 40 hex digits)`,
  );
}

/** Validates an iOS version (--ios) and returns the matching (real or plausible) build number. */
export function buildVersionFor(version: string): string {
  const m = IOS_VERSION.exec(version);
  if (!m) throw new MooringError('USAGE', `--ios: "${version}" is not an iOS version like 17.5`);
  const major = Number(m[1]);
  const minor = Number(m[2]);
  const known = KNOWN_BUILDS[`${major}.${minor}`];
  if (known && !m[3]) return known;
  // Apple's scheme: build major = iOS major + 4, letter = minor release; the number is made up.
  const letter = String.fromCharCode(65 + Math.min(minor, 25));
  return `${major + 4}${letter}${m[3] ? 100 + Number(m[3]) : 100}`;
}

/** Counter-mode SHA-256 byte source: deterministic "randomness" from a seed string. */
class SeededBytes {
  private counter = 0;
  private pool = Buffer.alloc(0);
  constructor(private readonly seed: string) {}
  take(n: number): Buffer {
    while (this.pool.length < n) {
      const block = createHash('sha256').update(`${this.seed}/${this.counter++}`).digest();
      this.pool = Buffer.concat([this.pool, block]);
    }
    const out = this.pool.subarray(0, n);
    this.pool = this.pool.subarray(n);
    return out;
  }
}

function macFrom(bytes: Buffer): string {
  return [...bytes].map((b) => b.toString(16).padStart(2, '0')).join(':');
}

const SERIAL_ALPHABET = 'CDFGHJKLMNPQRTVWXY0123456789';

/** Everything except the RSA key, derived from the seed/UDID. Pure, so it can be tested. */
export function deriveIdentityValues(
  opts: IdentityOptions,
): Omit<DeviceIdentity, 'devicePublicKeyPem' | 'devicePrivateKeyPem'> {
  const seedText =
    opts.udid !== undefined ? `udid:${normaliseUdid(opts.udid)}` : `seed:${opts.seed ?? 0}`;
  const rng = new SeededBytes(seedText);
  let udid: string;
  let uniqueChipID: number;
  if (opts.udid !== undefined) {
    udid = normaliseUdid(opts.udid);
    const ecidHex = udid.includes('-') ? udid.slice(9) : udid.slice(-13);
    // Keep the ECID exact as a JS number: drop the top bits beyond 2^53.
    uniqueChipID = Number(BigInt(`0x${ecidHex}`) & ((1n << 53n) - 1n));
  } else {
    const ecid = rng.take(7);
    ecid[0] = ecid[0]! & 0x1f; // 53 bits at most
    uniqueChipID = Number(BigInt(`0x${ecid.toString('hex')}`));
    const cpid = CHIP_ID.toString(16).toUpperCase().padStart(8, '0');
    udid = `${cpid}-${uniqueChipID.toString(16).toUpperCase().padStart(16, '0')}`;
  }
  const serialBytes = rng.take(9);
  const serialNumber =
    'F2L' + [...serialBytes].map((b) => SERIAL_ALPHABET[b % SERIAL_ALPHABET.length]).join('');
  const mac = rng.take(6);
  mac[0] = mac[0]! & 0xfc; // unicast, globally administered, like a real interface
  const bt = Buffer.from(mac);
  bt[5] = (bt[5]! + 1) & 0xff;
  const productVersion = opts.ios ?? DEFAULT_IOS_VERSION;
  return {
    udid,
    usbSerial: udid.replace('-', ''),
    serialNumber,
    uniqueChipID,
    wifiMac: macFrom(mac),
    bluetoothMac: macFrom(bt),
    deviceName: opts.name ?? DEFAULT_DEVICE_NAME,
    productType: PRODUCT_TYPE,
    hardwareModel: HARDWARE_MODEL,
    chipID: CHIP_ID,
    productVersion,
    buildVersion: buildVersionFor(productVersion),
    escrowBag: rng.take(48).toString('base64'),
  };
}

function generateDeviceKey(): { devicePublicKeyPem: string; devicePrivateKeyPem: string } {
  const pair = generateDeviceKeyPair();
  return { devicePublicKeyPem: pair.publicKeyPkcs1Pem, devicePrivateKeyPem: pair.privateKeyPem };
}

function isIdentity(v: unknown): v is DeviceIdentity {
  if (typeof v !== 'object' || v === null) return false;
  const o = v as Record<string, unknown>;
  return (
    typeof o.udid === 'string' &&
    typeof o.usbSerial === 'string' &&
    typeof o.wifiMac === 'string' &&
    typeof o.devicePublicKeyPem === 'string' &&
    typeof o.devicePrivateKeyPem === 'string' &&
    typeof o.productVersion === 'string' &&
    typeof o.deviceName === 'string'
  );
}

/**
 * Loads the identity persisted in `stateDir`, or creates (and persists) one. On a restart,
 * --name and --ios may change the device's name and version (as a rename or an update would);
 * a different --udid is refused, since the state directory *is* that other device.
 */
export async function loadOrCreateIdentity(
  stateDir: string,
  opts: IdentityOptions,
): Promise<DeviceIdentity> {
  const file = path.join(stateDir, IDENTITY_FILE);
  let text: string | undefined;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new MooringError('IO', `cannot read ${file}: ${(e as Error).message}`, { cause: e });
    }
  }
  if (text !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (e) {
      throw new MooringError('MALFORMED', `${file} is not valid JSON`, { cause: e });
    }
    if (!isIdentity(parsed)) throw new MooringError('MALFORMED', `${file} lacks identity fields`);
    const id = { ...parsed };
    if (opts.udid !== undefined && normaliseUdid(opts.udid) !== id.udid) {
      throw new MooringError(
        'USAGE',
        `--udid ${opts.udid} does not match the device in ${stateDir} (${id.udid}); use another --state`,
      );
    }
    let changed = false;
    if (opts.name !== undefined && opts.name !== id.deviceName) {
      id.deviceName = opts.name;
      changed = true;
    }
    if (opts.ios !== undefined && opts.ios !== id.productVersion) {
      id.productVersion = opts.ios;
      id.buildVersion = buildVersionFor(opts.ios);
      changed = true;
    }
    if (changed) await writeIdentity(file, id);
    return id;
  }
  // Without --seed or --udid, each new state directory is a different device.
  const seeded =
    opts.seed === undefined && opts.udid === undefined
      ? { ...opts, seed: randomInt(2 ** 47) }
      : opts;
  const id: DeviceIdentity = { ...deriveIdentityValues(seeded), ...generateDeviceKey() };
  await writeIdentity(file, id);
  return id;
}

async function writeIdentity(file: string, id: DeviceIdentity): Promise<void> {
  const tmp = `${file}.tmp`;
  await fsp.writeFile(tmp, JSON.stringify(id, null, 2) + '\n', { mode: 0o600 });
  await fsp.rename(tmp, file);
}
