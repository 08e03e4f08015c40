/**
 * An in-process rig for the fault matrix: one simulated iPhone (USB through its own usbmuxd and,
 * optionally, Wi-Fi on a loopback address), paired, and backupToStore into a destination folder.
 * Helpers check what every fault must leave behind: the latest complete backup byte for byte as
 * it was and verifying, no staging, no journal.
 */
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { backupToStore, type JobOptions, type JobOutcome } from '../../src/job';
import { TcpEndpoint, UsbmuxEndpoint, type DeviceEndpoint } from '../../src/lockdown/endpoint';
import type { PairRecord } from '../../src/pairing/pair-record';
import { startSim, type RunningSim, type SimOptions } from '../../src/sim/index';
import { openStore, verifyBackupFolder } from '../../src/store';
import type { UsbmuxdClient } from '../../src/transport/usbmuxd-client';
import { fingerprint, treeNames } from '../cli/backup-fixture';
import { muxFor, pairAndStore } from '../discovery/sim-helpers';
import { CompleteBackupDamaged } from './report';

export interface Rig {
  tmp: string;
  dest: string;
  sim: RunningSim;
  record: PairRecord;
  usb(): Promise<DeviceEndpoint>;
  /** Wi-Fi endpoint (only with `wifi` in the options). */
  wifi(): DeviceEndpoint;
  backup(endpoint: DeviceEndpoint, o?: Partial<JobOptions>): Promise<JobOutcome>;
  /** Stops the simulator (unless already stopped) and starts it again from its state (a reboot). */
  reboot(): Promise<void>;
  close(): Promise<void>;
}

export async function startRig(
  o: { seed: number; files?: number; bytes?: number; wifi?: string },
  extra: Partial<SimOptions> = {},
): Promise<Rig> {
  const tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'mooring-rel-'));
  const simOpts: SimOptions = {
    stateDir: path.join(tmp, 'sim'),
    usbmuxd: `UNIX:${path.join(tmp, 'usbmuxd.sock')}`,
    files: o.files ?? 30,
    bytes: o.bytes ?? 1_000_000,
    seed: o.seed,
    trust: 'auto',
    ...(o.wifi ? { wifi: o.wifi, wifiPort: 0 } : {}),
    ...extra,
  };
  let sim = await startSim(simOpts);
  let mux: UsbmuxdClient = muxFor(sim);
  const record = await pairAndStore(sim, path.join(tmp, 'pair-records'), mux);
  const rig: Rig = {
    tmp,
    dest: path.join(tmp, 'dest'),
    get sim() {
      return sim;
    },
    record,
    async usb() {
      const dev = await mux.findDevice(sim.udid);
      assert.ok(dev, 'the simulator is attached to its usbmuxd');
      return new UsbmuxEndpoint(mux, dev.deviceId, dev.udid);
    },
    wifi() {
      const a = sim.wifiAddress;
      assert.ok(a, 'the simulator has Wi-Fi');
      const i = a.lastIndexOf(':');
      return new TcpEndpoint({
        udid: sim.udid,
        host: a.slice(0, i),
        lockdownPort: Number(a.slice(i + 1)),
      });
    },
    backup: (endpoint, x = {}) => backupToStore({ endpoint, record, dest: rig.dest, ...x }),
    async reboot() {
      await sim.stop().catch(() => undefined);
      sim = await startSim(simOpts);
      mux = muxFor(sim);
    },
    async close() {
      await sim.stop().catch(() => undefined);
      await fsp.rm(tmp, { recursive: true, force: true });
    },
  };
  return rig;
}

export interface LatestState {
  id: string | null;
  ids: string[];
  files: Map<string, string> | undefined;
}

export async function latestState(dest: string, udid: string): Promise<LatestState> {
  const store = await openStore(dest, udid);
  const list = await store.list();
  const latest = list.find((s) => s.isLatest);
  return {
    id: latest?.id ?? null,
    ids: list.map((s) => s.id),
    files: latest ? await fingerprint(latest.path) : undefined,
  };
}

/**
 * After a fault: the latest complete backup is exactly as before and verifies (with hashes),
 * the snapshot list is unchanged, and nothing staged or journaled is left once the store opens.
 * `mayHaveCommitted`: the fault hit after the commit's point of no return (the journal), so the
 * new, verified backup may have become the latest on recovery; then it must verify and the
 * previous latest must be kept as a snapshot.
 */
export async function assertNothingCompleteLost(
  dest: string,
  udid: string,
  before: LatestState,
  mayHaveCommitted = false,
): Promise<void> {
  const now = await latestState(dest, udid);
  const state = path.join(dest, '.mooring', udid);
  if (mayHaveCommitted && now.id !== before.id) {
    const v = await verifyBackupFolder(path.join(dest, udid), udid, { hash: true });
    if (!v.ok) throw new CompleteBackupDamaged(`the committed backup does not verify`);
    assert.ok(before.id === null || now.ids.includes(before.id), 'the previous latest is kept');
    assert.deepEqual(await treeNames(path.join(state, 'staging')), [], 'no staging left');
    return;
  }
  if (before.files) {
    if (now.id !== before.id || !now.files) {
      throw new CompleteBackupDamaged(`the latest backup changed: ${before.id} → ${now.id}`);
    }
    try {
      assert.deepEqual(now.files, before.files);
    } catch {
      throw new CompleteBackupDamaged(`the latest backup ${before.id} changed on disk`);
    }
    const v = await verifyBackupFolder(path.join(dest, udid), udid, { hash: true });
    if (!v.ok)
      throw new CompleteBackupDamaged(
        `the latest backup does not verify: ${v.problems[0]?.problem}`,
      );
  }
  assert.deepEqual(now.ids, before.ids, 'the snapshot list is unchanged');
  assert.deepEqual(await treeNames(path.join(state, 'staging')), [], 'no staging left');
  await assert.rejects(fsp.access(path.join(state, 'journal.json')), 'no commit journal left');
}
