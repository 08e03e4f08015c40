/**
 * Browsing encrypted snapshots: store/browse.ts (files, pages, extract, diff) and the agent's
 * SnapshotBrowser (what the UI and API use) with the device's passwords, two password eras in one
 * store, and clear refusals without or with a wrong password.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { text } from 'node:stream/consumers';
import { diffBackups, extractFiles, listFiles, listFilesPage } from '../../src/store/browse';
import { openStore, openStoreReadOnly } from '../../src/store';
import { clearDecryptedManifests, readBackupEncryption } from '../../src/store/encrypted';
import { SnapshotBrowser } from '../../src/agent/snapshot-browser';
import { isMooringError } from '../../src/util/errors';
import { tempDirs, UDID, writeBackup, type FakeEntry } from './fixture';
import { encryptBackupInPlace } from './encrypted-fixture';

const { tmp, cleanup } = tempDirs('mooring-encbrowse-');
after(() => {
  clearDecryptedManifests();
  cleanup();
});

const V1: FakeEntry[] = [
  { domain: 'HomeDomain', relativePath: 'Library/SMS/sms.db', content: 'first messages' },
  { domain: 'HomeDomain', relativePath: 'Library/Notes/a.txt', content: 'note a' },
  { domain: 'CameraRollDomain', relativePath: 'Media/DCIM/IMG_1.JPG', content: 'jpeg one' },
];
const V2: FakeEntry[] = [
  { domain: 'HomeDomain', relativePath: 'Library/SMS/sms.db', content: 'second messages, longer' },
  { domain: 'CameraRollDomain', relativePath: 'Media/DCIM/IMG_1.JPG', content: 'jpeg one' },
  { domain: 'CameraRollDomain', relativePath: 'Media/DCIM/IMG_2.JPG', content: 'jpeg two' },
];

let dest: string;
let first: string;
let second: string;
const eras = new Map<string, string>();
const lookup = async (keyBagId: string): Promise<string[]> => {
  const p = eras.get(keyBagId);
  return p === undefined ? [] : [p];
};

before(async () => {
  dest = tmp();
  // Era 1: the device's first password; era 2 (after off/on): another one.
  const latest = path.join(dest, UDID);
  await writeBackup(latest, V1);
  await encryptBackupInPlace(latest, 'password one');
  let store = await openStore(dest, UDID); // adopts it as a snapshot
  first = (await store.resolve('latest')).id;
  await new Promise((r) => setTimeout(r, 1100)); // snapshot ids have whole seconds
  const staging = await store.beginStaging();
  const dir = path.join(staging.root, staging.udid);
  await writeBackup(dir, V2);
  await encryptBackupInPlace(dir, 'password two');
  second = (await staging.commit({ isFull: true })).id;
  store = await openStore(dest, UDID);
  eras.set(
    (await readBackupEncryption((await store.resolve(first)).path)).keyBagId!,
    'password one',
  );
  eras.set(
    (await readBackupEncryption((await store.resolve(second)).path)).keyBagId!,
    'password two',
  );
});

async function dirOf(id: string): Promise<string> {
  return (await openStoreReadOnly(dest, UDID).resolve(id)).path;
}

test('files and pages of each era open with their own password', async () => {
  const names = async (id: string): Promise<string[]> => {
    const out: string[] = [];
    for await (const e of listFiles(await dirOf(id), { passwords: lookup }))
      out.push(e.relativePath);
    return out;
  };
  assert.deepEqual(await names(first), [
    'Media/DCIM/IMG_1.JPG',
    'Library/Notes/a.txt',
    'Library/SMS/sms.db',
  ]);
  assert.deepEqual(await names(second), [
    'Media/DCIM/IMG_1.JPG',
    'Media/DCIM/IMG_2.JPG',
    'Library/SMS/sms.db',
  ]);
  const page = await listFilesPage(
    await dirOf(second),
    { passwords: lookup, pattern: '*.JPG' },
    { limit: 1 },
  );
  assert.equal(page.entries.length, 1);
  assert.ok(page.next);
});

test('without a password: USAGE/ENCRYPTED; with a wrong one: WRONG_PASSWORD', async () => {
  const dir = await dirOf(first);
  await assert.rejects(
    listFiles(dir).next(),
    (e) => isMooringError(e, 'USAGE') && e.detail === 'ENCRYPTED',
  );
  await assert.rejects(listFiles(dir, { passwords: ['password two'] }).next(), (e) =>
    isMooringError(e, 'WRONG_PASSWORD'),
  );
});

test('extract decrypts into plain files with the right bytes', async () => {
  const to = tmp();
  const r = await extractFiles(await dirOf(second), { passwords: lookup }, to);
  assert.equal(r.files, 3);
  assert.deepEqual(r.skipped, []);
  assert.equal(
    await fsp.readFile(path.join(to, 'HomeDomain', 'Library/SMS/sms.db'), 'utf8'),
    'second messages, longer',
  );
});

test('diff across two password eras', async () => {
  const d = await diffBackups(await dirOf(first), await dirOf(second), { passwords: lookup });
  assert.equal(d.added, 1);
  assert.equal(d.removed, 1);
  assert.equal(d.changed, 1);
});

test("the agent's snapshot browser: files, a file's plaintext, diff; refusals for the UI", async () => {
  const browser = new SnapshotBrowser(dest, () => lookup);
  const page = await browser.files(UDID, first, {});
  assert.equal(page.items.length, 3);
  const f = await browser.openFile(UDID, first, 'HomeDomain', 'Library/SMS/sms.db');
  assert.equal(f.size, 'first messages'.length);
  assert.equal(await text(f.stream), 'first messages');
  const d = await browser.diff(UDID, first, second);
  assert.deepEqual([d.added, d.removed, d.changed], [1, 1, 1]);

  const wrong = new SnapshotBrowser(dest, () => ['nope']);
  const encrypted = (e: unknown): boolean =>
    isMooringError(e, 'USAGE') && e.detail === 'ENCRYPTED' && /does not open it/.test(e.message);
  await assert.rejects(wrong.files(UDID, first, {}), encrypted);
  await assert.rejects(wrong.openFile(UDID, first, 'HomeDomain', 'Library/SMS/sms.db'), encrypted);
  await assert.rejects(wrong.diff(UDID, first, second), encrypted);
  const none = new SnapshotBrowser(dest, () => []);
  await assert.rejects(
    none.files(UDID, first, {}),
    (e) => isMooringError(e, 'USAGE') && /knows no password/.test(e.message),
  );
  const noStore = new SnapshotBrowser(dest);
  await assert.rejects(
    noStore.files(UDID, first, {}),
    (e) => isMooringError(e, 'USAGE') && e.detail === 'ENCRYPTED',
  );
});
