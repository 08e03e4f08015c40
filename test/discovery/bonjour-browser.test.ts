/**
 * Mobdev2Browser against real mDNS on the loopback interface only (bound to 0.0.0.0 so multicast
 * arrives, membership and sending on 127.0.0.1: docs/DECISIONS.md D10). The adverts are
 * published here with bonjour-service, records set by hand so the TXT can be binary or hostile.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { after, before, describe, it } from 'node:test';
import { Bonjour, type Service } from 'bonjour-service';
import {
  Mobdev2Browser,
  pickAdvertAddress,
  type AdvertDownReason,
  type Mobdev2Advert,
} from '../../src/discovery/bonjour-browser';
import { txtMatchesHost } from '../../src/discovery/txt-auth';
import { authTxtStrings } from '../../src/sim/bonjour';

const LOOPBACK = { interface: '127.0.0.1', bind: '0.0.0.0' };

function randomMac(): string {
  return [...randomBytes(6)].map((b) => b.toString(16).padStart(2, '0')).join(':');
}

/** Publishes one advert with exactly the TXT strings and address given. */
class Publisher {
  private readonly bonjour = new Bonjour(LOOPBACK as never);
  service: Service | undefined;

  publish(name: string, port: number, address: string, txt: Buffer[]): void {
    const host = `pub-${randomBytes(4).toString('hex')}.local`;
    // Probing delays the first announcement until the records below are in place.
    const s = this.bonjour.publish({ name, type: 'apple-mobdev2', port, host, probe: true });
    const all = s.records.bind(s);
    let cached: ReturnType<Service['records']> | undefined;
    s.records = () =>
      (cached ??= [
        ...all()
          .filter((r) => r.type !== 'A' && r.type !== 'AAAA')
          .map((r) => (r.type === 'TXT' ? { ...r, data: txt } : r)),
        { name: host, type: 'A', ttl: 120, data: address },
      ]);
    this.service = s;
  }

  unpublish(): Promise<void> {
    return new Promise((resolve) => this.bonjour.unpublishAll(() => resolve()));
  }

  destroy(): Promise<void> {
    return new Promise((resolve) => this.bonjour.destroy(() => resolve()));
  }
}

/** Resolves with the first advert for which `pred` holds (a safety timeout, not a timing test). */
function waitFor<K extends 'up' | 'update' | 'down' | 'seen'>(
  browser: Mobdev2Browser,
  event: K,
  pred: (a: Mobdev2Advert, reason?: AdvertDownReason) => boolean,
): Promise<{ advert: Mobdev2Advert; reason?: AdvertDownReason }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      browser.off(event, handler as never);
      reject(new Error(`no '${event}' event arrived`));
    }, 15_000);
    const handler = (a: Mobdev2Advert, reason?: AdvertDownReason): void => {
      if (!pred(a, reason)) return;
      clearTimeout(timer);
      browser.off(event, handler as never);
      resolve({ advert: a, ...(reason ? { reason } : {}) });
    };
    browser.on(event, handler as never);
  });
}

