/**
 * LockdownClient, DeviceSession and pair records against the simulated device, over its usbmuxd
 * (UsbmuxdClient + UsbmuxEndpoint) and over Wi-Fi (TcpEndpoint to 127.0.0.2).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { isMooringError } from '../../src/util/errors';
import { isPlistDict } from '../../src/protocol/plist/types';
import type { PairRecord } from '../../src/pairing/pair-record';
import { openLockdown, DeviceSession } from '../../src/lockdown/session';
import { findPairRecord, savePairRecord } from '../../src/lockdown/pair-records';
import { WIRELESS_LOCKDOWN_DOMAIN } from '../../src/lockdown/constants';
import { NOT_UNLOCKED_SINCE_BOOT } from '../../src/lockdown/errors';
import { pairOverUsb, startSimFixture, type SimFixture } from './sim-fixture';

let f: SimFixture;
let record: PairRecord;

before(async () => {
  // A passcode nobody enters by itself, so the tests can lock the device.
  f = await startSimFixture({ passcode: { kind: 'never' } });
});

after(async () => {
  await f?.close();
});

test('sessionless: QueryType, a few values, and GetProhibited for the rest', async () => {
  const lockdown = await openLockdown(f.usb, { timeoutMs: 5000 });
  try {
    assert.equal(await lockdown.queryType(), 'com.apple.mobile.lockdown');
    assert.equal(await lockdown.getValue(undefined, 'UniqueDeviceID'), f.sim.udid);
    assert.equal(typeof (await lockdown.getValue(undefined, 'ProductVersion')), 'string');
    await assert.rejects(
      lockdown.getValue('com.apple.mobile.backup', 'WillEncrypt'),
      (e) => isMooringError(e, 'DEVICE_ERROR') && e.detail === 'GetProhibited',
    );
    // The connection is still in step after an error reply.
    assert.equal(await lockdown.queryType(), 'com.apple.mobile.lockdown');
  } finally {
    lockdown.close();
  }
});

test('pairing over Wi-Fi is refused with a hint to use USB', async () => {
  const lockdown = await openLockdown(f.wifi, { timeoutMs: 5000 });
  try {
    await assert.rejects(
      lockdown.pair({ systemBuid: 'X', pollIntervalMs: 50 }),
      (e) =>
        isMooringError(e, 'PAIRING') &&
        e.detail === 'PairingProhibitedOverThisConnection' &&
        /USB/.test(e.message),
    );
  } finally {
    lockdown.close();
  }
});

test('pair over USB returns a complete record, saved to usbmuxd and our store', async () => {
  record = await pairOverUsb(f);
  assert.ok(record.EscrowBag && record.EscrowBag.length > 0, 'EscrowBag from the Pair reply');
  assert.match(record.WiFiMACAddress ?? '', /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
  assert.equal(record.UDID, f.sim.udid);
  assert.match(record.HostID, /^[0-9A-F-]{36}$/);
  assert.equal(record.SystemBUID, await f.mux.readBuid());
  assert.match(record.HostPrivateKey.toString(), /BEGIN PRIVATE KEY/);
  assert.match(record.RootPrivateKey.toString(), /BEGIN PRIVATE KEY/);

  const storeDir = path.join(f.tmp, 'store');
  const saved = await savePairRecord(f.sim.udid, record, {
    usbmuxd: f.mux,
    deviceId: f.deviceId,
    storeDir,
  });
  assert.equal(saved.usbmuxd, true);
  const found = await findPairRecord(f.sim.udid, { usbmuxd: f.mux, systemDir: null, storeDir });
  assert.equal(found?.source, 'usbmuxd');
  assert.equal(found?.record.HostID, record.HostID);
  assert.deepEqual(found?.record.EscrowBag, record.EscrowBag);
});

test('a paired session over USB: TLS, values in domains, SetValue EnableWifiConnections', async () => {
  const s = await DeviceSession.open(f.usb, record, { timeoutMs: 5000 });
  try {
    assert.equal(s.session.tls, true);
    assert.equal(s.transport, 'usb');
    const all = await s.getDomain();
    assert.equal(all.UniqueDeviceID, f.sim.udid);
    assert.equal(typeof all.DeviceName, 'string');
    assert.equal(typeof (await s.getValue('com.apple.mobile.backup', 'WillEncrypt')), 'boolean');
    const wireless = await s.getValue(WIRELESS_LOCKDOWN_DOMAIN);
    assert.ok(isPlistDict(wireless));
    await s.lockdown.enableWifiConnections(true);
    assert.equal(await s.getValue(WIRELESS_LOCKDOWN_DOMAIN, 'EnableWifiConnections'), true);
    await s.setValue(WIRELESS_LOCKDOWN_DOMAIN, 'EnableWifiConnections', true);
    await assert.rejects(s.getValue('com.apple.no.such.domain', 'x'), (e) =>
      isMooringError(e, 'DEVICE_ERROR'),
    );
  } finally {
    await s.close();
  }
});

test('a paired session over Wi-Fi, presenting the root certificate', async () => {
  const s = await DeviceSession.open(f.wifi, record, {
    timeoutMs: 5000,
    presentRootCertificate: true,
  });
  try {
    assert.equal(s.transport, 'wifi');
    assert.equal(s.session.tls, true);
    assert.equal(await s.getValue(undefined, 'UniqueDeviceID'), f.sim.udid);
  } finally {
    await s.close();
  }
});

test('StopSession drops TLS and the connection carries on in plaintext', async () => {
  const lockdown = await openLockdown(f.usb, { timeoutMs: 5000 });
  try {
    await lockdown.startSession(record);
    assert.equal(
      typeof (await lockdown.getValue('com.apple.mobile.backup', 'WillEncrypt')),
      'boolean',
    );
    await lockdown.stopSession();
    assert.equal(lockdown.sessionInfo, undefined);
    assert.equal(await lockdown.queryType(), 'com.apple.mobile.lockdown');
    await assert.rejects(lockdown.getValue('com.apple.mobile.backup', 'WillEncrypt'), (e) =>
      isMooringError(e, 'DEVICE_ERROR'),
    );
    // A second session on the same connection.
    await lockdown.startSession(record);
    assert.equal(await lockdown.getValue(undefined, 'UniqueDeviceID'), f.sim.udid);
    await lockdown.stopSession();
  } finally {
    lockdown.close();
  }
});

test('an unknown service is a mapped error', async () => {
  const s = await DeviceSession.open(f.usb, record, { timeoutMs: 5000 });
  try {
    await assert.rejects(
      s.startService('com.apple.no.such.service'),
      (e) =>
        isMooringError(e, 'DEVICE_ERROR') &&
        e.detail === 'InvalidService' &&
        /com\.apple\.no\.such\.service/.test(e.message),
    );
  } finally {
    await s.close();
  }
});

test('a locked device: Pair and StartService mobilebackup2 say to unlock it', async () => {
  await f.sim.ctl('lock');
  try {
    const s = await DeviceSession.open(f.usb, record, { timeoutMs: 5000 });
    try {
      await assert.rejects(
        s.startService('com.apple.mobilebackup2', { escrowBag: true }),
        (e) =>
          isMooringError(e, 'DEVICE_ERROR') &&
          e.detail === 'PasswordProtected' &&
          /Unlock the device/.test(e.message),
      );
    } finally {
      await s.close();
    }
    const lockdown = await openLockdown(f.usb, { timeoutMs: 5000 });
    try {
      await assert.rejects(
        lockdown.pair({ systemBuid: 'X', pollIntervalMs: 50 }),
        (e) =>
          isMooringError(e, 'DEVICE_ERROR') &&
          e.detail === 'PasswordProtected' &&
          /Unlock the device/.test(e.message),
      );
    } finally {
      lockdown.close();
    }
  } finally {
    await f.sim.ctl('unlock');
  }
});

test('after ctl revoke-pairing, StartSession fails with the PAIRING error on USB and Wi-Fi', async () => {
  await f.sim.ctl('revoke-pairing');
  for (const endpoint of [f.usb, f.wifi]) {
    await assert.rejects(
      DeviceSession.open(endpoint, record, { timeoutMs: 5000 }),
      (e) =>
        isMooringError(e, 'PAIRING') &&
        e.detail === 'InvalidHostID' &&
        /no longer trusted by the device: connect it by USB, unlock it and pair again \(mooring pair\)/.test(
          e.message,
        ),
    );
  }
  // Pairing again fixes it.
  record = await pairOverUsb(f);
  const s = await DeviceSession.open(f.wifi, record, { timeoutMs: 5000 });
  await s.close();
});

test('unpair removes the pairing; ValidatePair then fails', async () => {
  const lockdown = await openLockdown(f.usb, { timeoutMs: 5000 });
  try {
    await lockdown.validatePair(record);
    await lockdown.unpair(record);
    await assert.rejects(
      lockdown.validatePair(record),
      (e) => isMooringError(e, 'PAIRING') && e.detail === 'InvalidHostID',
    );
  } finally {
    lockdown.close();
  }
});

test("trust prompt: Pair is re-sent while the dialog is up; Trust and Don't Trust", async () => {
  const p = await startSimFixture({ trust: 'prompt' });
  try {
    const lockdown = await openLockdown(p.usb, { timeoutMs: 5000 });
    try {
      let dialogs = 0;
      const rec = await lockdown.pair({
        systemBuid: await p.mux.readBuid(),
        pollIntervalMs: 20,
        onDialog: () => {
          dialogs++;
          void p.sim.ctl('trust', { answer: 'accept' });
        },
      });
      assert.equal(dialogs, 1);
      assert.ok(rec.EscrowBag);
      await assert.rejects(
        lockdown.pair({
          systemBuid: await p.mux.readBuid(),
          pollIntervalMs: 20,
          onDialog: () => void p.sim.ctl('trust', { answer: 'deny' }),
        }),
        (e) => isMooringError(e, 'PAIRING') && e.detail === 'UserDeniedPairing',
      );
      await assert.rejects(
        lockdown.pair({ systemBuid: 'X', pollIntervalMs: 20, timeoutMs: 100 }),
        (e) => isMooringError(e, 'TIMEOUT') && e.detail === 'PairingDialogResponsePending',
      );
    } finally {
      lockdown.close();
    }
  } finally {
    await p.close();
  }
});

test('a device not unlocked since it restarted: StartService mobilebackup2 says so', async () => {
  // A simulator of its own: a reboot gives the USB device a new usbmuxd id.
  const g = await startSimFixture({ passcode: { kind: 'never' } });
  try {
    const rec = await pairOverUsb(g);
    await g.sim.ctl('reboot');
    const s = await DeviceSession.open(g.wifi, rec, { timeoutMs: 5000 });
    try {
      await assert.rejects(
        s.startService('com.apple.mobilebackup2', { escrowBag: true }),
        (e) =>
          isMooringError(e, 'DEVICE_ERROR') &&
          e.detail === NOT_UNLOCKED_SINCE_BOOT &&
          /has restarted and has not been unlocked since.*unlock it once/.test(e.message),
      );
      await g.sim.ctl('unlock');
      const mb = await s.startService('com.apple.mobilebackup2', { escrowBag: true });
      mb.close();
    } finally {
      await s.close();
    }
  } finally {
    await g.close();
  }
});
