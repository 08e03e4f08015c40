/**
 * The simulated device's FileSink (src/sim/backup/sinks.ts): what the host sends lands on disk
 * byte for byte however it is cut into blocks, and with a reference file the sink says whether
 * the download was that file exactly (how the device recognises its own Manifest.db as it
 * arrives) — a change of one byte, a missing or extra byte, or no reference at all is not.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { FileSink } from '../../../src/sim/backup/sinks';
import { tempDirs } from '../../helpers/temp-dirs';

const { tmp, cleanup } = tempDirs('mooring-sinks-');
after(cleanup);

/** Feeds `data` to a fresh sink in blocks of `block` bytes; returns the sink and its file. */
async function receive(
  data: Buffer,
  block: number,
  reference?: string,
): Promise<{ sink: FileSink; file: string }> {
  const file = path.join(tmp(), 'got');
  const sink = new FileSink(file, data.length + 1, reference);
  for (let off = 0; off < data.length; off += block)
    await sink.write(Buffer.from(data.subarray(off, Math.min(data.length, off + block))));
  await sink.done();
  return { sink, file };
}

test('FileSink writes what arrives, in any block size, and knows its reference byte for byte', async () => {
  const ref = path.join(tmp(), 'ref');
  const data = randomBytes(2.5 * 1024 * 1024 + 17); // more than one write of a MiB
  writeFileSync(ref, data);
  for (const block of [32 * 1024, 1000, 7]) {
    const { sink, file } = await receive(block === 7 ? data.subarray(0, 5000) : data, block, ref);
    assert.deepEqual(readFileSync(file), block === 7 ? data.subarray(0, 5000) : data);
    assert.equal(sink.complete, true);
    // The 7-byte run is the reference's first 5,000 bytes only: a prefix is not the file.
    assert.equal(sink.sameAsReference, block !== 7, `block ${block}`);
  }
  // Without a reference nothing is claimed.
  const plain = await receive(data, 32 * 1024);
  assert.equal(plain.sink.sameAsReference, undefined);
  assert.deepEqual(readFileSync(plain.file), data);
});

test('FileSink: one byte changed, one byte more, or no reference file is not the reference', async () => {
  const ref = path.join(tmp(), 'ref');
  const data = randomBytes(3 * 1024 * 1024);
  writeFileSync(ref, data);
  for (const at of [0, 1024 * 1024 + 5, data.length - 1]) {
    const changed = Buffer.from(data);
    changed[at] = changed[at]! ^ 1;
    const { sink, file } = await receive(changed, 32 * 1024, ref);
    assert.equal(sink.sameAsReference, false, `byte ${at}`);
    assert.deepEqual(readFileSync(file), changed);
  }
  const longer = await receive(Buffer.concat([data, Buffer.from([0])]), 32 * 1024, ref);
  assert.equal(longer.sink.sameAsReference, false);
  const missing = await receive(data, 32 * 1024, path.join(tmp(), 'absent'));
  assert.equal(missing.sink.sameAsReference, false);
  assert.deepEqual(readFileSync(missing.file), data);
  // An empty download against an empty reference is that file.
  const emptyRef = path.join(tmp(), 'empty');
  writeFileSync(emptyRef, '');
  const empty = await receive(Buffer.alloc(0), 1, emptyRef);
  assert.equal(empty.sink.sameAsReference, true);
  assert.equal(readFileSync(empty.file).length, 0);
});

test('FileSink.fail removes the partial file and claims nothing', async () => {
  const ref = path.join(tmp(), 'ref');
  writeFileSync(ref, 'abc');
  const file = path.join(tmp(), 'got');
  const sink = new FileSink(file, 10, ref);
  await sink.write(Buffer.from('ab'));
  await sink.fail('host error');
  assert.equal(existsSync(file), false);
  assert.equal(sink.sameAsReference, undefined);
  assert.equal(sink.complete, false);
});
