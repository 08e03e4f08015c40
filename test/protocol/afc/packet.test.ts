import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { StreamReader } from '../../../src/util/stream-reader';
import { isMooringError } from '../../../src/util/errors';
import {
  AFC_HEADER_BYTES,
  AfcOp,
  afcOpName,
  afcStatusMessage,
  decodeAfcHeader,
  decodeAfcPacket,
  decodeAfcPath,
  decodeKeyValueList,
  decodeU64,
  encodeAfcPacket,
  encodeAfcPath,
  encodeKeyValueList,
  encodeU64s,
  MAX_AFC_PATH_BYTES,
  readAfcPacket,
} from '../../../src/protocol/afc';

function code(c: string) {
  return (e: unknown) => isMooringError(e) && e.code === c;
}

test('encodes the header exactly as the wire format says', () => {
  const pkt = encodeAfcPacket({
    packetNum: 7,
    operation: AfcOp.FILE_WRITE,
    headerData: encodeU64s(3),
    payload: Buffer.from('hello'),
  });
  assert.equal(pkt.subarray(0, 8).toString('ascii'), 'CFA6LPAA');
  assert.equal(pkt.readBigUInt64LE(8), 40n + 8n + 5n);
  assert.equal(pkt.readBigUInt64LE(16), 48n);
  assert.equal(pkt.readBigUInt64LE(24), 7n);
  assert.equal(pkt.readBigUInt64LE(32), 0x10n);
  const back = decodeAfcPacket(pkt);
  assert.equal(back.packetNum, 7);
  assert.equal(back.operation, AfcOp.FILE_WRITE);
  assert.equal(decodeU64(back.headerData, 0, 'handle'), 3);
  assert.equal(back.payload.toString(), 'hello');
  assert.equal(back.data.length, 13);
});

test('an empty DATA packet is a valid 40-byte packet', () => {
  const pkt = encodeAfcPacket({ packetNum: 1, operation: AfcOp.DATA });
  assert.equal(pkt.length, AFC_HEADER_BYTES);
  assert.equal(decodeAfcPacket(pkt).data.length, 0);
});

test('reads packets from a stream across chunk boundaries', async () => {
  const s = new PassThrough();
  const reader = new StreamReader(s);
  const a = encodeAfcPacket({ packetNum: 1, operation: AfcOp.STATUS, headerData: encodeU64s(0) });
  const b = encodeAfcPacket({ packetNum: 2, operation: AfcOp.DATA, payload: Buffer.from('xyz') });
  const all = Buffer.concat([a, b]);
  for (let i = 0; i < all.length; i += 7) s.write(all.subarray(i, i + 7));
  const p1 = await readAfcPacket(reader, { timeoutMs: 1000 });
  const p2 = await readAfcPacket(reader, { timeoutMs: 1000 });
  assert.equal(p1.operation, AfcOp.STATUS);
  assert.equal(decodeU64(p1.data, 0, 'status'), 0);
  assert.equal(p2.packetNum, 2);
  assert.equal(p2.data.toString(), 'xyz');
});

test('hostile: bad magic, short lengths, inverted lengths', () => {
  const good = encodeAfcPacket({ packetNum: 1, operation: 1, headerData: encodeU64s(0) });
  const badMagic = Buffer.from(good);
  badMagic.write('XXXXXXXX', 0, 'ascii');
  assert.throws(() => decodeAfcHeader(badMagic), code('MALFORMED'));
  const shortThis = Buffer.from(good);
  shortThis.writeBigUInt64LE(10n, 16);
  assert.throws(() => decodeAfcHeader(shortThis), code('MALFORMED'));
  const inverted = Buffer.from(good);
  inverted.writeBigUInt64LE(44n, 8); // entire < this (48)
  assert.throws(() => decodeAfcHeader(inverted), code('MALFORMED'));
  assert.throws(() => decodeAfcHeader(good.subarray(0, 39)), code('MALFORMED'));
});

test('hostile: oversized entire_length is refused before reading the body', async () => {
  const hdr = encodeAfcPacket({ packetNum: 1, operation: AfcOp.DATA });
  hdr.writeBigUInt64LE(0xffffffffffffffffn, 8);
  assert.throws(() => decodeAfcHeader(hdr), code('FRAME_TOO_LARGE'));
  const hdr2 = encodeAfcPacket({ packetNum: 1, operation: AfcOp.DATA });
  hdr2.writeBigUInt64LE(2000n, 8);
  assert.throws(() => decodeAfcHeader(hdr2, 1024), code('FRAME_TOO_LARGE'));
  const s = new PassThrough();
  s.end(hdr);
  await assert.rejects(
    readAfcPacket(new StreamReader(s), { timeoutMs: 1000 }),
    code('FRAME_TOO_LARGE'),
  );
});

