/**
 * The store's side of the fault matrix: a snapshot a verification found damaged is marked in
 * snapshots.json (validated on read, bounded), listed with its mark, cleared by a passing verify;
 * a fresh staging does not link the latest in; a lock file this process left behind after a
 * failed release is broken, while one it still holds is not; the new kill-point hooks fire.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { damageFromReport, openStore, type VerifyReport } from '../../src/store';
import { DeviceLock } from '../../src/store/lock';
import { MAX_DAMAGE_EXAMPLE_CHARS, readMetadata } from '../../src/store/metadata';
import { isMooringError } from '../../src/util/errors';
import { sampleEntries, tempDirs, UDID, writeBackup } from './fixture';

const { tmp, cleanup } = tempDirs('mooring-damage-');
after(cleanup);

async function storeWithBackup() {
  const dest = tmp();
  await writeBackup(path.join(dest, UDID), sampleEntries(4));
  return { dest, store: await openStore(dest, UDID) };
}

test('checkSnapshot marks a damaged latest, the list shows it, a passing check clears it', async () => {
  const { dest, store } = await storeWithBackup();
  const clean = await store.checkSnapshot('latest');
  assert.equal(clean.report.ok, true);
  assert.equal(clean.recorded, false, 'nothing to record for a clean snapshot');
  const payload = (await fsp.readdir(path.join(dest, UDID))).find((n) => /^[0-9a-f]{2}$/.test(n))!;
  const file = path.join(
    dest,
    UDID,
    payload,
    (await fsp.readdir(path.join(dest, UDID, payload)))[0]!,
  );
  const bytes = await fsp.readFile(file);
  await fsp.rm(file);
  const bad = await store.checkSnapshot('latest');
  assert.equal(bad.report.ok, false);
  assert.equal(bad.recorded, true);
  const list = await store.list();
  assert.equal(list[0]!.damaged?.problems, 1);
  assert.match(list[0]!.damaged!.example, /^missing: /);
  assert.equal((await store.latestDamage())?.id, bad.id);
  const meta = await readMetadata(store.metadataFile, UDID);
  assert.equal(meta?.snapshots[0]?.damaged?.problems, 1, 'kept in snapshots.json');
  await fsp.writeFile(file, bytes);
  const again = await store.checkSnapshot('latest');
  assert.equal(again.report.ok, true);
  assert.equal(again.recorded, true);
  assert.equal(await store.latestDamage(), undefined);
});

test('a damage mark that is not well-formed makes snapshots.json MALFORMED (then rebuilt)', async () => {
  const { store } = await storeWithBackup();
  const id = (await store.list())[0]!.id;
  const meta = JSON.parse(await fsp.readFile(store.metadataFile, 'utf8')) as {
    snapshots: Array<Record<string, unknown>>;
  };
  meta.snapshots[0]!.damaged = { at: 'yesterday', problems: -1, example: 'x' };
  await fsp.writeFile(store.metadataFile, JSON.stringify(meta));
  await assert.rejects(readMetadata(store.metadataFile, UDID), (e) =>
    isMooringError(e, 'MALFORMED'),
  );
  meta.snapshots[0]!.damaged = {
    at: new Date().toISOString(),
    problems: 1,
    example: 'x'.repeat(MAX_DAMAGE_EXAMPLE_CHARS + 1),
  };
  await fsp.writeFile(store.metadataFile, JSON.stringify(meta));
  await assert.rejects(readMetadata(store.metadataFile, UDID), (e) =>
    isMooringError(e, 'MALFORMED'),
  );
  const reopened = await (await openStore(store.dest, UDID)).list();
  assert.equal(reopened.length, 1, 'the store still lists the backup (metadata rebuilt)');
  assert.equal(reopened[0]!.damaged, undefined);
  assert.ok(id);
});

test('damageFromReport: first problem as a bounded line', () => {
  const report = {
    problemCount: 3,
    problems: [
      { kind: 'size', domain: 'HomeDomain', relativePath: 'a'.repeat(1000), problem: 'short' },
    ],
  } as unknown as VerifyReport;
  const d = damageFromReport(report, new Date(0));
  assert.equal(d.at, '1970-01-01T00:00:00.000Z');
  assert.equal(d.problems, 3);
  assert.ok(d.example.startsWith('size: HomeDomain/aaa'));
  assert.equal(d.example.length, MAX_DAMAGE_EXAMPLE_CHARS);
});

test('a fresh staging starts empty; a normal one links the latest in', async () => {
  const { store } = await storeWithBackup();
  const linked = await store.beginStaging();
  assert.ok((await fsp.readdir(linked.backupDir)).length > 0);
  await linked.discard();
  const fresh = await store.beginStaging({ fresh: true });
  assert.deepEqual(await fsp.readdir(fresh.backupDir), []);
  await fresh.discard();
});

test('a lock this process failed to release is broken; one it holds is not', async () => {
  const file = path.join(tmp(), 'lock');
  const held = await DeviceLock.acquire(file, 'backup');
  await assert.rejects(DeviceLock.acquire(file, 'backup'), (e) => isMooringError(e, 'USAGE'));
  // A release that could not remove the file (a read-only disk): simulate by copying it back.
  const content = await fsp.readFile(file);
  await held.release();
  await fsp.writeFile(file, content);
  const again = await DeviceLock.acquire(file, 'backup');
  assert.match(String(again.brokeStale), /left by this process/);
  await again.release();
});

test('the open and staging hooks fire at their steps', async () => {
  const { dest } = await storeWithBackup();
  const steps: string[] = [];
  const store = await openStore(dest, UDID, {
    hooks: { afterStep: (op, s) => void steps.push(`${op}:${s}`) },
  });
  const st = await store.beginStaging();
  await st.discard();
  assert.deepEqual(steps, ['open:locked', 'open:recovered', 'staging:created', 'staging:linked']);
});
