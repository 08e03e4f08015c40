/**
 * UsbmuxdClient against the simulator's UsbmuxdServer over real sockets: a UNIX socket in a temp
 * dir and TCP on 127.0.0.1. Plus the client's behaviour against hostile or absent muxes.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Duplex } from 'node:stream';
import { decodePlist, encodeBinaryPlist, encodeXmlPlist } from '../../src/protocol/plist';
import { encodeUsbmuxHeader, encodePlistMessage, buildResult } from '../../src/protocol/usbmux';
import { UsbmuxdServer } from '../../src/sim/usbmuxd-server';
import type { UsbmuxdAddress } from '../../src/transport/usbmuxd-address';
import {
  UsbmuxdClient,
  type MuxDevice,
  type MuxListener,
} from '../../src/transport/usbmuxd-client';
import { isMooringError } from '../../src/util/errors';
import { StreamReader } from '../../src/util/stream-reader';

const root = mkdtempSync(join(tmpdir(), 'mooring-muxclient-'));
after(() => rmSync(root, { recursive: true, force: true }));

const SERIAL = '00008120001A2B3C4D5E6F70';
const UDID = '00008120-001A2B3C4D5E6F70';
const ECHO_PORT = 7777;
const GREETING_PORT = 7778;

/** A device-side echo stream (what a service port would be). */
function echoStream(greeting?: string): Duplex {
  const d = new Duplex({
    read() {},
    write(chunk, _enc, cb) {
      this.push(chunk);
      cb();
    },
    final(cb) {
      this.push(null);
      cb();
    },
  });
  if (greeting) d.push(greeting);
  return d;
}

let serial = 0;
async function startServer(kind: 'unix' | 'tcp') {
  const dir = join(root, `${kind}-${serial++}`);
  const address: UsbmuxdAddress =
    kind === 'unix'
      ? { kind: 'unix', path: join(dir, 'usbmuxd.sock') }
      : { kind: 'tcp', host: '127.0.0.1', port: 0 };
  const connects: Array<{ deviceId: number; port: number }> = [];
  const server = new UsbmuxdServer({
    address,
    pairRecordDir: join(dir, 'lockdown'),
    connect: async (deviceId, port) => {
      connects.push({ deviceId, port });
      if (port === ECHO_PORT) return echoStream();
      if (port === GREETING_PORT) return echoStream('hello from the device\n');
      return undefined;
    },
  });
  if (kind === 'unix') {
    // mkdir for the socket's directory; the server creates the record dir itself.
    await import('node:fs/promises').then((f) => f.mkdir(dir, { recursive: true }));
  }
  await server.start();
  const client = new UsbmuxdClient({ address: server.address, timeoutMs: 5000 });
  return { server, client, connects, dir };
}

async function nextEvent<T extends unknown[]>(
  l: MuxListener,
  name: 'attached' | 'detached' | 'paired' | 'close',
): Promise<T> {
  return (await once(l, name)) as T;
}

async function readExactly(s: net.Socket, n: number): Promise<Buffer> {
  return new StreamReader(s).read(n, 5000, 'echo');
}

