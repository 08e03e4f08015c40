/**
 * The simulated device's upload stream (src/sim/backup/slab-writer.ts, DeviceLinkPeer.uploadFiles):
 * packed into large writes, with file bytes read straight into the write buffer, it must still be
 * exactly the §4.5 stream — every path, block and marker in order, every byte of every file — over
 * an in-memory socket pair (which hands written buffers to the reader as they are) and a real
 * socket; and a buffer the stream may still hold is never written again.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import {
  DlFileStreamDecoder,
  MAX_DL_PATH_BYTES,
  dlStatusResponse,
} from '../../../src/protocol/device-link';
import { isMooringError } from '../../../src/util/errors';
import { PlistConnection } from '../../../src/transport/plist-connection';
import { DeviceLinkPeer, type UploadItem } from '../../../src/sim/backup/dl-peer';
import { SLAB_BYTES, SlabWriter, UPLOAD_BLOCK_BYTES } from '../../../src/sim/backup/slab-writer';
import { socketPair } from '../../../src/sim/service-ports';

const dir = mkdtempSync(path.join(os.tmpdir(), 'mooring-slab-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

test('a slab the stream may still hold is not written again; a released one is reused', async () => {
  for (const reusable of [false, true]) {
    const seen: Array<{ buf: Buffer; copy: Buffer }> = [];
    const w = new SlabWriter(
      async (buf) => {
        seen.push({ buf, copy: Buffer.from(buf) });
      },
      () => reusable,
      5000, // above Buffer's pool size: each slab is its own allocation
    );
    const pieces = Array.from({ length: 1200 }, (_, i) => Buffer.alloc(10, i & 0xff));
    for (const p of pieces) await w.put(p);
    await w.flush();
    assert.equal(seen.length, 3);
    assert.deepEqual(Buffer.concat(seen.map((s) => s.copy)), Buffer.concat(pieces));
    // Held buffers keep what was written in them unless the writer was told it may reuse them.
    const intact = seen.every((s) => s.buf.equals(s.copy));
    assert.equal(intact, !reusable, `reusable=${String(reusable)}`);
    const buffers = new Set(seen.map((s) => s.buf.buffer));
    assert.equal(buffers.size === 1, reusable);
  }
});

test('a reservation larger than a slab gets a buffer of its own; reset drops unsent bytes', async () => {
  const out: Buffer[] = [];
  const w = new SlabWriter(
    async (b) => {
      out.push(Buffer.from(b));
    },
    () => true,
    16,
  );
  await w.put(Buffer.from('left over by a failed stream'));
  w.reset();
  await w.put(Buffer.from('abc'));
  const { buf, at } = await w.reserve(40);
  buf.fill(7, at, at + 40);
  w.commit(40);
  await w.put(Buffer.from('xyz'));
  await w.flush();
  // Paths: UTF-8 in place; one over the protocol's bound is refused as the encoder refuses it.
  await assert.rejects(w.putPath('x'.repeat(MAX_DL_PATH_BYTES + 1)), (e) =>
    isMooringError(e, 'LIMIT'),
  );
  assert.deepEqual(
    Buffer.concat(out),
    Buffer.concat([Buffer.from('abc'), Buffer.alloc(40, 7), Buffer.from('xyz')]),
  );
});

/** Sizes around the block and slab boundaries, an empty file, a buffer source and a missing file. */
function items(): { list: UploadItem[]; want: Map<string, string | 'error'> } {
  const sizes = [
    0,
    1,
    100,
    UPLOAD_BLOCK_BYTES - 1,
    UPLOAD_BLOCK_BYTES,
    UPLOAD_BLOCK_BYTES + 1,
    SLAB_BYTES - 7,
    3 * SLAB_BYTES + 12345,
  ];
  for (let i = 0; i < 300; i++) sizes.push(1000 + i * 37);
  const list: UploadItem[] = [];
  const want = new Map<string, string | 'error'>();
  sizes.forEach((size, i) => {
    const data = Buffer.alloc(size, i & 0xff);
    for (let j = 0; j < size; j += 4093) data[j] = (i * 31 + j) & 0xff;
    const file = path.join(dir, `f${i}`);
    writeFileSync(file, data);
    const hostPath = `U/Snapshot/${i}`;
    list.push({ devicePath: `/d/é€😀/${i}`, hostPath, source: { kind: 'file', path: file } });
    want.set(hostPath, sha(data));
  });
  const buffer = Buffer.alloc(2 * UPLOAD_BLOCK_BYTES + 5, 9);
  list.splice(5, 0, {
    devicePath: '/d/b',
    hostPath: 'U/b',
    source: { kind: 'buffer', data: buffer },
  });
  want.set('U/b', sha(buffer));
  list.splice(9, 0, {
    devicePath: '/d/missing',
    hostPath: 'U/missing',
    source: { kind: 'file', path: path.join(dir, 'missing') },
  });
  want.set('U/missing', 'error');
  return { list, want };
}

/** The host's side: decodes the whole stream, then answers with a status. */
async function receive(conn: PlistConnection): Promise<Map<string, string | 'error'>> {
  await conn.receive(10_000); // DLMessageUploadFiles
  const dec = new DlFileStreamDecoder(conn.reader, { timeoutMs: 10_000 });
  const got = new Map<string, string | 'error'>();
  for (let devicePath; (devicePath = await dec.readPath()) !== null;) {
    const hostPath = await dec.readRequiredPath();
    if (hostPath.startsWith('U/Snapshot/'))
      assert.equal(devicePath, `/d/é€😀/${hostPath.slice(11)}`);
    const h = createHash('sha256');
    for (;;) {
      const b = await dec.readBlock();
      if (b.kind === 'data') {
        assert.ok(b.data.length <= UPLOAD_BLOCK_BYTES);
        h.update(b.data);
        continue;
      }
      got.set(hostPath, b.kind === 'success' ? h.digest('hex') : 'error');
      break;
    }
  }
  await conn.send(dlStatusResponse(0, undefined, {}), 'binary');
  return got;
}

async function roundTrip(device: Duplex, host: Duplex): Promise<void> {
  const peer = new DeviceLinkPeer(new PlistConnection(device, { format: 'binary' }));
  const hostConn = new PlistConnection(host, { format: 'binary' });
  const { list, want } = items();
  // Twice on one connection: the second stream reuses (or not) the first one's slab.
  for (let round = 0; round < 2; round++) {
    const [got, status] = await Promise.all([receive(hostConn), peer.uploadFiles(list, 0, 0)]);
    assert.equal(status.code, 0);
    assert.equal(status.sent, list.length - 1);
    assert.deepEqual(status.unreadable, ['U/missing']);
    assert.deepEqual(got, want);
  }
  device.destroy();
  host.destroy();
}

test('upload stream over an in-memory socket pair: every byte, in order', async () => {
  const [a, b] = socketPair();
  await roundTrip(a, b);
});

test('upload stream over a real socket: every byte, in order', async () => {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  const device = await accepted;
  try {
    await roundTrip(device, client);
  } finally {
    server.close();
  }
});
