/**
 * Change tracking (BackupTarget.trackChanges): every DeviceLink request that changes the folder
 * reports the paths it changes before it changes them, so the staging's verify re-checks exactly
 * those payloads. One test per request: the request damages a payload whose Manifest.db row is
 * identical to the base's; the record must hold its path, and the verify with the record must find
 * the damage (for a move, which leaves an old inode with its old mtime under another name, only
 * the record can tell). Reads (listings, the source of a copy) and mkdir of an existing folder
 * report nothing.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import {
  dlContentsOfDirectory,
  dlCopyItem,
  dlCreateDirectory,
  dlMoveItems,
  dlProcessMessage,
  dlRemoveItems,
  dlUploadFiles,
  encodeDlDataBlock,
  encodeDlPath,
  encodeDlStreamEnd,
  encodeDlSuccessBlock,
  parseHostDlMessage,
  type DlArray,
} from '../../src/protocol/device-link';
import type { PlistConnection } from '../../src/transport/plist-connection';
import { DeviceLinkConnection } from '../../src/services/device-link/connection';
import { DeviceLinkHost } from '../../src/backup/device-link-host';
import { Interrupt } from '../../src/backup/interrupt';
import { fileIdFor, payloadRelPath } from '../../src/format/file-id';
import { linkTree } from '../../src/store/fs-util';
import { PayloadChangeRecord } from '../../src/store/payload-changes';
import { verifyBackupFolder, type VerifyReport } from '../../src/store/verify';
import { withPlistPeer } from '../services/plist-peer';
import { sampleEntries, tempDirs, UDID, writeBackup, type FakeEntry } from '../store/fixture';

const { tmp, cleanup } = tempDirs('mooring-change-tracking-');
after(cleanup);

const ENTRIES = sampleEntries(8);
const FILES = ENTRIES.filter((e) => (e.type ?? 'file') === 'file');
const rel = (e: FakeEntry): string => payloadRelPath(fileIdFor(e.domain, e.relativePath));
const devicePath = (e: FakeEntry): string => `${UDID}/${rel(e)}`;

interface Staged {
  prev: string;
  staged: string;
  record: PayloadChangeRecord;
  baseCheckedAt: number;
  full: VerifyReport;
}

/** A verified base `prev` and its hard-link copy, as the store stages an incremental. */
async function staged(): Promise<Staged> {
  const root = tmp();
  const prev = path.join(root, 'prev', UDID);
  await writeBackup(prev, ENTRIES);
  const full = await verifyBackupFolder(prev, UDID);
  assert.ok(full.ok, JSON.stringify(full.problems));
  const s = path.join(root, 'staging', UDID);
  await fsp.mkdir(path.dirname(s));
  await linkTree(prev, s);
  return {
    prev,
    staged: s,
    record: new PayloadChangeRecord(UDID),
    baseCheckedAt: Date.parse(full.checkedAt!),
    full,
  };
}

/** The DeviceLink loop on the staged folder, its recorder attached; `device` sends requests. */
async function run(s: Staged, device: (peer: PlistConnection) => Promise<void>): Promise<void> {
  const target = {
    udid: UDID,
    root: path.dirname(s.staged),
    trackChanges: () => (p: string) => s.record.note(p),
  };
  let end: unknown;
  await withPlistPeer(
    async (peer) => {
      await device(peer);
      await peer.send(dlProcessMessage({ MessageName: 'Response', ErrorCode: 0 }), 'binary');
    },
    async (conn) => {
      const dl = new DeviceLinkConnection(conn, { timeoutMs: 5000 });
      const host = new DeviceLinkHost({
        dl,
        target,
        interrupt: new Interrupt(),
        blockReadMs: 5000,
        nextMessage: () => dl.receive(5000),
      });
      end = await host.run().catch((e: Error) => e);
    },
  );
  assert.ok(!(end instanceof Error), String(end));
}

async function call(peer: PlistConnection, msg: DlArray): Promise<number> {
  await peer.send(msg, 'binary');
  const r = parseHostDlMessage(await peer.receive());
  assert.equal(r.type, 'StatusResponse');
  return r.type === 'StatusResponse' ? r.code : NaN;
}

/** The staged verify of an incremental: rows identical to the base's left out unless changed. */
async function verifyStaged(s: Staged): Promise<VerifyReport> {
  return verifyBackupFolder(s.staged, UDID, {
    hashOnlyUnshared: true,
    base: s.prev,
    changesSinceBase: s.record,
    baseCheckedAt: s.baseCheckedAt,
  });
}

const problems = (r: VerifyReport): string[][] =>
  r.problems.map((p) => [p.kind, p.relativePath ?? '']).sort();

test("nothing changed: no row is read in full, the sums are the full verify's", async () => {
  const s = await staged();
  await run(s, async (peer) => {
    // Reads and mkdir of existing folders (the device does both every backup) change nothing.
    assert.equal(await call(peer, dlContentsOfDirectory(UDID)), 0);
    assert.equal(await call(peer, dlCreateDirectory(UDID)), 0);
    assert.equal(await call(peer, dlCreateDirectory(`${UDID}/${rel(FILES[0]!).slice(0, 2)}`)), 0);
  });
  assert.deepEqual(
    [s.record.overflowed, s.record.fileIds.size, s.record.buckets.size],
    [false, 0, 0],
  );
  const r = await verifyStaged(s);
  assert.ok(r.ok, JSON.stringify(r.problems));
  assert.equal(r.unchangedFiles, FILES.length);
  assert.deepEqual([r.files, r.bytes], [s.full.files, s.full.bytes]);
  assert.equal(r.hashed, 0);
});

