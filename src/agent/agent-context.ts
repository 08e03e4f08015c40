/**
 * What the agent's parts share: the history, discovery, the backup slots, the ticker, the memory
 * kept per device (DeviceRuntime) and the outward voice (events, notifications, webhook). One
 * object handed to scheduling, contact and the backup runner, so that none of them needs another
 * to record a notice, update a device's status line or ask for a new round of decisions.
 */
import type { BackupTimeouts } from '../backup';
import type { MdnsSocketOptions } from '../discovery/bonjour-browser';
import { PairRecordIndex } from '../discovery/pair-record-index';
import { DeviceRegistry } from '../discovery/registry';
import type { History, NotificationInput } from '../history';
import {
  Coordinator,
  Ticker,
  resolvePolicy,
  type DeviceState,
  type SchedulePolicy,
  type TickInfo,
} from '../scheduler';
import type { UsbmuxdClient } from '../transport/usbmuxd-client';
import { pairRecordStoreDir } from '../util/paths';
import { readDeviceOverrides, readGlobalSettings, type GlobalSettings } from './config';
import { newRuntime, type DeviceRuntime } from './device-runtime';
import { deviceState } from './device-state';
import { currentFolderFacts } from './folder-backups';
import type { AgentEncryption } from './encryption'; // H8c
import { DeviceView, reachableOver } from './device-view';
import { LockWatcher } from './lock-watcher';
import { Notifier } from './notifier';
import type { AgentEvent, DeviceStatus, EncryptionStatus } from './types';

export interface AgentContextOptions {
  db: History;
  dataDir: string;
  backupDir: string;
  usbmuxd: UsbmuxdClient | null;
  mdns: MdnsSocketOptions | null;
  wifiPort: 'lockdown' | 'advertised';
  timeZone: string;
  now: () => number;
  /** The OS lockdown folder, or null for none. */
  systemDir: string | null;
  backupTimeouts?: Partial<BackupTimeouts>;
  log?: (line: string) => void;
  onTick: (info: TickInfo) => Promise<void>;
}

export class AgentContext {
  readonly db: History;
  readonly now: () => number;
  readonly timeZone: string;
  /** Where backups go now (the backup-dir setting can move it while no backup runs). */
  backupDir: string;
  readonly usbmuxd: UsbmuxdClient | null;
  readonly systemDir: string | null;
  readonly pairRecordDir: string;
  readonly backupTimeouts: Partial<BackupTimeouts> | undefined;
  readonly pairRecords: PairRecordIndex;
  readonly registry: DeviceRegistry;
  readonly coordinator: Coordinator;
  readonly ticker: Ticker;
  readonly lockWatcher: LockWatcher;
  readonly notifier: Notifier;
  readonly view: DeviceView;
  readonly runtimes = new Map<string, DeviceRuntime>();
  /** H8c: backup encryption (set by the Agent once its parts exist). */
  encryption: AgentEncryption | undefined;
  /** Set by start(): rounds of decisions may be asked for. */
  started = false;
  /** Set by stop(): nothing new starts, nothing but interruptions is recorded. */
  stopping = false;
  private readonly background = new Set<Promise<unknown>>();
  private readonly logLine: ((line: string) => void) | undefined;

  constructor(o: AgentContextOptions) {
    this.db = o.db;
    this.now = o.now;
    this.timeZone = o.timeZone;
    this.backupDir = o.backupDir;
    this.usbmuxd = o.usbmuxd;
    this.systemDir = o.systemDir;
    this.pairRecordDir = pairRecordStoreDir(o.dataDir);
    this.backupTimeouts = o.backupTimeouts;
    this.logLine = o.log;
    this.pairRecords = new PairRecordIndex({
      storeDir: this.pairRecordDir,
      systemDir: this.systemDir,
      usbmuxd: o.usbmuxd,
    });
    this.registry = new DeviceRegistry({
      usbmuxd: o.usbmuxd,
      bonjour: o.mdns === null ? null : { mdns: o.mdns },
      pairRecords: this.pairRecords,
      wifiPort: o.wifiPort,
    });
    this.coordinator = new Coordinator({
      concurrency: this.settings().concurrency,
      now: () => new Date(this.now()),
    });
    this.ticker = new Ticker({
      timeZone: this.timeZone,
      onTick: o.onTick,
      onError: (e) => this.log(`decision round failed: ${errText(e)}`),
    });
    this.lockWatcher = new LockWatcher({ now: this.now });
    this.notifier = new Notifier({
      db: this.db,
      webhookUrl: () => this.settings().webhook,
      log: (line) => this.log(line),
      track: (p) => this.track(p),
      now: () => this.now(),
    });
    this.view = new DeviceView({
      db: this.db,
      registry: this.registry,
      pairRecords: this.pairRecords,
      now: this.now,
      runtime: (udid) => this.runtime(udid),
      folder: (udid) => currentFolderFacts(this, udid),
      encryption: (udid) => this.encryption?.status(udid) ?? NO_ENCRYPTION, // H8c
    });
  }

