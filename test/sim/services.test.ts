import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { PlistDict } from '../../src/protocol/plist';
import type { ServiceHandler } from '../../src/sim/contracts';
import {
  NOTIFY_PASSCODE_DISMISSED,
  NOTIFY_PASSCODE_PRESENTED,
  SimDevice,
} from '../../src/sim/device';
import { HostPairings } from '../../src/sim/host-pairings';
import { deriveIdentityValues } from '../../src/sim/identity';
import { diagnosticsRelayService } from '../../src/sim/services/diagnostics-relay';
import { heartbeatService } from '../../src/sim/services/heartbeat';
import {
  installationProxyService,
  INSTPROXY_PAGE_SIZE,
} from '../../src/sim/services/installation-proxy';
import { notificationProxyService } from '../../src/sim/services/notification-proxy';
import { springboardService, TINY_PNG } from '../../src/sim/services/springboard';
import { socketPair } from '../../src/sim/service-ports';
import { PlistConnection } from '../../src/transport/plist-connection';
import { isMooringError } from '../../src/util/errors';

describe('sim plist services', () => {
  let stateDir: string;
  let device: SimDevice;
  const served: Promise<void>[] = [];

  before(async () => {
    stateDir = await fsp.mkdtemp(path.join(os.tmpdir(), 'sim-svc-'));
    device = await SimDevice.create({
      stateDir,
      // These services never touch the device key.
      identity: {
        ...deriveIdentityValues({ seed: 5 }),
        devicePublicKeyPem: '',
        devicePrivateKeyPem: '',
      },
      pairings: await HostPairings.load(path.join(stateDir, 'pairings')),
      mediaDir: path.join(stateDir, 'media'),
      passcode: { kind: 'never' },
      trust: 'auto',
      faults: {},
      log: () => undefined,
    });
  });
  after(async () => {
    device.shutdown();
    await Promise.allSettled(served);
    await fsp.rm(stateDir, { recursive: true, force: true });
  });

  function open(handler: ServiceHandler): PlistConnection {
    const [host, dev] = socketPair();
    // As lockdownd's runService does: when the handler returns, the connection closes.
    served.push(
      handler(dev, device)
        .catch(() => undefined)
        .finally(() => dev.destroy()),
    );
    return new PlistConnection(host, { readTimeoutMs: 5000 });
  }

  it('notification_proxy relays a post from one connection to observers on every other', async () => {
    const observer = open(notificationProxyService);
    const other = open(notificationProxyService);
    await observer.send({
      Command: 'ObserveNotification',
      Name: 'com.apple.itunes-client.syncCancelRequest',
    });
    await other.send({
      Command: 'ObserveNotification',
      Name: 'com.apple.itunes-client.syncCancelRequest',
    });
    await observer.send({
      Command: 'ObserveNotification',
      Name: 'com.apple.mobile.backup.domain_changed',
    });
    // A brand-new connection posts and shuts down, as idevicebackup2 does.
    const poster = open(notificationProxyService);
    await poster.send({
      Command: 'PostNotification',
      Name: 'com.apple.itunes-client.syncCancelRequest',
    });
    await poster.send({ Command: 'Shutdown' });
    assert.deepEqual(await poster.receiveDict(), { Command: 'ProxyDeath' });
    for (const c of [observer, other]) {
      assert.deepEqual(await c.receiveDict(), {
        Command: 'RelayNotification',
        Name: 'com.apple.itunes-client.syncCancelRequest',
      });
    }
    // Device-side posts (the backup agent) reach observers the same way.
    device.postNotification('com.apple.mobile.backup.domain_changed');
    assert.equal((await observer.receiveDict()).Name, 'com.apple.mobile.backup.domain_changed');
    // An unobserved name reaches nobody: the next relay is the one we observed.
    device.postNotification('com.example.unobserved');
    device.postNotification('com.apple.itunes-client.syncCancelRequest');
    assert.equal((await other.receiveDict()).Name, 'com.apple.itunes-client.syncCancelRequest');
    observer.close();
    other.close();
  });

  it('requestPasscode posts presented, then dismissed once the passcode is entered', async () => {
    const np = open(notificationProxyService);
    await np.send({ Command: 'ObserveNotification', Name: NOTIFY_PASSCODE_PRESENTED });
    await np.send({ Command: 'ObserveNotification', Name: NOTIFY_PASSCODE_DISMISSED });
    // Observe is fire-and-forget: a round trip through Shutdown would end the connection, so
    // post through the bus and wait for our own relay to know both observations are in place.
    await np.send({ Command: 'PostNotification', Name: NOTIFY_PASSCODE_DISMISSED });
    assert.equal((await np.receiveDict()).Name, NOTIFY_PASSCODE_DISMISSED);
    const answer = device.requestPasscode(60_000);
    assert.equal((await np.receiveDict()).Name, NOTIFY_PASSCODE_PRESENTED);
    assert.equal(device.enterPasscode(), 1);
    assert.equal(await answer, true);
    assert.equal((await np.receiveDict()).Name, NOTIFY_PASSCODE_DISMISSED);
    np.close();
  });

  it('requestPasscode: --passcode auto enters it by itself, none never asks, never times out', async () => {
    const make = async (passcode: SimDevice['passcode']): Promise<SimDevice> =>
      SimDevice.create({
        stateDir,
        identity: device.identity,
        pairings: device.pairings,
        mediaDir: device.mediaDir,
        passcode,
        trust: 'auto',
        faults: {},
        log: () => undefined,
      });
    const posted: string[] = [];
    const auto = await make({ kind: 'auto', seconds: 0.01 });
    auto.observeNotification(NOTIFY_PASSCODE_PRESENTED, () => posted.push('presented'));
    auto.observeNotification(NOTIFY_PASSCODE_DISMISSED, () => posted.push('dismissed'));
    assert.equal(await auto.requestPasscode(60_000), true);
    assert.deepEqual(posted, ['presented', 'dismissed']);
    const none = await make({ kind: 'none' });
    none.observeNotification(NOTIFY_PASSCODE_PRESENTED, () => posted.push('none-presented'));
    assert.equal(await none.requestPasscode(60_000), true);
    const never = await make({ kind: 'never' });
    assert.equal(await never.requestPasscode(1), false);
    assert.deepEqual(posted, ['presented', 'dismissed']);
  });

  it('notification_proxy ignores junk and hangs up on an oversized frame', async () => {
    const np = open(notificationProxyService);
    await np.send({ Command: 'ObserveNotification' });
    await np.send({ Command: 42 });
    await np.send({ Command: 'PostNotification', Name: 'x'.repeat(10_000) });
    await np.send({ Command: 'Shutdown' });
    assert.deepEqual(await np.receiveDict(), { Command: 'ProxyDeath' });
    const big = open(notificationProxyService);
    await big.writeRaw(Buffer.from([0x7f, 0xff, 0xff, 0xff]));
    await assert.rejects(big.receive(3000), (e) => isMooringError(e, 'CLOSED'));
  });

  it('installation_proxy Browse pages the apps, projects ReturnAttributes and ends with Complete', async () => {
    const apps = Array.from({ length: 25 }, (_, i) => ({
      CFBundleIdentifier: `com.example.app${i}`,
      CFBundleVersion: `${i}.0`,
      ApplicationSINF: Buffer.from([i]),
      Container: `/private/var/mobile/Containers/Data/Application/${i}`,
    }));
    const ip = open(installationProxyService(() => apps));
    await ip.send({
      Command: 'Browse',
      ClientOptions: {
        ApplicationType: 'User',
        ReturnAttributes: ['CFBundleIdentifier', 'ApplicationSINF', 'iTunesMetadata'],
      },
    });
    const seen: PlistDict[] = [];
    let pages = 0;
    while (true) {
      const m = await ip.receiveDict();
      if (m.Status === 'Complete') break;
      assert.equal(m.Status, 'BrowsingApplications');
      assert.equal(m.Total, 25);
      pages++;
      seen.push(...(m.CurrentList as PlistDict[]));
    }
    assert.equal(pages, Math.ceil(25 / INSTPROXY_PAGE_SIZE));
    assert.deepEqual(
      seen.map((a) => a.CFBundleIdentifier),
      apps.map((a) => a.CFBundleIdentifier),
    );
    assert.deepEqual(Object.keys(seen[3]!).sort(), ['ApplicationSINF', 'CFBundleIdentifier']);
    await ip.send({ Command: 'Browse', ClientOptions: { ApplicationType: 'System' } });
    assert.deepEqual(await ip.receiveDict(), { Status: 'Complete' });
    await ip.send({ Command: 'Lookup', ClientOptions: { BundleIDs: ['com.example.app7'] } });
    const lookup = await ip.receiveDict();
    assert.deepEqual(Object.keys(lookup.LookupResult as PlistDict), ['com.example.app7']);
    ip.close();
  });

  it('springboardservices returns a valid PNG icon', async () => {
    const sb = open(springboardService);
    await sb.send({ command: 'getIconPNGData', bundleId: 'com.example.app1' });
    const r = await sb.receiveDict();
    const png = r.pngData as Buffer;
    assert.ok(png.equals(TINY_PNG));
    assert.ok(
      png.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])),
    );
    assert.equal(png.toString('latin1', 12, 16), 'IHDR');
    assert.equal(png.readUInt32BE(16), 1);
    sb.close();
  });

  it('heartbeat sends Marco with an Interval and keeps going while the host answers Polo', async () => {
    const hb = open(heartbeatService(0.01));
    for (let i = 0; i < 3; i++) {
      const marco = await hb.receiveDict();
      assert.equal(marco.Command, 'Marco');
      assert.equal(marco.Interval, 0.01);
      await hb.send({ Command: 'Polo' });
    }
    await hb.receiveDict();
    await hb.send({ Command: 'Something else' });
    await assert.rejects(hb.receive(3000), (e) => isMooringError(e, 'CLOSED'));
  });

  it('diagnostics_relay answers MobileGestalt PasswordConfigured', async () => {
    const d = open(diagnosticsRelayService);
    await d.send({
      Request: 'MobileGestalt',
      MobileGestaltKeys: ['PasswordConfigured', 'ProductType'],
    });
    const r = await d.receiveDict();
    assert.equal(r.Status, 'Success');
    const mg = (r.Diagnostics as PlistDict).MobileGestalt as PlistDict;
    assert.equal(mg.PasswordConfigured, true);
    assert.equal(mg.ProductType, 'iPhone15,2');
    await d.send({ Request: 'Goodbye' });
    assert.equal((await d.receiveDict()).Status, 'Success');
  });
});
