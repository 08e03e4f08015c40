/**
 * The agent: the composition root that backs up every paired device when it is due and says why
 * whenever it does not. Discovery (DeviceRegistry) says who is reachable; on every Ticker run and
 * on every event that can change an answer (a device appears or changes, a setting changes, a
 * backup ends, the device is unlocked) the pure scheduler decides per device from state; the
 * Coordinator enforces one backup per device and the global limit; a job (src/job) does the
 * backup; the history records the attempt, its outcome and every skip whose reason changed.
 *
 * Idle means idle: between events the only timers are the Ticker's minute tick and one wakeup at
 * the earliest moment a decision said to look again.
 *
 * This file is the AgentService facade and the lifecycle; the parts share one AgentContext:
 * scheduling.ts (decision rounds), backup-runner.ts (one backup), manual-backup.ts (back up now),
 * device-contact.ts (presence, first contact, sessions), device-view.ts (DeviceStatus),
 * auto-prune.ts (retention after each backup), wifi-switch.ts and device-pairing.ts (acting on a
 * device), backup-folder.ts (moving where backups go).
 */
import { promises as fsp, readFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import type { BackupTimeouts } from '../backup';
import type { MdnsSocketOptions } from '../discovery/bonjour-browser';
import {
  backupDirChanged,
  openHistory,
  type AttemptQuery,
  type AttemptRow,
  type History,
  type HistoryQuery,
  type MarkReadOptions,
  type NotificationRow,
  type Page,
} from '../history';
import { systemLockdownDir } from '../lockdown';
import type { TickInfo } from '../scheduler';
import type { UsbmuxdClient } from '../transport/usbmuxd-client';
import { isSnapshotId } from '../store';
import { MooringError } from '../util/errors';
import { LogFile, logFilePath, readLogTail } from '../util/log-file';
import { defaultBackupDir, historyFile } from '../util/paths';
import { AgentContext, errText } from './agent-context';
import { BackupRunner } from './backup-runner';
import { backupFolderSetting, prepareBackupFolder } from './backup-folder';
import { applyConfig, checkConfig, effectiveConfig, readGlobalSettings } from './config';
import { openAgentLog } from './agent-log';
import { DeviceContact } from './device-contact';
import { readDeviceFolder } from './folder-backups';
import { AgentEncryption } from './encryption'; // H8c
import { FileSecretStore, secretsDir, type SecretStore } from '../secrets'; // H8c
import { DEFAULT_PAIR_WAIT_MS, pairDevice } from './device-pairing';
import { manualBackup } from './manual-backup';
import { Scheduling } from './scheduling';
import { SnapshotBrowser } from './snapshot-browser';
import { usingAgentStore } from './store-findings';
import { setWifi } from './wifi-switch';
import type {
  AgentEvent,
  AgentService,
  AgentLogTail,
  AgentStatus,
  BackupNowResult,
  ConfigValues,
  DeviceStatus,
  DiffSummary,
  EncryptionChangeResult,
  EncryptionRequest,
  FilePage,
  FileQuery,
  OpenedFile,
  PairResult,
  RecoverySheetResult,
  SnapshotSummary,
  StorePasswordResult,
  WifiResult,
} from './types';

export { PAIRING_REPROBE_MS, PROBE_TIMEOUT_MS } from './device-contact';

/** When the agent makes the missing next-backup copies after it starts (AgentOptions). */
export const PREPARE_AFTER_START_MS = 60_000;

export interface AgentOptions {
  /** history.db and pair-records/ live here (and the API's agent.json). */
  dataDir: string;
  /** Default <dataDir>/backups. */
  backupDir?: string;
  /** null: no USB. */
  usbmuxd: UsbmuxdClient | null;
  /** null: no Bonjour. */
  mdns: MdnsSocketOptions | null;
  /** 'advertised' dials the SRV port (simulators); default 'lockdown' (62078). */
  wifiPort?: 'lockdown' | 'advertised';
  /** IANA zone for windows and days; default the system's. */
  timeZone?: string;
  /** Clock for decisions and records (tests); timers stay real. */
  now?: () => number;
  /** The OS lockdown folder to read pair records from; null: none (tests). Default the OS's. */
  systemPairRecordDir?: string | null;
  backupTimeouts?: Partial<BackupTimeouts>;
  /** How long pair() waits for "Trust This Computer?" to be answered; default 2 minutes. */
  pairWaitMs?: number;
  /**
   * How long after start() the agent makes the next backup's copy (D42) for each device whose
   * latest backup has none; default PREPARE_AFTER_START_MS; null: only after its own backups.
   */
  prepareAfterStartMs?: number | null;
  log?: (line: string) => void;
  /**
   * H8c: where backup passwords are kept; default a 0600 file per device in <dataDir>/secrets;
   * null keeps none (`mooring agent --no-store-passwords`).
   */
  secrets?: SecretStore | null;
}

function packageVersion(): string {
  for (const rel of ['../../package.json', '../../../package.json']) {
    try {
      const v = (
        JSON.parse(readFileSync(path.join(__dirname, rel), 'utf8')) as { version?: unknown }
      ).version;
      if (typeof v === 'string') return v;
    } catch {
      // try the next layout (src/ vs dist/)
    }
  }
  return '0.0.0';
}

function systemTimeZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
}

