/**
 * The simulator against Debian's real libimobiledevice tools (idevice_id, idevicepair,
 * ideviceinfo), pointed at the simulator's usbmuxd through USBMUXD_SOCKET_ADDRESS.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { decodePlist, isPlistDict } from '../../src/protocol/plist';
import { startSim, type RunningSim, type SimOptions } from '../../src/sim/index';

interface ToolResult {
  code: number;
  stdout: string;
  stderr: string;
}

function tool(sim: RunningSim, cmd: string, args: string[]): Promise<ToolResult> {
  return new Promise((resolve) => {
    execFile(
      cmd,
      args,
      { env: { ...process.env, USBMUXD_SOCKET_ADDRESS: sim.usbmuxdAddress }, timeout: 30_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** `idevicepair pair` as a user runs it: the first try shows the dialog, the second collects the answer. */
async function pairThroughDialog(sim: RunningSim): Promise<ToolResult> {
  const answered = once(sim.device, 'trust-answered');
  const first = await tool(sim, 'idevicepair', ['pair']);
  assert.equal(first.code, 1);
  assert.match(first.stdout, /Please accept the trust dialog on the screen of device/);
  await answered;
  return tool(sim, 'idevicepair', ['pair']);
}

describe('mooring-sim against libimobiledevice tools', () => {
  const dirs: string[] = [];
  const running = new Set<RunningSim>();
  let root: string;

  async function sim(name: string, opts: Partial<SimOptions> = {}): Promise<RunningSim> {
    const s = await startSim({
      stateDir: path.join(root, name),
      files: 8,
      bytes: 20_000,
      seed: 9,
      ...opts,
    });
    running.add(s);
    return s;
  }
  async function stop(s: RunningSim): Promise<void> {
    running.delete(s);
    await s.stop();
  }

  before(async () => {
    root = await fsp.mkdtemp(path.join(os.tmpdir(), 'sim-tools-'));
    dirs.push(root);
  });
  after(async () => {
    for (const s of running) await s.stop();
    for (const d of dirs) await fsp.rm(d, { recursive: true, force: true });
  });

  it('is listed, pairs, validates, shows its values; a restart is the same paired device; revoke unpairs', async () => {
    let s = await sim('main');
    const list = await tool(s, 'idevice_id', ['-l']);
    assert.equal(list.code, 0, list.stderr);
    assert.equal(list.stdout.trim(), s.udid);
    assert.match(s.udid, /^00008120-[0-9A-F]{16}$/);

    const paired = await pairThroughDialog(s);
    assert.equal(paired.code, 0, paired.stdout + paired.stderr);
    assert.match(paired.stdout, new RegExp(`SUCCESS: Paired with device ${s.udid}`));
    // libimobiledevice saved its pair record through our usbmuxd.
    const record = decodePlist(await fsp.readFile(path.join(s.pairRecordDir, `${s.udid}.plist`)));
    assert.ok(isPlistDict(record));
    assert.equal(typeof record.HostID, 'string');
    assert.ok(Buffer.isBuffer(record.EscrowBag));
    assert.equal(record.WiFiMACAddress, s.device.identity.wifiMac);
    assert.deepEqual(
      s.device.pairings.list().map((p) => p.hostId),
      [(record.HostID as string).toUpperCase()],
    );

    const valid = await tool(s, 'idevicepair', ['validate']);
    assert.equal(valid.code, 0, valid.stdout);
    assert.match(valid.stdout, /SUCCESS: Validated pairing/);

    const info = await tool(s, 'ideviceinfo', []);
    assert.equal(info.code, 0, info.stderr);
    assert.match(info.stdout, /^DeviceName: Mooring Test iPhone$/m);
    assert.match(info.stdout, /^ProductVersion: 17\.5$/m);
    assert.match(info.stdout, new RegExp(`^UniqueDeviceID: ${s.udid}$`, 'm'));
    assert.match(info.stdout, /^SerialNumber: F2L[A-Z0-9]{9}$/m);
    const backup = await tool(s, 'ideviceinfo', ['-q', 'com.apple.mobile.backup']);
    assert.match(backup.stdout, /^WillEncrypt: false$/m);
    const key = await tool(s, 'ideviceinfo', ['-k', 'BuildVersion']);
    assert.equal(key.stdout.trim(), '21F79');

    // Restart on the same state directory: same UDID, and the pairing still holds.
    const udid = s.udid;
    await stop(s);
    s = await sim('main');
    assert.equal(s.udid, udid);
    const again = await tool(s, 'idevicepair', ['validate']);
    assert.equal(again.code, 0, again.stdout);

    await s.ctl('revoke-pairing');
    const revoked = await tool(s, 'idevicepair', ['validate']);
    assert.equal(revoked.code, 1);
    assert.match(revoked.stdout, /is not paired with this host/);
  });

  it('reports "user denied" to idevicepair when the scripted user taps Don\'t Trust', async () => {
    const s = await sim('deny', { trust: 'deny' });
    const denied = await pairThroughDialog(s);
    assert.equal(denied.code, 1);
    assert.match(denied.stdout, /said that the user denied the trust dialog/);
    assert.equal(s.device.pairings.list().length, 0);
    await assert.rejects(fsp.stat(path.join(s.pairRecordDir, `${s.udid}.plist`)));
  });

  it('tells idevicepair to unlock first while the device is locked', async () => {
    const logs: Array<Record<string, unknown>> = [];
    const s = await sim('locked', {
      passcode: { kind: 'never' },
      log: (line) => logs.push(JSON.parse(line) as Record<string, unknown>),
    });
    await s.ctl('lock');
    const r = await tool(s, 'idevicepair', ['pair']);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /a passcode is set/);
    await s.ctl('unlock');
    assert.equal((await pairThroughDialog(s)).code, 0);
    // A reboot drops every connection and, with a passcode set, leaves the device locked.
    assert.deepEqual(await s.ctl('reboot'), { rebooted: true, locked: true });
    assert.equal((await tool(s, 'idevice_id', ['-l'])).stdout.trim(), s.udid);
    const info = await tool(s, 'ideviceinfo', ['-k', 'ProductVersion']);
    assert.equal(info.stdout.trim(), '17.5', 'lockdown sessions work while locked');
    // Not unlocked since the restart: idevicebackup2's StartService (with the escrow bag) gets
    // MissingValue, as libimobiledevice#1078 reports from a real phone.
    const into = `${s.stateDir}-sealed`;
    await fsp.mkdir(into);
    const seen = logs.length;
    const sealed = await tool(s, 'idevicebackup2', ['backup', '--full', into]);
    assert.notEqual(sealed.code, 0);
    assert.match(sealed.stdout, /Could not start service com\.apple\.mobilebackup2/);
    const asked = logs.slice(seen);
    assert.ok(
      asked.some((l) => l.service === 'com.apple.mobilebackup2' && l.escrowBag === true),
      'idevicebackup2 sent the escrow bag',
    );
    assert.ok(
      asked.some((l) => l.event === 'lockdown-refused' && l.error === 'MissingValue'),
      JSON.stringify(asked.filter((l) => String(l.event).startsWith('lockdown'))),
    );
    assert.deepEqual(await s.ctl('enter-passcode'), { prompts: 0, locked: false });
  });

  it('disappears from idevice_id on detach and comes back on attach', async () => {
    const s = await sim('plug');
    await s.ctl('detach');
    assert.equal((await tool(s, 'idevice_id', ['-l'])).stdout.trim(), '');
    await s.ctl('attach');
    assert.equal((await tool(s, 'idevice_id', ['-l'])).stdout.trim(), s.udid);
  });
});
