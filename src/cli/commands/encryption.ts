/**
 * `mooring encryption on|off|change|status|password|sheet`: backup encryption of one device.
 * on/off/change ask the device (mobilebackup2 ChangePassword; it shows its own passcode prompt);
 * the password is kept in Mooring's secret store (unless --no-store) BEFORE the device is asked,
 * so a crash between the two can never lose a password the device already uses; a refusal puts
 * the store back as it was. A generated password is printed once, with a recovery sheet.
 *
 * Passwords come from --password-file (first line), a no-echo prompt on a terminal, or are
 * generated; never from argv (it shows in `ps` and shell history).
 */
import { constants as fsc, promises as fsp } from 'node:fs';
import path from 'node:path';
import { DeviceSession } from '../../lockdown';
import {
  changeBackupPassword,
  readWillEncrypt,
  type ChangePasswordAction,
} from '../../backup/change-password';
import {
  checkPassword,
  FileSecretStore,
  generatePassphrase,
  MAX_PASSWORD_CHARS,
  recoverySheetHtml,
  secretsDir,
  type SecretStore,
} from '../../secrets';
import { learnPasswordEras } from '../../store/encrypted';
import { openStoreReadOnly } from '../../store';
import { readInfoPlist } from '../../format/info-plist';
import { INFO_PLIST } from '../../format/layout';
import { MooringError } from '../../util/errors';
import { UsageError } from '../../util/cli-flags';
import { type CliContext, requirePairRecord, resolveEndpoint, type Via } from '../context';
import { resolveDestination } from '../agent-settings';

export const ENCRYPTION_USAGE =
  'usage: mooring encryption on|off|change|status|password|sheet --udid U [--password-file F] [--old-password-file F] [--generate] [--no-store] [--out FILE.html]';

export interface EncryptionArgs {
  sub: string;
  udid?: string;
  via: Via;
  dest?: string;
  passwordFile?: string;
  oldPasswordFile?: string;
  generate: boolean;
  noStore: boolean;
  out?: string;
  json: boolean;
  /** Injected for tests; the default is the file store under the data folder. */
  secrets?: SecretStore;
  /** No-echo terminal prompt; undefined when stdin is not a terminal. */
  prompt?: (question: string) => Promise<string>;
}

/** The first line of a file (a trailing newline is not part of a password). */
export async function readPasswordFile(file: string, what: string): Promise<string> {
  let text: string;
  try {
    const fh = await fsp.open(file, fsc.O_RDONLY);
    try {
      const buf = Buffer.alloc(MAX_PASSWORD_CHARS * 4 + 2);
      const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
      text = buf.subarray(0, bytesRead).toString('utf8');
    } finally {
      await fh.close();
    }
  } catch (e) {
    throw new MooringError('USAGE', `cannot read ${what} from ${file}: ${(e as Error).message}`);
  }
  const line = text.split(/\r?\n/)[0] ?? '';
  return checkPassword(line, `${what} in ${file}`);
}

/** Reads a line from a terminal without echoing it. */
export function terminalPrompt(): ((question: string) => Promise<string>) | undefined {
  if (!process.stdin.isTTY) return undefined;
  return (question) =>
    new Promise((resolve, reject) => {
      const stdin = process.stdin;
      process.stderr.write(question);
      stdin.setRawMode(true);
      stdin.resume();
      let s = '';
      const done = (err?: Error): void => {
        stdin.setRawMode(false);
        stdin.pause();
        stdin.off('data', onData);
        process.stderr.write('\n');
        if (err) reject(err);
        else resolve(s);
      };
      const onData = (b: Buffer): void => {
        for (const ch of b.toString('utf8')) {
          if (ch === '\r' || ch === '\n') return done();
          if (ch === '\u0003') return done(new MooringError('USAGE', 'cancelled'));
          if (ch === '\u007f' || ch === '\b') s = s.slice(0, -1);
          else if (s.length < MAX_PASSWORD_CHARS) s += ch;
        }
      };
      stdin.on('data', onData);
    });
}

interface NewPassword {
  password: string;
  generated: boolean;
}

async function newPassword(a: EncryptionArgs): Promise<NewPassword> {
  if (a.passwordFile !== undefined) {
    if (a.generate) throw new UsageError('give --password-file or --generate, not both');
    return {
      password: await readPasswordFile(a.passwordFile, 'the new password'),
      generated: false,
    };
  }
  if (!a.generate && a.prompt) {
    const first = await a.prompt('New backup password (Enter alone: generate a strong one): ');
    if (first !== '') {
      checkPassword(first, 'the new password');
      if ((await a.prompt('The same password again: ')) !== first) {
        throw new MooringError('USAGE', 'the two passwords differ: nothing was changed');
      }
      return { password: first, generated: false };
    }
  }
  return { password: generatePassphrase(), generated: true };
}

