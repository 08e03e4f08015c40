import assert from 'node:assert/strict';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { before, describe, it } from 'node:test';
import {
  generateDeviceKeyPair,
  generatePairingCertificates,
  pemToDer,
} from '../../src/pairing/certificates';
import {
  acceptTls,
  PortTable,
  socketPair,
  type TlsServerMaterial,
} from '../../src/sim/service-ports';
import { isMooringError } from '../../src/util/errors';

function readAll(s: Duplex): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('end', () => resolve(Buffer.concat(chunks)));
  });
}

describe('socketPair', () => {
  it('carries bytes both ways and passes end-of-stream on', async () => {
    const [a, b] = socketPair();
    const gotB = readAll(b);
    const gotA = readAll(a);
    a.end(Buffer.from('hello'));
    b.end(Buffer.from('world'));
    assert.equal((await gotB).toString(), 'hello');
    assert.equal((await gotA).toString(), 'world');
  });

  it('tears down the other end on destroy, like a reset socket', async () => {
    const [a, b] = socketPair();
    const closed = new Promise((r) => b.once('close', r));
    a.destroy();
    await closed;
    assert.equal(b.destroyed, true);
  });

  it('applies backpressure instead of buffering without bound', async () => {
    const [a, b] = socketPair();
    let ok = true;
    let writes = 0;
    while (ok && writes < 10_000) {
      ok = a.write(Buffer.alloc(64 * 1024));
      writes++;
    }
    assert.equal(ok, false, 'write() must eventually report a full buffer');
    const drained = new Promise((r) => a.once('drain', r));
    b.resume();
    await drained;
    a.destroy();
  });
});

describe('PortTable', () => {
  it('connects USB clients to a listening port, refuses closed ones, and makes service ports one-shot', async () => {
    const table = new PortTable();
    const seen: string[] = [];
    table.listen(62078, (s, t) => {
      seen.push(`lockdown/${t}`);
      s.end();
    });
    assert.ok(table.connectUsb(62078));
    assert.ok(table.connectUsb(62078));
    assert.equal(table.connectUsb(1), undefined);
    const port = await table.openServicePort((s, t) => {
      seen.push(`svc/${t}`);
      s.end();
    });
    assert.ok(port >= 49152);
    assert.ok(table.connectUsb(port));
    assert.equal(table.connectUsb(port), undefined, 'a service port takes one connection');
    assert.deepEqual(seen, ['lockdown/usb', 'lockdown/usb', 'svc/usb']);
    table.closeAll();
  });

  it('opens Wi-Fi service ports as real TCP listeners on the given host', async () => {
    const table = new PortTable();
    const accepted = new Promise<string>((resolve) => {
      void table
        .openServicePort((s, t) => {
          resolve(t);
          s.end();
        }, '127.0.0.1')
        .then((port) => net.connect(port, '127.0.0.1').on('error', () => undefined));
    });
    assert.equal(await accepted, 'wifi');
    table.closeAll();
  });
});

describe('acceptTls', () => {
  let material: TlsServerMaterial;
  let certs: ReturnType<typeof generatePairingCertificates>;
  let foreign: ReturnType<typeof generatePairingCertificates>;
  before(() => {
    const device = generateDeviceKeyPair();
    certs = generatePairingCertificates(device.publicKeyPkcs1Pem);
    foreign = generatePairingCertificates(device.publicKeyPkcs1Pem);
    const ok = [pemToDer(certs.hostCertPem), pemToDer(certs.rootCertPem)];
    material = {
      certPem: certs.deviceCertPem,
      keyPem: device.privateKeyPem,
      acceptClient: (der) => ok.some((c) => c.equals(der)),
    };
  });

  async function handshake(
    clientCert: string,
    clientKey: string,
  ): Promise<{ server: Promise<tls.TLSSocket>; peer: Buffer }> {
    const [hostSide, deviceSide] = socketPair();
    const server = acceptTls(deviceSide, material);
    server.catch(() => undefined);
    const client = tls.connect({
      socket: hostSide,
      cert: clientCert,
      key: clientKey,
      rejectUnauthorized: false,
    });
    client.on('error', () => undefined);
    await new Promise((r) => client.once('secureConnect', r));
    const peer = client.getPeerCertificate().raw;
    return { server, peer };
  }

  it('serves the host-minted device certificate and accepts the root or the host certificate', async () => {
    for (const [cert, key] of [
      [certs.rootCertPem, certs.rootKeyPem],
      [certs.hostCertPem, certs.hostKeyPem],
    ] as const) {
      const { server, peer } = await handshake(cert, key);
      assert.ok(peer.equals(pemToDer(certs.deviceCertPem)));
      const sock = await server;
      assert.equal(sock.encrypted, true);
      sock.destroy();
    }
  });

  it('refuses a client certificate from another pairing', async () => {
    const { server } = await handshake(foreign.hostCertPem, foreign.hostKeyPem);
    await assert.rejects(server, (e) => isMooringError(e, 'TLS'));
  });

  it('fails cleanly when the peer is not speaking TLS', async () => {
    const [hostSide, deviceSide] = socketPair();
    const server = acceptTls(deviceSide, material);
    hostSide.write(Buffer.from('GET / HTTP/1.0\r\n\r\n'));
    await assert.rejects(server, (e) => isMooringError(e, 'TLS') || isMooringError(e, 'CLOSED'));
  });
});
