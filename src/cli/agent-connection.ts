/**
 * How client commands find the running agent: `--agent URL` with the token in MOORING_TOKEN, or
 * the agent.json the agent wrote into the data folder.
 */
import { AgentClient } from '../api/client';
import { processAlive, readAgentFile } from '../api/agent-file';
import { MooringError } from '../util/errors';

/** Exit status of a client command when no agent answers. */
export const EXIT_NO_AGENT = 3;

export class NoAgentError extends MooringError {
  constructor(dataDir: string) {
    super('CLOSED', `No Mooring agent is running for ${dataDir}: start one with \`mooring agent\``);
    this.name = 'NoAgentError';
  }
}

export interface AgentLocation {
  dataDir: string;
  /** --agent URL */
  url?: string;
  env?: NodeJS.ProcessEnv;
}

/** The client for the running agent, or undefined when none runs (and none was named). */
export async function findAgent(loc: AgentLocation): Promise<AgentClient | undefined> {
  if (loc.url !== undefined) {
    const token = (loc.env ?? process.env).MOORING_TOKEN;
    if (!token) {
      throw new MooringError('USAGE', '--agent URL needs the API token in MOORING_TOKEN');
    }
    return new AgentClient(loc.url, token);
  }
  const file = await readAgentFile(loc.dataDir);
  // A file left by a killed agent names a pid that no longer runs.
  if (!file || !processAlive(file.pid)) return undefined;
  return new AgentClient(file.url, file.token);
}

export async function requireAgent(loc: AgentLocation): Promise<AgentClient> {
  const client = await findAgent(loc);
  if (!client) throw new NoAgentError(loc.dataDir);
  return client;
}
