import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  generateDeviceKeyPair,
  generatePairingCertificates,
  type PairingCertificates,
} from '../../src/pairing/certificates';
import { encodeAfcPacket, readAfcPacket, AfcOp, decodeKeyValueList } from '../../src/protocol/afc';
import type { PlistDict } from '../../src/protocol/plist';
import type { PasscodeMode, SimServiceSpec, TrustMode } from '../../src/sim/contracts';
import { SimDevice } from '../../src/sim/device';
import { HostPairings } from '../../src/sim/host-pairings';
import { deriveIdentityValues, type DeviceIdentity } from '../../src/sim/identity';
import { SESSIONLESS_KEYS, serveLockdown } from '../../src/sim/lockdownd';
import { afcService } from '../../src/sim/services/afc';
import { LOCKDOWN_PORT, PortTable, socketPair, type Transport } from '../../src/sim/service-ports';
import { PlistConnection } from '../../src/transport/plist-connection';
import { isMooringError } from '../../src/util/errors';
import { StreamReader } from '../../src/util/stream-reader';

const HOST_ID = '5B0B2D0A-7C3E-4E4F-9D7B-0123456789AB';
const BUID = 'A1B2C3D4-0000-1111-2222-333344445555';

interface Rig {
  device: SimDevice;
  ports: PortTable;
  connect(transport?: Transport): PlistConnection;
}