export class Agent implements AgentService {
  private readonly ctx: AgentContext;
  private readonly contact: DeviceContact;
  private readonly runner: BackupRunner;
  private readonly scheduling: Scheduling;
  private browser: SnapshotBrowser;
  private readonly encryption: AgentEncryption; // H8c
  private readonly startedAt: number;
  /** Ends waits for the device (a Trust dialog) when the agent stops. */
  private readonly lifetime = new AbortController();
  private usbmuxdState: AgentStatus['usbmuxd'];
  private usbmuxdProblem: string | null = null;
  private stopped: Promise<void> | undefined;
  readonly timeZone: string;
  readonly version = packageVersion();

  private constructor(
    private readonly o: AgentOptions,
    readonly dataDir: string,
    /** Where backups go while the backup-dir setting is unset. */
    readonly defaultBackupDir: string,
    backupDir: string,
    db: History,
    private readonly logFile: LogFile | undefined,
  ) {
    this.timeZone = o.timeZone ?? systemTimeZone();
    this.usbmuxdState = o.usbmuxd === null ? 'off' : 'unavailable';
    this.ctx = new AgentContext({
      db,
      dataDir,
      backupDir,
      usbmuxd: o.usbmuxd,
      mdns: o.mdns,
      wifiPort: o.wifiPort ?? 'lockdown',
      timeZone: this.timeZone,
      now: o.now ?? Date.now,
      systemDir: o.systemPairRecordDir === undefined ? systemLockdownDir() : o.systemPairRecordDir,
      ...(o.backupTimeouts ? { backupTimeouts: o.backupTimeouts } : {}),
      ...(o.log ? { log: o.log } : {}),
      onTick: (info) => this.onTick(info),
    });
    this.startedAt = this.ctx.now();
    this.contact = new DeviceContact(this.ctx);
    // H8c: backup encryption; snapshots open with the stored passwords.
    this.encryption = new AgentEncryption(
      this.ctx,
      this.contact,
      o.secrets === undefined ? new FileSecretStore(secretsDir(dataDir)) : o.secrets,
    );
    this.ctx.encryption = this.encryption;
    this.browser = this.newBrowser(backupDir);
    this.runner = new BackupRunner(this.ctx, this.contact);
    this.scheduling = new Scheduling(this.ctx, this.runner, this.contact);
  }

  /**
   * Opens the history (creating the data folder), records attempts a killed agent left running
   * as interrupted, and prepares discovery. Nothing runs until start().
   */
  static async open(given: AgentOptions): Promise<Agent> {
    const dataDir = path.resolve(given.dataDir);
    await fsp.mkdir(dataDir, { recursive: true, mode: 0o700 });
    const agentLog = openAgentLog(dataDir, given.log);
    const o: AgentOptions = { ...given, log: agentLog.log };
    const fallbackDir = path.resolve(o.backupDir ?? defaultBackupDir(dataDir));
    let history: History;
    try {
      history = openHistory(historyFile(dataDir), { ...(o.now ? { clock: o.now } : {}) });
    } catch (e) {
      agentLog.file?.close();
      throw e;
    }
    let agent: Agent;
    try {
      // The folder chosen in the settings wins over the start option (which is its default).
      const chosen = readGlobalSettings(history).backupDir;
      const backupDir = chosen ?? fallbackDir;
      if (chosen === null) await fsp.mkdir(backupDir, { recursive: true });
      else {
        // Never recreated whole: a missing disk must not become a folder on the system disk
        // (backups fail with "the backup folder … is missing" until it is back).
        await fsp.mkdir(backupDir).catch(() => undefined);
        if (o.backupDir !== undefined && chosen !== fallbackDir) {
          o.log?.(`backups go to ${chosen} (the backup-dir setting), not ${fallbackDir}`);
        }
      }
      agent = new Agent(o, dataDir, fallbackDir, backupDir, history, agentLog.file);
    } catch (e) {
      history.close();
      agentLog.file?.close();
      throw e;
    }
    for (const a of history.markRunningAttemptsInterrupted(agent.ctx.now())) {
      const n = history.listHistory({ udid: a.udid, limit: 1 }).items[0];
      if (n && n.attemptId === a.id) agent.ctx.notifier.announce(n);
    }
    await Promise.all(history.listDevices().map((d) => readDeviceFolder(agent.ctx, d.udid)));
    await Promise.all(history.listDevices().map((d) => agent.encryption.refreshStored(d.udid))); // H8c
    return agent;
  }

