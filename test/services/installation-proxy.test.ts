/** InstallationProxyClient.browse against a scripted installation_proxy. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isMooringError } from '../../src/util/errors';
import { InstallationProxyClient } from '../../src/services/installation-proxy';
import { withPlistPeer } from './plist-peer';

test('Browse collects every page until Complete', async () => {
  await withPlistPeer(
    async (peer) => {
      assert.deepEqual(await peer.receiveDict(), {
        Command: 'Browse',
        ClientOptions: { ApplicationType: 'User', ReturnAttributes: ['CFBundleIdentifier'] },
      });
      await peer.send({
        Status: 'BrowsingApplications',
        CurrentList: [{ CFBundleIdentifier: 'a' }, { CFBundleIdentifier: 'b' }],
      });
      await peer.send({
        Status: 'BrowsingApplications',
        CurrentList: [{ CFBundleIdentifier: 'c' }],
      });
      await peer.send({ Status: 'Complete' });
    },
    async (conn) => {
      const apps = await new InstallationProxyClient(conn).browse({
        applicationType: 'User',
        returnAttributes: ['CFBundleIdentifier'],
      });
      assert.deepEqual(
        apps.map((a) => a.CFBundleIdentifier),
        ['a', 'b', 'c'],
      );
    },
  );
});

test('device errors and hostile pages are surfaced', async () => {
  const cases: Array<[Record<string, unknown>, string]> = [
    [{ Error: 'APIInternalError', ErrorDescription: 'boom' }, 'DEVICE_ERROR'],
    [{ Status: 'BrowsingApplications', CurrentList: 'nope' }, 'MALFORMED'],
    [{ Status: 'BrowsingApplications', CurrentList: ['nope'] }, 'MALFORMED'],
    [{ Status: 42 }, 'MALFORMED'],
  ];
  for (const [reply, expected] of cases) {
    await withPlistPeer(
      async (peer) => {
        await peer.receiveDict();
        await peer.send(reply as never);
      },
      async (conn) => {
        await assert.rejects(
          new InstallationProxyClient(conn).browse(),
          (e) => isMooringError(e, expected as never),
          JSON.stringify(reply),
        );
      },
    );
  }
});

test('a proxy that stops before Complete is CLOSED, not a hang', async () => {
  await withPlistPeer(
    async (peer) => {
      await peer.receiveDict();
      await peer.send({ Status: 'BrowsingApplications', CurrentList: [] });
      peer.close();
    },
    async (conn) => {
      await assert.rejects(new InstallationProxyClient(conn).browse(), (e) =>
        isMooringError(e, 'CLOSED'),
      );
    },
  );
});
