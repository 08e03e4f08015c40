/**
 * The device's "connect over Wi-Fi" switch from the agent: the same lockdown call as
 * `mooring wifi on|off` (SetValue com.apple.mobile.wireless_lockdown EnableWifiConnections inside
 * a session), then the value read back, so the status shows what the device now has.
 */
import { isMooringError, MooringError } from '../util/errors';
import type { AgentContext } from './agent-context';
import { readWifiConnections, type DeviceContact } from './device-contact';
import { requireReachableDevice } from './reachable-device';
import type { WifiResult } from './types';

export async function setWifi(
  ctx: AgentContext,
  contact: Pick<DeviceContact, 'openSession'>,
  udid: string,
  on: unknown,
): Promise<WifiResult> {
  if (typeof on !== 'boolean') throw new MooringError('USAGE', 'on: expected true or false');
  const u = requireReachableDevice(ctx, udid, `, then switch Wi-Fi ${on ? 'on' : 'off'} again`);
  const label = ctx.view.label(u);
  let session;
  try {
    session = await contact.openSession(u);
  } catch (e) {
    if (isMooringError(e, 'PAIRING')) {
      throw new MooringError('USAGE', `${label} refused this computer: ${e.message}`, { cause: e });
    }
    throw e;
  }
  let now: boolean;
  try {
    await session.lockdown.enableWifiConnections(on);
    now = await readWifiConnections(session);
  } finally {
    await session.close();
  }
  const rt = ctx.runtime(u);
  rt.wifiBackups = now;
  ctx.log(`Wi-Fi connections of ${u} switched ${now ? 'on' : 'off'}`);
  ctx.emitDevice(u);
  ctx.redecide();
  return { on: now };
}
