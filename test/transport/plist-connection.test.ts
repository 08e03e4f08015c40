import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { Duplex } from 'node:stream';
import tls from 'node:tls';
import { PlistConnection } from '../../src/transport/plist-connection';
import {
  decodePlist,
  encodeBinaryPlist,
  PlistReal,
  type PlistDict,
} from '../../src/protocol/plist';
import { isMooringError } from '../../src/util/errors';

interface Cert {
  cert: Buffer;
  key: Buffer;
  der: Buffer;
}

let dir = '';
let server: Cert;
let client: Cert;
let stranger: Cert;

/** A self-signed RSA-2048 certificate with an empty DN, like device pairing certificates. */
function makeCert(name: string): Cert {
  const keyFile = join(dir, `${name}.key`);
  const certFile = join(dir, `${name}.crt`);
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-subj',
      '/',
      '-days',
      '30',
      '-keyout',
      keyFile,
      '-out',
      certFile,
    ],
    { stdio: 'pipe' },
  );
  const cert = readFileSync(certFile);
  return { cert, key: readFileSync(keyFile), der: new X509Certificate(cert).raw };
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'mooring-tls-'));
  server = makeCert('server');
  client = makeCert('client');
  stranger = makeCert('stranger');
});

after(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** A connected TCP socket pair on 127.0.0.1. */
async function socketPair(): Promise<[net.Socket, net.Socket]> {
  const srv = net.createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const { port } = srv.address() as net.AddressInfo;
  const accepted = once(srv, 'connection') as Promise<[net.Socket]>;
  const a = net.connect(port, '127.0.0.1');
  await once(a, 'connect');
  const [b] = await accepted;
  srv.close();
  return [a, b];
}

async function pair(
  opts: ConstructorParameters<typeof PlistConnection>[1] = {},
): Promise<[PlistConnection, PlistConnection]> {
  const [a, b] = await socketPair();
  return [new PlistConnection(a, opts), new PlistConnection(b, opts)];
}

async function rejects(p: Promise<unknown>, code: string): Promise<Error> {
  try {
    await p;
  } catch (e) {
    assert.ok(isMooringError(e), `expected MooringError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    return e;
  }
  assert.fail(`expected ${code}`);
}

test('plaintext exchange in XML and binary, with the length prefix on the wire', async () => {
  const [host, dev] = await pair();
  try {
    await host.send({ Request: 'QueryType', Label: 'mooring' });
    assert.deepEqual(await dev.receiveDict(), { Request: 'QueryType', Label: 'mooring' });
    await dev.send({ Request: 'QueryType', Type: 'com.apple.mobile.lockdown' }, 'binary');
    assert.deepEqual(await host.receive(), {
      Request: 'QueryType',
      Type: 'com.apple.mobile.lockdown',
    });

    // Raw framing: exactly [u32 BE length][XML plist].
    await host.send(['x']);
    const len = (await dev.reader.read(4, 1000)).readUInt32BE(0);
    const body = await dev.reader.read(len, 1000);
    assert.ok(body.toString().startsWith('<?xml'));
    assert.deepEqual(decodePlist(body), ['x']);
  } finally {
    host.close();
    dev.close();
  }
});

test('receiveDict rejects a non-dict message with MALFORMED', async () => {
  const [host, dev] = await pair();
  try {
    await host.send([1, 2]);
    await rejects(dev.receiveDict(), 'MALFORMED');
  } finally {
    host.close();
    dev.close();
  }
});

test('TLS upgrade on both ends, then several messages each way, each delivered exactly once', async () => {
  const [host, dev] = await pair();
  try {
    await host.send({ Request: 'StartSession' });
    assert.deepEqual(await dev.receiveDict(), { Request: 'StartSession' });
    await dev.send({ Request: 'StartSession', EnableSessionSSL: true, SessionID: 'S' });
    assert.equal((await host.receiveDict()).EnableSessionSSL, true);

    let seenClientCert: Buffer | undefined;
    await Promise.all([
      host.upgradeToTlsClient({ cert: client.cert, key: client.key }),
      dev.upgradeToTlsServer({
        cert: server.cert,
        key: server.key,
        requestCert: true,
        verifyClient: (der) => {
          seenClientCert = der;
          return true;
        },
      }),
    ]);
    assert.ok(host.secure && dev.secure);
    assert.deepEqual(seenClientCert, client.der);
    assert.ok(host.stream !== dev.stream);

    // Request/reply pairs: the n-th reply must answer the n-th request (no duplicates, no shifts).
    for (let i = 0; i < 10; i++) {
      await host.send({ Request: 'GetValue', Key: `k${i}` });
      const req = await dev.receiveDict();
      assert.equal(req.Key, `k${i}`);
      await dev.send({ Request: 'GetValue', Key: `k${i}`, Value: i }, i % 2 ? 'binary' : 'xml');
      assert.deepEqual(await host.receiveDict(), { Request: 'GetValue', Key: `k${i}`, Value: i });
    }
    // A burst each way before reading anything.
    for (let i = 0; i < 20; i++) await dev.send({ n: i });
    for (let i = 0; i < 20; i++) await host.send({ m: i });
    for (let i = 0; i < 20; i++) assert.deepEqual(await host.receive(), { n: i });
    for (let i = 0; i < 20; i++) assert.deepEqual(await dev.receive(), { m: i });
    // Nothing extra is pending on either side.
    await rejects(host.receive(50), 'TIMEOUT');
    assert.equal(host.reader.available, 0);
    assert.equal(dev.reader.available, 0);
  } finally {
    host.close();
    dev.close();
  }
});

test('TLS starts correctly when the ClientHello arrives together with plaintext bytes', async () => {
  // The device reads the StartSession request; the host's ClientHello may already be buffered behind it.
  const [a, b] = await socketPair();
  const host = new PlistConnection(a);
  const dev = new PlistConnection(b);
  try {
    await host.send({ Request: 'StartSession' });
    const hostUp = host.upgradeToTlsClient({ cert: client.cert, key: client.key });
    // Let the ClientHello land in the device's plaintext reader before it detaches.
    while (dev.reader.available < 100) await new Promise((r) => setImmediate(r));
    assert.deepEqual(await dev.receiveDict(), { Request: 'StartSession' });
    await Promise.all([
      hostUp,
      dev.upgradeToTlsServer({ cert: server.cert, key: server.key, requestCert: true }),
    ]);
    await host.send({ hello: 'tls' });
    assert.deepEqual(await dev.receive(), { hello: 'tls' });
  } finally {
    host.close();
    dev.close();
  }
});

test('a service upgrade (not downgradable) runs TLS on the socket itself: frames, raw bytes, no way back', async () => {
  const [a, b] = await socketPair();
  const host = new PlistConnection(a);
  const dev = new PlistConnection(b);
  // With the tap, every TLS record would surface as a 'data' event of the raw socket; natively,
  // OpenSSL reads the socket's handle and the raw socket emits nothing.
  let rawDataEvents = 0;
  try {
    await host.send({ Request: 'Hello' });
    assert.deepEqual(await dev.receiveDict(), { Request: 'Hello' });
    await Promise.all([
      host.upgradeToTlsClient({ cert: client.cert, key: client.key }, { downgradable: false }),
      dev.upgradeToTlsServer({ cert: server.cert, key: server.key, requestCert: true }),
    ]);
    a.on('data', () => rawDataEvents++);
    assert.ok(host.secure);
    const blob = randomBytes(5 * 1024 * 1024);
    for (let i = 0; i < 5; i++) {
      await dev.send({ n: i }, 'binary');
      assert.deepEqual(await host.receive(), { n: i });
      await host.send({ m: i }, 'binary');
      assert.deepEqual(await dev.receive(), { m: i });
    }
    const sent = dev.send({ blob }, 'binary');
    const got = await host.receiveDict();
    await sent;
    assert.ok(Buffer.isBuffer(got.blob) && got.blob.equals(blob));
    const payload = randomBytes(300_000);
    await dev.send(['DLMessageUploadFiles']);
    await dev.writeRaw(payload);
    assert.deepEqual(await host.receive(), ['DLMessageUploadFiles']);
    assert.ok((await host.reader.read(payload.length, 5000)).equals(payload));
    assert.equal(rawDataEvents, 0, 'TLS records went through JavaScript streams');
    await rejects(host.downgradeFromTls(100), 'PROTOCOL');
  } finally {
    host.close();
    dev.close();
  }
});

test('a service upgrade over a stream that is not a socket falls back to the tap and works', async () => {
  const [a, b] = await socketPair();
  // A Duplex wrapper (as a tunnel or proxy would hand us) cannot be given to OpenSSL directly.
  const wrapped = new Duplex({
    read() {
      a.resume();
    },
    write(chunk: Buffer, _enc, cb) {
      a.write(chunk, cb);
    },
  });
  a.on('data', (d: Buffer) => {
    if (!wrapped.push(d)) a.pause();
  });
  const host = new PlistConnection(wrapped);
  const dev = new PlistConnection(b);
  try {
    await Promise.all([
      host.upgradeToTlsClient({ cert: client.cert, key: client.key }, { downgradable: false }),
      dev.upgradeToTlsServer({ cert: server.cert, key: server.key, requestCert: true }),
    ]);
    await dev.send({ via: 'tap' });
    assert.deepEqual(await host.receive(), { via: 'tap' });
    await host.send({ back: true });
    assert.deepEqual(await dev.receive(), { back: true });
  } finally {
    host.close();
    dev.close();
    a.destroy();
  }
});

test('a 5 MB frame through TLS in both directions', async () => {
  const [host, dev] = await pair();
  try {
    await Promise.all([
      host.upgradeToTlsClient({ cert: client.cert, key: client.key }),
      dev.upgradeToTlsServer({ cert: server.cert, key: server.key, requestCert: true }),
    ]);
    const blob = randomBytes(5 * 1024 * 1024);
    const sent = host.send({ blob, versions: [new PlistReal(2), new PlistReal(2.1)] }, 'binary');
    const got = (await dev.receiveDict()) as PlistDict;
    await sent;
    assert.ok(Buffer.isBuffer(got.blob) && got.blob.equals(blob));
    assert.deepEqual(got.versions, [2, 2.1]);
    const back = dev.send({ blob }, 'xml');
    const echoed = await host.receiveDict();
    await back;
    assert.ok(Buffer.isBuffer(echoed.blob) && echoed.blob.equals(blob));
  } finally {
    host.close();
    dev.close();
  }
});

test('raw bytes after frames through TLS (DeviceLink file stream style)', async () => {
  const [host, dev] = await pair();
  try {
    await Promise.all([
      host.upgradeToTlsClient({ cert: client.cert, key: client.key }),
      dev.upgradeToTlsServer({ cert: server.cert, key: server.key, requestCert: true }),
    ]);
    const payload = randomBytes(300_000);
    await dev.send(['DLMessageUploadFiles']);
    await dev.writeRaw(payload);
    assert.deepEqual(await host.receive(), ['DLMessageUploadFiles']);
    assert.ok((await host.reader.read(payload.length, 5000)).equals(payload));
  } finally {
    host.close();
    dev.close();
  }
});

test('writeRaw respects backpressure: it waits until the peer reads', async () => {
  const [a, b] = await socketPair();
  b.pause();
  const host = new PlistConnection(a);
  try {
    const chunk = randomBytes(8 * 1024 * 1024);
    let resolved = false;
    const p = host.writeRaw(chunk).then(() => {
      resolved = true;
    });
    // The kernel buffers cannot hold 8 MB, so the write stays pending while the peer does not read.
    await new Promise((r) => setImmediate(r));
    assert.ok(a.writableNeedDrain, 'socket should be waiting for drain');
    assert.equal(resolved, false);
    let received = 0;
    const parts: Buffer[] = [];
    b.on('data', (d: Buffer) => {
      received += d.length;
      parts.push(d);
    });
    b.resume();
    await p;
    assert.equal(resolved, true);
    while (received < chunk.length) await once(b, 'data');
    assert.ok(Buffer.concat(parts).equals(chunk));
  } finally {
    host.close();
    b.destroy();
  }
});

test('oversized length prefix → FRAME_TOO_LARGE before the body is read', async () => {
  const [a, b] = await socketPair();
  const dev = new PlistConnection(b, { maxFrameBytes: 1024 });
  try {
    const header = Buffer.alloc(4);
    header.writeUInt32BE(1025, 0);
    a.write(header); // no body at all: the error must not wait for one
    const e = await rejects(dev.receive(5000), 'FRAME_TOO_LARGE');
    assert.match(e.message, /1025/);
  } finally {
    dev.close();
    a.destroy();
  }
});

test('default frame limit is 32 MiB', async () => {
  const [a, b] = await socketPair();
  const dev = new PlistConnection(b);
  try {
    const header = Buffer.alloc(4);
    header.writeUInt32BE(32 * 1024 * 1024 + 1, 0);
    a.write(header);
    await rejects(dev.receive(5000), 'FRAME_TOO_LARGE');
  } finally {
    dev.close();
    a.destroy();
  }
});

test('zero-length frame → MALFORMED; garbage body → MALFORMED; stream stays usable after a bad body', async () => {
  const [a, b] = await socketPair();
  const dev = new PlistConnection(b);
  try {
    a.write(Buffer.alloc(4));
    await rejects(dev.receive(5000), 'MALFORMED');
    const junk = Buffer.from('<plist><dict><key>x</key></dict></plist>');
    const h = Buffer.alloc(4);
    h.writeUInt32BE(junk.length, 0);
    a.write(Buffer.concat([h, junk]));
    await rejects(dev.receive(5000), 'MALFORMED');
    const good = encodeBinaryPlist({ ok: true });
    h.writeUInt32BE(good.length, 0);
    a.write(Buffer.concat([h, good]));
    assert.deepEqual(await dev.receive(5000), { ok: true });
  } finally {
    dev.close();
    a.destroy();
  }
});

test('no frame within the deadline → TIMEOUT', async () => {
  const [host, dev] = await pair({ readTimeoutMs: 100 });
  try {
    await rejects(dev.receive(), 'TIMEOUT');
    // A late frame is still received afterwards.
    await host.send({ late: true });
    assert.deepEqual(await dev.receive(), { late: true });
  } finally {
    host.close();
    dev.close();
  }
});

test('a deadline passing mid-body gives the connection up: it is out of step', async () => {
  const [a, b] = await socketPair();
  const dev = new PlistConnection(b, { readTimeoutMs: 100 });
  try {
    const h = Buffer.alloc(4);
    h.writeUInt32BE(1000, 0);
    a.write(Buffer.concat([h, Buffer.from('<?xml')])); // length, then only part of the body
    await rejects(dev.receive(), 'TIMEOUT');
    // The rest of that body must never be read as a new frame.
    a.write(Buffer.alloc(995, 0x20));
    await rejects(dev.receive(), 'CLOSED');
  } finally {
    dev.close();
    a.destroy();
  }
});

test('peer closes mid-body → CLOSED (plaintext and TLS)', async () => {
  {
    const [a, b] = await socketPair();
    const dev = new PlistConnection(b);
    const h = Buffer.alloc(4);
    h.writeUInt32BE(100, 0);
    a.end(Buffer.concat([h, Buffer.from('<?xml')]));
    await rejects(dev.receive(5000), 'CLOSED');
    dev.close();
  }
  {
    const [host, dev] = await pair();
    await Promise.all([
      host.upgradeToTlsClient({ cert: client.cert, key: client.key }),
      dev.upgradeToTlsServer({ cert: server.cert, key: server.key, requestCert: true }),
    ]);
    const h = Buffer.alloc(4);
    h.writeUInt32BE(100, 0);
    await host.writeRaw(Buffer.concat([h, Buffer.from('<?xml')]));
    const pending = dev.receive(5000);
    host.close();
    await rejects(pending, 'CLOSED');
    dev.close();
  }
});

test('server verifyClient returning false closes the connection with TLS', async () => {
  const [host, dev] = await pair({ readTimeoutMs: 5000 });
  try {
    const [hostResult, devResult] = await Promise.allSettled([
      host.upgradeToTlsClient({ cert: stranger.cert, key: stranger.key }),
      dev.upgradeToTlsServer({
        cert: server.cert,
        key: server.key,
        requestCert: true,
        verifyClient: (der) => der.equals(client.der),
      }),
    ]);
    assert.equal(devResult.status, 'rejected');
    assert.ok(isMooringError((devResult as PromiseRejectedResult).reason, 'TLS'));
    // The host may finish its handshake first (TLS 1.3), but the connection is then dead.
    if (hostResult.status === 'fulfilled') await rejects(host.receive(5000), 'CLOSED');
  } finally {
    host.close();
    dev.close();
  }
});

test('a client without a certificate is seen by verifyClient as an empty DER', async () => {
  const [host, dev] = await pair({ readTimeoutMs: 5000 });
  try {
    let seen: Buffer | undefined;
    // Host side without a client certificate: use node:tls directly through the tap-less path.
    const hostUp = host.upgradeToTlsClient({ cert: '', key: '' }).catch((e: unknown) => e);
    const devUp = dev
      .upgradeToTlsServer({
        cert: server.cert,
        key: server.key,
        requestCert: true,
        verifyClient: (der) => ((seen = der), false),
      })
      .catch((e: unknown) => e);
    await Promise.all([hostUp, devUp]);
    assert.ok(seen !== undefined && seen.length === 0);
  } finally {
    host.close();
    dev.close();
  }
});

test('a TLS handshake against a plaintext peer fails with TLS, never hangs', async () => {
  const [host, dev] = await pair({ readTimeoutMs: 2000 });
  try {
    const up = host.upgradeToTlsClient({ cert: client.cert, key: client.key });
    // The "device" answers the ClientHello with a plaintext plist frame.
    await dev.reader.read(5, 2000);
    await dev.writeRaw(Buffer.from('\x00\x00\x00\x05hello'));
    const e = await up.then(
      () => assert.fail('handshake should fail'),
      (err: unknown) => err,
    );
    assert.ok(isMooringError(e, 'TLS'), String(e));
  } finally {
    host.close();
    dev.close();
  }
});

test('downgradeFromTls on both ends continues in plaintext on the same socket', async () => {
  const [host, dev] = await pair();
  try {
    await Promise.all([
      host.upgradeToTlsClient({ cert: client.cert, key: client.key }),
      dev.upgradeToTlsServer({ cert: server.cert, key: server.key, requestCert: true }),
    ]);
    await host.send({ Request: 'StopSession' });
    assert.deepEqual(await dev.receiveDict(), { Request: 'StopSession' });
    await dev.send({ Request: 'StopSession', Result: 'Success' });
    assert.deepEqual(await host.receiveDict(), { Request: 'StopSession', Result: 'Success' });
    await Promise.all([host.downgradeFromTls(), dev.downgradeFromTls()]);
    assert.ok(!host.secure && !dev.secure);
    await host.send({ Request: 'QueryType' });
    assert.deepEqual(await dev.receiveDict(), { Request: 'QueryType' });
    await dev.send({ Type: 'com.apple.mobile.lockdown' });
    assert.deepEqual(await host.receiveDict(), { Type: 'com.apple.mobile.lockdown' });
    // And TLS can start again.
    await Promise.all([
      host.upgradeToTlsClient({ cert: client.cert, key: client.key }),
      dev.upgradeToTlsServer({ cert: server.cert, key: server.key, requestCert: true }),
    ]);
    await dev.send({ again: true });
    assert.deepEqual(await host.receive(), { again: true });
  } finally {
    host.close();
    dev.close();
  }
});

test('send on a closed connection → CLOSED', async () => {
  const [host, dev] = await pair();
  host.close();
  dev.close();
  await rejects(host.send({ x: 1 }), 'CLOSED');
});

/** Pass-through to a socket whose writes can be held and later flushed as one TCP write. */
class HoldingPipe extends Duplex {
  hold = false;
  held: Buffer[] = [];
  constructor(private readonly sock: net.Socket) {
    super();
    sock.on('data', (d: Buffer) => this.push(d));
    sock.on('end', () => this.push(null));
  }
  override _read(): void {}
  override _write(chunk: Buffer, _e: BufferEncoding, cb: (e?: Error | null) => void): void {
    if (this.hold) {
      this.held.push(chunk);
      cb();
    } else {
      this.sock.write(chunk, cb);
    }
  }
  override _final(cb: () => void): void {
    cb(); // keep the TCP connection open after TLS shutdown
  }
  flush(extra: Buffer): void {
    this.sock.write(Buffer.concat([...this.held, extra]));
    this.held = [];
    this.hold = false;
  }
}

function frame(v: PlistDict): Buffer {
  const body = encodeBinaryPlist(v);
  const h = Buffer.alloc(4);
  h.writeUInt32BE(body.length, 0);
  return Buffer.concat([h, body]);
}

test('device-side downgrade keeps plaintext that arrives in the same segment as the close_notify', async () => {
  const [a, b] = await socketPair();
  const dev = new PlistConnection(b, { readTimeoutMs: 5000 });
  const pipe = new HoldingPipe(a);
  try {
    const hostTls = tls.connect({
      socket: pipe,
      cert: client.cert,
      key: client.key,
      rejectUnauthorized: false,
    });
    await Promise.all([
      once(hostTls, 'secureConnect'),
      dev.upgradeToTlsServer({ cert: server.cert, key: server.key, requestCert: true }),
    ]);
    hostTls.write(frame({ Request: 'StopSession' }));
    assert.deepEqual(await dev.receiveDict(), { Request: 'StopSession' });
    await dev.send({ Request: 'StopSession', Result: 'Success' });
    const down = dev.downgradeFromTls(10_000);
    // Like libimobiledevice: close_notify, then at once the next request in plaintext.
    pipe.hold = true;
    hostTls.end();
    await new Promise((r) => setImmediate(r));
    assert.ok(pipe.held.length > 0, 'close_notify should have been produced');
    pipe.flush(frame({ Request: 'Goodbye' }));
    await down;
    assert.ok(!dev.secure);
    assert.deepEqual(await dev.receiveDict(), { Request: 'Goodbye' });
  } finally {
    dev.close();
    a.destroy();
  }
});

test('downgrade when the peer skips close_notify and talks plaintext straight away', async () => {
  const [a, b] = await socketPair();
  const dev = new PlistConnection(b, { readTimeoutMs: 5000 });
  const pipe = new HoldingPipe(a);
  try {
    const hostTls = tls.connect({
      socket: pipe,
      cert: client.cert,
      key: client.key,
      rejectUnauthorized: false,
    });
    await Promise.all([
      once(hostTls, 'secureConnect'),
      dev.upgradeToTlsServer({ cert: server.cert, key: server.key, requestCert: true }),
    ]);
    hostTls.on('error', () => undefined);
    const down = dev.downgradeFromTls(60_000); // must not need the grace period
    a.write(frame({ Request: 'QueryType' }));
    await down;
    assert.deepEqual(await dev.receiveDict(), { Request: 'QueryType' });
  } finally {
    dev.close();
    a.destroy();
  }
});

test('downgrade gives up waiting after the grace period when the peer stays silent', async () => {
  const [host, dev] = await pair();
  try {
    await Promise.all([
      host.upgradeToTlsClient({ cert: client.cert, key: client.key }),
      dev.upgradeToTlsServer({ cert: server.cert, key: server.key, requestCert: true }),
    ]);
    // The host never calls downgrade: the device proceeds after its grace period anyway.
    await dev.downgradeFromTls(50);
    assert.ok(!dev.secure);
    host.close();
    await rejects(dev.receive(5000), 'CLOSED');
  } finally {
    host.close();
    dev.close();
  }
});

test('downgrade after the peer hung up: later reads report CLOSED, not TIMEOUT', async () => {
  const [host, dev] = await pair();
  try {
    await Promise.all([
      host.upgradeToTlsClient({ cert: client.cert, key: client.key }),
      dev.upgradeToTlsServer({ cert: server.cert, key: server.key, requestCert: true }),
    ]);
    host.close();
    await dev.downgradeFromTls(10_000);
    await rejects(dev.receive(10_000), 'CLOSED');
  } finally {
    dev.close();
  }
});

test('concurrent sends and receives keep frame order and boundaries, without listener leaks', async () => {
  const [a, b] = await socketPair();
  b.pause();
  const host = new PlistConnection(a);
  const dev = new PlistConnection(b);
  const warnings: Error[] = [];
  const onWarning = (w: Error): void => void warnings.push(w);
  process.on('warning', onWarning);
  try {
    const big = randomBytes(600_000); // above the single-write threshold: header and body written apart
    const sends = Array.from({ length: 40 }, (_, i) =>
      host.send(i % 4 === 0 ? { i, big } : { i }, i % 2 ? 'binary' : 'xml'),
    );
    const receives = Array.from({ length: 40 }, () => dev.receiveDict(10_000));
    const got = await Promise.all(receives);
    await Promise.all(sends);
    got.forEach((m, i) => {
      assert.equal(m.i, i);
      if (i % 4 === 0) assert.ok(Buffer.isBuffer(m.big) && m.big.equals(big));
    });
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(
      warnings.map((w) => w.name),
      [],
    );
  } finally {
    process.off('warning', onWarning);
    host.close();
    dev.close();
  }
});

test('after FRAME_TOO_LARGE the connection is closed; later calls fail with CLOSED', async () => {
  const [a, b] = await socketPair();
  const dev = new PlistConnection(b, { maxFrameBytes: 10 });
  try {
    a.write(Buffer.from([0, 0, 1, 0]));
    await rejects(dev.receive(5000), 'FRAME_TOO_LARGE');
    await rejects(dev.receive(5000), 'CLOSED');
    await rejects(dev.send({ x: 1 }), 'CLOSED');
  } finally {
    dev.close();
    a.destroy();
  }
});

test('a verifyClient that throws rejects the client with TLS and keeps the cause', async () => {
  const [host, dev] = await pair({ readTimeoutMs: 5000 });
  try {
    const hostUp = host
      .upgradeToTlsClient({ cert: client.cert, key: client.key })
      .catch((e: unknown) => e);
    const e = await rejects(
      dev.upgradeToTlsServer({
        cert: server.cert,
        key: server.key,
        requestCert: true,
        verifyClient: () => {
          throw new Error('pair record store unreadable');
        },
      }),
      'TLS',
    );
    assert.match(e.message, /pair record store unreadable/);
    await hostUp;
  } finally {
    host.close();
    dev.close();
  }
});
