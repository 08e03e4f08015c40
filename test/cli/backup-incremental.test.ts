/**
 * Issue 3 acceptance, incremental: after `ctl mutate` the next `mooring backup` receives only the
 * changed files (plus the few metadata files), the new snapshot alone holds about the changed
 * bytes (its unchanged payloads are hard links into the previous one), and the previous snapshot
 * still verifies with exactly its old content.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { assertBackupMatches } from '../backup/fixture';
import { fileIdFor } from '../../src/format/file-id';
import {
  fingerprint,
  payloads,
  snapshots,
  startCliSim,
  storePaths,
  verifyOk,
  type CliSim,
} from './backup-fixture';

let cs: CliSim;

before(async () => {
  cs = await startCliSim({ seed: 302, files: 60, bytes: 2_500_000 });
});

after(async () => {
  await cs?.close();
});

type Mutation = { added: string[]; modified: string[]; deleted: string[] };

/** "domain/relativePath" (as `ctl mutate` reports it) → fileID. */
function idOf(key: string): string {
  const slash = key.indexOf('/');
  return fileIdFor(key.slice(0, slash), key.slice(slash + 1));
}

test('an incremental backup receives and holds only what changed', async () => {
  const dest = path.join(cs.tmp, 'dest');
  const p = storePaths(dest, cs.sim.udid);
  const first = await cs.mooring(['backup', '--dest', dest, '--json']);
  assert.equal(first.code, 0, first.err);
  assert.equal(first.result?.isFull, true);
  const l1 = await cs.listing();
  const oldContent = await fingerprint(p.latest);
  const [a] = await snapshots(cs, dest);
  assert.ok(a);

  const m = (await cs.sim.ctl('mutate', { add: 2, modify: 3, delete: 2 })) as Mutation;
  const l2 = await cs.listing();
  const changed = new Set([...m.added, ...m.modified].map(idOf));
  const sizeById = new Map(
    l2.entries
      .filter((e) => e.type === 'file')
      .map((e) => [fileIdFor(e.domain, e.relativePath), e.size]),
  );
  let changedBytes = 0;
  for (const id of changed) changedBytes += sizeById.get(id) ?? 0;
  assert.ok(
    changedBytes > 0 && changedBytes < l2.bytes / 3,
    `a small change (${changedBytes} of ${l2.bytes})`,
  );

  const second = await cs.mooring(['backup', '--dest', dest, '--json']);
  assert.equal(second.code, 0, second.err);
  const r = second.result!;
  assert.equal(r.ok, true, String(r.message));
  assert.equal(r.isFull, false);
  // The changed payloads, Manifest.db, Manifest.plist and Status.plist four times: nothing else.
  assert.equal(r.filesReceived, changed.size + 6);
  await assertBackupMatches({ root: dest, udid: cs.sim.udid }, l2);

  // Bytes received: the changed payloads plus the metadata files, not the device.
  const meta = ['Manifest.db', 'Manifest.plist', 'Status.plist'];
  let metaBytes = 0;
  for (const f of meta) metaBytes += (await fsp.stat(path.join(p.latest, f))).size;
  const received = r.bytesReceived as number;
  assert.ok(received >= changedBytes + metaBytes, `${received} ≥ ${changedBytes} + ${metaBytes}`);
  // (The device uploads Status.plist four times during a backup.)
  const status = (await fsp.stat(path.join(p.latest, 'Status.plist'))).size;
  assert.ok(
    received <= changedBytes + metaBytes + 4 * status,
    `${received} ≤ ${changedBytes} + ${metaBytes} + 4 × ${status}`,
  );

  // Unchanged payloads are the previous snapshot's files (same inode), changed ones are new.
  const list = await snapshots(cs, dest);
  assert.equal(list.length, 2);
  const [older, latest] = list as [(typeof list)[0], (typeof list)[0]];
  assert.equal(older.id, a.id);
  assert.equal(latest.isLatest, true);
  assert.equal(latest.path, p.latest);
  assert.equal(older.path, path.join(p.snapshots, a.id));
  let shared = 0;
  for (const id of (await payloads(p.latest)).keys()) {
    const rel = path.join(id.slice(0, 2), id);
    const now = await fsp.stat(path.join(p.latest, rel));
    if (changed.has(id)) {
      assert.equal(now.nlink, 1, `changed payload ${id} is a new file`);
      continue;
    }
    const then = await fsp.stat(path.join(older.path, rel));
    assert.equal(now.ino, then.ino, `unchanged payload ${id} is shared, not copied`);
    shared++;
  }
  assert.equal(shared, l2.files - changed.size);

  // What only the new snapshot holds: the changed bytes plus its own metadata (≈ tens of KB).
  const ownMeta = metaBytes + (await fsp.stat(path.join(p.latest, 'Info.plist'))).size;
  assert.equal(
    latest.exclusiveBytes,
    changedBytes + ownMeta,
    `exclusiveBytes = changed ${changedBytes} + metadata ${ownMeta}`,
  );
  assert.ok(latest.exclusiveBytes < latest.size / 2, `not the device size (${latest.size})`);

  // The older snapshot still verifies, byte for byte what the latest was before.
  await verifyOk(cs, dest, older.id);
  assert.deepEqual(await fingerprint(older.path), oldContent);
  await assertBackupMatches({ root: p.snapshots, udid: a.id }, l1);
  const filesBefore = new Set(
    l1.entries.filter((e) => e.type === 'file').map((e) => fileIdFor(e.domain, e.relativePath)),
  );
  const deletedFiles = m.deleted.map(idOf).filter((id) => filesBefore.has(id));
  assert.ok(deletedFiles.length > 0, 'the mutation deleted at least one file');
  for (const id of deletedFiles) {
    const key = id;
    assert.ok(oldContent.has(`${id.slice(0, 2)}/${id}`), `the old snapshot keeps deleted ${key}`);
    assert.equal((await payloads(p.latest)).has(id), false, `the latest no longer has ${key}`);
  }
});
