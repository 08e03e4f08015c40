/** NotificationProxyClient against a scripted proxy: wire shape, hostile relays, silent shutdown. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isMooringError } from '../../src/util/errors';
import type { PlistDict } from '../../src/protocol/plist/types';
import {
  NotificationProxyClient,
  MAX_NOTIFICATION_NAME_LENGTH,
} from '../../src/services/notification-proxy';
import { withPlistPeer } from './plist-peer';

test('observe, post and shutdown send the documented commands; ProxyDeath confirms', async () => {
  await withPlistPeer(
    async (peer) => {
      assert.deepEqual(await peer.receiveDict(), { Command: 'ObserveNotification', Name: 'a' });
      assert.deepEqual(await peer.receiveDict(), { Command: 'PostNotification', Name: 'b' });
      await peer.send({ Command: 'RelayNotification', Name: 'a' });
      assert.deepEqual(await peer.receiveDict(), { Command: 'Shutdown' });
      await peer.send({ Command: 'ProxyDeath' });
    },
    async (conn) => {
      const np = new NotificationProxyClient(conn);
      await np.observe('a');
      await np.post('b');
      assert.equal(await np.next(5000), 'a');
      assert.equal(await np.shutdown(5000), true);
      assert.equal(np.proxyDied, true);
    },
  );
});

test('a proxy that never answers Shutdown: resolves false after the timeout, closed', async () => {
  await withPlistPeer(
    async (peer) => {
      await peer.receiveDict();
      await peer.receive(); // stays silent until the host hangs up
    },
    async (conn) => {
      const np = new NotificationProxyClient(conn);
      assert.equal(await np.shutdown(50), false);
      await assert.rejects(np.next(10), (e) => isMooringError(e, 'CLOSED'));
    },
  );
});

test('hostile relays end the stream with MALFORMED', async () => {
  const hostile: PlistDict[] = [
    { Command: 'RelayNotification' },
    { Command: 'RelayNotification', Name: 'x'.repeat(MAX_NOTIFICATION_NAME_LENGTH + 1) },
    { NoCommand: 1 },
  ];
  for (const bad of hostile) {
    await withPlistPeer(
      async (peer) => {
        await peer.send({ Command: 'RelayNotification', Name: 'ok' });
        await peer.send(bad);
      },
      async (conn) => {
        const np = new NotificationProxyClient(conn);
        const got: string[] = [];
        await assert.rejects(
          (async () => {
            for await (const n of np) got.push(n);
          })(),
          (e) => isMooringError(e, 'MALFORMED'),
        );
        assert.deepEqual(got, ['ok']);
        np.close();
      },
    );
  }
});

test('unknown commands are ignored; a closed connection ends the iterator quietly', async () => {
  await withPlistPeer(
    async (peer) => {
      await peer.send({ Command: 'SomethingElse' });
      await peer.send({ Command: 'RelayNotification', Name: 'n' });
      peer.close();
    },
    async (conn) => {
      const np = new NotificationProxyClient(conn);
      const got: string[] = [];
      for await (const n of np) got.push(n);
      assert.deepEqual(got, ['n']);
      assert.equal(np.proxyDied, false);
    },
  );
});

test('names are checked before sending', async () => {
  await withPlistPeer(
    async () => undefined,
    async (conn) => {
      const np = new NotificationProxyClient(conn);
      await assert.rejects(np.observe(''), (e) => isMooringError(e, 'USAGE'));
      await assert.rejects(np.post('x'.repeat(MAX_NOTIFICATION_NAME_LENGTH + 1)), (e) =>
        isMooringError(e, 'USAGE'),
      );
      np.close();
    },
  );
});
