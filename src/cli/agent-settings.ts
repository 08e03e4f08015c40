/**
 * What the agent's settings say about the store, for the commands that work on it without the
 * agent (snapshots, prune, verify, files, backup …): where backups go, and how long a device's are
 * kept. Without this, a user who chose a backup folder in the app would find `mooring snapshots`
 * looking in the default one, and `mooring prune` would apply the default periods to a device
 * whose settings keep more. The history is opened read-only: a command never migrates or writes
 * the database of a running agent.
 */
import fs from 'node:fs';
import path from 'node:path';
import { readGlobalSettings, readRetention } from '../agent/config';
import { openHistoryReadOnly, type History } from '../history';
import type { RetentionPolicy } from '../store';
import { MooringError } from '../util/errors';
import { defaultBackupDir, historyFile } from '../util/paths';
import { findAgent } from './agent-connection';

export interface Destination {
  dir: string;
  /** Where `dir` came from, for messages. */
  from: string;
  /** The person chose it (the agent's folder or the setting): it must not be created anew. */
  chosen: boolean;
}

/**
 * --dest; else the running agent's backup folder (it may have been started with --backup-dir);
 * else the backup-dir setting in its history; else DATA-DIR/backups. A history that cannot be
 * read is said on `warn`, and the default folder is used.
 */
export async function resolveDestination(
  flag: string | undefined,
  dataDir: string,
  warn: (line: string) => void,
): Promise<Destination> {
  if (flag !== undefined) return { dir: path.resolve(flag), from: '--dest', chosen: false };
  const running = await runningAgentFolder(dataDir);
  if (running !== undefined) {
    return { dir: running, from: 'the running agent’s backup folder', chosen: true };
  }
  let chosen: string | null | undefined;
  try {
    chosen = withHistory(
      dataDir,
      (h) => readGlobalSettings(h, (l) => warn(`mooring: ${l}`)).backupDir,
    );
  } catch (e) {
    warn(`mooring: not reading the agent's settings: ${(e as Error).message}`);
  }
  if (typeof chosen === 'string')
    return { dir: chosen, from: 'the backup-dir setting', chosen: true };
  return {
    dir: path.resolve(defaultBackupDir(dataDir)),
    from: 'the default backup folder',
    chosen: false,
  };
}

/**
 * For a command that writes backups: a folder the person chose must exist (a disk unplugged must
 * not become a full backup on the system disk, as the agent refuses too).
 */
export function requireChosenFolder(d: Destination): void {
  if (d.chosen && !fs.existsSync(d.dir)) {
    throw new MooringError(
      'IO',
      `The backup folder ${d.dir} (${d.from}) is missing: connect the disk it is on, or pass --dest DIR to back up elsewhere`,
      { detail: 'FOLDER_MISSING' },
    );
  }
}

/**
 * The device's keep-* settings (its own, else the global ones); undefined without a history. A
 * history that exists but cannot be read throws: the caller must not prune by defaults that may
 * keep less than the person chose.
 */
export function agentRetention(
  dataDir: string,
  udid: string,
  warn: (line: string) => void,
): RetentionPolicy | undefined {
  return withHistory(dataDir, (h) => readRetention(h, udid, warn));
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

/** Runs `read` on the agent's history, opened read-only; undefined when there is none. */
function withHistory<T>(dataDir: string, read: (h: History) => T): T | undefined {
  const file = historyFile(dataDir);
  if (!fs.existsSync(file)) return undefined;
  const h = openHistoryReadOnly(file);
  try {
    return read(h);
  } finally {
    h.close();
  }
}
