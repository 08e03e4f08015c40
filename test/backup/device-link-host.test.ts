/**
 * The DeviceLink loop against a scripted device on a real loopback connection: every message the
 * device may send gets LIMD's exact reply; files arrive by temp file + rename (THE RULE) and are
 * written while they stream; downloads go out in 32 KiB blocks with multi-status for failures;
 * refused paths are recorded; a stop mid-stream leaves nothing behind.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { promises as fsp, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isMooringError } from '../../src/util/errors';
import {
  DL_EMPTY_PARAMETER,
  DlFileCode,
  DlFileStreamDecoder,
  dlContentsOfDirectory,
  dlCopyItem,
  dlCreateDirectory,
  dlDownloadFiles,
  dlGetFreeDiskSpace,
  dlMoveItems,
  dlProcessMessage,
  dlPurgeDiskSpace,
  dlRemoveItems,
  dlUploadFiles,
  encodeDlDataBlock,
  encodeDlErrorBlock,
  encodeDlPath,
  encodeDlStreamEnd,
  encodeDlSuccessBlock,
  parseHostDlMessage,
  type DlArray,
  type HostDlMessage,
} from '../../src/protocol/device-link';
import { isPlistDict } from '../../src/protocol/plist/types';
import type { PlistConnection } from '../../src/transport/plist-connection';
import { DeviceLinkConnection } from '../../src/services/device-link/connection';
import {
  DeviceLinkHost,
  MAX_ROOM_REQUESTS,
  type DeviceLinkEnd,
  type MakeRoom,
} from '../../src/backup/device-link-host';
import { BackupStopped, Interrupt } from '../../src/backup/interrupt';
import { LinkingGate } from '../../src/backup/linking-gate';
import type { BackupTarget } from '../../src/backup/target';
import { ReceivedDigests } from '../../src/backup/received-digests';
import { BATCH_BYTES } from '../../src/backup/sha1-off-thread';
import { withPlistPeer } from '../services/plist-peer';

const UDID = '00008030-001A2B3C4D5E6F70';
let outer: string;

before(async () => {
  outer = await fsp.mkdtemp(path.join(os.tmpdir(), 'mooring-dlhost-'));
});

after(async () => {
  await fsp.rm(outer, { recursive: true, force: true });
});

async function newTarget(): Promise<BackupTarget & { dir: string }> {
  const root = await fsp.mkdtemp(path.join(outer, 'root-'));
  await fsp.mkdir(path.join(root, UDID));
  return { udid: UDID, root, dir: path.join(root, UDID) };
}

/** The device sends one message and reads the host's status reply. */
async function call(
  peer: PlistConnection,
  msg: DlArray,
): Promise<HostDlMessage & { type: 'StatusResponse' }> {
  await peer.send(msg, 'binary');
  const r = parseHostDlMessage(await peer.receive());
  assert.equal(r.type, 'StatusResponse');
  return r as HostDlMessage & { type: 'StatusResponse' };
}

/** Runs the host loop against `device`; returns how the loop ended and the host. */
async function session(
  target: BackupTarget,
  device: (peer: PlistConnection) => Promise<void>,
  interrupt = new Interrupt(),
  /** Given: received files are written by its thread (D30), and it is closed at the end, as runBackup does. */
  received?: ReceivedDigests,
  /** Given: the store is still linking the previous backup into the target (D32). */
  linking?: LinkingGate,
  /** Given: the device's purge requests are answered by it (D48). */
  makeRoom?: MakeRoom,
): Promise<{ end: DeviceLinkEnd | Error; host: DeviceLinkHost }> {
  let host: DeviceLinkHost | undefined;
  let end: DeviceLinkEnd | Error | undefined;
  await withPlistPeer(device, async (conn) => {
    const dl = new DeviceLinkConnection(conn, { timeoutMs: 5000 });
    host = new DeviceLinkHost({
      dl,
      target,
      interrupt,
      blockReadMs: 5000,
      nextMessage: () => dl.receive(5000),
      ...(received ? { received } : {}),
      ...(linking ? { linking } : {}),
      ...(makeRoom ? { makeRoom } : {}),
    });
    end = await host.run().catch((e: Error) => e);
  });
  await received?.close();
  return { end: end!, host: host! };
}

/** The upload tests run both ways: files written on the stream's thread, and by the hashing thread. */
const WRITERS = [
  { name: 'written on the stream thread', received: (): undefined => undefined, lag: 0 },
  {
    name: 'written off-thread (D30)',
    received: (): ReceivedDigests => new ReceivedDigests(),
    // Bytes go to that thread a batch at a time: the file on disk may trail the stream by one.
    lag: BATCH_BYTES,
  },
];

const finish = (peer: PlistConnection): Promise<void> =>
  peer.send(dlProcessMessage({ MessageName: 'Response', ErrorCode: 0 }), 'binary');

test('D48: a purge request is passed on as what the device lacks; the reply says whether room was made', async () => {
  const t = await newTarget();
  const asked: number[] = [];
  const answers = [true, false, new Error('the store is locked')];
  const makeRoom: MakeRoom = async (short) => {
    asked.push(short);
    const a = answers.shift();
    if (a instanceof Error) throw a;
    return a!;
  };
  const { end, host } = await session(
    t,
    async (peer) => {
      // It asks for its deficit plus 2 GiB (reference §4.6 step 3): the hook hears the deficit.
      let r = await call(peer, dlPurgeDiskSpace(2 * 1024 ** 3 + 5_000_000, 4));
      assert.equal(r.code, 0, 'removed something: the free space, as NETI answers');
      assert.ok(typeof r.payload === 'number' && Number.isInteger(r.payload) && r.payload > 0);
      r = await call(peer, dlPurgeDiskSpace(1_000, 4));
      assert.deepEqual([r.code, r.text, r.payload], [-1, 'DLPurgeDiskSpace failed to purge', {}]);
      r = await call(peer, dlPurgeDiskSpace(3 * 1024 ** 3, 4));
      assert.deepEqual([r.code, r.text], [-1, 'DLPurgeDiskSpace failed to purge'], 'a failure too');
      // Past MAX_ROOM_REQUESTS the store is not asked again (a device asking over and over).
      for (let i = 0; i < 5; i++) {
        r = await call(peer, dlPurgeDiskSpace(3 * 1024 ** 3, 4));
        assert.equal(r.code, -1);
      }
      await finish(peer);
    },
    undefined,
    undefined,
    undefined,
    makeRoom,
  );
  assert.ok(!(end instanceof Error) && end.kind === 'response', String(end));
  assert.deepEqual(asked, [5_000_000, 0, 1024 ** 3], `at most ${MAX_ROOM_REQUESTS} asked`);
  assert.equal(host.purgeRequestedBytes, 3 * 1024 ** 3, 'the last ask, for a 105 message');
});

