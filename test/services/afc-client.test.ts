/**
 * AfcClient against a scripted peer on a real loopback socket: the peer decodes each request with
 * the same codec and answers whatever the test says, including hostile replies.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { StreamReader } from '../../src/util/stream-reader';
import { isMooringError } from '../../src/util/errors';
import {
  AfcLockOp,
  AfcOp,
  AfcStatus,
  decodeAfcPath,
  decodeU64,
  encodeAfcPacket,
  encodeKeyValueList,
  encodeU64s,
  readAfcPacket,
  type AfcPacket,
} from '../../src/protocol/afc';
import { AfcClient, acquireSyncLock, isAfcStatus, SYNC_LOCK_PATH } from '../../src/services/afc';

type Reply = Buffer | Array<Buffer | null> | null; // null: close the connection (after what precedes it)
type Script = (req: AfcPacket, n: number) => Reply;

const status = (num: number, code: number) =>
  encodeAfcPacket({ packetNum: num, operation: AfcOp.STATUS, headerData: encodeU64s(code) });
const data = (num: number, bytes: Buffer) =>
  encodeAfcPacket({ packetNum: num, operation: AfcOp.DATA, payload: bytes });

async function withPeer(
  script: Script,
  body: (afc: AfcClient, seen: AfcPacket[]) => Promise<void>,
): Promise<void> {
  const seen: AfcPacket[] = [];
  const sockets: net.Socket[] = [];
  const server = net.createServer(async (sock) => {
    sockets.push(sock);
    const reader = new StreamReader(sock);
    try {
      for (let n = 0; ; n++) {
        const req = await readAfcPacket(reader, { timeoutMs: 5000 });
        seen.push(req);
        const reply = script(req, n);
        if (reply === null) {
          sock.destroy();
          return;
        }
        for (const b of Array.isArray(reply) ? reply : [reply]) {
          if (b === null) {
            sock.end();
            return;
          }
          sock.write(b);
        }
      }
    } catch {
      sock.destroy();
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  const sock = net.connect(port, '127.0.0.1');
  await new Promise((r) => sock.once('connect', r));
  const afc = AfcClient.fromStream(sock, { timeoutMs: 2000 });
  try {
    await body(afc, seen);
  } finally {
    afc.close();
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
  }
}

const code = (c: string) => (e: unknown) => isMooringError(e, c as never);

test('requests carry increasing packet numbers and the documented bodies', async () => {
  await withPeer(
    (req) => {
      if (req.operation === AfcOp.FILE_OPEN) {
        return encodeAfcPacket({
          packetNum: req.packetNum,
          operation: AfcOp.FILE_OPEN_RES,
          headerData: encodeU64s(42),
        });
      }
      return status(req.packetNum, 0);
    },
    async (afc, seen) => {
      const h = await afc.fileOpen(SYNC_LOCK_PATH, 'r+');
      assert.equal(h, 42);
      await afc.fileLock(h, 'exclusive');
      await afc.fileLock(h, 'unlock');
      await afc.fileClose(h);
      await afc.makeDirectory('/iTunesRestore');
      assert.deepEqual(
        seen.map((p) => p.packetNum),
        [0, 1, 2, 3, 4],
      );
      assert.equal(decodeU64(seen[0]!.headerData, 0, 'mode'), 2);
      assert.equal(decodeAfcPath(seen[0]!.headerData, 8).path, SYNC_LOCK_PATH);
      assert.equal(seen[1]!.operation, AfcOp.FILE_LOCK);
      assert.equal(decodeU64(seen[1]!.headerData, 8, 'op'), AfcLockOp.EXCLUSIVE);
      assert.equal(decodeU64(seen[2]!.headerData, 8, 'op'), AfcLockOp.UNLOCK);
      assert.equal(seen[4]!.operation, AfcOp.MAKE_DIR);
    },
  );
});

test('getFileInfo parses the key/value reply and maps not-found to undefined', async () => {
  await withPeer(
    (req) => {
      const p = decodeAfcPath(req.headerData).path;
      if (p === '/missing') return status(req.packetNum, AfcStatus.OBJECT_NOT_FOUND);
      return data(
        req.packetNum,
        encodeKeyValueList({
          st_size: '1234',
          st_blocks: '8',
          st_nlink: '1',
          st_ifmt: 'S_IFREG',
          st_mtime: '1700000000123456789',
          st_birthtime: '1600000000000000000',
        }),
      );
    },
    async (afc) => {
      assert.equal(await afc.getFileInfo('/missing'), undefined);
      const info = await afc.getFileInfo('/Books/iBooksData2.plist');
      assert.equal(info?.size, 1234);
      assert.equal(info?.type, 'file');
      assert.equal(info?.mtime?.getTime(), 1700000000123);
      assert.equal(info?.raw.st_blocks, '8');
    },
  );
});

test('device errors become DEVICE_ERROR with the AFC status as detail', async () => {
  await withPeer(
    (req) => status(req.packetNum, AfcStatus.PERM_DENIED),
    async (afc) => {
      await assert.rejects(
        afc.makeDirectory('/x'),
        (e) =>
          isAfcStatus(e, AfcStatus.PERM_DENIED) && /permission denied/.test((e as Error).message),
      );
      // The connection stays usable after a device-level error.
      await assert.rejects(afc.removePath('/y'), (e) => isAfcStatus(e, AfcStatus.PERM_DENIED));
    },
  );
});

test('lock retries on OP_WOULD_BLOCK and then succeeds', async () => {
  await withPeer(
    (req, n) => status(req.packetNum, n < 3 ? AfcStatus.OP_WOULD_BLOCK : 0),
    async (afc, seen) => {
      await afc.fileLock(1, 'exclusive', { intervalMs: 1 });
      assert.equal(seen.length, 4);
    },
  );
});

test('lock gives up after the allowed attempts with a clear message', async () => {
  await withPeer(
    (req) => status(req.packetNum, AfcStatus.OP_WOULD_BLOCK),
    async (afc, seen) => {
      await assert.rejects(
        afc.fileLock(1, 'exclusive', { attempts: 3, intervalMs: 1 }),
        (e) =>
          isMooringError(e, 'DEVICE_ERROR') &&
          e.detail === AfcStatus.OP_WOULD_BLOCK &&
          /another program/.test(e.message),
      );
      assert.equal(seen.length, 3);
    },
  );
});

test('lock does not retry other errors, and unlock is tried once', async () => {
  await withPeer(
    (req) => status(req.packetNum, AfcStatus.OP_WOULD_BLOCK),
    async (afc, seen) => {
      await assert.rejects(afc.fileLock(1, 'unlock'), (e) =>
        isAfcStatus(e, AfcStatus.OP_WOULD_BLOCK),
      );
      assert.equal(seen.length, 1);
    },
  );
  await withPeer(
    (req) => status(req.packetNum, AfcStatus.INVALID_ARG),
    async (afc, seen) => {
      await assert.rejects(afc.fileLock(1, 'exclusive', { intervalMs: 1 }), (e) =>
        isAfcStatus(e, AfcStatus.INVALID_ARG),
      );
      assert.equal(seen.length, 1);
    },
  );
});

test('acquireSyncLock closes the file when the lock fails', async () => {
  await withPeer(
    (req) => {
      if (req.operation === AfcOp.FILE_OPEN) {
        return encodeAfcPacket({
          packetNum: req.packetNum,
          operation: AfcOp.FILE_OPEN_RES,
          headerData: encodeU64s(5),
        });
      }
      if (req.operation === AfcOp.FILE_LOCK) return status(req.packetNum, AfcStatus.OP_WOULD_BLOCK);
      return status(req.packetNum, 0);
    },
    async (afc, seen) => {
      await assert.rejects(
        acquireSyncLock(afc, { attempts: 2, intervalMs: 1 }),
        code('DEVICE_ERROR'),
      );
      assert.deepEqual(
        seen.map((p) => p.operation),
        [AfcOp.FILE_OPEN, AfcOp.FILE_LOCK, AfcOp.FILE_LOCK, AfcOp.FILE_CLOSE],
      );
    },
  );
});

test('readFile and writeFile chunk and bound the transfer', async () => {
  const content = Buffer.alloc(150_000, 7);
  let offset = 0;
  const written: Buffer[] = [];
  await withPeer(
    (req) => {
      switch (req.operation) {
        case AfcOp.FILE_OPEN:
          offset = 0;
          return encodeAfcPacket({
            packetNum: req.packetNum,
            operation: AfcOp.FILE_OPEN_RES,
            headerData: encodeU64s(9),
          });
        case AfcOp.FILE_READ: {
          const len = decodeU64(req.headerData, 8, 'len');
          const chunk = content.subarray(
            offset,
            Math.min(content.length, offset + Math.min(len, 60_000)),
          );
          offset += chunk.length;
          return data(req.packetNum, chunk);
        }
        case AfcOp.FILE_WRITE:
          assert.equal(decodeU64(req.headerData, 0, 'handle'), 9);
          written.push(req.payload);
          return status(req.packetNum, 0);
        default:
          return status(req.packetNum, 0);
      }
    },
    async (afc) => {
      assert.deepEqual(await afc.readFile('/f'), content);
      await assert.rejects(afc.readFile('/f', { maxBytes: 100_000 }), code('LIMIT'));
      await afc.writeFile('/g', content);
      assert.ok(written.length >= 3, 'written in several chunks');
      assert.deepEqual(Buffer.concat(written), content);
    },
  );
});

test('hostile: wrong packet number is a PROTOCOL error and the client refuses further use', async () => {
  await withPeer(
    (req) => status(req.packetNum + 5, 0),
    async (afc) => {
      await assert.rejects(afc.makeDirectory('/a'), code('PROTOCOL'));
      await assert.rejects(
        afc.makeDirectory('/b'),
        (e) => isMooringError(e, 'PROTOCOL') && /unusable/.test(e.message),
      );
    },
  );
});

test('hostile: oversized reply, more data than asked, wrong reply type, truncated reply', async () => {
  await withPeer(
    (req) => {
      const p = encodeAfcPacket({ packetNum: req.packetNum, operation: AfcOp.DATA });
      p.writeBigUInt64LE(1n << 40n, 8);
      return p;
    },
    async (afc) => {
      await assert.rejects(afc.getFileInfo('/a'), code('FRAME_TOO_LARGE'));
    },
  );
  await withPeer(
    (req) => data(req.packetNum, Buffer.alloc(100)),
    async (afc) => {
      await assert.rejects(afc.fileRead(1, 10), code('MALFORMED'));
    },
  );
  await withPeer(
    (req) => data(req.packetNum, Buffer.alloc(8)),
    async (afc) => {
      await assert.rejects(afc.fileOpen('/a', 'r'), code('PROTOCOL'));
    },
  );
  await withPeer(
    (req) => [status(req.packetNum, 0).subarray(0, 30), null],
    async (afc) => {
      await assert.rejects(afc.makeDirectory('/a'), code('CLOSED'));
    },
  );
  await withPeer(
    () => null,
    async (afc) => {
      await assert.rejects(afc.makeDirectory('/a'), code('CLOSED'));
    },
  );
});
