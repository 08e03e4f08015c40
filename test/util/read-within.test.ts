import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { once } from 'node:events';
import { BodyWithin, readWithin } from '../../src/util/read-within';
import { isMooringError } from '../../src/util/errors';
import { StreamReader } from '../../src/util/stream-reader';

/** Holds the thread, as a loaded machine does between two turns of the event loop. */
function busyFor(ms: number): void {
  const until = Date.now() + ms;
  while (Date.now() < until);
}

async function endedAfter(prefix: Buffer): Promise<StreamReader> {
  const s = new PassThrough();
  const reader = new StreamReader(s);
  s.end(prefix);
  await once(s, 'end'); // the reader's own 'end' listener came first, so it has seen it
  assert.equal(reader.available, prefix.length);
  return reader;
}

test('a body whose peer hung up is CLOSED, even when its deadline passed before we looked', async () => {
  const reader = await endedAfter(Buffer.from('abc'));
  const body = new BodyWithin(reader, 10, 5, 'a body');
  assert.equal(body.takeNow()?.toString(), 'abc');
  busyFor(20); // the 5 ms deadline is long gone when take() runs
  await assert.rejects(body.take(), (e: unknown) => {
    assert.ok(isMooringError(e, 'CLOSED'), String(e));
    return true;
  });
});

test('readWithin: a peer that hung up mid-body is CLOSED; one that went quiet is TIMEOUT', async () => {
  const ended = await endedAfter(Buffer.from('abc'));
  await assert.rejects(readWithin(ended, 10, 5, 'a body'), (e: unknown) =>
    isMooringError(e, 'CLOSED'),
  );
  const open = new PassThrough();
  const quiet = new StreamReader(open);
  open.write(Buffer.from('abc'));
  await assert.rejects(readWithin(quiet, 10, 5, 'a body'), (e: unknown) => {
    assert.ok(isMooringError(e, 'TIMEOUT'), String(e));
    assert.match((e as Error).message, /3 of 10 bytes/);
    return true;
  });
  open.destroy();
});

test('readWithin into a buffer with room: the pieces, as they come, are copied to its start; without room, joined', async () => {
  const body = Buffer.from(Array.from({ length: 5000 }, (_, i) => i % 251));
  const pieces = [body.subarray(0, 1000), body.subarray(1000, 1001), body.subarray(1001)];
  const fed = async (into?: Buffer): Promise<Buffer> => {
    const s = new PassThrough();
    const reader = new StreamReader(s);
    s.write(pieces[0]);
    const read = readWithin(reader, body.length, 5000, 'a body', into);
    for (const p of pieces.slice(1)) {
      await new Promise((r) => setImmediate(r));
      s.write(p);
    }
    const got = await read;
    s.destroy();
    return got;
  };
  const room = Buffer.alloc(8000, 0xff);
  const got = await fed(room);
  assert.equal(got.buffer, room.buffer, 'a view of the room given');
  assert.equal(got.byteOffset, room.byteOffset);
  assert.deepEqual(got, body);
  assert.equal(room[body.length], 0xff, 'nothing past the body');
  const small = Buffer.alloc(100);
  const joined = await fed(small);
  assert.notEqual(joined.buffer, small.buffer);
  assert.deepEqual(joined, body);
});

test('readWithin into a buffer: the same CLOSED and TIMEOUT', async () => {
  const room = Buffer.alloc(64);
  const ended = await endedAfter(Buffer.from('abc'));
  await assert.rejects(readWithin(ended, 10, 5, 'a body', room), (e: unknown) =>
    isMooringError(e, 'CLOSED'),
  );
  const open = new PassThrough();
  const quiet = new StreamReader(open);
  open.write(Buffer.from('abc'));
  await assert.rejects(readWithin(quiet, 10, 5, 'a body', room), (e: unknown) => {
    assert.ok(isMooringError(e, 'TIMEOUT'), String(e));
    assert.match((e as Error).message, /3 of 10 bytes/);
    return true;
  });
  open.destroy();
});
