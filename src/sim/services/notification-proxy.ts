/**
 * com.apple.mobile.notification_proxy, device side (reference §6.2). Observers and posts meet on
 * the device-wide bus, so a post sent through one connection reaches observers on every other
 * connection (idevicebackup2 posts each sync notification through a brand-new connection).
 */
import type { Duplex } from 'node:stream';
import { PlistConnection } from '../../transport/plist-connection';
import type { ServiceHandler, SimDeviceApi } from '../contracts';

/** NP frames are tiny; anything larger is hostile. */
export const NP_MAX_FRAME_BYTES = 64 * 1024;
/** The first NP connection of a backup stays idle for the whole backup: wait long. */
export const NP_IDLE_TIMEOUT_MS = 12 * 60 * 60 * 1000;
/** Longest notification name accepted. */
export const NP_MAX_NAME_CHARS = 512;
/** Most distinct names one connection may observe. */
export const NP_MAX_OBSERVED = 256;

export const notificationProxyService: ServiceHandler = async (
  stream: Duplex,
  device: SimDeviceApi,
): Promise<void> => {
  const conn = new PlistConnection(stream, {
    maxFrameBytes: NP_MAX_FRAME_BYTES,
    readTimeoutMs: NP_IDLE_TIMEOUT_MS,
    format: 'xml',
  });
  const observed = new Map<string, () => void>();
  // Relays come from other connections' posts at any time: keep frames whole and in order.
  let sendChain: Promise<void> = Promise.resolve();
  const send = (msg: { Command: string; Name?: string }): Promise<void> => {
    sendChain = sendChain.then(() => conn.send(msg)).catch(() => undefined);
    return sendChain;
  };
  try {
    while (true) {
      const msg = await conn.receiveDict(NP_IDLE_TIMEOUT_MS);
      const command = msg.Command;
      const name = typeof msg.Name === 'string' ? msg.Name : undefined;
      if (command === 'ObserveNotification') {
        if (name === undefined || name.length > NP_MAX_NAME_CHARS || observed.has(name)) continue;
        if (observed.size >= NP_MAX_OBSERVED) continue;
        observed.set(
          name,
          device.observeNotification(
            name,
            () => void send({ Command: 'RelayNotification', Name: name }),
          ),
        );
      } else if (command === 'PostNotification') {
        if (name === undefined || name.length > NP_MAX_NAME_CHARS) continue;
        device.postNotification(name);
      } else if (command === 'Shutdown') {
        await send({ Command: 'ProxyDeath' });
        return;
      } else {
        device.log('np-unknown-command', {
          command: typeof command === 'string' ? command : typeof command,
        });
      }
    }
  } finally {
    for (const off of observed.values()) off();
    await sendChain;
  }
};
