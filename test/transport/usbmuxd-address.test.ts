import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  defaultUsbmuxdAddress,
  describeUsbmuxdAddress,
  formatUsbmuxdAddress,
  parseUsbmuxdAddress,
  resolveUsbmuxdAddress,
} from '../../src/transport/usbmuxd-address';

const UNIX_DEFAULT = { kind: 'unix', path: '/var/run/usbmuxd' };
const WIN_DEFAULT = { kind: 'tcp', host: '127.0.0.1', port: 27015 };

test('platform defaults', () => {
  assert.deepEqual(defaultUsbmuxdAddress('linux'), UNIX_DEFAULT);
  assert.deepEqual(defaultUsbmuxdAddress('darwin'), UNIX_DEFAULT);
  assert.deepEqual(defaultUsbmuxdAddress('win32'), WIN_DEFAULT);
  assert.deepEqual(resolveUsbmuxdAddress({}, 'linux'), UNIX_DEFAULT);
  assert.deepEqual(resolveUsbmuxdAddress({ USBMUXD_SOCKET_ADDRESS: '' }, 'win32'), WIN_DEFAULT);
});

test('UNIX:<path>, with libusbmuxd case-sensitivity, not on Windows', () => {
  assert.deepEqual(parseUsbmuxdAddress('UNIX:/tmp/sim/usbmuxd.sock', 'linux'), {
    kind: 'unix',
    path: '/tmp/sim/usbmuxd.sock',
  });
  assert.deepEqual(parseUsbmuxdAddress('UNIX:relative:with:colons', 'darwin'), {
    kind: 'unix',
    path: 'relative:with:colons',
  });
  // libusbmuxd only knows the upper-case prefix; 'unix:/x' falls to host:port parsing and fails.
  assert.equal(parseUsbmuxdAddress('unix:/tmp/x', 'linux'), undefined);
  assert.equal(parseUsbmuxdAddress('UNIX:', 'linux'), undefined);
  assert.equal(parseUsbmuxdAddress('UNIX:/tmp/x', 'win32'), undefined);
  assert.deepEqual(
    resolveUsbmuxdAddress({ USBMUXD_SOCKET_ADDRESS: 'UNIX:/tmp/x' }, 'win32'),
    WIN_DEFAULT,
  );
});

test('bare /path (pymobiledevice3 style)', () => {
  assert.deepEqual(parseUsbmuxdAddress('/run/usbmuxd', 'linux'), {
    kind: 'unix',
    path: '/run/usbmuxd',
  });
  assert.deepEqual(parseUsbmuxdAddress('/tmp/a:80', 'linux'), { kind: 'unix', path: '/tmp/a:80' });
  assert.equal(parseUsbmuxdAddress('/run/usbmuxd', 'win32'), undefined);
});

test('host:port takes the port after the LAST colon and needs all of it to be 1..65535', () => {
  assert.deepEqual(parseUsbmuxdAddress('127.0.0.1:27015', 'linux'), {
    kind: 'tcp',
    host: '127.0.0.1',
    port: 27015,
  });
  assert.deepEqual(parseUsbmuxdAddress('localhost:1', 'win32'), {
    kind: 'tcp',
    host: 'localhost',
    port: 1,
  });
  assert.deepEqual(parseUsbmuxdAddress('::1:5000', 'linux'), {
    kind: 'tcp',
    host: '::1',
    port: 5000,
  });
  assert.deepEqual(parseUsbmuxdAddress('h:65535', 'linux'), {
    kind: 'tcp',
    host: 'h',
    port: 65535,
  });
  // strtol accepts leading white space and a '+'.
  assert.deepEqual(parseUsbmuxdAddress('h: +80', 'linux'), { kind: 'tcp', host: 'h', port: 80 });
  for (const bad of [
    'h:0',
    'h:65536',
    'h:-1',
    'h:80x',
    'h:80 ',
    'h:',
    'h',
    ':27015',
    'h:0x50',
    'h:99999999999999999999',
  ]) {
    assert.equal(parseUsbmuxdAddress(bad, 'linux'), undefined, bad);
    assert.deepEqual(
      resolveUsbmuxdAddress({ USBMUXD_SOCKET_ADDRESS: bad }, 'linux'),
      UNIX_DEFAULT,
      bad,
    );
  }
});

test('[v6]:port strips the brackets', () => {
  assert.deepEqual(parseUsbmuxdAddress('[::1]:27015', 'linux'), {
    kind: 'tcp',
    host: '::1',
    port: 27015,
  });
  assert.deepEqual(parseUsbmuxdAddress('[fe80::1%eth0]:9', 'darwin'), {
    kind: 'tcp',
    host: 'fe80::1%eth0',
    port: 9,
  });
  assert.equal(parseUsbmuxdAddress('[]:27015', 'linux'), undefined);
});

test('format gives back a USBMUXD_SOCKET_ADDRESS that parses to the same address', () => {
  const cases = [
    { kind: 'unix', path: '/tmp/s' },
    { kind: 'tcp', host: '127.0.0.1', port: 40000 },
    { kind: 'tcp', host: '::1', port: 40000 },
  ] as const;
  for (const a of cases) assert.deepEqual(parseUsbmuxdAddress(formatUsbmuxdAddress(a), 'linux'), a);
  assert.equal(formatUsbmuxdAddress({ kind: 'tcp', host: '::1', port: 1 }), '[::1]:1');
  assert.equal(
    describeUsbmuxdAddress({ kind: 'unix', path: '/var/run/usbmuxd' }),
    '/var/run/usbmuxd',
  );
  assert.equal(describeUsbmuxdAddress(WIN_DEFAULT as never), '127.0.0.1:27015');
});
