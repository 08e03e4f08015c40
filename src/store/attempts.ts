/**
 * Every backup attempt, kept as one JSON line in `<dest>/.mooring/<UDID>/attempts.jsonl`, so a
 * failure or a refused device path is on record even before the agent's history database
 * (issue 4) exists. Appends are small single writes followed by fsync: a crash loses at most
 * the line being written, never earlier ones, and readers skip a torn last line.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';

export const ATTEMPTS_FILE = 'attempts.jsonl';
/** Longest line we write or read back: an attempt is a summary, not a file list. */
export const MAX_ATTEMPT_LINE_BYTES = 64 * 1024;

export interface AttemptRecord {
  startedAt: string;
  endedAt: string;
  ok: boolean;
  /** One human line. */
  message: string;
  failure?: string;
  errorCode?: number;
  bytesReceived: number;
  filesReceived: number;
  /** Device paths refused because they would leave the device's folder. */
  refusedPaths: string[];
  snapshot?: string;
  transport?: string;
}

export async function appendAttempt(stateDir: string, r: AttemptRecord): Promise<void> {
  let line = JSON.stringify(r);
  if (Buffer.byteLength(line) > MAX_ATTEMPT_LINE_BYTES) {
    line = JSON.stringify({ ...r, refusedPaths: r.refusedPaths.slice(0, 20) });
  }
  const fh = await fsp.open(path.join(stateDir, ATTEMPTS_FILE), 'a', 0o600);
  try {
    await fh.write(line + '\n');
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export async function readAttempts(stateDir: string): Promise<AttemptRecord[]> {
  let text: string;
  try {
    text = await fsp.readFile(path.join(stateDir, ATTEMPTS_FILE), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  const out: AttemptRecord[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.length > MAX_ATTEMPT_LINE_BYTES) continue;
    try {
      out.push(JSON.parse(line) as AttemptRecord);
    } catch {
      // a torn last line after a crash
    }
  }
  return out;
}