async function currentPassword(
  a: EncryptionArgs,
  store: SecretStore | undefined,
  udid: string,
  file: string | undefined,
): Promise<string> {
  if (file !== undefined) return readPasswordFile(file, 'the current password');
  const stored = await store?.get(udid);
  if (stored !== undefined) return stored;
  if (a.prompt) return checkPassword(await a.prompt('Current backup password: '), 'the password');
  throw new MooringError(
    'USAGE',
    `Mooring does not know the current backup password of ${udid}: pass --password-file FILE (or run in a terminal to be asked)`,
  );
}

function storeOf(ctx: CliContext, a: EncryptionArgs): SecretStore | undefined {
  if (a.noStore) return undefined;
  return a.secrets ?? new FileSecretStore(secretsDir(ctx.dataDir));
}

function storedAt(store: SecretStore | undefined, udid: string): string | undefined {
  if (!store) return undefined;
  return store instanceof FileSecretStore
    ? `a file readable only by you: ${store.fileOf(udid)}`
    : `the system keychain (sealed file in ${store.location})`;
}

async function deviceNameOf(dest: string, udid: string): Promise<string> {
  try {
    const info = await readInfoPlist(
      path.join(openStoreReadOnly(dest, udid).latestDir, INFO_PLIST),
    );
    return info.deviceName ?? 'iPhone';
  } catch {
    return 'iPhone';
  }
}

/** Writes the sheet 0600 (it holds the password); refuses to overwrite another file. */
async function writeSheet(file: string, html: string): Promise<string> {
  const abs = path.resolve(file);
  await fsp.mkdir(path.dirname(abs), { recursive: true, mode: 0o700 });
  await fsp.rm(abs, { force: true }); // replace, never write through a link another user planted
  const fh = await fsp.open(abs, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, 0o600);
  try {
    await fh.writeFile(html);
  } finally {
    await fh.close();
  }
  return abs;
}

function defaultSheetPath(ctx: CliContext, udid: string): string {
  return path.join(ctx.dataDir, 'recovery-sheets', `${udid}.html`);
}

export async function encryptionCommand(ctx: CliContext, a: EncryptionArgs): Promise<number> {
  const store = storeOf(ctx, a);
  const dest = (await resolveDestination(a.dest, ctx.dataDir, ctx.err)).dir;
  switch (a.sub) {
    case 'on':
    case 'off':
    case 'change':
      return changeCommand(ctx, a, store, dest);
    case 'status':
      return statusCommand(ctx, a, store);
    case 'password':
      return passwordCommand(ctx, a, store, dest);
    case 'sheet':
      return sheetCommand(ctx, a, store, dest);
    default:
      throw new UsageError(ENCRYPTION_USAGE);
  }
}

async function openSession(ctx: CliContext, a: EncryptionArgs): Promise<DeviceSession> {
  const endpoint = await resolveEndpoint(ctx, a.udid, a.via);
  const { record } = await requirePairRecord(ctx, endpoint.udid);
  return DeviceSession.open(endpoint, record, { label: 'mooring' });
}

async function changeCommand(
  ctx: CliContext,
  a: EncryptionArgs,
  store: SecretStore | undefined,
  dest: string,
): Promise<number> {
  const action: ChangePasswordAction =
    a.sub === 'on' ? 'enable' : a.sub === 'off' ? 'disable' : 'change';
  const session = await openSession(ctx, a);
  const udid = session.udid;
  let generated: NewPassword | undefined;
  try {
    const on = await readWillEncrypt(session);
    // Refuse early (as idevicebackup2 does) rather than ask for passwords that cannot be used.
    if (action === 'enable' && on) {
      ctx.err(
        `mooring: backup encryption is already on for ${udid}: use "mooring encryption change" for another password`,
      );
      return 1;
    }
    if (action !== 'enable' && !on) {
      ctx.err(`mooring: backup encryption is off for ${udid}: use "mooring encryption on"`);
      return 1;
    }
    const oldPassword =
      action === 'enable'
        ? undefined
        : await currentPassword(
            a,
            store,
            udid,
            action === 'change' ? a.oldPasswordFile : a.passwordFile,
          );
    generated = action === 'disable' ? undefined : await newPassword(a);
    const before = store ? await store.get(udid) : undefined;
    // The old password stays usable for the snapshots it made (eras), whatever happens next.
    if (store && oldPassword !== undefined) {
      await learnPasswordEras(store, dest, udid, oldPassword).catch(() => undefined);
    }
    if (store && generated) await store.set(udid, generated.password);
    if (!store && generated?.generated) {
      // Not stored anywhere: show it before the device uses it, so a crash cannot lose it.
      ctx.out(
        `New backup password (write it down; Mooring will not keep it): ${generated.password}`,
      );
    }
    ctx.err('Asked the device; if it shows a prompt, enter the device passcode there…');
    const r = await changeBackupPassword({
      session,
      action,
      ...(oldPassword === undefined ? {} : { oldPassword }),
      ...(generated ? { newPassword: generated.password } : {}),
      onPrompt: (shown) => {
        if (shown) ctx.err('The device is asking for its passcode: enter it on the device.');
      },
    });
    if (!r.ok) {
      // Put the store back: the device still uses the old password (or none).
      if (store && generated) {
        if (before === undefined) await store.delete(udid);
        else await store.set(udid, before);
      }
      if (a.json) ctx.out(JSON.stringify({ ok: false, failure: r.failure, message: r.message }));
      ctx.err(`mooring: ${r.message}`);
      return 1;
    }
    if (action === 'disable' && store) await store.delete(udid);
    if (a.json) {
      ctx.out(
        JSON.stringify({
          ok: true,
          action,
          willEncrypt: r.willEncrypt,
          stored: store !== undefined,
          generated: generated?.generated === true,
        }),
      );
    } else ctx.out(r.message);
    if (generated?.generated && store) {
      // Printed once, here; later only `mooring encryption sheet` shows it again.
      ctx.out(`New backup password: ${generated.password}`);
    }
    if (generated?.generated || a.out !== undefined) {
      if (generated) {
        const file = await writeSheet(
          a.out ?? defaultSheetPath(ctx, udid),
          recoverySheetHtml({
            deviceName: await deviceNameOf(dest, udid),
            udid,
            password: generated.password,
            date: new Date(),
            ...(store ? { storedAt: storedAt(store, udid)! } : {}),
            backupDir: dest,
          }),
        );
        ctx.out(`Recovery sheet (print it, keep it safe): ${file}`);
      }
    }
    if (store && generated && !generated.generated && !a.json) {
      ctx.out(`Mooring keeps the password in ${storedAt(store, udid)}.`);
    }
    return 0;
  } finally {
    await session.close();
  }
}