  /** Starts discovery and the schedule; resolves after the first round of decisions. */
  async start(): Promise<void> {
    const { ctx, contact } = this;
    if (ctx.started || ctx.stopping) return;
    ctx.started = true;
    ctx.log(
      `Mooring ${this.version} started: data in ${this.dataDir}, backups in ${ctx.backupDir}, time zone ${this.timeZone}`,
    );
    // A failure in our handlers must not break discovery's own bookkeeping (it emits synchronously).
    const guard =
      <A extends unknown[]>(what: string, fn: (...a: A) => void) =>
      (...a: A): void => {
        try {
          fn(...a);
        } catch (e) {
          ctx.log(`${what}: ${errText(e)}`);
        }
      };
    ctx.registry.on(
      'appeared',
      guard('appeared', (p) => contact.onPresence(p, 'appeared')),
    );
    ctx.registry.on(
      'changed',
      guard('changed', (p) => contact.onPresence(p, 'changed')),
    );
    ctx.registry.on(
      'disappeared',
      guard('disappeared', (p) => contact.onPresence(p, 'disappeared')),
    );
    ctx.registry.on('usbmuxd', (s) => {
      const problem = s.state === 'listening' ? null : s.error.message;
      if (s.state !== 'listening') ctx.log(`usbmuxd ${s.state}: ${s.error.message}`);
      if (s.state === this.usbmuxdState && problem === this.usbmuxdProblem) return;
      this.usbmuxdState = s.state;
      this.usbmuxdProblem = problem;
      ctx.emit({ type: 'usbmuxd', usbmuxd: s.state, usbmuxdProblem: problem });
    });
    ctx.registry.on('warning', (e) => ctx.log(`discovery: ${e.message}`));
    ctx.lockWatcher.on(
      'activity',
      guard('lock activity', (udid, at) => contact.onLockActivity(udid, at)),
    );
    ctx.lockWatcher.on('error', (udid, e) => ctx.log(`lock watcher ${udid}: ${e.message}`));
    await ctx.registry.start();
    if (ctx.stopping) return;
    ctx.ticker.start();
    await ctx.ticker.poke();
    const after =
      this.o.prepareAfterStartMs === undefined
        ? PREPARE_AFTER_START_MS
        : this.o.prepareAfterStartMs;
    if (after !== null) ctx.track((this.copiesAfterStart = this.prepareAfterStart(after)));
  }

  /** The pass of prepareAfterStart, once start() began it. */
  private copiesAfterStart: Promise<void> = Promise.resolve();

  /**
   * The next backup's copy (D42) for the devices whose latest backup has none, one device at a
   * time, `afterMs` after start: not while the computer is busy logging in. A device's copy
   * persists across restarts, so once made this is a few lstats per device.
   */
  private async prepareAfterStart(afterMs: number): Promise<void> {
    try {
      await delay(afterMs, undefined, { signal: this.lifetime.signal, ref: false });
    } catch {
      return; // stopping
    }
    for (const d of this.ctx.db.listDevices()) {
      if (this.ctx.stopping) return;
      await this.runner.prepareIfMissing(d.udid);
    }
  }

  /**
   * Cancels running backups (each recorded 'interrupted'), stops the schedule, discovery and
   * the lock watcher, and closes the history. Idempotent; resolves once everything stopped.
   */
  stop(): Promise<void> {
    const { ctx } = this;
    this.stopped ??= (async () => {
      ctx.stopping = true;
      this.lifetime.abort();
      await ctx.ticker.stop();
      ctx.coordinator.cancelAll(new MooringError('USAGE', 'Mooring is stopping'));
      await this.runner.settle();
      await ctx.coordinator.whenIdle();
      await ctx.lockWatcher.stop();
      await ctx.registry.stop();
      await ctx.settleBackground();
      ctx.db.close();
      ctx.notifier.clear();
      ctx.log('Mooring stopped');
      this.logFile?.close();
    })();
    return this.stopped;
  }

