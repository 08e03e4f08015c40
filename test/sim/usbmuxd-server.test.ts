/**
 * The simulator's usbmuxd at the wire level: raw sockets speaking both protocol versions, the
 * corner cases usbmuxd defines (BADVERSION, BADCOMMAND, Listen state), hostile requests, and the
 * socket-file and record-file handling.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Duplex } from 'node:stream';
import { encodeXmlPlist } from '../../src/protocol/plist';
import type { PlistDict } from '../../src/protocol/plist/types';
import {
  UsbmuxMessageType,
  buildRequest,
  decodeBinaryDeviceRecord,
  decodePlistMessage,
  encodeBinaryConnectRequest,
  encodeBinaryListenRequest,
  encodePlistMessage,
  encodeUsbmuxHeader,
  encodeUsbmuxMessage,
  readUsbmuxFrame,
  swapPortBytes,
  type UsbmuxFrame,
} from '../../src/protocol/usbmux';
import { UsbmuxdServer } from '../../src/sim/usbmuxd-server';
import { isMooringError } from '../../src/util/errors';
import { StreamReader } from '../../src/util/stream-reader';

const root = mkdtempSync(join(tmpdir(), 'mooring-muxserver-'));
after(() => rmSync(root, { recursive: true, force: true }));

const SERIAL = '00008120001A2B3C4D5E6F70';
let n = 0;

function echo(): Duplex {
  return new Duplex({
    read() {},
    write(chunk, _e, cb) {
      this.push(chunk);
      cb();
    },
  });
}

async function start(connect?: (id: number, port: number) => Duplex | undefined) {
  const dir = join(root, `s${n++}`);
  mkdirSync(dir);
  const ports: number[] = [];
  const server = new UsbmuxdServer({
    address: { kind: 'unix', path: join(dir, 'usbmuxd') },
    pairRecordDir: join(dir, 'lockdown'),
    connect:
      connect ??
      ((_id, port) => {
        ports.push(port);
        return port === 5000 ? echo() : undefined;
      }),
  });
  await server.start();
  return { server, dir, ports, path: join(dir, 'usbmuxd') };
}

/** A raw mux connection. */
async function raw(path: string) {
  const socket = net.createConnection(path);
  await once(socket, 'connect');
  const reader = new StreamReader(socket);
  return {
    socket,
    reader,
    send: (b: Buffer) => socket.write(b),
    frame: (): Promise<UsbmuxFrame> => readUsbmuxFrame(reader, 5000),
    plist: async (): Promise<{ tag: number; dict: PlistDict; version: number }> => {
      const f = await readUsbmuxFrame(reader, 5000);
      assert.equal(f.header.message, UsbmuxMessageType.PLIST);
      return { tag: f.header.tag, version: f.header.version, dict: decodePlistMessage(f.payload) };
    },
    request: async (type: string, extra: PlistDict = {}, tag = 7): Promise<PlistDict> => {
      socket.write(encodePlistMessage(tag, buildRequest(type, extra)));
      const f = await readUsbmuxFrame(reader, 5000);
      assert.equal(f.header.tag, tag);
      assert.equal(f.header.version, 1);
      return decodePlistMessage(f.payload);
    },
    closed: async (): Promise<void> => {
      await assert.rejects(reader.read(1, 5000, 'end'), (e) => isMooringError(e, 'CLOSED'));
    },
  };
}

test('socket file: world-accessible, stale one replaced, live one or a regular file refused', async () => {
  const dir = join(root, 'sockfile');
  mkdirSync(dir);
  const path = join(dir, 'usbmuxd');
  // A socket left behind by a process that died without closing it.
  execFileSync(process.execPath, [
    '-e',
    `require('net').createServer().listen(${JSON.stringify(path)}, () => process.exit(0))`,
  ]);
  assert.ok(statSync(path).isSocket());
  const opts = {
    address: { kind: 'unix', path } as const,
    pairRecordDir: join(dir, 'lockdown'),
    connect: () => undefined,
  };
  const server = new UsbmuxdServer(opts);
  await server.start();
  try {
    assert.equal(statSync(path).mode & 0o777, 0o666);
    await assert.rejects(
      new UsbmuxdServer(opts).start(),
      (e) => isMooringError(e, 'IO') && /another usbmuxd/.test(e.message),
    );
  } finally {
    await server.stop();
  }
  assert.equal(existsSync(path), false);
  writeFileSync(path, 'precious');
  await assert.rejects(
    new UsbmuxdServer(opts).start(),
    (e) => isMooringError(e, 'IO') && /not a socket/.test(e.message),
  );
});

