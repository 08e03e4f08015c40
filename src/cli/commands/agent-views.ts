/** `mooring status`, `devices` (agent view), `history`, `attempts`: reading the running agent. */
import type { AgentClient } from '../../api/client';
import type { AttemptOutcome, AttemptQuery, HistoryQuery } from '../../history';
import { attemptLine, deviceLines, namesOf, notificationLines, statusLines } from '../agent-format';

export interface ViewOptions {
  json: boolean;
  out: (line: string) => void;
}

export async function statusCommand(client: AgentClient, o: ViewOptions): Promise<number> {
  const s = await client.status();
  if (o.json) o.out(JSON.stringify(s, null, 2));
  else for (const l of statusLines(s, Date.now())) o.out(l);
  return 0;
}

export async function agentDevicesCommand(client: AgentClient, o: ViewOptions): Promise<number> {
  const devices = await client.devices();
  if (o.json) {
    o.out(JSON.stringify(devices, null, 2));
    return 0;
  }
  if (devices.length === 0) o.out('The agent knows no devices yet: pair one with `mooring pair`.');
  const now = Date.now();
  devices.forEach((d, i) => {
    if (i > 0) o.out('');
    for (const l of deviceLines(d, now)) o.out(l);
  });
  return 0;
}

/**
 * `markRead`: once shown, they are read: every notification (of --udid's device) up to the newest
 * shown, or, when a filter hides some, exactly those shown.
 */
export async function historyCommand(
  client: AgentClient,
  q: HistoryQuery,
  o: ViewOptions & { markRead?: boolean },
): Promise<number> {
  const page = await client.history(q);
  const markRead = async (): Promise<number> => {
    const newest = page.items[0]?.id;
    if (o.markRead !== true || newest === undefined) return 0;
    const scope = q.udid === undefined ? {} : { udid: q.udid };
    if (q.severity === undefined && q.kind === undefined) {
      return client.markRead({ ...scope, upTo: newest });
    }
    const ids = page.items.filter((n) => !n.read).map((n) => n.id);
    return ids.length === 0 ? 0 : client.markRead({ ...scope, ids });
  };
  if (o.json) {
    o.out(JSON.stringify(page, null, 2));
    await markRead();
    return 0;
  }
  if (page.items.length === 0) o.out('No notifications.');
  const names = namesOf(await client.devices());
  const now = Date.now();
  for (const n of page.items) for (const l of notificationLines(n, names, now)) o.out(l);
  if (page.nextCursor !== null) o.out(`(older entries: --before ${page.nextCursor})`);
  if (o.markRead === true) {
    const marked = await markRead();
    o.out(`${marked} notification${marked === 1 ? '' : 's'} marked read.`);
  }
  return 0;
}

export async function attemptsCommand(
  client: AgentClient,
  q: AttemptQuery & { outcome?: AttemptOutcome },
  o: ViewOptions,
): Promise<number> {
  const page = await client.attempts(q);
  if (o.json) {
    o.out(JSON.stringify(page, null, 2));
    return 0;
  }
  if (page.items.length === 0) o.out('No backup attempts yet.');
  const names = namesOf(await client.devices());
  const now = Date.now();
  for (const a of page.items) o.out(attemptLine(a, names, now));
  if (page.nextCursor !== null) o.out(`(older attempts: --before ${page.nextCursor})`);
  return 0;
}
