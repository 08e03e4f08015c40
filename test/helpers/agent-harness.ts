/**
 * The scenario harness for issue 4's acceptance tests: a temporary data directory, simulated
 * iPhones started in this process (Wi-Fi ones advertising on the loopback interface only, USB ones
 * behind their own simulated usbmuxd), each paired into the data directory with `mooring pair`, and
 * `mooring agent` as a real child process whose HTTP API the tests drive with plain fetch and the
 * token it prints. Every wait polls the API and is bounded; on a timeout the error carries the
 * agent's stderr, its attempts and its notifications, so a failing CI log says what happened.
 * `close()` stops everything (children killed, simulators stopped, mounts removed) even after a
 * failure; a process-exit hook kills any agent a crashed test left behind.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, promises as fsp, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { AgentStatus, DeviceStatus } from '../../src/agent/types';
import { readAgentFile } from '../../src/api/agent-file';
import type { AttemptRow, NotificationRow, Page } from '../../src/history';
import { startSim, type PasscodeMode, type RunningSim, type SimFaults } from '../../src/sim/index';
import { mooring, type CliRun } from '../cli/run-cli';
import { exists, fingerprint, ROOT, treeNames } from '../cli/backup-fixture';

// The scenarios look at backups as the `mooring backup` tests do.
export { exists, fingerprint, ROOT, treeNames };

const BIN = path.join(ROOT, 'src', 'bin', 'mooring.ts');
/** The agent's first stdout line (CLI contract): a one-time browser login link, never the token. */
export const URL_LINE =
  /^Mooring agent: ((http:\/\/127\.0\.0\.1:\d+)\/login\?code=[A-Za-z0-9_-]+)\s*$/;
/** Longest we wait for the agent to print its URL (tsx compiles the sources on first start). */
const AGENT_START_TIMEOUT_MS = 60_000;
/** Default bound of every wait: a safety net so a missing outcome fails instead of hanging. */
export const WAIT_MS = 90_000;
/** The time zone the agent runs in, so tests can compute windows that exclude "now". */
export const AGENT_TZ = 'UTC';

// Any agent still alive when the test process exits (a crashed test) is killed with it.
const liveChildren = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of liveChildren) c.kill('SIGKILL');
});

export interface SimSpec {
  /** A short label the test uses to find it (and the simulator's device name suffix). */
  name: string;
  /** 'wifi': Wi-Fi lockdownd on `wifiHost` + Bonjour on 127.0.0.1; 'usb': the agent's usbmuxd. */
  transport: 'usb' | 'wifi';
  /** 127.0.0.x for a Wi-Fi simulator. */
  wifiHost?: string;
  passcode?: PasscodeMode;
  faults?: SimFaults;
  files?: number;
  bytes?: number;
  seed?: number;
  /** H8c: keybag rounds of the simulator's encryption (lowered for quick tests). */
  keyBagRounds?: { dpic?: number; iter?: number };
}

