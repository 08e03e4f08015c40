/** `mooring config get [KEY] | set KEY VALUE | reset KEY [--udid U]`, and `pause` / `resume`. */
import type { AgentClient } from '../../api/client';
import type { ConfigValues } from '../../agent/types';
import { UsageError } from '../../util/cli-flags';

export interface ConfigOptions {
  udid?: string;
  json: boolean;
  out: (line: string) => void;
}

const USAGE = 'usage: mooring config get [KEY] | set KEY VALUE | reset KEY [--udid U]';

function known(values: ConfigValues, key: string): void {
  if (!(key in values)) {
    throw new UsageError(`unknown setting "${key}" (settings: ${Object.keys(values).join(', ')})`);
  }
}

function print(values: ConfigValues, o: ConfigOptions, only?: string): void {
  if (o.json) {
    o.out(JSON.stringify(only === undefined ? values : { [only]: values[only] }, null, 2));
    return;
  }
  const keys = only === undefined ? Object.keys(values) : [only];
  const width = Math.max(...keys.map((k) => k.length));
  for (const k of keys) o.out(`${k.padEnd(width)}  ${values[k]}`);
}

export async function configCommand(
  client: AgentClient,
  args: string[],
  o: ConfigOptions,
): Promise<number> {
  const [action, key, value, ...extra] = args;
  if (extra.length > 0) throw new UsageError(USAGE);
  if (action === 'get' && value === undefined) {
    const values = await client.getConfig(o.udid);
    if (key !== undefined) known(values, key);
    print(values, o, key);
    return 0;
  }
  if (action === 'set' && key !== undefined && value !== undefined) {
    print(await client.setConfig({ [key]: value }, o.udid), o, o.json ? undefined : key);
    return 0;
  }
  if (action === 'reset' && key !== undefined && value === undefined) {
    print(await client.setConfig({ [key]: null }, o.udid), o, o.json ? undefined : key);
    return 0;
  }
  throw new UsageError(USAGE);
}

export async function pauseCommand(
  client: AgentClient,
  pause: boolean,
  o: { json: boolean; out: (line: string) => void },
): Promise<number> {
  const paused = pause ? await client.pause() : await client.resume();
  if (o.json) o.out(JSON.stringify({ paused }, null, 2));
  else if (paused) {
    o.out('Automatic backups paused: `mooring resume` restarts them (backup-now still works).');
  } else o.out('Automatic backups resumed.');
  return 0;
}
