/**
 * Snapshot browsing over real HTTP on 127.0.0.1 in front of a real Agent (no USB, no Bonjour)
 * whose backup folder holds a real store with two snapshots: the JSON routes through AgentClient,
 * the download's headers and bytes, and every parameter check (400), unknown things (404) and
 * encrypted backups without their password and damaged ones (409).
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, promises as fsp } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Agent } from '../../src/agent/agent';
import type { FileEntry } from '../../src/agent/types';
import { AgentApiError, AgentClient } from '../../src/api/client';
import { payloadPath } from '../../src/format/layout';
import { createBackupKeyBag, wrapClassKey } from '../../src/format/encryption';
import { encodeBinaryPlist } from '../../src/protocol/plist';
import { openHistory } from '../../src/history';
import { openStore } from '../../src/store';
import { historyFile } from '../../src/util/paths';
import { sampleEntries, UDID, writeBackup, type FakeEntry } from '../store/fixture';
import { commitSnapshots, startServedAgent, type ServedAgent } from '../helpers/agent-server';
import { errorOf, raw } from './http-helpers';

const TOKEN = 'test-token-snapshots-0123456789abcdefghijklmn';
const ENCRYPTED_UDID = '00008110-000F0E0D0C0B0A09';
const DAMAGED_UDID = '00008110-000F0E0D0C0B0A0A';
const NAMED = { domain: 'AppDomain-com.example.notes', relativePath: 'Documents/résumé "v2".txt' };

describe('snapshot routes', () => {
  let t: ServedAgent;
  let tmp: string;
  let agent: Agent;
  let client: AgentClient;
  let port: number;
  let ids: string[];
  const get = (p: string) => raw(port, { path: p, token: TOKEN });
  const dev = `/api/devices/${UDID}`;

  before(async () => {
    t = await startServedAgent('mooring-api-snap-', TOKEN, {
      prepare: async (dir) => {
        const backupDir = path.join(dir, 'backups');
        const v1: FakeEntry[] = [...sampleEntries(12), { ...NAMED, content: 'first words' }];
        const v2: FakeEntry[] = v1
          .filter((e) => e.relativePath !== 'Library/file0.txt')
          .map((e) =>
            e.relativePath === NAMED.relativePath ? { ...e, content: 'second words' } : e,
          );
        v2.push({ domain: 'HomeDomain', relativePath: 'Library/new.txt', content: 'new' });
        ids = await commitSnapshots(backupDir, UDID, [v1, v2]);
        const enc = await openStore(backupDir, ENCRYPTED_UDID);
        const s = await enc.beginStaging();
        await writeBackup(s.backupDir, sampleEntries(2), { udid: ENCRYPTED_UDID });
        // A real password keybag (few rounds), and no password stored for it.
        const bag = createBackupKeyBag('not stored anywhere', { dpic: 10, iter: 10 });
        const ManifestKey = wrapClassKey(bag.unlocked, 4, randomBytes(32));
        await fsp.writeFile(
          path.join(s.backupDir, 'Manifest.plist'),
          encodeBinaryPlist({
            IsEncrypted: true,
            Version: '10.0',
            BackupKeyBag: bag.keyBag,
            ManifestKey,
          }),
        );
        await s.commit();
        // An "encrypted" backup without its keybag is damaged, not locked.
        const bad = await openStore(backupDir, DAMAGED_UDID);
        const b = await bad.beginStaging();
        await writeBackup(b.backupDir, sampleEntries(2), { udid: DAMAGED_UDID });
        await fsp.writeFile(
          path.join(b.backupDir, 'Manifest.plist'),
          encodeBinaryPlist({ IsEncrypted: true, Version: '10.0' }),
        );
        await b.commit();
        return { dataDir: path.join(dir, 'data'), backupDir };
      },
    });
    ({ tmp, agent, client, port } = t);
  });
  after(() => t?.close());

  it('lists snapshots, pages files with the cursor, and diffs', async () => {
    const list = await client.snapshots(UDID);
    assert.deepEqual(
      list.map((s) => [s.id, s.isLatest]),
      [
        [ids[0], false],
        [ids[1], true],
      ],
    );
    assert.deepEqual(list, await agent.snapshots(UDID));

    const all: FileEntry[] = [];
    let after: string | null = null;
    do {
      const page = await client.files(UDID, ids[1]!, { limit: 4, ...(after ? { after } : {}) });
      assert.ok(page.items.length <= 4);
      all.push(...page.items);
      after = page.nextCursor;
    } while (after);
    const direct = await agent.files(UDID, ids[1]!, { limit: 1000 });
    assert.deepEqual(all, direct.items);
    assert.equal(direct.nextCursor, null);
    const jpg = await client.files(UDID, 'latest', {
      pattern: '*.JPG',
      domain: 'CameraRollDomain',
    });
    assert.ok(jpg.items.length > 0 && jpg.items.every((e) => e.relativePath.endsWith('.JPG')));

    const d = await client.diff(UDID, ids[0]!, ids[1]!);
    assert.deepEqual([d.added, d.removed, d.changed], [1, 1, 1]);
    assert.deepEqual(
      d.entries.map((e) => [e.domain, e.change, e.relativePath]),
      [
        [NAMED.domain, 'changed', NAMED.relativePath],
        ['HomeDomain', 'added', 'Library/new.txt'],
        ['HomeDomain', 'removed', 'Library/file0.txt'],
      ],
    );
  });

  it('downloads a file as an attachment with its bytes, from either snapshot', async () => {
    const q = `domain=${encodeURIComponent(NAMED.domain)}&path=${encodeURIComponent(NAMED.relativePath)}`;
    const r = await get(`${dev}/snapshots/${ids[1]}/file?${q}`);
    assert.equal(r.status, 200);
    assert.equal(r.text, 'second words');
    assert.equal(r.headers['content-type'], 'application/octet-stream');
    assert.equal(r.headers['x-content-type-options'], 'nosniff');
    assert.equal(r.headers['content-length'], String(Buffer.byteLength('second words')));
    assert.match(
      r.headers['content-disposition'] ?? '',
      /^attachment; filename="r_sum_ _v2_.txt"; filename\*=UTF-8''r%C3%A9sum%C3%A9%20%22v2%22.txt$/,
    );
    const older = await client.openFile(UDID, ids[0]!, NAMED.domain, NAMED.relativePath);
    assert.equal(older.name, 'résumé "v2".txt');
    const chunks: Buffer[] = [];
    for await (const c of older.stream) chunks.push(c as Buffer);
    assert.equal(Buffer.concat(chunks).toString(), 'first words');
    assert.equal(older.size, 'first words'.length);
    // The bytes are the payload on disk.
    const id = createHash('sha1').update(`${NAMED.domain}-${NAMED.relativePath}`).digest('hex');
    const onDisk = await fsp.readFile(payloadPath(path.join(tmp, 'backups', UDID), id), 'utf8');
    assert.equal(onDisk, 'second words');
  });

  it('refuses bad parameters (400), unknown things (404), locked or damaged backups (409)', async () => {
    const cases: Array<[string, number, RegExp]> = [
      [`/api/devices/..%2F..%2Fetc/snapshots`, 400, /not a UDID/],
      [`/api/devices/%E0%A4%A/snapshots`, 400, /not a valid URL component/],
      [`${dev}/snapshots?x=1`, 400, /unknown query parameter/],
      [`${dev}/snapshots/..%2F..%2F/files`, 400, /not a snapshot id/],
      [`${dev}/snapshots/20250231T000000Z/files`, 400, /not a snapshot id/],
      [`${dev}/snapshots/latest/files?limit=0`, 400, /limit/],
      [`${dev}/snapshots/latest/files?limit=1001`, 400, /limit/],
      [`${dev}/snapshots/latest/files?limit=99999999999`, 400, /limit/],
      [`${dev}/snapshots/latest/files?limit=abc`, 400, /limit/],
      [`${dev}/snapshots/latest/files?after=bogus!`, 400, /cursor/],
      [`${dev}/snapshots/latest/files?limit=1&limit=2`, 400, /twice/],
      [`${dev}/snapshots/latest/files?pattern=${'*'.repeat(600)}`, 400, /pattern/],
      [`${dev}/diff?from=latest`, 400, /to is required/],
      [`${dev}/diff?from=latest&to=../x`, 400, /not a snapshot id/],
      [
        `${dev}/snapshots/latest/file?domain=HomeDomain&path=..%2F..%2F..%2Fetc%2Fpasswd`,
        400,
        /not a backup path/,
      ],
      [`${dev}/snapshots/latest/file?domain=HomeDomain&path=%2Fetc%2Fpasswd`, 400, /absolute/],
      [`${dev}/snapshots/latest/file?domain=..&path=etc`, 400, /not a backup path/],
      [`${dev}/snapshots/latest/file?domain=HomeDomain`, 400, /path is required/],
      [`${dev}/snapshots/latest/file?domain=HomeDomain&path=Library`, 400, /is a dir, not a file/],
      [`${dev}/snapshots/latest/file?domain=HomeDomain&path=nope.txt`, 404, /is not in snapshot/],
      [`${dev}/snapshots/20200101T000000Z/files`, 404, /no snapshot/],
      [`/api/devices/${ENCRYPTED_UDID}/snapshots/latest/files`, 409, /password/],
      [`/api/devices/${DAMAGED_UDID}/snapshots/latest/files`, 409, /without a BackupKeyBag/],
    ];
    for (const [p, status, message] of cases) {
      const r = await get(p);
      assert.equal(r.status, status, `${p}: ${r.text}`);
      assert.match(errorOf(r).message, message, p);
    }
    assert.equal((await raw(port, { path: `${dev}/snapshots` })).status, 401, 'token required');
    assert.equal(
      (await raw(port, { method: 'POST', path: `${dev}/snapshots`, token: TOKEN })).status,
      405,
    );
    const enc = await client.snapshots(ENCRYPTED_UDID);
    assert.equal(enc[0]!.encrypted, true);
    await assert.rejects(
      client.files(ENCRYPTED_UDID, 'latest'),
      (e) => e instanceof AgentApiError && e.status === 409 && e.apiCode === 'ENCRYPTED',
    );
  });
});

describe('pinning a snapshot over HTTP', () => {
  let t: ServedAgent;
  let client: AgentClient;
  let port: number;
  let ids: string[];
  let backupDir: string;

  before(async () => {
    t = await startServedAgent('mooring-api-pin-', TOKEN, {
      prepare: async (dir) => {
        backupDir = path.join(dir, 'backups');
        ids = await commitSnapshots(backupDir, UDID, [sampleEntries(3), sampleEntries(4)]);
        // A device the agent knows (the UI only offers those).
        const h = openHistory(historyFile(path.join(dir, 'data')));
        h.upsertDevice({ udid: UDID });
        h.close();
        return { dataDir: path.join(dir, 'data'), backupDir };
      },
    });
    ({ client, port } = t);
  });
  after(() => t?.close());

  it('pins and unpins, as mooring pin does; refuses a bad body, an unknown snapshot, and a busy store', async () => {
    const pinnedOf = (list: Array<{ id: string; pinned: boolean }>) =>
      list.find((s) => s.id === ids[0])?.pinned;
    assert.equal(pinnedOf(await client.pinSnapshot(UDID, ids[0]!, true)), true);
    assert.equal((await (await openStore(backupDir, UDID)).list())[0]!.pinned, true);
    assert.equal(pinnedOf(await client.pinSnapshot(UDID, ids[0]!, false)), false);

    const post = (p: string, body: string) =>
      raw(port, {
        method: 'POST',
        path: p,
        token: TOKEN,
        headers: { 'Content-Type': 'application/json' },
        body,
      });
    const bad = await post(`/api/devices/${UDID}/snapshots/${ids[0]}/pin`, '{"pinned":"yes"}');
    assert.equal(bad.status, 400);
    assert.match(errorOf(bad).message, /\{"pinned": true\}/);
    const unknown = await post(
      `/api/devices/${UDID}/snapshots/20200101T000000Z/pin`,
      '{"pinned":true}',
    );
    assert.equal(unknown.status, 400);
    assert.match(errorOf(unknown).message, /no snapshot "20200101T000000Z"/);

    // A device the agent does not know: refused, and no folder is made for it.
    const stranger = '00008110-0000000000000001';
    await assert.rejects(client.pinSnapshot(stranger, 'latest', true), /No device .* is known/);
    assert.equal(existsSync(path.join(backupDir, '.mooring', stranger)), false);

    // A backup of the device holds its store: the pin is refused with why, and nothing changes.
    const staging = await (await openStore(backupDir, UDID)).beginStaging();
    try {
      await assert.rejects(client.pinSnapshot(UDID, ids[0]!, true), (e: unknown) => {
        assert.ok(e instanceof AgentApiError, String(e));
        assert.equal(e.status, 409);
        assert.match(
          e.message,
          /^This device's backups are in use by process \d+ .*\(backup, since /,
        );
        return true;
      });
    } finally {
      await staging.discard();
    }
    assert.equal((await (await openStore(backupDir, UDID)).list())[0]!.pinned, false);
  });
});