test('plist Connect: PortNumber is ntohs-ed, Result 0 then a raw pipe; 3 and 2 on failure', async () => {
  const { server, path, ports } = await start();
  try {
    const id = server.attach({ serialNumber: SERIAL, connectionType: 'USB' });
    const c = await raw(path);
    // Refused port: Result 3, socket stays in command mode.
    assert.deepEqual(
      await c.request('Connect', { DeviceID: id, PortNumber: swapPortBytes(62078) }),
      { MessageType: 'Result', Number: 3 },
    );
    assert.equal(ports.at(-1), 62078);
    assert.deepEqual(
      await c.request('Connect', { DeviceID: 99, PortNumber: swapPortBytes(5000) }),
      { MessageType: 'Result', Number: 2 },
    );
    assert.deepEqual(await c.request('Connect', { PortNumber: swapPortBytes(5000) }), {
      MessageType: 'Result',
      Number: 2,
    });
    assert.deepEqual(await c.request('Connect', { DeviceID: id }), {
      MessageType: 'Result',
      Number: 1,
    });
    assert.deepEqual(
      await c.request('Connect', { DeviceID: id, PortNumber: swapPortBytes(5000) }),
      { MessageType: 'Result', Number: 0 },
    );
    assert.equal(ports.at(-1), 5000);
    c.send(Buffer.from('raw bytes, no header'));
    assert.equal((await c.reader.read(20, 5000, 'echo')).toString(), 'raw bytes, no header');
    // Unplugging the device cuts its connections.
    server.detach(id);
    await c.closed();
  } finally {
    await server.stop();
  }
});

test('handOver: Connect gives the client socket itself to the device, early bytes first; refusals as before', async () => {
  const dir = join(root, `s${n++}`);
  mkdirSync(dir);
  const taken: net.Socket[] = [];
  const server = new UsbmuxdServer({
    address: { kind: 'unix', path: join(dir, 'usbmuxd') },
    pairRecordDir: join(dir, 'lockdown'),
    connect: () => assert.fail('connect must not be used when handOver is given'),
    handOver: (_id, port) =>
      port === 5000
        ? (sock) => {
            taken.push(sock);
            sock.pipe(sock); // the "device" echoes
          }
        : undefined,
  });
  await server.start();
  try {
    const id = server.attach({ serialNumber: SERIAL, connectionType: 'USB' });
    const c = await raw(join(dir, 'usbmuxd'));
    assert.deepEqual(
      await c.request('Connect', { DeviceID: id, PortNumber: swapPortBytes(62078) }),
      { MessageType: 'Result', Number: 3 },
    );
    // Connect and the first payload bytes in one write: the bytes must not be lost or reordered.
    c.send(
      Buffer.concat([
        encodePlistMessage(
          8,
          buildRequest('Connect', { DeviceID: id, PortNumber: swapPortBytes(5000) }),
        ),
        Buffer.from('early+'),
      ]),
    );
    const f = await c.frame();
    assert.deepEqual(decodePlistMessage(f.payload), { MessageType: 'Result', Number: 0 });
    c.send(Buffer.from('late'));
    assert.equal((await c.reader.read(10, 5000, 'echo')).toString(), 'early+late');
    assert.equal(taken.length, 1);
    assert.ok(taken[0] instanceof net.Socket, 'the device side is the socket itself, no relay');
    server.detach(id);
    await c.closed();
  } finally {
    await server.stop();
  }
});

