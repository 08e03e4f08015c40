/**
 * Switching backup encryption on, off, or to another password (reference §7): the host sends
 * mobilebackup2 `ChangePassword` (enable: NewPassword only; change: OldPassword + NewPassword;
 * disable: OldPassword only) and answers the DeviceLink loop until the device's final response,
 * as idevicebackup2 does (no sync lock: nothing is transferred). The device decides, and on
 * iOS ≥ 13 first asks its user for the device passcode on its own screen: we only observe the
 * prompt (notification_proxy) and wait for it.
 *
 * Like LIMD, the current state is read first (lockdown com.apple.mobile.backup/WillEncrypt) and a
 * request that cannot apply is refused here with a clear line, before the device is bothered.
 * Passwords go to the device inside the TLS session only; they are never logged or echoed.
 */
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isMooringError, MooringError } from '../util/errors';
import { removeTree } from '../util/remove-tree';
import {
  NOTIFICATION_PROXY_SERVICE_NAME,
  NotificationProxyClient,
  Notifications,
  DEFAULT_SHUTDOWN_TIMEOUT_MS,
} from '../services/notification-proxy';
import { MobileBackup2Client } from '../services/mobilebackup2/client';
import { DeviceLinkHost } from './device-link-host';
import { Interrupt, BackupStopped, withDeadline } from './interrupt';
import type { BackupSession } from './run-backup';
import type { LockdownValues } from './info-plist';

export type ChangePasswordAction = 'enable' | 'change' | 'disable';

/** Where lockdownd keeps the device's backup settings. */
export const BACKUP_DOMAIN = 'com.apple.mobile.backup';

/**
 * ErrorCodes of a refused ChangePassword. No public trace names them; these are the simulator's
 * (src/sim/backup/errors.ts) and 208 is the passcode code of DECISIONS D11. Descriptions are
 * matched too, so a real device's wording still lands in the right place.
 */
export const ChangePasswordError = {
  WRONG_PASSWORD: 207,
  PASSCODE_NOT_ENTERED: 208,
  ENCRYPTION_STATE: 211,
} as const;

export interface ChangePasswordTimeouts {
  /** Connecting, Hello, each reply. */
  setupMs: number;
  /** How long the device may wait for its user (the passcode sheet) before it answers. */
  answerMs: number;
}

export const DEFAULT_CHANGE_PASSWORD_TIMEOUTS: ChangePasswordTimeouts = {
  setupMs: 30_000,
  answerMs: 5 * 60_000,
};

export interface ChangePasswordOptions {
  session: BackupSession;
  action: ChangePasswordAction;
  oldPassword?: string;
  newPassword?: string;
  signal?: AbortSignal;
  timeouts?: Partial<ChangePasswordTimeouts>;
  /** The device put up (or took down) its passcode sheet. */
  onPrompt?: (shown: boolean) => void;
}

export type ChangePasswordFailure =
  'already-on' | 'already-off' | 'wrong-password' | 'passcode' | 'cancelled' | 'device-error';

export interface ChangePasswordResult {
  ok: boolean;
  action: ChangePasswordAction;
  /** WillEncrypt after the request (as the device reports it). */
  willEncrypt: boolean;
  failure?: ChangePasswordFailure;
  errorCode?: number;
  /** One line for a person. */
  message: string;
}

/** The device's backup encryption setting (false when it does not say). */
export async function readWillEncrypt(session: LockdownValues): Promise<boolean> {
  return (await session.getValue(BACKUP_DOMAIN, 'WillEncrypt')) === true;
}

function checkArgs(o: ChangePasswordOptions): void {
  const need = (v: string | undefined, what: string): void => {
    if (v === undefined || v.length === 0) throw new MooringError('USAGE', `${what} is needed`);
  };
  const none = (v: string | undefined, what: string): void => {
    if (v !== undefined) throw new MooringError('USAGE', `${what} is not used to ${o.action}`);
  };
  if (o.action === 'enable') {
    need(o.newPassword, 'a new backup password');
    none(o.oldPassword, 'the old password');
  } else if (o.action === 'disable') {
    need(o.oldPassword, 'the current backup password');
    none(o.newPassword, 'a new password');
  } else {
    need(o.oldPassword, 'the current backup password');
    need(o.newPassword, 'a new backup password');
  }
}

const DONE: Record<ChangePasswordAction, string> = {
  enable:
    'Backup encryption is on: from now on the device encrypts every backup with this password.',
  change:
    'The backup password is changed: the next backup is a full one, encrypted with the new password.',
  disable: 'Backup encryption is off: the next backup is a full, unencrypted one.',
};

