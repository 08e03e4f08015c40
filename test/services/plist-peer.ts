/**
 * A scripted peer for client tests: a real loopback TCP connection with a PlistConnection on each
 * end. The test plays the device on `peer` with the same codecs, including hostile replies.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { PlistConnection } from '../../src/transport/plist-connection';

export async function withPlistPeer(
  device: (peer: PlistConnection) => Promise<void>,
  host: (conn: PlistConnection) => Promise<void>,
): Promise<void> {
  let peerDone: Promise<void> = Promise.resolve();
  let peerFailure: Error | undefined;
  const peers: PlistConnection[] = [];
  const server = net.createServer((sock) => {
    const peer = new PlistConnection(sock, { readTimeoutMs: 5000 });
    peers.push(peer);
    // Assertions made by the scripted device fail the test; its I/O errors (the host hung up) do not.
    peerDone = device(peer).catch((e: unknown) => {
      if (e instanceof assert.AssertionError) peerFailure = e;
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  const sock = net.connect(port, '127.0.0.1');
  await new Promise((r) => sock.once('connect', r));
  const conn = new PlistConnection(sock, { readTimeoutMs: 5000 });
  try {
    await host(conn);
  } finally {
    conn.close();
    for (const p of peers) p.close();
    await peerDone;
    await new Promise((r) => server.close(r));
  }
  if (peerFailure) throw peerFailure;
}
