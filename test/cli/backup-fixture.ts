/**
 * Shared set-up for the `mooring backup` acceptance tests (issue 3): the CLI runs as a real child
 * process (`node --import tsx src/bin/mooring.ts …`) against a simulator running in the test
 * process, reached through a small usbmuxd proxy (MuxGate) that can hold the device's bytes at an
 * exact point, so a kill or a Ctrl-C lands mid-transfer where the test wants it.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fsp, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { startSim, type RunningSim, type SimOptions } from '../../src/sim/index';
import type { ListingJson } from '../../src/sim/content/model';
import { fileIdFor } from '../../src/format/file-id';
import { parseUsbmuxdAddress } from '../../src/transport/usbmuxd-address';

export const ROOT = path.resolve(__dirname, '..', '..');
const BIN = path.join(ROOT, 'src', 'bin', 'mooring.ts');

// ---- child processes ------------------------------------------------------------------------

const children = new Set<ChildProcess>();

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  out: string;
  err: string;
  /** stdout lines that are JSON objects (--json events and the final result). */
  events: Array<Record<string, unknown>>;
  /** The `{"type":"result"}` line of `mooring backup --json`, if it got that far. */
  result?: Record<string, unknown>;
}

export interface RunOptions {
  env?: Record<string, string>;
  /** Each JSON stdout line as it arrives (the test may kill `child` there). */
  onEvent?: (e: Record<string, unknown>, child: ChildProcess) => void;
  /** The child, as soon as it is started. */
  onSpawn?: (child: ChildProcess) => void;
  timeoutMs?: number;
}

/** `mooring ARGS` as a child process; resolves when it has exited (however it exited). */
export function runMooring(args: string[], o: RunOptions = {}): Promise<RunResult> {
  const env: NodeJS.ProcessEnv = { ...process.env, ...o.env };
  if (!o.env?.MOORING_CRASH_AT) delete env.MOORING_CRASH_AT;
  delete env.USBMUXD_SOCKET_ADDRESS;
  delete env.MOORING_SIM_LOG;
  const child = spawn(process.execPath, ['--import', 'tsx', BIN, ...args], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  o.onSpawn?.(child);
  const out: string[] = [];
  const err: string[] = [];
  const events: Array<Record<string, unknown>> = [];
  let partial = '';
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (chunk: string) => {
    out.push(chunk);
    partial += chunk;
    let nl: number;
    while ((nl = partial.indexOf('\n')) >= 0) {
      const line = partial.slice(0, nl);
      partial = partial.slice(nl + 1);
      if (!line.startsWith('{')) continue;
      let e: Record<string, unknown>;
      try {
        e = JSON.parse(line) as Record<string, unknown>;
      } catch {
        continue;
      }
      events.push(e);
      o.onEvent?.(e, child);
    }
  });
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => err.push(chunk));
  const timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs ?? 90_000);
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      children.delete(child);
      const result = events.find((e) => e.type === 'result');
      // Every CLI backup in these tests runs on the job's own thread (job/job-thread): one
      // that fell back to the in-process job would leave that path untested.
      const fellBack = /the backup of \S+ runs in-process: .*/.exec(err.join(''));
      if (fellBack) {
        reject(new Error(`the backup did not run on its own thread: ${fellBack[0]}`));
        return;
      }
      resolve({
        code,
        signal,
        out: out.join(''),
        err: err.join(''),
        events,
        ...(result ? { result } : {}),
      });
    });
  });
}

/** Kills whatever child is still running (test teardown). */
export function killChildren(): void {
  for (const c of children) c.kill('SIGKILL');
}

// ---- the usbmuxd gate -------------------------------------------------------------------------

interface GatedConn {
  client: net.Socket;
  device: net.Socket;
  /** Device → host bytes forwarded so far. */
  forwarded: number;
  held: Buffer[];
}

/**
 * A transparent UNIX-socket proxy in front of the simulator's usbmuxd. Host → device bytes always
 * pass; device → host bytes pass until the gate is closed: `holdAfter(n)` closes it on any
 * connection once that connection has forwarded n bytes (only the mobilebackup2 connection carries
 * that much), `freeze()` closes it everywhere at once. The held process then sits waiting for the
 * device at a known point, where the test kills or interrupts it.
 */
export class MuxGate {
  private readonly conns = new Set<GatedConn>();
  private limit: number | undefined;
  private frozen = false;
  private heldWaiters: Array<() => void> = [];

  private constructor(
    private readonly server: net.Server,
    private readonly devicePath: string,
    readonly address: string,
  ) {}

