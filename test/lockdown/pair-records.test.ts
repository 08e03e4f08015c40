import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile, stat, readFile, mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { isMooringError } from '../../src/util/errors';
import { generateDeviceKeyPair, generatePairingCertificates } from '../../src/pairing/certificates';
import {
  pairRecordForDevice,
  parsePairRecord,
  serializePairRecord,
  type PairRecord,
} from '../../src/pairing/pair-record';
import { UsbmuxdServer } from '../../src/sim/usbmuxd-server';
import { UsbmuxdClient } from '../../src/transport/usbmuxd-client';
import {
  assertSafeUdid,
  deletePairRecord,
  findPairRecord,
  savePairRecord,
  systemLockdownDir,
} from '../../src/lockdown/pair-records';

const UDID = '00008030-001A35E2116B802E';
let tmp: string;
let server: UsbmuxdServer;
let mux: UsbmuxdClient;
let recordA: PairRecord;
let recordB: PairRecord;

function makeRecord(hostId: string): PairRecord {
  const device = generateDeviceKeyPair();
  return pairRecordForDevice({
    certificates: generatePairingCertificates(device.publicKeyPkcs1Pem),
    hostId,
    systemBuid: 'BUID-1',
    wifiMacAddress: 'aa:bb:cc:dd:ee:ff',
    escrowBag: Buffer.from('escrow'),
  });
}

before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'mooring-pair-records-'));
  server = new UsbmuxdServer({
    address: { kind: 'unix', path: path.join(tmp, 'usbmuxd.sock') },
    pairRecordDir: path.join(tmp, 'usbmuxd-records'),
    connect: () => undefined,
  });
  await server.start();
  mux = new UsbmuxdClient({ address: server.address, timeoutMs: 5000 });
  recordA = makeRecord('AAAAAAAA-0000-0000-0000-000000000000');
  recordB = makeRecord('BBBBBBBB-0000-0000-0000-000000000000');
});

after(async () => {
  await server.stop();
  await rm(tmp, { recursive: true, force: true });
});

test('system folder per platform', () => {
  assert.equal(systemLockdownDir('linux', {}), '/var/lib/lockdown');
  assert.equal(systemLockdownDir('darwin', {}), '/var/db/lockdown');
  assert.equal(systemLockdownDir('win32', { ProgramData: 'D:\\PD' }), 'D:\\PD\\Apple\\Lockdown');
  assert.equal(systemLockdownDir('win32', {}), 'C:\\ProgramData\\Apple\\Lockdown');
});

test('UDIDs that could escape a folder are refused', async () => {
  assert.throws(
    () => assertSafeUdid('../etc/passwd'),
    (e) => isMooringError(e, 'UNSAFE_PATH'),
  );
  assert.throws(
    () => assertSafeUdid(''),
    (e) => isMooringError(e, 'UNSAFE_PATH'),
  );
  assertSafeUdid(UDID);
  assertSafeUdid('a'.repeat(40));
  await assert.rejects(findPairRecord('x/y', { systemDir: null }), (e) =>
    isMooringError(e, 'UNSAFE_PATH'),
  );
});

test('lookup order: usbmuxd, then the system folder, then our store', async () => {
  const systemDir = path.join(tmp, 'system');
  const storeDir = path.join(tmp, 'store');
  await mkdir(systemDir, { recursive: true });
  await mkdir(storeDir, { recursive: true });

  assert.equal(await findPairRecord(UDID, { usbmuxd: mux, systemDir, storeDir }), undefined);

  await writeFile(path.join(storeDir, `${UDID}.plist`), serializePairRecord(recordA));
  let found = await findPairRecord(UDID, { usbmuxd: mux, systemDir, storeDir });
  assert.equal(found?.source, 'store');
  assert.equal(found?.record.HostID, recordA.HostID);

  await writeFile(path.join(systemDir, `${UDID}.plist`), serializePairRecord(recordB));
  found = await findPairRecord(UDID, { usbmuxd: mux, systemDir, storeDir });
  assert.equal(found?.source, 'system');
  assert.equal(found?.record.HostID, recordB.HostID);

  await mux.savePairRecord(UDID, serializePairRecord(recordA));
  found = await findPairRecord(UDID, { usbmuxd: mux, systemDir, storeDir });
  assert.equal(found?.source, 'usbmuxd');
  assert.equal(found?.location, 'usbmuxd');
  assert.equal(found?.record.HostID, recordA.HostID);
  assert.deepEqual(found?.record.EscrowBag, Buffer.from('escrow'));
  await mux.deletePairRecord(UDID);
});

