import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { PassThrough } from 'node:stream';
import { StreamReader } from '../../../src/util/stream-reader';
import { isMooringError } from '../../../src/util/errors';
import {
  DlFileCode,
  DlFileStreamDecoder,
  encodeDlDataBlock,
  encodeDlDataBlocks,
  encodeDlErrorBlock,
  encodeDlFile,
  encodeDlPath,
  encodeDlStreamEnd,
  encodeDlSuccessBlock,
  MAX_DL_BLOCK_BYTES,
  MAX_DL_PATH_BYTES,
  NOT_BUFFERED,
} from '../../../src/protocol/device-link';

const code = (c: string) => (e: unknown) => isMooringError(e) && e.code === c;

function decoderFor(bytes: Buffer, end = true): DlFileStreamDecoder {
  const s = new PassThrough();
  if (end) s.end(bytes);
  else s.write(bytes);
  return new DlFileStreamDecoder(new StreamReader(s), { timeoutMs: 1000 });
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

test('encoders produce the documented bytes', () => {
  assert.deepEqual(encodeDlSuccessBlock(), Buffer.from([0, 0, 0, 1, 0]));
  assert.deepEqual(encodeDlStreamEnd(), Buffer.from([0, 0, 0, 0]));
  assert.deepEqual(encodeDlPath('ab'), Buffer.from([0, 0, 0, 2, 0x61, 0x62]));
  assert.deepEqual(
    encodeDlDataBlock(Buffer.from('xyz')),
    Buffer.from([0, 0, 0, 4, 0x0c, 0x78, 0x79, 0x7a]),
  );
  assert.deepEqual(
    encodeDlErrorBlock(DlFileCode.LOCAL_ERROR, 'nope'),
    Buffer.from([0, 0, 0, 5, 6, ...Buffer.from('nope')]),
  );
  const parts = encodeDlFile('p', Buffer.alloc(70_000, 1));
  assert.equal(parts.length, 1 + 3 + 1, 'path, three 32 KiB chunks, success');
  assert.equal(encodeDlFile('empty', Buffer.alloc(0)).length, 2, 'an empty file is path + success');
  assert.throws(() => encodeDlPath(''), code('USAGE'));
  assert.throws(() => encodeDlPath('x'.repeat(MAX_DL_PATH_BYTES + 1)), code('LIMIT'));
});

test('decodes an upload stream: device path, host path, blocks, end marker', async () => {
  const stream = Buffer.concat([
    encodeDlPath('/var/tmp/a'),
    encodeDlPath('U/Snapshot/ab/abcd'),
    encodeDlDataBlock(Buffer.from('hello ')),
    encodeDlDataBlock(Buffer.from('world')),
    encodeDlSuccessBlock(),
    encodeDlPath('/var/tmp/b'),
    encodeDlPath('U/Status.plist'),
    encodeDlDataBlock(Buffer.from('x')),
    encodeDlErrorBlock(DlFileCode.REMOTE_ERROR, 'done-ish'),
    encodeDlStreamEnd(),
  ]);
  const d = decoderFor(stream);
  assert.equal(await d.readPath(), '/var/tmp/a');
  assert.equal(await d.readRequiredPath(), 'U/Snapshot/ab/abcd');
  assert.deepEqual(await d.readBlock(), { kind: 'data', data: Buffer.from('hello ') });
  assert.deepEqual(await d.readBlock(), { kind: 'data', data: Buffer.from('world') });
  assert.deepEqual(await d.readBlock(), { kind: 'success' });
  assert.equal(await d.readPath(), '/var/tmp/b');
  assert.equal(await d.readRequiredPath(), 'U/Status.plist');
  assert.equal((await d.readBlock()).kind, 'data');
  assert.deepEqual(await d.readBlock(), { kind: 'remote-error', message: 'done-ish' });
  assert.equal(await d.readPath(), null);
});

test('decodes a download stream with a missing file (0x06)', async () => {
  const d = decoderFor(
    Buffer.concat([
      encodeDlPath('U/Manifest.plist'),
      encodeDlErrorBlock(DlFileCode.LOCAL_ERROR, 'No such file'),
      encodeDlStreamEnd(),
    ]),
  );
  assert.equal(await d.readPath(), 'U/Manifest.plist');
  assert.deepEqual(await d.readBlock(), { kind: 'local-error', message: 'No such file' });
  assert.equal(await d.readPath(), null);
});

test('hostile: path longer than 4096 is LIMIT before reading it', async () => {
  await assert.rejects(decoderFor(u32(MAX_DL_PATH_BYTES + 1), false).readPath(), code('LIMIT'));
  await assert.rejects(decoderFor(u32(0xffffffff), false).readPath(), code('LIMIT'));
  await assert.rejects(decoderFor(u32(0)).readRequiredPath(), code('MALFORMED'));
  const ok = decoderFor(
    Buffer.concat([u32(MAX_DL_PATH_BYTES), Buffer.alloc(MAX_DL_PATH_BYTES, 0x61)]),
  );
  assert.equal((await ok.readPath())?.length, MAX_DL_PATH_BYTES);
});

test('hostile: invalid UTF-8 or NUL in a path', async () => {
  await assert.rejects(
    decoderFor(Buffer.concat([u32(2), Buffer.from([0xff, 0xfe])])).readPath(),
    code('MALFORMED'),
  );
  await assert.rejects(
    decoderFor(Buffer.concat([u32(3), Buffer.from('a\0b')])).readPath(),
    code('MALFORMED'),
  );
});

test('hostile: oversized block length is refused without waiting for the bytes', async () => {
  await assert.rejects(
    decoderFor(u32(MAX_DL_BLOCK_BYTES + 1), false).readBlock(),
    code('FRAME_TOO_LARGE'),
  );
  await assert.rejects(decoderFor(u32(0xffffffff), false).readBlock(), code('FRAME_TOO_LARGE'));
  const small = new DlFileStreamDecoder(
    new StreamReader(new PassThrough().end(Buffer.concat([u32(11), Buffer.from([0x0c])]))),
    {
      maxBlockBytes: 10,
    },
  );
  await assert.rejects(small.readBlock(), code('FRAME_TOO_LARGE'));
});

test('hostile: unknown codes, zero-length blocks, padded success, long error text', async () => {
  for (const c of [0x01, 0x05, 0x0a, 0x0d, 0xff]) {
    await assert.rejects(
      decoderFor(Buffer.from([0, 0, 0, 1, c])).readBlock(),
      code('MALFORMED'),
      `code ${c}`,
    );
  }
  await assert.rejects(decoderFor(u32(0)).readBlock(), code('MALFORMED'));
  await assert.rejects(decoderFor(Buffer.from([0, 0, 0, 2, 0, 0])).readBlock(), code('MALFORMED'));
  await assert.rejects(
    decoderFor(Buffer.concat([u32(70_000), Buffer.from([0x06])]), false).readBlock(),
    code('LIMIT'),
  );
});

test('hostile: truncated streams end with CLOSED', async () => {
  await assert.rejects(decoderFor(Buffer.from([0, 0])).readPath(), code('CLOSED'));
  await assert.rejects(
    decoderFor(Buffer.concat([u32(10), Buffer.from('abc')])).readPath(),
    code('CLOSED'),
  );
  await assert.rejects(
    decoderFor(Buffer.concat([u32(10), Buffer.from([0x0c]), Buffer.from('abc')])).readBlock(),
    code('CLOSED'),
  );
  await assert.rejects(decoderFor(u32(5)).readBlock(), code('CLOSED'));
});

test('encodeDlDataBlocks: one buffer of blocks no larger than the chunk, decoding to the data', async () => {
  for (const size of [1, 32 * 1024 - 1, 32 * 1024, 32 * 1024 + 1, 1024 * 1024, 1_000_003]) {
    const data = randomBytes(size);
    const d = decoderFor(Buffer.concat([encodeDlDataBlocks(data), encodeDlSuccessBlock()]));
    const parts: Buffer[] = [];
    for (;;) {
      const b = await d.readBlock();
      if (b.kind !== 'data') {
        assert.equal(b.kind, 'success');
        break;
      }
      assert.ok(b.data.length > 0 && b.data.length <= 32 * 1024, `block of ${b.data.length}`);
      parts.push(b.data);
    }
    assert.equal(parts.length, Math.ceil(size / (32 * 1024)));
    assert.ok(Buffer.concat(parts).equals(data), `size ${size}`);
  }
  // The same bytes as the one-block encoder, block by block.
  const small = Buffer.from('abcdefghij');
  assert.deepEqual(
    encodeDlDataBlocks(small, 4),
    Buffer.concat([
      encodeDlDataBlock(small.subarray(0, 4)),
      encodeDlDataBlock(small.subarray(4, 8)),
      encodeDlDataBlock(small.subarray(8)),
    ]),
  );
  assert.equal(encodeDlDataBlocks(Buffer.alloc(0)).length, 0);
  assert.throws(() => encodeDlDataBlocks(small, 0), code('USAGE'));
});

/** A decoder whose reader has already received `bytes` (so the …Now readers can take them). */
async function bufferedDecoder(
  bytes: Buffer,
): Promise<{ d: DlFileStreamDecoder; r: StreamReader }> {
  const s = new PassThrough();
  const r = new StreamReader(s);
  if (bytes.length > 0) {
    s.write(bytes);
    await new Promise((resolve) => setImmediate(resolve));
  }
  assert.equal(r.available, bytes.length);
  return { d: new DlFileStreamDecoder(r, { timeoutMs: 1000 }), r };
}

const UPLOAD = Buffer.concat([
  encodeDlPath('/var/tmp/a'),
  encodeDlPath('U/Snapshot/ab/abcd'),
  encodeDlDataBlock(Buffer.from('hello ')),
  encodeDlDataBlock(Buffer.alloc(0)),
  encodeDlSuccessBlock(),
  encodeDlPath('/var/tmp/b'),
  encodeDlPath('U/Status.plist'),
  encodeDlErrorBlock(DlFileCode.REMOTE_ERROR, 'gone'),
  encodeDlStreamEnd(),
]);
type Step = 'path' | 'required' | 'block';
const UPLOAD_STEPS: Step[] = [
  ...['path', 'required', 'block', 'block', 'block'],
  ...['path', 'required', 'block', 'path'],
] as Step[];

test('the …Now readers decode what the waiting ones do, element by element', async () => {
  const { d, r } = await bufferedDecoder(UPLOAD);
  const got: unknown[] = [];
  for (const step of UPLOAD_STEPS) {
    got.push(
      step === 'path'
        ? d.readPathNow()
        : step === 'required'
          ? d.readRequiredPathNow()
          : d.readBlockNow(),
    );
  }
  assert.deepEqual(got, [
    '/var/tmp/a',
    'U/Snapshot/ab/abcd',
    { kind: 'data', data: Buffer.from('hello ') },
    { kind: 'data', data: Buffer.alloc(0) },
    { kind: 'success' },
    '/var/tmp/b',
    'U/Status.plist',
    { kind: 'remote-error', message: 'gone' },
    null,
  ]);
  assert.equal(r.available, 0);
  assert.equal(d.readPathNow(), NOT_BUFFERED, 'nothing left');
});

test('the …Now readers take an element only once all of it has arrived, and consume nothing before', async () => {
  // Every prefix of the stream: the elements wholly inside it are taken, the next one is
  // NOT_BUFFERED with the reader untouched, and the waiting readers then finish it.
  for (let cut = 0; cut <= UPLOAD.length; cut++) {
    const s = new PassThrough();
    const r = new StreamReader(s);
    if (cut > 0) s.write(UPLOAD.subarray(0, cut));
    await new Promise((resolve) => setImmediate(resolve));
    const d = new DlFileStreamDecoder(r, { timeoutMs: 1000 });
    const got: unknown[] = [];
    let i = 0;
    for (; i < UPLOAD_STEPS.length; i++) {
      const step = UPLOAD_STEPS[i]!;
      const before = r.available;
      const now =
        step === 'path'
          ? d.readPathNow()
          : step === 'required'
            ? d.readRequiredPathNow()
            : d.readBlockNow();
      if (now === NOT_BUFFERED) {
        assert.equal(r.available, before, `cut ${cut}: NOT_BUFFERED consumed bytes`);
        break;
      }
      got.push(now);
    }
    s.end(UPLOAD.subarray(cut));
    for (; i < UPLOAD_STEPS.length; i++) {
      const step = UPLOAD_STEPS[i]!;
      got.push(
        step === 'path'
          ? await d.readPath()
          : step === 'required'
            ? await d.readRequiredPath()
            : await d.readBlock(),
      );
    }
    assert.equal(got.length, UPLOAD_STEPS.length, `cut ${cut}`);
    assert.equal(got[1], 'U/Snapshot/ab/abcd', `cut ${cut}`);
    assert.deepEqual(got[2], { kind: 'data', data: Buffer.from('hello ') }, `cut ${cut}`);
    assert.deepEqual(got[7], { kind: 'remote-error', message: 'gone' }, `cut ${cut}`);
    assert.equal(got[8], null, `cut ${cut}`);
  }
});

test('hostile, without waiting: the …Now readers make the same checks as the waiting ones', async () => {
  const now = async (
    bytes: Buffer,
    read: (d: DlFileStreamDecoder) => unknown,
  ): Promise<unknown> => {
    const { d } = await bufferedDecoder(bytes);
    return read(d);
  };
  const path = (d: DlFileStreamDecoder) => d.readPathNow();
  const block = (d: DlFileStreamDecoder) => d.readBlockNow();
  // Lengths are refused from the 4 bytes alone, before the rest arrives.
  await assert.rejects(now(u32(MAX_DL_PATH_BYTES + 1), path), code('LIMIT'));
  await assert.rejects(now(u32(MAX_DL_BLOCK_BYTES + 1), block), code('FRAME_TOO_LARGE'));
  await assert.rejects(now(u32(0), block), code('MALFORMED'));
  await assert.rejects(
    now(u32(0), (d) => d.readRequiredPathNow()),
    code('MALFORMED'),
  );
  await assert.rejects(
    now(Buffer.concat([u32(2), Buffer.from([0xff, 0xfe])]), path),
    code('MALFORMED'),
  );
  await assert.rejects(now(Buffer.concat([u32(3), Buffer.from('a\0b')]), path), code('MALFORMED'));
  for (const c of [0x01, 0x05, 0x0a, 0x0d, 0xff])
    await assert.rejects(now(Buffer.from([0, 0, 0, 1, c]), block), code('MALFORMED'), `code ${c}`);
  await assert.rejects(now(Buffer.from([0, 0, 0, 2, 0, 0]), block), code('MALFORMED'));
  const longText = Buffer.concat([u32(70_001), Buffer.from([0x06]), Buffer.alloc(70_000, 0x61)]);
  await assert.rejects(now(longText, block), code('LIMIT'));
  // Not whole yet: nothing is decided, the waiting reader decides.
  assert.equal(await now(Buffer.concat([u32(10), Buffer.from('abc')]), path), NOT_BUFFERED);
});

/** A block read as a receiver of large files reads it: its head, then its payload in pieces. */
async function readByPieces(
  d: DlFileStreamDecoder,
  pieces: Buffer[] = [],
): Promise<ReturnType<typeof d.readBlockNow>> {
  let head = d.readBlockHeadNow();
  if (head === NOT_BUFFERED) head = await d.readBlockHead();
  if (head.kind !== 'data') return head;
  const mine: Buffer[] = [];
  while (d.dataLeft > 0) mine.push(d.readDataNow() ?? (await d.readData()));
  pieces.push(...mine);
  assert.equal(d.readDataNow(), undefined, 'nothing past the block');
  return { kind: 'data', data: Buffer.concat(mine, head.length) };
}

test('a data block read by its head and pieces: the same blocks, each byte a view of what arrived', async () => {
  // The stream arrives in chunks of every size from 1 byte up, so blocks span chunks.
  const big = randomBytes(50_000);
  const stream = Buffer.concat([
    encodeDlPath('/var/tmp/a'),
    encodeDlPath('U/Snapshot/ab/abcd'),
    encodeDlDataBlock(big),
    encodeDlDataBlock(Buffer.from('tail')),
    encodeDlDataBlock(Buffer.alloc(0)),
    encodeDlSuccessBlock(),
    encodeDlPath('/var/tmp/b'),
    encodeDlPath('U/Status.plist'),
    encodeDlErrorBlock(DlFileCode.REMOTE_ERROR, 'gone'),
    encodeDlStreamEnd(),
  ]);
  for (const chunkBytes of [1, 7, 4096, 16_384, stream.length]) {
    const s = new PassThrough();
    const d = new DlFileStreamDecoder(new StreamReader(s), { timeoutMs: 1000 });
    // A fresh buffer per chunk (alloc: never the shared pool), as a socket's reads are: the
    // first third there already, the rest arriving, in order, while the reads wait.
    const chunks: Buffer[] = [];
    for (let off = 0; off < stream.length; off += chunkBytes) {
      const chunk = Buffer.alloc(Math.min(chunkBytes, stream.length - off));
      stream.copy(chunk, 0, off);
      chunks.push(chunk);
    }
    const written = new Set<ArrayBufferLike>(chunks.map((c) => c.buffer));
    const early = Math.ceil(chunks.length / 3);
    for (const c of chunks.slice(0, early)) s.write(c);
    void (async () => {
      for (const [i, c] of chunks.slice(early).entries()) {
        if (i % 400 === 0) await new Promise((resolve) => setTimeout(resolve, 1));
        s.write(c);
      }
    })();
    const pieces: Buffer[] = [];
    assert.equal(await d.readPath(), '/var/tmp/a');
    assert.equal(await d.readRequiredPath(), 'U/Snapshot/ab/abcd');
    assert.deepEqual(await readByPieces(d, pieces), { kind: 'data', data: big }, `${chunkBytes}`);
    assert.deepEqual(await readByPieces(d, pieces), { kind: 'data', data: Buffer.from('tail') });
    assert.deepEqual(await readByPieces(d, pieces), { kind: 'data', data: Buffer.alloc(0) });
    assert.deepEqual(await readByPieces(d), { kind: 'success' });
    assert.equal(await d.readPath(), '/var/tmp/b');
    assert.equal(await d.readRequiredPath(), 'U/Status.plist');
    assert.deepEqual(await readByPieces(d), { kind: 'remote-error', message: 'gone' });
    assert.equal(await d.readPath(), null);
    assert.ok(pieces.length >= Math.ceil(big.length / chunkBytes), `${chunkBytes}: in pieces`);
    for (const p of pieces) assert.ok(written.has(p.buffer), `${chunkBytes}: a piece was copied`);
  }
});

test('a data block whose payload is not read yet keeps the next element from being read', async () => {
  const { d, r } = await bufferedDecoder(
    Buffer.concat([encodeDlDataBlock(Buffer.from('abcdef')), encodeDlSuccessBlock()]),
  );
  assert.deepEqual(d.readBlockHeadNow(), { kind: 'data', length: 6 });
  assert.equal(d.dataLeft, 6);
  for (const next of [() => d.readBlockNow(), () => d.readBlockHeadNow(), () => d.readPathNow()])
    assert.throws(next, code('PROTOCOL'));
  await assert.rejects(d.readBlock(), code('PROTOCOL'));
  assert.equal(r.available, 11, 'nothing consumed by the refused reads');
  assert.deepEqual(d.readDataNow(), Buffer.from('abcdef'));
  assert.equal(d.dataLeft, 0);
  await assert.rejects(d.readData(), code('PROTOCOL'), 'no block: nothing to wait for');
  assert.deepEqual(d.readBlockHeadNow(), { kind: 'success' });
});

test('hostile: a block head is checked as a whole block is, from its first 5 bytes', async () => {
  const head = async (bytes: Buffer): Promise<unknown> => {
    const { d } = await bufferedDecoder(bytes);
    return d.readBlockHeadNow();
  };
  await assert.rejects(head(u32(MAX_DL_BLOCK_BYTES + 1)), code('FRAME_TOO_LARGE'));
  await assert.rejects(head(u32(0)), code('MALFORMED'));
  for (const c of [0x01, 0x05, 0x0a, 0x0d, 0xff])
    await assert.rejects(head(Buffer.from([0, 0, 0, 1, c])), code('MALFORMED'), `code ${c}`);
  await assert.rejects(head(Buffer.from([0, 0, 0, 2, 0])), code('MALFORMED'), 'padded success');
  await assert.rejects(head(Buffer.concat([u32(70_001), Buffer.from([0x06])])), code('LIMIT'));
  // A data block's head is whole without its payload; an error block waits for its text.
  assert.deepEqual(await head(Buffer.from([0, 0, 0, 9, 0x0c])), { kind: 'data', length: 8 });
  assert.equal(await head(Buffer.from([0, 0, 0, 3, 0x06, 0x61])), NOT_BUFFERED);
  // The waiting reader makes the same checks.
  const s = new PassThrough();
  const d = new DlFileStreamDecoder(new StreamReader(s), { timeoutMs: 1000 });
  const late = d.readBlockHead();
  setTimeout(() => s.write(Buffer.from([0, 0, 0, 1, 0x0a])), 5);
  await assert.rejects(late, code('MALFORMED'));
});
