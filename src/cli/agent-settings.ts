/**
 * What the agent's settings say about the store, for the commands that work on it without the
 * agent (snapshots, prune, verify, files, backup …): where backups go, and how long a device's are
 * kept. Without this, a user who chose a backup folder in the app would find `mooring snapshots`
 * looking in the default one, and `mooring prune` would apply the default periods to a device
 * whose settings keep more.
 */
import fs from 'node:fs';
import path from 'node:path';
import { readGlobalSettings, readRetention } from '../agent/config';
import { openHistory, type History } from '../history';
import type { RetentionPolicy } from '../store';
import { defaultBackupDir, historyFile } from '../util/paths';
import { findAgent } from './agent-connection';

export interface Destination {
  dir: string;
  /** Where `dir` came from, for messages. */
  from: string;
}

/**
 * --dest; else the running agent's backup folder (it may have been started with --backup-dir);
 * else the backup-dir setting in its history; else DATA-DIR/backups.
 */
export async function resolveDestination(
  flag: string | undefined,
  dataDir: string,
  warn: (line: string) => void,
): Promise<Destination> {
  if (flag !== undefined) return { dir: path.resolve(flag), from: '--dest' };
  const running = await runningAgentFolder(dataDir);
  if (running !== undefined) return { dir: running, from: 'the running agent’s backup folder' };
  const chosen = withHistory(dataDir, warn, (h) => readGlobalSettings(h, warn).backupDir);
  if (typeof chosen === 'string') return { dir: chosen, from: 'the backup-dir setting' };
  return { dir: path.resolve(defaultBackupDir(dataDir)), from: 'the default backup folder' };
}

/** The device's keep-* settings (its own, else the global ones), or undefined without a history. */
export function agentRetention(
  dataDir: string,
  udid: string,
  warn: (line: string) => void,
): RetentionPolicy | undefined {
  return withHistory(dataDir, warn, (h) => readRetention(h, udid, warn));
}

async function runningAgentFolder(dataDir: string): Promise<string | undefined> {
  try {
    const agent = await findAgent({ dataDir });
    return agent === undefined ? undefined : (await agent.status()).backupDir;
  } catch {
    // An agent that does not answer (starting, stopping, an old agent.json): read its settings.
    return undefined;
  }
}

/** Runs `read` on the agent's history when there is one; a history that cannot be opened is told. */
function withHistory<T>(
  dataDir: string,
  warn: (line: string) => void,
  read: (h: History) => T,
): T | undefined {
  const file = historyFile(dataDir);
  if (!fs.existsSync(file)) return undefined;
  let h: History;
  try {
    h = openHistory(file, { check: 'none' });
  } catch (e) {
    warn(`not reading the agent's settings: ${(e as Error).message}`);
    return undefined;
  }
  try {
    return read(h);
  } finally {
    h.close();
  }
}