test('an unreachable usbmuxd or unreadable folder is skipped', async () => {
  const storeDir = path.join(tmp, 'store2');
  await savePairRecord(UDID, recordA, { storeDir });
  const deadMux = new UsbmuxdClient({
    address: { kind: 'unix', path: path.join(tmp, 'nobody.sock') },
    timeoutMs: 1000,
  });
  const found = await findPairRecord(UDID, {
    usbmuxd: deadMux,
    systemDir: path.join(tmp, 'does-not-exist'),
    storeDir,
  });
  assert.equal(found?.source, 'store');
});

test('a corrupt record falls through to the next source, or fails with PAIRING when none is good', async () => {
  const systemDir = path.join(tmp, 'system3');
  const storeDir = path.join(tmp, 'store3');
  await mkdir(systemDir, { recursive: true });
  await writeFile(path.join(systemDir, `${UDID}.plist`), 'not a plist');
  await assert.rejects(findPairRecord(UDID, { systemDir, storeDir }), (e) =>
    isMooringError(e, 'PAIRING'),
  );
  await savePairRecord(UDID, recordB, { storeDir });
  const found = await findPairRecord(UDID, { systemDir, storeDir });
  assert.equal(found?.source, 'store');
  assert.equal(found?.record.HostID, recordB.HostID);
});

test('an oversized record file is refused', async () => {
  const systemDir = path.join(tmp, 'system4');
  await mkdir(systemDir, { recursive: true });
  await writeFile(path.join(systemDir, `${UDID}.plist`), Buffer.alloc(2 * 1024 * 1024));
  await assert.rejects(findPairRecord(UDID, { systemDir }), (e) => isMooringError(e, 'LIMIT'));
});

test('saving writes usbmuxd and a 0600 file in our store; deleting removes both', async () => {
  const storeDir = path.join(tmp, 'store5');
  const saved = await savePairRecord(UDID, recordB, { usbmuxd: mux, deviceId: 7, storeDir });
  assert.equal(saved.usbmuxd, true);
  assert.equal(saved.storePath, path.join(storeDir, `${UDID}.plist`));
  assert.equal((await stat(saved.storePath!)).mode & 0o777, 0o600);
  assert.equal(parsePairRecord(await readFile(saved.storePath!)).HostID, recordB.HostID);
  const viaMux = await mux.readPairRecord(UDID);
  assert.ok(viaMux);
  assert.equal(parsePairRecord(viaMux).HostID, recordB.HostID);

  await deletePairRecord(UDID, { usbmuxd: mux, storeDir });
  assert.equal(await mux.readPairRecord(UDID), undefined);
  assert.equal(await findPairRecord(UDID, { systemDir: null, storeDir }), undefined);
});

test('usbmuxd refusing a save still leaves the store copy', async () => {
  const storeDir = path.join(tmp, 'store6');
  const deadMux = new UsbmuxdClient({
    address: { kind: 'unix', path: path.join(tmp, 'nobody.sock') },
    timeoutMs: 1000,
  });
  const saved = await savePairRecord(UDID, recordA, { usbmuxd: deadMux, storeDir });
  assert.equal(saved.usbmuxd, false);
  assert.ok(saved.usbmuxdError);
  assert.ok(saved.storePath);
  await assert.rejects(savePairRecord(UDID, recordA, { usbmuxd: deadMux }), (e) =>
    isMooringError(e, 'USBMUXD'),
  );
});
