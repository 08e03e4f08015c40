import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeNetworkAddress, parseNetworkAddress } from '../../../src/protocol/usbmux';
import { isMooringError } from '../../../src/util/errors';

function sockaddr(hex: string, pad = 0): Buffer {
  const b = Buffer.from(hex.replace(/\s/g, ''), 'hex');
  return Buffer.concat([b, Buffer.alloc(pad)]);
}

test('IPv4 in the three layouts (macOS sa_len+family, Linux, Windows)', () => {
  const tail = '0000 c0a80105 0000000000000000';
  for (const head of ['1002', '0200']) {
    assert.deepEqual(parseNetworkAddress(sockaddr(head + tail, 112)), {
      family: 4,
      address: '192.168.1.5',
    });
  }
});

test('IPv6 in the three layouts, with scope id', () => {
  const body = '0000 00000000 fe800000000000001c2a3bfffe4c5d6e 05000000';
  for (const head of ['1c1e', '0a00', '1700']) {
    assert.deepEqual(parseNetworkAddress(sockaddr(head + body, 100)), {
      family: 6,
      address: 'fe80::1c2a:3bff:fe4c:5d6e',
      scopeId: 5,
    });
  }
  // No scope id when it is zero; RFC 5952 compression of the longest zero run.
  const v6 = sockaddr('0a00 0000 00000000 20010db8000000000000000000000001 00000000');
  assert.deepEqual(parseNetworkAddress(v6), { family: 6, address: '2001:db8::1' });
});

test('encode → parse round trips in every layout and pads to 128 bytes', () => {
  for (const layout of ['linux', 'darwin', 'windows'] as const) {
    const v4 = encodeNetworkAddress({ family: 4, address: '10.0.0.7' }, layout);
    assert.equal(v4.length, 128);
    assert.deepEqual(parseNetworkAddress(v4), { family: 4, address: '10.0.0.7' });
    const v6 = encodeNetworkAddress({ family: 6, address: 'fe80::1:2', scopeId: 3 }, layout);
    assert.deepEqual(parseNetworkAddress(v6), { family: 6, address: 'fe80::1:2', scopeId: 3 });
  }
  // Linux layout bytes exactly as libimobiledevice on Linux reads them (family u16 LE, port zero).
  const linux = encodeNetworkAddress({ family: 4, address: '127.0.0.2' });
  assert.equal(linux.subarray(0, 8).toString('hex'), '020000007f000002');
  assert.equal(
    encodeNetworkAddress({ family: 4, address: '127.0.0.2' }, 'darwin')
      .subarray(0, 2)
      .toString('hex'),
    '1002',
  );
  assert.deepEqual(
    parseNetworkAddress(encodeNetworkAddress({ family: 6, address: '::ffff:1.2.3.4' })),
    {
      family: 6,
      address: '::ffff:102:304',
    },
  );
});

test('hostile NetworkAddress values are MALFORMED', () => {
  const bad = [
    Buffer.alloc(0),
    Buffer.from([0x02]),
    sockaddr('0200 0000 c0a8'), // truncated IPv4
    sockaddr('0a00 0000 00000000 fe80'), // truncated IPv6
    sockaddr('0700 0000 c0a80105'), // unknown family
    Buffer.alloc(128), // all zero: family 0
  ];
  for (const b of bad)
    assert.throws(
      () => parseNetworkAddress(b),
      (e) => isMooringError(e, 'MALFORMED'),
      b.toString('hex'),
    );
  assert.throws(
    () => encodeNetworkAddress({ family: 4, address: '300.1.1.1' }),
    (e) => isMooringError(e, 'USAGE'),
  );
  assert.throws(
    () => encodeNetworkAddress({ family: 6, address: 'not-v6' }),
    (e) => isMooringError(e, 'USAGE'),
  );
});
