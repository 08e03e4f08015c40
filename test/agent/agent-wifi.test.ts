/**
 * The Agent with no USB at all: a simulator advertises `_apple-mobdev2._tcp` on the loopback
 * interface only, the agent finds it through Bonjour, matches it to the pair record in its data
 * folder and backs it up over Wi-Fi on schedule; when the device leaves the network the device
 * shows as unreachable and "back up now" says so.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Agent } from '../../src/agent/agent';
import type { RunningSim } from '../../src/sim/index';
import { LOOPBACK_MDNS } from '../discovery/sim-helpers';
import { nextAttempt, simFixture, type SimFixture, waitForEvent } from './agent-helpers';

describe('Agent: one device on Wi-Fi found through Bonjour', () => {
  let f: SimFixture;
  let sim: RunningSim;
  let agent: Agent;
  let udid: string;

  before(async () => {
    // Paired over the simulator's own usbmuxd; the agent itself never sees that usbmuxd.
    f = await simFixture('mooring-agent-wifi-', {
      wifi: '127.0.0.6',
      wifiPort: 0,
      bonjour: '127.0.0.1',
      files: 20,
      bytes: 1_000_000,
      seed: 84,
      name: 'Agent WiFi',
    });
    ({ sim, udid } = f);
    agent = await Agent.open(
      f.agentOptions({ usbmuxd: null, mdns: LOOPBACK_MDNS, wifiPort: 'advertised' }),
    );
  });
  after(async () => {
    await agent?.stop();
    await f?.close();
  });

  it('backs the device up over Wi-Fi once Bonjour shows it', async () => {
    const done = nextAttempt(agent, udid, (a) => a.outcome !== 'running', 'the Wi-Fi backup');
    await agent.start();
    assert.equal(agent.status().usbmuxd, 'off');
    assert.equal(agent.status().bonjour, 'browsing');
    const a = await done;
    assert.equal(a.outcome, 'success', a.message ?? '');
    assert.equal(a.transport, 'wifi');
    assert.ok(a.bytes > 500_000, `bytes: ${a.bytes}`);
    const d = agent.device(udid)!;
    assert.deepEqual(d.reachable, { usb: false, wifi: true });
    assert.equal(d.address, '127.0.0.6');
    assert.equal(d.name, 'Agent WiFi');
  });

  it('shows the device unreachable once it leaves the network', async () => {
    const gone = waitForEvent(agent, 'the device gone', (e) =>
      e.type === 'device' && e.device.udid === udid && !e.device.reachable.wifi ? true : undefined,
    );
    await sim.ctl('offline');
    await gone;
    const r = await agent.backupNow(udid);
    assert.equal(r.code, 'NOT_REACHABLE');
    assert.match(r.message, /Wi-Fi/);
  });
});
