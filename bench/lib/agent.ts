/**
 * `mooring agent` (the compiled build, MOORING_BIN) as a child for the benchmarks: started on a free
 * loopback port, ready once it printed its sign-in link and wrote agent.json (where the token is).
 */
import { spawn } from 'node:child_process';
import { readAgentFile } from '../../src/api/agent-file';
import { LOGIN_LINE, MOORING_BIN } from './measure';

export interface BenchAgent {
  pid: number;
  /** http://127.0.0.1:PORT */
  base: string;
  /** The one-time browser sign-in link it printed. */
  login: string;
  token: string;
  stop: () => Promise<void>;
}

/** Starts the agent with `--data data --listen 127.0.0.1:0` plus `args`. */
export async function startBenchAgent(data: string, args: readonly string[]): Promise<BenchAgent> {
  const child = spawn(
    process.execPath,
    [MOORING_BIN, 'agent', '--data', data, '--listen', '127.0.0.1:0', ...args],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
  child.stderr.resume();
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null) return;
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  };
  const t0 = Date.now();
  for (;;) {
    const m = LOGIN_LINE.exec(out);
    const file = m ? await readAgentFile(data) : undefined;
    if (m && file) {
      const login = m[0].slice('Mooring agent: '.length);
      return { pid: child.pid!, base: m[1]!, login, token: file.token, stop };
    }
    if (child.exitCode !== null || Date.now() - t0 > 60_000) {
      await stop();
      throw new Error(`mooring agent did not start:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}
