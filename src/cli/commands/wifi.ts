/** `mooring wifi on|off`: the device's "Show this iPhone when on Wi-Fi" (EnableWifiConnections). */
import { DeviceSession } from '../../lockdown';
import { type CliContext, requirePairRecord, resolveEndpoint, type Via } from '../context';

export async function wifiCommand(
  ctx: CliContext,
  enable: boolean,
  udid: string | undefined,
  via: Via,
): Promise<number> {
  const endpoint = await resolveEndpoint(ctx, udid, via);
  const { record } = await requirePairRecord(ctx, endpoint.udid);
  const session = await DeviceSession.open(endpoint, record, { label: 'mooring' });
  try {
    await session.lockdown.enableWifiConnections(enable);
  } finally {
    await session.close();
  }
  ctx.out(
    enable
      ? `Wi-Fi connections are on for ${endpoint.udid}: it can be backed up without a cable.`
      : `Wi-Fi connections are off for ${endpoint.udid}: it is reachable by USB only.`,
  );
  return 0;
}
