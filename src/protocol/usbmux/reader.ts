import type { StreamReader } from '../../util/stream-reader';
import { MAX_USBMUX_MESSAGE_BYTES, USBMUX_HEADER_BYTES } from './constants';
import { decodeUsbmuxHeader, type UsbmuxHeader } from './header';

export interface UsbmuxFrame {
  header: UsbmuxHeader;
  payload: Buffer;
}

/**
 * Reads one whole usbmuxd message. The length is checked before the payload is awaited;
 * TIMEOUT/CLOSED come from the reader (a truncated message is CLOSED).
 */
export async function readUsbmuxFrame(
  reader: StreamReader,
  timeoutMs: number,
  what = 'usbmuxd message',
  maxBytes = MAX_USBMUX_MESSAGE_BYTES,
): Promise<UsbmuxFrame> {
  const header = decodeUsbmuxHeader(
    await reader.read(USBMUX_HEADER_BYTES, timeoutMs, `${what} header`),
    maxBytes,
  );
  const payload = await reader.read(
    header.length - USBMUX_HEADER_BYTES,
    timeoutMs,
    `${what} payload`,
  );
  return { header, payload };
}
