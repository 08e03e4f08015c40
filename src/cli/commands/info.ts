/** `mooring info`: lockdown values of one device, read inside a paired TLS session. */
import { DeviceSession } from '../../lockdown';
import { type CliContext, requirePairRecord, resolveEndpoint, type Via } from '../context';
import { plistToJson, plistToLines } from '../format';

export interface InfoArgs {
  udid?: string;
  via: Via;
  domain?: string;
  key?: string;
  json: boolean;
}

export async function infoCommand(ctx: CliContext, a: InfoArgs): Promise<number> {
  const endpoint = await resolveEndpoint(ctx, a.udid, a.via);
  const { record } = await requirePairRecord(ctx, endpoint.udid);
  const session = await DeviceSession.open(endpoint, record, { label: 'mooring' });
  try {
    const value = await session.getValue(a.domain, a.key);
    if (a.json) ctx.out(JSON.stringify(value === undefined ? null : plistToJson(value), null, 2));
    else if (value === undefined) ctx.out('(no value)');
    else for (const line of plistToLines(value)) ctx.out(line);
  } finally {
    await session.close();
  }
  return 0;
}
