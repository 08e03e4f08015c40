/**
 * Service clients against the simulated device, over usbmuxd and over Wi-Fi: one paired TLS
 * session per transport starts several services (AFC, notification_proxy ×2, installation_proxy,
 * mobilebackup2) side by side.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { isMooringError } from '../../src/util/errors';
import type { PairRecord } from '../../src/pairing/pair-record';
import { DeviceSession } from '../../src/lockdown/session';
import type { DeviceEndpoint } from '../../src/lockdown/endpoint';
import {
  AFC_SERVICE_NAME,
  AfcClient,
  acquireSyncLock,
  SYNC_LOCK_PATH,
} from '../../src/services/afc';
import {
  NOTIFICATION_PROXY_SERVICE_NAME,
  NotificationProxyClient,
  Notifications,
} from '../../src/services/notification-proxy';
import {
  INSTALLATION_PROXY_SERVICE_NAME,
  InstallationProxyClient,
} from '../../src/services/installation-proxy';
import { MobileBackup2Client } from '../../src/services/mobilebackup2/client';
import { pairOverUsb, startSimFixture, type SimFixture } from '../lockdown/sim-fixture';

let f: SimFixture;
let record: PairRecord;

before(async () => {
  f = await startSimFixture();
  record = await pairOverUsb(f);
});

after(async () => {
  await f?.close();
});

async function np(s: DeviceSession): Promise<NotificationProxyClient> {
  return new NotificationProxyClient(await s.startService(NOTIFICATION_PROXY_SERVICE_NAME));
}

/**
 * Observe/Post have no reply; to know the device has processed our observes, observe a marker,
 * post it through the same connection and wait for its relay.
 */
async function settle(client: NotificationProxyClient, marker: string): Promise<void> {
  await client.observe(marker);
  await client.post(marker);
  assert.equal(await client.next(5000), marker);
}

for (const transport of ['usb', 'wifi'] as const) {
  test(`several services in one session over ${transport}`, async () => {
    const endpoint: DeviceEndpoint = transport === 'usb' ? f.usb : f.wifi;
    const s = await DeviceSession.open(endpoint, record, { timeoutMs: 5000 });
    try {
      // --- notification_proxy: observe on one connection, post on another, relay arrives.
      const observer = await np(s);
      const poster = await np(s);
      await observer.observe(Notifications.SYNC_CANCEL_REQUEST);
      await observer.observe(Notifications.SYNC_DID_START);
      await settle(observer, `test.marker.${transport}`);
      const seenByEvent: string[] = [];
      observer.on('notification', (n) => seenByEvent.push(n));
      await poster.post(Notifications.SYNC_DID_START);
      await poster.post('com.example.not-observed');
      await poster.post(Notifications.SYNC_CANCEL_REQUEST);
      assert.equal(await observer.next(5000), Notifications.SYNC_DID_START);
      assert.equal(await observer.next(5000), Notifications.SYNC_CANCEL_REQUEST);
      assert.deepEqual(seenByEvent, [
        Notifications.SYNC_DID_START,
        Notifications.SYNC_CANCEL_REQUEST,
      ]);
      assert.equal(await poster.shutdown(5000), true, 'ProxyDeath answers Shutdown');

      // --- AFC: the sync lock, held by one connection, refused to another, then handed over.
      const afc1 = new AfcClient(await s.startService(AFC_SERVICE_NAME), { timeoutMs: 5000 });
      const afc2 = new AfcClient(await s.startService(AFC_SERVICE_NAME), { timeoutMs: 5000 });
      const lock1 = await acquireSyncLock(afc1);
      await assert.rejects(
        acquireSyncLock(afc2, { attempts: 2, intervalMs: 10 }),
        (e) => isMooringError(e, 'DEVICE_ERROR') && e.detail === 19,
      );
      await lock1.release();
      const lock2 = await acquireSyncLock(afc2, { attempts: 5, intervalMs: 10 });
      await lock2.release();
      await lock2.release(); // idempotent
      const info = await afc1.getFileInfo(SYNC_LOCK_PATH);
      assert.equal(info?.type, 'file');
      assert.equal(await afc1.getFileInfo('/no/such/file'), undefined);
      await afc1.makeDirectory('/iTunesRestore');
      const payload = Buffer.from(`restore plist over ${transport}\n`.repeat(5000));
      await afc1.writeFile('/iTunesRestore/RestoreApplications.plist', payload);
      assert.deepEqual(await afc2.readFile('/iTunesRestore/RestoreApplications.plist'), payload);
      assert.equal((await afc2.getFileInfo('/iTunesRestore'))?.type, 'directory');
      await afc1.removePath('/iTunesRestore/RestoreApplications.plist');
      assert.equal(await afc1.getFileInfo('/iTunesRestore/RestoreApplications.plist'), undefined);
      await assert.rejects(
        afc1.readFile('/missing'),
        (e) => isMooringError(e, 'DEVICE_ERROR') && e.detail === 8,
      );

      // --- installation_proxy: every app, with only the attributes asked for.
      const ip = new InstallationProxyClient(await s.startService(INSTALLATION_PROXY_SERVICE_NAME));
      const apps = await ip.browse({
        applicationType: 'User',
        returnAttributes: ['CFBundleIdentifier', 'ApplicationSINF', 'iTunesMetadata'],
        timeoutMs: 5000,
      });
      const expected = f.sim.content.apps().map((a) => a.CFBundleIdentifier);
      assert.deepEqual(
        apps.map((a) => a.CFBundleIdentifier),
        expected,
      );
      for (const a of apps) {
        assert.deepEqual(
          Object.keys(a).filter(
            (k) => !['CFBundleIdentifier', 'ApplicationSINF', 'iTunesMetadata'].includes(k),
          ),
          [],
        );
      }
      assert.deepEqual(await ip.browse({ applicationType: 'System', timeoutMs: 5000 }), []);
      ip.close();

      // --- mobilebackup2: DL version exchange + Hello agree on 2.x.
      const mb2 = await MobileBackup2Client.start(s, { timeoutMs: 5000 });
      assert.ok(mb2.deviceLink.version && mb2.deviceLink.version.major > 0);
      assert.ok(mb2.protocolVersion === 2.0 || mb2.protocolVersion === 2.1);
      await mb2.disconnect();

      // The first NP connection still works after all that, then shuts down cleanly.
      await observer.post(Notifications.SYNC_CANCEL_REQUEST);
      assert.equal(await observer.next(5000), Notifications.SYNC_CANCEL_REQUEST);
      assert.equal(await observer.shutdown(5000), true);
      await assert.rejects(observer.next(100), (e) => isMooringError(e, 'CLOSED'));
      await lock1.release();
      afc1.close();
      afc2.close();
    } finally {
      await s.close();
    }
  });
}

test('the notification iterator ends when the proxy dies', async () => {
  const s = await DeviceSession.open(f.usb, record, { timeoutMs: 5000 });
  try {
    const client = await np(s);
    await client.observe('a.b');
    await client.observe('c.d');
    await settle(client, 'marker');
    await client.post('a.b');
    await client.post('c.d');
    const got: string[] = [];
    for await (const name of client) {
      got.push(name);
      if (got.length === 2) void client.shutdown(5000);
    }
    assert.deepEqual(got, ['a.b', 'c.d']);
    assert.equal(client.proxyDied, true);
  } finally {
    await s.close();
  }
});
