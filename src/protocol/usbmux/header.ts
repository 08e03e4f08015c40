import { MooringError } from '../../util/errors';
import { MAX_USBMUX_MESSAGE_BYTES, USBMUX_HEADER_BYTES } from './constants';

/** The 16-byte header in front of every usbmuxd message (reference §1.2), little-endian. */
export interface UsbmuxHeader {
  /** Total message size including the header. */
  length: number;
  /** 0 = binary protocol, 1 = plist protocol. */
  version: number;
  /** Message type (UsbmuxMessageType). */
  message: number;
  /** Request id; replies echo it, unsolicited events carry 0. */
  tag: number;
}

export function encodeUsbmuxHeader(h: UsbmuxHeader): Buffer {
  const b = Buffer.alloc(USBMUX_HEADER_BYTES);
  b.writeUInt32LE(h.length >>> 0, 0);
  b.writeUInt32LE(h.version >>> 0, 4);
  b.writeUInt32LE(h.message >>> 0, 8);
  b.writeUInt32LE(h.tag >>> 0, 12);
  return b;
}

/**
 * Decodes and bounds-checks a header. The declared length must cover at least the header itself
 * and stay within `maxBytes`, so a hostile peer cannot make us allocate or wait for gigabytes.
 */
export function decodeUsbmuxHeader(buf: Buffer, maxBytes = MAX_USBMUX_MESSAGE_BYTES): UsbmuxHeader {
  if (buf.length < USBMUX_HEADER_BYTES) {
    throw new MooringError(
      'MALFORMED',
      `usbmux header needs ${USBMUX_HEADER_BYTES} bytes, got ${buf.length}`,
    );
  }
  const h: UsbmuxHeader = {
    length: buf.readUInt32LE(0),
    version: buf.readUInt32LE(4),
    message: buf.readUInt32LE(8),
    tag: buf.readUInt32LE(12),
  };
  if (h.length < USBMUX_HEADER_BYTES) {
    throw new MooringError(
      'MALFORMED',
      `usbmux message length ${h.length} is shorter than its own ${USBMUX_HEADER_BYTES}-byte header`,
      { detail: h.length },
    );
  }
  if (h.length > maxBytes) {
    throw new MooringError(
      'FRAME_TOO_LARGE',
      `usbmux message of ${h.length} bytes exceeds the ${maxBytes}-byte limit`,
      { detail: h.length },
    );
  }
  return h;
}

/** Header + payload as one buffer (one write, so a message is never interleaved with another). */
export function encodeUsbmuxMessage(
  version: number,
  message: number,
  tag: number,
  payload: Buffer = Buffer.alloc(0),
): Buffer {
  const length = USBMUX_HEADER_BYTES + payload.length;
  return Buffer.concat([encodeUsbmuxHeader({ length, version, message, tag }), payload], length);
}