  static async start(simAddress: string, listenPath: string): Promise<MuxGate> {
    const a = parseUsbmuxdAddress(simAddress);
    if (!a || a.kind !== 'unix') throw new Error(`not a UNIX usbmuxd address: ${simAddress}`);
    const server = net.createServer();
    const gate = new MuxGate(server, a.path, `UNIX:${listenPath}`);
    server.on('connection', (c) => gate.accept(c));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(listenPath, resolve);
    });
    return gate;
  }

  private accept(client: net.Socket): void {
    const device = net.connect(this.devicePath);
    const c: GatedConn = { client, device, forwarded: 0, held: [] };
    this.conns.add(c);
    client.pipe(device);
    device.on('data', (chunk: Buffer) => this.fromDevice(c, chunk));
    const end = (): void => {
      this.conns.delete(c);
      client.destroy();
      device.destroy();
    };
    client.on('close', end);
    device.on('close', end);
    client.on('error', () => undefined);
    device.on('error', () => undefined);
  }

  private fromDevice(c: GatedConn, chunk: Buffer): void {
    if (this.frozen || c.held.length > 0) {
      c.held.push(chunk);
      c.device.pause();
      return;
    }
    let pass = chunk;
    if (this.limit !== undefined && c.forwarded + chunk.length > this.limit) {
      const n = Math.max(0, this.limit - c.forwarded);
      pass = chunk.subarray(0, n);
      c.held.push(chunk.subarray(n));
      c.device.pause();
      this.frozen = true;
      this.limit = undefined;
      const w = this.heldWaiters;
      this.heldWaiters = [];
      setImmediate(() => w.forEach((f) => f()));
    }
    if (pass.length > 0) {
      c.forwarded += pass.length;
      if (!c.client.write(pass)) {
        c.device.pause();
        c.client.once('drain', () => {
          if (!this.frozen && c.held.length === 0) c.device.resume();
        });
      }
    }
  }

  /** Close the gate once a connection has passed `bytes` from the device; resolves when it did. */
  holdAfter(bytes: number): Promise<void> {
    this.limit = bytes;
    return new Promise((resolve) => this.heldWaiters.push(resolve));
  }

  /** Hold every device → host byte from now on. */
  freeze(): void {
    this.frozen = true;
    for (const c of this.conns) c.device.pause();
  }

  /** Open the gate again: what was held is delivered, then bytes flow freely. */
  release(): void {
    this.frozen = false;
    this.limit = undefined;
    for (const c of this.conns) {
      const held = c.held;
      c.held = [];
      for (const b of held) {
        c.forwarded += b.length;
        c.client.write(b);
      }
      c.device.resume();
    }
  }

  /** Device → host bytes forwarded on the busiest connection (the mobilebackup2 one). */
  maxForwarded(): number {
    let m = 0;
    for (const c of this.conns) m = Math.max(m, c.forwarded);
    return m;
  }

  async stop(): Promise<void> {
    for (const c of this.conns) {
      c.client.destroy();
      c.device.destroy();
    }
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

// ---- a simulator the CLI is paired with -------------------------------------------------------

export interface CliSim {
  sim: RunningSim;
  tmp: string;
  /** The simulator's JSON log lines. */
  logs: Array<Record<string, unknown>>;
  gate: MuxGate;
  /** `--usbmuxd <gate> --data-dir <tmp>/data`: what every device command needs. */
  common: string[];
  mooring(args: string[], o?: RunOptions): Promise<RunResult>;
  listing(): Promise<ListingJson>;
  close(): Promise<void>;
}

export async function startCliSim(opts: Partial<SimOptions> & { seed: number }): Promise<CliSim> {
  const tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'mooring-clib-'));
  const logs: Array<Record<string, unknown>> = [];
  let sim: RunningSim | undefined;
  let gate: MuxGate | undefined;
  const close = async (): Promise<void> => {
    killChildren();
    await gate?.stop().catch(() => undefined);
    await sim?.stop().catch(() => undefined);
    rmSync(tmp, { recursive: true, force: true });
  };
  try {
    sim = await startSim({
      stateDir: path.join(tmp, 'sim'),
      files: 60,
      bytes: 2_000_000,
      trust: 'auto',
      log: (line) => logs.push(JSON.parse(line) as Record<string, unknown>),
      ...opts,
    });
    gate = await MuxGate.start(sim.usbmuxdAddress, path.join(tmp, 'gate.sock'));
    const common = ['--usbmuxd', gate.address, '--data-dir', path.join(tmp, 'data')];
    const s = sim;
    const cs: CliSim = {
      sim: s,
      tmp,
      logs,
      gate,
      common,
      mooring: (args, o) => runMooring([...args, ...common], o),
      listing: async () => (await s.ctl('listing')) as ListingJson,
      close,
    };
    const paired = await cs.mooring(['pair']);
    assert.equal(paired.code, 0, paired.err);
    return cs;
  } catch (e) {
    await close();
    throw e;
  }
}

