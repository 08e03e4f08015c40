/**
 * An agent's HTTP face, as both front ends that host an agent set it up (`mooring agent` and the
 * desktop app): the API and browser UI on loopback with the data folder's persisted token, and
 * agent.json naming it for `mooring status` and friends. `close()` removes agent.json first (no
 * client should find a server that is going away), then stops the server.
 */
import type { AgentService } from '../agent/types';
import { isMooringError } from '../util/errors';
import { loadOrCreateToken, removeAgentFile, writeAgentFile } from './agent-file';
import { startApiServer, type RunningApiServer } from './server';

/** Where an agent's API listens unless told otherwise; clients look there too. */
export const DEFAULT_API_LISTEN = { host: '127.0.0.1', port: 47110 } as const;

export interface ServeAgentOptions {
  dataDir: string;
  listen: { host: string; port: number };
  /** When the port is taken, listen on a free one instead of failing (the desktop app). */
  anyPortIfBusy?: boolean;
  log?: (line: string) => void;
  /** Opt-in to a non-loopback `listen` (see ApiServerOptions.lanPassword). */
  lanPassword?: string;
}

export interface ServedAgent {
  /** http://HOST:PORT, without the token. */
  url: string;
  port: number;
  token: string;
  /** A new one-time login link for a browser (the token itself never goes in a URL). */
  loginUrl(): string;
  close(): Promise<void>;
}

function portBusy(e: unknown): boolean {
  const cause = isMooringError(e) ? e.cause : e;
  return (cause as NodeJS.ErrnoException | undefined)?.code === 'EADDRINUSE';
}

export async function serveAgent(
  service: AgentService,
  o: ServeAgentOptions,
): Promise<ServedAgent> {
  const token = await loadOrCreateToken(o.dataDir);
  const start = (port: number): Promise<RunningApiServer> =>
    startApiServer({
      service,
      listen: { host: o.listen.host, port },
      token,
      ...(o.log ? { log: o.log } : {}),
      ...(o.lanPassword === undefined ? {} : { lanPassword: o.lanPassword }),
    });
  let server: RunningApiServer;
  try {
    server = await start(o.listen.port);
  } catch (e) {
    if (!o.anyPortIfBusy || o.listen.port === 0 || !portBusy(e)) throw e;
    o.log?.(`${o.listen.host}:${o.listen.port} is in use: the API listens on a free port instead`);
    server = await start(0);
  }
  try {
    await writeAgentFile(o.dataDir, {
      url: server.url,
      token,
      pid: process.pid,
      startedAt: Date.now(),
    });
  } catch (e) {
    await server.close();
    throw e;
  }
  let closing: Promise<void> | undefined;
  return {
    url: server.url,
    port: server.port,
    token,
    loginUrl: () => server.loginUrl(),
    close: () =>
      (closing ??= (async () => {
        await removeAgentFile(o.dataDir).catch(() => undefined);
        await server.close();
      })()),
  };
}
