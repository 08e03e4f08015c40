/**
 * Discovery across a real link, as on a home network but private to this test: two network
 * namespaces joined by a veth pair. Two simulators run in the "phone" namespace with their own
 * addresses, lockdownd on the real port 62078 and mDNS on the veth; the registry runs in the
 * "computer" namespace with its default port rule (62078, not the SRV port). Nothing here can
 * reach the machine's outside network. Needs root (ip netns); skipped otherwise.
 *
 * Pairing goes through each simulator's usbmuxd UNIX socket, which, being a file, is reachable
 * from the test's own namespace.
 */
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { UsbmuxEndpoint } from '../../src/lockdown/endpoint';
import { savePairRecord } from '../../src/lockdown/pair-records';
import { openLockdown } from '../../src/lockdown/session';
import { sendControlRequest } from '../../src/sim/control';
import { parseUsbmuxdAddress } from '../../src/transport/usbmuxd-address';
import { UsbmuxdClient } from '../../src/transport/usbmuxd-client';

const ROOT = path.join(__dirname, '..', '..');
const SIM_BIN = path.join(ROOT, 'src', 'bin', 'mooring-sim.ts');
const CHILD = path.join(__dirname, 'netns-registry-child.ts');
const tag = String(process.pid % 100_000);
const NS_HOST = `mdisc-h-${tag}`;
const NS_PHONE = `mdisc-p-${tag}`;
const VETH_HOST = `mdh${tag}`;
const VETH_PHONE = `mdp${tag}`;
const HOST_ADDR = '10.213.77.1';
const PHONE_ADDRS = ['10.213.77.2', '10.213.77.3'];

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(cmd, args, { timeout: 10_000 }, (e, stdout, stderr) =>
      e ? reject(new Error(`${cmd} ${args.join(' ')}: ${stderr || e.message}`)) : resolve(stdout),
    ),
  );
}

const inNs = (ns: string, ...args: string[]): Promise<string> =>
  run('ip', ['netns', 'exec', ns, ...args]);

/** Why the test cannot run here, or undefined. */
async function cannotRun(): Promise<string | undefined> {
  if (process.platform !== 'linux') return 'network namespaces are Linux-only';
  if (process.getuid?.() !== 0) return 'needs root for ip netns';
  try {
    await run('ip', ['netns', 'list']);
  } catch (e) {
    return `ip netns unavailable: ${(e as Error).message}`;
  }
  return undefined;
}

/** JSON lines of a child's stdout, with a way to wait for one. */
class Lines {
  readonly seen: Array<Record<string, unknown>> = [];
  private waiters: Array<{
    pred: (o: Record<string, unknown>) => boolean;
    resolve: (o: Record<string, unknown>) => void;
  }> = [];

  constructor(child: ChildProcess) {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let o: Record<string, unknown>;
      try {
        o = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return;
      }
      this.seen.push(o);
      this.waiters = this.waiters.filter((w) => {
        if (!w.pred(o)) return true;
        w.resolve(o);
        return false;
      });
    });
  }

  /** The first line (already seen or to come) satisfying `pred`; a safety timeout, not a measure. */
  waitFor(
    pred: (o: Record<string, unknown>) => boolean,
    what: string,
  ): Promise<Record<string, unknown>> {
    const found = this.seen.find(pred);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), 30_000);
      this.waiters.push({
        pred,
        resolve: (o) => {
          clearTimeout(timer);
          resolve(o);
        },
      });
    });
  }
}

