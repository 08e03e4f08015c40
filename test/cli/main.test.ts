import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it, test } from 'node:test';
import { startSim } from '../../src/sim';
import { mooring } from './run-cli';

describe('mooring CLI against the embedded simulated iPhone (--sim)', () => {
  let dataDir: string;
  before(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'mooring-cli-'));
  });
  after(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });
  const sim = (...argv: string[]) => mooring(...argv, '--sim', '--data-dir', dataDir);

  it('lists the device as not paired, then pairs it on first use of a session', async () => {
    const listed = await sim('devices', '--json');
    assert.equal(listed.code, 0, listed.err);
    const rows = JSON.parse(listed.out) as Array<{ udid: string; paired: boolean; name: string }>;
    assert.equal(rows.length, 1);
    assert.equal(rows[0]!.paired, false);
    assert.equal(rows[0]!.name, 'Simulated iPhone');

    const info = await sim('info', '--key', 'DeviceName', '--json');
    assert.equal(info.code, 0, info.err);
    assert.match(info.out, /Paired with Simulated iPhone/);
    assert.match(info.out, /"Simulated iPhone"$/);
    const again = await sim('devices', '--json');
    assert.equal((JSON.parse(again.out) as Array<{ paired: boolean }>)[0]!.paired, true);
  });

  it('pairs over USB, stores the record 0600, then reads values over USB and over Wi-Fi', async () => {
    const paired = await sim('pair');
    assert.equal(paired.code, 0, paired.err);
    assert.match(paired.err, /tap "Trust"/);
    assert.match(paired.out, /Paired with Simulated iPhone/);
    const udid = /\(([0-9A-F-]+)\)/.exec(paired.out)![1]!;
    const st = await stat(path.join(dataDir, 'pair-records', `${udid}.plist`));
    assert.equal(st.mode & 0o777, 0o600);

    const usb = await sim('info', '--via', 'usb', '--key', 'UniqueDeviceID', '--json');
    assert.equal(usb.code, 0, usb.err);
    assert.equal(JSON.parse(usb.out), udid);

    const wifi = await sim(
      'info',
      '--via',
      'wifi',
      '--domain',
      'com.apple.mobile.backup',
      '--json',
    );
    assert.equal(wifi.code, 0, wifi.err);
    assert.equal((JSON.parse(wifi.out) as { WillEncrypt: boolean }).WillEncrypt, false);
  });

  it('switches Wi-Fi connections off (Wi-Fi then unreachable) and on again', async () => {
    const off = await sim('wifi', 'off', '--via', 'usb');
    assert.equal(off.code, 0, off.err);
    const key = [
      '--domain',
      'com.apple.mobile.wireless_lockdown',
      '--key',
      'EnableWifiConnections',
    ];
    const viaUsb = await sim('info', '--via', 'usb', ...key, '--json');
    assert.equal(JSON.parse(viaUsb.out), false);
    const viaWifi = await sim('info', '--via', 'wifi', ...key);
    assert.notEqual(viaWifi.code, 0, 'the Wi-Fi side must be down while connections are off');

    const on = await sim('wifi', 'on', '--via', 'usb');
    assert.equal(on.code, 0, on.err);
    const again = await sim('info', '--via', 'wifi', ...key, '--json');
    assert.equal(again.code, 0, again.err);
    assert.equal(JSON.parse(again.out), true);
  });
});

describe('mooring CLI with a device it is not paired with', () => {
  it('refuses a session and says how to pair', async () => {
    const tmp = await mkdtemp(path.join(os.tmpdir(), 'mooring-cli-unpaired-'));
    const device = await startSim({ stateDir: path.join(tmp, 'sim'), files: 5, bytes: 10_000 });
    try {
      const r = await mooring('info', '--usbmuxd', device.usbmuxdAddress, '--data-dir', tmp);
      assert.equal(r.code, 1);
      assert.match(
        r.err,
        new RegExp(`not paired with ${device.udid}.*mooring pair --udid ${device.udid}`),
      );
      const b = await mooring('backup', '--usbmuxd', device.usbmuxdAddress, '--data-dir', tmp);
      assert.equal(b.code, 1);
      assert.match(b.err, /not paired/);
    } finally {
      await device.stop();
      await rm(tmp, { recursive: true, force: true });
    }
  });
});

describe('mooring CLI usage errors', () => {
  it('names the bad flag or value and exits 2', async () => {
    const unknown = await mooring('devices', '--frobnicate');
    assert.equal(unknown.code, 2);
    assert.match(unknown.err, /unknown flag --frobnicate/);
    const via = await mooring('info', '--via', 'bluetooth');
    assert.equal(via.code, 2);
    assert.match(via.err, /--via: expected usb, wifi or auto/);
    const wifi = await mooring('info', '--via', 'wifi', '--usbmuxd', 'UNIX:/nonexistent');
    assert.equal(wifi.code, 2);
    assert.match(wifi.err, /--via wifi needs --host/);
    const cmd = await mooring('launch');
    assert.equal(cmd.code, 2);
    assert.match(cmd.err, /unknown command "launch"/);
  });

  it('says how to fix an unreachable usbmuxd', async () => {
    const r = await mooring('devices', '--usbmuxd', 'UNIX:/nonexistent/usbmuxd');
    assert.equal(r.code, 3);
    assert.match(r.err, /usbmuxd/);
    assert.match(r.err, /USBMUXD_SOCKET_ADDRESS|start/);
  });
});

test('the command line loads without the agent: only `mooring agent` loads it (discovery, the HTTP API)', () => {
  const out = execFileSync(
    process.execPath,
    [
      '--import',
      'tsx',
      '-e',
      `require('./src/cli/main');
       const loaded = (s) => Object.keys(require.cache).some((f) => f.includes(s));
       const before = { agent: loaded('/src/agent/agent.ts'), bonjour: loaded('/node_modules/bonjour-service/'), server: loaded('/src/api/server.ts') };
       require('./src/cli/agent-commands');
       const same = loaded('/src/agent/agent.ts');
       require('./src/cli/commands/agent');
       console.log(JSON.stringify({ before, same, after: loaded('/src/agent/agent.ts') && loaded('/node_modules/bonjour-service/') }));`,
    ],
    { cwd: path.resolve(__dirname, '..', '..'), encoding: 'utf8' },
  );
  assert.deepEqual(JSON.parse(out.trim().split('\n').pop()!), {
    before: { agent: false, bonjour: false, server: false },
    same: false,
    after: true,
  });
});
