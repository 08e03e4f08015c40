/**
 * The files through which clients find a running agent, all 0600 in the data folder:
 * - agent.json {url, token, pid, startedAt}: written once the API listens, removed on a clean exit;
 * - api-token: the API token, created once and reused, so a bookmarked UI keeps working;
 * - agent.lock: the pid of the agent that owns the data folder (one agent per folder).
 */
import { randomBytes } from 'node:crypto';
import {
  chmod,
  mkdir,
  open,
  readFile,
  rename,
  rm,
  stat,
  unlink,
  writeFile,
} from 'node:fs/promises';
import path from 'node:path';
import { MooringError } from '../util/errors';

export interface AgentFile {
  /** http://127.0.0.1:PORT (no token). */
  url: string;
  token: string;
  pid: number;
  startedAt: number;
}

const TOKEN_SHAPE = /^[A-Za-z0-9_-]{43}$/;
/** agent.json is tiny; anything larger is not ours. */
const MAX_AGENT_FILE_BYTES = 4096;

export const agentFilePath = (dataDir: string): string => path.join(dataDir, 'agent.json');
export const tokenFilePath = (dataDir: string): string => path.join(dataDir, 'api-token');
export const lockFilePath = (dataDir: string): string => path.join(dataDir, 'agent.lock');

/** Writes `text` to a temporary file (0600) and renames it over `file`: readers see all or nothing. */
async function writeAtomic(file: string, text: string): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    await writeFile(tmp, text, { mode: 0o600, flag: 'w' });
    await chmod(tmp, 0o600);
    await rename(tmp, file);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

export async function writeAgentFile(dataDir: string, info: AgentFile): Promise<void> {
  await writeAtomic(agentFilePath(dataDir), JSON.stringify(info, null, 2) + '\n');
}

/** The agent file, or undefined when there is none or it is not a valid one. */
export async function readAgentFile(dataDir: string): Promise<AgentFile | undefined> {
  let text: string;
  try {
    const file = agentFilePath(dataDir);
    if ((await stat(file)).size > MAX_AGENT_FILE_BYTES) return undefined;
    text = await readFile(file, 'utf8');
  } catch {
    return undefined;
  }
  try {
    const v = JSON.parse(text) as Partial<AgentFile>;
    if (
      typeof v.url === 'string' &&
      typeof v.token === 'string' &&
      Number.isSafeInteger(v.pid) &&
      Number.isSafeInteger(v.startedAt)
    ) {
      return { url: v.url, token: v.token, pid: v.pid!, startedAt: v.startedAt! };
    }
  } catch {
    // A half-written file from another tool: treat as absent.
  }
  return undefined;
}

/** Removes agent.json if it is this process's (never another agent's). */
export async function removeAgentFile(dataDir: string, pid = process.pid): Promise<void> {
  const current = await readAgentFile(dataDir);
  if (current && current.pid !== pid) return;
  await rm(agentFilePath(dataDir), { force: true });
}

/** The persisted API token, created (32 random bytes, base64url) on first use. */
export async function loadOrCreateToken(dataDir: string): Promise<string> {
  const file = tokenFilePath(dataDir);
  try {
    const text = (await readFile(file, 'utf8')).trim();
    if (TOKEN_SHAPE.test(text)) {
      // Someone may have loosened the mode; the token is as good as a password.
      if (((await stat(file)).mode & 0o077) !== 0) await chmod(file, 0o600);
      return text;
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  const token = randomBytes(32).toString('base64url');
  await writeAtomic(file, token + '\n');
  return token;
}

/** Whether a process with this pid exists (EPERM: it does, but belongs to someone else). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export interface AgentLock {
  release(): Promise<void>;
}

/**
 * Claims the data folder for this agent. A lock whose pid no longer runs was left by a killed
 * agent and is taken over; a live one is refused with a message naming it.
 */
export async function acquireAgentLock(dataDir: string): Promise<AgentLock> {
  const file = lockFilePath(dataDir);
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const h = await open(file, 'wx', 0o600);
      try {
        await h.writeFile(`${process.pid}\n`);
      } finally {
        await h.close();
      }
      return {
        release: async () => {
          const owner = await readFile(file, 'utf8').catch(() => '');
          if (Number(owner.trim()) === process.pid) await unlink(file).catch(() => undefined);
        },
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const owner = Number((await readFile(file, 'utf8').catch(() => '')).trim());
    if (Number.isSafeInteger(owner) && owner > 0 && processAlive(owner)) {
      const running = await readAgentFile(dataDir);
      throw new MooringError(
        'USAGE',
        `another Mooring agent (pid ${owner}) is already running for ${dataDir}` +
          (running ? ` at ${running.url}` : '') +
          `: stop it first, or pass a different --data (if no agent runs, remove ${file})`,
      );
    }
    await unlink(file).catch(() => undefined);
  }
  throw new MooringError(
    'IO',
    `could not claim ${file}: another agent is starting at the same time`,
  );
}
