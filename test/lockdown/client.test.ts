/** LockdownClient's reply checks against a scripted lockdownd (the real one is in against-sim). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isMooringError } from '../../src/util/errors';
import { LockdownClient } from '../../src/lockdown/client';
import { withPlistPeer } from '../services/plist-peer';

const code = (c: string, detail?: string) => (e: unknown) =>
  isMooringError(e, c as never) && (detail === undefined || e.detail === detail);

test('requests carry Label and Request; Value is returned', async () => {
  await withPlistPeer(
    async (peer) => {
      const req = await peer.receiveDict();
      assert.deepEqual(req, { Label: 'tester', Request: 'GetValue', Domain: 'd', Key: 'k' });
      await peer.send({ Request: 'GetValue', Value: 42, Result: 'Success' });
    },
    async (conn) => {
      const c = new LockdownClient(conn, { label: 'tester' });
      assert.equal(await c.getValue('d', 'k'), 42);
    },
  );
});

test('a reply echoing another request is a PROTOCOL error', async () => {
  await withPlistPeer(
    async (peer) => {
      await peer.receiveDict();
      await peer.send({ Request: 'GetValue', Type: 'com.apple.mobile.lockdown' });
    },
    async (conn) => {
      await assert.rejects(new LockdownClient(conn).queryType(), code('PROTOCOL'));
    },
  );
});

test('a reply without the echo is a PROTOCOL error; Result Failure a DEVICE_ERROR', async () => {
  await withPlistPeer(
    async (peer) => {
      await peer.receiveDict();
      await peer.send({ Type: 'com.apple.mobile.lockdown' });
      await peer.receiveDict();
      await peer.send({ Request: 'SetValue', Result: 'Failure' });
    },
    async (conn) => {
      const c = new LockdownClient(conn);
      await assert.rejects(c.queryType(), code('PROTOCOL'));
      await assert.rejects(c.setValue(undefined, 'k', 1), code('DEVICE_ERROR'));
    },
  );
});

test('Error strings are mapped; Unpair tolerates a ValidatePair echo', async () => {
  await withPlistPeer(
    async (peer) => {
      await peer.receiveDict();
      await peer.send({ Request: 'StartService', Error: 'ServiceLimit' });
      await peer.receiveDict();
      await peer.send({ Request: 'ValidatePair', Result: 'Success' });
    },
    async (conn) => {
      const c = new LockdownClient(conn);
      await assert.rejects(
        c.startService('com.apple.afc'),
        (e) =>
          code('DEVICE_ERROR', 'ServiceLimit')(e) && /com\.apple\.afc/.test((e as Error).message),
      );
      await c.unpair({
        DeviceCertificate: Buffer.from('d'),
        HostCertificate: Buffer.from('h'),
        HostPrivateKey: Buffer.from('hk'),
        RootCertificate: Buffer.from('r'),
        RootPrivateKey: Buffer.from('rk'),
        HostID: 'H',
        SystemBUID: 'B',
      });
    },
  );
});

test('hostile StartService / StartSession replies', async () => {
  await withPlistPeer(
    async (peer) => {
      await peer.receiveDict();
      await peer.send({ Request: 'StartService', Port: 70000 });
      await peer.receiveDict();
      await peer.send({ Request: 'StartService', Port: 'abc' });
      await peer.receiveDict();
      await peer.send({ Request: 'StartSession', EnableSessionSSL: false });
      await peer.receiveDict();
      await peer.send(['not', 'a', 'dict']);
    },
    async (conn) => {
      const c = new LockdownClient(conn);
      await assert.rejects(c.startService('x'), code('MALFORMED'));
      await assert.rejects(c.startService('x'), code('MALFORMED'));
      const rec = {
        DeviceCertificate: Buffer.from('d'),
        HostCertificate: Buffer.from('h'),
        HostPrivateKey: Buffer.from('hk'),
        RootCertificate: Buffer.from('r'),
        RootPrivateKey: Buffer.from('rk'),
        HostID: 'H',
        SystemBUID: 'B',
      };
      await assert.rejects(c.startSession(rec), code('MALFORMED'));
      await assert.rejects(c.queryType(), code('MALFORMED'));
    },
  );
});

test('the peer hanging up mid-conversation is CLOSED', async () => {
  await withPlistPeer(
    async (peer) => {
      await peer.receiveDict();
      peer.close();
    },
    async (conn) => {
      await assert.rejects(new LockdownClient(conn).queryType(), code('CLOSED'));
    },
  );
});

test('after a timed-out reply the client refuses further requests (the stream is out of step)', async () => {
  await withPlistPeer(
    async (peer) => {
      await peer.receiveDict();
      await peer.receive(); // never answers; waits for the host to hang up
    },
    async (conn) => {
      const c = new LockdownClient(conn);
      await assert.rejects(c.request('QueryType', {}, { timeoutMs: 50 }), code('TIMEOUT'));
      await assert.rejects(
        c.queryType(),
        (e) => isMooringError(e, 'PROTOCOL') && /reconnect/.test((e as Error).message),
      );
    },
  );
});