test('binary protocol: LISTEN gets binary Result and DEVICE_ADD (USB only), CONNECT pipes', async () => {
  const { server, path } = await start();
  try {
    const usb = server.attach({
      serialNumber: SERIAL,
      connectionType: 'USB',
      productId: 0x12a8,
      locationId: 9,
    });
    server.attach({
      serialNumber: 'net',
      connectionType: 'Network',
      networkAddress: { family: 4, address: '127.0.0.3' },
    });
    const l = await raw(path);
    l.send(encodeBinaryListenRequest(3));
    const result = await l.frame();
    assert.deepEqual(result.header, {
      length: 20,
      version: 0,
      message: UsbmuxMessageType.RESULT,
      tag: 3,
    });
    assert.equal(result.payload.readUInt32LE(0), 0);
    const add = await l.frame();
    assert.equal(add.header.message, UsbmuxMessageType.DEVICE_ADD);
    assert.deepEqual(decodeBinaryDeviceRecord(add.payload), {
      deviceId: usb,
      productId: 0x12a8,
      serialNumber: SERIAL,
      locationId: 9,
    });
    server.detach(usb);
    const removed = await l.frame();
    assert.equal(removed.header.message, UsbmuxMessageType.DEVICE_REMOVE);
    assert.equal(removed.payload.readUInt32LE(0), usb);
    // The network device was never announced: no further message is pending.
    assert.equal(l.reader.available, 0);

    const again = server.attach({ serialNumber: SERIAL, connectionType: 'USB' });
    assert.equal((await l.frame()).header.message, UsbmuxMessageType.DEVICE_ADD);
    const c = await raw(path);
    c.send(encodeBinaryConnectRequest(4, again, 5000));
    const r = await c.frame();
    assert.equal(r.header.version, 0);
    assert.equal(r.payload.readUInt32LE(0), 0);
    c.send(Buffer.from('xyz'));
    assert.equal((await c.reader.read(3, 5000, 'echo')).toString(), 'xyz');
    c.socket.destroy();
    l.socket.destroy();
  } finally {
    await server.stop();
  }
});

test('BADVERSION for unknown header versions, BADCOMMAND for unknown commands', async () => {
  const { server, path } = await start();
  try {
    const c = await raw(path);
    // Before any plist message the reply is binary, as usbmuxd's is.
    c.send(
      encodeUsbmuxMessage(
        2,
        UsbmuxMessageType.PLIST,
        11,
        encodeXmlPlist(buildRequest('ListDevices')),
      ),
    );
    const bad = await c.frame();
    assert.deepEqual(bad.header, {
      length: 20,
      version: 0,
      message: UsbmuxMessageType.RESULT,
      tag: 11,
    });
    assert.equal(bad.payload.readUInt32LE(0), 6);
    c.send(encodeUsbmuxMessage(0, 99, 12));
    assert.equal((await c.frame()).payload.readUInt32LE(0), 1);
    // After a plist message, replies are plist.
    assert.deepEqual(await c.request('NoSuchCommand'), { MessageType: 'Result', Number: 1 });
    c.send(
      encodeUsbmuxMessage(
        7,
        UsbmuxMessageType.PLIST,
        13,
        encodeXmlPlist(buildRequest('ListDevices')),
      ),
    );
    const bad2 = await c.plist();
    assert.deepEqual([bad2.tag, bad2.dict], [13, { MessageType: 'Result', Number: 6 }]);
    // The connection still works.
    assert.deepEqual(await c.request('ListDevices'), { DeviceList: [] });
    c.socket.destroy();
  } finally {
    await server.stop();
  }
});

test('a Listen connection takes no more commands; ListListeners shows it', async () => {
  const { server, path } = await start();
  try {
    const l = await raw(path);
    l.send(
      encodePlistMessage(
        1,
        buildRequest(
          'Listen',
          {},
          { progName: 'listener-test', clientVersionString: 'v', bundleId: 'org.test' },
        ),
      ),
    );
    assert.deepEqual((await l.plist()).dict, { MessageType: 'Result', Number: 0 });
    const c = await raw(path);
    const list = await c.request('ListListeners');
    assert.ok(Array.isArray(list.ListenerList));
    assert.equal(list.ListenerList.length, 1);
    const entry = list.ListenerList[0] as PlistDict;
    assert.equal(entry.ProgName, 'listener-test');
    assert.equal(entry.BundleID, 'org.test');
    assert.equal(entry.kLibUSBMuxVersion, 3);
    assert.equal(entry.Blacklisted, false);
    assert.match(String(entry['ID String']), /^\d+-listener-test$/);
    l.send(encodePlistMessage(2, buildRequest('ListDevices')));
    assert.deepEqual((await l.plist()).dict, { MessageType: 'Result', Number: 1 });
    await l.closed();
    assert.deepEqual((await c.request('ListListeners')).ListenerList, []);
    c.socket.destroy();
  } finally {
    await server.stop();
  }
});