test('folder requests get the exact replies, and files are never written into', async () => {
  const t = await newTarget();
  const d = (p: string): string => path.join(t.dir, p);
  const { end, host } = await session(t, async (peer) => {
    // CreateDirectory: mkdir -p; existing is fine; an existing file is EEXIST (−7).
    let r = await call(peer, dlCreateDirectory(`${UDID}/Snapshot/ab`));
    assert.deepEqual([r.code, r.payload], [0, DL_EMPTY_PARAMETER]);
    assert.equal((await call(peer, dlCreateDirectory(`${UDID}/Snapshot/ab`))).code, 0);
    await fsp.writeFile(d('afile'), 'x');
    r = await call(peer, dlCreateDirectory(`${UDID}/afile`));
    assert.deepEqual([r.code, r.text], [-7, 'File exists']);

    // ContentsOfDirectory: missing → {}; types, sizes and dates; links are Unknown; temp files hidden.
    r = await call(peer, dlContentsOfDirectory(`${UDID}/missing`));
    assert.deepEqual([r.code, r.payload], [0, {}]);
    await fsp.writeFile(d('.mooring-tmp-0123'), 'in progress');
    await fsp.symlink('afile', d('alink'));
    r = await call(peer, dlContentsOfDirectory(UDID));
    assert.equal(r.code, 0);
    assert.ok(isPlistDict(r.payload));
    assert.deepEqual(Object.keys(r.payload).sort(), ['afile', 'alink', 'Snapshot'].sort());
    assert.deepEqual(
      Object.fromEntries(
        Object.entries(r.payload).map(([k, v]) => [k, isPlistDict(v) ? v.DLFileType : v]),
      ),
      { afile: 'DLFileTypeRegular', alink: 'DLFileTypeUnknown', Snapshot: 'DLFileTypeDirectory' },
    );
    const afile = r.payload.afile;
    assert.ok(isPlistDict(afile));
    assert.equal(afile.DLFileSize, 1);
    assert.ok(afile.DLFileModificationDate instanceof Date);

    // GetFreeDiskSpace: an integer; PurgeDiskSpace: "not supported", and the loop goes on.
    r = await call(peer, dlGetFreeDiskSpace());
    assert.equal(r.code, 0);
    assert.ok(typeof r.payload === 'number' && Number.isInteger(r.payload) && r.payload > 0);
    r = await call(peer, dlPurgeDiskSpace(5_000_000_000, 4));
    assert.deepEqual([r.code, r.text, r.payload], [-1, 'Operation not supported', {}]);

    // MoveItems: a file over a file that an older snapshot shares (hard link): the old inode
    // keeps its bytes; a folder over a folder; a missing source is −6 and touches nothing.
    await fsp.writeFile(d('Snapshot/ab/ab01'), 'new payload');
    await fsp.mkdir(d('ab'));
    await fsp.writeFile(d('ab/ab01'), 'old payload');
    await fsp.link(d('ab/ab01'), path.join(outer, `older-${path.basename(t.root)}`));
    await fsp.mkdir(d('Snapshot/dirA/sub'), { recursive: true });
    await fsp.writeFile(d('Snapshot/dirA/sub/f'), 'A');
    await fsp.mkdir(d('dirA/old'), { recursive: true });
    await fsp.writeFile(d('dirA/old/g'), 'stale');
    await fsp.writeFile(d('keep'), 'keep me');
    r = await call(
      peer,
      dlMoveItems(
        {
          [`${UDID}/Snapshot/ab/ab01`]: `${UDID}/ab/ab01`,
          [`${UDID}/Snapshot/dirA`]: `${UDID}/dirA`,
          [`${UDID}/Snapshot/nothing`]: `${UDID}/keep`,
        },
        92.5,
      ),
    );
    assert.deepEqual([r.code, r.text], [-6, 'No such file or directory']);
    assert.equal(await fsp.readFile(d('ab/ab01'), 'utf8'), 'new payload');
    assert.equal(
      await fsp.readFile(path.join(outer, `older-${path.basename(t.root)}`), 'utf8'),
      'old payload',
    );
    assert.equal(await fsp.readFile(d('dirA/sub/f'), 'utf8'), 'A');
    await assert.rejects(fsp.stat(d('dirA/old')));
    assert.equal(await fsp.readFile(d('keep'), 'utf8'), 'keep me');

    // CopyItem: new inodes, so a copy never aliases a shared file.
    r = await call(peer, dlCopyItem(`${UDID}/ab/ab01`, `${UDID}/copy01`));
    assert.equal(r.code, 0);
    assert.notEqual((await fsp.stat(d('copy01'))).ino, (await fsp.stat(d('ab/ab01'))).ino);
    assert.equal(await fsp.readFile(d('copy01'), 'utf8'), 'new payload');
    r = await call(peer, dlCopyItem(`${UDID}/dirA`, `${UDID}/dirB`));
    assert.equal(r.code, 0);
    assert.equal(await fsp.readFile(d('dirB/sub/f'), 'utf8'), 'A');
    assert.notEqual((await fsp.stat(d('dirB/sub/f'))).ino, (await fsp.stat(d('dirA/sub/f'))).ino);
    // A symlink is refused as a path (−1); one inside a copied tree is not followed (ELOOP, −10).
    r = await call(peer, dlCopyItem(`${UDID}/alink`, `${UDID}/copyOfLink`));
    assert.deepEqual([r.code, r.text], [-1, 'Operation not permitted']);
    await fsp.mkdir(d('treeWithLink'));
    await fsp.symlink('/etc', d('treeWithLink/etc'));
    r = await call(peer, dlCopyItem(`${UDID}/treeWithLink`, `${UDID}/treeCopy`));
    assert.equal(r.code, -10);

    // RemoveItems: files, trees, missing (fine); a path outside is refused (−1) and recorded.
    r = await call(
      peer,
      dlRemoveItems([`${UDID}/copy01`, `${UDID}/dirB`, `${UDID}/never-was`], 97),
    );
    assert.deepEqual([r.code, r.payload], [0, {}]);
    await assert.rejects(fsp.stat(d('dirB')));
    r = await call(peer, dlRemoveItems([`${UDID}/../${path.basename(outer)}`], 98));
    assert.deepEqual([r.code, r.text], [-1, 'Operation not permitted']);

    // A message we do not know: "not supported", never silence.
    r = await call(peer, ['DLMessageSomethingNew', 1]);
    assert.deepEqual([r.code, r.text], [-1, 'Operation not supported']);
    await finish(peer);
  });
  assert.ok(!(end instanceof Error), String(end));
  assert.deepEqual(end, {
    kind: 'response',
    errorCode: 0,
    errorDescription: undefined,
    message: { MessageName: 'Response', ErrorCode: 0 },
  });
  assert.deepEqual(host.refusedPaths, [`${UDID}/alink`, `${UDID}/../${path.basename(outer)}`]);
  assert.equal(host.purgeRequestedBytes, 5_000_000_000);
  assert.ok(host.freeBytesReported !== undefined && host.freeBytesReported > 0);
  assert.equal(host.meter.percent, 98);
  assert.deepEqual(host.unknownMessages, ['DLMessageSomethingNew']);
  // Nothing escaped: the outer folder holds only the roots and the test's own hard link.
  assert.equal(
    (await fsp.readdir(outer)).some((n) => n.includes('never')),
    false,
  );
});

