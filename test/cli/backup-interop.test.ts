/**
 * Issue 3 acceptance, interoperability: `mooring backup` (a child process) and Debian's
 * idevicebackup2 against one simulated device. For the same device state both backups hold the same
 * files (Manifest.db rows and payload bytes per fileID); Mooring continues incrementally from a
 * folder idevicebackup2 made (adopting it as a snapshot); and idevicebackup2 restores a wiped device
 * from a Mooring destination back to the same `ctl listing`.
 */
import { realTool } from '../helpers/real-tools';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { assertBackupMatches } from '../backup/fixture';
import {
  fingerprint,
  manifestRows,
  payloads,
  snapshots,
  startCliSim,
  verifyOk,
  type CliSim,
} from './backup-fixture';

let cs: CliSim;

before(async () => {
  cs = await startCliSim({ seed: 301, files: 50, bytes: 1_500_000 });
});

after(async () => {
  await cs?.close();
});

/** Debian's idevicebackup2, with the pair record `mooring pair` saved into the sim's usbmuxd. */
function idevicebackup2(args: string[]): Promise<string> {
  return realTool(cs.sim.usbmuxdAddress, 'idevicebackup2', ['-u', cs.sim.udid, ...args]);
}

function lastFinished(): Record<string, unknown> {
  const f = cs.logs.filter((l) => l.event === 'mobilebackup2.finished');
  assert.ok(f.length > 0, 'the simulator logged a finished backup');
  return f[f.length - 1]!;
}

async function mooringBackup(dest: string, ...extra: string[]): Promise<Record<string, unknown>> {
  const r = await cs.mooring(['backup', '--dest', dest, '--json', ...extra]);
  assert.equal(r.code, 0, r.err + r.out);
  assert.ok(r.result, 'a result line');
  assert.equal(r.result.ok, true, String(r.result.message));
  return r.result;
}

test('mooring and idevicebackup2: same files; incremental from theirs; restore from ours', async () => {
  const ours = path.join(cs.tmp, 'mooring-dest');
  const theirs = path.join(cs.tmp, 'ib2-dest');

  // 1. The same device state, backed up by both.
  const l1 = await cs.listing();
  const first = await mooringBackup(ours);
  await mkdir(theirs);
  assert.equal(first.isFull, true);
  const out = await idevicebackup2(['backup', '--full', theirs]);
  assert.match(out, /Backup Successful\./);
  assert.deepEqual(await cs.listing(), l1, 'nothing changed on the device in between');

  const oursDir = path.join(ours, cs.sim.udid);
  const theirsDir = path.join(theirs, cs.sim.udid);
  const rowsOurs = manifestRows(oursDir);
  assert.ok(rowsOurs.length >= 50, `Manifest.db has the device's entries (${rowsOurs.length})`);
  assert.deepEqual(rowsOurs, manifestRows(theirsDir), 'same Manifest.db Files rows');
  const pOurs = await payloads(oursDir);
  assert.equal(pOurs.size, l1.files, 'one payload per device file');
  assert.deepEqual(pOurs, await payloads(theirsDir), 'same content per fileID');
  await assertBackupMatches({ root: ours, udid: cs.sim.udid }, l1);

  // 2. The device changes; Mooring continues from the folder idevicebackup2 made.
  const m = (await cs.sim.ctl('mutate', { add: 2, modify: 3, delete: 2 })) as {
    added: string[];
    modified: string[];
    deleted: string[];
  };
  const l2 = await cs.listing();
  const theirsBefore = await fingerprint(theirsDir);
  const inc = await mooringBackup(theirs);
  assert.equal(inc.isFull, false, 'the device diffed against idevicebackup2’s Manifest.db');
  assert.equal(lastFinished().incremental, true);
  // The changed payloads plus Manifest.db, Manifest.plist and four Status.plist uploads.
  assert.equal(inc.filesReceived, m.added.length + m.modified.length + 6);
  await assertBackupMatches({ root: theirs, udid: cs.sim.udid }, l2);
  const list = await snapshots(cs, theirs);
  assert.equal(list.length, 2, JSON.stringify(list));
  assert.equal(list[0]!.adopted, true, 'idevicebackup2’s backup was adopted as a snapshot');
  assert.equal(list[1]!.isLatest, true);
  assert.equal(list[1]!.isFull, false);
  // The adopted snapshot is exactly the folder idevicebackup2 wrote, and still verifies.
  assert.deepEqual(await fingerprint(list[0]!.path), theirsBefore);
  await verifyOk(cs, theirs, list[0]!.id);

  // 3. Mooring's own store goes incremental too; then a wiped device is restored from it.
  const inc2 = await mooringBackup(ours);
  assert.equal(inc2.isFull, false);
  await assertBackupMatches({ root: ours, udid: cs.sim.udid }, l2);
  const oursBefore = await fingerprint(oursDir);

  await cs.sim.ctl('wipe');
  assert.equal((await cs.listing()).entries.length, 0);
  const restore = await idevicebackup2(['restore', '--system', '--settings', '--no-reboot', ours]);
  assert.match(restore, /Restore Successful\./);
  assert.deepEqual(await cs.listing(), l2, 'the restored device equals the backed-up one');
  // Restoring reads the latest backup; it stays whole.
  await verifyOk(cs, ours);
  const oursAfter = await fingerprint(oursDir);
  assert.deepEqual(oursAfter, oursBefore, 'restoring changed nothing in the latest backup');
});
