/**
 * One human line for each way a backup can end badly. The device's MBErrorDomain codes are
 * explained by the shared table in format/mb-errors (also used by the agent's history); any other
 * non-zero code falls back to the device's own description.
 */
import { MbErrorCode, mbErrorInfo } from '../format/mb-errors';

export { MbErrorCode };

export const PASSCODE_MESSAGE =
  'The backup needs the passcode entered on the device: unlock it and try again';
export const USER_CANCEL_MESSAGE = 'The backup was cancelled';
export const DEVICE_CANCEL_MESSAGE = 'The backup was cancelled on the device';
/** Our own writes failed with ENOSPC/EDQUOT (the device's error then only says "upload failed"). */
export const DISK_FULL_MESSAGE =
  'Not enough free space on this computer: the disk filled up during the backup';

/** Decimal gigabytes, as Finder shows them. */
export function formatGb(bytes: number): string {
  const gb = bytes / 1e9;
  return `${gb >= 100 ? gb.toFixed(0) : gb.toFixed(1)} GB`;
}

export interface SpaceFacts {
  /** What we told the device (GetFreeDiskSpace). */
  freeBytes: number | undefined;
  /** What the device asked us to purge (PurgeDiskSpace): how much more it wanted. */
  purgeRequestedBytes: number | undefined;
  /**
   * What we had told it before that request: its deficit is counted from there (room made for it
   * since, D48, raises `freeBytes` but not what the backup needs).
   */
  freeBytesBeforePurge?: number | undefined;
}

/**
 * A device asks the host to purge its deficit plus a 2 GiB margin (reference §4.6 step 3, from
 * pymobiledevice3's reverse engineering); what it really lacks is the deficit alone.
 */
export const DEVICE_PURGE_MARGIN_BYTES = 2 * 1024 ** 3;

/** What a device that asks to purge `bytesToFree` lacks: the ask without the margin it adds. */
export function purgeShortfall(bytesToFree: number): number {
  return Math.max(0, bytesToFree - DEVICE_PURGE_MARGIN_BYTES);
}

export function notEnoughSpaceMessage(s: SpaceFacts): string {
  if (s.freeBytes !== undefined && s.purgeRequestedBytes !== undefined) {
    const deficit = purgeShortfall(s.purgeRequestedBytes);
    if (deficit > 0) {
      const needed = (s.freeBytesBeforePurge ?? s.freeBytes) + deficit;
      return `Not enough free space on this computer: ${formatGb(needed)} needed, ${formatGb(s.freeBytes)} free`;
    }
    // Only the margin was asked for: the device wants headroom beyond what it will send.
    return `Not enough free space on this computer: the device needs more than the ${formatGb(s.freeBytes)} free`;
  }
  if (s.freeBytes !== undefined) {
    return `Not enough free space on this computer: ${formatGb(s.freeBytes)} free, and the device needs more`;
  }
  return 'Not enough free space on this computer for the backup';
}

export function isCancelDescription(code: number, description: string | undefined): boolean {
  return code === MbErrorCode.CANCELLED || /cancel/i.test(description ?? '');
}

export function isPasscodeDescription(code: number, description: string | undefined): boolean {
  return code === MbErrorCode.PASSCODE_NOT_ENTERED || /passcode/i.test(description ?? '');
}

/** The device ended the backup with a non-zero ErrorCode. */
export function deviceErrorMessage(
  code: number,
  description: string | undefined,
  space: SpaceFacts,
): string {
  const said = description ? `: ${description}` : '';
  if (code === MbErrorCode.INSUFFICIENT_SPACE) return notEnoughSpaceMessage(space);
  if (isPasscodeDescription(code, description)) return PASSCODE_MESSAGE;
  if (isCancelDescription(code, description)) return DEVICE_CANCEL_MESSAGE;
  const known = mbErrorInfo(code);
  if (known === undefined) return `The device stopped the backup with error ${code}${said}`;
  const fix = known.fix.charAt(0).toLowerCase() + known.fix.slice(1);
  return `The device stopped the backup: ${known.explanation}; ${fix} (MBErrorDomain ${code}${said})`;
}
