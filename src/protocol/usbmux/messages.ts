import { MooringError, isMooringError } from '../../util/errors';
import { decodePlist, describePlistValue, encodeXmlPlist } from '../plist';
import { isPlistDict, type PlistDict, type PlistLimits, type PlistValue } from '../plist/types';
import { LIBUSBMUX_VERSION, USBMUX_VERSION_PLIST, UsbmuxMessageType } from './constants';
import { encodeUsbmuxMessage } from './header';
import { parseNetworkAddress } from './network-address';
import type { MuxDevice, MuxEvent } from './types';
import { normaliseUdid } from './udid';

/**
 * Plist-protocol (version 1) messages: builders for both sides and tolerant-but-bounded parsers.
 * Bodies are XML, because real usbmuxd parses nothing else (reference §1.3).
 */

/** usbmux dicts are shallow (DeviceList → Attached → Properties); anything deeper is hostile. */
export const USBMUX_PLIST_LIMITS: PlistLimits = { maxDepth: 8, maxObjects: 100_000 };

/** Longest `SerialNumber` accepted; the binary protocol has a 256-byte field for it. */
export const MAX_SERIAL_NUMBER_LENGTH = 255;

/** Identification sent with every request; usbmuxd shows it in ListListeners. */
export interface UsbmuxClientInfo {
  progName: string;
  clientVersionString: string;
  bundleId?: string;
}

export const DEFAULT_CLIENT_INFO: UsbmuxClientInfo = {
  progName: 'mooring',
  clientVersionString: 'mooring usbmux client',
};

export function encodePlistMessage(tag: number, dict: PlistDict): Buffer {
  return encodeUsbmuxMessage(
    USBMUX_VERSION_PLIST,
    UsbmuxMessageType.PLIST,
    tag,
    encodeXmlPlist(dict),
  );
}

/** The payload of a PLIST message as a dict; MALFORMED for anything else. */
export function decodePlistMessage(payload: Buffer): PlistDict {
  let value: PlistValue;
  try {
    value = decodePlist(payload, USBMUX_PLIST_LIMITS);
  } catch (e) {
    if (isMooringError(e) && e.code !== 'MALFORMED') throw e;
    throw new MooringError(
      'MALFORMED',
      `usbmux payload is not a valid plist: ${(e as Error).message}`,
      {
        cause: e,
      },
    );
  }
  if (!isPlistDict(value))
    throw new MooringError('MALFORMED', 'usbmux payload is a plist but not a dictionary');
  return value;
}

/** A request as libusbmuxd builds it (`create_plist_message`), plus command-specific keys. */
export function buildRequest(
  messageType: string,
  extra: PlistDict = {},
  info: UsbmuxClientInfo = DEFAULT_CLIENT_INFO,
): PlistDict {
  const dict: PlistDict = {
    MessageType: messageType,
    ClientVersionString: info.clientVersionString,
    ProgName: info.progName,
    kLibUSBMuxVersion: LIBUSBMUX_VERSION,
  };
  if (info.bundleId !== undefined) dict.BundleID = info.bundleId;
  return { ...dict, ...extra };
}

export function buildResult(number: number): PlistDict {
  return { MessageType: 'Result', Number: number };
}

export function buildAttached(deviceId: number, properties: PlistDict): PlistDict {
  return { MessageType: 'Attached', DeviceID: deviceId, Properties: properties };
}

export function buildDetached(deviceId: number): PlistDict {
  return { MessageType: 'Detached', DeviceID: deviceId };
}

export function buildPaired(deviceId: number): PlistDict {
  return { MessageType: 'Paired', DeviceID: deviceId };
}

/**
 * `PortNumber` in a plist Connect is `htons(port)` stored in a native integer (reference §1.6):
 * 62078 travels as 32498. The swap is its own inverse, so this both encodes and decodes.
 */
export function swapPortBytes(port: number): number {
  return ((port & 0xff) << 8) | ((port >>> 8) & 0xff);
}

/** A plist integer that fits a u32, else undefined. */
export function asUint32(v: PlistValue | undefined): number | undefined {
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffffffff) return v;
  if (typeof v === 'bigint' && v >= 0n && v <= 0xffffffffn) return Number(v);
  return undefined;
}

