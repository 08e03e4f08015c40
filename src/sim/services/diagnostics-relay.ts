/**
 * com.apple.mobile.diagnostics_relay, minimal: MobileGestalt (LIMD asks PasswordConfigured
 * before ChangePassword), Goodbye, and accepted-but-ignored power requests.
 */
import type { Duplex } from 'node:stream';
import type { PlistDict } from '../../protocol/plist';
import { PlistConnection } from '../../transport/plist-connection';
import type { ServiceHandler, SimDeviceApi } from '../contracts';

export const DIAG_MAX_FRAME_BYTES = 64 * 1024;
export const DIAG_IDLE_TIMEOUT_MS = 60_000;

export const diagnosticsRelayService: ServiceHandler = async (
  stream: Duplex,
  device: SimDeviceApi,
): Promise<void> => {
  const conn = new PlistConnection(stream, { maxFrameBytes: DIAG_MAX_FRAME_BYTES, format: 'xml' });
  while (true) {
    const req = await conn.receiveDict(DIAG_IDLE_TIMEOUT_MS);
    switch (req.Request) {
      case 'Goodbye':
        await conn.send({ Status: 'Success' });
        return;
      case 'MobileGestalt': {
        const keys = Array.isArray(req.MobileGestaltKeys)
          ? req.MobileGestaltKeys.slice(0, 256)
          : [];
        const values = device.values();
        const gestalt: PlistDict = { Status: 'MobileGestaltSuccess' };
        for (const k of keys) {
          if (typeof k !== 'string') continue;
          if (k === 'PasswordConfigured') gestalt[k] = device.passcode.kind !== 'none';
          else if (
            typeof values[k] === 'string' ||
            typeof values[k] === 'boolean' ||
            typeof values[k] === 'number'
          ) {
            gestalt[k] = values[k] as string | boolean | number;
          }
        }
        await conn.send({ Status: 'Success', Diagnostics: { MobileGestalt: gestalt } });
        break;
      }
      case 'Sleep':
      case 'Restart':
      case 'Shutdown':
        await conn.send({ Status: 'Success' });
        break;
      default:
        await conn.send({ Status: 'UnknownRequest' });
    }
  }
};
