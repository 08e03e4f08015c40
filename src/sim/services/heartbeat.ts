/**
 * com.apple.mobile.heartbeat, device side (reference §8.4): the device sends `Marco` with the
 * seconds until the next one; the host must answer `Polo` in time or the device hangs up.
 */
import type { Duplex } from 'node:stream';
import { PlistConnection } from '../../transport/plist-connection';
import type { ServiceHandler, SimDeviceApi } from '../contracts';

export const HEARTBEAT_MAX_FRAME_BYTES = 64 * 1024;
/** What a phone announces between Marcos. */
export const DEFAULT_HEARTBEAT_INTERVAL_S = 10;
/** Grace on top of the interval for the host's Polo. */
export const HEARTBEAT_GRACE_MS = 5_000;

export function heartbeatService(intervalSeconds = DEFAULT_HEARTBEAT_INTERVAL_S): ServiceHandler {
  return async (stream: Duplex, device: SimDeviceApi): Promise<void> => {
    const conn = new PlistConnection(stream, {
      maxFrameBytes: HEARTBEAT_MAX_FRAME_BYTES,
      format: 'xml',
    });
    const intervalMs = intervalSeconds * 1000;
    while (true) {
      await conn.send({ Command: 'Marco', Interval: intervalSeconds, SupportsSleepyTime: true });
      const reply = await conn.receiveDict(intervalMs + HEARTBEAT_GRACE_MS);
      if (reply.Command !== 'Polo') {
        device.log('heartbeat-unexpected', { command: String(reply.Command) });
        return;
      }
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  };
}
