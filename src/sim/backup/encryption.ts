/**
 * The simulated device's backup encryption: the password-protected BackupKeyBag and its unlocked
 * class keys, persisted in the state directory (0600) so a restarted simulator keeps encrypting
 * without the password, as a real device keeps its keybag. Per-file keys are derived from a
 * per-keybag secret and the file's identity + version, so an incremental backup's Manifest.db
 * names the same key for a payload uploaded by an earlier backup of the same keybag.
 */
import crypto from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import {
  IOS_DPIC,
  createBackupKeyBagAsync,
  keyBagUuid,
  unlockBackupKeyBagAsync,
  type KeyBagOptions,
  type UnlockedKeyBag,
} from '../../format/encryption';
import { isMooringError } from '../../util/errors';
import { BackupFailure, MbError } from './errors';

/** Longest backup password the device accepts (iOS has no documented limit; keep it bounded). */
export const MAX_BACKUP_PASSWORD_CHARS = 1024;
/** Protection class of ManifestKey on real devices. */
export const MANIFEST_KEY_CLASS = 4;

export interface SimEncryptionKeys {
  keyBag: Buffer;
  unlocked: UnlockedKeyBag;
  /** Secret for deterministic per-file keys (never leaves the device). */
  fileKeySecret: Buffer;
}

interface StoredKeys {
  keyBag: string;
  uuid: string;
  classKeys: Record<string, string>;
  fileKeySecret: string;
}

export function encryptionStatePath(stateDir: string): string {
  return path.join(stateDir, 'backup-encryption.json');
}

export class SimBackupEncryption {
  private cached: SimEncryptionKeys | undefined | null = null; // null: not loaded yet

  constructor(
    private readonly stateDir: string,
    readonly rounds: KeyBagOptions = { dpic: IOS_DPIC },
  ) {}

  /** The keys as last loaded or set (synchronous; for status displays). */
  get loaded(): SimEncryptionKeys | undefined {
    return this.cached ?? undefined;
  }

  /** The current keys, or undefined when backups are not encrypted. */
  async current(): Promise<SimEncryptionKeys | undefined> {
    if (this.cached !== null) return this.cached;
    let raw: string;
    try {
      raw = await fsp.readFile(encryptionStatePath(this.stateDir), 'utf8');
    } catch {
      this.cached = undefined;
      return undefined;
    }
    const s = JSON.parse(raw) as StoredKeys;
    const classKeys = new Map<number, Buffer>();
    for (const [k, v] of Object.entries(s.classKeys))
      classKeys.set(Number(k), Buffer.from(v, 'base64'));
    this.cached = {
      keyBag: Buffer.from(s.keyBag, 'base64'),
      unlocked: { uuid: Buffer.from(s.uuid, 'base64'), classKeys },
      fileKeySecret: Buffer.from(s.fileKeySecret, 'base64'),
    };
    return this.cached;
  }

  /** Checks the user's current backup password the way the device does: it must unlock the keybag. */
  async verify(password: string): Promise<void> {
    const cur = await this.current();
    if (!cur) throw new BackupFailure(MbError.ENCRYPTION_STATE, 'Backup encryption is not enabled');
    try {
      await unlockBackupKeyBagAsync(cur.keyBag, password);
    } catch (e) {
      if (isMooringError(e, 'WRONG_PASSWORD'))
        throw new BackupFailure(MbError.WRONG_PASSWORD, 'The backup password is incorrect');
      throw e;
    }
  }

  /** A new keybag for `password` (enable, or change: every class key is new, as on a device). */
  async setPassword(password: string): Promise<SimEncryptionKeys> {
    const { keyBag, unlocked } = await createBackupKeyBagAsync(password, this.rounds);
    const keys: SimEncryptionKeys = { keyBag, unlocked, fileKeySecret: crypto.randomBytes(32) };
    const stored: StoredKeys = {
      keyBag: keyBag.toString('base64'),
      uuid: unlocked.uuid.toString('base64'),
      classKeys: Object.fromEntries(
        [...unlocked.classKeys].map(([k, v]) => [String(k), v.toString('base64')]),
      ),
      fileKeySecret: keys.fileKeySecret.toString('base64'),
    };
    await this.write(JSON.stringify(stored));
    this.cached = keys;
    return keys;
  }

  async disable(): Promise<void> {
    await fsp.rm(encryptionStatePath(this.stateDir), { force: true });
    this.cached = undefined;
  }

  private async write(text: string): Promise<void> {
    const file = encryptionStatePath(this.stateDir);
    const tmp = `${file}.tmp`;
    await fsp.mkdir(this.stateDir, { recursive: true });
    await fsp.writeFile(tmp, text, { mode: 0o600 });
    await fsp.rename(tmp, file);
  }
}

/** The per-file key: stable for one version of one file under one keybag. */
export function fileKeyFor(
  keys: SimEncryptionKeys,
  fileId: string,
  version: { size: number; mtime: number; sha1?: string },
): Buffer {
  return crypto
    .createHmac('sha256', keys.fileKeySecret)
    .update(`${fileId}\0${version.size}\0${version.mtime}\0${version.sha1 ?? ''}`)
    .digest();
}

/** Whether a host-side backup's keybag is this device's current one (same password era). */
export function sameKeyBag(keys: SimEncryptionKeys, manifestKeyBag: unknown): boolean {
  if (!Buffer.isBuffer(manifestKeyBag)) return false;
  try {
    return keyBagUuid(manifestKeyBag).equals(keys.unlocked.uuid);
  } catch {
    return false;
  }
}

export function passwordField(v: unknown, name: string): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v.length === 0 || v.length > MAX_BACKUP_PASSWORD_CHARS)
    throw new BackupFailure(
      MbError.BAD_REQUEST,
      `${name} must be a string of 1 to ${MAX_BACKUP_PASSWORD_CHARS} characters`,
    );
  return v;
}
