/**
 * The simulated device against Debian's real libimobiledevice tools: idevicepair, then
 * idevicebackup2 backup --full, an incremental backup after `ctl mutate`, and a restore after
 * `ctl wipe`. The backup folder is checked byte for byte against the device's listing.
 */
import { pairWithIdevicepair, realTool } from '../../helpers/real-tools';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, promises as fsp, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { decodePlist, isPlistDict } from '../../../src/protocol/plist';
import { readManifestDb } from '../../../src/format/manifest-db';
import { fileIdFor } from '../../../src/format/file-id';
import type { ListingJson } from '../../../src/sim/content/model';
import { startSim, type RunningSim } from '../../../src/sim/index';

const dirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(path.join(os.tmpdir(), 'mooring-ib2-'));
  dirs.push(d);
  return d;
}

let sim: RunningSim;
const logs: Array<Record<string, unknown>> = [];

before(async () => {
  sim = await startSim({
    stateDir: tmp(),
    files: 60,
    bytes: 2_000_000,
    seed: 3,
    log: (line) => logs.push(JSON.parse(line) as Record<string, unknown>),
  });
  await pairWithIdevicepair(sim.usbmuxdAddress, sim.udid);
});

after(async () => {
  await sim?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function listing(): Promise<ListingJson> {
  return (await sim.ctl('listing')) as ListingJson;
}

function lastFinished(): Record<string, unknown> {
  const f = logs.filter((l) => l.event === 'mobilebackup2.finished');
  assert.ok(f.length > 0, 'the simulator logged a finished backup');
  return f[f.length - 1]!;
}

/** Every listed file is in the folder byte for byte, Manifest.db lists every entry, nothing extra. */
async function assertBackupMatches(root: string, l: ListingJson): Promise<void> {
  const dir = path.join(root, sim.udid);
  const status = decodePlist(readFileSync(path.join(dir, 'Status.plist')));
  assert.ok(isPlistDict(status) && status.SnapshotState === 'finished');
  const rows = readManifestDb(path.join(dir, 'Manifest.db'));
  const ids = new Set(rows.map((r) => r.fileId));
  assert.equal(rows.length, l.entries.length);
  const files = new Set<string>();
  for (const e of l.entries) {
    const id = fileIdFor(e.domain, e.relativePath);
    assert.ok(ids.has(id), `Manifest.db lists ${e.domain}/${e.relativePath}`);
    if (e.type !== 'file') continue;
    files.add(id);
    const bytes = readFileSync(path.join(dir, id.slice(0, 2), id));
    assert.equal(createHash('sha256').update(bytes).digest('hex'), e.sha256, e.relativePath);
  }
  const present: string[] = [];
  for (const b of await fsp.readdir(dir)) {
    if (/^[0-9a-f]{2}$/.test(b)) present.push(...(await fsp.readdir(path.join(dir, b))));
  }
  assert.deepEqual(present.sort(), [...files].sort());
}

test('idevicebackup2: full backup, incremental after mutate, restore after wipe', async () => {
  const root = tmp();
  const full = await realTool(sim.usbmuxdAddress, 'idevicebackup2', [
    '-u',
    sim.udid,
    'backup',
    '--full',
    root,
  ]);
  assert.match(full, /Backup Successful\./);
  const l1 = await listing();
  await assertBackupMatches(root, l1);
  assert.equal(lastFinished().incremental, false);
  assert.equal(lastFinished().files, l1.files);

  const m = (await sim.ctl('mutate', { add: 2, modify: 3, delete: 2 })) as {
    added: string[];
    modified: string[];
  };
  const inc = await realTool(sim.usbmuxdAddress, 'idevicebackup2', [
    '-u',
    sim.udid,
    'backup',
    root,
  ]);
  assert.match(inc, /Backup Successful\./);
  assert.equal(lastFinished().incremental, true);
  assert.equal(lastFinished().files, m.added.length + m.modified.length);
  assert.equal(lastFinished().removed, 2);
  // idevicebackup2 counts every file it received: the payloads, 4 Status.plist, Manifest.db/.plist.
  const received = /Received (\d+) files from device/.exec(inc);
  assert.ok(received, inc);
  assert.equal(Number(received[1]), m.added.length + m.modified.length + 6);
  const l2 = await listing();
  await assertBackupMatches(root, l2);

  await sim.ctl('wipe');
  assert.equal((await listing()).entries.length, 0);
  const restore = await realTool(sim.usbmuxdAddress, 'idevicebackup2', [
    '-u',
    sim.udid,
    'restore',
    '--system',
    '--settings',
    '--no-reboot',
    root,
  ]);
  assert.match(restore, /Restore Successful\./);
  assert.deepEqual(await listing(), l2);
});

test('idevicebackup2 after a cut-off backup: ErrorCode 3 until the device restarts, as on a phone', async () => {
  const root = tmp();
  const backup = (): Promise<string> =>
    realTool(sim.usbmuxdAddress, 'idevicebackup2', [
      '-u',
      sim.udid,
      'backup',
      '--full',
      root,
    ]).catch((e: Error) => e.message);
  await sim.ctl('fault', { name: 'staleSnapshot', value: 'on' });
  await sim.ctl('fault', { name: 'dropAfterBytes', value: '20000' });
  try {
    assert.doesNotMatch(await backup(), /Backup Successful/);
    await sim.ctl('fault', { name: 'dropAfterBytes', value: 'off' });
    // What libimobiledevice#1257 shows from a phone, word for word.
    assert.match(
      await backup(),
      /ErrorCode 3: Failed to create snapshot: File exists \(17\) at path "\/private\/var" \(MBErrorDomain\/3\)/,
    );
    await sim.ctl('reboot');
    assert.match(await backup(), /Backup Successful\./);
  } finally {
    await sim.ctl('fault', { name: 'staleSnapshot', value: 'off' });
    await sim.ctl('fault', { name: 'dropAfterBytes', value: 'off' });
  }
});
