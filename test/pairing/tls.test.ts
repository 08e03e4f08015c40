/**
 * The pairing material in real TLS handshakes on 127.0.0.1 (OpenSSL 3 inside node, and the
 * OpenSSL CLI as a stand-in for libimobiledevice's client): the "device" serves DeviceCertificate
 * with its own key, the "host" presents HostCertificate or RootCertificate, and the device side
 * recognises the client certificate by byte equality with the pair record's.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import {
  generateDeviceKeyPair,
  generatePairingCertificates,
  sameCertificate,
  verifyIssuedBy,
} from '../../src/pairing/certificates';

const device = generateDeviceKeyPair();
const certs = generatePairingCertificates(device.publicKeyPkcs1Pem);
const stranger = generatePairingCertificates(device.publicKeyPkcs1Pem, {
  hostKeyPem: certs.hostKeyPem,
});

interface Seen {
  clientCert: Buffer | undefined;
  authorized: boolean;
  protocol: string | null;
  cipher: string;
}

/** A device-side TLS server exactly as the simulator needs it: request, don't require, a client cert. */
async function deviceServer(
  serverCert: string,
  serverKey: string,
  extra: tls.TlsOptions = {},
): Promise<{ port: number; seen: Promise<Seen>; close: () => void }> {
  const server = tls.createServer({
    cert: serverCert,
    key: serverKey,
    requestCert: true,
    rejectUnauthorized: false,
    ...extra,
  });
  const seen = new Promise<Seen>((resolve, reject) => {
    server.once('secureConnection', (s) => {
      const peer = s.getPeerCertificate(true);
      resolve({
        clientCert: peer && 'raw' in peer ? peer.raw : undefined,
        authorized: s.authorized,
        protocol: s.getProtocol(),
        cipher: s.getCipher().name,
      });
      s.end('ok');
    });
    server.once('tlsClientError', reject);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { port: (server.address() as AddressInfo).port, seen, close: () => server.close() };
}

/** The host side: node's defaults plus the client certificate and no server verification. */
async function hostConnect(
  port: number,
  cert: string,
  key: string,
  extra: tls.ConnectionOptions = {},
): Promise<Buffer> {
  const socket = tls.connect({
    host: '127.0.0.1',
    port,
    cert,
    key,
    rejectUnauthorized: false,
    ...extra,
  });
  await once(socket, 'secureConnect');
  const serverCert = socket.getPeerCertificate(true).raw;
  socket.resume();
  await once(socket, 'end');
  socket.destroy();
  return serverCert;
}

test('TLS 1.3 with node defaults: host presents HostCertificate, device recognises it', async (t) => {
  const srv = await deviceServer(certs.deviceCertPem, device.privateKeyPem);
  t.after(srv.close);
  const serverCert = await hostConnect(srv.port, certs.hostCertPem, certs.hostKeyPem);
  const seen = await srv.seen;
  assert.equal(seen.protocol, 'TLSv1.3');
  assert.ok(seen.clientCert);
  assert.equal(sameCertificate(seen.clientCert, certs.hostCertPem), true);
  assert.equal(sameCertificate(seen.clientCert, certs.rootCertPem), false);
  // The host sees exactly the DeviceCertificate it minted, chaining to its root.
  assert.equal(sameCertificate(serverCert, certs.deviceCertPem), true);
  assert.equal(verifyIssuedBy(serverCert, certs.rootCertPem), true);
});

test('TLS 1.3: host presents RootCertificate (what libimobiledevice does)', async (t) => {
  const srv = await deviceServer(certs.deviceCertPem, device.privateKeyPem);
  t.after(srv.close);
  await hostConnect(srv.port, certs.rootCertPem, certs.rootKeyPem);
  const seen = await srv.seen;
  assert.equal(sameCertificate(seen.clientCert!, certs.rootCertPem), true);
  assert.equal(sameCertificate(seen.clientCert!, certs.hostCertPem), false);
});

test('TLS 1.2 (the version to plan for) negotiates ECDHE-RSA with AES-GCM', async (t) => {
  const srv = await deviceServer(certs.deviceCertPem, device.privateKeyPem, {
    maxVersion: 'TLSv1.2',
  });
  t.after(srv.close);
  await hostConnect(srv.port, certs.hostCertPem, certs.hostKeyPem, { maxVersion: 'TLSv1.2' });
  const seen = await srv.seen;
  assert.equal(seen.protocol, 'TLSv1.2');
  assert.match(seen.cipher, /^ECDHE-RSA-AES(128|256)-GCM-SHA(256|384)$/);
  assert.equal(sameCertificate(seen.clientCert!, certs.hostCertPem), true);
});

test('a certificate from another pairing is seen but not recognised', async (t) => {
  const srv = await deviceServer(certs.deviceCertPem, device.privateKeyPem);
  t.after(srv.close);
  await hostConnect(srv.port, stranger.hostCertPem, stranger.hostKeyPem);
  const seen = await srv.seen;
  assert.ok(seen.clientCert);
  assert.equal(sameCertificate(seen.clientCert, certs.hostCertPem), false);
  assert.equal(sameCertificate(seen.clientCert, certs.rootCertPem), false);
  assert.equal(verifyIssuedBy(seen.clientCert, certs.rootCertPem), false);
});

test("OpenSSL's own chain check cannot link empty-DN certs: recognise clients by bytes, not `ca`", async (t) => {
  // With the root as trust anchor, OpenSSL still rejects HostCertificate: subject == issuer
  // (both empty) and no AuthorityKeyIdentifier, so it takes the leaf for self-signed.
  const srv = await deviceServer(certs.deviceCertPem, device.privateKeyPem, {
    ca: certs.rootCertPem,
  });
  t.after(srv.close);
  await hostConnect(srv.port, certs.hostCertPem, certs.hostKeyPem);
  const seen = await srv.seen;
  assert.equal(seen.authorized, false);
  assert.equal(sameCertificate(seen.clientCert!, certs.hostCertPem), true);
});

test('a 1024-bit device key (older devices) still works with node defaults', async (t) => {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
  const small = generatePairingCertificates(publicKey.export({ type: 'pkcs1', format: 'pem' }), {
    hostKeyPem: certs.hostKeyPem,
  });
  const srv = await deviceServer(
    small.deviceCertPem,
    privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  );
  t.after(srv.close);
  const serverCert = await hostConnect(srv.port, small.hostCertPem, small.hostKeyPem);
  assert.equal(sameCertificate(serverCert, small.deviceCertPem), true);
  assert.equal(sameCertificate((await srv.seen).clientCert!, small.hostCertPem), true);
});

test('the OpenSSL CLI as client (TLS 1.2, root cert, as libimobiledevice) completes the handshake', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mooring-tls-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'root.pem'), certs.rootCertPem);
  writeFileSync(join(dir, 'root.key'), certs.rootKeyPem);
  const srv = await deviceServer(certs.deviceCertPem, device.privateKeyPem);
  t.after(srv.close);
  const child = spawn(
    'openssl',
    [
      's_client',
      '-connect',
      `127.0.0.1:${srv.port}`,
      '-tls1_2',
      '-cert',
      join(dir, 'root.pem'),
      '-key',
      join(dir, 'root.key'),
    ],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  // Safety net only (never hang the suite): the exchange itself takes milliseconds.
  const guard = setTimeout(() => child.kill(), 20_000);
  t.after(() => {
    clearTimeout(guard);
    child.kill();
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stdin.end(); // EOF on stdin makes s_client close after the handshake
  const seen = await srv.seen;
  await once(child, 'close');
  assert.equal(seen.protocol, 'TLSv1.2');
  assert.equal(sameCertificate(seen.clientCert!, certs.rootCertPem), true);
  assert.match(out, /Protocol *: TLSv1\.2/);
});
