/**
 * DeviceRegistry over Wi-Fi: three simulators advertise `_apple-mobdev2._tcp` on the loopback
 * interface only (their lockdownd on 127.0.0.2/.3/.4):
 *   B — legacy advert, real MAC in the name, paired before the registry starts → matched by MAC;
 *   C — iOS 26.4+ advert, random MAC, TXT authTags; paired while the registry runs → matched by
 *       authTag once the simulator refreshes its TXT;
 *   D — TXT advert, never paired with us → ignored.
 * Then B goes offline (goodbye) and back, and C forgets us (its tag goes) and disappears.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PairRecordIndex } from '../../src/discovery/pair-record-index';
import { DeviceRegistry } from '../../src/discovery/registry';
import type { Mobdev2Advert } from '../../src/discovery/bonjour-browser';
import { TcpEndpoint } from '../../src/lockdown/endpoint';
import type { PairRecord } from '../../src/pairing/pair-record';
import { startSim, type RunningSim, type SimOptions } from '../../src/sim/index';
import { LOOPBACK_MDNS, pairAndStore, udidThrough, waitForEvent } from './sim-helpers';

function portOf(sim: RunningSim): number {
  return Number(sim.wifiAddress!.split(':').pop());
}

describe('DeviceRegistry: Wi-Fi through Bonjour on loopback', () => {
  let tmp: string;
  let storeDir: string;
  let b: RunningSim;
  let c: RunningSim;
  let d: RunningSim;
  let registry: DeviceRegistry;
  let recordB: PairRecord;
  let recordC: PairRecord;
  const ignored = new Map<string, string>();
  const seenIgnored: Array<(a: Mobdev2Advert) => void> = [];

  const sim = (name: string, seed: number, wifi: string, extra: Partial<SimOptions>) =>
    startSim({
      stateDir: path.join(tmp, name),
      wifi,
      wifiPort: 0,
      bonjour: '127.0.0.1',
      files: 3,
      bytes: 3000,
      seed,
      name: `Disc ${name}`,
      ...extra,
    });

  before(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'mooring-disc-wifi-'));
    storeDir = path.join(tmp, 'store');
    [b, c, d] = await Promise.all([
      sim('B', 51, '127.0.0.2', {}),
      sim('C', 52, '127.0.0.3', { bonjourMacHidden: true }),
      sim('D', 53, '127.0.0.4', { bonjourTxt: true }),
    ]);
    recordB = await pairAndStore(b, storeDir);
    registry = new DeviceRegistry({
      usbmuxd: null,
      bonjour: { mdns: LOOPBACK_MDNS, requeryIntervalMs: 0 },
      pairRecords: new PairRecordIndex({ storeDir, systemDir: null }),
      wifiPort: 'advertised',
      connectTimeoutMs: 5000,
    });
    registry.on('advert-ignored', ({ advert, reason }) => {
      ignored.set(advert.instanceName, reason);
      for (const f of seenIgnored) f(advert);
    });
  });
  after(async () => {
    await registry?.stop();
    await Promise.all([b, c, d].map((s) => s?.stop()));
    await rm(tmp, { recursive: true, force: true });
  });

  /** Resolves once an advert with this instance name has been ignored (safety timeout). */
  const ignoredAdvert = (instanceName: string): Promise<void> =>
    ignored.has(instanceName)
      ? Promise.resolve()
      : new Promise((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`${instanceName} never seen`)), 20_000);
          seenIgnored.push((a) => {
            if (a.instanceName !== instanceName) return;
            clearTimeout(timer);
            resolve();
          });
        });

  it('matches a legacy advert to its pair record by MAC and dials its address', async () => {
    const appeared = waitForEvent(registry, 'appeared', (p) => p.udid === b.udid);
    await registry.start();
    const [p] = await appeared;
    assert.equal(p.wifi?.matchedBy, 'mac');
    assert.equal(p.wifi?.host, '127.0.0.2');
    assert.equal(p.wifi?.port, portOf(b));
    assert.equal(p.usb, undefined);
    assert.equal(p.paired, true);
    assert.ok(p.wifi!.instanceName.startsWith(`${b.device.identity.wifiMac}@`));
    const ep = registry.endpoint(b.udid);
    assert.ok(ep instanceof TcpEndpoint);
    assert.equal(await udidThrough(ep, recordB), b.udid);
  });

  it('ignores adverts of devices it has no pair record for', async () => {
    // C hides its MAC and carries no tag of ours yet; D is simply not ours.
    await Promise.all([
      ignoredAdvert(c.device.bonjourInstance!),
      ignoredAdvert(d.device.bonjourInstance!),
    ]);
    assert.equal(ignored.get(d.device.bonjourInstance!), 'unknown');
    assert.ok(!c.device.bonjourInstance!.startsWith(c.device.identity.wifiMac));
    assert.equal(registry.get(c.udid), undefined);
    assert.equal(registry.get(d.udid), undefined);
  });

  it('matches a private-MAC advert by its TXT authTag once paired', async () => {
    const appeared = waitForEvent(registry, 'appeared', (p) => p.udid === c.udid);
    recordC = await pairAndStore(c, storeDir);
    // The record's MAC is the real one; the advert's is not, so only the tag can match.
    assert.equal(recordC.WiFiMACAddress, c.device.identity.wifiMac);
    await registry.refreshPairRecords();
    const [p] = await appeared;
    assert.equal(p.wifi?.matchedBy, 'authTag');
    assert.equal(p.wifi?.host, '127.0.0.3');
    assert.equal(p.wifi?.port, portOf(c));
    assert.equal(await udidThrough(registry.endpoint(c.udid)!, recordC), c.udid);
    assert.equal(registry.get(d.udid), undefined, 'D is still not ours');
  });

  it('sees a device go offline (goodbye) and come back', async () => {
    const gone = waitForEvent(registry, 'disappeared', (p) => p.udid === b.udid);
    await b.ctl('offline');
    const [p] = await gone;
    assert.equal(p.reachable, false);
    assert.equal(p.wifi, undefined);
    assert.equal(registry.endpoint(b.udid), undefined);
    assert.equal(registry.get(c.udid)?.reachable, true, 'the others are untouched');

    const back = waitForEvent(registry, 'appeared', (q) => q.udid === b.udid);
    await b.ctl('online');
    const [q] = await back;
    assert.equal(q.wifi?.host, '127.0.0.2');
    assert.ok(q.lastSeen.getTime() >= p.lastSeen.getTime());
  });

  it('loses a private-MAC device that forgot us (its tag is withdrawn)', async () => {
    const gone = waitForEvent(registry, 'disappeared', (p) => p.udid === c.udid);
    await c.ctl('revoke-pairing');
    const [p] = await gone;
    assert.equal(p.wifi, undefined);
    assert.equal(p.paired, true, 'we still hold a record; the device no longer honours it');
  });
});
