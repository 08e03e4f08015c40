/**
 * `mooring backup-now --udid U [--wait]` and `mooring cancel --udid U`, through the agent.
 * With --wait the event stream is opened before asking, so no event of the attempt is missed.
 */
import type { AgentEvent } from '../../agent/types';
import type { AgentClient } from '../../api/client';
import { formatBytes, formatCount, type AttemptRow } from '../../history';

export interface BackupNowOptions {
  udid: string;
  wait: boolean;
  json: boolean;
  out: (line: string) => void;
  err: (line: string) => void;
}

async function deviceName(client: AgentClient, udid: string): Promise<string> {
  return (await client.device(udid))?.name ?? udid;
}

export async function backupNowCommand(client: AgentClient, o: BackupNowOptions): Promise<number> {
  const abort = new AbortController();
  const events = o.wait ? await client.openEvents(abort.signal) : undefined;
  try {
    const name = await deviceName(client, o.udid);
    const r = await client.backupNow(o.udid);
    if (!r.started || r.attemptId === null) {
      if (o.json) o.out(JSON.stringify(r, null, 2));
      else o.err(`mooring: ${name}: ${r.message}`);
      return 1;
    }
    if (!events) {
      if (o.json) o.out(JSON.stringify(r, null, 2));
      else o.out(`${name}: backup started (attempt #${r.attemptId}).`);
      return 0;
    }
    if (!o.json) o.err(`${name}: backup started (attempt #${r.attemptId}); waiting for it to end…`);
    const done = await follow(events, r.attemptId, name, o);
    const attempt = done ?? (await findAttempt(client, o.udid, r.attemptId));
    if (!attempt || attempt.outcome === 'running') {
      throw new Error(`the agent stopped before attempt #${r.attemptId} ended`);
    }
    if (o.json) o.out(JSON.stringify(attempt, null, 2));
    else o.out(`${name}: ${attempt.outcome}${attempt.message ? ` — ${attempt.message}` : ''}`);
    return attempt.outcome === 'success' ? 0 : 1;
  } finally {
    abort.abort();
  }
}

/** Reads events until the attempt is recorded finished; undefined if the stream ends first. */
async function follow(
  events: AsyncGenerator<AgentEvent>,
  attemptId: number,
  name: string,
  o: BackupNowOptions,
): Promise<AttemptRow | undefined> {
  let phase = '';
  for await (const e of events) {
    if (e.type === 'attempt' && e.attempt.id === attemptId && e.attempt.outcome !== 'running') {
      return e.attempt;
    }
    if (o.json) continue;
    if (e.type === 'progress' && e.attemptId === attemptId && e.phase !== phase) {
      phase = e.phase;
      o.err(`${name}: ${phase} (${formatCount(e.files)} files, ${formatBytes(e.bytes)})`);
    } else if (e.type === 'notification' && e.notification.attemptId === attemptId) {
      o.err(`${name}: ${e.notification.message}`);
      if (e.notification.fixHint) o.err(`  what to do: ${e.notification.fixHint}`);
    }
  }
  return undefined;
}

async function findAttempt(
  client: AgentClient,
  udid: string,
  id: number,
): Promise<AttemptRow | undefined> {
  const page = await client.attempts({ udid, limit: 20 }).catch(() => undefined);
  return page?.items.find((a) => a.id === id);
}

export async function cancelCommand(
  client: AgentClient,
  o: { udid: string; json: boolean; out: (l: string) => void; err: (l: string) => void },
): Promise<number> {
  const name = await deviceName(client, o.udid);
  const cancelled = await client.cancel(o.udid);
  if (o.json) o.out(JSON.stringify({ cancelled }, null, 2));
  else if (cancelled) o.out(`${name}: backup cancelled (the last good backup is untouched).`);
  else o.err(`mooring: ${name}: no backup is running`);
  return cancelled ? 0 : 1;
}
