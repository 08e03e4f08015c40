/**
 * What the UI knows about the agent: its devices (as the last `device` event or load said), the
 * pause flag, and each running backup's announced total. Events from the bridge update it in
 * place; views subscribe and update their own elements (never a full re-render, which would
 * lose the keyboard focus and half-typed input).
 */
import type { AgentEvent, DeviceStatus } from '../agent/types';
import type { SnapshotSource } from './snapshot-source.js';
import { PAIR_WAIT_TEXT } from './pairing.js';
import { errorMessage, type MooringBridge } from './transport.js';

export type StateChange =
  | AgentEvent
  /** Everything may have changed (first load, or the event stream came back after a drop). */
  | { type: 'reloaded' }
  /** The event stream went down or came back (see `offline`). */
  | { type: 'connection' }
  /** A pairing started or ended (see `pairing`). */
  | { type: 'pairing'; udid: string }
  /** The backup folder changed (see `backupDir`). */
  | { type: 'backup-dir' };

/** A device's pairing as this page started it: waiting for the answer, or what came of it. */
export interface PairingState {
  busy: boolean;
  message: string;
  /** The last answer paired it (false while busy or after a refusal). */
  ok: boolean;
}

export class AppState {
  readonly devices = new Map<string, DeviceStatus>();
  paused = false;
  backupDir = '';
  /** The stale-after setting (ms), from the agent's status; 3 days until it is loaded. */
  staleAfterMs = 3 * 24 * 3600_000;
  /** Why USB (usbmuxd) is not available, saying what to do; null while it is (or is off). */
  usbProblem: string | null = null;
  /** The event stream is down (the agent stopped or the network dropped). */
  offline = false;
  /**
   * Pairings started from this page, by UDID: kept here rather than in a view, so the device
   * list, the device page and the setup guide all show the same wait and the same answer.
   */
  readonly pairing = new Map<string, PairingState>();
  private readonly listeners = new Set<(c: StateChange) => void>();

  constructor(
    readonly bridge: MooringBridge,
    /** Snapshot browsing, when the transport offers it (both do). */
    readonly snapshots?: SnapshotSource,
  ) {
    bridge.onEvent((e) => this.apply(e));
  }

  async load(): Promise<void> {
    const s = await this.bridge.call('status');
    this.devices.clear();
    for (const d of s.devices) this.devices.set(d.udid, d);
    this.paused = s.paused;
    this.backupDir = s.backupDir;
    this.usbProblem = s.usbmuxdProblem;
    this.staleAfterMs = s.staleAfterMs;
    this.emit({ type: 'reloaded' });
  }

  /** Devices in a stable order: by name, then UDID. */
  list(): DeviceStatus[] {
    return [...this.devices.values()].sort(
      (a, b) => (a.name ?? '').localeCompare(b.name ?? '') || a.udid.localeCompare(b.udid),
    );
  }

  subscribe(listener: (c: StateChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Asks the agent to pair a USB-attached device (it shows "Trust This Computer?"); resolves with
   * the agent's answer once someone answered or the agent's wait ended. The device's own `device`
   * event then shows it paired.
   */
  async pair(udid: string): Promise<PairingState> {
    const current = this.pairing.get(udid);
    if (current?.busy) return current;
    this.setPairing(udid, { busy: true, message: PAIR_WAIT_TEXT, ok: false });
    let done: PairingState;
    try {
      const r = await this.bridge.call('pair', udid);
      done = { busy: false, message: r.message, ok: r.paired };
    } catch (e) {
      done = { busy: false, message: errorMessage(e), ok: false };
    }
    this.setPairing(udid, done);
    return done;
  }

  setBackupDir(dir: string): void {
    if (this.backupDir === dir) return;
    this.backupDir = dir;
    this.emit({ type: 'backup-dir' });
  }

  private setPairing(udid: string, p: PairingState): void {
    this.pairing.set(udid, p);
    this.emit({ type: 'pairing', udid });
  }

  setOffline(offline: boolean): void {
    if (this.offline === offline) return;
    this.offline = offline;
    this.emit({ type: 'connection' });
  }

  private apply(e: AgentEvent): void {
    switch (e.type) {
      case 'device':
        this.devices.set(e.device.udid, e.device);
        break;
      case 'device-removed':
        this.devices.delete(e.udid);
        break;
      case 'progress': {
        const d = this.devices.get(e.udid);
        if (d?.running?.attemptId === e.attemptId) {
          d.running = {
            ...d.running,
            phase: e.phase,
            bytes: e.bytes,
            files: e.files,
            percent: e.percent,
          };
        }
        break;
      }
      case 'agent':
        this.paused = e.paused;
        this.staleAfterMs = e.staleAfterMs;
        break;
      case 'usbmuxd':
        this.usbProblem = e.usbmuxdProblem;
        break;
      default:
        break;
    }
    this.emit(e);
  }

  private emit(c: StateChange): void {
    for (const l of [...this.listeners]) l(c);
  }
}