export interface AgentProcess {
  child: ChildProcess;
  url: string;
  /** The one-time browser login link the agent printed (works once). */
  loginUrl: string;
  /** The API token, from DATA-DIR/agent.json as programs find it. */
  token: string;
  /** Everything the agent wrote on stderr so far. */
  stderr: string[];
  /** Resolves once the process has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface ScenarioOptions {
  sims: SimSpec[];
  /** `--backup-dir` for the agent (default `<data>/backups`). */
  backupDir?: string;
  /** Extra environment for the agent process. */
  env?: Record<string, string>;
  /** Start the agent right away (default true). */
  startAgent?: boolean;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
    what: string,
  ) {
    super(`${what}: HTTP ${status} ${JSON.stringify(body)}`);
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class Scenario {
  readonly dataDir: string;
  backupDir: string;
  readonly sims = new Map<string, RunningSim>();
  /** Each simulator's JSON log lines (its `event` and fields), by name. */
  readonly simLogs = new Map<string, Array<Record<string, unknown>>>();
  agent: AgentProcess | undefined;
  /** The stderr of every agent this scenario ran, oldest first (for diagnostics). */
  private readonly agentLogs: string[][] = [];
  private readonly mounts: string[] = [];
  private readonly specs: SimSpec[];
  private readonly env: Record<string, string>;
  private closed = false;

  private constructor(
    readonly tmp: string,
    o: ScenarioOptions,
  ) {
    this.dataDir = path.join(tmp, 'data');
    this.backupDir = o.backupDir ?? path.join(this.dataDir, 'backups');
    this.specs = o.sims;
    this.env = o.env ?? {};
  }

  /** Simulators up and paired into the data directory; then (by default) the agent. */
  static async start(o: ScenarioOptions): Promise<Scenario> {
    assert.ok(
      o.sims.filter((s) => s.transport === 'usb').length <= 1,
      'one USB simulator at most: the agent takes one usbmuxd',
    );
    const tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'mooring-scn-'));
    const s = new Scenario(tmp, o);
    try {
      await fsp.mkdir(s.dataDir, { recursive: true });
      for (const spec of o.sims) {
        const logs: Array<Record<string, unknown>> = [];
        s.simLogs.set(spec.name, logs);
        const sim = await startSim({
          log: (line) => logs.push(JSON.parse(line) as Record<string, unknown>),
          stateDir: path.join(tmp, `sim-${spec.name}`),
          name: `Scenario ${spec.name}`,
          files: spec.files ?? 20,
          bytes: spec.bytes ?? 1_000_000,
          seed: spec.seed ?? 400 + s.sims.size,
          trust: 'auto',
          ...(spec.passcode ? { passcode: spec.passcode } : {}),
          ...(spec.faults ? { faults: spec.faults } : {}),
          ...(spec.keyBagRounds ? { keyBagRounds: spec.keyBagRounds } : {}), // H8c
          ...(spec.transport === 'wifi'
            ? { wifi: spec.wifiHost ?? '127.0.0.2', wifiPort: 0, bonjour: '127.0.0.1' }
            : {}),
        });
        s.sims.set(spec.name, sim);
        // Every simulator has its own usbmuxd; pairing goes through it (as over a cable), and
        // the record lands in <data>/pair-records where the agent finds it.
        const paired = await mooring(
          'pair',
          '--usbmuxd',
          sim.usbmuxdAddress,
          '--data-dir',
          s.dataDir,
        );
        assert.equal(paired.code, 0, `pairing ${spec.name}: ${paired.err}`);
      }
      if (o.startAgent !== false) await s.startAgent();
      return s;
    } catch (e) {
      await s.close();
      throw e;
    }
  }

  sim(name: string): RunningSim {
    const sim = this.sims.get(name);
    assert.ok(sim, `no simulator named ${name}`);
    return sim;
  }

  /** The events a simulator logged so far (e.g. 'uploaded', 'purge-request', 'passcode-prompt'). */
  simEvents(name: string): string[] {
    return (this.simLogs.get(name) ?? []).map((l) => String(l.event));
  }

  /** Whether the simulator logged `event` with these fields (e.g. the Backup request arrived). */
  simSaw(name: string, event: string, fields: Record<string, unknown> = {}): boolean {
    return (this.simLogs.get(name) ?? []).some(
      (l) => l.event === event && Object.entries(fields).every(([k, v]) => l[k] === v),
    );
  }

  udid(name: string): string {
    return this.sim(name).udid;
  }

  private usbSim(): RunningSim | undefined {
    const spec = this.specs.find((x) => x.transport === 'usb');
    return spec ? this.sims.get(spec.name) : undefined;
  }

  /** A log sink for an agent run in this process; its lines join the timeout diagnostics. */
  logSink(): (line: string) => void {
    const lines: string[] = [];
    this.agentLogs.push(lines);
    return (line) => lines.push(`${new Date().toISOString()} ${line}\n`);
  }

  /** `mooring agent` as a child process; resolves once it printed its URL. */
  async startAgent(extraArgs: string[] = []): Promise<AgentProcess> {
    assert.equal(this.agent, undefined, 'an agent is already running');
    const usb = this.usbSim();
    const args = [
      '--import',
      'tsx',
      BIN,
      'agent',
      '--data',
      this.dataDir,
      '--listen',
      '127.0.0.1:0',
      '--usbmuxd',
      usb ? usb.usbmuxdAddress : 'off',
      '--mdns-interface',
      '127.0.0.1',
      '--wifi-port',
      'advertised',
      ...(this.backupDir !== path.join(this.dataDir, 'backups')
        ? ['--backup-dir', this.backupDir]
        : []),
      ...extraArgs,
    ];
    const env: NodeJS.ProcessEnv = { ...process.env, TZ: AGENT_TZ, ...this.env };
    delete env.USBMUXD_SOCKET_ADDRESS;
    delete env.MOORING_SIM_LOG;
    delete env.MOORING_TOKEN;
    const child = spawn(process.execPath, args, {
      cwd: ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    liveChildren.add(child);
    const stderr: string[] = [];
    this.agentLogs.push(stderr);
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (c: string) => stderr.push(c));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>(
      (resolve) => {
        child.on('close', (code, signal) => {
          liveChildren.delete(child);
          resolve({ code, signal });
        });
      },
    );
    const first = await new Promise<string>((resolve, reject) => {
      let buf = '';
      const timer = setTimeout(
        () =>
          reject(new Error(`the agent printed no URL line within ${AGENT_START_TIMEOUT_MS} ms`)),
        AGENT_START_TIMEOUT_MS,
      );
      child.stdout!.setEncoding('utf8');
      const onData = (c: string): void => {
        buf += c;
        const nl = buf.indexOf('\n');
        if (nl < 0) return;
        clearTimeout(timer);
        child.stdout!.off('data', onData);
        child.stdout!.resume();
        resolve(buf.slice(0, nl));
      };
      child.stdout!.on('data', onData);
      void exited.then(({ code, signal }) => {
        clearTimeout(timer);
        reject(new Error(`the agent exited (${code ?? signal}) before printing its URL`));
      });
    }).catch((e: Error) => {
      child.kill('SIGKILL');
      throw new Error(`${e.message}\n--- agent stderr ---\n${stderr.join('')}`);
    });
    const m = URL_LINE.exec(first);
    if (!m) {
      child.kill('SIGKILL');
      assert.fail(`unexpected first line from the agent: ${JSON.stringify(first)}`);
    }
    const file = await readAgentFile(this.dataDir);
    if (!file || file.url !== m[2]) {
      child.kill('SIGKILL');
      assert.fail(`agent.json does not name the agent at ${m[2]}: ${JSON.stringify(file?.url)}`);
    }
    this.agent = { child, url: m[2]!, loginUrl: m[1]!, token: file.token, stderr, exited };
    return this.agent;
  }

  /**
   * Stops the agent with `signal` and waits for it to exit (SIGKILL after `timeoutMs` as a
   * safety net, which the caller's assertion on the exit code then reports).
   */
  async stopAgent(
    signal: NodeJS.Signals = 'SIGTERM',
    timeoutMs = 30_000,
  ): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    const a = this.agent;
    assert.ok(a, 'no agent is running');
    this.agent = undefined;
    a.child.kill(signal);
    const timer = setTimeout(() => a.child.kill('SIGKILL'), timeoutMs);
    try {
      return await a.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  // ---- talking to the agent ---------------------------------------------------------------

  /** One API call with the token; JSON in and out; ApiError for a non-2xx answer. */
  async api<T>(method: string, route: string, body?: unknown): Promise<T> {
    const a = this.agent;
    assert.ok(a, 'no agent is running');
    const res = await fetch(`${a.url}${route}`, {
      method,
      headers: {
        authorization: `Bearer ${a.token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(15_000),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // not JSON: keep the text for the error
    }
    if (!res.ok) throw new ApiError(res.status, parsed, `${method} ${route}`);
    return parsed as T;
  }

  /** `mooring ARGS --data <data>` in this process (the real main), talking to the agent. */
  cli(...args: string[]): Promise<CliRun> {
    return mooring(...args, '--data', this.dataDir);
  }

  status(): Promise<AgentStatus> {
    return this.api<AgentStatus>('GET', '/api/status');
  }

  device(udid: string): Promise<DeviceStatus> {
    return this.api<DeviceStatus>('GET', `/api/devices/${udid}`);
  }

  /** Every attempt (all pages), newest first; optionally one device's. */
  async attempts(udid?: string): Promise<AttemptRow[]> {
    return this.allPages<AttemptRow>('/api/attempts', udid);
  }

  /** Every notification (all pages), newest first; optionally one device's. */
  async notifications(udid?: string): Promise<NotificationRow[]> {
    return this.allPages<NotificationRow>('/api/history', udid);
  }

  private async allPages<T>(route: string, udid?: string): Promise<T[]> {
    const out: T[] = [];
    let before: number | null = null;
    for (let i = 0; i < 100; i++) {
      const q = new URLSearchParams({ limit: '200' });
      if (udid !== undefined) q.set('udid', udid);
      if (before !== null) q.set('before', String(before));
      const page: Page<T> = await this.api<Page<T>>('GET', `${route}?${q.toString()}`);
      out.push(...page.items);
      if (page.nextCursor === null) return out;
      before = page.nextCursor;
    }
    throw new Error(`${route}: more than 100 pages`);
  }

  /** Sets settings through the API (global, or a device's). */
  async config(
    changes: Record<string, string | null>,
    udid?: string,
  ): Promise<Record<string, string>> {
    const q = udid === undefined ? '' : `?udid=${encodeURIComponent(udid)}`;
    return this.api<Record<string, string>>('PATCH', `/api/config${q}`, changes);
  }

  // ---- waiting ---------------------------------------------------------------------------

  /**
   * Polls `probe` until it returns something other than undefined/false. The bound is a safety
   * net, not a measurement; on timeout the error shows the agent's log and its history.
   */
  async waitFor<T>(
    what: string,
    probe: () => Promise<T | undefined | false> | T | undefined | false,
    timeoutMs = WAIT_MS,
    intervalMs = 250,
  ): Promise<T> {
    const end = Date.now() + timeoutMs;
    let lastError: unknown;
    for (;;) {
      try {
        const v = await probe();
        if (v !== undefined && v !== false) return v;
      } catch (e) {
        lastError = e;
      }
      if (Date.now() >= end) break;
      await sleep(intervalMs);
    }
    const err = lastError === undefined ? '' : `\nlast probe error: ${String(lastError)}`;
    throw new Error(
      `timed out after ${timeoutMs} ms waiting for ${what}${err}\n${await this.diagnostics()}`,
    );
  }

  /** The first attempt of `udid` (newest first) that satisfies `pred`. */
  waitForAttempt(
    udid: string,
    what: string,
    pred: (a: AttemptRow) => boolean,
    timeoutMs = WAIT_MS,
  ): Promise<AttemptRow> {
    return this.waitFor(
      `${what} (${udid})`,
      async () => (await this.attempts(udid)).find(pred),
      timeoutMs,
    );
  }

  /** The first notification (newest first) that satisfies `pred`. */
  waitForNotification(
    what: string,
    pred: (n: NotificationRow) => boolean,
    udid?: string,
    timeoutMs = WAIT_MS,
  ): Promise<NotificationRow> {
    return this.waitFor(what, async () => (await this.notifications(udid)).find(pred), timeoutMs);
  }

  /** The agent's stderr (every run) and its attempts and notifications, straight from the file. */
  async diagnostics(): Promise<string> {
    const parts: string[] = [];
    this.agentLogs.forEach((log, i) => {
      const lines = log.join('').split('\n');
      parts.push(`--- agent #${i + 1} stderr (last 80 lines) ---\n${lines.slice(-80).join('\n')}`);
    });
    for (const [name, logs] of this.simLogs) {
      const lines = logs.slice(-40).map((l) => JSON.stringify(l));
      parts.push(`--- simulator ${name} log (last 40 lines) ---\n${lines.join('\n')}`);
    }
    try {
      const db = new Database(path.join(this.dataDir, 'history.db'), {
        readonly: true,
        fileMustExist: true,
      });
      try {
        const attempts = db
          .prepare(
            'SELECT id, udid, trigger, transport, outcome, reason_code, bytes, message FROM attempts ORDER BY id',
          )
          .all();
        const notes = db
          .prepare(
            'SELECT id, udid, severity, reason_code, message FROM notifications ORDER BY id DESC LIMIT 60',
          )
          .all();
        parts.push(`--- attempts ---\n${attempts.map((r) => JSON.stringify(r)).join('\n')}`);
        parts.push(
          `--- notifications (newest 60) ---\n${notes.map((r) => JSON.stringify(r)).join('\n')}`,
        );
      } finally {
        db.close();
      }
    } catch (e) {
      parts.push(`--- history.db unreadable: ${String(e)} ---`);
    }
    return parts.join('\n');
  }

  // ---- looking at the backups on disk ------------------------------------------------------

  /** The latest complete backup of a device (the Finder-format folder). */
  latestDir(udid: string): string {
    return path.join(this.backupDir, udid);
  }

  /** The store's staging folder of a device. */
  stagingDir(udid: string): string {
    return path.join(this.backupDir, '.mooring', udid, 'staging');
  }

  /** `mooring snapshots --json` for a device (asserts it succeeded). */
  async snapshots(
    udid: string,
  ): Promise<Array<{ id: string; isLatest: boolean; status: string; files: number }>> {
    const r = await mooring(
      'snapshots',
      '--dest',
      this.backupDir,
      '--udid',
      udid,
      '--json',
      '--data-dir',
      this.dataDir,
    );
    assert.equal(r.code, 0, r.err);
    return JSON.parse(r.out) as Array<{
      id: string;
      isLatest: boolean;
      status: string;
      files: number;
    }>;
  }

  /** A tmpfs of `bytes` mounted at `<tmp>/<name>` (root only), removed by close(). */
  mountTmpfs(name: string, bytes: number): string {
    const dir = path.join(this.tmp, name);
    mkdirSync(dir, { recursive: true });
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes},mode=0755`, 'tmpfs', dir]);
    this.mounts.push(dir);
    return dir;
  }

  // ---- teardown ---------------------------------------------------------------------------

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const a = this.agent;
    this.agent = undefined;
    if (a) {
      a.child.kill('SIGKILL');
      await Promise.race([a.exited, sleep(5000)]);
    }
    await Promise.all([...this.sims.values()].map((s) => s.stop().catch(() => undefined)));
    for (const m of this.mounts.reverse()) {
      try {
        execFileSync('umount', [m]);
      } catch {
        execFileSync('umount', ['-l', m]);
      }
    }
    rmSync(this.tmp, { recursive: true, force: true });
  }
}

// ---- small helpers the scenarios share -----------------------------------------------------------

/** "HH:MM" in UTC (the agent's zone) of `t`. */
export function hhmm(t: number): string {
  const d = new Date(t);
  return `${String(d.getUTCHours()).padStart(2, '0')}:${String(d.getUTCMinutes()).padStart(2, '0')}`;
}

/** A daily window (agent time zone) that starts `fromMs` after now and lasts `lengthMs`. */
export function windowExcludingNow(
  now = Date.now(),
  fromMs = 2 * 3600_000,
  lengthMs = 3600_000,
): string {
  return `${hhmm(now + fromMs)}-${hhmm(now + fromMs + lengthMs)}`;
}

export const isRoot = process.getuid?.() === 0;
