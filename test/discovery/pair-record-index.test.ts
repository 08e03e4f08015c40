/**
 * PairRecordIndex over real folders of real pair records: listing, the two UDID spellings,
 * hostile folder contents, and matching adverts (MAC and authTag) through the index.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PairRecordIndex } from '../../src/discovery/pair-record-index';
import { parseTxtEntries, readMobdev2Txt } from '../../src/discovery/txt-auth';
import { MAX_PAIR_RECORD_BYTES } from '../../src/pairing/pair-record';
import {
  generateDeviceKeyPair,
  generatePairingCertificates,
  type PairingCertificates,
} from '../../src/pairing/certificates';
import { pairRecordForDevice, serializePairRecord } from '../../src/pairing/pair-record';
import { authTxtStrings } from '../../src/sim/bonjour';

const UDID_A = '00008120-00AAAAAAAAAAAAAA';
const UDID_B = '00008120-00BBBBBBBBBBBBBB';
const LEGACY = 'a'.repeat(40);

describe('PairRecordIndex', () => {
  let tmp: string;
  let store: string;
  let system: string;
  let certs: PairingCertificates;

  const write = (dir: string, name: string, hostId: string, mac?: string): Promise<void> =>
    writeFile(
      path.join(dir, name),
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
    tmp = await mkdtemp(path.join(os.tmpdir(), 'mooring-index-'));
    store = path.join(tmp, 'store');
    system = path.join(tmp, 'system');
    await mkdir(store);
    await mkdir(system);
    certs = generatePairingCertificates(generateDeviceKeyPair().publicKeyPkcs1Pem);
    await write(store, `${UDID_A}.plist`, 'HOST-A', 'AA:AA:AA:AA:AA:01');
    // The dash-less USB spelling, as some tools name the file.
    await write(system, `${UDID_B.replace('-', '')}.plist`, 'HOST-B', 'bb:bb:bb:bb:bb:02');
    await write(store, `${LEGACY}.plist`, 'HOST-L');
    // Hostile or irrelevant entries.
    await write(system, 'SystemConfiguration.plist', 'HOST-X');
    await writeFile(path.join(store, '00008120-00CCCCCCCCCCCCCC.plist'), 'not a plist');
    await writeFile(
      path.join(store, '00008120-00DDDDDDDDDDDDDD.plist'),
      Buffer.alloc(MAX_PAIR_RECORD_BYTES + 1),
    );
    await mkdir(path.join(store, '00008120-00EEEEEEEEEEEEEE.plist'));
    await writeFile(path.join(store, '..weird.plist'), 'x');
    await writeFile(path.join(store, 'notes.txt'), 'x');
    await symlink('/nonexistent', path.join(store, '00008120-00FFFFFFFFFFFFFF.plist'));
  });
  after(() => rm(tmp, { recursive: true, force: true }));

  it('indexes the good records of both folders and reports the broken ones', async () => {
    const index = new PairRecordIndex({ storeDir: store, systemDir: system });
    const problems = await index.refresh();
    assert.deepEqual(
      index
        .list()
        .map((r) => r.udid)
        .sort(),
      [UDID_A, UDID_B, LEGACY].sort(),
    );
    assert.equal(index.get(UDID_A)?.wifiMac, 'aa:aa:aa:aa:aa:01', 'lower-cased');
    assert.equal(index.get(UDID_B)?.source, 'system');
    assert.equal(index.get(UDID_B.replace('-', ''))?.hostId, 'HOST-B', 'either spelling finds it');
    assert.equal(index.get(LEGACY)?.wifiMac, undefined);
    assert.deepEqual(problems.map((p) => p.udid).sort(), [
      '00008120-00CCCCCCCCCCCCCC',
      '00008120-00DDDDDDDDDDDDDD',
    ]);
    assert.ok(index.lastRefresh > 0);
  });

  it('forgets records that disappeared, and a missing folder is just empty', async () => {
    const dir = path.join(tmp, 'shrinking');
    await mkdir(dir);
    await write(dir, `${UDID_A}.plist`, 'HOST-A');
    const index = new PairRecordIndex({ storeDir: dir, systemDir: path.join(tmp, 'nope') });
    await index.refresh();
    assert.equal(index.size, 1);
    await rm(path.join(dir, `${UDID_A}.plist`));
    await index.refresh();
    assert.equal(index.size, 0);
    assert.equal(await index.loadUdid(UDID_A), undefined);
  });

  it('matches adverts through the index, by MAC and by authTag', async () => {
    const index = new PairRecordIndex({ storeDir: store, systemDir: system });
    await index.refresh();
    const none = readMobdev2Txt(parseTxtEntries([]));
    assert.deepEqual(index.match({ instanceName: 'aa:aa:aa:aa:aa:01@fe80::1', txt: none }), {
      kind: 'matched',
      udid: UDID_A,
      by: 'mac',
    });
    const tagged = readMobdev2Txt(parseTxtEntries(authTxtStrings('SOME-ID', ['HOST-B'])));
    assert.deepEqual(index.match({ instanceName: '02:00:00:00:00:00@x', txt: tagged }), {
      kind: 'matched',
      udid: UDID_B,
      by: 'authTag',
    });
    const stranger = readMobdev2Txt(parseTxtEntries(authTxtStrings('SOME-ID', ['HOST-Q'])));
    assert.deepEqual(index.match({ instanceName: '02:00:00:00:00:00@x', txt: stranger }), {
      kind: 'unknown',
    });
  });

  it('loadUdid throws for a record that exists but is unusable', async () => {
    const index = new PairRecordIndex({ storeDir: store, systemDir: null });
    await assert.rejects(index.loadUdid('00008120-00CCCCCCCCCCCCCC'), { code: 'PAIRING' });
    await assert.rejects(index.loadUdid('../../etc/passwd'), { code: 'UNSAFE_PATH' });
    assert.equal(index.size, 0);
  });
});