  // ---- AgentService: reading ----------------------------------------------------------

  /** Where backups go now. */
  get backupDir(): string {
    return this.ctx.backupDir;
  }

  status(): AgentStatus {
    const g = this.ctx.settings();
    return {
      version: this.version,
      pid: process.pid,
      startedAt: this.startedAt,
      timeZone: this.timeZone,
      dataDir: this.dataDir,
      backupDir: this.backupDir,
      paused: g.overrides.paused === true,
      running: this.ctx.coordinator.running().length,
      concurrency: g.concurrency,
      staleAfterMs: g.staleAfterMs,
      usbmuxd: this.usbmuxdState,
      usbmuxdProblem: this.usbmuxdProblem,
      bonjour: this.o.mdns === null ? 'off' : 'browsing',
      devices: this.devices(),
      summary: this.ctx.db.summary(),
    };
  }

  devices(): DeviceStatus[] {
    return this.ctx.view.knownUdids().map((u) => this.ctx.view.status(u));
  }

  device(udid: string): DeviceStatus | undefined {
    const u = this.ctx.view.canonicalUdid(udid);
    return u === undefined ? undefined : this.ctx.view.status(u);
  }

  history(q: HistoryQuery): Page<NotificationRow> {
    return this.ctx.db.listHistory(q);
  }

  attempts(q: AttemptQuery): Page<AttemptRow> {
    return this.ctx.db.listAttempts(q);
  }

  markRead(opts: MarkReadOptions): number {
    return this.ctx.db.markRead(opts);
  }

  subscribe(listener: (e: AgentEvent) => void): () => void {
    return this.ctx.notifier.subscribe(listener);
  }

  // ---- AgentService: acting -----------------------------------------------------------

  async backupNow(udid: string): Promise<BackupNowResult> {
    return manualBackup(this.ctx, this.runner, udid);
  }

  /**
   * Settles once the copy of the latest that the agent makes after each backup, for the device's
   * next one (D42), is done or dropped; at once when none is being made. Until then that copy takes
   * the device's lock for a moment at its start and at its end.
   */
  nextBackupPrepared(udid: string): Promise<void> {
    return this.runner.nextPrepared(this.udidOrAsGiven(udid));
  }

  /**
   * Settles once the pass that makes the missing next-backup copies after start
   * (AgentOptions.prepareAfterStartMs) has gone through every device, or the agent stopped.
   */
  nextBackupsPreparedAfterStart(): Promise<void> {
    return this.copiesAfterStart;
  }

  cancel(udid: string): boolean {
    const u = this.ctx.view.canonicalUdid(udid) ?? udid;
    return this.ctx.coordinator.cancel(u, new MooringError('USAGE', 'cancelled by the user'));
  }

  getConfig(udid?: string): ConfigValues {
    if (udid === undefined) {
      return effectiveConfig(this.ctx.db, undefined, undefined, {
        'backup-dir': this.defaultBackupDir,
      });
    }
    return effectiveConfig(this.ctx.db, this.ctx.view.requireKnown(udid));
  }

  setConfig(changes: Record<string, string | null>, udid?: string): ConfigValues {
    const { ctx } = this;
    const u = udid === undefined ? undefined : ctx.view.requireKnown(udid);
    const parsed = checkConfig(ctx.db, changes, u);
    const dir = backupFolderSetting(parsed, this.defaultBackupDir);
    const moving = dir !== undefined && dir !== ctx.backupDir;
    if (moving) this.checkMovable(dir);
    const g = ctx.settings();
    const before = { paused: g.overrides.paused === true, staleAfterMs: g.staleAfterMs };
    applyConfig(ctx.db, changes, u);
    if (moving) this.moveBackups(dir);
    this.scheduling.afterSettingsChange(u, before);
    return this.getConfig(u);
  }

  async setWifi(udid: string, on: boolean): Promise<WifiResult> {
    return setWifi(this.ctx, this.contact, udid, on);
  }

