import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import {
  MAX_USBMUX_MESSAGE_BYTES,
  USBMUX_HEADER_BYTES,
  decodeUsbmuxHeader,
  encodeUsbmuxHeader,
  encodeUsbmuxMessage,
  readUsbmuxFrame,
} from '../../../src/protocol/usbmux';
import { isMooringError } from '../../../src/util/errors';
import { StreamReader } from '../../../src/util/stream-reader';

test('header is four little-endian u32 in the order length, version, message, tag', () => {
  const b = encodeUsbmuxHeader({ length: 0x11223344, version: 1, message: 8, tag: 0xdeadbeef });
  assert.equal(b.toString('hex'), '44332211' + '01000000' + '08000000' + 'efbeadde');
  assert.deepEqual(
    decodeUsbmuxHeader(encodeUsbmuxHeader({ length: 20, version: 1, message: 8, tag: 7 })),
    {
      length: 20,
      version: 1,
      message: 8,
      tag: 7,
    },
  );
});

test('a message length counts the header', () => {
  const m = encodeUsbmuxMessage(1, 8, 3, Buffer.from('abc'));
  assert.equal(m.length, USBMUX_HEADER_BYTES + 3);
  assert.equal(m.readUInt32LE(0), 19);
  assert.equal(m.subarray(16).toString(), 'abc');
  assert.equal(encodeUsbmuxMessage(0, 3, 1).readUInt32LE(0), 16);
});

test('hostile headers: truncated, shorter than itself, oversized', () => {
  assert.throws(
    () => decodeUsbmuxHeader(Buffer.alloc(15)),
    (e) => isMooringError(e, 'MALFORMED'),
  );
  assert.throws(
    () => decodeUsbmuxHeader(encodeUsbmuxHeader({ length: 15, version: 1, message: 8, tag: 0 })),
    (e) => isMooringError(e, 'MALFORMED'),
  );
  assert.throws(
    () =>
      decodeUsbmuxHeader(
        encodeUsbmuxHeader({
          length: MAX_USBMUX_MESSAGE_BYTES + 1,
          version: 1,
          message: 8,
          tag: 0,
        }),
      ),
    (e) => isMooringError(e, 'FRAME_TOO_LARGE'),
  );
  assert.throws(
    () =>
      decodeUsbmuxHeader(
        encodeUsbmuxHeader({ length: 0xffffffff, version: 1, message: 8, tag: 0 }),
      ),
    (e) => isMooringError(e, 'FRAME_TOO_LARGE'),
  );
  // A custom bound applies too.
  assert.throws(
    () =>
      decodeUsbmuxHeader(encodeUsbmuxHeader({ length: 100, version: 1, message: 8, tag: 0 }), 99),
    (e) => isMooringError(e, 'FRAME_TOO_LARGE'),
  );
});

test('readUsbmuxFrame reads across chunk boundaries and leaves the next message', async () => {
  const s = new PassThrough();
  const r = new StreamReader(s);
  const a = encodeUsbmuxMessage(1, 8, 1, Buffer.from('first'));
  const b = encodeUsbmuxMessage(1, 8, 2, Buffer.from('second'));
  const all = Buffer.concat([a, b]);
  for (let i = 0; i < all.length; i += 3) s.write(all.subarray(i, i + 3));
  const f1 = await readUsbmuxFrame(r, 1000);
  const f2 = await readUsbmuxFrame(r, 1000);
  assert.equal(f1.header.tag, 1);
  assert.equal(f1.payload.toString(), 'first');
  assert.equal(f2.payload.toString(), 'second');
});

test('readUsbmuxFrame: truncated payload is CLOSED, oversized length is refused before waiting', async () => {
  const s = new PassThrough();
  const r = new StreamReader(s);
  s.end(encodeUsbmuxMessage(1, 8, 1, Buffer.from('whole payload')).subarray(0, 20));
  await assert.rejects(readUsbmuxFrame(r, 1000), (e) => isMooringError(e, 'CLOSED'));

  const s2 = new PassThrough();
  s2.write(encodeUsbmuxHeader({ length: 1 << 30, version: 1, message: 8, tag: 0 }));
  await assert.rejects(readUsbmuxFrame(new StreamReader(s2), 1000), (e) =>
    isMooringError(e, 'FRAME_TOO_LARGE'),
  );
});
