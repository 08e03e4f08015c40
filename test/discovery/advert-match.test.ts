import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { matchAdvert, type PairingKey } from '../../src/discovery/advert-match';
import { parseTxtEntries, readMobdev2Txt } from '../../src/discovery/txt-auth';
import { authTxtStrings } from '../../src/sim/bonjour';

const ID = 'C0FFEE00-0000-4000-8000-000000000001';

function advert(instanceName: string, hostIds: string[] = []) {
  const raw = hostIds.length ? authTxtStrings(ID, hostIds) : [];
  return { instanceName, txt: readMobdev2Txt(parseTxtEntries(raw)) };
}

const A: PairingKey = { udid: 'UDID-A', hostId: 'HOST-1', wifiMac: 'aa:aa:aa:aa:aa:01' };
const B: PairingKey = { udid: 'UDID-B', hostId: 'HOST-2', wifiMac: 'bb:bb:bb:bb:bb:02' };
/** A second device paired by a tool that uses one HostID per computer. */
const C: PairingKey = { udid: 'UDID-C', hostId: 'HOST-2', wifiMac: 'cc:cc:cc:cc:cc:03' };

describe('matchAdvert', () => {
  it('matches by MAC when there are no tags', () => {
    assert.deepEqual(matchAdvert(advert('AA:AA:AA:AA:AA:01@fe80::1'), [A, B]), {
      kind: 'matched',
      udid: 'UDID-A',
      by: 'mac',
    });
  });

  it('matches by authTag whatever the MAC says', () => {
    assert.deepEqual(matchAdvert(advert('02:00:00:00:00:09@x', ['HOST-X', 'HOST-1']), [A, B]), {
      kind: 'matched',
      udid: 'UDID-A',
      by: 'authTag',
    });
  });

  it('narrows a tag shared by several records with the MAC, else calls it ambiguous', () => {
    assert.deepEqual(matchAdvert(advert('cc:cc:cc:cc:cc:03@x', ['HOST-2']), [A, B, C]), {
      kind: 'matched',
      udid: 'UDID-C',
      by: 'authTag',
    });
    assert.deepEqual(matchAdvert(advert('02:00:00:00:00:09@x', ['HOST-2']), [A, B, C]), {
      kind: 'ambiguous',
      udids: ['UDID-B', 'UDID-C'],
      by: 'authTag',
    });
  });

  it('falls back to the MAC when no tag is ours (a device that forgot us)', () => {
    assert.deepEqual(matchAdvert(advert('bb:bb:bb:bb:bb:02@x', ['HOST-OTHER']), [A, B]), {
      kind: 'matched',
      udid: 'UDID-B',
      by: 'mac',
    });
  });

  it('ignores adverts of devices we do not know', () => {
    assert.deepEqual(matchAdvert(advert('02:00:00:00:00:09@x', ['HOST-OTHER']), [A, B]), {
      kind: 'unknown',
    });
    assert.deepEqual(matchAdvert(advert('no mac here'), [A, B]), { kind: 'unknown' });
    assert.deepEqual(matchAdvert(advert('aa:aa:aa:aa:aa:01@x'), []), { kind: 'unknown' });
  });

  it('skips records with an unusable HostID or MAC', () => {
    const bad: PairingKey[] = [
      { udid: 'U1', hostId: '', wifiMac: 'not a mac' },
      { udid: 'U2', hostId: 'x'.repeat(500) },
    ];
    assert.deepEqual(matchAdvert(advert('02:00:00:00:00:09@x', ['']), bad), { kind: 'unknown' });
  });
});