for (const kind of ['unix', 'tcp'] as const) {
  describe(`client ⇄ simulated usbmuxd over ${kind}`, () => {
    test('ListDevices: empty, then USB and Network devices, then after a detach', async () => {
      const { server, client } = await startServer(kind);
      try {
        assert.deepEqual(await client.listDevices(), []);
        const usb = server.attach({
          serialNumber: SERIAL,
          connectionType: 'USB',
          productId: 0x12a8,
          locationId: 0x14100000,
        });
        const wifi = server.attach({
          serialNumber: 'a1b2c3d4e5f60718293a4b5c6d7e8f9012345678',
          connectionType: 'Network',
          networkAddress: { family: 4, address: '127.0.0.2' },
        });
        const list = await client.listDevices();
        assert.equal(list.length, 2);
        const u = list.find((d) => d.deviceId === usb)!;
        assert.equal(u.udid, UDID);
        assert.equal(u.serialNumber, SERIAL);
        assert.equal(u.connectionType, 'USB');
        assert.equal(u.productId, 0x12a8);
        assert.equal(u.locationId, 0x14100000);
        const w = list.find((d) => d.deviceId === wifi)!;
        assert.equal(w.connectionType, 'Network');
        assert.deepEqual(w.networkAddress, { family: 4, address: '127.0.0.2' });
        assert.equal(
          w.properties.EscapedFullServiceName,
          'a1b2c3d4e5f60718293a4b5c6d7e8f9012345678._apple-mobdev2._tcp.local.',
        );
        assert.equal((await client.findDevice(SERIAL))?.deviceId, usb);
        assert.equal((await client.findDevice(UDID))?.deviceId, usb);
        assert.equal(await client.findDevice('nope'), undefined);
        assert.ok(server.detach(usb));
        assert.deepEqual(
          (await client.listDevices()).map((d) => d.deviceId),
          [wifi],
        );
      } finally {
        await server.stop();
      }
    });

    test('Listen: present devices first, then attach, paired, detach; close() ends quietly', async () => {
      const { server, client } = await startServer(kind);
      try {
        const first = server.attach({ serialNumber: SERIAL, connectionType: 'USB' });
        const listener = await client.listen();
        const [present] = await nextEvent<[MuxDevice]>(listener, 'attached');
        assert.equal(present.deviceId, first);
        assert.equal(present.udid, UDID);

        const attachedLater = nextEvent<[MuxDevice]>(listener, 'attached');
        const second = server.attach({
          serialNumber: 'a1b2c3d4e5f60718293a4b5c6d7e8f9012345678',
          connectionType: 'Network',
          networkAddress: { family: 6, address: 'fe80::1', scopeId: 1 },
        });
        const [later] = await attachedLater;
        assert.equal(later.deviceId, second);
        assert.deepEqual(later.networkAddress, { family: 6, address: 'fe80::1', scopeId: 1 });
        assert.deepEqual([...listener.devices.keys()].sort(), [first, second].sort());

        // SavePairRecord with the DeviceID tells listeners the device is paired.
        const paired = nextEvent<[{ deviceId: number }]>(listener, 'paired');
        await client.savePairRecord(UDID, encodeXmlPlist({ HostID: 'H' }), first);
        assert.deepEqual((await paired)[0], { deviceId: first });

        const detached = nextEvent<[{ deviceId: number }]>(listener, 'detached');
        server.detach(first);
        assert.deepEqual((await detached)[0], { deviceId: first });
        assert.deepEqual([...listener.devices.keys()], [second]);

        const closed = nextEvent<[unknown]>(listener, 'close');
        listener.close();
        assert.equal((await closed)[0], undefined);
        assert.ok(listener.closed);
      } finally {
        await server.stop();
      }
    });

    test('Connect: the callback gets the real port, bytes flow both ways, device may speak first', async () => {
      const { server, client, connects } = await startServer(kind);
      try {
        const id = server.attach({ serialNumber: SERIAL, connectionType: 'USB' });
        const pipe = await client.connect(id, ECHO_PORT);
        assert.deepEqual(connects.at(-1), { deviceId: id, port: ECHO_PORT });
        const reader = new StreamReader(pipe);
        const big = Buffer.alloc(3 * 1024 * 1024);
        for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff;
        pipe.write(Buffer.from('ping'));
        assert.equal((await reader.read(4, 5000, 'echo')).toString(), 'ping');
        pipe.write(big);
        assert.ok((await reader.read(big.length, 5000, 'echo')).equals(big));
        pipe.destroy();

        // The device's first bytes may arrive in the same segment as the Result: none lost.
        const greeted = await client.connect(id, GREETING_PORT);
        assert.equal((await readExactly(greeted, 22)).toString(), 'hello from the device\n');
        greeted.destroy();
      } finally {
        await server.stop();
      }
    });

    test('Connect errors: closed port is CONNREFUSED (3), unknown device is BADDEV (2)', async () => {
      const { server, client } = await startServer(kind);
      try {
        const id = server.attach({ serialNumber: SERIAL, connectionType: 'USB' });
        await assert.rejects(
          client.connect(id, 62078),
          (e) =>
            isMooringError(e, 'USBMUXD') &&
            e.detail === 3 &&
            /refused a connection to port 62078/.test(e.message),
        );
        await assert.rejects(
          client.connect(id + 100, ECHO_PORT),
          (e) =>
            isMooringError(e, 'USBMUXD') &&
            e.detail === 2 &&
            /does not know device/.test(e.message),
        );
        await assert.rejects(client.connect(id, 0), (e) => isMooringError(e, 'USAGE'));
        // Still usable afterwards.
        assert.equal((await client.listDevices()).length, 1);
      } finally {
        await server.stop();
      }
    });
  });
}

