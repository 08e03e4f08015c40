/**
 * readWithin: a whole announced body within one deadline. A peer that trickles bytes just inside
 * StreamReader's per-read timeout is refused as "too slowly" (PROTOCOL); one that goes quiet gets
 * TIMEOUT as before; a stream that ends gets CLOSED; bytes that come in time arrive intact. The
 * same for a file-stream data block taken in the pieces it arrives in (BodyWithin).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { readWithin } from '../../src/util/read-within';
import { DlFileStreamDecoder, encodeDlDataBlock } from '../../src/protocol/device-link';
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

/** A decoder waiting in a data block of `n` bytes announced on `src`. */
function blockOf(n: number): { src: PassThrough; d: DlFileStreamDecoder } {
  const src = new PassThrough();
  const d = new DlFileStreamDecoder(new StreamReader(src), { timeoutMs: DEADLINE_MS });
  src.write(encodeDlDataBlock(Buffer.alloc(n)).subarray(0, 5)); // the head alone
  return { src, d };
}

async function drain(d: DlFileStreamDecoder): Promise<number> {
  const head = await d.readBlockHead();
  assert.equal(head.kind, 'data');
  let got = 0;
  while (d.dataLeft > 0) got += (d.readDataNow() ?? (await d.readData())).length;
  return got;
}

test('a data block taken in pieces has one deadline for the whole block: a trickle is refused', async () => {
  const { src, d } = blockOf(1024);
  const timer = setInterval(() => src.write(Buffer.from([0x41])), 20);
  try {
    await assert.rejects(drain(d), (e) => {
      assert.ok(isMooringError(e, 'PROTOCOL'), String(e));
      assert.match((e as Error).message, /file-stream data too slowly: \d+ of 1024 bytes/);
      return true;
    });
  } finally {
    clearInterval(timer);
    src.destroy();
  }
});

test('a data block taken in pieces: silence is a TIMEOUT, an end is CLOSED, bytes in time all arrive', async () => {
  const quiet = blockOf(100);
  quiet.src.write(Buffer.alloc(10));
  await assert.rejects(drain(quiet.d), (e) => isMooringError(e, 'TIMEOUT'));
  quiet.src.destroy();
  const ended = blockOf(100);
  ended.src.end(Buffer.alloc(10));
  await assert.rejects(drain(ended.d), (e) => isMooringError(e, 'CLOSED'));
  const inTime = blockOf(5000);
  for (let off = 0, i = 1; off < 5000; off += 700, i++)
    setTimeout(() => inTime.src.write(Buffer.alloc(Math.min(700, 5000 - off))), i * 5);
  assert.equal(await drain(inTime.d), 5000);
  inTime.src.destroy();
});