export async function changeBackupPassword(
  o: ChangePasswordOptions,
): Promise<ChangePasswordResult> {
  checkArgs(o);
  const t = { ...DEFAULT_CHANGE_PASSWORD_TIMEOUTS, ...o.timeouts };
  const before = await readWillEncrypt(o.session);
  const refuse = (failure: ChangePasswordFailure, message: string): ChangePasswordResult => ({
    ok: false,
    action: o.action,
    willEncrypt: before,
    failure,
    message,
  });
  if (o.action === 'enable' && before) {
    return refuse(
      'already-on',
      'Backup encryption is already on for this device: use "mooring encryption change" to set another password',
    );
  }
  if (o.action !== 'enable' && !before) {
    return refuse(
      'already-off',
      'Backup encryption is off for this device: there is no password to change or remove (use "mooring encryption on")',
    );
  }

  const interrupt = new Interrupt();
  const onAbort = (): void => interrupt.stop('user');
  if (o.signal?.aborted) interrupt.stop('user');
  o.signal?.addEventListener('abort', onAbort, { once: true });
  let np: NotificationProxyClient | undefined;
  let mb2: MobileBackup2Client | undefined;
  // DeviceLinkHost answers file requests inside a folder; ChangePassword should send none, but a
  // device that does gets an empty private folder, never the user's backups.
  const scratch = await fsp.mkdtemp(path.join(os.tmpdir(), 'mooring-changepw-'));
  try {
    np = new NotificationProxyClient(
      await interrupt.race(o.session.startService(NOTIFICATION_PROXY_SERVICE_NAME)),
    );
    let prompting = false;
    np.on('notification', (name) => {
      if (name === Notifications.PASSCODE_PROMPT_PRESENTED && !prompting) {
        prompting = true;
        o.onPrompt?.(true);
      } else if (name === Notifications.PASSCODE_PROMPT_DISMISSED && prompting) {
        prompting = false;
        o.onPrompt?.(false);
      }
    });
    for (const name of [
      Notifications.PASSCODE_PROMPT_PRESENTED,
      Notifications.PASSCODE_PROMPT_DISMISSED,
      Notifications.BACKUP_DOMAIN_CHANGED,
    ]) {
      await interrupt.race(np.observe(name));
    }
    mb2 = await interrupt.race(MobileBackup2Client.start(o.session, { timeoutMs: t.setupMs }));
    const dl = mb2.deviceLink;
    await interrupt.race(
      dl.sendProcessMessage({
        MessageName: 'ChangePassword',
        TargetIdentifier: o.session.udid,
        ...(o.oldPassword === undefined ? {} : { OldPassword: o.oldPassword }),
        ...(o.newPassword === undefined ? {} : { NewPassword: o.newPassword }),
      }),
    );
    const host = new DeviceLinkHost({
      dl,
      target: { root: scratch, udid: o.session.udid },
      interrupt,
      blockReadMs: t.setupMs,
      // The device may hold its answer while its user types the passcode.
      nextMessage: () => interrupt.race(dl.receive(t.answerMs)),
    });
    const end = await host.run();
    if (end.kind === 'disconnect') {
      return refuse('device-error', 'The device ended the request without an answer: try again');
    }
    if (end.errorCode === 0) {
      const after = await readWillEncrypt(o.session).catch(() => o.action !== 'disable');
      return { ok: true, action: o.action, willEncrypt: after, message: DONE[o.action] };
    }
    return { ...refusal(o.action, end.errorCode, end.errorDescription), willEncrypt: before };
  } catch (e) {
    if (e instanceof BackupStopped) return refuse('cancelled', 'Cancelled: nothing was changed');
    if (isMooringError(e, 'TIMEOUT')) {
      throw new MooringError(
        'TIMEOUT',
        `The device did not answer within ${Math.round(t.answerMs / 1000)} s (was its passcode prompt left open?): check the device, then try again`,
        { cause: e },
      );
    }
    throw e;
  } finally {
    o.signal?.removeEventListener('abort', onAbort);
    const bounded = (p: Promise<unknown>, what: string): Promise<unknown> =>
      withDeadline(p, DEFAULT_SHUTDOWN_TIMEOUT_MS, what).catch(() => undefined);
    if (mb2) {
      await bounded(mb2.disconnect(), 'DLMessageDisconnect');
      mb2.deviceLink.connection.close();
    }
    if (np) {
      await bounded(np.shutdown(DEFAULT_SHUTDOWN_TIMEOUT_MS), 'notification_proxy Shutdown');
      np.close();
    }
    await removeTree(scratch);
  }
}

/** A refused ChangePassword, as a failure kind and a line that says what to do. */
export function refusal(
  action: ChangePasswordAction,
  code: number,
  description: string | undefined,
): Omit<ChangePasswordResult, 'willEncrypt'> {
  const d = (description ?? '').toLowerCase();
  const base = { ok: false, action, errorCode: code };
  if (
    code === ChangePasswordError.WRONG_PASSWORD ||
    /(wrong|incorrect|invalid)[^.]*password|password[^.]*(wrong|incorrect|invalid)/.test(d)
  ) {
    return {
      ...base,
      failure: 'wrong-password',
      message:
        'The device refused the current backup password: nothing was changed. Give the password set when encryption was turned on (or last changed)',
    };
  }
  if (code === ChangePasswordError.PASSCODE_NOT_ENTERED || /passcode/.test(d)) {
    return {
      ...base,
      failure: 'passcode',
      message:
        'The device passcode was not entered, so nothing was changed: unlock the device, run the command again and enter the passcode when the device asks',
    };
  }
  if (code === ChangePasswordError.ENCRYPTION_STATE || /already enabled/.test(d)) {
    const on = /already enabled/.test(d) || action === 'enable';
    return {
      ...base,
      failure: on ? 'already-on' : 'already-off',
      message: on
        ? 'Backup encryption is already on for this device: use "mooring encryption change"'
        : 'Backup encryption is off for this device: use "mooring encryption on"',
    };
  }
  const text = description ? `: ${description.slice(0, 200)}` : '';
  return {
    ...base,
    failure: 'device-error',
    message: `The device refused the request (error ${code}${text}): nothing was changed`,
  };
}