// ---- looking at backups -----------------------------------------------------------------------

export function sha256(buf: Buffer): string {
  return createHash('sha256').update(buf).digest('hex');
}

/** Every regular file under `dir` → sha256 of its bytes (relative paths, '/' separated). */
export async function fingerprint(dir: string): Promise<Map<string, string>> {
  const m = new Map<string, string>();
  async function go(rel: string): Promise<void> {
    for (const ent of await fsp.readdir(path.join(dir, rel), { withFileTypes: true })) {
      const p = rel ? `${rel}/${ent.name}` : ent.name;
      if (ent.isDirectory()) await go(p);
      else m.set(p, ent.isFile() ? sha256(await fsp.readFile(path.join(dir, p))) : 'not-a-file');
    }
  }
  await go('');
  return m;
}

/** Every path under `dir` (files, folders, links), relative, sorted; [] when it does not exist. */
export async function treeNames(dir: string): Promise<string[]> {
  const out: string[] = [];
  async function go(rel: string): Promise<void> {
    let ents;
    try {
      ents = await fsp.readdir(path.join(dir, rel), { withFileTypes: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw e;
    }
    for (const ent of ents) {
      const p = rel ? `${rel}/${ent.name}` : ent.name;
      out.push(p);
      if (ent.isDirectory()) await go(p);
    }
  }
  await go('');
  return out.sort();
}

export interface ManifestFileRow {
  fileID: string;
  domain: string;
  relativePath: string;
  flags: number;
}

/** Manifest.db's Files rows (fileID, domain, relativePath, flags), sorted by fileID. */
export function manifestRows(backupDir: string): ManifestFileRow[] {
  const db = new Database(path.join(backupDir, 'Manifest.db'), {
    readonly: true,
    fileMustExist: true,
  });
  try {
    return (
      db
        .prepare('SELECT fileID, domain, relativePath, flags FROM Files ORDER BY fileID')
        .all() as ManifestFileRow[]
    ).map((r) => ({ ...r }));
  } finally {
    db.close();
  }
}

/** fileID → sha256 of every payload `<dir>/xx/<fileID>`. */
export async function payloads(backupDir: string): Promise<Map<string, string>> {
  const m = new Map<string, string>();
  for (const b of await fsp.readdir(backupDir)) {
    if (!/^[0-9a-f]{2}$/.test(b)) continue;
    for (const id of await fsp.readdir(path.join(backupDir, b)))
      m.set(id, sha256(await fsp.readFile(path.join(backupDir, b, id))));
  }
  return m;
}

export interface SnapshotJson {
  id: string;
  isLatest: boolean;
  isFull?: boolean;
  adopted: boolean;
  status: string;
  files: number;
  size: number;
  exclusiveBytes: number;
  path: string;
}

/** `mooring snapshots --json` (asserts it succeeded). */
export async function snapshots(cs: CliSim, dest: string): Promise<SnapshotJson[]> {
  const r = await runMooring(['snapshots', '--dest', dest, '--udid', cs.sim.udid, '--json']);
  assert.equal(r.code, 0, r.err);
  return JSON.parse(r.out) as SnapshotJson[];
}

export interface VerifyJson {
  ok: boolean;
  path: string;
  files: number;
  problemCount: number;
  problems: unknown[];
}

/** `mooring verify --json` of a snapshot (default the latest); asserts it passed. */
export async function verifyOk(cs: CliSim, dest: string, snapshot?: string): Promise<VerifyJson> {
  const r = await runMooring([
    'verify',
    '--dest',
    dest,
    '--udid',
    cs.sim.udid,
    '--json',
    ...(snapshot ? ['--snapshot', snapshot] : []),
  ]);
  assert.equal(r.code, 0, `verify ${snapshot ?? 'latest'} failed:\n${r.out}${r.err}`);
  const v = JSON.parse(r.out) as VerifyJson;
  assert.equal(v.ok, true);
  return v;
}

/** The store's folders of one device under `dest`. */
export function storePaths(dest: string, udid: string) {
  const state = path.join(dest, '.mooring', udid);
  return {
    latest: path.join(dest, udid),
    state,
    staging: path.join(state, 'staging'),
    snapshots: path.join(state, 'snapshots'),
    journal: path.join(state, 'journal.json'),
    attempts: path.join(state, 'attempts.jsonl'),
    lock: path.join(state, 'lock'),
  };
}

export async function exists(p: string): Promise<boolean> {
  try {
    await fsp.lstat(p);
    return true;
  } catch {
    return false;
  }
}

export async function readAttemptLines(
  dest: string,
  udid: string,
): Promise<Array<Record<string, unknown>>> {
  let text: string;
  try {
    text = await fsp.readFile(storePaths(dest, udid).attempts, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

// ---- crash points ------------------------------------------------------------------------------

/** snapshots.json as the store wrote it: which snapshots exist and which is the latest. */
export async function storeState(
  dest: string,
  udid: string,
): Promise<{ latest: string | null; ids: string[] }> {
  try {
    const m = JSON.parse(
      await fsp.readFile(path.join(storePaths(dest, udid).state, 'snapshots.json'), 'utf8'),
    ) as {
      latest: string | null;
      snapshots: Array<{ id: string }>;
    };
    return { latest: m.latest, ids: m.snapshots.map((s) => s.id).sort() };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { latest: null, ids: [] };
    throw e;
  }
}

export interface KillPoint {
  name: string;
  /** Extra `mooring backup` flags for the killed run (e.g. --full). */
  args?: string[];
  /** MOORING_CRASH_AT, the CLI's test fault hook: the process kills itself after that store step. */
  crashAt?: string;
  /** Kill when this JSON event arrives; the gate is frozen first so the process stays put. */
  onEvent?: (e: Record<string, unknown>) => boolean;
  /** Close the gate after this many device bytes, then kill (mid-transfer). */
  afterBytes?: number;
  /** Kill once this holds (polled every 20 ms, after the first event), e.g. a file was staged. */
  when?: (staging: string) => Promise<boolean>;
  /** Set up before the run (a simulator fault); returns the undo. */
  arm?: () => Promise<() => Promise<void>>;
  /** After the kill, before anything else looks (e.g. a second crash, during the recovery). */
  afterKill?: () => Promise<void>;
  /** After the commit's point of no return, the new backup is the latest once recovered. */
  committed: boolean | 'either';
}

export interface KillReport {
  name: string;
  /** Where it landed, as seen on disk before any recovery. */
  landed: string;
  committed: boolean;
}

async function waitFor(cond: () => Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  const check = (): Promise<boolean> => cond().catch(() => false);
  while (Date.now() < end) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return check();
}

/**
 * One crash point: mutate the device (so a wrongly promoted staging would show), run
 * `mooring backup --json`, SIGKILL it at the point, then check with `mooring verify` that the latest
 * is whole and is exactly the previous latest (or, past the point of no return, exactly the device),
 * that no staging survived or became a snapshot, and that the next backup succeeds.
 */
/** Prints where each kill landed, so a CI log shows the spread of kill points. */
export function printKillReports(reports: KillReport[]): void {
  if (reports.length === 0) return;
  console.log(
    reports
      .map((r) => `  ${r.name}: ${r.landed}${r.committed ? '; committed' : '; not committed'}`)
      .join('\n'),
  );
}

export async function crashAt(cs: CliSim, dest: string, k: KillPoint): Promise<KillReport> {
  const udid = cs.sim.udid;
  const p = storePaths(dest, udid);
  const before = await storeState(dest, udid);
  const latestBefore = (await exists(p.latest)) ? await fingerprint(p.latest) : undefined;
  await cs.sim.ctl('mutate', { add: 1, modify: 2, delete: 1 });
  const device = await cs.listing();
  const undo = await k.arm?.();

  let killed = false;
  let child: ChildProcess | undefined;
  let events = 0;
  const kill = (): void => {
    if (killed || !child) return;
    killed = true;
    cs.gate.freeze();
    child.kill('SIGKILL');
  };
  const held = k.afterBytes === undefined ? undefined : cs.gate.holdAfter(k.afterBytes);
  const run = cs.mooring(['backup', '--dest', dest, '--json', ...(k.args ?? [])], {
    ...(k.crashAt ? { env: { MOORING_CRASH_AT: k.crashAt } } : {}),
    onSpawn: (c) => (child = c),
    onEvent: (e) => {
      events++;
      if (k.onEvent?.(e)) kill();
    },
  });
  let landedNote = '';
  let r: RunResult;
  try {
    if (held || k.when) {
      const ready = held
        ? held
        : waitFor(async () => events > 0 && (await k.when!(p.staging)), 30_000);
      const early = run.then((x) => assert.fail(`${k.name}: ended early: ${x.err}`));
      assert.equal(await Promise.race([ready.then(() => true), early]), true, `${k.name}: reached`);
      // Mid-file if the engine has a partial temp file open in the staged backup.
      const partial = await waitFor(
        async () => (await treeNames(p.staging)).some((n) => n.includes('.mooring-tmp-')),
        held ? 2000 : 0,
      );
      landedNote = partial ? ' (a partial file open)' : '';
      kill();
    }
    r = await run;
  } finally {
    // Whatever happened, nothing of this run may outlive it.
    child?.kill('SIGKILL');
    await run.catch(() => undefined);
    cs.gate.release();
    await undo?.();
  }
  assert.equal(r.signal, 'SIGKILL', `${k.name}: killed, not ${r.code} ${r.err}`);
  assert.equal(r.result, undefined, `${k.name}: no result before the kill`);

  // Where the kill landed, before anything recovers.
  const staged = (await fsp.readdir(p.staging).catch(() => [] as string[])).length > 0;
  const journal = await exists(p.journal);
  const lastPhase = [...r.events].reverse().find((e) => e.type === 'phase')?.phase;
  const landed =
    (journal ? 'commit journal present' : staged ? 'staging present' : 'nothing staged') +
    (lastPhase ? `, last phase ${String(lastPhase)}` : '') +
    landedNote;
  await k.afterKill?.();

  // Recovery + verification, through the CLI.
  const hadLatest = latestBefore !== undefined;
  const v = await runMooring(['verify', '--dest', dest, '--udid', udid, '--json']);
  const recovered = await storeState(dest, udid);
  const committed = recovered.latest !== before.latest;
  if (k.committed !== 'either') assert.equal(committed, k.committed, `${k.name}: ${landed}`);
  if (committed || hadLatest) {
    assert.equal(v.code, 0, `${k.name}: verify after the kill:\n${v.out}${v.err}`);
    assert.equal((JSON.parse(v.out) as VerifyJson).ok, true);
  } else {
    assert.notEqual(v.code, 0, 'nothing to verify: there was never a complete backup');
    assert.match(v.err, /no (device )?backups?/i);
  }
  assert.deepEqual(await treeNames(p.staging), [], `${k.name}: staging discarded or committed`);
  assert.equal(await exists(p.journal), false, `${k.name}: journal rolled forward`);
  if (committed) {
    assert.ok(recovered.latest && !before.ids.includes(recovered.latest));
    assert.deepEqual(recovered.ids, [...before.ids, recovered.latest].sort());
    assert.equal(await exists(path.join(p.snapshots, recovered.latest)), false);
    if (before.latest)
      assert.ok(await exists(path.join(p.snapshots, before.latest)), 'previous kept');
    await assertBackupMatchesDevice(dest, udid, device);
  } else {
    assert.deepEqual(recovered, before, `${k.name}: the snapshot list is unchanged`);
    if (latestBefore)
      assert.deepEqual(await fingerprint(p.latest), latestBefore, `${k.name}: latest unchanged`);
    else assert.equal(await exists(p.latest), false, `${k.name}: no staging became the latest`);
  }

  // The next backup succeeds and equals the device.
  const next = await cs.mooring(['backup', '--dest', dest, '--json']);
  assert.equal(next.code, 0, `${k.name}: the next backup: ${next.err}${next.out.slice(-500)}`);
  assert.equal(next.result?.ok, true);
  await assertBackupMatchesDevice(dest, udid, await cs.listing());
  return { name: k.name, landed, committed };
}

/** The latest backup holds exactly the device's entries and bytes. */
export async function assertBackupMatchesDevice(
  dest: string,
  udid: string,
  l: ListingJson,
): Promise<void> {
  const dir = path.join(dest, udid);
  const rows = manifestRows(dir).map((r) => `${r.domain}/${r.relativePath}`);
  assert.deepEqual(
    rows.sort(),
    l.entries.map((e) => `${e.domain}/${e.relativePath}`).sort(),
    'Manifest.db lists exactly the device entries',
  );
  const want = new Map<string, string>();
  for (const e of l.entries)
    if (e.type === 'file') want.set(fileIdFor(e.domain, e.relativePath), e.sha256 ?? '(none)');
  assert.deepEqual(
    new Map([...(await payloads(dir))].sort()),
    new Map([...want].sort()),
    'the payloads are the device’s files, byte for byte',
  );
}
