/**
 * The Agent without devices (no usbmuxd, no Bonjour): open() turns attempts a killed agent left
 * 'running' into 'interrupted' with a notice; status, settings, pause/resume and their events;
 * a bad setting is refused whole; stop() is idempotent.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Agent } from '../../src/agent/agent';
import type { AgentEvent } from '../../src/agent/types';
import { openHistory } from '../../src/history';
import { isMooringError } from '../../src/util/errors';

describe('Agent without devices', () => {
  let tmp: string;
  let dataDir: string;
  let agent: Agent;
  const udid = '00008120-00000000000000AA';
  let runningId: number;

  before(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'mooring-agent-open-'));
    dataDir = path.join(tmp, 'data');
    // What a killed agent leaves behind: an attempt still marked running.
    await Agent.open({ dataDir, usbmuxd: null, mdns: null, systemPairRecordDir: null }).then((a) =>
      a.stop(),
    );
    const h = openHistory(path.join(dataDir, 'history.db'));
    h.upsertDevice({ udid, name: 'Left Running' });
    runningId = h.startAttempt({ udid, trigger: 'schedule', transport: 'wifi' });
    h.close();
    agent = await Agent.open({
      dataDir,
      usbmuxd: null,
      mdns: null,
      systemPairRecordDir: null,
      timeZone: 'UTC',
    });
  });
  after(async () => {
    await agent?.stop();
    await rm(tmp, { recursive: true, force: true });
  });

  it('records attempts a killed agent left running as interrupted, each with a notice', () => {
    const a = agent.attempts({ udid }).items[0]!;
    assert.equal(a.id, runningId);
    assert.equal(a.outcome, 'interrupted');
    const n = agent.history({ udid }).items[0]!;
    assert.equal(n.reasonCode, 'INTERRUPTED');
    assert.equal(n.attemptId, runningId);
  });

  it('reports its status and the devices the history knows', async () => {
    await agent.start();
    const s = agent.status();
    assert.equal(s.usbmuxd, 'off');
    assert.equal(s.bonjour, 'off');
    assert.equal(s.paused, false);
    assert.equal(s.running, 0);
    assert.equal(s.concurrency, 1);
    assert.equal(s.timeZone, 'UTC');
    assert.equal(s.backupDir, path.join(dataDir, 'backups'));
    assert.equal(s.devices.length, 1);
    const d = s.devices[0]!;
    assert.equal(d.name, 'Left Running');
    assert.equal(d.paired, false);
    assert.deepEqual(d.reachable, { usb: false, wifi: false });
    assert.equal(d.running, null);
    assert.equal(s.summary.attempts.interrupted, 1);
    assert.equal(agent.device(udid.toLowerCase())?.udid, udid, 'found whatever the case');
    assert.equal(agent.device('00008120-00000000000000BB'), undefined);
  });

  it('pauses and resumes, stored as the paused setting, with agent events', () => {
    const events: AgentEvent[] = [];
    const off = agent.subscribe((e) => events.push(e));
    agent.pause();
    assert.equal(agent.status().paused, true);
    assert.equal(agent.getConfig().paused, 'true');
    agent.resume();
    assert.equal(agent.status().paused, false);
    off();
    const pausedFlags = events.flatMap((e) => (e.type === 'agent' ? [e.paused] : []));
    assert.deepEqual(pausedFlags, [true, false]);
  });

  it('validates settings before writing any, and re-reads them per device', () => {
    assert.throws(
      () => agent.setConfig({ interval: '2h', concurrency: '99' }),
      (e: unknown) => isMooringError(e, 'USAGE') && /concurrency/.test(e.message),
    );
    assert.equal(agent.getConfig().interval, '24h', 'nothing written');
    const after = agent.setConfig({ interval: '2h', concurrency: '2' });
    assert.equal(after.interval, '2h');
    assert.equal(agent.status().concurrency, 2);
    assert.equal(agent.setConfig({ interval: '30m' }, udid).interval, '30m');
    assert.equal(agent.device(udid)?.settings.interval, '30m');
    assert.equal(agent.getConfig().interval, '2h');
    assert.throws(() => agent.getConfig('00008120-00000000000000BB'), /No device/);
  });

  it('refuses back-up-now for a device it cannot reach or has no pairing for', async () => {
    const r = await agent.backupNow(udid);
    assert.equal(r.started, false);
    assert.equal(r.code, 'NOT_PAIRED');
    assert.match(r.message, /mooring pair --udid/);
    assert.equal(agent.cancel(udid), false);
  });

  it('stops once, however often asked', async () => {
    await Promise.all([agent.stop(), agent.stop()]);
    await agent.stop();
    // Stopped for good: its history is closed.
    assert.throws(() => agent.status(), /history database .* is closed/);
  });
});