describe('pair records and BUID through the simulated usbmuxd', () => {
  test('SystemBUID: an upper-case UUID, stable, persisted in SystemConfiguration.plist', async () => {
    const { server, client, dir } = await startServer('unix');
    let buid: string;
    try {
      buid = await client.readBuid();
      assert.match(buid, /^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$/);
      assert.equal(await client.readBuid(), buid);
    } finally {
      await server.stop();
    }
    const config = decodePlist(readFileSync(join(dir, 'lockdown', 'SystemConfiguration.plist')));
    assert.deepEqual(config, { SystemBUID: buid });
    // A new server on the same directory (a simulator restart) hands out the same BUID.
    const again = new UsbmuxdServer({
      address: server.address,
      pairRecordDir: join(dir, 'lockdown'),
      connect: () => undefined,
    });
    await again.start();
    try {
      assert.equal(await new UsbmuxdClient({ address: again.address }).readBuid(), buid);
    } finally {
      await again.stop();
    }
  });

  test('save, read (either UDID spelling), delete; files are XML, 0600, named <UDID>.plist', async () => {
    const { server, client, dir } = await startServer('unix');
    try {
      assert.equal(await client.readPairRecord(UDID), undefined);
      const record = {
        HostID: 'ABC',
        SystemBUID: 'X',
        HostCertificate: Buffer.from('cert'),
        WiFiMACAddress: 'aa:bb',
      };
      // Sent binary; usbmuxd stores XML whatever it got.
      await client.savePairRecord(UDID, encodeBinaryPlist(record));
      const file = join(dir, 'lockdown', `${UDID}.plist`);
      const stored = readFileSync(file);
      assert.match(stored.toString(), /^<\?xml/);
      assert.equal(statSync(file).mode & 0o777, 0o600);
      const got = await client.readPairRecord(UDID);
      assert.ok(got);
      assert.deepEqual(decodePlist(got), record);
      // Hosts disagree about the dash; both spellings find it.
      assert.ok((await client.readPairRecord(SERIAL))?.equals(stored));

      assert.equal(await client.deletePairRecord(UDID), true);
      assert.equal(await client.deletePairRecord(UDID), false);
      assert.equal(await client.readPairRecord(UDID), undefined);
    } finally {
      await server.stop();
    }
  });

  test('invalid records and ids are refused with EINVAL (22), nothing written', async () => {
    const { server, client, dir } = await startServer('unix');
    try {
      await assert.rejects(
        client.savePairRecord(UDID, Buffer.from('definitely not a plist')),
        (e) => isMooringError(e, 'USBMUXD') && e.detail === 22 && /EINVAL/.test(e.message),
      );
      await assert.rejects(
        client.savePairRecord(UDID, encodeXmlPlist(['an', 'array'])),
        (e) => isMooringError(e, 'USBMUXD') && e.detail === 22,
      );
      await assert.rejects(
        client.savePairRecord('../escape', encodeXmlPlist({ a: 1 })),
        (e) => isMooringError(e, 'USBMUXD') && e.detail === 22,
      );
      await assert.rejects(
        client.readPairRecord('../escape'),
        (e) => isMooringError(e, 'USBMUXD') && e.detail === 22,
      );
      await assert.rejects(client.savePairRecord(UDID, Buffer.alloc(0)), (e) =>
        isMooringError(e, 'USAGE'),
      );
      assert.throws(() => statSync(join(dir, 'escape.plist')));
      assert.throws(() => statSync(join(dir, 'lockdown', `${UDID}.plist`)));
    } finally {
      await server.stop();
    }
  });
});