describe('discovery across network namespaces', async () => {
  const skip = await cannotRun();
  let tmp: string;
  let storeDir: string;
  const children: ChildProcess[] = [];
  const sims: Array<{ udid: string; stateDir: string; usbmuxd: string; mac: string }> = [];
  let registry: Lines;

  const spawnIn = (ns: string, args: string[]): ChildProcess => {
    const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '--import', 'tsx', ...args], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    children.push(child);
    return child;
  };

  before(async () => {
    if (skip) return;
    tmp = await mkdtemp(path.join(os.tmpdir(), 'mooring-netns-'));
    storeDir = path.join(tmp, 'store');
    await run('ip', ['netns', 'add', NS_HOST]);
    await run('ip', ['netns', 'add', NS_PHONE]);
    await run('ip', ['link', 'add', VETH_HOST, 'type', 'veth', 'peer', 'name', VETH_PHONE]);
    await run('ip', ['link', 'set', VETH_HOST, 'netns', NS_HOST]);
    await run('ip', ['link', 'set', VETH_PHONE, 'netns', NS_PHONE]);
    for (const [ns, dev, addrs] of [
      [NS_HOST, VETH_HOST, [HOST_ADDR]],
      [NS_PHONE, VETH_PHONE, PHONE_ADDRS],
    ] as const) {
      for (const a of addrs) await inNs(ns, 'ip', 'addr', 'add', `${a}/24`, 'dev', dev);
      await inNs(ns, 'ip', 'link', 'set', 'lo', 'up');
      await inNs(ns, 'ip', 'link', 'set', dev, 'up');
      // Multicast leaves through the veth (without this route sends fail with ENETUNREACH).
      await inNs(ns, 'ip', 'route', 'add', '224.0.0.0/4', 'dev', dev);
    }

    // Phone 1: legacy advert (real MAC). Phone 2: iOS 26.4+ advert (private MAC, TXT tags).
    const flags = [[], ['--bonjour-mac-hidden']];
    const ready = PHONE_ADDRS.map((addr, i) => {
      const stateDir = path.join(tmp, `phone${i}`);
      const child = spawnIn(NS_PHONE, [
        SIM_BIN,
        '--state',
        stateDir,
        '--wifi',
        addr,
        '--bonjour',
        addr,
        '--files',
        '3',
        '--bytes',
        '3000',
        '--seed',
        String(70 + i),
        '--name',
        `Netns Phone ${i}`,
        '--quiet',
        ...flags[i]!,
      ]);
      return new Lines(child).waitFor((o) => o.ready === true, `simulator ${i}`);
    });
    for (const r of await Promise.all(ready)) {
      sims.push({
        udid: String(r.udid),
        stateDir: String(r.stateDir),
        usbmuxd: String(r.usbmuxd),
        mac: '',
      });
    }

    // Pair both over "USB" and keep the records where the registry looks.
    for (const s of sims) {
      const mux = new UsbmuxdClient({ address: parseUsbmuxdAddress(s.usbmuxd)!, timeoutMs: 5000 });
      const dev = await mux.findDevice(s.udid);
      assert.ok(dev, `${s.udid} attached to its usbmuxd`);
      const lockdown = await openLockdown(new UsbmuxEndpoint(mux, dev.deviceId, dev.udid), {
        timeoutMs: 5000,
      });
      try {
        const record = await lockdown.pair({
          systemBuid: await mux.readBuid(),
          pollIntervalMs: 50,
          timeoutMs: 10_000,
        });
        s.mac = record.WiFiMACAddress ?? '';
        await savePairRecord(s.udid, record, { storeDir });
      } finally {
        lockdown.close();
      }
    }

    registry = new Lines(spawnIn(NS_HOST, [CHILD, storeDir, HOST_ADDR]));
    await registry.waitFor((o) => o.event === 'started', 'the registry to start');
  });

  after(async () => {
    if (skip) return;
    for (const c of children) {
      if (c.exitCode !== null || c.signalCode !== null) continue;
      const exited = new Promise((resolve) => c.once('exit', resolve));
      c.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    }
    await run('ip', ['netns', 'del', NS_HOST]).catch(() => undefined);
    await run('ip', ['netns', 'del', NS_PHONE]).catch(() => undefined);
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('finds both phones over the link and opens sessions on port 62078', { skip }, async () => {
    const [legacy, hidden] = sims as [(typeof sims)[0], (typeof sims)[0]];
    const a = await registry.waitFor(
      (o) => o.event === 'appeared' && o.udid === legacy.udid,
      'the legacy phone',
    );
    assert.equal(a.host, PHONE_ADDRS[0]);
    assert.equal(a.port, 62078);
    assert.equal(a.matchedBy, 'mac');
    assert.equal(a.sessionUdid, legacy.udid);

    const b = await registry.waitFor(
      (o) => o.event === 'appeared' && o.udid === hidden.udid,
      'the private-MAC phone',
    );
    assert.equal(b.host, PHONE_ADDRS[1]);
    assert.equal(b.matchedBy, 'authTag');
    assert.equal(b.sessionUdid, hidden.udid);
  });

  it('sees a phone leave the network', { skip }, async () => {
    const legacy = sims[0]!;
    await sendControlRequest(path.join(legacy.stateDir, 'control.sock'), 'offline', {});
    await registry.waitFor(
      (o) => o.event === 'disappeared' && o.udid === legacy.udid,
      'the phone to leave',
    );
  });
});