for (const writer of WRITERS)
  test(`UploadFiles, ${writer.name}: new names in place, existing ones by temp file + rename, 0x0B after data, device errors, refusals, errno status`, async () => {
    const t = await newTarget();
    await fsp.mkdir(path.join(t.dir, 'Snapshot', 'cd'), { recursive: true });
    // Status.plist exists and is hard-linked from an older snapshot.
    await fsp.writeFile(path.join(t.dir, 'Status.plist'), 'old status');
    const older = path.join(outer, `older-status-${path.basename(t.root)}`);
    await fsp.link(path.join(t.dir, 'Status.plist'), older);
    const big = randomBytes(6 * 1024 * 1024 + 123);
    const half = 3 * 1024 * 1024;
    let sawPartial = 0;

    const { end, host } = await session(
      t,
      async (peer) => {
        await peer.send(dlUploadFiles(12.5, big.length + 30), 'binary');
        const file = (devicePath: string, hostPath: string): Buffer =>
          Buffer.concat([encodeDlPath(devicePath), encodeDlPath(hostPath)]);
        // 1. Status.plist replaced by rename: the older snapshot's inode keeps "old status".
        await peer.writeRaw(file('/var/tmp/a', `${UDID}/Status.plist`));
        await peer.writeRaw(encodeDlDataBlock(Buffer.from('new ')));
        await peer.writeRaw(encodeDlDataBlock(Buffer.from('status')));
        await peer.writeRaw(encodeDlSuccessBlock());
        // 2. Missing parent folder: ENOENT → the status reports −6; the stream stays in step.
        await peer.writeRaw(file('/var/tmp/b', `${UDID}/Snapshot/zz/zz01`));
        await peer.writeRaw(encodeDlDataBlock(Buffer.from('lost')));
        await peer.writeRaw(encodeDlSuccessBlock());
        // 3. Data then 0x0B: an end marker, the file is kept.
        await peer.writeRaw(file('/var/tmp/c', `${UDID}/Snapshot/cd/cd01`));
        await peer.writeRaw(encodeDlDataBlock(Buffer.from('kept')));
        await peer.writeRaw(encodeDlErrorBlock(DlFileCode.REMOTE_ERROR, 'end marker'));
        // 4. The device could not read its file: nothing is created, and it is not our error.
        await peer.writeRaw(file('/var/tmp/d', `${UDID}/Snapshot/cd/cd02`));
        await peer.writeRaw(encodeDlErrorBlock(DlFileCode.LOCAL_ERROR, 'Permission denied'));
        // 5. Outside the folder: refused, drained, recorded.
        await peer.writeRaw(file('/var/tmp/e', `${UDID}/../../escaped`));
        await peer.writeRaw(encodeDlDataBlock(Buffer.from('evil')));
        await peer.writeRaw(encodeDlSuccessBlock());
        // 6. A big new file: written to disk while it streams (we see it partial mid-way, under its
        // own name: nothing was there, so it is created in place).
        await peer.writeRaw(file('/var/tmp/f', `${UDID}/Snapshot/cd/cdbig`));
        for (let off = 0; off < big.length; off += 128 * 1024) {
          await peer.writeRaw(
            encodeDlDataBlock(big.subarray(off, Math.min(big.length, off + 128 * 1024))),
          );
          if (off + 128 * 1024 === half) {
            for (let i = 0; i < 200 && sawPartial < half - writer.lag; i++) {
              const names = await fsp.readdir(path.join(t.dir, 'Snapshot', 'cd'));
              for (const n of names.filter((x) => x === 'cdbig')) {
                sawPartial = Math.max(
                  sawPartial,
                  (await fsp.stat(path.join(t.dir, 'Snapshot', 'cd', n)).catch(() => ({ size: 0 })))
                    .size,
                );
              }
              if (sawPartial < half - writer.lag) await new Promise((r) => setTimeout(r, 25));
            }
          }
        }
        await peer.writeRaw(encodeDlSuccessBlock());
        await peer.writeRaw(encodeDlStreamEnd());
        const r = parseHostDlMessage(await peer.receive());
        assert.equal(r.type, 'StatusResponse');
        if (r.type === 'StatusResponse') {
          assert.deepEqual([r.code, r.text, r.payload], [-6, 'No such file or directory', {}]);
        }
        await finish(peer);
      },
      new Interrupt(),
      writer.received(),
    );
    assert.ok(!(end instanceof Error), String(end));
    assert.equal(await fsp.readFile(path.join(t.dir, 'Status.plist'), 'utf8'), 'new status');
    assert.equal(await fsp.readFile(older, 'utf8'), 'old status');
    assert.equal(await fsp.readFile(path.join(t.dir, 'Snapshot/cd/cd01'), 'utf8'), 'kept');
    await assert.rejects(fsp.stat(path.join(t.dir, 'Snapshot/cd/cd02')));
    assert.deepEqual(await fsp.readFile(path.join(t.dir, 'Snapshot/cd/cdbig')), big);
    assert.ok(
      sawPartial >= half - writer.lag,
      `the big file was on disk mid-stream (${sawPartial} bytes)`,
    );
    assert.deepEqual(host.refusedPaths, [`${UDID}/../../escaped`]);
    assert.equal(host.meter.filesReceived, 3);
    assert.equal(host.meter.bytesReceived, 10 + 4 + 4 + 4 + big.length);
    assert.equal(host.meter.percent, 12.5);
    assert.deepEqual(
      (await fsp.readdir(path.join(t.dir, 'Snapshot/cd'))).sort(),
      ['cd01', 'cdbig'],
      'no temp files left',
    );
    await assert.rejects(fsp.stat(path.join(t.root, '..', 'escaped')));
  });

/** The device uploads `files` (host path, bytes) in one DLMessageUploadFiles and reads the reply. */
async function upload(
  peer: PlistConnection,
  files: Array<[hostPath: string, data: Buffer]>,
): Promise<HostDlMessage & { type: 'StatusResponse' }> {
  await peer.send(
    dlUploadFiles(
      50,
      files.reduce((n, [, d]) => n + d.length, 0),
    ),
    'binary',
  );
  for (const [hostPath, data] of files) {
    await peer.writeRaw(Buffer.concat([encodeDlPath('/var/tmp/x'), encodeDlPath(hostPath)]));
    for (let off = 0; off < data.length; off += 128 * 1024)
      await peer.writeRaw(encodeDlDataBlock(data.subarray(off, off + 128 * 1024)));
    await peer.writeRaw(encodeDlSuccessBlock());
  }
  await peer.writeRaw(encodeDlStreamEnd());
  const r = parseHostDlMessage(await peer.receive());
  assert.equal(r.type, 'StatusResponse');
  return r as HostDlMessage & { type: 'StatusResponse' };
}