  runtime(udid: string): DeviceRuntime {
    let rt = this.runtimes.get(udid);
    if (!rt) {
      rt = newRuntime(this.db, udid, this.timeZone);
      this.runtimes.set(udid, rt);
    }
    return rt;
  }

  settings(): GlobalSettings {
    return readGlobalSettings(this.db, (problem) => this.log(`settings: ${problem}`));
  }

  policyOf(udid: string): SchedulePolicy {
    return resolvePolicy(this.settings().overrides, readDeviceOverrides(this.db, udid));
  }

  /** The scheduler's view of the device: the history's counters plus what only memory holds. */
  stateOf(udid: string, now: number, policy: SchedulePolicy): DeviceState {
    const rt = this.runtime(udid);
    const seen = this.view.lastSeen(udid);
    return deviceState(
      this.db,
      udid,
      {
        reachable: reachableOver(this.registry.get(udid)),
        ...(seen === null ? {} : { lastSeenAt: seen }),
        running: this.coordinator.isRunning(udid) || rt.running !== undefined,
        passcodeWaiting: rt.running?.passcodeWaiting === true,
        ...(rt.passcodeRequired === undefined ? {} : { passcodeRequired: rt.passcodeRequired }),
        ...(rt.lastUnlockedAt === undefined
          ? {}
          : { lastUnlockedAt: rt.lastUnlockedAt, inUseAt: rt.lastUnlockedAt }),
      },
      now,
      policy.window,
      this.timeZone,
      currentFolderFacts(this, udid),
    );
  }

  /** Asks for a decision round now (after the current one); never throws. */
  redecide(): void {
    if (this.stopping || !this.started) return;
    this.track(this.ticker.poke());
  }

  /** Records a notification (not while stopping, except the interruptions stopping causes). */
  record(n: NotificationInput): void {
    if (this.stopping && n.reasonCode !== 'INTERRUPTED') return;
    this.notifier.record(n);
  }

  /** The device's status line; front ends hear of it only when it says something new. */
  setNext(udid: string, next: DeviceStatus['next']): void {
    const rt = this.runtime(udid);
    const changed = rt.next.code !== next.code || rt.next.message !== next.message;
    rt.next = next;
    if (changed) this.emitDevice(udid);
  }

  emitDevice(udid: string): void {
    if (!this.notifier.hasListeners || this.stopping) return;
    this.emit({ type: 'device', device: this.view.status(udid) });
  }

  emitAgent(): void {
    const g = this.settings();
    this.emit({
      type: 'agent',
      paused: g.overrides.paused === true,
      running: this.coordinator.running().length,
      staleAfterMs: g.staleAfterMs,
    });
  }

  emit(e: AgentEvent): void {
    this.notifier.emit(e);
  }

  /** Keeps background work (probes, pokes, webhook sends) so stop() can wait for it. */
  track(p: Promise<unknown>): void {
    const q = p.catch((e: unknown) => this.log(errText(e)));
    this.background.add(q);
    void q.finally(() => this.background.delete(q));
  }

  async settleBackground(): Promise<void> {
    await Promise.allSettled([...this.background]);
  }

  log(line: string): void {
    try {
      this.logLine?.(line);
    } catch {
      // logging must never break the agent
    }
  }
}

/** H8c: before the agent's encryption part exists (never shown in practice). */
const NO_ENCRYPTION: EncryptionStatus = {
  on: null,
  passwordStored: false,
  latestOpens: null,
  storeKind: null,
};

export function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
