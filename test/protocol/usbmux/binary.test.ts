import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  BINARY_DEVICE_RECORD_BYTES,
  UsbmuxMessageType,
  decodeBinaryConnectRequest,
  decodeBinaryDeviceRecord,
  decodeUsbmuxHeader,
  encodeBinaryConnectRequest,
  encodeBinaryDeviceAdd,
  encodeBinaryDevicePaired,
  encodeBinaryDeviceRemove,
  encodeBinaryListenRequest,
  encodeBinaryResult,
} from '../../../src/protocol/usbmux';
import { isMooringError } from '../../../src/util/errors';

test('RESULT is a version-0 type-1 message with a u32 result', () => {
  const m = encodeBinaryResult(5, 6);
  assert.deepEqual(decodeUsbmuxHeader(m), {
    length: 20,
    version: 0,
    message: UsbmuxMessageType.RESULT,
    tag: 5,
  });
  assert.equal(m.readUInt32LE(16), 6);
});

test('DEVICE_ADD is the 268-byte packed record, serial NUL-terminated', () => {
  const m = encodeBinaryDeviceAdd({
    deviceId: 2,
    productId: 0x12a8,
    serialNumber: 'ABC123',
    locationId: 0x01020304,
  });
  const h = decodeUsbmuxHeader(m);
  assert.equal(h.length, 16 + BINARY_DEVICE_RECORD_BYTES);
  assert.equal(h.message, UsbmuxMessageType.DEVICE_ADD);
  assert.equal(h.tag, 0);
  const p = m.subarray(16);
  assert.equal(p.readUInt32LE(0), 2);
  assert.equal(p.readUInt16LE(4), 0x12a8);
  assert.equal(p.subarray(6, 12).toString(), 'ABC123');
  assert.equal(p[12], 0);
  assert.equal(p.readUInt32LE(264), 0x01020304);
  assert.deepEqual(decodeBinaryDeviceRecord(p), {
    deviceId: 2,
    productId: 0x12a8,
    serialNumber: 'ABC123',
    locationId: 0x01020304,
  });
  // A serial longer than the field is cut, keeping a terminator.
  const long = encodeBinaryDeviceAdd({
    deviceId: 1,
    productId: 0,
    serialNumber: 'x'.repeat(300),
    locationId: 0,
  }).subarray(16);
  assert.equal(decodeBinaryDeviceRecord(long).serialNumber.length, 255);
  assert.throws(
    () => decodeBinaryDeviceRecord(Buffer.alloc(100)),
    (e) => isMooringError(e, 'MALFORMED'),
  );
});

test('DEVICE_REMOVE and DEVICE_PAIRED carry a u32 id', () => {
  assert.equal(encodeBinaryDeviceRemove(9).readUInt32LE(8), UsbmuxMessageType.DEVICE_REMOVE);
  assert.equal(encodeBinaryDeviceRemove(9).readUInt32LE(16), 9);
  assert.equal(encodeBinaryDevicePaired(9).readUInt32LE(8), UsbmuxMessageType.DEVICE_PAIRED);
});

test('CONNECT has the port in network byte order; LISTEN is a bare header', () => {
  const c = encodeBinaryConnectRequest(4, 3, 62078);
  assert.equal(c.length, 24);
  assert.equal(c.subarray(20, 22).toString('hex'), 'f27e');
  assert.deepEqual(decodeBinaryConnectRequest(c.subarray(16)), { deviceId: 3, port: 62078 });
  assert.throws(
    () => decodeBinaryConnectRequest(Buffer.alloc(4)),
    (e) => isMooringError(e, 'MALFORMED'),
  );
  assert.equal(encodeBinaryListenRequest(1).length, 16);
});
