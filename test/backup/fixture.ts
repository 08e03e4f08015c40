/**
 * Shared set-up for the backup engine tests: a simulated device (usbmuxd + Wi-Fi on 127.0.0.2),
 * paired by our own LockdownClient, its pair record also saved into the simulator's usbmuxd so
 * Debian's idevicebackup2 can use the same host identity; plain temp folders as BackupTargets; and
 * a byte-for-byte comparison of a backup folder with the device's `ctl listing`.
 */
import { realTool } from '../helpers/real-tools';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { DeviceSession } from '../../src/lockdown/session';
import type { PairRecord } from '../../src/pairing/pair-record';
import { serializePairRecord } from '../../src/pairing/pair-record';
import { decodePlist, isPlistDict } from '../../src/protocol/plist';
import { fileIdFor } from '../../src/format/file-id';
import type { ListingJson } from '../../src/sim/content/model';
import type { SimOptions } from '../../src/sim/index';
import type { BackupTarget } from '../../src/backup/target';
import { pairOverUsb, startSimFixture, type SimFixture } from '../lockdown/sim-fixture';

export interface BackupFixture extends SimFixture {
  record: PairRecord;
  /** The simulator's JSON log lines. */
  logs: Array<Record<string, unknown>>;
  /** Temp folders made by makeTarget (removed by close()). */
  dirs: string[];
}

/** A simulated phone with 60 files / ~2 MB, paired. */
export async function startBackupFixture(opts: Partial<SimOptions> = {}): Promise<BackupFixture> {
  const logs: Array<Record<string, unknown>> = [];
  const f = await startSimFixture({
    files: 60,
    bytes: 2_000_000,
    seed: 11,
    log: (line) => logs.push(JSON.parse(line) as Record<string, unknown>),
    ...opts,
  });
  try {
    const record = await pairOverUsb(f);
    await f.mux.savePairRecord(f.sim.udid, serializePairRecord(record), f.deviceId);
    const dirs: string[] = [];
    return {
      ...f,
      record,
      logs,
      dirs,
      close: async () => {
        await f.close();
        for (const d of dirs) await fsp.rm(d, { recursive: true, force: true });
      },
    };
  } catch (e) {
    await f.close();
    throw e;
  }
}

/** A fresh `<tmp>/root/` containing `<udid>/`; the outer temp folder is the sentinel around it. */
export async function makeTarget(f: BackupFixture): Promise<BackupTarget & { outer: string }> {
  const outer = await fsp.mkdtemp(path.join(os.tmpdir(), 'mooring-bk-'));
  f.dirs.push(outer);
  const root = path.join(outer, 'root');
  await fsp.mkdir(path.join(root, f.sim.udid), { recursive: true });
  return { udid: f.sim.udid, root, outer };
}

export async function withSession<T>(
  f: BackupFixture,
  via: 'usb' | 'wifi',
  fn: (s: DeviceSession) => Promise<T>,
): Promise<T> {
  const s = await DeviceSession.open(via === 'usb' ? f.usb : f.wifi, f.record, { timeoutMs: 5000 });
  try {
    return await fn(s);
  } finally {
    await s.close();
  }
}

export async function listing(f: BackupFixture): Promise<ListingJson> {
  return (await f.sim.ctl('listing')) as ListingJson;
}

export function sha256(buf: Buffer): string {
  return createHash('sha256').update(buf).digest('hex');
}

/**
 * The backup folder equals the device: Status finished, Manifest.db lists exactly the device's
 * entries, every file's payload has the device's sha256, and no other payload is present.
 */
export async function assertBackupMatches(target: BackupTarget, l: ListingJson): Promise<void> {
  const dir = path.join(target.root, target.udid);
  const status = decodePlist(await fsp.readFile(path.join(dir, 'Status.plist')));
  assert.ok(isPlistDict(status) && status.SnapshotState === 'finished', 'Status.plist finished');
  const db = new Database(path.join(dir, 'Manifest.db'), { readonly: true, fileMustExist: true });
  let rows: Array<{ fileID: string; domain: string; relativePath: string; flags: number }>;
  try {
    rows = db.prepare('SELECT fileID, domain, relativePath, flags FROM Files').all() as typeof rows;
  } finally {
    db.close();
  }
  const byId = new Map(rows.map((r) => [r.fileID, r]));
  assert.equal(rows.length, l.entries.length, 'Manifest.db has one row per device entry');
  const files: string[] = [];
  for (const e of l.entries) {
    const id = fileIdFor(e.domain, e.relativePath);
    const row = byId.get(id);
    assert.ok(row, `Manifest.db lists ${e.domain}/${e.relativePath}`);
    assert.equal(row.domain, e.domain);
    assert.equal(row.relativePath, e.relativePath);
    if (e.type !== 'file') continue;
    files.push(id);
    const bytes = await fsp.readFile(path.join(dir, id.slice(0, 2), id));
    assert.equal(sha256(bytes), e.sha256, `payload of ${e.relativePath}`);
  }
  assert.deepEqual((await payloadIds(dir)).sort(), files.sort(), 'no payload beyond the listing');
}

/** fileIDs present as payloads in `<dir>/xx/`. */
export async function payloadIds(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const b of await fsp.readdir(dir)) {
    if (/^[0-9a-f]{2}$/.test(b)) out.push(...(await fsp.readdir(path.join(dir, b))));
  }
  return out;
}

/** Every file under `dir` (relative paths), recursively; symlinks reported as such. */
export async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  async function go(rel: string): Promise<void> {
    for (const ent of await fsp.readdir(path.join(dir, rel), { withFileTypes: true })) {
      const p = rel ? `${rel}/${ent.name}` : ent.name;
      if (ent.isDirectory()) await go(p);
      else out.push(ent.isSymbolicLink() ? `${p} -> symlink` : p);
    }
  }
  await go('');
  return out.sort();
}

/** Debian's idevicebackup2 against the simulator's usbmuxd. */
export function idevicebackup2(f: BackupFixture, args: string[]): Promise<string> {
  return realTool(f.sim.usbmuxdAddress, 'idevicebackup2', ['-u', f.sim.udid, ...args]);
}

/** The simulator's last `mobilebackup2.finished` log line (what it actually sent). */
export function lastFinished(f: BackupFixture): Record<string, unknown> {
  const all = f.logs.filter((l) => l.event === 'mobilebackup2.finished');
  assert.ok(all.length > 0, 'the simulator logged a finished backup');
  return all[all.length - 1]!;
}
