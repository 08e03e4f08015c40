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
