import { MooringError } from '../../util/errors';
import { BINARY_DEVICE_RECORD_BYTES, USBMUX_VERSION_BINARY, UsbmuxMessageType } from './constants';
import { encodeUsbmuxMessage } from './header';

/**
 * The binary protocol (version 0, reference §1.7): only LISTEN, CONNECT and their replies/events.
 * It predates pair records and network devices. Kept because libusbmuxd falls back to it when a
 * mux answers BADVERSION, and real usbmuxd still serves it.
 */

export interface BinaryDeviceRecord {
  deviceId: number;
  productId: number;
  serialNumber: string;
  locationId: number;
}

const SERIAL_FIELD_BYTES = 256;
const CONNECT_PAYLOAD_BYTES = 8;

export function encodeBinaryResult(tag: number, result: number): Buffer {
  const p = Buffer.alloc(4);
  p.writeUInt32LE(result >>> 0, 0);
  return encodeUsbmuxMessage(USBMUX_VERSION_BINARY, UsbmuxMessageType.RESULT, tag, p);
}

/** DEVICE_ADD payload: u32 id, u16 product id, char serial[256] (NUL-padded), u16 pad, u32 location. */
export function encodeBinaryDeviceAdd(d: BinaryDeviceRecord): Buffer {
  const p = Buffer.alloc(BINARY_DEVICE_RECORD_BYTES);
  p.writeUInt32LE(d.deviceId >>> 0, 0);
  p.writeUInt16LE(d.productId & 0xffff, 4);
  // Leave at least one NUL so C readers find the end.
  Buffer.from(d.serialNumber, 'utf8')
    .subarray(0, SERIAL_FIELD_BYTES - 1)
    .copy(p, 6);
  p.writeUInt32LE(d.locationId >>> 0, 264);
  return encodeUsbmuxMessage(USBMUX_VERSION_BINARY, UsbmuxMessageType.DEVICE_ADD, 0, p);
}

export function decodeBinaryDeviceRecord(payload: Buffer): BinaryDeviceRecord {
  if (payload.length < BINARY_DEVICE_RECORD_BYTES) {
    throw new MooringError(
      'MALFORMED',
      `binary device record of ${payload.length} bytes is truncated`,
    );
  }
  const serialField = payload.subarray(6, 6 + SERIAL_FIELD_BYTES);
  const nul = serialField.indexOf(0);
  return {
    deviceId: payload.readUInt32LE(0),
    productId: payload.readUInt16LE(4),
    serialNumber: serialField.subarray(0, nul < 0 ? SERIAL_FIELD_BYTES : nul).toString('utf8'),
    locationId: payload.readUInt32LE(264),
  };
}

function deviceIdMessage(type: number, deviceId: number): Buffer {
  const p = Buffer.alloc(4);
  p.writeUInt32LE(deviceId >>> 0, 0);
  return encodeUsbmuxMessage(USBMUX_VERSION_BINARY, type, 0, p);
}

export function encodeBinaryDeviceRemove(deviceId: number): Buffer {
  return deviceIdMessage(UsbmuxMessageType.DEVICE_REMOVE, deviceId);
}

export function encodeBinaryDevicePaired(deviceId: number): Buffer {
  return deviceIdMessage(UsbmuxMessageType.DEVICE_PAIRED, deviceId);
}

export function encodeBinaryListenRequest(tag: number): Buffer {
  return encodeUsbmuxMessage(USBMUX_VERSION_BINARY, UsbmuxMessageType.LISTEN, tag);
}

/** CONNECT payload: u32 device id (LE), u16 port in network byte order, u16 reserved. */
export function encodeBinaryConnectRequest(tag: number, deviceId: number, port: number): Buffer {
  const p = Buffer.alloc(CONNECT_PAYLOAD_BYTES);
  p.writeUInt32LE(deviceId >>> 0, 0);
  p.writeUInt16BE(port & 0xffff, 4);
  return encodeUsbmuxMessage(USBMUX_VERSION_BINARY, UsbmuxMessageType.CONNECT, tag, p);
}

export function decodeBinaryConnectRequest(payload: Buffer): { deviceId: number; port: number } {
  if (payload.length < CONNECT_PAYLOAD_BYTES) {
    throw new MooringError(
      'MALFORMED',
      `binary CONNECT payload of ${payload.length} bytes is truncated`,
    );
  }
  return { deviceId: payload.readUInt32LE(0), port: payload.readUInt16BE(4) };
}
