import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { PassThrough } from 'node:stream';
import { StreamReader } from '../../src/util/stream-reader';
import { isMooringError } from '../../src/util/errors';

const HOURS = 12 * 60 * 60 * 1000;

async function closedAtOnce(reader: StreamReader): Promise<void> {
  const t0 = Date.now();
  await assert.rejects(reader.read(4, HOURS, 'a header'), (e: unknown) =>
    isMooringError(e, 'CLOSED'),
  );
  assert.ok(Date.now() - t0 < 1000, 'the read waited instead of reporting the closed stream');
}

test(
  'a reader made over a stream already destroyed reports CLOSED, not its deadline',
  { timeout: 5000 },
  async () => {
    const s = new PassThrough();
    s.destroy();
    await once(s, 'close');
    await closedAtOnce(new StreamReader(s));
  },
);

test(
  'a reader made over a stream already ended and drained reports CLOSED',
  { timeout: 5000 },
  async () => {
    const s = new PassThrough();
    s.end();
    s.resume();
    await once(s, 'end');
    await closedAtOnce(new StreamReader(s));
  },
);

test(
  'a socket closed by its peer before the reader exists: CLOSED at once',
  { timeout: 5000 },
  async () => {
    const server = net.createServer((c) => c.destroy());
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const sock = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    sock.resume();
    await once(sock, 'close');
    server.close();
    await closedAtOnce(new StreamReader(sock));
  },
);

test(
  'bytes that arrive before the end are still read, then CLOSED',
  { timeout: 5000 },
  async () => {
    const s = new PassThrough();
    const reader = new StreamReader(s);
    s.end(Buffer.from('abcd'));
    assert.equal((await reader.read(4, 1000)).toString(), 'abcd');
    await closedAtOnce(reader);
  },
);

test('readNow and peekUInt32BE take only what has arrived, across chunk boundaries', async () => {
  const s = new PassThrough();
  const reader = new StreamReader(s);
  const arrived = (): Promise<void> => new Promise((r) => setImmediate(r));
  assert.equal(reader.peekUInt32BE(), undefined);
  assert.equal(reader.readNow(1), undefined);
  // The u32 split over three chunks: 0x01 | 0x02 0x03 | 0x04 0x05.
  s.write(Buffer.from([1]));
  await arrived();
  assert.equal(reader.peekUInt32BE(), undefined, 'one byte is not a u32');
  s.write(Buffer.from([2, 3]));
  await arrived();
  assert.equal(reader.readNow(4), undefined, 'three bytes are not four');
  assert.equal(reader.available, 3, 'a failed readNow consumed nothing');
  s.write(Buffer.from([4, 5]));
  await arrived();
  assert.equal(reader.peekUInt32BE(), 0x01020304);
  assert.equal(reader.available, 5, 'a peek consumes nothing');
  assert.deepEqual(reader.readNow(4), Buffer.from([1, 2, 3, 4]));
  assert.deepEqual(reader.readNow(1), Buffer.from([5]));
  assert.equal(reader.available, 0);
  // A detached reader gives nothing, as its read() refuses.
  s.write(Buffer.from([6, 7, 8, 9]));
  await arrived();
  reader.detach();
  assert.equal(reader.peekUInt32BE(), undefined);
  assert.equal(reader.readNow(1), undefined);
});
