/**
 * DeviceRegistry's decisions with adverts fed in directly (the AdvertSource seam), so each case
 * is exact: ambiguous and address-less adverts, re-reading records for an unknown advert (rate
 * limited), several adverts of one device, what counts as a change, and endpoint choice.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Mobdev2Advert, Mobdev2BrowserEvents } from '../../src/discovery/bonjour-browser';
import { PairRecordIndex } from '../../src/discovery/pair-record-index';
import {
  DEVICE_LOCKDOWN_PORT,
  DeviceRegistry,
  type AdvertSource,
  type DevicePresence,
} from '../../src/discovery/registry';
import { parseTxtEntries, readMobdev2Txt, macFromInstanceName } from '../../src/discovery/txt-auth';
import { TcpEndpoint } from '../../src/lockdown/endpoint';
import {
  generateDeviceKeyPair,
  generatePairingCertificates,
  type PairingCertificates,
} from '../../src/pairing/certificates';
import { pairRecordForDevice, serializePairRecord } from '../../src/pairing/pair-record';
import { authTxtStrings } from '../../src/sim/bonjour';

class FeedAdverts extends EventEmitter<Mobdev2BrowserEvents> implements AdvertSource {
  private readonly map = new Map<string, Mobdev2Advert>();
  start(): void {}
  async stop(): Promise<void> {}
  adverts(): Mobdev2Advert[] {
    return [...this.map.values()];
  }
  up(a: Mobdev2Advert): void {
    const had = this.map.has(a.fqdn);
    this.map.set(a.fqdn, a);
    this.emit(had ? 'update' : 'up', a);
  }
  down(a: Mobdev2Advert): void {
    this.map.delete(a.fqdn);
    this.emit('down', a, 'goodbye');
  }
}

function advert(
  instanceName: string,
  o: { addresses?: string[]; port?: number; tags?: string[]; seen?: number } = {},
): Mobdev2Advert {
  const entries = parseTxtEntries(o.tags ? authTxtStrings('FEED-ID', o.tags) : []);
  const mac = macFromInstanceName(instanceName);
  return {
    fqdn: `${instanceName}._apple-mobdev2._tcp.local`,
    instanceName,
    ...(mac ? { mac } : {}),
    txt: readMobdev2Txt(entries),
    txtEntries: entries,
    hostName: 'phone.local',
    port: o.port ?? 32498,
    addresses: o.addresses ?? ['192.0.2.10'],
    referer: '192.0.2.99',
    firstSeen: o.seen ?? 1000,
    lastSeen: o.seen ?? 1000,
  };
}

describe('DeviceRegistry policy', () => {
  let tmp: string;
  let store: string;
  let certs: PairingCertificates;
  let feed: FeedAdverts;
  let registry: DeviceRegistry;
  const events: Array<[string, DevicePresence]> = [];
  const ignored: Array<{ name: string; reason: string; udids?: string[] }> = [];

  const writeRecord = (udid: string, hostId: string, mac?: string): Promise<void> =>
    writeFile(
      path.join(store, `${udid}.plist`),
      serializePairRecord(
        pairRecordForDevice({
          certificates: certs,
          hostId,
          systemBuid: 'BUID',
          ...(mac ? { wifiMacAddress: mac } : {}),
        }),
      ),
    );

  before(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'mooring-registry-'));
    store = path.join(tmp, 'store');
    await mkdir(store);
    certs = generatePairingCertificates(generateDeviceKeyPair().publicKeyPkcs1Pem);
    await writeRecord('UDID-A', 'HOST-A', 'aa:aa:aa:aa:aa:01');
    // Two devices paired by a tool that uses one HostID per computer.
    await writeRecord('UDID-B', 'HOST-SHARED', 'bb:bb:bb:bb:bb:02');
    await writeRecord('UDID-C', 'HOST-SHARED', 'cc:cc:cc:cc:cc:03');
    feed = new FeedAdverts();
    registry = new DeviceRegistry({
      usbmuxd: null,
      bonjour: feed,
      pairRecords: new PairRecordIndex({ storeDir: store, systemDir: null }),
      unmatchedRefreshMs: 60_000,
    });
    for (const e of ['appeared', 'disappeared', 'changed'] as const) {
      registry.on(e, (p) => events.push([e, p]));
    }
    registry.on('advert-ignored', ({ advert: a, reason, udids }) =>
      ignored.push({ name: a.instanceName, reason, ...(udids ? { udids } : {}) }),
    );
    await registry.start();
  });
  after(async () => {
    await registry.stop();
    await rm(tmp, { recursive: true, force: true });
  });

  it('places an advert, dials 62078 at its address, and prefers the packet source if listed', () => {
    feed.up(advert('aa:aa:aa:aa:aa:01@v4', { addresses: ['fe80::1', '192.0.2.10'] }));
    const p = registry.get('UDID-A')!;
    assert.deepEqual(
      events.map(([e]) => e),
      ['appeared', 'changed'],
    );
    assert.equal(p.wifi?.host, '192.0.2.10', 'IPv4 first');
    assert.equal(p.wifi?.port, DEVICE_LOCKDOWN_PORT, 'not the SRV port');
    const ep = registry.endpoint('UDID-A', { prefer: 'wifi' });
    assert.ok(ep instanceof TcpEndpoint);
    assert.equal(ep.host, '192.0.2.10');
    assert.equal(ep.lockdownPort, DEVICE_LOCKDOWN_PORT);

    feed.up(
      advert('aa:aa:aa:aa:aa:01@v4', { addresses: ['192.0.2.10', '192.0.2.99'], seen: 2000 }),
    );
    assert.equal(registry.get('UDID-A')?.wifi?.host, '192.0.2.99');
    assert.equal(events.length, 3, 'an address change is a change');
  });

  it('says nothing when only lastSeen moves', () => {
    const n = events.length;
    feed.up(
      advert('aa:aa:aa:aa:aa:01@v4', { addresses: ['192.0.2.10', '192.0.2.99'], seen: 5000 }),
    );
    assert.equal(events.length, n);
    assert.equal(registry.get('UDID-A')?.lastSeen.getTime(), 5000);
  });

  it('keeps a device reachable while any of its adverts remains', () => {
    const v6 = advert('aa:aa:aa:aa:aa:01@v6', { addresses: ['2001:db8::1'], seen: 9000 });
    feed.up(v6);
    assert.equal(registry.get('UDID-A')?.wifi?.instanceName, 'aa:aa:aa:aa:aa:01@v6', 'newest');
    const n = events.filter(([e]) => e === 'disappeared').length;
    feed.down(v6);
    assert.equal(registry.get('UDID-A')?.reachable, true);
    assert.equal(registry.get('UDID-A')?.wifi?.instanceName, 'aa:aa:aa:aa:aa:01@v4');
    feed.down(feed.adverts().find((a) => a.instanceName === 'aa:aa:aa:aa:aa:01@v4')!);
    assert.equal(registry.get('UDID-A')?.reachable, false);
    assert.equal(events.filter(([e]) => e === 'disappeared').length, n + 1);
    assert.equal(registry.endpoint('UDID-A'), undefined);
  });

  it('refuses to guess between devices sharing a HostID, unless the MAC decides', () => {
    feed.up(advert('02:00:00:00:00:01@x', { tags: ['HOST-SHARED'] }));
    assert.deepEqual(ignored.at(-1), {
      name: '02:00:00:00:00:01@x',
      reason: 'ambiguous',
      udids: ['UDID-B', 'UDID-C'],
    });
    assert.equal(registry.get('UDID-B'), undefined);
    feed.up(advert('cc:cc:cc:cc:cc:03@x', { tags: ['HOST-SHARED'] }));
    assert.equal(registry.get('UDID-C')?.wifi?.matchedBy, 'authTag');
  });

  it('ignores an advert of ours that gives no address', () => {
    feed.up(advert('bb:bb:bb:bb:bb:02@noaddr', { addresses: [] }));
    // The packet source is used when nothing else is known.
    assert.equal(registry.get('UDID-B')?.wifi?.host, '192.0.2.99');
    const bare = { ...advert('bb:bb:bb:bb:bb:02@bare', { addresses: [] }) };
    delete bare.referer;
    feed.up(bare);
    assert.deepEqual(ignored.at(-1), { name: 'bb:bb:bb:bb:bb:02@bare', reason: 'no-address' });
  });

  it('re-reads the pair records for an unknown advert, at most once per interval', async () => {
    const refreshed = registry.pairRecords.lastRefresh;
    await writeRecord('UDID-NEW', 'HOST-NEW', 'dd:dd:dd:dd:dd:04');
    const appeared = new Promise<DevicePresence>((resolve) =>
      registry.once('appeared', (p) => resolve(p)),
    );
    feed.up(advert('dd:dd:dd:dd:dd:04@x'));
    assert.equal(ignored.at(-1)?.reason, 'unknown', 'unknown until the records are re-read');
    const p = await appeared;
    assert.equal(p.udid, 'UDID-NEW');
    assert.ok(registry.pairRecords.lastRefresh > refreshed);

    const after = registry.pairRecords.lastRefresh;
    await writeRecord('UDID-NEWER', 'HOST-NEWER', 'ee:ee:ee:ee:ee:05');
    feed.up(advert('ee:ee:ee:ee:ee:05@x'));
    // Index operations run in order: once this one is done, a refresh started above would be too.
    await registry.pairRecords.loadUdid('UDID-A');
    assert.equal(registry.pairRecords.lastRefresh, after, 'no second re-read within the interval');
    assert.equal(registry.get('UDID-NEWER'), undefined);
    await registry.refreshPairRecords();
    assert.equal(registry.get('UDID-NEWER')?.reachable, true, 'an explicit refresh re-matches');
  });
});