// The hashing thread cannot commit this file: a folder is in the way of its name (rename → EISDIR).
// Our stream's thread does not refuse the name (what a new file is put at is not checked for
// what is there: confine.ts, resolveForReplace), so only that thread finds out, after the bytes.
async function folderInTheWay(t: { dir: string }, name: string): Promise<string> {
  await fsp.mkdir(path.join(t.dir, 'Snapshot', 'ab', name), { recursive: true });
  return `${UDID}/Snapshot/ab/${name}`;
}

test('D37: an upload that only stages files in Snapshot/ is answered before they are written; a failure is told in the next status, instead of what it asks', async () => {
  const t = await newTarget();
  const blocked = await folderInTheWay(t, 'ab02');
  await fsp.mkdir(path.join(t.dir, 'ab'));
  const { end, host } = await session(
    t,
    async (peer) => {
      let r = await upload(peer, [
        [`${UDID}/Snapshot/ab/ab01`, Buffer.from('first')],
        [blocked, Buffer.from('cannot land')],
      ]);
      // Answered as soon as the stream ended: the thread had not even been sent the files.
      assert.equal(r.code, 0);
      // The next request waits for the thread, and its reply is the failure; the move is not made.
      r = await call(peer, dlMoveItems({ [`${UDID}/Snapshot/ab/ab01`]: `${UDID}/ab/ab01` }, 91));
      assert.deepEqual([r.code === 0, r.text], [false, 'Is a directory']);
      assert.equal(await fsp.readFile(path.join(t.dir, 'Snapshot/ab/ab01'), 'utf8'), 'first');
      await assert.rejects(fsp.stat(path.join(t.dir, 'ab/ab01')));
      // Told once: the same move asked again is made (held until the next message, D38).
      r = await call(peer, dlMoveItems({ [`${UDID}/Snapshot/ab/ab01`]: `${UDID}/ab/ab01` }, 92));
      assert.equal(r.code, 0);
      r = await call(peer, dlContentsOfDirectory(`${UDID}/ab`));
      assert.deepEqual(Object.keys(r.payload as object), ['ab01']);
      assert.equal(await fsp.readFile(path.join(t.dir, 'ab/ab01'), 'utf8'), 'first');
      await finish(peer);
    },
    new Interrupt(),
    new ReceivedDigests(),
  );
  assert.ok(!(end instanceof Error), String(end));
  assert.equal(host.fileErrors, 1);
  assert.deepEqual(
    (await fsp.readdir(path.join(t.dir, 'Snapshot/ab'))).sort(),
    ['ab02'],
    'no temp file left beside the folder in the way',
  );
});

test('D37: an upload with a file outside Snapshot/ is answered once every file is written, with the failures of uploads answered before it', async () => {
  const t = await newTarget();
  const blocked = await folderInTheWay(t, 'ab02');
  const blocked2 = await folderInTheWay(t, 'ab03');
  const { end, host } = await session(
    t,
    async (peer) => {
      // Staged files and Status.plist together: nothing is answered early.
      let r = await upload(peer, [
        [blocked, Buffer.from('x')],
        [`${UDID}/Status.plist`, Buffer.from('uploading')],
      ]);
      assert.deepEqual([r.code === 0, r.text], [false, 'Is a directory']);
      // A staged upload answered early, then Status.plist: its reply tells the staged failure.
      r = await upload(peer, [[blocked2, Buffer.from('y')]]);
      assert.equal(r.code, 0);
      r = await upload(peer, [[`${UDID}/Status.plist`, Buffer.from('finished')]]);
      assert.deepEqual([r.code === 0, r.text], [false, 'Is a directory']);
      await finish(peer);
    },
    new Interrupt(),
    new ReceivedDigests(),
  );
  assert.ok(!(end instanceof Error), String(end));
  assert.equal(host.fileErrors, 2);
  assert.equal(await fsp.readFile(path.join(t.dir, 'Status.plist'), 'utf8'), 'finished');
});

test('D37: what follows an upload answered early sees its files whole (a listing, the end of the loop)', async () => {
  const t = await newTarget();
  await fsp.mkdir(path.join(t.dir, 'Snapshot', 'ab'), { recursive: true });
  const big = randomBytes(8 * 1024 * 1024 + 5);
  const received = new ReceivedDigests();
  const { end } = await session(
    t,
    async (peer) => {
      let r = await upload(peer, [[`${UDID}/Snapshot/ab/big`, big]]);
      assert.equal(r.code, 0);
      r = await call(peer, dlContentsOfDirectory(`${UDID}/Snapshot/ab`));
      assert.ok(isPlistDict(r.payload));
      const entry = r.payload.big;
      assert.ok(isPlistDict(entry));
      assert.equal(entry.DLFileSize, big.length);
      r = await upload(peer, [[`${UDID}/Snapshot/ab/small`, Buffer.from('last')]]);
      assert.equal(r.code, 0);
      await finish(peer);
    },
    new Interrupt(),
    received,
  );
  assert.ok(!(end instanceof Error), String(end));
  // The loop's end waited for the last file too: it is on disk before the session closes it.
  assert.equal(await fsp.readFile(path.join(t.dir, 'Snapshot/ab/small'), 'utf8'), 'last');
  assert.deepEqual(await fsp.readFile(path.join(t.dir, 'Snapshot/ab/big')), big);
});

