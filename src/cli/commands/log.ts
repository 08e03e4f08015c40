/**
 * `mooring log`: the end of the agent's log file (`DATA/logs/agent.log`), read from disk, so it
 * works whether or not an agent runs, and for the tray app, which has no console.
 */
import { UsageError } from '../../util/cli-flags';
import { logFilePath, MAX_LOG_TAIL_BYTES, readLogTail } from '../../util/log-file';

export const DEFAULT_LOG_BYTES = 64 * 1024;

export interface LogOptions {
  /** --bytes as given. */
  bytes: string | undefined;
  json: boolean;
  out: (line: string) => void;
}

export function parseLogBytes(v: string | undefined): number {
  if (v === undefined) return DEFAULT_LOG_BYTES;
  const n = Number(v);
  if (!/^\d{1,8}$/.test(v) || n < 1 || n > MAX_LOG_TAIL_BYTES) {
    throw new UsageError(
      `--bytes: expected a whole number from 1 to ${MAX_LOG_TAIL_BYTES}, got "${v.slice(0, 40)}"`,
    );
  }
  return n;
}

export async function logCommand(dataDir: string, o: LogOptions): Promise<number> {
  const tail = await readLogTail(logFilePath(dataDir), parseLogBytes(o.bytes));
  if (o.json) {
    o.out(JSON.stringify(tail, null, 2));
    return 0;
  }
  if (tail.text === '') {
    o.out(
      `The agent's log (${tail.file}) is empty or not there yet: it is written while \`mooring agent\` or the Mooring app runs with this data folder.`,
    );
    return 0;
  }
  if (tail.truncated)
    o.out(`(older lines left out: --bytes N shows more; the whole log is ${tail.file})`);
  o.out(tail.text.replace(/\n$/, ''));
  return 0;
}
