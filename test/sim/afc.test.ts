import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import {
  AfcOp,
  AfcStatus,
  decodeKeyValueList,
  encodeAfcPacket,
  encodeAfcPath,
  encodeU64s,
  readAfcPacket,
  type AfcPacket,
} from '../../src/protocol/afc';
import type { SimDeviceApi } from '../../src/sim/contracts';
import { afcLockHeld, afcService } from '../../src/sim/services/afc';
import { socketPair } from '../../src/sim/service-ports';
import { isMooringError } from '../../src/util/errors';
import { StreamReader } from '../../src/util/stream-reader';

/** Just enough of a device for the AFC service: its media root and a log. */
function deviceFor(mediaDir: string): SimDeviceApi {
  return {
    udid: 'test',
    stateDir: mediaDir,
    mediaDir,
    faults: {},
    passcode: { kind: 'none' },
    locked: false,
    snapshotLeft: false,
    values: () => ({}),
    domain: () => ({}),
    postNotification: () => undefined,
    observeNotification: () => () => undefined,
    requestPasscode: async () => true,
    log: () => undefined,
    setInternalValue: async () => undefined,
  };
}

class AfcTestClient {
  private packetNum = 0;
  readonly reader: StreamReader;
  private constructor(
    readonly host: Duplex,
    readonly served: Promise<void>,
  ) {
    this.reader = new StreamReader(host);
  }

  static open(device: SimDeviceApi): AfcTestClient {
    const [host, dev] = socketPair();
    return new AfcTestClient(host, afcService(dev, device));
  }

  async request(op: number, headerData: Buffer, payload?: Buffer): Promise<AfcPacket> {
    const packetNum = ++this.packetNum;
    this.host.write(encodeAfcPacket({ packetNum, operation: op, headerData, payload }));
    const reply = await readAfcPacket(this.reader, { timeoutMs: 5000 });
    assert.equal(reply.packetNum, packetNum, 'reply echoes the packet number');
    return reply;
  }

  async status(op: number, headerData: Buffer, payload?: Buffer): Promise<number> {
    const r = await this.request(op, headerData, payload);
    assert.equal(r.operation, AfcOp.STATUS);
    return Number(r.data.readBigUInt64LE(0));
  }

  async open(p: string, mode: number): Promise<number> {
    const r = await this.request(
      AfcOp.FILE_OPEN,
      Buffer.concat([encodeU64s(mode), encodeAfcPath(p)]),
    );
    assert.equal(r.operation, AfcOp.FILE_OPEN_RES, `open ${p}`);
    return Number(r.data.readBigUInt64LE(0));
  }

  async info(p: string): Promise<Record<string, string> | number> {
    const r = await this.request(AfcOp.GET_FILE_INFO, encodeAfcPath(p));
    if (r.operation === AfcOp.STATUS) return Number(r.data.readBigUInt64LE(0));
    return decodeKeyValueList(r.data);
  }
}

