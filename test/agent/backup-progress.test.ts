/**
 * What a running backup shows while it runs, against a simulated iPhone on USB: the device's own
 * percentage (null until its first report, then carried by the progress events and the device's
 * status), and a device that goes quiet (it "prepares" before its first message) told with since
 * when, cleared once it talks again.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Agent } from '../../src/agent/agent';
import type { AgentEvent, RunningBackup } from '../../src/agent/types';
import { backUpNow, simFixture, type SimFixture, startedOnUsb } from './agent-helpers';

describe('Agent: a running backup’s percentage and its quiet spells', () => {
  let f: SimFixture;
  let agent: Agent;

  before(async () => {
    f = await simFixture('mooring-backup-progress-', { files: 40, bytes: 4_000_000, seed: 91 });
    // A stall is told after 300 ms without a message (15 s by default).
    agent = await startedOnUsb(f.agentOptions({ backupTimeouts: { stallNoticeMs: 300 } }), f.udid);
  });
  after(async () => {
    await agent?.stop();
    await f?.close();
  });

  it('carries the device’s percentage, and says when the device went quiet and when it spoke', async () => {
    // The device says nothing for 2 s after the backup is asked for.
    await f.sim.ctl('fault', { name: 'delayFirstMessageMs', value: '2000' });
    const running: RunningBackup[] = [];
    const percents: Array<number | null> = [];
    const off = agent.subscribe((e: AgentEvent) => {
      if (e.type === 'device' && e.device.udid === f.udid && e.device.running) {
        running.push(e.device.running);
      }
      if (e.type === 'progress' && e.udid === f.udid) percents.push(e.percent);
    });
    const asked = Date.now();
    try {
      await backUpNow(agent, f.udid);
    } finally {
      off();
      await f.sim.ctl('fault', { name: 'delayFirstMessageMs', value: '0' });
    }
    const quiet = running.find((r) => r.quietSince !== null);
    assert.ok(quiet, 'a device status told the quiet spell');
    assert.ok(
      quiet.quietSince! >= asked - 1000 && quiet.quietSince! <= asked + 2000,
      `quiet since ${quiet.quietSince} (asked at ${asked})`,
    );
    const spoke = running.findIndex((r) => r.quietSince !== null);
    assert.ok(
      running.slice(spoke).some((r) => r.quietSince === null),
      'cleared once the device spoke again',
    );
    // The device's own numbers, never falling, up to 100.
    const reported = percents.filter((p): p is number => p !== null);
    assert.ok(reported.length > 0, `percentages: ${JSON.stringify(percents)}`);
    assert.ok(reported.every((p, i) => p >= 0 && p <= 100 && (i === 0 || p >= reported[i - 1]!)));
    assert.equal(reported.at(-1), 100);
  });
});
