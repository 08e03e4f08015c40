/**
 * The Agent with an iOS 17 simulator that has a passcode, so it asks for it at every backup:
 * the scheduled backup waits at the prompt (WAITING_FOR_PASSCODE, RunningBackup.passcodeWaiting)
 * and succeeds once the passcode is entered; stop() in the middle of a backup records it as
 * interrupted; a restarted agent keeps its history and settings and backs up again.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Agent, type AgentOptions } from '../../src/agent/agent';
import type { RunningSim } from '../../src/sim/index';
import {
  attemptsOf,
  nextAttempt,
  nextNotification,
  notificationsOf,
  simFixture,
  type SimFixture,
  untilOnUsb,
  waitForEvent,
} from './agent-helpers';

describe('Agent: passcode prompt, stop mid-backup, restart', () => {
  let f: SimFixture;
  let sim: RunningSim;
  let agent: Agent | undefined;
  let udid: string;
  let opts: AgentOptions;

  before(async () => {
    f = await simFixture('mooring-agent-life-', {
      files: 20,
      bytes: 1_000_000,
      seed: 82,
      name: 'Agent Passcode',
      ios: '17.5',
      passcode: { kind: 'never' },
    });
    ({ sim, udid } = f);
    opts = f.agentOptions();
  });
  after(async () => {
    await agent?.stop();
    await f?.close();
  });

  const passcodeWaiting = (a: Agent): Promise<number> =>
    waitForEvent(a, 'the passcode prompt', (e) =>
      e.type === 'device' && e.device.udid === udid && e.device.running?.passcodeWaiting === true
        ? e.device.running.attemptId
        : undefined,
    );

  it('tells the user the phone waits for its passcode, and succeeds once it is entered', async () => {
    agent = await Agent.open(opts);
    agent.setConfig({ interval: '24h' });
    const prompt = passcodeWaiting(agent);
    const waiting = nextNotification(agent, udid, 'WAITING_FOR_PASSCODE');
    const done = nextAttempt(agent, udid, (a) => a.outcome !== 'running', 'the first backup');
    await agent.start();
    const attemptId = await prompt;
    const n = await waiting;
    assert.equal(n.attemptId, attemptId);
    assert.equal(n.severity, 'warning');
    assert.match(n.fixHint ?? '', /passcode/i);
    assert.equal(agent.device(udid)?.running?.phase, 'waiting-for-passcode');
    await sim.ctl('enter-passcode');
    const a = await done;
    assert.equal(a.id, attemptId);
    assert.equal(a.outcome, 'success', a.message ?? '');
    assert.equal(a.trigger, 'schedule');
    assert.equal(agent.device(udid)?.running, null);
  });

  it('stop() during a backup cancels it and records it as interrupted', async () => {
    const a = agent!;
    const prompt = passcodeWaiting(a);
    const r = await a.backupNow(udid);
    assert.equal(r.started, true, r.message);
    await prompt;
    await a.stop();
    agent = undefined;
    // The history is closed now; a new agent reads what the old one wrote.
    agent = await Agent.open(opts);
    const attempts = attemptsOf(agent, udid);
    const last = attempts[attempts.length - 1]!;
    assert.equal(last.id, r.attemptId);
    assert.equal(last.outcome, 'interrupted');
    assert.equal(last.reasonCode, 'INTERRUPTED');
    const codes = notificationsOf(agent, udid).map((x) => x.reasonCode);
    assert.equal(codes[codes.length - 1], 'INTERRUPTED');
    assert.equal(codes.filter((c) => c === 'INTERRUPTED').length, 1, 'recorded once');
  });

  it('a restarted agent keeps history and settings, and the next backup succeeds', async () => {
    const a = agent!;
    assert.equal(a.getConfig().interval, '24h');
    assert.deepEqual(
      attemptsOf(a, udid).map((x) => x.outcome),
      ['success', 'interrupted'],
    );
    const notDue = nextNotification(a, udid, 'NOT_DUE');
    await a.start();
    // The interval counts from the success recorded before the restart.
    const n = await notDue;
    assert.match(n.message, /next backup/);
    assert.equal(a.device(udid)?.name, 'Agent Passcode');
    await untilOnUsb(a, udid);
    const prompt = passcodeWaiting(a);
    const done = nextAttempt(a, udid, (x) => x.outcome !== 'running', 'the backup after restart');
    const r = await a.backupNow(udid);
    assert.equal(r.started, true, r.message);
    await prompt;
    await sim.ctl('enter-passcode');
    const last = await done;
    assert.equal(last.outcome, 'success', last.message ?? '');
    assert.equal(last.trigger, 'manual');
    assert.deepEqual(
      attemptsOf(a, udid).map((x) => x.outcome),
      ['success', 'interrupted', 'success'],
    );
  });
});
