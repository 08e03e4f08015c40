import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { isMooringError } from '../../src/util/errors';
import {
  buildVersionFor,
  deriveIdentityValues,
  loadOrCreateIdentity,
  normaliseUdid,
} from '../../src/sim/identity';

describe('sim identity', () => {
  const dirs: string[] = [];
  after(async () => {
    for (const d of dirs) await fsp.rm(d, { recursive: true, force: true });
  });

  it('derives realistic values deterministically from the seed', () => {
    const a = deriveIdentityValues({ seed: 7 });
    const b = deriveIdentityValues({ seed: 7 });
    const c = deriveIdentityValues({ seed: 8 });
    assert.deepEqual(a, b);
    assert.notEqual(a.udid, c.udid);
    assert.match(a.udid, /^00008120-[0-9A-F]{16}$/);
    assert.equal(a.usbSerial, a.udid.replace('-', ''));
    assert.equal(a.usbSerial.length, 24);
    assert.equal(a.uniqueChipID, parseInt(a.udid.slice(9), 16));
    assert.ok(Number.isSafeInteger(a.uniqueChipID));
    assert.match(a.serialNumber, /^F2L[A-Z0-9]{9}$/);
    assert.match(a.wifiMac, /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
    assert.equal(a.productType, 'iPhone15,2');
    assert.equal(a.productVersion, '17.5');
    assert.equal(a.buildVersion, '21F79');
  });

  it('derives the rest from a given UDID', () => {
    const v = deriveIdentityValues({ udid: '00008030-001a2b3c4d5e6f70' });
    assert.equal(v.udid, '00008030-001A2B3C4D5E6F70');
    assert.equal(v.usbSerial, '00008030001A2B3C4D5E6F70');
    assert.equal(v.uniqueChipID, 0x001a2b3c4d5e6f70);
    assert.deepEqual(deriveIdentityValues({ udid: '00008030001A2B3C4D5E6F70' }), v);
  });

  it('refuses malformed UDIDs and versions with USAGE errors naming the flag', () => {
    for (const bad of ['', 'xyz', '00008030-001A2B3C4D5E6F7', '../../etc/passwd']) {
      assert.throws(
        () => normaliseUdid(bad),
        (e) => isMooringError(e, 'USAGE') && /--udid/.test(e.message),
      );
    }
    for (const bad of ['17', 'seventeen', '17.5.1.2', '']) {
      assert.throws(
        () => buildVersionFor(bad),
        (e) => isMooringError(e, 'USAGE') && /--ios/.test(e.message),
      );
    }
    assert.equal(buildVersionFor('16.1'), '20B82');
    assert.match(buildVersionFor('19.2'), /^23C\d+$/);
  });

  it('persists the identity with its key, and a restart is the same device', async () => {
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'sim-id-'));
    dirs.push(dir);
    const first = await loadOrCreateIdentity(dir, { seed: 3 });
    assert.match(first.devicePublicKeyPem, /^-----BEGIN RSA PUBLIC KEY-----/);
    const again = await loadOrCreateIdentity(dir, {});
    assert.deepEqual(again, first);
    const renamed = await loadOrCreateIdentity(dir, { name: 'Other', ios: '18.0' });
    assert.equal(renamed.deviceName, 'Other');
    assert.equal(renamed.buildVersion, '22A3354');
    assert.equal(renamed.devicePrivateKeyPem, first.devicePrivateKeyPem);
    await assert.rejects(
      loadOrCreateIdentity(dir, { udid: '00008120-0000000000000001' }),
      (e) => isMooringError(e, 'USAGE') && /does not match/.test(e.message),
    );
    await fsp.writeFile(path.join(dir, 'identity.json'), '{"udid": 1');
    await assert.rejects(loadOrCreateIdentity(dir, {}), (e) => isMooringError(e, 'MALFORMED'));
  });
});
