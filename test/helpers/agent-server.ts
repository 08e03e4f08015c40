/**
 * The set-up of the API and desktop-bridge tests that need no device: a temporary folder, a real
 * Agent on it with no USB and no Bonjour, and (when asked) the real HTTP API in front of it on a
 * free 127.0.0.1 port. `close()` undoes all of it, also after a failed start.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Agent, type AgentOptions } from '../../src/agent/agent';
import type { AgentService } from '../../src/agent/types';
import { AgentClient } from '../../src/api/client';
import { startApiServer, type ApiServerOptions, type RunningApiServer } from '../../src/api/server';
import { openStore } from '../../src/store';
import { writeBackup, type FakeEntry } from '../store/fixture';

export interface BareAgentOptions {
  /**
   * Runs in the new folder before the agent opens (e.g. to fill a backup folder); what it returns
   * is added to the agent's options. Without it the folder itself is the data folder.
   */
  prepare?: (tmp: string) => Promise<Partial<AgentOptions>>;
}

export interface BareAgent {
  tmp: string;
  agent: Agent;
  /** Stops the server (if any) and the agent, and removes the folder. */
  close(): Promise<void>;
}

export interface ServedAgent extends BareAgent {
  server: RunningApiServer;
  port: number;
  client: AgentClient;
}

/** A started Agent without devices on a new folder under the system's temp dir. */
export async function startBareAgent(prefix: string, o: BareAgentOptions = {}): Promise<BareAgent> {
  const tmp = await mkdtemp(path.join(os.tmpdir(), prefix));
  let agent: Agent | undefined;
  const close = async (): Promise<void> => {
    await agent?.stop();
    await rm(tmp, { recursive: true, force: true });
  };
  try {
    const extra = (await o.prepare?.(tmp)) ?? {};
    agent = await Agent.open({
      dataDir: tmp,
      usbmuxd: null,
      mdns: null,
      systemPairRecordDir: null,
      ...extra,
    });
    await agent.start();
    return { tmp, agent, close };
  } catch (e) {
    await close();
    throw e;
  }
}

type ServerExtras = Partial<Omit<ApiServerOptions, 'service' | 'token'>>;

/** The API in front of `service` on 127.0.0.1, any free port. */
export function serveOnLoopback(
  service: AgentService,
  token: string,
  extra: ServerExtras = {},
): Promise<RunningApiServer> {
  return startApiServer({ service, listen: { host: '127.0.0.1', port: 0 }, token, ...extra });
}

/** startBareAgent plus the API on 127.0.0.1 (any free port) with `token`, and a client of it. */
export async function startServedAgent(
  prefix: string,
  token: string,
  o: BareAgentOptions & { server?: ServerExtras } = {},
): Promise<ServedAgent> {
  const bare = await startBareAgent(prefix, o);
  try {
    const server = await serveOnLoopback(bare.agent, token, o.server);
    return {
      ...bare,
      server,
      port: server.port,
      client: new AgentClient(server.url, token),
      close: async () => {
        await server.close();
        await bare.close();
      },
    };
  } catch (e) {
    await bare.close();
    throw e;
  }
}

/** Commits one snapshot per entry list into the store of `udid` under `backupDir`; their ids. */
export async function commitSnapshots(
  backupDir: string,
  udid: string,
  versions: FakeEntry[][],
): Promise<string[]> {
  const store = await openStore(backupDir, udid);
  const ids: string[] = [];
  for (const entries of versions) {
    const s = await store.beginStaging();
    await writeBackup(s.backupDir, entries, { udid });
    ids.push((await s.commit()).id);
  }
  return ids;
}