test("D38: a full backup's moves from Snapshot/ are held, then each folder is moved whole before the next message", async () => {
  const t = await newTarget();
  const d = (p: string): string => path.join(t.dir, p);
  let snapshotAb = 0;
  const { end, host } = await session(
    t,
    async (peer) => {
      for (const b of ['ab', 'cd'])
        assert.equal((await call(peer, dlCreateDirectory(`${UDID}/Snapshot/${b}`))).code, 0);
      for (const f of ['ab/ab01', 'ab/ab02', 'cd/cd01'])
        assert.equal(await uploadOne(peer, `${UDID}/Snapshot/${f}`), 0);
      snapshotAb = (await fsp.stat(d('Snapshot/ab'))).ino;
      for (const b of ['ab', 'cd'])
        assert.equal((await call(peer, dlCreateDirectory(`${UDID}/${b}`))).code, 0);
      let r = await call(
        peer,
        dlMoveItems({
          [`${UDID}/Snapshot/ab/ab01`]: `${UDID}/ab/ab01`,
          [`${UDID}/Snapshot/cd/cd01`]: `${UDID}/cd/cd01`,
        }),
      );
      assert.equal(r.code, 0);
      r = await call(peer, dlMoveItems({ [`${UDID}/Snapshot/ab/ab02`]: `${UDID}/ab/ab02` }));
      assert.equal(r.code, 0);
      // Held so far: nothing moved yet.
      assert.deepEqual((await fsp.readdir(d('Snapshot/ab'))).sort(), ['ab01', 'ab02']);
      // The next message that is not a move sees them all in place.
      r = await call(peer, dlContentsOfDirectory(`${UDID}/ab`));
      assert.deepEqual(Object.keys(r.payload as object).sort(), ['ab01', 'ab02']);
      r = await call(peer, dlRemoveItems([`${UDID}/Snapshot`]));
      assert.equal(r.code, 0);
      // Held to the end of the loop: carried out before it returns.
      assert.equal((await call(peer, dlCreateDirectory(`${UDID}/Snapshot/ef`))).code, 0);
      assert.equal(await uploadOne(peer, `${UDID}/Snapshot/ef/ef01`), 0);
      assert.equal((await call(peer, dlCreateDirectory(`${UDID}/ef`))).code, 0);
      r = await call(peer, dlMoveItems({ [`${UDID}/Snapshot/ef/ef01`]: `${UDID}/ef/ef01` }));
      assert.equal(r.code, 0);
      await finish(peer);
    },
    new Interrupt(),
    new ReceivedDigests(),
  );
  assert.ok(!(end instanceof Error), String(end));
  assert.equal(host.fileErrors, 0);
  assert.equal((await fsp.stat(d('ab'))).ino, snapshotAb, 'Snapshot/ab was renamed to ab');
  assert.deepEqual((await fsp.readdir(d('ab'))).sort(), ['ab01', 'ab02']);
  assert.deepEqual(await fsp.readdir(d('cd')), ['cd01']);
  assert.deepEqual(await fsp.readdir(d('ef')), ['ef01']);
  assert.deepEqual(await fsp.readdir(d('Snapshot')), ['ef']);
  assert.deepEqual(await fsp.readdir(d('Snapshot/ef')), []);
});

test('D38: a held move that fails is told in the next status reply, which is not carried out', async () => {
  const t = await newTarget();
  const d = (p: string): string => path.join(t.dir, p);
  const { end, host } = await session(t, async (peer) => {
    assert.equal((await call(peer, dlCreateDirectory(`${UDID}/Snapshot/ab`))).code, 0);
    assert.equal(await uploadOne(peer, `${UDID}/Snapshot/ab/ab01`), 0);
    assert.equal((await call(peer, dlCreateDirectory(`${UDID}/ab`))).code, 0);
    let r = await call(
      peer,
      dlMoveItems({
        [`${UDID}/Snapshot/ab/ab01`]: `${UDID}/ab/ab01`,
        [`${UDID}/Snapshot/ab/missing`]: `${UDID}/ab/missing`,
      }),
    );
    assert.equal(r.code, 0, 'held: answered before it is tried');
    r = await call(peer, dlRemoveItems([`${UDID}/Snapshot`]));
    assert.deepEqual([r.code, r.text], [-6, 'No such file or directory']);
    assert.ok((await fsp.stat(d('Snapshot'))).isDirectory(), 'the remove was not carried out');
    // Told once.
    r = await call(peer, dlRemoveItems([`${UDID}/Snapshot`]));
    assert.equal(r.code, 0);
    await finish(peer);
  });
  assert.ok(!(end instanceof Error), String(end));
  assert.equal(host.fileErrors, 1);
  assert.equal(await fsp.readFile(d('ab/ab01'), 'utf8'), 'data');
});

test('DownloadFiles: 32 KiB blocks, missing and refused files in a multi-status, the rest still sent', async () => {
  const t = await newTarget();
  const status = randomBytes(100_000);
  const db = Buffer.from('a small database');
  await fsp.writeFile(path.join(t.dir, 'Status.plist'), status);
  await fsp.writeFile(path.join(t.dir, 'Manifest.db'), db);
  await fsp.mkdir(path.join(t.dir, 'adir'));
  const asked = [
    `${UDID}/Status.plist`,
    `${UDID}/Manifest.plist`,
    `${UDID}/../outside`,
    `${UDID}/adir`,
    `${UDID}/Manifest.db`,
  ];
  const { end, host } = await session(t, async (peer) => {
    await peer.send(dlDownloadFiles(asked, 3), 'binary');
    const dec = new DlFileStreamDecoder(peer.reader, { timeoutMs: 5000 });
    const got = new Map<string, Buffer | string>();
    for (;;) {
      const p = await dec.readPath();
      if (p === null) break;
      const parts: Buffer[] = [];
      for (;;) {
        const b = await dec.readBlock();
        if (b.kind === 'data') {
          assert.ok(b.data.length <= 32 * 1024, `block of ${b.data.length}`);
          parts.push(b.data);
        } else if (b.kind === 'success') {
          got.set(p, Buffer.concat(parts));
          break;
        } else {
          assert.equal(b.kind, 'local-error');
          got.set(p, `error: ${b.message}`);
          break;
        }
      }
    }
    assert.deepEqual([...got.keys()], asked);
    assert.deepEqual(got.get(asked[0]!), status);
    assert.equal(got.get(asked[1]!), 'error: No such file or directory');
    assert.equal(got.get(asked[2]!), 'error: Operation not permitted');
    assert.equal(got.get(asked[3]!), 'error: Is a directory');
    assert.deepEqual(got.get(asked[4]!), db);
    const r = parseHostDlMessage(await peer.receive());
    assert.equal(r.type, 'StatusResponse');
    if (r.type === 'StatusResponse') {
      assert.deepEqual([r.code, r.text], [-13, 'Multi status']);
      assert.deepEqual(r.payload, {
        [asked[1]!]: { DLFileErrorCode: -6, DLFileErrorString: 'No such file or directory' },
        [asked[2]!]: { DLFileErrorCode: -1, DLFileErrorString: 'Operation not permitted' },
        [asked[3]!]: { DLFileErrorCode: -9, DLFileErrorString: 'Is a directory' },
      });
    }
    await finish(peer);
  });
  assert.ok(!(end instanceof Error), String(end));
  assert.deepEqual(host.refusedPaths, [asked[2]]);
});

for (const writer of WRITERS)
  test(`a stop mid-upload ends the loop at once and discards the partial file, ${writer.name}`, async () => {
    const t = await newTarget();
    const interrupt = new Interrupt();
    const { end } = await session(
      t,
      async (peer) => {
        await peer.send(dlUploadFiles(0, 1_000_000), 'binary');
        await peer.writeRaw(
          Buffer.concat([encodeDlPath('/var/tmp/x'), encodeDlPath(`${UDID}/partial`)]),
        );
        await peer.writeRaw(encodeDlDataBlock(randomBytes(50_000)));
        await peer.writeRaw(encodeDlDataBlock(randomBytes(500_000))); // large: written behind
        // Wait until the host has the temp file, then stop it from outside while it waits for more.
        for (let i = 0; i < 200; i++) {
          if ((await fsp.readdir(t.dir)).some((n) => n.startsWith('.mooring-tmp-'))) break;
          await new Promise((r) => setTimeout(r, 10));
        }
        interrupt.stop('user');
        await peer.receive(2000).catch(() => undefined); // the host hangs up; nothing more comes
      },
      interrupt,
      writer.received(),
    );
    assert.ok(end instanceof BackupStopped, String(end));
    assert.equal(end.reason, 'user');
    assert.deepEqual(await fsp.readdir(t.dir), []);
  });

