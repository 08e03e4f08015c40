/**
 * The files behind both secret stores: one file per device in a 0700 folder, each 0600, written
 * atomically (temp file, fsync, rename, fsync the folder) so a crash leaves the old or the new
 * record, never half of one. What goes into a file is sealed by the store (plain JSON for the
 * file store, the OS keychain's ciphertext for safeStorage).
 */
import { constants as fsc, promises as fsp } from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { MooringError } from '../util/errors';
import {
  checkPassword,
  checkUdidForSecrets,
  decodeDeviceSecrets,
  MAX_SECRET_RECORD_BYTES,
  withEra,
  type DeviceSecrets,
  type PasswordEra,
  type SecretStore,
} from './secret-store';

/** Mooring's secrets folder inside its data folder. */
export function secretsDir(dataDir: string): string {
  return path.join(dataDir, 'secrets');
}

export interface Sealer {
  /** File name suffix, so the two kinds never read each other's files. */
  readonly suffix: string;
  seal(plain: string): Buffer;
  unseal(sealed: Buffer): string;
}

export abstract class RecordFileStore implements SecretStore {
  abstract readonly kind: SecretStore['kind'];
  /** Serialises changes per store (read-modify-write of one record). */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    readonly location: string,
    private readonly sealer: Sealer,
  ) {}

  async get(udid: string): Promise<string | undefined> {
    return (await this.read(checkUdidForSecrets(udid)))?.current?.password;
  }

  async set(udid: string, password: string): Promise<void> {
    const id = checkUdidForSecrets(udid);
    checkPassword(password);
    return this.update(id, (s) => ({
      ...s,
      current: { password, setAt: new Date().toISOString() },
    }));
  }

  async delete(udid: string): Promise<void> {
    const id = checkUdidForSecrets(udid);
    return this.update(id, (s) => {
      const { current: _dropped, ...rest } = s;
      return rest;
    });
  }

  async eras(udid: string): Promise<PasswordEra[]> {
    return (await this.read(checkUdidForSecrets(udid)))?.eras ?? [];
  }

  async rememberEra(
    udid: string,
    keyBagId: string,
    password: string,
    at = new Date(),
  ): Promise<void> {
    const id = checkUdidForSecrets(udid);
    checkPassword(password);
    return this.update(id, (s) => withEra(s, keyBagId, password, at));
  }

  async forgetDevice(udid: string): Promise<void> {
    const file = this.fileOf(checkUdidForSecrets(udid));
    return this.serial(() => fsp.rm(file, { force: true }));
  }

  fileOf(udid: string): string {
    return path.join(this.location, `${udid}${this.sealer.suffix}`);
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private update(udid: string, change: (s: DeviceSecrets) => DeviceSecrets): Promise<void> {
    return this.serial(async () => {
      const now = (await this.read(udid)) ?? { v: 1 as const, udid, eras: [] };
      await this.write(udid, change(now));
    });
  }

  private async read(udid: string): Promise<DeviceSecrets | undefined> {
    const file = this.fileOf(udid);
    let fh: fsp.FileHandle;
    try {
      fh = await fsp.open(file, fsc.O_RDONLY | fsc.O_NOFOLLOW);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new MooringError('IO', `cannot read ${file}: ${(e as Error).message}`, { cause: e });
    }
    let bytes: Buffer;
    try {
      const st = await fh.stat();
      if (!st.isFile() || st.size > MAX_SECRET_RECORD_BYTES) {
        throw new MooringError('MALFORMED', `${file} is not a stored-password file`);
      }
      bytes = await fh.readFile();
    } finally {
      await fh.close();
    }
    let text: string;
    try {
      text = this.sealer.unseal(bytes);
    } catch (e) {
      throw new MooringError(
        'MALFORMED',
        `${file} cannot be opened (${this.kind === 'file' ? 'damaged' : 'the OS keychain refused it'})`,
        { cause: e },
      );
    }
    return decodeDeviceSecrets(text, udid);
  }

  private async write(udid: string, s: DeviceSecrets): Promise<void> {
    await fsp.mkdir(this.location, { recursive: true, mode: 0o700 });
    await fsp.chmod(this.location, 0o700); // an older folder, or a umask, may have loosened it
    const file = this.fileOf(udid);
    const tmp = `${file}.${crypto.randomBytes(6).toString('hex')}.tmp`;
    const fh = await fsp.open(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, 0o600);
    try {
      await fh.chmod(0o600);
      await fh.writeFile(this.sealer.seal(JSON.stringify(s)));
      await fh.sync();
    } catch (e) {
      await fh.close().catch(() => undefined);
      await fsp.rm(tmp, { force: true });
      throw e;
    }
    await fh.close();
    try {
      await fsp.rename(tmp, file);
    } catch (e) {
      await fsp.rm(tmp, { force: true });
      throw e;
    }
    const dir = await fsp.open(this.location, fsc.O_RDONLY);
    try {
      await dir.sync();
    } catch {
      // some filesystems cannot fsync a folder; the rename is still atomic
    } finally {
      await dir.close();
    }
  }
}