describe('Mobdev2Browser on loopback', () => {
  let browser: Mobdev2Browser;
  const publishers: Publisher[] = [];

  before(() => {
    // No re-query timer: the test drives requery() and sweep() itself.
    browser = new Mobdev2Browser({ mdns: LOOPBACK, requeryIntervalMs: 0, staleAfterMs: 60_000 });
    browser.start();
  });
  after(async () => {
    await browser.stop();
    for (const p of publishers) await p.destroy();
  });

  it('resolves an advert: instance name, MAC, binary TXT, authTags, port and address', async () => {
    const mac = randomMac();
    const name = `${mac}@fe80::1`;
    const txt = [
      ...authTxtStrings('ID-BROWSER-TEST', ['HOST-1', 'HOST-2']),
      Buffer.concat([Buffer.from('blob='), Buffer.from([0, 0xff, 0x3d, 0x0a])]),
    ];
    const p = new Publisher();
    publishers.push(p);
    const seen = waitFor(browser, 'up', (a) => a.mac === mac);
    p.publish(name, 32498, '127.0.0.2', txt);
    const { advert } = await seen;
    assert.equal(advert.instanceName, name.split('.').join('-'));
    assert.equal(advert.port, 32498);
    assert.deepEqual(advert.addresses, ['127.0.0.2']);
    assert.equal(pickAdvertAddress(advert), '127.0.0.2', 'the A record, not the packet source');
    assert.deepEqual(advert.txtEntries.get('blob'), Buffer.from([0, 0xff, 0x3d, 0x0a]));
    assert.equal(advert.txt.identifier?.toString(), 'ID-BROWSER-TEST');
    assert.equal(advert.txt.authTags.length, 2);
    assert.equal(txtMatchesHost(advert.txt, 'HOST-2'), true);
    assert.ok(browser.adverts().some((a) => a.fqdn === advert.fqdn));

    const gone = waitFor(browser, 'down', (a) => a.fqdn === advert.fqdn);
    await p.unpublish();
    assert.equal((await gone).reason, 'goodbye');
    assert.ok(!browser.adverts().some((a) => a.fqdn === advert.fqdn));
  });

  it('survives a hostile advert: malformed tags, long TXT, no MAC', async () => {
    const p = new Publisher();
    publishers.push(p);
    const name = `hostile-${randomBytes(4).toString('hex')}`;
    const txt = [
      Buffer.from(`identifier=${'i'.repeat(240)}`),
      Buffer.from('authTag=!!!notbase64!!!'),
      Buffer.from('authTag#1=AA=='),
      Buffer.from([0xff, 0xfe, 0x3d, 0x41]),
      ...Array.from({ length: 80 }, (_, i) => Buffer.from(`k${i}=${'v'.repeat(60)}`)),
    ];
    const seen = waitFor(browser, 'up', (a) => a.instanceName === name);
    p.publish(name, 1, '127.0.0.9', txt);
    const { advert } = await seen;
    assert.equal(advert.mac, undefined);
    assert.equal(advert.txt.authTags.length, 0);
    assert.equal(advert.txt.hasAuthTagKeys, true);
    assert.equal(advert.txt.identifier?.length, 240);
    assert.ok(advert.txtEntries.size <= 64);
    await p.unpublish();
  });

  it('turns an undecodable mDNS packet into a warning and keeps browsing', async () => {
    const warned = new Promise<Error>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no warning for the bad packet')), 15_000);
      browser.once('warning', (e) => {
        clearTimeout(t);
        resolve(e);
      });
    });
    const sock = dgram.createSocket({ type: 'udp4', reuseAddr: true });
    await new Promise<void>((resolve) => sock.bind(0, '0.0.0.0', () => resolve()));
    // Out through loopback only, never the outside network.
    sock.setMulticastInterface('127.0.0.1');
    // A response with one TXT answer whose first string claims 255 bytes of a 10-byte record.
    const garbage = Buffer.from('0000840000000001000000000161000010000100000078000aff41', 'hex');
    await new Promise<void>((resolve, reject) =>
      sock.send(garbage, 5353, '224.0.0.251', (e) => (e ? reject(e) : resolve())),
    );
    sock.close();
    assert.match((await warned).message, /overflow|out of range|outside/i);

    const mac = randomMac();
    const p = new Publisher();
    publishers.push(p);
    const seen = waitFor(browser, 'up', (a) => a.mac === mac);
    p.publish(`${mac}@after-garbage`, 62078, '127.0.0.4', []);
    assert.equal((await seen).advert.mac, mac);
    await p.unpublish();
  });

  it('drops an advert that stops answering, and brings it back when it answers again', async () => {
    const mac = randomMac();
    const p = new Publisher();
    publishers.push(p);
    const seen = waitFor(browser, 'up', (a) => a.mac === mac);
    p.publish(`${mac}@x`, 62078, '127.0.0.3', []);
    const { advert } = await seen;

    // Nothing is older than staleAfterMs yet.
    browser.sweep();
    assert.ok(browser.adverts().some((a) => a.fqdn === advert.fqdn));
    const expired = waitFor(browser, 'down', (a) => a.fqdn === advert.fqdn);
    browser.sweep(Date.now() + 10 * 60_000);
    assert.equal((await expired).reason, 'expired');

    const back = waitFor(browser, 'up', (a) => a.mac === mac);
    browser.requery();
    const again = (await back).advert;
    assert.equal(again.fqdn, advert.fqdn);
    assert.ok(again.firstSeen >= advert.lastSeen);

    // An answer to a query refreshes lastSeen of a known advert.
    again.lastSeen = 0;
    const heard = waitFor(browser, 'seen', (a) => a.fqdn === advert.fqdn);
    browser.requery();
    await heard;
    assert.ok(again.lastSeen > 0);
    await p.unpublish();
  });

  it('stop() closes the socket and is idempotent', async () => {
    const b = new Mobdev2Browser({ mdns: LOOPBACK, requeryIntervalMs: 0 });
    b.start();
    assert.equal(b.running, true);
    await b.stop();
    await b.stop();
    assert.equal(b.running, false);
    assert.deepEqual(b.adverts(), []);
  });
});
