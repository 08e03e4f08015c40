/** Where Mooring keeps its own files, per the platform's convention for per-user application data. */
import os from 'node:os';
import path from 'node:path';

export function defaultDataDir(
  platform: NodeJS.Platform = process.platform,
  env: NodeJS.ProcessEnv = process.env,
  home = os.homedir(),
): string {
  if (env.MOORING_HOME) return path.resolve(env.MOORING_HOME);
  if (platform === 'darwin') return path.join(home, 'Library', 'Application Support', 'Mooring');
  if (platform === 'win32') {
    return path.join(env.LOCALAPPDATA ?? path.join(home, 'AppData', 'Local'), 'Mooring');
  }
  return path.join(env.XDG_DATA_HOME ?? path.join(home, '.local', 'share'), 'mooring');
}

/** Mooring's own copy of pair records (0600 files), consulted after usbmuxd and the OS folder. */
export function pairRecordStoreDir(dataDir: string): string {
  return path.join(dataDir, 'pair-records');
}

/** State of the embedded simulated device (`--sim`). */
export function embeddedSimDir(dataDir: string): string {
  return path.join(dataDir, 'simulator');
}

/** The agent's history of attempts, skips and failures, and its settings. */
export function historyFile(dataDir: string): string {
  return path.join(dataDir, 'history.db');
}

/** Where backups go when neither --dest nor the backup-dir setting says otherwise. */
export function defaultBackupDir(dataDir: string): string {
  return path.join(dataDir, 'backups');
}