/** `Number` of a `{MessageType: 'Result'}` dict, or undefined if the dict is not a Result. */
export function resultNumber(dict: PlistDict): number | undefined {
  if (dict.MessageType !== 'Result') return undefined;
  const n = dict.Number;
  if (typeof n === 'number' && Number.isInteger(n)) return n;
  if (typeof n === 'bigint') return Number(n);
  return undefined;
}

/**
 * A device from its `Properties` dict (plus the outer DeviceID when the properties lack one).
 * Accepts the `WiFi` spelling some muxes use for Network. Throws MALFORMED with the reason.
 */
export function parseDeviceProperties(props: PlistDict, outerDeviceId?: number): MuxDevice {
  const deviceId = asUint32(props.DeviceID) ?? outerDeviceId;
  if (deviceId === undefined) throw new MooringError('MALFORMED', 'usbmux device has no DeviceID');
  const serial = props.SerialNumber;
  if (typeof serial !== 'string' || serial.length === 0) {
    throw new MooringError('MALFORMED', `usbmux device ${deviceId} has no SerialNumber`);
  }
  if (serial.length > MAX_SERIAL_NUMBER_LENGTH) {
    throw new MooringError(
      'MALFORMED',
      `usbmux device ${deviceId} has a ${serial.length}-character SerialNumber`,
    );
  }
  const type = props.ConnectionType;
  let connectionType: 'USB' | 'Network';
  if (type === 'USB') connectionType = 'USB';
  else if (type === 'Network' || type === 'WiFi') connectionType = 'Network';
  else {
    throw new MooringError(
      'MALFORMED',
      `usbmux device ${deviceId} has unknown ConnectionType ${describePlistValue(type)}`,
    );
  }
  const device: MuxDevice = {
    deviceId,
    udid: normaliseUdid(serial, deviceId),
    serialNumber: serial,
    connectionType,
    properties: props,
  };
  const productId = asUint32(props.ProductID);
  if (productId !== undefined) device.productId = productId;
  const locationId = asUint32(props.LocationID);
  if (locationId !== undefined) device.locationId = locationId;
  if (connectionType === 'Network') {
    const addr = props.NetworkAddress;
    if (!Buffer.isBuffer(addr)) {
      throw new MooringError('MALFORMED', `network device ${deviceId} has no NetworkAddress`);
    }
    device.networkAddress = parseNetworkAddress(addr);
  }
  return device;
}

/** An `Attached` dict (event or DeviceList element). */
export function parseAttached(dict: PlistDict): MuxDevice {
  const props = dict.Properties;
  if (!isPlistDict(props))
    throw new MooringError('MALFORMED', 'usbmux Attached message has no Properties dict');
  return parseDeviceProperties(props, asUint32(dict.DeviceID));
}

/**
 * The reply to ListDevices. One odd entry must not hide the others, so entries that fail to
 * parse are returned in `skipped` with the reason instead of failing the whole list.
 */
export function parseDeviceList(dict: PlistDict): { devices: MuxDevice[]; skipped: string[] } {
  const list = dict.DeviceList;
  if (!Array.isArray(list)) {
    const n = resultNumber(dict);
    throw new MooringError(
      'PROTOCOL',
      n === undefined
        ? 'usbmuxd answered ListDevices without a DeviceList'
        : `usbmuxd refused ListDevices (result ${n})`,
      n === undefined ? {} : { detail: n },
    );
  }
  const devices: MuxDevice[] = [];
  const skipped: string[] = [];
  for (const entry of list) {
    try {
      if (!isPlistDict(entry))
        throw new MooringError('MALFORMED', 'DeviceList entry is not a dictionary');
      devices.push(parseAttached(entry));
    } catch (e) {
      if (!isMooringError(e)) throw e;
      skipped.push(e.message);
    }
  }
  return { devices, skipped };
}

/** An unsolicited message on a Listen connection; undefined for kinds we don't know. */
export function parseMuxEvent(dict: PlistDict): MuxEvent | undefined {
  switch (dict.MessageType) {
    case 'Attached':
      return { type: 'attached', device: parseAttached(dict) };
    case 'Detached':
    case 'Paired': {
      const deviceId = asUint32(dict.DeviceID);
      if (deviceId === undefined)
        throw new MooringError('MALFORMED', `usbmux ${dict.MessageType} event has no DeviceID`);
      return { type: dict.MessageType === 'Detached' ? 'detached' : 'paired', deviceId };
    }
    default:
      return undefined;
  }
}
