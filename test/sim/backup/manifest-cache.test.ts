/**
 * The simulated device's Manifest.db cache and change journal (src/sim/backup/manifest-cache.ts):
 * an incremental backup decodes only the host rows that differ from what the device last built,
 * re-encodes only the changed entries, and still sends exactly the changed files, removes exactly
 * the deleted ones, and leaves a Manifest.db equal to the device's listing. A host copy that
 * differs from the device's idea of it (a row altered or lost) is caught by the comparison.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { promises as fsp, readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import Database from 'better-sqlite3';
import { PlistConnection } from '../../../src/transport/plist-connection';
import { mobilebackup2Service } from '../../../src/sim/backup/mobilebackup2';
import { manifestRowsFor } from '../../../src/sim/backup/backup-session';
import { MANIFEST_CACHE_DIR, ManifestCache } from '../../../src/sim/backup/manifest-cache';
import { readManifestDb, writeManifestDb } from '../../../src/format/manifest-db';
import { encodeMbFile } from '../../../src/format/mbfile';
import { ContentStore } from '../../../src/sim/content/store';
import { fileIdFor } from '../../../src/format/file-id';
import { SimDevice } from '../../../src/sim/device';
import { HostPairings } from '../../../src/sim/host-pairings';
import { loadOrCreateIdentity } from '../../../src/sim/identity';
import { MiniHost } from './mini-host';
import { tempDirs } from '../../helpers/temp-dirs';

const { tmp, cleanup } = tempDirs('mooring-mcache-');
after(cleanup);

interface Rig {
  store: ContentStore;
  host: MiniHost;
  root: string;
  udid: string;
  logs: Array<{ event: string; fields?: Record<string, unknown> }>;
  close(): Promise<void>;
}

async function rig(): Promise<Rig> {
  const stateDir = tmp();
  const root = tmp();
  const identity = await loadOrCreateIdentity(stateDir, { seed: 12, ios: '16.0' });
  const logs: Rig['logs'] = [];
  const device = await SimDevice.create({
    stateDir,
    identity,
    pairings: await HostPairings.load(path.join(stateDir, 'pairings')),
    mediaDir: path.join(stateDir, 'media'),
    passcode: { kind: 'none' },
    trust: 'auto',
    faults: {},
    log: (event, fields) => logs.push({ event, fields }),
  });
  const store = await ContentStore.open(stateDir, { files: 60, bytes: 400_000, seed: 9 });
  const handler = mobilebackup2Service(store, {
    passcodeTimeoutMs: 300,
    replyTimeoutMs: 5_000,
    idleTimeoutMs: 20_000,
  });
  const sockPath = path.join(stateDir, 'mb2.sock');
  let served: Promise<void> | undefined;
  const server = net.createServer((sock) => {
    served = handler(sock, device);
  });
  await new Promise<void>((r) => server.listen(sockPath, r));
  const client = net.connect(sockPath);
  await new Promise<void>((r, j) => client.once('connect', r).once('error', j));
  while (served === undefined) await new Promise((r) => setImmediate(r));
  const host = new MiniHost(new PlistConnection(client, { format: 'binary' }), { root });
  await host.handshake();
  return {
    store,
    host,
    root,
    udid: device.udid,
    logs,
    async close() {
      await host.disconnect().catch(() => undefined);
      client.destroy();
      await served;
      device.shutdown();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

const idOf = (p: string): string => {
  const i = p.indexOf('/');
  return fileIdFor(p.slice(0, i), p.slice(i + 1));
};

/** Backup; returns the fileIDs uploaded and the device's 'mode' log of that run. */
async function backup(r: Rig): Promise<{ sent: string[]; mode: Record<string, unknown> }> {
  const from = r.logs.length;
  const res = await r.host.request('Backup', { TargetIdentifier: r.udid });
  assert.equal(res.result.ErrorCode, 0, String(res.result.ErrorDescription));
  const mode = r.logs.slice(from).find((l) => l.event === 'mobilebackup2.mode')?.fields ?? {};
  const sent = res.uploaded
    .filter((p) => /\/Snapshot\/[0-9a-f]{2}\//.test(p))
    .map((p) => path.basename(p))
    .sort();
  return { sent, mode };
}

/** The host folder holds exactly the listing (`ctl listing`): rows, payloads, bytes. */
async function assertHostMatchesListing(r: Rig): Promise<void> {
  const dir = path.join(r.root, r.udid);
  const listing = await r.store.listing();
  const rows = readManifestDb(path.join(dir, 'Manifest.db'));
  const key = (d: string, p: string): string => `${d}/${p}`;
  assert.deepEqual(
    rows
      .map(
        (x) => `${key(x.domain, x.relativePath)} ${x.flags} ${x.file.size} ${x.file.lastModified}`,
      )
      .sort(),
    listing.entries
      .map(
        (e) =>
          `${key(e.domain, e.relativePath)} ${{ file: 1, dir: 2, symlink: 4 }[e.type]} ${e.type === 'dir' ? 0 : e.size} ${e.mtime}`,
      )
      .sort(),
  );
  const payloads: string[] = [];
  for (const b of await fsp.readdir(dir)) {
    if (!/^[0-9a-f]{2}$/.test(b)) continue;
    for (const f of await fsp.readdir(path.join(dir, b))) payloads.push(f);
  }
  const files = listing.entries.filter((e) => e.type === 'file');
  assert.deepEqual(payloads.sort(), files.map((e) => fileIdFor(e.domain, e.relativePath)).sort());
  for (const e of files) {
    const id = fileIdFor(e.domain, e.relativePath);
    const bytes = readFileSync(path.join(dir, id.slice(0, 2), id));
    assert.equal(createHash('sha256').update(bytes).digest('hex'), e.sha256, e.relativePath);
  }
}

/** The device's cached Manifest.db has the rows a from-scratch build of its entries has. */
function assertCacheIsFresh(store: ContentStore): void {
  const cached = readManifestDb(path.join(store.dir, MANIFEST_CACHE_DIR, 'Manifest.db'));
  const scratch = path.join(tmp(), 'Manifest.db');
  writeManifestDb(scratch, manifestRowsFor(store.snapshot()));
  const rows = (f: string): string[] =>
    readManifestDb(f)
      .map((x) => `${x.fileId} ${encodeMbFile(x.file).toString('base64')}`)
      .sort();
  assert.deepEqual(
    cached.map((x) => `${x.fileId} ${encodeMbFile(x.file).toString('base64')}`).sort(),
    rows(scratch),
  );
}

test('incrementals send exactly the changed files, decode only what differs, and match the listing', async () => {
  const r = await rig();
  try {
    const first = await backup(r);
    assert.equal(first.sent.length, (await r.store.listing()).files);
    assert.equal(first.mode.incremental, false);
    assertCacheIsFresh(r.store);

    for (const change of [
      { add: 3, modify: 4, delete: 2 },
      { modify: 5 },
      { add: 1, delete: 3 },
      {},
    ]) {
      const m = await r.store.mutate(change);
      const inc = await backup(r);
      assert.equal(inc.mode.incremental, true, JSON.stringify(inc.mode));
      // The host kept the file the device sent: recognised whole, no row compared.
      assert.equal(inc.mode.hostManifestIdentical, true, JSON.stringify(inc.mode));
      // The comparison with the cache decoded only the rows the journal names (none differ).
      const touched = m.added.length + m.modified.length + m.deleted.length;
      assert.ok(
        Number(inc.mode.decodedRows) <= touched,
        `decoded ${String(inc.mode.decodedRows)} rows for ${touched} changes`,
      );
      assert.deepEqual(inc.sent, [...m.added, ...m.modified].map(idOf).sort());
      await assertHostMatchesListing(r);
      assertCacheIsFresh(r.store);
    }
  } finally {
    await r.close();
  }
});

test("a host copy that differs from the device's idea of it: the differing rows decide", async () => {
  const r = await rig();
  try {
    await backup(r);
    const files = (await r.store.listing()).entries.filter((e) => e.type === 'file');
    const [altered, lost, kept] = [files[3]!, files[7]!, files[9]!];
    const db = new Database(path.join(r.root, r.udid, 'Manifest.db'));
    // The host's row of one file says another size; another row is gone; and one payload is gone
    // (the device cannot know that one: it trusts Manifest.db, as a phone does).
    const rows = readManifestDb(path.join(r.root, r.udid, 'Manifest.db'));
    const row = rows.find(
      (x) => x.relativePath === altered.relativePath && x.domain === altered.domain,
    )!;
    db.prepare('UPDATE Files SET file = ? WHERE fileID = ?').run(
      encodeMbFile({ ...row.file, size: row.file.size + 1 }),
      row.fileId,
    );
    db.prepare('DELETE FROM Files WHERE fileID = ?').run(fileIdFor(lost.domain, lost.relativePath));
    db.close();
    const m = await r.store.mutate({ modify: 1 });
    const inc = await backup(r);
    assert.equal(inc.mode.incremental, true);
    assert.deepEqual(
      inc.sent,
      [
        fileIdFor(altered.domain, altered.relativePath),
        fileIdFor(lost.domain, lost.relativePath),
        ...m.modified.map(idOf),
      ]
        .filter((v, i, a) => a.indexOf(v) === i)
        .sort(),
    );
    assert.ok(!inc.sent.includes(fileIdFor(kept.domain, kept.relativePath)));
    await assertHostMatchesListing(r);

    // A row the device refuses (an unsafe path) among the differing ones: a full backup.
    const w = new Database(path.join(r.root, r.udid, 'Manifest.db'));
    w.prepare('UPDATE Files SET relativePath = ? WHERE fileID = ?').run(
      '../escape',
      fileIdFor(kept.domain, kept.relativePath),
    );
    w.close();
    const full = await backup(r);
    assert.equal(full.mode.incremental, false);
    assert.match(JSON.stringify(full.mode.problems), /Manifest\.db/);
    assert.equal(full.sent.length, files.length + m.added.length);
    await assertHostMatchesListing(r);
  } finally {
    await r.close();
  }
});

test('a host copy with the same rows but other bytes (rewritten by the host) is compared row by row', async () => {
  const r = await rig();
  try {
    await backup(r);
    const file = path.join(r.root, r.udid, 'Manifest.db');
    const before = readFileSync(file);
    // Same rows, other file bytes: a host that rewrote the file (here: a larger page size).
    const db = new Database(file);
    db.pragma('page_size = 8192');
    db.exec('VACUUM');
    db.close();
    assert.notDeepEqual(readFileSync(file), before);
    const m = await r.store.mutate({ modify: 2 });
    const inc = await backup(r);
    assert.equal(inc.mode.incremental, true, JSON.stringify(inc.mode));
    assert.equal(inc.mode.hostManifestIdentical, false);
    assert.deepEqual(inc.sent, m.modified.map(idOf).sort());
    await assertHostMatchesListing(r);

    // One row's MBFile changed (its size): not the device's file any more, and the row that
    // differs decides (its size no longer matches, so that file is sent again).
    const files = (await r.store.listing()).entries.filter((e) => e.type === 'file');
    const target = files.find((e) => !m.modified.includes(`${e.domain}/${e.relativePath}`))!;
    const w = new Database(file);
    const row = readManifestDb(file).find(
      (x) => x.domain === target.domain && x.relativePath === target.relativePath,
    )!;
    w.prepare('UPDATE Files SET file = ? WHERE fileID = ?').run(
      encodeMbFile({ ...row.file, size: row.file.size ^ 1 }),
      row.fileId,
    );
    w.close();
    const again = await backup(r);
    assert.equal(again.mode.hostManifestIdentical, false);
    assert.deepEqual(again.sent, [idOf(`${target.domain}/${target.relativePath}`)]);
    await assertHostMatchesListing(r);
  } finally {
    await r.close();
  }
});

test('after a restore or wipe resets the journal, the next backup rebuilds the cache and is still right', async () => {
  const r = await rig();
  try {
    await backup(r);
    const gen = r.store.generation;
    assert.deepEqual(r.store.changedSince(gen), new Set());
    await r.store.mutate({ modify: 2 });
    assert.equal(r.store.changedSince(gen)!.size, 2);
    await r.store.wipe();
    assert.equal(r.store.changedSince(gen), undefined);
    const after = await backup(r);
    // The host still has every file; the device has none: nothing to send, everything removed.
    assert.deepEqual(after.sent, []);
    await assertHostMatchesListing(r);
    assertCacheIsFresh(r.store);
  } finally {
    await r.close();
  }
});

test("what the device read ahead of the host's Manifest.db is used only while its cache has not moved", async () => {
  const store = await ContentStore.open(tmp(), { files: 40, bytes: 200_000, seed: 4 });
  const rowsFor = (es: Parameters<typeof manifestRowsFor>[0]) => manifestRowsFor(es);
  const cache = new ManifestCache(store, undefined);
  await cache.prepare(rowsFor);
  // The host kept the file the device sent.
  const hostCopy = path.join(tmp(), 'Manifest.db');
  await fsp.copyFile(cache.dbFile, hostCopy);
  const first = await store.mutate({ modify: 2, delete: 1 });
  const firstKeys = [...first.modified, ...first.deleted].sort();
  const keysOf = (d: { candidates: Set<string> } | undefined): string[] =>
    [...(d?.candidates ?? [])].map((k) => k.replace('\u0000', '/')).sort();

  // Read ahead, cache unchanged: the sink's word is taken, rows come from the read-ahead.
  await cache.beginCompare();
  const same = await store.withLock(() => cache.compareHost(hostCopy, { sameAsCache: true }));
  assert.equal(same?.identical, true);
  assert.deepEqual(keysOf(same), firstKeys);
  assert.equal(same?.previousRow(same.candidates.values().next().value!)?.flags, 1);

  // The sink says the host's file is not the cache's: compared row by row (nothing differs).
  await cache.beginCompare();
  const other = await store.withLock(() => cache.compareHost(hostCopy, { sameAsCache: false }));
  assert.equal(other?.identical, false);
  assert.deepEqual(keysOf(other), firstKeys);

  // The cache moves between the read-ahead and the comparison (another change, a new build):
  // a stale "same" must not be believed, or the first change would look like the host's.
  await cache.beginCompare();
  const second = await store.mutate({ modify: 1 });
  await store.withLock(() => cache.build(store.currentEntries(), rowsFor));
  const moved = await store.withLock(() => cache.compareHost(hostCopy, { sameAsCache: true }));
  assert.equal(moved?.identical, false);
  for (const k of [...firstKeys, ...second.modified])
    assert.ok(keysOf(moved).includes(k), `${k} is a candidate`);
});
