/**
 * Notices that take days to become true, with the agent's decision clock moved forward (timers
 * stay real; decisions and records read the clock given): NO_RECENT_BACKUP once a day and
 * escalating, PAIRING_EXPIRING once a day before the 30-day expiry, COMPUTER_ASLEEP for a window
 * slept through while a backup was due, and the lock-state activity that feeds the passcode
 * policy. Automatic backups are paused so nothing else happens meanwhile.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Agent } from '../../src/agent/agent';
import type { RunningSim } from '../../src/sim/index';
import {
  notificationsOf,
  simFixture,
  type SimFixture,
  untilOnUsb,
  waitForEvent,
} from './agent-helpers';

const DAY = 24 * 60 * 60 * 1000;

describe('Agent: staleness, pairing expiry, sleep, lock activity', () => {
  let f: SimFixture;
  let sim: RunningSim;
  let agent: Agent;
  let udid: string;
  let offset = 0;
  const now = (): number => Date.now() + offset;

  before(async () => {
    f = await simFixture('mooring-agent-notices-', {
      files: 3,
      bytes: 3000,
      seed: 83,
      name: 'Agent Notices',
      passcode: { kind: 'never' },
    });
    ({ sim, udid } = f);
    agent = await Agent.open(f.agentOptions({ now }));
    agent.pause();
    await agent.start();
    await untilOnUsb(agent, udid);
  });
  after(async () => {
    await agent?.stop();
    await f?.close();
  });

  /** Makes the agent look again (a setting that changes nothing else). */
  const lookAgain = (): void => {
    agent.setConfig({ 'retries-per-day': '5' });
  };
  /** One whole decision round, awaited: what it did not record, it will not record later. */
  const fullRound = (): Promise<void> =>
    agent['onTick']({ reason: 'poke', at: new Date(), signal: new AbortController().signal });
  const codes = (code: string) => notificationsOf(agent, udid).filter((n) => n.reasonCode === code);

  it('notes unlock activity from the device', async () => {
    assert.equal(agent.device(udid)?.lastUnlocked, null);
    const seen = waitForEvent(agent, 'lock activity', (e) =>
      e.type === 'device' && e.device.udid === udid && e.device.lastUnlocked !== null
        ? e.device.lastUnlocked
        : undefined,
    );
    // The watcher subscribes in the background; unlock until it has heard one.
    const timer = setInterval(() => void sim.ctl('unlock'), 200);
    try {
      const at = await seen;
      assert.ok(Math.abs(at - now()) < 60_000);
    } finally {
      clearInterval(timer);
    }
    assert.equal(agent.device(udid)?.next.code, 'PAUSED');
  });

  it('warns once a day when no backup succeeded for longer than stale-after, escalating', async () => {
    assert.equal(codes('NO_RECENT_BACKUP').length, 0);
    offset = 4 * DAY;
    const first = waitForEvent(agent, 'NO_RECENT_BACKUP', (e) =>
      e.type === 'notification' && e.notification.reasonCode === 'NO_RECENT_BACKUP'
        ? e.notification
        : undefined,
    );
    lookAgain();
    const n = await first;
    assert.equal(n.udid, udid);
    assert.equal(n.severity, 'warning');
    assert.match(n.message, /No successful backup yet, 4 days/);
    await fullRound();
    await fullRound();
    assert.equal(codes('NO_RECENT_BACKUP').length, 1, 'not again the same day');
    offset = 9 * DAY;
    const later = waitForEvent(agent, 'a later NO_RECENT_BACKUP', (e) =>
      e.type === 'notification' && e.notification.reasonCode === 'NO_RECENT_BACKUP'
        ? e.notification
        : undefined,
    );
    lookAgain();
    const m = await later;
    assert.equal(m.severity, 'error', 'a week without a backup is an error');
    assert.match(m.message, /9 days/);
  });

  it('warns that the pairing will expire some weeks after the last contact', async () => {
    offset = 25 * DAY;
    const warned = waitForEvent(agent, 'PAIRING_EXPIRING', (e) =>
      e.type === 'notification' && e.notification.reasonCode === 'PAIRING_EXPIRING'
        ? e.notification
        : undefined,
    );
    lookAgain();
    const n = await warned;
    assert.equal(n.udid, udid);
    assert.match(n.fixHint ?? '', /USB/);
    assert.equal(agent.device(udid)?.pairing.health, 'expiring');
    await fullRound();
    assert.equal(codes('PAIRING_EXPIRING').length, 1, 'once a day');
  });

  it('records COMPUTER_ASLEEP when the computer slept through a window in which a backup was due', async () => {
    // A window that is not open now, so resuming starts nothing.
    const hour = new Date(now()).getUTCHours();
    const pad = (h: number): string => String(h % 24).padStart(2, '0');
    agent.setConfig({ window: `${pad(hour + 2)}:00-${pad(hour + 3)}:00`, paused: 'false' });
    const asleep = waitForEvent(agent, 'COMPUTER_ASLEEP', (e) =>
      e.type === 'notification' && e.notification.reasonCode === 'COMPUTER_ASLEEP'
        ? e.notification
        : undefined,
    );
    const to = new Date(now());
    const from = new Date(to.getTime() - 2 * DAY);
    // What the Ticker hands over after a sleep (TickInfo.slept).
    await agent['onTick']({
      reason: 'tick',
      at: to,
      signal: new AbortController().signal,
      slept: { from, to },
    });
    const n = await asleep;
    assert.equal(n.udid, udid);
    assert.equal(n.severity, 'warning');
    assert.match(n.message, /asleep during the backup window/);
    assert.equal(agent.device(udid)?.next.code, 'OUTSIDE_WINDOW');
  });
  it('waits for an unlock before a backup that will ask for the passcode, and starts on unlock', async () => {
    // A window open now, with two hours left; allow up to 2 h of waiting for an unlock.
    const hour = new Date(now()).getUTCHours();
    const pad = (h: number): string => String(h % 24).padStart(2, '0');
    const waiting = waitForEvent(agent, 'WAITING_FOR_UNLOCK', (e) =>
      e.type === 'notification' && e.notification.reasonCode === 'WAITING_FOR_UNLOCK'
        ? e.notification
        : undefined,
    );
    agent.setConfig({ window: `${pad(hour)}:00-${pad(hour + 3)}:00`, 'passcode-wait': '2h' });
    const n = await waiting;
    assert.equal(n.udid, udid);
    assert.match(n.message, /Waiting for the device to be unlocked/);
    assert.equal(agent.device(udid)?.running, null, 'nothing started while nobody holds it');
    const started = waitForEvent(agent, 'the backup started by the unlock', (e) =>
      e.type === 'attempt' && e.attempt.udid === udid && e.attempt.outcome === 'running'
        ? e.attempt
        : undefined,
    );
    const prompt = waitForEvent(agent, 'the passcode prompt', (e) =>
      e.type === 'device' && e.device.udid === udid && e.device.running?.passcodeWaiting === true
        ? true
        : undefined,
    );
    await sim.ctl('unlock');
    const a = await started;
    assert.equal(a.trigger, 'schedule');
    await prompt;
    const done = waitForEvent(agent, 'the end of that backup', (e) =>
      e.type === 'attempt' && e.attempt.id === a.id && e.attempt.outcome !== 'running'
        ? e.attempt
        : undefined,
    );
    await sim.ctl('enter-passcode');
    assert.equal((await done).outcome, 'success');
  });
});
