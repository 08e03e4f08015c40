/**
 * com.apple.springboardservices, device side: app icons for a backup's Info.plist
 * (`getIconPNGData`), plus the cheap neighbours hosts sometimes ask for.
 */
import type { Duplex } from 'node:stream';
import { PlistConnection } from '../../transport/plist-connection';
import type { ServiceHandler, SimDeviceApi } from '../contracts';

export const SPRINGBOARD_MAX_FRAME_BYTES = 256 * 1024;
export const SPRINGBOARD_IDLE_TIMEOUT_MS = 60_000;

/** A valid 1×1 RGBA PNG: every app gets the same tiny icon. */
export const TINY_PNG = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==',
  'base64',
);

export const springboardService: ServiceHandler = async (
  stream: Duplex,
  device: SimDeviceApi,
): Promise<void> => {
  const conn = new PlistConnection(stream, {
    maxFrameBytes: SPRINGBOARD_MAX_FRAME_BYTES,
    readTimeoutMs: SPRINGBOARD_IDLE_TIMEOUT_MS,
    format: 'xml',
  });
  while (true) {
    const req = await conn.receiveDict(SPRINGBOARD_IDLE_TIMEOUT_MS);
    switch (req.command) {
      case 'getIconPNGData':
      case 'getHomeScreenWallpaperPNGData':
        await conn.send({ pngData: TINY_PNG });
        break;
      case 'getInterfaceOrientation':
        await conn.send({ interfaceOrientation: 1 });
        break;
      case 'getIconState':
        await conn.send([]);
        break;
      default:
        device.log('springboard-unknown-command', { command: String(req.command) });
        await conn.send({ Error: 'UnknownCommand' });
    }
  }
};
