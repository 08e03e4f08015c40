/**
 * Where Mooring keeps the backup passwords of devices whose backups it encrypts. A password is
 * what makes an encrypted backup worth anything, so Mooring remembers it (the user chooses where:
 * a 0600 file, or the desktop's keychain through Electron's safeStorage) and keeps the older ones
 * too: snapshots made before a password change or an off/on cycle still open with THEIR password,
 * found by the keybag they were made with. Secrets are never logged and never put in argv or URLs.
 */
import { MooringError } from '../util/errors';
import { isUdid, UDID_EXAMPLE } from '../util/udid';

/** Longest password we store (iOS accepts long passphrases; this only bounds input). */
export const MAX_PASSWORD_CHARS = 1024;
/** Earlier passwords kept per device (one per keybag the device used). */
export const MAX_PASSWORD_ERAS = 32;
/** A sealed record larger than this is refused as damaged. */
export const MAX_SECRET_RECORD_BYTES = 256 * 1024;

/** A password that opened the backups made with one keybag (its fingerprint). */
export interface PasswordEra {
  /** Hex fingerprint of the keybag (its UUID, or a hash of its bytes when it has none). */
  keyBagId: string;
  password: string;
  /** ISO times: first and last backup of this keybag the password opened. */
  firstSeen: string;
  lastSeen: string;
}

export interface SecretStore {
  /** 'file' (a 0600 file per device) or 'electron-safe-storage' (the OS keychain). */
  readonly kind: 'file' | 'electron-safe-storage';
  /** Where the secrets live (for messages and the recovery sheet). */
  readonly location: string;
  /** The device's current backup password, if Mooring knows it. */
  get(udid: string): Promise<string | undefined>;
  set(udid: string, password: string): Promise<void>;
  /** Forgets the current password only: older snapshots still need theirs (see forgetDevice). */
  delete(udid: string): Promise<void>;
  /** Passwords known to open earlier keybags, most recently used first. */
  eras(udid: string): Promise<PasswordEra[]>;
  /** Records that `password` opened a backup made with keybag `keyBagId`. */
  rememberEra(udid: string, keyBagId: string, password: string, at?: Date): Promise<void>;
  /** Removes everything known of the device. */
  forgetDevice(udid: string): Promise<void>;
}

/** What one device's record holds (serialised as JSON, then sealed by the store). */
export interface DeviceSecrets {
  v: 1;
  udid: string;
  current?: { password: string; setAt: string };
  eras: PasswordEra[];
}

export function checkUdidForSecrets(udid: string): string {
  if (typeof udid !== 'string' || !isUdid(udid)) {
    throw new MooringError('USAGE', `not a UDID (expected ${UDID_EXAMPLE} or 40 hex digits)`);
  }
  return udid.toUpperCase();
}

/** Refuses passwords a device would not take (empty, oversized, NUL). Never echoes the value. */
export function checkPassword(password: string, what = 'the backup password'): string {
  if (typeof password !== 'string' || password.length === 0) {
    throw new MooringError('USAGE', `${what} is empty`);
  }
  if (password.length > MAX_PASSWORD_CHARS) {
    throw new MooringError('USAGE', `${what} is longer than ${MAX_PASSWORD_CHARS} characters`);
  }
  if (password.includes('\u0000')) {
    throw new MooringError('USAGE', `${what} contains a NUL character`);
  }
  return password;
}

const KEYBAG_ID = /^[0-9a-f]{8,64}$/;

/** Parses a record; anything unexpected is MALFORMED (and says which device, never a secret). */
export function decodeDeviceSecrets(text: string, udid: string): DeviceSecrets {
  const bad = (why: string): MooringError =>
    new MooringError('MALFORMED', `the stored backup passwords of ${udid} are damaged (${why})`);
  let o: unknown;
  try {
    o = JSON.parse(text);
  } catch {
    throw bad('not JSON');
  }
  if (typeof o !== 'object' || o === null) throw bad('not an object');
  const r = o as Record<string, unknown>;
  if (r.v !== 1 || typeof r.udid !== 'string' || !Array.isArray(r.eras)) throw bad('wrong shape');
  if (r.udid.toUpperCase() !== udid) throw bad('it belongs to another device');
  const out: DeviceSecrets = { v: 1, udid, eras: [] };
  const cur = r.current as Record<string, unknown> | undefined;
  if (cur !== undefined) {
    if (typeof cur !== 'object' || cur === null) throw bad('current is not an object');
    if (typeof cur.password !== 'string' || typeof cur.setAt !== 'string') throw bad('current');
    out.current = { password: cur.password, setAt: cur.setAt };
  }
  for (const e of r.eras.slice(0, MAX_PASSWORD_ERAS) as unknown[]) {
    const x = e as Record<string, unknown> | null;
    if (
      typeof x !== 'object' ||
      x === null ||
      typeof x.keyBagId !== 'string' ||
      !KEYBAG_ID.test(x.keyBagId) ||
      typeof x.password !== 'string' ||
      typeof x.firstSeen !== 'string' ||
      typeof x.lastSeen !== 'string'
    ) {
      throw bad('an earlier password entry');
    }
    out.eras.push({
      keyBagId: x.keyBagId,
      password: x.password,
      firstSeen: x.firstSeen,
      lastSeen: x.lastSeen,
    });
  }
  return out;
}

/** Adds or refreshes an era, newest first, bounded. */
export function withEra(
  s: DeviceSecrets,
  keyBagId: string,
  password: string,
  at: Date,
): DeviceSecrets {
  if (!KEYBAG_ID.test(keyBagId)) {
    throw new MooringError('USAGE', 'a keybag fingerprint is lower-case hex (8 to 64 digits)');
  }
  const now = at.toISOString();
  const old = s.eras.find((e) => e.keyBagId === keyBagId && e.password === password);
  const others = s.eras.filter((e) => e !== old && e.keyBagId !== keyBagId);
  const era: PasswordEra = { keyBagId, password, firstSeen: old?.firstSeen ?? now, lastSeen: now };
  return { ...s, eras: [era, ...others].slice(0, MAX_PASSWORD_ERAS) };
}