test('a hostile stream (oversized block) ends the loop with an error and no partial file', async () => {
  const t = await newTarget();
  const { end } = await session(t, async (peer) => {
    await peer.send(dlUploadFiles(0, 10), 'binary');
    const header = Buffer.alloc(5);
    header.writeUInt32BE(0x7fff_ffff, 0);
    header[4] = DlFileCode.FILE_DATA;
    await peer.writeRaw(
      Buffer.concat([encodeDlPath('/var/tmp/x'), encodeDlPath(`${UDID}/f`), header]),
    );
    await peer.receive(2000).catch(() => undefined);
  });
  assert.ok(isMooringError(end, 'FRAME_TOO_LARGE'), String(end));
  assert.deepEqual(await fsp.readdir(t.dir), []);
});

test('a device Disconnect ends the loop without a result', async () => {
  const t = await newTarget();
  const { end } = await session(t, async (peer) => {
    await peer.send(['DLMessageDisconnect', 'bye'], 'binary');
  });
  assert.deepEqual(end, { kind: 'disconnect', reason: 'bye' });
});

/** Uploads one small file to `hostPath`; the status code of the reply. */
async function uploadOne(peer: PlistConnection, hostPath: string): Promise<number> {
  await peer.send(dlUploadFiles(0, 4), 'binary');
  await peer.writeRaw(
    Buffer.concat([
      encodeDlPath('/var/tmp/u'),
      encodeDlPath(hostPath),
      encodeDlDataBlock(Buffer.from('data')),
      encodeDlSuccessBlock(),
      encodeDlStreamEnd(),
    ]),
  );
  const r = parseHostDlMessage(await peer.receive());
  assert.equal(r.type, 'StatusResponse');
  return r.type === 'StatusResponse' ? r.code : NaN;
}

/** Planted before a run: a real folder `C` whose child `B` is a symlink to a folder outside. */
async function plantLinkedFolder(dir: string): Promise<string> {
  const outside = await fsp.mkdtemp(path.join(outer, 'outside-'));
  await fsp.mkdir(path.join(dir, 'C'));
  await fsp.symlink(outside, path.join(dir, 'C', 'B'));
  return outside;
}

test('a folder the host already checked is checked again once a remove or move touched it', async () => {
  const t = await newTarget();
  const outside = await plantLinkedFolder(t.dir);
  const { end, host } = await session(t, async (peer) => {
    assert.equal((await call(peer, dlCreateDirectory(`${UDID}/A/B`))).code, 0);
    // Two uploads into A/B: the second finds A and A/B already checked.
    assert.equal(await uploadOne(peer, `${UDID}/A/B/one`), 0);
    assert.equal(await uploadOne(peer, `${UDID}/A/B/two`), 0);
    // Now A/B becomes the planted symlink: A removed, C moved into its place.
    assert.equal((await call(peer, dlRemoveItems([`${UDID}/A`]))).code, 0);
    assert.equal((await call(peer, dlMoveItems({ [`${UDID}/C`]: `${UDID}/A` }))).code, 0);
    assert.notEqual(await uploadOne(peer, `${UDID}/A/B/three`), 0);
    await finish(peer);
  });
  assert.ok(!(end instanceof Error), String(end));
  assert.deepEqual(host.refusedPaths, [`${UDID}/A/B/three`]);
  assert.deepEqual(await fsp.readdir(outside), [], 'nothing written through the symlink');
});

test('a checked folder replaced by one move (folder over folder) is checked again', async () => {
  const t = await newTarget();
  const outside = await plantLinkedFolder(t.dir);
  const { end, host } = await session(t, async (peer) => {
    assert.equal((await call(peer, dlCreateDirectory(`${UDID}/A/B`))).code, 0);
    assert.equal(await uploadOne(peer, `${UDID}/A/B/one`), 0);
    // A file moved over a file changes no folder; then C replaces A in one move.
    assert.equal((await call(peer, dlMoveItems({ [`${UDID}/A/B/one`]: `${UDID}/A/B/1` }))).code, 0);
    assert.equal(await uploadOne(peer, `${UDID}/A/B/two`), 0);
    assert.equal((await call(peer, dlMoveItems({ [`${UDID}/C`]: `${UDID}/A` }))).code, 0);
    assert.notEqual(await uploadOne(peer, `${UDID}/A/B/three`), 0);
    await finish(peer);
  });
  assert.ok(!(end instanceof Error), String(end));
  assert.deepEqual(host.refusedPaths, [`${UDID}/A/B/three`]);
  assert.deepEqual(await fsp.readdir(outside), [], 'nothing written through the symlink');
});

for (const writer of WRITERS)
  test(`large blocks, ${writer.name}: a device error after them leaves no file, the next file lands whole`, async () => {
    const t = await newTarget();
    await fsp.mkdir(path.join(t.dir, 'Snapshot'));
    const blocks = [randomBytes(200_000), randomBytes(300_000), randomBytes(150_000)];
    const { end, host } = await session(
      t,
      async (peer) => {
        await peer.send(dlUploadFiles(0, 1), 'binary');
        const file = (devicePath: string, hostPath: string): Buffer =>
          Buffer.concat([encodeDlPath(devicePath), encodeDlPath(hostPath)]);
        // 1. Large blocks, then the device fails the file (0x06 after data): discarded.
        await peer.writeRaw(file('/var/tmp/a', `${UDID}/Snapshot/failed`));
        for (const b of blocks) await peer.writeRaw(encodeDlDataBlock(b));
        await peer.writeRaw(encodeDlErrorBlock(DlFileCode.LOCAL_ERROR, 'I/O error'));
        // 2. The same blocks, then success: kept, in order.
        await peer.writeRaw(file('/var/tmp/b', `${UDID}/Snapshot/kept`));
        for (const b of blocks) await peer.writeRaw(encodeDlDataBlock(b));
        await peer.writeRaw(encodeDlSuccessBlock());
        await peer.writeRaw(encodeDlStreamEnd());
        const r = parseHostDlMessage(await peer.receive());
        assert.equal(r.type, 'StatusResponse');
        if (r.type === 'StatusResponse') assert.equal(r.code, 0);
        await finish(peer);
      },
      new Interrupt(),
      writer.received(),
    );
    assert.ok(!(end instanceof Error), String(end));
    assert.equal(host.meter.filesReceived, 1);
    assert.deepEqual(
      await fsp.readdir(path.join(t.dir, 'Snapshot')),
      ['kept'],
      'no temp files left',
    );
    assert.deepEqual(
      await fsp.readFile(path.join(t.dir, 'Snapshot', 'kept')),
      Buffer.concat(blocks),
    );
  });

