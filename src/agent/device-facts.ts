/**
 * What the agent learns from a device's lockdown values at contact: the facts the history keeps
 * (name, model, iOS version, Wi-Fi MAC) and whether every backup will ask for the passcode.
 * The values come from the device: only non-empty strings are taken (the history bounds them).
 */
import type { DeviceInfo } from '../history';
import type { PlistDict } from '../protocol/plist/types';

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v.trim() !== '' ? v : undefined;
}

/** iOS 16.1 and later ask for the passcode at every backup when one is set. */
export function needsPasscodeAtBackup(passwordProtected: unknown, version: unknown): boolean {
  if (passwordProtected !== true) return false;
  const m = typeof version === 'string' ? /^(\d+)(?:\.(\d+))?/.exec(version) : null;
  if (!m) return true; // unknown version: assume the modern behaviour
  const major = Number(m[1]);
  const minor = Number(m[2] ?? 0);
  return major > 16 || (major === 16 && minor >= 1);
}

export function deviceFacts(
  udid: string,
  v: PlistDict,
): { info: DeviceInfo; passcodeRequired: boolean } {
  const info: DeviceInfo = { udid };
  const name = str(v.DeviceName);
  const productType = str(v.ProductType);
  const iosVersion = str(v.ProductVersion);
  const wifiMac = str(v.WiFiAddress);
  if (name !== undefined) info.name = name;
  if (productType !== undefined) info.productType = productType;
  if (iosVersion !== undefined) info.iosVersion = iosVersion;
  if (wifiMac !== undefined) info.wifiMac = wifiMac;
  return { info, passcodeRequired: needsPasscodeAtBackup(v.PasswordProtected, v.ProductVersion) };
}
