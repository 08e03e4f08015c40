/**
 * The commands that run or talk to the agent (`agent`, `status`, `history`, `attempts`,
 * `backup-now`, `cancel`, `config`, `pause`, `resume`, and `devices` while an agent runs).
 */
import {
  ATTEMPT_OUTCOMES,
  NOTIFICATION_KINDS,
  SEVERITIES,
  type AttemptOutcome,
  type NotificationKind,
  type Severity,
} from '../history';
import { intFlag, UsageError } from '../util/cli-flags';
import { findAgent, requireAgent, type AgentLocation } from './agent-connection';
import type * as AgentCommandModule from './commands/agent';
import {
  agentDevicesCommand,
  attemptsCommand,
  historyCommand,
  statusCommand,
} from './commands/agent-views';
import { backupNowCommand, cancelCommand } from './commands/backup-now';
import { configCommand, pauseCommand } from './commands/config';

export const AGENT_COMMANDS = [
  'agent',
  'status',
  'history',
  'attempts',
  'backup-now',
  'cancel',
  'config',
  'pause',
  'resume',
  'open',
] as const;

export interface AgentCommandArgs {
  command: string;
  rest: string[];
  flags: Map<string, string>;
  dataDir: string;
  out: (line: string) => void;
  err: (line: string) => void;
}

function oneOf<T extends string>(
  flags: Map<string, string>,
  name: string,
  values: readonly T[],
): T | undefined {
  const v = flags.get(name);
  if (v === undefined || (values as readonly string[]).includes(v)) return v as T | undefined;
  throw new UsageError(`--${name}: expected one of ${values.join(', ')}, got "${v}"`);
}

function paging(flags: Map<string, string>): { limit?: number; before?: number; udid?: string } {
  const limit = intFlag(flags, 'limit', 1000);
  const before = intFlag(flags, 'before');
  const udid = flags.get('udid');
  if (limit === 0) throw new UsageError('--limit: expected 1 to 1000');
  return {
    ...(limit === undefined ? {} : { limit }),
    ...(before === undefined ? {} : { before }),
    ...(udid === undefined ? {} : { udid }),
  };
}

function requireUdid(flags: Map<string, string>, command: string): string {
  const udid = flags.get('udid');
  if (udid === undefined)
    throw new UsageError(`${command} needs --udid U (see \`mooring devices\`)`);
  return udid;
}

/** Runs `devices` through the agent when one runs; undefined when none does. */
export async function agentDevices(a: AgentCommandArgs): Promise<number | undefined> {
  const client = await findAgent(location(a));
  if (!client) return undefined;
  return agentDevicesCommand(client, { json: a.flags.has('json'), out: a.out });
}

function location(a: AgentCommandArgs): AgentLocation {
  const url = a.flags.get('agent');
  return { dataDir: a.dataDir, ...(url === undefined ? {} : { url }) };
}

export async function runAgentCommand(a: AgentCommandArgs): Promise<number> {
  const { flags, out, err } = a;
  const json = flags.has('json');
  const noMore = (): void => {
    if (a.rest.length > 0) throw new UsageError(`unexpected argument "${a.rest[0]}"`);
  };
  if (a.command === 'agent') {
    noMore();
    // Only `mooring agent` runs the agent itself (discovery, the schedule, the HTTP API): loaded
    // here, every other command starts without it.
    const { agentCommand, DEFAULT_LISTEN } =
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      require('./commands/agent') as typeof AgentCommandModule;
    const backupDir = flags.get('backup-dir');
    const usbmuxd = flags.get('usbmuxd');
    const mdnsInterface = flags.get('mdns-interface');
    const wifiPort = flags.get('wifi-port');
    const lanPasswordFile = flags.get('lan-password-file');
    return agentCommand({
      dataDir: a.dataDir,
      listen: flags.get('listen') ?? DEFAULT_LISTEN,
      ...(backupDir === undefined ? {} : { backupDir }),
      ...(usbmuxd === undefined ? {} : { usbmuxd }),
      ...(mdnsInterface === undefined ? {} : { mdnsInterface }),
      ...(wifiPort === undefined ? {} : { wifiPort }),
      ...(lanPasswordFile === undefined ? {} : { lanPasswordFile }),
      sim: flags.has('sim'),
      noStorePasswords: flags.has('no-store-passwords'), // H8c
      out,
      err,
    });
  }
  if (a.command !== 'config') noMore();
  const client = await requireAgent(location(a));
  switch (a.command) {
    case 'status':
      return statusCommand(client, { json, out });
    case 'history': {
      const severity = oneOf<Severity>(flags, 'severity', SEVERITIES);
      const kind = oneOf<NotificationKind>(flags, 'kind', NOTIFICATION_KINDS);
      return historyCommand(
        client,
        { ...paging(flags), ...(severity ? { severity } : {}), ...(kind ? { kind } : {}) },
        { json, out, markRead: flags.has('mark-read') },
      );
    }
    case 'attempts': {
      const outcome = oneOf<AttemptOutcome>(flags, 'outcome', ATTEMPT_OUTCOMES);
      return attemptsCommand(
        client,
        { ...paging(flags), ...(outcome ? { outcome } : {}) },
        { json, out },
      );
    }
    case 'backup-now':
      return backupNowCommand(client, {
        udid: requireUdid(flags, 'backup-now'),
        wait: flags.has('wait'),
        json,
        out,
        err,
      });
    case 'cancel':
      return cancelCommand(client, { udid: requireUdid(flags, 'cancel'), json, out, err });
    case 'config': {
      const udid = flags.get('udid');
      return configCommand(client, a.rest, { json, out, ...(udid === undefined ? {} : { udid }) });
    }
    case 'pause':
    case 'resume':
      return pauseCommand(client, a.command === 'pause', { json, out });
    case 'open': {
      // The agent's first link works once; this one too (the token never goes in a URL).
      const url = await client.loginLink();
      out(json ? JSON.stringify({ url }, null, 2) : url);
      return 0;
    }
    default:
      throw new UsageError(`unknown command "${a.command}"`);
  }
}