async function statusCommand(
  ctx: CliContext,
  a: EncryptionArgs,
  store: SecretStore | undefined,
): Promise<number> {
  const session = await openSession(ctx, a);
  let on: boolean;
  try {
    on = await readWillEncrypt(session);
  } finally {
    await session.close();
  }
  const known = store ? (await store.get(session.udid)) !== undefined : false;
  const eras = store ? (await store.eras(session.udid)).length : 0;
  if (a.json) {
    ctx.out(JSON.stringify({ udid: session.udid, encrypted: on, passwordKnown: known, eras }));
    return 0;
  }
  ctx.out(
    `${session.udid}: backup encryption is ${on ? 'ON' : 'off'}` +
      (on
        ? known
          ? '; Mooring knows the password'
          : '; Mooring does NOT know the password (run "mooring encryption password")'
        : '') +
      (eras > 0 ? `; ${eras} password(s) of earlier backups kept` : ''),
  );
  return 0;
}

/** Tells Mooring the device's current password (set elsewhere, or forgotten by the store). */
async function passwordCommand(
  ctx: CliContext,
  a: EncryptionArgs,
  store: SecretStore | undefined,
  dest: string,
): Promise<number> {
  if (!store) throw new UsageError('"encryption password" stores a password: drop --no-store');
  const udid = a.udid;
  if (udid === undefined) throw new UsageError('encryption password needs --udid U');
  let password: string;
  if (a.passwordFile !== undefined) {
    password = await readPasswordFile(a.passwordFile, 'the password');
  } else if (a.prompt) {
    password = checkPassword(await a.prompt('Backup password: '), 'the password');
  } else {
    throw new UsageError('pass --password-file FILE (or run in a terminal to be asked)');
  }
  const learned = await learnPasswordEras(store, dest, udid, password);
  if (learned.latestOpens === false) {
    ctx.err(
      'mooring: this password does not open the latest backup: it was made with another password. ' +
        'Stored anyway as the current one (right if you changed it elsewhere since).',
    );
  }
  await store.set(udid, password);
  const summary = `Stored the backup password of ${udid}; it opens ${learned.opened} of ${learned.keyBags} password era(s) of the stored backups.`;
  if (a.json) ctx.out(JSON.stringify({ ok: true, udid, ...learned }));
  else ctx.out(summary);
  return learned.latestOpens === false ? 1 : 0;
}

async function sheetCommand(
  ctx: CliContext,
  a: EncryptionArgs,
  store: SecretStore | undefined,
  dest: string,
): Promise<number> {
  const udid = a.udid;
  if (udid === undefined) throw new UsageError('encryption sheet needs --udid U');
  const password =
    a.passwordFile !== undefined
      ? await readPasswordFile(a.passwordFile, 'the password')
      : await store?.get(udid);
  if (password === undefined) {
    throw new MooringError(
      'USAGE',
      `Mooring does not know the backup password of ${udid}: store it with "mooring encryption password --udid ${udid}" or pass --password-file`,
    );
  }
  const stored = store ? storedAt(store, udid) : undefined;
  const file = await writeSheet(
    a.out ?? defaultSheetPath(ctx, udid),
    recoverySheetHtml({
      deviceName: await deviceNameOf(dest, udid),
      udid,
      password,
      date: new Date(),
      ...(stored ? { storedAt: stored } : {}),
      backupDir: dest,
    }),
  );
  ctx.out(a.json ? JSON.stringify({ ok: true, file }) : `Recovery sheet: ${file}`);
  return 0;
}
