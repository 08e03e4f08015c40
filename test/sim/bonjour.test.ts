/**
 * The simulator's iOS 26.4+ advert options: flags, validation, the instance name with a hidden
 * MAC, and TXT tags that follow the device's pairings. (Discovery of these adverts by the host
 * is tested in test/discovery/registry-wifi.test.ts.)
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { BonjourAdvert, MAX_ADVERTISED_AUTH_TAGS, authTxtStrings } from '../../src/sim/bonjour';
import { parseRunArgs } from '../../src/sim/cli';
import { startSim } from '../../src/sim/index';

describe('simulator Bonjour options', () => {
  it('parses --bonjour-txt and --bonjour-mac-hidden', () => {
    const o = parseRunArgs([
      '--state',
      'd',
      '--wifi',
      '127.0.0.2',
      '--bonjour',
      '127.0.0.1',
      '--bonjour-txt',
      '--bonjour-mac-hidden',
    ]);
    assert.equal(o.bonjourTxt, true);
    assert.equal(o.bonjourMacHidden, true);
    const plain = parseRunArgs(['--state', 'd']);
    assert.equal(plain.bonjourTxt, undefined);
    assert.throws(() => parseRunArgs(['--state', 'd', '--bonjour-txt=yes']), /takes no value/);
  });

  it('refuses the TXT options without --bonjour', async () => {
    const tmp = await mkdtemp(path.join(os.tmpdir(), 'sim-bonjour-'));
    try {
      await assert.rejects(startSim({ stateDir: tmp, wifi: '127.0.0.2', bonjourMacHidden: true }), {
        code: 'USAGE',
      });
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  });

  it('hides the MAC behind a random locally administered one', () => {
    const mk = (hideMac: boolean) =>
      new BonjourAdvert({
        iface: '127.0.0.1',
        wifiMac: 'dd:1c:79:33:2d:1c',
        address: '127.0.0.2',
        port: 1,
        hostName: 'x',
        log: () => undefined,
        hideMac,
      });
    assert.equal(mk(false).instanceName, 'dd:1c:79:33:2d:1c@127-0-0-2');
    const hidden = mk(true).instanceName;
    assert.match(hidden, /^[0-9a-f]{2}(:[0-9a-f]{2}){5}@127-0-0-2$/);
    assert.notEqual(hidden.slice(0, 17), 'dd:1c:79:33:2d:1c');
    assert.equal(parseInt(hidden.slice(0, 2), 16) & 0x03, 0x02, 'locally administered, unicast');
  });

  it('advertises a bounded number of tags', () => {
    const hosts = Array.from({ length: 40 }, (_, i) => `HOST-${i}`);
    assert.equal(authTxtStrings('ID', hosts).length, 1 + MAX_ADVERTISED_AUTH_TAGS);
    assert.deepEqual(authTxtStrings('ID', []).map(String), ['identifier=ID']);
  });
});