test('hostile: packet number beyond 2^53 is malformed', () => {
  const pkt = encodeAfcPacket({ packetNum: 1, operation: AfcOp.DATA });
  pkt.writeBigUInt64LE(1n << 60n, 24);
  assert.throws(() => decodeAfcHeader(pkt), code('MALFORMED'));
});

test('hostile: truncated packet on a stream is CLOSED, not a hang', async () => {
  const pkt = encodeAfcPacket({ packetNum: 1, operation: AfcOp.DATA, payload: Buffer.alloc(100) });
  const s = new PassThrough();
  s.end(pkt.subarray(0, 90));
  await assert.rejects(readAfcPacket(new StreamReader(s), { timeoutMs: 1000 }), code('CLOSED'));
  assert.throws(() => decodeAfcPacket(pkt.subarray(0, 90)), code('CLOSED'));
  assert.throws(() => decodeAfcPacket(Buffer.concat([pkt, Buffer.alloc(1)])), code('MALFORMED'));
});

test('paths: NUL terminated, bounded, NUL inside refused', () => {
  assert.deepEqual(encodeAfcPath('/a'), Buffer.from('/a\0'));
  assert.throws(() => encodeAfcPath('a\0b'), code('USAGE'));
  assert.throws(() => encodeAfcPath('x'.repeat(MAX_AFC_PATH_BYTES + 1)), code('LIMIT'));
  assert.equal(encodeAfcPath('x'.repeat(MAX_AFC_PATH_BYTES)).length, MAX_AFC_PATH_BYTES + 1);
  const mode = encodeU64s(2);
  const body = Buffer.concat([mode, encodeAfcPath('/com.apple.itunes.lock_sync')]);
  assert.equal(decodeU64(body, 0, 'mode'), 2);
  assert.deepEqual(decodeAfcPath(body, 8), {
    path: '/com.apple.itunes.lock_sync',
    end: body.length,
  });
  assert.equal(decodeAfcPath(Buffer.from('/no-terminator')).path, '/no-terminator');
  assert.throws(() => decodeAfcPath(Buffer.alloc(MAX_AFC_PATH_BYTES + 1, 0x41)), code('LIMIT'));
});

test('u64 decoding is bounds-checked', () => {
  assert.throws(() => decodeU64(Buffer.alloc(7), 0, 'handle'), code('MALFORMED'));
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(1n << 63n);
  assert.throws(() => decodeU64(b, 0, 'handle'), code('MALFORMED'));
  assert.throws(() => encodeU64s(-1), code('USAGE'));
});

test('key/value lists round-trip and reject malformed input', () => {
  const kv = { st_size: '12', st_ifmt: 'S_IFREG', st_mtime: '1700000000000000000' };
  const buf = encodeKeyValueList(kv);
  assert.deepEqual({ ...decodeKeyValueList(buf) }, kv);
  assert.deepEqual({ ...decodeKeyValueList(Buffer.alloc(0)) }, {});
  assert.throws(() => decodeKeyValueList(Buffer.from('a\0b')), code('MALFORMED'));
  assert.throws(() => decodeKeyValueList(Buffer.from('a\0b\0c\0')), code('MALFORMED'));
  const many = Buffer.from('k\0v\0'.repeat(300));
  assert.throws(() => decodeKeyValueList(many), code('LIMIT'));
  // __proto__ as a key must not pollute anything
  const proto = decodeKeyValueList(Buffer.from('__proto__\0x\0'));
  assert.equal(proto['__proto__'], 'x');
  assert.equal(({} as Record<string, unknown>).x, undefined);
});

test('status and op names for messages', () => {
  assert.equal(afcStatusMessage(19), 'operation would block (19)');
  assert.equal(afcStatusMessage(99), 'AFC status 99');
  assert.equal(afcOpName(0x1b), 'FILE_LOCK');
  assert.equal(afcOpName(0x99), 'op 0x99');
});

// H7z fuzz regression: the largest reply body of NULs used to be split into 16 Mi strings before
// the entry bound was checked (heap exhaustion; see test/fuzz/bounded-memory.test.ts). The bound
// is now checked while counting, before any string is made.
test('key/value list: a 16 MiB run of NULs is refused by counting, before splitting', () => {
  assert.throws(
    () => decodeKeyValueList(Buffer.alloc(16 * 1024 * 1024)),
    (e: unknown) => isMooringError(e, 'LIMIT') && /has more than 256 entries/.test(e.message),
  );
  const exactlyMax = Buffer.from('k\0v\0'.repeat(256));
  assert.equal(Object.keys(decodeKeyValueList(exactlyMax)).length, 1);
  assert.throws(
    () => decodeKeyValueList(Buffer.concat([exactlyMax, Buffer.from('x\0y\0')])),
    code('LIMIT'),
  );
});