test('a file moved onto a checked folder or onto a link: the folder is re-checked, the link replaced', async () => {
  const t = await newTarget();
  const outside = await plantLinkedFolder(t.dir);
  await fsp.writeFile(path.join(outside, 'secret'), 'keep');
  await fsp.symlink(path.join(outside, 'secret'), path.join(t.dir, 'link'));
  const { end, host } = await session(t, async (peer) => {
    assert.equal((await call(peer, dlCreateDirectory(`${UDID}/A/B`))).code, 0);
    assert.equal(await uploadOne(peer, `${UDID}/A/B/one`), 0);
    assert.equal(await uploadOne(peer, `${UDID}/x`), 0);
    assert.equal(await uploadOne(peer, `${UDID}/y`), 0);
    // A file onto the checked folder A: rename refuses, the general path replaces the folder.
    assert.equal((await call(peer, dlMoveItems({ [`${UDID}/x`]: `${UDID}/A` }))).code, 0);
    // A file onto a link: the link itself is replaced, its target untouched.
    assert.equal((await call(peer, dlMoveItems({ [`${UDID}/y`]: `${UDID}/link` }))).code, 0);
    // C (with its planted link B) takes A's place: A/B must be checked again, and refused.
    assert.equal((await call(peer, dlMoveItems({ [`${UDID}/C`]: `${UDID}/A` }))).code, 0);
    assert.notEqual(await uploadOne(peer, `${UDID}/A/B/three`), 0);
    await finish(peer);
  });
  assert.ok(!(end instanceof Error), String(end));
  assert.deepEqual(host.refusedPaths, [`${UDID}/A/B/three`]);
  assert.deepEqual(await fsp.readdir(outside), ['secret'], 'nothing written through a link');
  assert.equal(await fsp.readFile(path.join(outside, 'secret'), 'utf8'), 'keep');
  assert.ok((await fsp.lstat(path.join(t.dir, 'link'))).isFile());
  assert.ok((await fsp.lstat(path.join(t.dir, 'A'))).isDirectory());
});

test('moves by one rename: a checked folder moved away is forgotten; an unchecked one is checked where it lands', async () => {
  const t = await newTarget();
  const outside = await plantLinkedFolder(t.dir);
  const { end, host } = await session(t, async (peer) => {
    assert.equal((await call(peer, dlCreateDirectory(`${UDID}/A/B`))).code, 0);
    assert.equal(await uploadOne(peer, `${UDID}/A/B/one`), 0);
    // A and A/B are checked folders: moving A must not leave "A/B" remembered as checked...
    assert.equal((await call(peer, dlMoveItems({ [`${UDID}/A`]: `${UDID}/D` }))).code, 0);
    // ...because C (never checked, its B a planted link) now takes the name A in one rename.
    assert.equal((await call(peer, dlMoveItems({ [`${UDID}/C`]: `${UDID}/A` }))).code, 0);
    assert.notEqual(await uploadOne(peer, `${UDID}/A/B/three`), 0);
    // An unchecked folder replacing an empty checked one: what it holds is checked on use.
    assert.equal((await call(peer, dlCreateDirectory(`${UDID}/E`))).code, 0);
    assert.equal(await uploadOne(peer, `${UDID}/E/x`), 0);
    assert.equal((await call(peer, dlMoveItems({ [`${UDID}/E/x`]: `${UDID}/x` }))).code, 0);
    assert.equal((await call(peer, dlMoveItems({ [`${UDID}/A`]: `${UDID}/E` }))).code, 0);
    assert.notEqual(await uploadOne(peer, `${UDID}/E/B/four`), 0);
    await finish(peer);
  });
  assert.ok(!(end instanceof Error), String(end));
  assert.deepEqual(host.refusedPaths, [`${UDID}/A/B/three`, `${UDID}/E/B/four`]);
  assert.deepEqual(await fsp.readdir(outside), [], 'nothing written through the link');
  assert.equal(await fsp.readFile(path.join(t.dir, 'D', 'B', 'one'), 'utf8'), 'data');
  assert.ok((await fsp.lstat(path.join(t.dir, 'E', 'B'))).isSymbolicLink());
});

test('a link moved by the device is moved itself, never followed', async () => {
  const t = await newTarget();
  const outside = await fsp.mkdtemp(path.join(outer, 'outside-'));
  await fsp.writeFile(path.join(outside, 'secret'), 'keep');
  await fsp.symlink(outside, path.join(t.dir, 'lnk'));
  const { end, host } = await session(t, async (peer) => {
    // The device's folder checked first, as in any backup by its Move phase (before that, a
    // link named by a move is refused when its folder is checked: UNSAFE_PATH).
    assert.equal(await uploadOne(peer, `${UDID}/first`), 0);
    assert.equal((await call(peer, dlMoveItems({ [`${UDID}/lnk`]: `${UDID}/moved` }))).code, 0);
    assert.notEqual(await uploadOne(peer, `${UDID}/moved/x`), 0);
    await finish(peer);
  });
  assert.ok(!(end instanceof Error), String(end));
  assert.deepEqual(host.refusedPaths, [`${UDID}/moved/x`]);
  assert.ok((await fsp.lstat(path.join(t.dir, 'moved'))).isSymbolicLink());
  assert.deepEqual(await fsp.readdir(outside), ['secret']);
  assert.equal(await fsp.readFile(path.join(outside, 'secret'), 'utf8'), 'keep');
});

/** A copy of the previous backup still being made: `ab/` is being filled until `finish()`. */
function linkingInto(): { gate: LinkingGate; finish: () => void; finished: () => boolean } {
  let finish!: () => void;
  let finished = false;
  const done = new Promise<void>((resolve) => (finish = resolve)).then(() => {
    finished = true;
  });
  return { gate: new LinkingGate(UDID, new Set(['ab']), done), finish, finished: () => finished };
}

