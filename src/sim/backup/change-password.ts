/**
 * The device side of `ChangePassword` (reference §7): NewPassword only = enable, OldPassword +
 * NewPassword = change, OldPassword only = disable. Wrong state and wrong old password are refused
 * with an ErrorCode; a device with a passcode asks for it on its own screen first. Success flips
 * com.apple.mobile.backup/WillEncrypt and posts com.apple.mobile.backup.domain_changed.
 */
import type { PlistDict } from '../../protocol/plist';
import { BackupFailure, MbError } from './errors';
import { passwordField } from './encryption';
import { requestIdentifier, type SessionContext } from './session';

export const BACKUP_DOMAIN_CHANGED = 'com.apple.mobile.backup.domain_changed';
const DOMAIN_BACKUP = 'com.apple.mobile.backup';

export type ChangePasswordAction = 'enable' | 'change' | 'disable';

export async function runChangePassword(
  ctx: SessionContext,
  req: PlistDict,
): Promise<ChangePasswordAction> {
  const { device, encryption } = ctx;
  const target = requestIdentifier(req, 'TargetIdentifier');
  if (target !== undefined && target !== device.udid)
    throw new BackupFailure(
      MbError.BAD_REQUEST,
      `TargetIdentifier ${target} is not this device (${device.udid})`,
    );
  const oldPw = passwordField(req.OldPassword, 'OldPassword');
  const newPw = passwordField(req.NewPassword, 'NewPassword');
  if (oldPw === undefined && newPw === undefined)
    throw new BackupFailure(
      MbError.BAD_REQUEST,
      'ChangePassword needs OldPassword and/or NewPassword',
    );
  const action: ChangePasswordAction =
    oldPw === undefined ? 'enable' : newPw === undefined ? 'disable' : 'change';
  const encrypted = (await encryption.current()) !== undefined;
  if (action === 'enable' && encrypted)
    throw new BackupFailure(MbError.ENCRYPTION_STATE, 'Backup encryption is already enabled');
  if (action !== 'enable' && !encrypted)
    throw new BackupFailure(MbError.ENCRYPTION_STATE, 'Backup encryption is not enabled');
  device.log('mobilebackup2.change-password', { action });

  // The device's own confirmation sheet: the passcode, when one is set.
  if (device.passcode.kind !== 'none' && !(await device.requestPasscode(ctx.passcodeTimeoutMs)))
    throw new BackupFailure(
      MbError.PASSCODE_NOT_ENTERED,
      'The passcode was not entered on the device, so the backup password was not changed',
    );
  if (oldPw !== undefined) await encryption.verify(oldPw);
  if (newPw !== undefined) await encryption.setPassword(newPw);
  else await encryption.disable();
  await device.setInternalValue(DOMAIN_BACKUP, 'WillEncrypt', newPw !== undefined);
  device.postNotification(BACKUP_DOMAIN_CHANGED);
  device.log('mobilebackup2.password-changed', { action });
  return action;
}
