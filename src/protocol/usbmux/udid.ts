/**
 * UDID spellings. USB reports modern 24-hex-digit UDIDs without the dash lockdownd puts after the
 * 8th digit (`00008030001D…` vs `00008030-001D…`); libusbmuxd inserts it (`sanitize_udid`), and
 * pymobiledevice3 compares with dashes removed. We normalise to the lockdownd form and match both ways.
 */

const ALL_F_SERIAL = 'f'.repeat(40);

/**
 * The UDID a host should use for a usbmuxd `SerialNumber`: 24 characters get the dash after the
 * 8th; the placeholder all-`f` 40-character serial some devices report gets its last 8 digits
 * replaced by the DeviceID in hex, as libusbmuxd does, so two such devices stay distinct.
 */
export function normaliseUdid(serial: string, deviceId?: number): string {
  let udid = serial;
  if (udid.length === 24) udid = `${udid.slice(0, 8)}-${udid.slice(8)}`;
  if (udid.toLowerCase() === ALL_F_SERIAL && deviceId !== undefined) {
    udid = udid.slice(0, 32) + (deviceId >>> 0).toString(16).padStart(8, '0');
  }
  return udid;
}

/** The dash-less form USB reports for a modern UDID (`00008030-001D…` → `00008030001D…`). */
export function usbSerialForUdid(udid: string): string {
  return udid.length === 25 && udid[8] === '-' ? udid.slice(0, 8) + udid.slice(9) : udid;
}

/** Same device? Compares case-insensitively with dashes removed. */
export function udidsMatch(a: string, b: string): boolean {
  const canon = (s: string): string => s.replace(/-/g, '').toUpperCase();
  return canon(a) === canon(b);
}

/** Longest pair-record id accepted (UDIDs are 25 or 40 characters). */
export const MAX_PAIR_RECORD_ID_LENGTH = 128;

/**
 * Whether a `PairRecordID` may name a file `<id>.plist` in the records directory. Real usbmuxd
 * concatenates it unchecked; we refuse anything that could leave the directory.
 */
export function isValidPairRecordId(id: string): boolean {
  return (
    id.length > 0 &&
    id.length <= MAX_PAIR_RECORD_ID_LENGTH &&
    /^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(id) &&
    !id.includes('..')
  );
}