describe('AFC service', () => {
  let root: string;
  let media: string;
  let device: SimDeviceApi;
  before(async () => {
    root = await fsp.mkdtemp(path.join(os.tmpdir(), 'sim-afc-'));
    media = path.join(root, 'media');
    await fsp.mkdir(media);
    await fsp.writeFile(path.join(root, 'secret.txt'), 'outside');
    device = deviceFor(media);
  });
  after(async () => {
    await fsp.rm(root, { recursive: true, force: true });
  });

  it('writes, reads back and describes files; makes and removes directories', async () => {
    const c = AfcTestClient.open(device);
    assert.equal(
      await c.status(AfcOp.MAKE_DIR, encodeAfcPath('/iTunesRestore/sub')),
      AfcStatus.SUCCESS,
    );
    const h = await c.open('/iTunesRestore/sub/a.plist', 3);
    assert.equal(
      await c.status(AfcOp.FILE_WRITE, encodeU64s(h), Buffer.from('hello afc')),
      AfcStatus.SUCCESS,
    );
    assert.equal(await c.status(AfcOp.FILE_CLOSE, encodeU64s(h)), AfcStatus.SUCCESS);
    const r = await c.open('/iTunesRestore/sub/a.plist', 1);
    const data = await c.request(AfcOp.FILE_READ, encodeU64s(r, 4));
    assert.equal(data.operation, AfcOp.DATA);
    assert.equal(data.data.toString(), 'hell');
    const rest = await c.request(AfcOp.FILE_READ, encodeU64s(r, 100));
    assert.equal(rest.data.toString(), 'o afc');
    const eof = await c.request(AfcOp.FILE_READ, encodeU64s(r, 100));
    assert.equal(eof.data.length, 0);
    const info = await c.info('/iTunesRestore/sub/a.plist');
    assert.ok(typeof info === 'object');
    assert.equal(info.st_ifmt, 'S_IFREG');
    assert.equal(info.st_size, '9');
    for (const k of ['st_blocks', 'st_nlink', 'st_mtime', 'st_birthtime'])
      assert.match(info[k] ?? '', /^\d+$/, k);
    assert.ok(Number(info.st_mtime) > 1e18, 'st_mtime is in nanoseconds');
    const dirInfo = await c.info('/iTunesRestore');
    assert.ok(typeof dirInfo === 'object' && dirInfo.st_ifmt === 'S_IFDIR');
    assert.equal(await c.info('/iTunes_Control/iTunes/iTunesPrefs'), AfcStatus.OBJECT_NOT_FOUND);
    assert.equal(await c.status(AfcOp.FILE_CLOSE, encodeU64s(r)), AfcStatus.SUCCESS);
    assert.equal(
      await c.status(AfcOp.FILE_CLOSE, encodeU64s(r)),
      AfcStatus.INVALID_ARG,
      'double close',
    );
    assert.equal(
      await c.status(AfcOp.REMOVE_PATH, encodeAfcPath('/iTunesRestore/sub')),
      AfcStatus.UNKNOWN_ERROR,
    );
    assert.equal(
      await c.status(AfcOp.REMOVE_PATH, encodeAfcPath('/iTunesRestore/sub/a.plist')),
      AfcStatus.SUCCESS,
    );
    assert.equal(
      await c.status(AfcOp.REMOVE_PATH, encodeAfcPath('/iTunesRestore/sub')),
      AfcStatus.SUCCESS,
    );
    assert.equal(
      await c.status(AfcOp.REMOVE_PATH, encodeAfcPath('/nope')),
      AfcStatus.OBJECT_NOT_FOUND,
    );
    assert.equal(await c.status(AfcOp.REMOVE_PATH, encodeAfcPath('/')), AfcStatus.PERM_DENIED);
    const listing = await c.request(AfcOp.READ_DIR, encodeAfcPath('/'));
    assert.deepEqual(listing.data.toString().split('\0').filter(Boolean), [
      '.',
      '..',
      'iTunesRestore',
    ]);
    c.host.end();
    await c.served;
  });

  it('keeps every path inside the media root (.. and symlinks)', async () => {
    await fsp.symlink('../secret.txt', path.join(media, 'link-out'));
    await fsp.symlink(root, path.join(media, 'dir-out'));
    await fsp.writeFile(path.join(media, 'inside.txt'), 'in');
    await fsp.symlink('inside.txt', path.join(media, 'link-in'));
    const c = AfcTestClient.open(device);
    // ".." collapses at the root, as on any Unix: this names /secret.txt inside the media root.
    assert.equal(await c.info('/../secret.txt'), AfcStatus.OBJECT_NOT_FOUND);
    assert.equal(await c.info('../../secret.txt'), AfcStatus.OBJECT_NOT_FOUND);
    const r = await c.request(
      AfcOp.FILE_OPEN,
      Buffer.concat([encodeU64s(1), encodeAfcPath('/link-out')]),
    );
    assert.equal(r.operation, AfcOp.STATUS);
    assert.equal(Number(r.data.readBigUInt64LE(0)), AfcStatus.PERM_DENIED);
    assert.equal(await c.info('/dir-out/secret.txt'), AfcStatus.PERM_DENIED);
    const w = await c.request(
      AfcOp.FILE_OPEN,
      Buffer.concat([encodeU64s(3), encodeAfcPath('/dir-out/new.txt')]),
    );
    assert.equal(w.operation, AfcOp.STATUS, 'no file may be created through a link that leads out');
    await assert.rejects(fsp.stat(path.join(root, 'new.txt')));
    const linkInfo = await c.info('/link-out');
    assert.ok(
      typeof linkInfo === 'object' &&
        linkInfo.st_ifmt === 'S_IFLNK' &&
        linkInfo.LinkTarget === '../secret.txt',
    );
    const h = await c.open('/link-in', 1);
    assert.equal((await c.request(AfcOp.FILE_READ, encodeU64s(h, 10))).data.toString(), 'in');
    assert.equal(
      await c.status(AfcOp.MAKE_DIR, encodeAfcPath('/dir-out/made')),
      AfcStatus.PERM_DENIED,
    );
    assert.equal(
      await c.status(AfcOp.REMOVE_PATH_AND_CONTENTS, encodeAfcPath('/dir-out/')),
      AfcStatus.SUCCESS,
    );
    assert.equal(
      await fsp.readFile(path.join(root, 'secret.txt'), 'utf8'),
      'outside',
      'only the link went',
    );
    c.host.end();
    await c.served;
  });

  it('locks like flock: one exclusive holder, others would block, released on close and disconnect', async () => {
    const a = AfcTestClient.open(device);
    const b = AfcTestClient.open(device);
    const ha = await a.open('/com.apple.itunes.lock_sync', 2);
    const hb = await b.open('/com.apple.itunes.lock_sync', 2);
    assert.equal(await a.status(AfcOp.FILE_LOCK, encodeU64s(ha, 6)), AfcStatus.SUCCESS);
    assert.equal(await afcLockHeld(device, '/com.apple.itunes.lock_sync'), true);
    assert.equal(await b.status(AfcOp.FILE_LOCK, encodeU64s(hb, 6)), AfcStatus.OP_WOULD_BLOCK);
    assert.equal(
      await b.status(AfcOp.FILE_LOCK, encodeU64s(hb, 5)),
      AfcStatus.OP_WOULD_BLOCK,
      'shared blocks too',
    );
    assert.equal(
      await a.status(AfcOp.FILE_LOCK, encodeU64s(ha, 6)),
      AfcStatus.SUCCESS,
      'the holder may re-lock',
    );
    assert.equal(await a.status(AfcOp.FILE_LOCK, encodeU64s(ha, 12)), AfcStatus.SUCCESS);
    assert.equal(
      await b.status(AfcOp.FILE_LOCK, encodeU64s(hb, 6)),
      AfcStatus.SUCCESS,
      'free after unlock',
    );
    assert.equal(await a.status(AfcOp.FILE_LOCK, encodeU64s(ha, 6)), AfcStatus.OP_WOULD_BLOCK);
    // b disconnects without unlocking: its lock must go with it.
    b.host.destroy();
    await b.served;
    assert.equal(await a.status(AfcOp.FILE_LOCK, encodeU64s(ha, 6)), AfcStatus.SUCCESS);
    assert.equal(await a.status(AfcOp.FILE_CLOSE, encodeU64s(ha)), AfcStatus.SUCCESS);
    assert.equal(await afcLockHeld(device, '/com.apple.itunes.lock_sync'), false, 'close releases');
    assert.equal(await a.status(AfcOp.FILE_LOCK, encodeU64s(99, 6)), AfcStatus.INVALID_ARG);
    a.host.end();
    await a.served;
  });

  it('answers unknown operations and bad arguments with a status, not a crash', async () => {
    const c = AfcTestClient.open(device);
    assert.equal(await c.status(0x99, Buffer.alloc(0)), AfcStatus.UNKNOWN_PACKET_TYPE);
    assert.equal(
      await c.status(AfcOp.GET_FILE_HASH, encodeAfcPath('/x')),
      AfcStatus.OP_NOT_SUPPORTED,
    );
    assert.equal(await c.status(AfcOp.FILE_READ, Buffer.alloc(3)), AfcStatus.INVALID_ARG);
    const badMode = await c.request(
      AfcOp.FILE_OPEN,
      Buffer.concat([encodeU64s(42), encodeAfcPath('/x')]),
    );
    assert.equal(Number(badMode.data.readBigUInt64LE(0)), AfcStatus.INVALID_ARG);
    assert.equal(
      await c.status(AfcOp.MAKE_DIR, Buffer.alloc(5000, 0x41)),
      AfcStatus.INVALID_ARG,
      'over-long path',
    );
    const devinfo = await c.request(AfcOp.GET_DEVINFO, Buffer.alloc(0));
    assert.ok(decodeKeyValueList(devinfo.data).FSTotalBytes);
    c.host.end();
    await c.served;
  });

  it('hangs up on hostile framing: bad magic, oversized lengths, truncated packets', async () => {
    for (const bytes of [
      Buffer.concat([Buffer.from('XXXXXXXX'), Buffer.alloc(32)]),
      (() => {
        const p = encodeAfcPacket({ packetNum: 1, operation: AfcOp.GET_DEVINFO });
        p.writeBigUInt64LE(1n << 40n, 8);
        p.writeBigUInt64LE(1n << 40n, 16);
        return p;
      })(),
      encodeAfcPacket({
        packetNum: 1,
        operation: AfcOp.GET_FILE_INFO,
        headerData: encodeAfcPath('/x'),
      }).subarray(0, 41),
    ]) {
      const c = AfcTestClient.open(device);
      c.host.end(bytes);
      await c.served; // resolves: the service gave up on this connection without throwing
      await assert.rejects(c.reader.read(1, 5000), (e) => isMooringError(e, 'CLOSED'));
    }
  });
});