describe('when usbmuxd is absent or misbehaves', () => {
  test('no socket: the message says where and what to do', async () => {
    const client = new UsbmuxdClient({
      address: { kind: 'unix', path: join(root, 'nothing-here') },
    });
    await assert.rejects(client.listDevices(), (e) => {
      assert.ok(isMooringError(e, 'USBMUXD'));
      assert.match(
        e.message,
        /usbmuxd is not running at .*nothing-here: install\/start usbmuxd, or set USBMUXD_SOCKET_ADDRESS/,
      );
      return true;
    });
    await assert.rejects(
      client.listen(),
      (e) => isMooringError(e, 'USBMUXD') && e.detail === 'ENOENT',
    );
  });

  test('closed TCP port: same advice, naming host:port', async () => {
    const probe = net.createServer().listen(0, '127.0.0.1');
    await once(probe, 'listening');
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise((r) => probe.close(r));
    const client = new UsbmuxdClient({ address: { kind: 'tcp', host: '127.0.0.1', port } });
    await assert.rejects(
      client.readBuid(),
      (e) =>
        isMooringError(e, 'USBMUXD') &&
        e.message.includes(`127.0.0.1:${port}`) &&
        e.detail === 'ECONNREFUSED',
    );
  });

  /** A fake mux that answers every request with `reply(requestTag)` (or nothing). */
  async function fakeMux(reply: (tag: number) => Buffer | 'hang up' | undefined) {
    const sockets = new Set<net.Socket>();
    const srv = net.createServer((s) => {
      sockets.add(s);
      s.on('error', () => {});
      s.once('data', (d) => {
        const out = reply(d.readUInt32LE(12));
        if (out === 'hang up') s.destroy();
        else if (out) s.write(out);
      });
    });
    srv.listen(0, '127.0.0.1');
    await once(srv, 'listening');
    const port = (srv.address() as net.AddressInfo).port;
    return {
      client: new UsbmuxdClient({
        address: { kind: 'tcp', host: '127.0.0.1', port },
        timeoutMs: 300,
      }),
      close: async () => {
        for (const s of sockets) s.destroy();
        await new Promise((r) => srv.close(r));
      },
    };
  }

  test('hostile replies become USBMUXD errors, never a crash', async () => {
    const oversized = await fakeMux((tag) =>
      encodeUsbmuxHeader({ length: 64 << 20, version: 1, message: 8, tag }),
    );
    const badPlist = await fakeMux((tag) => {
      const body = Buffer.from('<plist><dict><key>x');
      return Buffer.concat([
        encodeUsbmuxHeader({ length: 16 + body.length, version: 1, message: 8, tag }),
        body,
      ]);
    });
    const hangUp = await fakeMux(() => 'hang up');
    const silent = await fakeMux(() => undefined);
    const wrongAnswer = await fakeMux((tag) => encodePlistMessage(tag, { Surprise: true }));
    const badCommand = await fakeMux((tag) => encodePlistMessage(tag, buildResult(1)));
    // A length under the header's 16 bytes (under 4 once sent appium's splitter into an endless
    // loop that blocked the process: found by test/fuzz/usbmuxd-client).
    const short = await Promise.all(
      [0, 3, 15].map((length) =>
        fakeMux((tag) =>
          Buffer.concat([
            encodeUsbmuxHeader({ length, version: 1, message: 8, tag }),
            Buffer.alloc(64),
          ]),
        ),
      ),
    );
    try {
      for (const op of [
        (c: UsbmuxdClient) => c.listDevices(),
        (c: UsbmuxdClient) => c.readPairRecord(UDID),
        (c: UsbmuxdClient) => c.connect(1, 62078),
      ]) {
        await assert.rejects(op(oversized.client), (e) => isMooringError(e, 'USBMUXD'));
        await assert.rejects(op(badPlist.client), (e) => isMooringError(e, 'USBMUXD'));
        await assert.rejects(
          op(silent.client),
          (e) => isMooringError(e, 'USBMUXD') && /did not answer/.test(e.message),
        );
        await assert.rejects(
          op(hangUp.client),
          (e) => isMooringError(e, 'USBMUXD') && /closed the connection/.test(e.message),
        );
        await assert.rejects(op(wrongAnswer.client), (e) => isMooringError(e, 'USBMUXD'));
        await assert.rejects(
          op(badCommand.client),
          (e) => isMooringError(e, 'USBMUXD') && e.detail === 1,
        );
        for (const f of short) {
          await assert.rejects(
            op(f.client),
            (e) =>
              isMooringError(e, 'USBMUXD') && /shorter than its own 16-byte header/.test(e.message),
          );
        }
      }
      await assert.rejects(oversized.client.savePairRecord(UDID, encodeXmlPlist({ a: 1 })), (e) =>
        isMooringError(e, 'USBMUXD'),
      );
      await assert.rejects(badPlist.client.listen(), (e) => isMooringError(e, 'USBMUXD'));
      await assert.rejects(
        badCommand.client.listen(),
        (e) => isMooringError(e, 'USBMUXD') && e.detail === 1,
      );
      await assert.rejects(
        silent.client.deletePairRecord(UDID),
        (e) => isMooringError(e, 'USBMUXD') && /did not answer/.test(e.message),
      );
      await assert.rejects(hangUp.client.savePairRecord(UDID, encodeXmlPlist({ a: 1 })), (e) =>
        isMooringError(e, 'USBMUXD'),
      );
    } finally {
      await Promise.all(
        [oversized, badPlist, hangUp, silent, wrongAnswer, badCommand, ...short].map((f) =>
          f.close(),
        ),
      );
    }
  });

  test('bytes that arrive in the same write as the Connect Result are not lost', async () => {
    const mux = await fakeMux((tag) =>
      Buffer.concat([encodePlistMessage(tag, buildResult(0)), Buffer.from('DEVICE-FIRST')]),
    );
    try {
      const pipe = await mux.client.connect(1, 62078);
      assert.equal((await readExactly(pipe, 12)).toString(), 'DEVICE-FIRST');
      pipe.destroy();
    } finally {
      await mux.close();
    }
  });

  test('a Listen stream that turns to garbage closes with an error and reports devices gone', async () => {
    let sock: net.Socket | undefined;
    const srv = net.createServer((s) => {
      sock = s;
      s.once('data', (d) => {
        const tag = d.readUInt32LE(12);
        s.write(encodePlistMessage(tag, buildResult(0)));
        s.write(
          encodePlistMessage(0, {
            MessageType: 'Attached',
            DeviceID: 5,
            Properties: { ConnectionType: 'USB', DeviceID: 5, SerialNumber: SERIAL },
          }),
        );
      });
    });
    srv.listen(0, '127.0.0.1');
    await once(srv, 'listening');
    const port = (srv.address() as net.AddressInfo).port;
    try {
      const listener = await new UsbmuxdClient({
        address: { kind: 'tcp', host: '127.0.0.1', port },
      }).listen();
      await nextEvent(listener, 'attached');
      const detached = nextEvent<[{ deviceId: number }]>(listener, 'detached');
      const closed = nextEvent<[unknown]>(listener, 'close');
      sock!.write(encodeUsbmuxHeader({ length: 3, version: 1, message: 8, tag: 0 }));
      assert.deepEqual((await detached)[0], { deviceId: 5 });
      const [err] = await closed;
      assert.ok(isMooringError(err, 'USBMUXD'));
      assert.equal(listener.devices.size, 0);
    } finally {
      sock?.destroy();
      await new Promise((r) => srv.close(r));
    }
  });
});