test('while the links are made, the top level and Snapshot/ are served; a folder being filled waits (D32)', async () => {
  const t = await newTarget();
  // The top level in place: a file linked, the folder `ab` made and being filled.
  await fsp.writeFile(path.join(t.dir, 'Status.plist'), 'previous');
  await fsp.mkdir(path.join(t.dir, 'ab'));
  const links = linkingInto();
  const { end } = await session(
    t,
    async (peer) => {
      // Not held: the backup folder's listing, Snapshot/, an upload there and onto the top level.
      const listing = await call(peer, dlContentsOfDirectory(UDID));
      assert.equal(listing.code, 0);
      assert.ok(isPlistDict(listing.payload) && 'ab' in listing.payload);
      assert.equal((await call(peer, dlCreateDirectory(`${UDID}/Snapshot/ab`))).code, 0);
      assert.equal(await uploadOne(peer, `${UDID}/Snapshot/ab/ab01`), 0);
      assert.equal(await uploadOne(peer, `${UDID}/Status.plist`), 0);
      assert.equal(links.finished(), false, 'all of that was answered before the links were made');
      // Held: a move into the folder being filled is answered only once the copy is complete.
      setTimeout(links.finish, 150);
      const moved = await call(
        peer,
        dlMoveItems({ [`${UDID}/Snapshot/ab/ab01`]: `${UDID}/ab/ab01` }),
      );
      assert.equal(moved.code, 0);
      assert.equal(links.finished(), true, 'the move waited for the links');
      await finish(peer);
    },
    undefined,
    undefined,
    links.gate,
  );
  assert.ok(!(end instanceof Error), String(end));
  assert.equal(await fsp.readFile(path.join(t.dir, 'ab', 'ab01'), 'utf8'), 'data');
  assert.equal(await fsp.readFile(path.join(t.dir, 'Status.plist'), 'utf8'), 'data');
});

for (const writer of WRITERS)
  test(`an uploaded file into a folder being filled waits for the links, ${writer.name} (D32)`, async () => {
    const t = await newTarget();
    await fsp.mkdir(path.join(t.dir, 'ab'));
    await fsp.mkdir(path.join(t.dir, 'Snapshot'));
    const links = linkingInto();
    let beforeLinks: string[] | undefined;
    const { end } = await session(
      t,
      async (peer) => {
        await peer.send(dlUploadFiles(0, 8), 'binary');
        await peer.writeRaw(
          Buffer.concat([
            encodeDlPath('/var/tmp/1'),
            encodeDlPath(`${UDID}/Snapshot/early`),
            encodeDlDataBlock(Buffer.from('one')),
            encodeDlSuccessBlock(),
            encodeDlPath('/var/tmp/2'),
            encodeDlPath(`${UDID}/ab/late`),
            encodeDlDataBlock(Buffer.from('two')),
            encodeDlSuccessBlock(),
            encodeDlStreamEnd(),
          ]),
        );
        setTimeout(() => {
          void fsp.readdir(path.join(t.dir, 'ab')).then((names) => {
            beforeLinks = names;
            links.finish();
          });
        }, 150);
        const r = parseHostDlMessage(await peer.receive());
        assert.ok(r.type === 'StatusResponse' && r.code === 0, JSON.stringify(r));
        assert.equal(links.finished(), true, 'the reply came after the links were made');
        await finish(peer);
      },
      undefined,
      writer.received(),
      links.gate,
    );
    assert.ok(!(end instanceof Error), String(end));
    assert.deepEqual(beforeLinks, [], 'nothing was written into the folder before its links');
    assert.equal(await fsp.readFile(path.join(t.dir, 'Snapshot', 'early'), 'utf8'), 'one');
    assert.equal(await fsp.readFile(path.join(t.dir, 'ab', 'late'), 'utf8'), 'two');
  });

for (const writer of WRITERS)
  test(`a Manifest.db received whole is told to the target once committed, ${writer.name}; a failed one is not (D34)`, async () => {
    const t = await newTarget();
    await fsp.mkdir(path.join(t.dir, 'Snapshot'));
    const told: Array<{ file: string; content: string }> = [];
    const target: BackupTarget = {
      udid: t.udid,
      root: t.root,
      // What the file holds when the target hears of it: it must be complete by then.
      manifestReceived: (file) => {
        let content = '(none)';
        try {
          content = readFileSync(file, 'utf8');
        } catch {
          // told of a file that is not there: the assertion below says so
        }
        told.push({ file, content });
      },
    };
    const received = writer.received();
    const upload = (hostPath: string, ...blocks: Buffer[]): Buffer =>
      Buffer.concat([encodeDlPath('/var/tmp/x'), encodeDlPath(hostPath), ...blocks]);
    const { end } = await session(
      target,
      async (peer) => {
        // 1. The Snapshot's Manifest.db, in two blocks, among other files.
        await peer.send(dlUploadFiles(0, 16), 'binary');
        await peer.writeRaw(
          Buffer.concat([
            upload(
              `${UDID}/Snapshot/Manifest.plist`,
              encodeDlDataBlock(Buffer.from('plist')),
              encodeDlSuccessBlock(),
            ),
            upload(
              `${UDID}/Snapshot/Manifest.db`,
              encodeDlDataBlock(Buffer.from('rows ')),
              encodeDlDataBlock(Buffer.from('one')),
              encodeDlSuccessBlock(),
            ),
            upload(
              `${UDID}/Snapshot/other.db`,
              encodeDlDataBlock(Buffer.from('x')),
              encodeDlSuccessBlock(),
            ),
            encodeDlStreamEnd(),
          ]),
        );
        let r = parseHostDlMessage(await peer.receive());
        assert.ok(r.type === 'StatusResponse' && r.code === 0, JSON.stringify(r));
        // 2. One the device could not read, and one whose folder is missing: neither is told.
        await peer.send(dlUploadFiles(0, 8), 'binary');
        await peer.writeRaw(
          Buffer.concat([
            upload(
              `${UDID}/Manifest.db`,
              encodeDlDataBlock(Buffer.from('half')),
              encodeDlErrorBlock(DlFileCode.LOCAL_ERROR, 'Input/output error'),
            ),
            upload(
              `${UDID}/gone/Manifest.db`,
              encodeDlDataBlock(Buffer.from('x')),
              encodeDlSuccessBlock(),
            ),
            encodeDlStreamEnd(),
          ]),
        );
        r = parseHostDlMessage(await peer.receive());
        assert.ok(r.type === 'StatusResponse' && r.code === -6, JSON.stringify(r));
        // 3. One straight into place.
        await peer.send(dlUploadFiles(0, 8), 'binary');
        await peer.writeRaw(
          Buffer.concat([
            upload(
              `${UDID}/Manifest.db`,
              encodeDlDataBlock(Buffer.from('rows two')),
              encodeDlSuccessBlock(),
            ),
            encodeDlStreamEnd(),
          ]),
        );
        r = parseHostDlMessage(await peer.receive());
        assert.ok(r.type === 'StatusResponse' && r.code === 0, JSON.stringify(r));
        await finish(peer);
      },
      undefined,
      received,
    );
    assert.ok(!(end instanceof Error), String(end));
    // The writing thread was retired once Manifest.db was in: later files are written here.
    if (received)
      assert.equal(
        received.writeOffThread(path.join(t.dir, 'x'), () => undefined),
        undefined,
      );
    assert.deepEqual(told, [
      { file: path.join(t.dir, 'Snapshot', 'Manifest.db'), content: 'rows one' },
      { file: path.join(t.dir, 'Manifest.db'), content: 'rows two' },
    ]);
  });
