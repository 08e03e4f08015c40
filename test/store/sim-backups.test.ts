/**
 * The store against real backups: the simulated device backed up by Debian's idevicebackup2, first
 * into the destination (a backup another tool made, adopted as the first snapshot), then, after
 * `ctl mutate`, into a store staging (a hard-link copy). Both snapshots verify; files, extract
 * and diff see exactly what the mutation did; the older snapshot is byte-identical afterwards.
 */
import { pairWithIdevicepair, realTool } from '../helpers/real-tools';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { openStore, type BackupFileEntry, type SnapshotStore } from '../../src/store';
import { walkFiles } from '../../src/store/fs-util';
import { startSim, type RunningSim } from '../../src/sim/index';
import type { ListingJson } from '../../src/sim/content/model';
import { tempDirs } from './fixture';

const { tmp, cleanup } = tempDirs('mooring-store-sim-');
let sim: RunningSim;

before(async () => {
  sim = await startSim({ stateDir: tmp(), files: 30, bytes: 400_000, seed: 11 });
  await pairWithIdevicepair(sim.usbmuxdAddress, sim.udid);
});

after(async () => {
  await sim?.stop();
  cleanup();
});

async function hashes(dir: string): Promise<Map<string, string>> {
  const m = new Map<string, string>();
  await walkFiles(dir, async (f) => {
    const data = await fsp.readFile(path.join(dir, f.rel));
    m.set(f.rel, createHash('sha256').update(data).digest('hex'));
  });
  return m;
}

async function collect(it: AsyncIterable<BackupFileEntry>): Promise<BackupFileEntry[]> {
  const out: BackupFileEntry[] = [];
  for await (const e of it) out.push(e);
  return out;
}

const key = (e: { domain: string; relativePath: string }): string =>
  `${e.domain}/${e.relativePath}`;

test('idevicebackup2 backups: adopted, staged incrementally, verified, browsed and compared', async () => {
  const dest = tmp();
  assert.match(
    await realTool(sim.usbmuxdAddress, 'idevicebackup2', [
      '-u',
      sim.udid,
      'backup',
      '--full',
      dest,
    ]),
    /Backup Successful\./,
  );
  const before = (await sim.ctl('listing')) as ListingJson;

  const store: SnapshotStore = await openStore(dest, sim.udid);
  const firstId = store.recovery.adopted!;
  assert.ok(firstId, 'the idevicebackup2 backup is adopted');
  const v1 = await store.verify();
  assert.ok(v1.ok, JSON.stringify(v1.problems));
  assert.equal(v1.files, before.files);
  assert.equal(v1.hashed, before.files, 'the simulator records SHA-1 digests');
  assert.equal(v1.bytes, before.bytes);

  const m = (await sim.ctl('mutate', { add: 2, modify: 3, delete: 2 })) as {
    added: string[];
    modified: string[];
    deleted: string[];
  };
  const staging = await store.beginStaging();
  const oldBytes = await hashes(store.latestDir);
  const out = await realTool(sim.usbmuxdAddress, 'idevicebackup2', [
    '-u',
    sim.udid,
    'backup',
    staging.root,
  ]);
  assert.match(out, /Backup Successful\./);
  // Incremental: only the changed payloads were sent (plus Status x4, Manifest.db/.plist).
  assert.equal(
    Number(/Received (\d+) files/.exec(out)?.[1]),
    m.added.length + m.modified.length + 6,
  );
  const staged = await staging.verify();
  assert.ok(staged.ok, JSON.stringify(staged.problems));
  const second = await staging.commit();

  // The first snapshot is byte for byte what it was: nothing wrote through a shared link.
  const oldDir = path.join(store.snapshotsDir, firstId);
  assert.deepEqual(await hashes(oldDir), oldBytes);
  assert.ok((await store.verify(firstId)).ok);
  const v2 = await store.verify();
  assert.ok(v2.ok, JSON.stringify(v2.problems));
  const afterListing = (await sim.ctl('listing')) as ListingJson;
  assert.equal(v2.files, afterListing.files);

  const list = await store.list();
  assert.deepEqual(
    list.map((s) => [s.id, s.isLatest]),
    [
      [firstId, false],
      [second.id, true],
    ],
  );
  // The new snapshot alone holds about the changed bytes, far less than the whole device.
  const changedBytes = afterListing.entries
    .filter((e) => m.added.includes(key(e)) || m.modified.includes(key(e)))
    .reduce((n, e) => n + e.size, 0);
  const own = list[1]!.exclusiveBytes;
  assert.ok(own >= changedBytes, `${own} >= ${changedBytes}`);
  assert.ok(own < changedBytes + 200_000, `${own} is about ${changedBytes} plus manifests`);
  assert.ok(own < list[1]!.size / 2);

  // diff: exactly the mutation.
  const d = await store.diff(firstId, second.id);
  const names = (pick: 'added' | 'removed' | 'changed'): string[] =>
    d.domains.flatMap((x) => x[pick].map((e) => `${x.domain}/${e.relativePath}`)).sort();
  const addedFiles = names('added').filter((n) => m.added.includes(n));
  assert.deepEqual(addedFiles, [...m.added].sort());
  assert.deepEqual(names('removed'), [...m.deleted].sort());
  assert.deepEqual(names('changed'), [...m.modified].sort());
  assert.equal(d.invalidRows, 0);

  // files: the deleted ones are still in the first snapshot, not in the latest.
  const gone = m.deleted[0]!;
  const goneDomain = gone.slice(0, gone.indexOf('/'));
  const goneRel = gone.slice(gone.indexOf('/') + 1);
  const base = goneRel.slice(goneRel.lastIndexOf('/') + 1);
  const inOld = await collect(
    store.files({ snapshot: firstId, domain: goneDomain, pattern: base }),
  );
  assert.ok(inOld.some((e) => e.relativePath === goneRel));
  const inNew = await collect(store.files({ domain: goneDomain, pattern: base }));
  assert.ok(!inNew.some((e) => e.relativePath === goneRel));
  const all = await collect(store.files());
  assert.equal(all.length, afterListing.entries.length);
  assert.deepEqual(all.map(key), afterListing.entries.map(key));

  // extract: get the deleted file back, with its content and mtime.
  const to = tmp();
  const res = await store.extract({ snapshot: firstId, domain: goneDomain, pattern: goneRel, to });
  assert.equal(res.files, 1);
  assert.deepEqual(res.skipped, []);
  const file = path.join(to, goneDomain, goneRel);
  const was = before.entries.find((e) => key(e) === gone)!;
  assert.equal(
    createHash('sha256')
      .update(await fsp.readFile(file))
      .digest('hex'),
    was.sha256,
  );
  assert.equal(Math.floor((await fsp.stat(file)).mtimeMs / 1000), was.mtime);
});
