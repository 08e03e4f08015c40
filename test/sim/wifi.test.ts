/**
 * The Wi-Fi side: lockdownd as a real TCP listener on 127.0.0.1, service ports reachable over
 * TCP, the `_apple-mobdev2._tcp` advert (bonjour-service bound to 127.0.0.1 only, so nothing is
 * multicast on the outside network), and offline/online.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { promises as fsp } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Bonjour, type Service } from 'bonjour-service';
import { decodePlist, isPlistDict, type PlistDict } from '../../src/protocol/plist';
import { startSim, type RunningSim } from '../../src/sim/index';
import { PlistConnection } from '../../src/transport/plist-connection';

function hostPort(addr: string): { host: string; port: number } {
  const i = addr.lastIndexOf(':');
  return { host: addr.slice(0, i), port: Number(addr.slice(i + 1)) };
}

async function dial(host: string, port: number): Promise<net.Socket> {
  const sock = net.connect(port, host);
  await once(sock, 'connect');
  return sock;
}

async function request(c: PlistConnection, req: PlistDict): Promise<PlistDict> {
  await c.send(req);
  return c.receiveDict();
}

describe('mooring-sim over Wi-Fi', () => {
  let root: string;
  let sim: RunningSim;
  let browser: Bonjour;

  before(async () => {
    root = await fsp.mkdtemp(path.join(os.tmpdir(), 'sim-wifi-'));
    sim = await startSim({
      stateDir: path.join(root, 'dev'),
      wifi: '127.0.0.1',
      wifiPort: 0,
      bonjour: '127.0.0.1',
      files: 5,
      bytes: 10_000,
      seed: 4,
      heartbeatIntervalSeconds: 1,
    });
    // Membership and multicast on loopback only; bound to 0.0.0.0 because a socket bound to
    // 127.0.0.1 receives no multicast at all.
    browser = new Bonjour({ interface: '127.0.0.1', bind: '0.0.0.0' } as never);
  });
  after(async () => {
    await new Promise<void>((r) => browser.destroy(() => r()));
    await sim.stop();
    await fsp.rm(root, { recursive: true, force: true });
  });

  it('advertises <wifi-mac>@<address> on the loopback interface, pointing at the lockdownd port', async () => {
    const mac = sim.device.identity.wifiMac;
    // bonjour-service spells the dots of an instance name as dashes.
    const name = `${mac}@127-0-0-1`;
    const found = await new Promise<Service>((resolve, reject) => {
      // A safety net, not a timing assertion: never let a missing advert hang the run.
      const timer = setTimeout(() => {
        b.stop();
        reject(new Error(`no advert named ${name} seen on 127.0.0.1`));
      }, 15_000);
      const b = browser.find({ type: 'apple-mobdev2', protocol: 'tcp' }, (svc) => {
        if (svc.name === name) {
          clearTimeout(timer);
          b.stop();
          resolve(svc);
        }
      });
    });
    assert.equal(found.port, hostPort(sim.wifiAddress!).port);
    assert.deepEqual(
      found.addresses,
      ['127.0.0.1'],
      "the A record is the Wi-Fi address, not this machine's",
    );
    assert.equal(found.type, 'apple-mobdev2');
    assert.equal(
      sim.device.domain('com.apple.mobile.wireless_lockdown').BonjourFullServiceName,
      `${name}._apple-mobdev2._tcp.local.`,
    );
  });

  it('serves lockdownd over TCP: no pairing there, but sessions and TLS service ports for paired hosts', async () => {
    const { host, port } = hostPort(sim.wifiAddress!);
    const c = new PlistConnection(await dial(host, port), { readTimeoutMs: 5000 });
    assert.equal((await request(c, { Request: 'QueryType' })).Type, 'com.apple.mobile.lockdown');
    assert.equal(
      (await request(c, { Request: 'Pair', PairRecord: { HostID: '0000' } })).Error,
      'PairingProhibitedOverThisConnection',
    );

    // Pair over "USB" with the real idevicepair, then use its pair record over Wi-Fi.
    const env = { ...process.env, USBMUXD_SOCKET_ADDRESS: sim.usbmuxdAddress };
    const run = (args: string[]): Promise<string> =>
      new Promise((resolve) =>
        execFile('idevicepair', args, { env, timeout: 30_000 }, (_e, out) => resolve(out)),
      );
    const answered = once(sim.device, 'trust-answered');
    await run(['pair']);
    await answered;
    assert.match(await run(['pair']), /SUCCESS/);
    const record = decodePlist(
      await fsp.readFile(path.join(sim.pairRecordDir, `${sim.udid}.plist`)),
    );
    assert.ok(isPlistDict(record));

    const s = await request(c, {
      Request: 'StartSession',
      HostID: record.HostID!,
      SystemBUID: record.SystemBUID!,
    });
    assert.equal(s.EnableSessionSSL, true);
    await c.upgradeToTlsClient({
      cert: record.RootCertificate as Buffer,
      key: record.RootPrivateKey as Buffer,
    });
    const hb = await request(c, { Request: 'StartService', Service: 'com.apple.mobile.heartbeat' });
    assert.equal(hb.EnableServiceSSL, true);
    const svc = new PlistConnection(await dial(host, hb.Port as number), { readTimeoutMs: 5000 });
    await svc.upgradeToTlsClient({
      cert: record.HostCertificate as Buffer,
      key: record.HostPrivateKey as Buffer,
    });
    const marco = await svc.receiveDict();
    assert.equal(marco.Command, 'Marco');
    assert.equal(marco.Interval, 1);
    await svc.send({ Command: 'Polo' });
    svc.close();
    c.close();
  });

  it('goes offline (listener and advert down, connections dropped) and comes back on the same port', async () => {
    const { host, port } = hostPort(sim.wifiAddress!);
    const live = new PlistConnection(await dial(host, port), { readTimeoutMs: 5000 });
    await request(live, { Request: 'QueryType' });
    await sim.ctl('offline');
    await assert.rejects(live.receive(3000));
    await assert.rejects(dial(host, port), /ECONNREFUSED/);
    assert.equal(((await sim.ctl('status')) as PlistDict).wifi !== null, true);
    await sim.ctl('online');
    const back = new PlistConnection(await dial(host, port), { readTimeoutMs: 5000 });
    assert.equal((await request(back, { Request: 'QueryType' })).Result, 'Success');
    back.close();
  });

  it('follows EnableWifiConnections: off takes the Wi-Fi listener down, on brings it back', async () => {
    const { host, port } = hostPort(sim.wifiAddress!);
    await sim.device.setValue('com.apple.mobile.wireless_lockdown', 'EnableWifiConnections', false);
    // The listener closes asynchronously after the change event; wait for refusals.
    await waitFor(async () =>
      dial(host, port).then(
        (s) => (s.destroy(), false),
        () => true,
      ),
    );
    await sim.device.setValue('com.apple.mobile.wireless_lockdown', 'EnableWifiConnections', true);
    await waitFor(async () =>
      dial(host, port).then(
        (s) => (s.destroy(), true),
        () => false,
      ),
    );
  });
});

/** Polls a condition (the state change is event-driven but not awaited by setValue). */
async function waitFor(cond: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.fail('condition not reached');
}
