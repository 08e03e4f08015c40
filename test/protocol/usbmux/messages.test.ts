import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeBinaryPlist, encodeXmlPlist } from '../../../src/protocol/plist';
import {
  UsbmuxMessageType,
  buildAttached,
  buildDetached,
  buildPaired,
  buildRequest,
  buildResult,
  decodePlistMessage,
  encodeNetworkAddress,
  encodePlistMessage,
  parseAttached,
  parseDeviceList,
  parseMuxEvent,
  resultNumber,
  swapPortBytes,
} from '../../../src/protocol/usbmux';
import { isMooringError } from '../../../src/util/errors';

const USB_PROPS = {
  ConnectionSpeed: 480000000,
  ConnectionType: 'USB',
  DeviceID: 3,
  LocationID: 0x14100000,
  ProductID: 0x12a8,
  SerialNumber: '00008120001A2B3C4D5E6F70',
};

test('a plist message is an XML body behind a version-1, type-8 header', () => {
  const m = encodePlistMessage(9, buildRequest('ListDevices'));
  assert.equal(m.readUInt32LE(0), m.length);
  assert.equal(m.readUInt32LE(4), 1);
  assert.equal(m.readUInt32LE(8), UsbmuxMessageType.PLIST);
  assert.equal(m.readUInt32LE(12), 9);
  const body = m.subarray(16);
  assert.match(body.toString(), /^<\?xml/);
  const dict = decodePlistMessage(body);
  assert.equal(dict.MessageType, 'ListDevices');
  assert.equal(dict.kLibUSBMuxVersion, 3);
  assert.equal(typeof dict.ClientVersionString, 'string');
  assert.equal(typeof dict.ProgName, 'string');
});

test('Connect carries the port byte-swapped: 62078 travels as 32498', () => {
  assert.equal(swapPortBytes(62078), 32498);
  assert.equal(swapPortBytes(32498), 62078);
  assert.equal(swapPortBytes(1), 256);
  const req = decodePlistMessage(
    encodeXmlPlist(buildRequest('Connect', { DeviceID: 1, PortNumber: swapPortBytes(62078) })),
  );
  assert.equal(req.PortNumber, 32498);
});

test('results and events round trip through their parsers', () => {
  assert.equal(resultNumber(buildResult(3)), 3);
  assert.equal(resultNumber({ DeviceList: [] }), undefined);
  assert.equal(resultNumber({ MessageType: 'Result' }), undefined);
  assert.deepEqual(parseMuxEvent(buildDetached(4)), { type: 'detached', deviceId: 4 });
  assert.deepEqual(parseMuxEvent(buildPaired(4)), { type: 'paired', deviceId: 4 });
  assert.equal(parseMuxEvent({ MessageType: 'SomethingNew' }), undefined);
  const ev = parseMuxEvent(buildAttached(3, USB_PROPS));
  assert.ok(ev && ev.type === 'attached');
  assert.equal(ev.device.udid, '00008120-001A2B3C4D5E6F70');
  assert.equal(ev.device.serialNumber, '00008120001A2B3C4D5E6F70');
  assert.equal(ev.device.productId, 0x12a8);
  assert.equal(ev.device.locationId, 0x14100000);
  assert.equal(ev.device.connectionType, 'USB');
});

test('Network devices expose their NetworkAddress; WiFi is read as Network', () => {
  const props = {
    ConnectionType: 'WiFi',
    DeviceID: 7,
    SerialNumber: 'a1b2c3d4e5f60718293a4b5c6d7e8f9012345678',
    NetworkAddress: encodeNetworkAddress({ family: 6, address: 'fe80::1', scopeId: 2 }, 'darwin'),
    EscapedFullServiceName: 'x._apple-mobdev2._tcp.local.',
    InterfaceIndex: 2,
  };
  const d = parseAttached(buildAttached(7, props));
  assert.equal(d.connectionType, 'Network');
  assert.deepEqual(d.networkAddress, { family: 6, address: 'fe80::1', scopeId: 2 });
  assert.equal(d.udid, props.SerialNumber);
});