test('Network device properties: Linux sockaddr padded to 128, service name, interface index', async () => {
  const { server, path } = await start();
  try {
    const id = server.attach({
      serialNumber: 'x',
      connectionType: 'Network',
      networkAddress: { family: 4, address: '127.0.0.2' },
      escapedFullServiceName: 'aa:bb:cc:dd:ee:ff@fe80::1._apple-mobdev2._tcp.local.',
      interfaceIndex: 4,
    });
    const c = await raw(path);
    const list = (await c.request('ListDevices')).DeviceList as PlistDict[];
    const props = list[0]!.Properties as PlistDict;
    assert.equal(list[0]!.DeviceID, id);
    assert.equal(props.ConnectionType, 'Network');
    assert.ok(Buffer.isBuffer(props.NetworkAddress));
    assert.equal(props.NetworkAddress.length, 128);
    assert.equal(props.NetworkAddress.subarray(0, 8).toString('hex'), '020000007f000002');
    assert.equal(
      props.EscapedFullServiceName,
      'aa:bb:cc:dd:ee:ff@fe80::1._apple-mobdev2._tcp.local.',
    );
    assert.equal(props.InterfaceIndex, 4);
    c.socket.destroy();
    assert.throws(
      () => server.attach({ serialNumber: 'y', connectionType: 'Network' }),
      (e) => isMooringError(e, 'USAGE'),
    );
    assert.throws(
      () => server.attach({ deviceId: id, serialNumber: 'z', connectionType: 'USB' }),
      (e) => isMooringError(e, 'USAGE'),
    );
    assert.equal(server.attach({ deviceId: 40, serialNumber: 'z', connectionType: 'USB' }), 40);
    assert.deepEqual(
      server.attachedDeviceIds.sort((a, b) => a - b),
      [id, 40],
    );
    assert.equal(server.detach(12345), false);
  } finally {
    await server.stop();
  }
});

test('hostile requests drop that client only: oversized, undersized, bad plist, no MessageType', async () => {
  const { server, path } = await start();
  try {
    const attacks = [
      encodeUsbmuxHeader({ length: 2 << 20, version: 1, message: 8, tag: 1 }),
      encodeUsbmuxHeader({ length: 4, version: 1, message: 8, tag: 1 }),
      encodeUsbmuxMessage(1, 8, 1, Buffer.from('<plist><dict><key>')),
      encodeUsbmuxMessage(1, 8, 1, encodeXmlPlist({ NoType: 1 })),
      encodeUsbmuxMessage(1, 8, 1, encodeXmlPlist(['array'])),
      encodeUsbmuxMessage(0, UsbmuxMessageType.CONNECT, 1, Buffer.alloc(3)),
    ];
    for (const attack of attacks) {
      const c = await raw(path);
      c.send(attack);
      await c.closed();
    }
    // Pair-record ids are confined to the directory.
    const c = await raw(path);
    for (const id of ['../../etc/x', 'a/b', '']) {
      assert.deepEqual(await c.request('ReadPairRecord', { PairRecordID: id }), {
        MessageType: 'Result',
        Number: 22,
      });
      assert.deepEqual(await c.request('DeletePairRecord', { PairRecordID: id }), {
        MessageType: 'Result',
        Number: 22,
      });
    }
    assert.deepEqual(await c.request('ReadPairRecord', {}), { MessageType: 'Result', Number: 22 });
    assert.deepEqual(await c.request('SavePairRecord', { PairRecordID: 'abc' }), {
      MessageType: 'Result',
      Number: 22,
    });
    assert.deepEqual(await c.request('ReadPairRecord', { PairRecordID: 'abc' }), {
      MessageType: 'Result',
      Number: 2,
    });
    // The server is still fine for everyone else.
    assert.deepEqual(await c.request('ListDevices'), { DeviceList: [] });
    c.socket.destroy();
  } finally {
    await server.stop();
  }
});

test('TCP: port 0 binds a free port and address reports it', async () => {
  const server = new UsbmuxdServer({
    address: { kind: 'tcp', host: '127.0.0.1', port: 0 },
    pairRecordDir: join(root, 'tcp-lockdown'),
    connect: () => undefined,
  });
  await server.start();
  try {
    const a = server.address;
    assert.equal(a.kind, 'tcp');
    assert.ok(a.kind === 'tcp' && a.port > 0);
    const s = net.createConnection(a.kind === 'tcp' ? a.port : 0, '127.0.0.1');
    await once(s, 'connect');
    s.write(encodePlistMessage(1, buildRequest('ReadBUID')));
    const f = await readUsbmuxFrame(new StreamReader(s), 5000);
    assert.match(String(decodePlistMessage(f.payload).BUID), /^[0-9A-F-]{36}$/);
    s.destroy();
  } finally {
    await server.stop();
  }
});
