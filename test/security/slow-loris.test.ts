/**
 * readWithin: a whole announced body within one deadline. A peer that trickles bytes just inside
 * StreamReader's per-read timeout is refused as "too slowly" (PROTOCOL); one that goes quiet gets
 * TIMEOUT as before; a stream that ends gets CLOSED; bytes that come in time arrive intact.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { readWithin } from '../../src/util/read-within';
import { StreamReader } from '../../src/util/stream-reader';
import { isMooringError } from '../../src/util/errors';

const DEADLINE_MS = 300;

function pipe(): { src: PassThrough; reader: StreamReader } {
  const src = new PassThrough();
  return { src, reader: new StreamReader(src) };
}

test('a trickle (one byte every 20 ms, each well inside the per-read timeout) is refused', async () => {
  const { src, reader } = pipe();
  const timer = setInterval(() => src.write(Buffer.from([0x41])), 20);
  try {
    await assert.rejects(readWithin(reader, 1024, DEADLINE_MS, 'frame body'), (e) => {
      assert.ok(isMooringError(e, 'PROTOCOL'), String(e));
      assert.match((e as Error).message, /frame body too slowly: \d+ of 1024 bytes/);
      return true;
    });
  } finally {
    clearInterval(timer);
    src.destroy();
  }
});

test('the same trickle through plain StreamReader.read would still be waiting: the bug fixed', async () => {
  const { src, reader } = pipe();
  const timer = setInterval(() => src.write(Buffer.from([0x41])), 20);
  try {
    const outcome = await Promise.race([
      reader.read(1024, DEADLINE_MS, 'frame body').then(
        () => 'read',
        () => 'failed',
      ),
      new Promise((r) => setTimeout(() => r('still waiting'), DEADLINE_MS * 3)),
    ]);
    assert.equal(outcome, 'still waiting');
  } finally {
    clearInterval(timer);
    src.destroy();
  }
});

test('a prefix then silence is a TIMEOUT, an end is CLOSED', async () => {
  const a = pipe();
  a.src.write(Buffer.alloc(10));
  await assert.rejects(readWithin(a.reader, 100, DEADLINE_MS, 'body'), (e) =>
    isMooringError(e, 'TIMEOUT'),
  );
  a.src.destroy();
  const b = pipe();
  b.src.end(Buffer.alloc(10));
  await assert.rejects(readWithin(b.reader, 100, DEADLINE_MS, 'body'), (e) =>
    isMooringError(e, 'CLOSED'),
  );
});

test('bytes that arrive in time, in many pieces, come back exact', async () => {
  const { src, reader } = pipe();
  const data = Buffer.from(Array.from({ length: 5000 }, (_, i) => i % 251));
  // Some buffered already, the rest arriving while the read waits.
  src.write(data.subarray(0, 700));
  for (let off = 700, i = 1; off < data.length; off += 700, i++)
    setTimeout(() => src.write(data.subarray(off, off + 700)), i * 5);
  const first = await readWithin(reader, 1234, DEADLINE_MS, 'body');
  const rest = await readWithin(reader, data.length - 1234, DEADLINE_MS, 'body');
  assert.deepEqual(Buffer.concat([first, rest]), data);
  src.destroy();
});