test('DeviceList: bad entries are skipped with a reason, good ones kept', () => {
  const { devices, skipped } = parseDeviceList({
    DeviceList: [
      buildAttached(3, USB_PROPS),
      'not a dict',
      buildAttached(4, { ...USB_PROPS, DeviceID: 4, SerialNumber: '' }),
      buildAttached(5, { ...USB_PROPS, DeviceID: 5, ConnectionType: 'Bluetooth' }),
      buildAttached(6, { ConnectionType: 'Network', DeviceID: 6, SerialNumber: 'x' }), // no NetworkAddress
      buildAttached(7, { ...USB_PROPS, DeviceID: 7, SerialNumber: 'x'.repeat(1000) }),
      { MessageType: 'Attached', DeviceID: 8 }, // no Properties
      { MessageType: 'Attached', Properties: { ConnectionType: 'USB', SerialNumber: 'abc' } }, // no DeviceID anywhere
    ],
  });
  assert.deepEqual(
    devices.map((d) => d.deviceId),
    [3],
  );
  assert.equal(skipped.length, 7);
  // The outer DeviceID is used when Properties lacks one.
  assert.equal(
    parseAttached({
      MessageType: 'Attached',
      DeviceID: 9,
      Properties: { ConnectionType: 'USB', SerialNumber: 'abc' },
    }).deviceId,
    9,
  );
});

test('a ListDevices answer that is a Result or empty is a PROTOCOL error naming it', () => {
  assert.throws(
    () => parseDeviceList(buildResult(1)),
    (e) => isMooringError(e, 'PROTOCOL') && e.detail === 1,
  );
  assert.throws(
    () => parseDeviceList({}),
    (e) => isMooringError(e, 'PROTOCOL'),
  );
});

test('hostile payloads: not a plist, not a dict, too deep, binary accepted', () => {
  assert.throws(
    () => decodePlistMessage(Buffer.from('<plist><dict><key>x')),
    (e) => isMooringError(e, 'MALFORMED'),
  );
  assert.throws(
    () => decodePlistMessage(Buffer.alloc(0)),
    (e) => isMooringError(e, 'MALFORMED'),
  );
  assert.throws(
    () => decodePlistMessage(encodeXmlPlist(['a'])),
    (e) => isMooringError(e, 'MALFORMED'),
  );
  let deep: unknown = 'leaf';
  for (let i = 0; i < 50; i++) deep = [deep];
  const deepXml = encodeXmlPlist({ x: deep as string });
  assert.throws(
    () => decodePlistMessage(deepXml),
    (e) => isMooringError(e),
  );
  assert.equal(
    decodePlistMessage(encodeBinaryPlist({ MessageType: 'Result', Number: 0 })).MessageType,
    'Result',
  );
  // Events with missing ids are refused rather than reported as device 0.
  assert.throws(
    () => parseMuxEvent({ MessageType: 'Detached' }),
    (e) => isMooringError(e, 'MALFORMED'),
  );
  assert.throws(
    () => parseMuxEvent({ MessageType: 'Paired', DeviceID: -1 }),
    (e) => isMooringError(e, 'MALFORMED'),
  );
});

// H7z fuzz regression: a dict whose own `toString` key is not a function made the error message
// itself throw a TypeError, so one odd DeviceList entry failed the whole list instead of being skipped.
test('DeviceList: an entry whose ConnectionType is a dict with a toString key is skipped, not a TypeError', () => {
  const { devices, skipped } = parseDeviceList({
    DeviceList: [
      buildAttached(3, USB_PROPS),
      buildAttached(4, { ...USB_PROPS, DeviceID: 4, ConnectionType: { toString: '' } }),
    ],
  });
  assert.deepEqual(
    devices.map((d) => d.deviceId),
    [3],
  );
  assert.match(skipped[0] ?? '', /unknown ConnectionType a dict/);
});