describe('sim lockdownd', () => {
  const dirs: string[] = [];
  let identity: DeviceIdentity;
  let certs: PairingCertificates;
  let otherKeyCerts: PairingCertificates;

  before(() => {
    const key = generateDeviceKeyPair();
    identity = {
      ...deriveIdentityValues({ seed: 11 }),
      devicePublicKeyPem: key.publicKeyPkcs1Pem,
      devicePrivateKeyPem: key.privateKeyPem,
    };
    certs = generatePairingCertificates(identity.devicePublicKeyPem);
    otherKeyCerts = generatePairingCertificates(generateDeviceKeyPair().publicKeyPkcs1Pem, {
      hostKeyPem: certs.hostKeyPem,
    });
  });
  after(async () => {
    for (const d of dirs) await fsp.rm(d, { recursive: true, force: true });
  });

  async function rig(
    trust: TrustMode = 'prompt',
    passcode: PasscodeMode = { kind: 'none' },
  ): Promise<Rig> {
    const stateDir = await fsp.mkdtemp(path.join(os.tmpdir(), 'sim-ld-'));
    dirs.push(stateDir);
    const device = await SimDevice.create({
      stateDir,
      identity,
      pairings: await HostPairings.load(path.join(stateDir, 'pairings')),
      mediaDir: path.join(stateDir, 'media'),
      passcode,
      trust,
      faults: {},
      log: () => undefined,
    });
    const ports = new PortTable();
    const services = new Map<string, SimServiceSpec>([
      ['com.apple.afc', { name: 'com.apple.afc', tls: 'network', handler: afcService }],
      [
        'com.apple.mobilebackup2',
        { name: 'com.apple.mobilebackup2', tls: 'network', handler: afcService },
      ],
    ]);
    const deps = { device, ports, services, serviceHost: () => undefined };
    ports.listen(LOCKDOWN_PORT, (stream, transport) => void serveLockdown(stream, transport, deps));
    return {
      device,
      ports,
      connect: (transport: Transport = 'usb') => {
        if (transport === 'usb')
          return new PlistConnection(ports.connectUsb(LOCKDOWN_PORT)!, { readTimeoutMs: 5000 });
        // A Wi-Fi client: same protocol, different transport tag.
        const [host, dev] = socketPair();
        void serveLockdown(dev, 'wifi', deps);
        return new PlistConnection(host, { readTimeoutMs: 5000 });
      },
    };
  }

  async function request(c: PlistConnection, req: PlistDict): Promise<PlistDict> {
    await c.send({ Label: 'test', ...req });
    const reply = await c.receiveDict();
    assert.equal(reply.Request, req.Request, 'every reply echoes Request');
    return reply;
  }

  function pairRecord(c: PairingCertificates = certs): PlistDict {
    return {
      DeviceCertificate: Buffer.from(c.deviceCertPem),
      HostCertificate: Buffer.from(c.hostCertPem),
      RootCertificate: Buffer.from(c.rootCertPem),
      HostID: HOST_ID,
      SystemBUID: BUID,
    };
  }

  async function pairedRig(passcode: PasscodeMode = { kind: 'none' }): Promise<Rig> {
    const r = await rig('prompt', passcode);
    const c = r.connect();
    assert.equal(
      (await request(c, { Request: 'Pair', PairRecord: pairRecord() })).Error,
      'PairingDialogResponsePending',
    );
    r.device.answerTrust('accept');
    const ok = await request(c, { Request: 'Pair', PairRecord: pairRecord() });
    assert.equal(ok.Result, 'Success');
    c.close();
    return r;
  }

  async function session(
    r: Rig,
    cert = certs.rootCertPem,
    key = certs.rootKeyPem,
    transport: Transport = 'usb',
  ): Promise<{ c: PlistConnection; id: string }> {
    const c = r.connect(transport);
    const reply = await request(c, { Request: 'StartSession', HostID: HOST_ID, SystemBUID: BUID });
    assert.equal(reply.EnableSessionSSL, true);
    assert.equal(typeof reply.SessionID, 'string');
    await c.upgradeToTlsClient({ cert, key });
    return { c, id: reply.SessionID as string };
  }

  it('answers QueryType and the sessionless values, and nothing else without a session', async () => {
    const r = await rig();
    const c = r.connect();
    const q = await request(c, { Request: 'QueryType' });
    assert.equal(q.Type, 'com.apple.mobile.lockdown');
    assert.equal(q.Result, 'Success');
    assert.equal((await request(c, { Request: 'GetValue', Key: 'ProductVersion' })).Value, '17.5');
    const pk = await request(c, { Request: 'GetValue', Key: 'DevicePublicKey' });
    assert.ok(
      Buffer.isBuffer(pk.Value) && pk.Value.toString().startsWith('-----BEGIN RSA PUBLIC KEY-----'),
    );
    assert.equal(
      (await request(c, { Request: 'GetValue', Key: 'WiFiAddress' })).Value,
      identity.wifiMac,
    );
    assert.equal(
      (await request(c, { Request: 'GetValue', Key: 'SerialNumber' })).Error,
      'GetProhibited',
    );
    assert.equal(
      (
        await request(c, {
          Request: 'GetValue',
          Domain: 'com.apple.mobile.backup',
          Key: 'WillEncrypt',
        })
      ).Error,
      'GetProhibited',
    );
    const all = await request(c, { Request: 'GetValue' });
    assert.deepEqual(Object.keys(all.Value as PlistDict).sort(), [...SESSIONLESS_KEYS].sort());
    assert.equal(
      (await request(c, { Request: 'StartService', Service: 'com.apple.afc' })).Error,
      'SessionInactive',
    );
    assert.equal(
      (await request(c, { Request: 'SetValue', Key: 'DeviceName', Value: 'x' })).Error,
      'SetProhibited',
    );
    assert.equal((await request(c, { Request: 'Frobnicate' })).Error, 'InvalidRequest');
    c.close();
  });

  it('pairs through the trust dialog, and remembers only certificates made for its own key', async () => {
    const r = await rig('prompt');
    const c = r.connect();
    assert.equal(
      (await request(c, { Request: 'StartSession', HostID: HOST_ID })).Error,
      'InvalidHostID',
    );
    const bad = await request(c, { Request: 'Pair', PairRecord: pairRecord(otherKeyCerts) });
    assert.equal(bad.Error, 'InvalidPairRecord');
    assert.equal((await request(c, { Request: 'Pair' })).Error, 'MissingPairRecord');
    assert.equal(
      (await request(c, { Request: 'Pair', PairRecord: pairRecord() })).Error,
      'PairingDialogResponsePending',
    );
    assert.equal(
      (await request(c, { Request: 'Pair', PairRecord: pairRecord() })).Error,
      'PairingDialogResponsePending',
    );
    r.device.answerTrust('accept');
    const ok = await request(c, { Request: 'Pair', PairRecord: pairRecord() });
    assert.equal(ok.Result, 'Success');
    assert.ok(Buffer.isBuffer(ok.EscrowBag) && ok.EscrowBag.length > 0);
    assert.equal(
      (await request(c, { Request: 'ValidatePair', PairRecord: pairRecord() })).Result,
      'Success',
    );
    assert.equal(r.device.pairings.list().length, 1);
    // A restart reads the pairing back from disk.
    const reloaded = await HostPairings.load(path.join(r.device.stateDir, 'pairings'));
    assert.equal(reloaded.get(HOST_ID)?.systemBuid, BUID);
    assert.equal(
      (await request(c, { Request: 'Unpair', PairRecord: pairRecord() })).Result,
      'Success',
    );
    assert.equal(
      (await request(c, { Request: 'ValidatePair', PairRecord: pairRecord() })).Error,
      'InvalidHostID',
    );
    c.close();
  });

  it('reports a denied dialog, refuses Pair over Wi-Fi and while locked', async () => {
    const deny = await rig('prompt');
    const c = deny.connect();
    assert.equal(
      (await request(c, { Request: 'Pair', PairRecord: pairRecord() })).Error,
      'PairingDialogResponsePending',
    );
    assert.throws(() => deny.device.answerTrust('maybe' as 'accept'), /no trust dialog|accept/);
    deny.device.answerTrust('deny');
    assert.equal(
      (await request(c, { Request: 'Pair', PairRecord: pairRecord() })).Error,
      'UserDeniedPairing',
    );
    c.close();
    const w = deny.connect('wifi');
    assert.equal(
      (await request(w, { Request: 'Pair', PairRecord: pairRecord() })).Error,
      'PairingProhibitedOverThisConnection',
    );
    w.close();
    const locked = await rig('auto', { kind: 'never' });
    locked.device.lock();
    const l = locked.connect();
    assert.equal(
      (await request(l, { Request: 'Pair', PairRecord: pairRecord() })).Error,
      'PasswordProtected',
    );
    l.close();
    assert.throws(
      () => deny.device.lock(),
      (e) => isMooringError(e, 'USAGE'),
      'no passcode, no lock',
    );
  });

  it('runs a TLS session with the host-minted certificate: values, domains, SetValue, StartService', async () => {
    const r = await pairedRig();
    const { c, id } = await session(r);
    const backup = await request(c, {
      Request: 'GetValue',
      Domain: 'com.apple.mobile.backup',
      Key: 'WillEncrypt',
    });
    assert.equal(backup.Value, false);
    assert.equal(
      (await request(c, { Request: 'GetValue', Key: 'SerialNumber' })).Value,
      identity.serialNumber,
    );
    const all = (await request(c, { Request: 'GetValue' })).Value as PlistDict;
    for (const k of [
      'UniqueDeviceID',
      'UniqueChipID',
      'ProductType',
      'BuildVersion',
      'DeviceClass',
    ])
      assert.ok(k in all, k);
    const itunes = await request(c, {
      Request: 'GetValue',
      Domain: 'com.apple.mobile.iTunes',
      Key: 'MinITunesVersion',
    });
    assert.equal(typeof itunes.Value, 'string');
    assert.equal(
      (await request(c, { Request: 'GetValue', Domain: 'com.example.none' })).Error,
      'MissingValue',
    );
    const set = await request(c, {
      Request: 'SetValue',
      Domain: 'com.apple.mobile.wireless_lockdown',
      Key: 'EnableWifiConnections',
      Value: false,
    });
    assert.equal(set.Result, 'Success');
    assert.equal(r.device.wifiConnectionsEnabled, false);
    const stored = JSON.parse(
      await fsp.readFile(path.join(r.device.stateDir, 'lockdown', 'values.json'), 'utf8'),
    );
    assert.equal(stored['com.apple.mobile.wireless_lockdown'].EnableWifiConnections, false);
    assert.equal(
      (await request(c, { Request: 'SetValue', Key: 'ProductVersion', Value: '1.0' })).Error,
      'SetProhibited',
    );
    assert.equal(
      (await request(c, { Request: 'StartService', Service: 'com.example.nope' })).Error,
      'InvalidService',
    );

    // Through usbmuxd a device starts afc plain, leaving EnableServiceSSL out (D40).
    const svc = await request(c, { Request: 'StartService', Service: 'com.apple.afc' });
    assert.equal('EnableServiceSSL' in svc, false);
    assert.equal(svc.Service, 'com.apple.afc');
    const afc = new PlistConnection(r.ports.connectUsb(svc.Port as number)!, {
      readTimeoutMs: 5000,
    });
    afc.stream.write(encodeAfcPacket({ packetNum: 1, operation: AfcOp.GET_DEVINFO }));
    const info = await readAfcPacket(new StreamReader(afc.stream), { timeoutMs: 5000 });
    assert.ok(decodeKeyValueList(info.data).Model);
    afc.close();

    // StopSession, then (like libimobiledevice) drop TLS and keep talking plaintext.
    assert.equal(
      (await request(c, { Request: 'StopSession', SessionID: 'wrong' })).Error,
      'InvalidSessionID',
    );
    assert.equal((await request(c, { Request: 'StopSession', SessionID: id })).Result, 'Success');
    await c.downgradeFromTls();
    assert.equal((await request(c, { Request: 'QueryType' })).Type, 'com.apple.mobile.lockdown');
    assert.equal(
      (await request(c, { Request: 'GetValue', Key: 'SerialNumber' })).Error,
      'GetProhibited',
    );
    c.close();
  });

  it('starts afc and mobilebackup2 with TLS over Wi-Fi, where it leaves them plain through usbmuxd', async () => {
    const r = await pairedRig();
    const { c } = await session(r, certs.rootCertPem, certs.rootKeyPem, 'wifi');
    for (const service of ['com.apple.afc', 'com.apple.mobilebackup2']) {
      const svc = await request(c, { Request: 'StartService', Service: service });
      assert.equal(svc.EnableServiceSSL, true, service);
    }
    const svc = await request(c, { Request: 'StartService', Service: 'com.apple.afc' });
    const afc = new PlistConnection(r.ports.connectUsb(svc.Port as number)!, {
      readTimeoutMs: 5000,
    });
    await afc.upgradeToTlsClient({ cert: certs.hostCertPem, key: certs.hostKeyPem });
    afc.stream.write(encodeAfcPacket({ packetNum: 1, operation: AfcOp.GET_DEVINFO }));
    const info = await readAfcPacket(new StreamReader(afc.stream), { timeoutMs: 5000 });
    assert.ok(decodeKeyValueList(info.data).Model);
    afc.close();
    c.close();
  });

  it('accepts the host certificate too, and drops a client presenting a stranger certificate', async () => {
    const r = await pairedRig();
    const host = await session(r, certs.hostCertPem, certs.hostKeyPem);
    assert.equal(
      (await request(host.c, { Request: 'GetValue', Key: 'DeviceName' })).Value,
      identity.deviceName,
    );
    host.c.close();
    const c = r.connect();
    await request(c, { Request: 'StartSession', HostID: HOST_ID, SystemBUID: BUID });
    await c
      .upgradeToTlsClient({ cert: otherKeyCerts.hostCertPem, key: otherKeyCerts.hostKeyPem })
      .catch(() => undefined);
    await assert.rejects(
      (async () => {
        await c.send({ Request: 'QueryType' });
        await c.receiveDict(3000);
      })(),
      (e) => isMooringError(e, 'CLOSED') || isMooringError(e, 'TLS'),
    );
  });

  it('refuses mobilebackup2 while locked with PasswordProtected', async () => {
    const r = await pairedRig({ kind: 'never' });
    r.device.lock();
    const { c } = await session(r);
    const mb = await request(c, { Request: 'StartService', Service: 'com.apple.mobilebackup2' });
    assert.equal(mb.Error, 'PasswordProtected');
    assert.equal(
      (await request(c, { Request: 'StartService', Service: 'com.apple.afc' })).Result,
      'Success',
    );
    r.device.enterPasscode();
    assert.equal(
      (await request(c, { Request: 'StartService', Service: 'com.apple.mobilebackup2' })).Result,
      'Success',
    );
    c.close();
  });

  it('after a reboot, until the first unlock: mobilebackup2 with the escrow bag is MissingValue', async () => {
    const r = await pairedRig({ kind: 'never' });
    r.device.markRebooted();
    assert.equal(r.device.locked, true);
    assert.equal(r.device.unlockedSinceBoot, false);
    const { c } = await session(r);
    const start = (escrow: boolean) =>
      request(c, {
        Request: 'StartService',
        Service: 'com.apple.mobilebackup2',
        ...(escrow ? { EscrowBag: Buffer.from('escrow') } : {}),
      });
    // As a phone answers it (libimobiledevice#1078): the escrow bag cannot be opened yet.
    assert.equal((await start(true)).Error, 'MissingValue');
    assert.equal((await start(false)).Error, 'PasswordProtected');
    r.device.unlock();
    assert.equal(r.device.unlockedSinceBoot, true);
    assert.equal((await start(true)).Result, 'Success');
    // Locked again after that first unlock: locked, not sealed.
    r.device.lock();
    assert.equal((await start(true)).Error, 'PasswordProtected');
    c.close();
    // A device without a passcode has nothing sealed after a reboot.
    const open = await pairedRig();
    open.device.markRebooted();
    assert.equal(open.device.unlockedSinceBoot, true);
  });

  it('survives hostile input: missing Request, non-dict, bad plist, oversized frame', async () => {
    const r = await rig();
    const c = r.connect();
    await c.send({ Label: 'no request' });
    assert.equal((await c.receiveDict()).Error, 'MissingValue');
    for (const payload of [
      Buffer.from('<plist><array></array></plist>'),
      Buffer.from('<plist><dict><key>Req'),
      Buffer.from([0xff, 0xff, 0xff, 0xff]),
    ]) {
      const x = r.connect();
      const frame = payload.length === 4 ? payload : Buffer.concat([u32(payload.length), payload]);
      await x.writeRaw(frame);
      await assert.rejects(x.receive(3000), (e) => isMooringError(e, 'CLOSED'));
    }
    // The device is still fine for everyone else.
    assert.equal((await request(c, { Request: 'QueryType' })).Result, 'Success');
    c.close();
  });
});

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}