test('UploadFiles onto an unchanged payload: reported, and its new bytes fail the digest', async () => {
  const s = await staged();
  const e = FILES[1]!;
  const size = Buffer.from(e.content ?? '').length;
  await run(s, async (peer) => {
    // The bucket checked first (as the device creates them): the upload takes the confiner's
    // fast path for a known folder, which must report too.
    assert.equal(await call(peer, dlCreateDirectory(`${UDID}/${rel(e).slice(0, 2)}`)), 0);
    await peer.send(dlUploadFiles(0, size), 'binary');
    await peer.writeRaw(
      Buffer.concat([
        encodeDlPath('/var/tmp/u'),
        encodeDlPath(devicePath(e)),
        encodeDlDataBlock(Buffer.alloc(size, 'z')),
        encodeDlSuccessBlock(),
        encodeDlStreamEnd(),
      ]),
    );
    const r = parseHostDlMessage(await peer.receive());
    assert.ok(r.type === 'StatusResponse' && r.code === 0);
  });
  assert.ok(s.record.fileIds.has(fileIdFor(e.domain, e.relativePath)));
  const r = await verifyStaged(s);
  assert.deepEqual(problems(r), [['digest', e.relativePath]]);
  assert.equal(r.unchangedFiles, FILES.length - 1);
});

test('MoveItems of one payload onto another: both reported, both found', async () => {
  const s = await staged();
  const [a, b] = [FILES[2]!, FILES[3]!];
  await run(s, async (peer) => {
    assert.equal(await call(peer, dlMoveItems({ [devicePath(a)]: devicePath(b) })), 0);
  });
  // The one request that leaves old inodes with old mtimes under changed names: only the record
  // tells the verify (the moved file is still a link of the base's).
  assert.deepEqual(
    [...s.record.fileIds].sort(),
    [a, b].map((e) => fileIdFor(e.domain, e.relativePath)).sort(),
  );
  const r = await verifyStaged(s);
  const kinds = problems(r);
  assert.ok(
    kinds.some(([k, p]) => k === 'missing' && p === a.relativePath),
    JSON.stringify(kinds),
  );
  assert.ok(
    kinds.some(([k, p]) => (k === 'digest' || k === 'size') && p === b.relativePath),
    JSON.stringify(kinds),
  );
  assert.equal(kinds.length, 2);
});

test('RemoveItems of a payload: reported, found missing', async () => {
  const s = await staged();
  const e = FILES[4]!;
  await run(s, async (peer) => {
    assert.equal(await call(peer, dlRemoveItems([devicePath(e)])), 0);
  });
  assert.deepEqual([...s.record.fileIds], [fileIdFor(e.domain, e.relativePath)]);
  assert.deepEqual(problems(await verifyStaged(s)), [['missing', e.relativePath]]);
});

test('RemoveItems of a bucket folder: the whole bucket is reported, each payload found missing', async () => {
  const s = await staged();
  const e = FILES[5]!;
  const bucket = rel(e).slice(0, 2);
  const inBucket = FILES.filter((f) => rel(f).startsWith(`${bucket}/`));
  await run(s, async (peer) => {
    assert.equal(await call(peer, dlRemoveItems([`${UDID}/${bucket}`])), 0);
  });
  assert.ok(s.record.buckets.has(bucket));
  assert.deepEqual(
    problems(await verifyStaged(s)),
    inBucket.map((f) => ['missing', f.relativePath]).sort(),
  );
});

test('RemoveItems (or any request) on the device folder itself: the record gives up, everything is checked', async () => {
  const s = await staged();
  await run(s, async (peer) => {
    assert.equal(await call(peer, dlRemoveItems([`${UDID}/${rel(FILES[0]!)}`, UDID])), 0);
  });
  assert.equal(s.record.overflowed, true);
  assert.equal((await verifyStaged(s)).ok, false);
});

test('CopyItem onto an unchanged payload: the destination is reported (not the source), and found', async () => {
  const s = await staged();
  const [from, onto] = [FILES[6]!, FILES[0]!];
  await run(s, async (peer) => {
    assert.equal(await call(peer, dlCopyItem(devicePath(from), devicePath(onto))), 0);
  });
  assert.deepEqual([...s.record.fileIds], [fileIdFor(onto.domain, onto.relativePath)]);
  const kinds = problems(await verifyStaged(s));
  assert.equal(kinds.length, 1);
  assert.equal(kinds[0]![1], onto.relativePath);
  assert.ok(['digest', 'size'].includes(kinds[0]![0]!));
});

test('CreateDirectory where a payload was: reported, found not to be a file', async () => {
  const s = await staged();
  const e = FILES[1]!;
  // Gone behind the engine's back (not reported): a folder the device then makes in its place is.
  await fsp.rm(path.join(s.staged, rel(e)));
  await run(s, async (peer) => {
    assert.equal(await call(peer, dlCreateDirectory(devicePath(e))), 0);
  });
  assert.deepEqual([...s.record.fileIds], [fileIdFor(e.domain, e.relativePath)]);
  assert.deepEqual(problems(await verifyStaged(s)), [['not-a-file', e.relativePath]]);
});
