/**
 * Devices as the front ends see them: which devices Mooring knows (the history's and discovery's),
 * a UDID as the user typed it matched to one of them, and the DeviceStatus built from the history
 * row, the current presence and what the agent keeps in memory. Reads only; changes nothing.
 */
import type { DevicePresence, DeviceRegistry } from '../discovery/registry';
import type { PairRecordIndex } from '../discovery/pair-record-index';
import type { History } from '../history';
import { MooringError } from '../util/errors';
import { effectiveConfig } from './config';
import type { DeviceRuntime } from './device-runtime';
import { shownLastSuccess } from './device-state';
import type { FolderFacts } from './folder-backups';
import { pairingHealth } from './pairing-health';
import type { DeviceStatus, EncryptionStatus, PairingHealth } from './types';

export interface DeviceViewDeps {
  db: History;
  registry: DeviceRegistry;
  pairRecords: PairRecordIndex;
  now: () => number;
  runtime: (udid: string) => DeviceRuntime;
  /** What the backup folder holds of the device, as last read. */
  folder: (udid: string) => FolderFacts | undefined;
  /** H8c: backup encryption as the agent knows it. */
  encryption: (udid: string) => EncryptionStatus;
}

export type PairingView = {
  health: PairingHealth;
  expiresAt: number | null;
  message: string | null;
};

/** The transports a device can be reached over now. */
export function reachableOver(p: DevicePresence | undefined): { usb: boolean; wifi: boolean } {
  return {
    usb: p?.usb !== undefined,
    wifi: p?.wifi !== undefined || p?.network !== undefined,
  };
}

export class DeviceView {
  constructor(private readonly d: DeviceViewDeps) {}

  /**
   * When the device was last backed up: the history's last success, or a newer snapshot in the
   * backup folder (made by `mooring backup` beside the agent).
   */
  lastSuccess(udid: string): number | null {
    return shownLastSuccess(this.d.db.getDevice(udid)?.lastSuccess, this.d.folder(udid));
  }

  /** Every device in the history or seen by discovery since start. */
  knownUdids(): string[] {
    const out = new Set<string>();
    for (const dev of this.d.db.listDevices()) out.add(dev.udid);
    for (const p of this.d.registry.list()) out.add(p.udid);
    return [...out];
  }

  /** The known UDID the user meant (dashes and case ignored), if any. */
  canonicalUdid(udid: string): string | undefined {
    const want = udid.replace(/-/g, '').toLowerCase();
    return this.knownUdids().find((u) => u.replace(/-/g, '').toLowerCase() === want);
  }

  requireKnown(udid: string): string {
    const u = this.canonicalUdid(udid);
    if (u === undefined) {
      throw new MooringError(
        'USAGE',
        `No device ${udid} is known to Mooring (see mooring devices)`,
      );
    }
    return u;
  }

  isPaired(udid: string): boolean {
    return this.d.registry.get(udid)?.paired ?? this.d.pairRecords.get(udid) !== undefined;
  }

  lastSeen(udid: string): number | null {
    const a = this.d.db.getDevice(udid)?.lastSeen ?? null;
    const b = this.d.registry.get(udid)?.lastSeen.getTime() ?? null;
    return a === null ? b : b === null ? a : Math.max(a, b);
  }

  /** "Name (udid)" for messages, or the UDID alone before the name is known. */
  label(udid: string): string {
    const name = this.d.db.getDevice(udid)?.name;
    return name ? `${name} (${udid})` : udid;
  }

  pairingOf(udid: string, now: number): PairingView {
    const row = this.d.db.getDevice(udid);
    return pairingHealth({
      paired: this.isPaired(udid),
      lastContact: row?.lastContact ?? null,
      refusedAt: this.d.runtime(udid).refusedAt,
      now,
    });
  }

  status(udid: string): DeviceStatus {
    const db = this.d.db;
    const row = db.getDevice(udid);
    const p = this.d.registry.get(udid);
    const rt = this.d.runtime(udid);
    const now = this.d.now();
    const running = rt.running;
    return {
      udid,
      name: row?.name ?? null,
      productType: row?.productType ?? null,
      iosVersion: row?.iosVersion ?? null,
      paired: this.isPaired(udid),
      reachable: reachableOver(p),
      address: p?.wifi?.host ?? null,
      lastSeen: this.lastSeen(udid),
      lastContact: row?.lastContact ?? null,
      lastSuccess: this.lastSuccess(udid),
      lastUnlocked: rt.lastUnlockedAt ?? null,
      running: running
        ? {
            attemptId: running.attemptId,
            trigger: running.trigger,
            transport: running.transport,
            startedAt: running.startedAt,
            phase: running.phase,
            bytes: running.bytes,
            files: running.files,
            percent: running.percent,
            quietSince: running.quietSince,
            passcodeWaiting: running.passcodeWaiting,
          }
        : null,
      next:
        row === undefined && p?.paired === false
          ? {
              code: 'NOT_PAIRED',
              message: `Not paired with this computer: connect it by USB, unlock it and pair it (Pair in Mooring, or mooring pair --udid ${udid})`,
              at: null,
            }
          : { ...rt.next },
      pairing: row === undefined && p === undefined ? unknownPairing() : this.pairingOf(udid, now),
      latestSnapshot: rt.latestSnapshot,
      settings: row === undefined ? effectiveConfig(db, undefined) : effectiveConfig(db, udid),
      wifiBackups: rt.wifiBackups,
      encryption: this.d.encryption(udid), // H8c
    };
  }
}

function unknownPairing(): PairingView {
  return { health: 'unknown', expiresAt: null, message: null };
}