  async pair(udid: string): Promise<PairResult> {
    const work = pairDevice(this.ctx, this.contact, udid, {
      waitMs: this.o.pairWaitMs ?? DEFAULT_PAIR_WAIT_MS,
      signal: this.lifetime.signal,
    });
    this.ctx.track(work);
    return work;
  }

  async pinSnapshot(udid: string, snapshotId: string, pinned: boolean): Promise<SnapshotSummary[]> {
    if (snapshotId !== 'latest' && !isSnapshotId(snapshotId)) {
      throw new MooringError(
        'USAGE',
        `snapshot: ${JSON.stringify(snapshotId)} is not a snapshot id`,
      );
    }
    // A device Mooring knows, as it names it: never a folder made for a stranger's UDID.
    const u = this.ctx.view.requireKnown(udid);
    await usingAgentStore(this.ctx, u, undefined, (store) =>
      pinned ? store.pin(snapshotId) : store.unpin(snapshotId),
    );
    return this.snapshots(u);
  }

  /** A new backup folder is refused while a backup writes into the current one. */
  private checkMovable(dir: string): void {
    const running = this.ctx.coordinator.running();
    if (running.length > 0 || [...this.ctx.runtimes.values()].some((rt) => rt.running)) {
      throw new MooringError(
        'USAGE',
        'backup-dir: a backup is running; change the backup folder when it has finished (or cancel it)',
      );
    }
    prepareBackupFolder(dir);
  }

  /** Backups go to `dir` from now on; the old folder stays as it is (the notice says so). */
  private moveBackups(dir: string): void {
    const { ctx } = this;
    const from = ctx.backupDir;
    ctx.backupDir = dir;
    this.browser = this.newBrowser(dir);
    ctx.log(`backups now go to ${dir} (the backups in ${from} are left as they are)`);
    ctx.record(backupDirChanged({ from, to: dir }));
    for (const rt of ctx.runtimes.values()) rt.latestSnapshot = null;
    ctx.track(
      Promise.all(
        ctx.db.listDevices().map((d) => readDeviceFolder(ctx, d.udid, { fresh: true })),
      ).then(() => {
        for (const d of ctx.db.listDevices()) ctx.emitDevice(d.udid);
      }),
    );
  }

  readLog(q: { maxBytes?: number }): Promise<AgentLogTail> {
    return readLogTail(logFilePath(this.dataDir), q.maxBytes);
  }

  /**
   * A line of the host's own (the tray app's power events, its bridge's errors) for the agent's
   * log: the file and the front end's log, as the agent's own lines. Not a bridge method.
   */
  log(line: string): void {
    this.ctx.log(line);
  }

  pause(): void {
    this.setConfig({ paused: 'true' });
  }

  resume(): void {
    this.setConfig({ paused: 'false' });
  }

  // ---- snapshot browsing: read-only, never takes the device lock (snapshot-browser.ts) ----

  snapshots(udid: string): Promise<SnapshotSummary[]> {
    return this.browser.snapshots(this.udidOrAsGiven(udid));
  }

  files(udid: string, snapshotId: string, q: FileQuery): Promise<FilePage> {
    return this.browser.files(this.udidOrAsGiven(udid), snapshotId, q);
  }

  diff(udid: string, from: string, to: string): Promise<DiffSummary> {
    return this.browser.diff(this.udidOrAsGiven(udid), from, to);
  }

  openFile(udid: string, snapshotId: string, domain: string, rel: string): Promise<OpenedFile> {
    return this.browser.openFile(this.udidOrAsGiven(udid), snapshotId, domain, rel);
  }

  private newBrowser(dir: string): SnapshotBrowser {
    return new SnapshotBrowser(dir, (udid) => this.encryption.passwordsFor(udid));
  }

  // ---- H8c: backup encryption (encryption.ts) ----------------------------------------------

  setEncryption(udid: string, req: EncryptionRequest): Promise<EncryptionChangeResult> {
    return this.encryption.setEncryption(udid, req);
  }

  storeBackupPassword(udid: string, password: string): Promise<StorePasswordResult> {
    return this.encryption.storeBackupPassword(udid, password);
  }

  recoverySheet(udid: string): Promise<RecoverySheetResult> {
    return this.encryption.recoverySheet(udid);
  }

  private udidOrAsGiven(udid: string): string {
    return this.ctx.view.canonicalUdid(udid) ?? udid;
  }

  /** The Ticker's callback (tests hand it a TickInfo with `slept` to stand for a sleep). */
  private onTick(info: TickInfo): Promise<void> {
    return this.scheduling.onTick(info);
  }
}
