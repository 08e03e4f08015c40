/**
 * A phone that will not open its data, as the agent tells it (the Agent in-process, a simulated
 * iPhone with a passcode on USB):
 * - restarted and not unlocked since: lockdownd refuses mobilebackup2 with MissingValue (as a
 *   phone does), recorded as NOT_UNLOCKED_SINCE_REBOOT with its fix; the unlock that follows
 *   starts the retry at once, and it succeeds;
 * - a backup cut off mid-transfer leaves the phone's own snapshot (the simulator's staleSnapshot
 *   fault, as libimobiledevice#1257 reports): the next fails with MBErrorDomain 3, told as "restart
 *   the device"; after a restart it works;
 * - locked, and watched for more than a day (the agent's clock moved on) with no lock or unlock:
 *   NOT_UNLOCKED_24H, not the plain DEVICE_LOCKED.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Agent } from '../../src/agent/agent';
import type { AttemptRow } from '../../src/history';
import {
  nextAttempt,
  notificationsOf,
  rebootedOnUsb,
  simFixture,
  type SimFixture,
  untilOnUsb,
  waitForEvent,
} from './agent-helpers';

const HOUR = 3_600_000;

describe('Agent: a phone restarted, stuck with an old snapshot, or not unlocked for a day', () => {
  let f: SimFixture;
  let agent: Agent;
  let udid: string;
  let offset = 0;
  const now = (): number => Date.now() + offset;

  before(async () => {
    f = await simFixture('mooring-agent-unlock-', {
      files: 4,
      bytes: 20_000,
      seed: 131,
      // The passcode prompt of a backup is answered at once; locking still works.
      passcode: { kind: 'auto', seconds: 0 },
    });
    udid = f.udid;
    agent = await Agent.open(f.agentOptions({ now }));
    agent.setConfig({ enabled: 'false' });
    await agent.start();
    await untilOnUsb(agent, udid);
  });
  after(async () => {
    await agent?.stop();
    await f?.close();
  });

  /** Back Up Now, to its end. */
  async function backUpNow(): Promise<AttemptRow> {
    const ended = nextAttempt(agent, udid, (a) => a.outcome !== 'running', 'a backup to end');
    const r = await agent.backupNow(udid);
    assert.equal(r.started, true, r.message);
    return ended;
  }

  /** Does `act` on the device until the agent has heard a lock-state change from it. */
  async function heard(act: 'lock' | 'unlock'): Promise<void> {
    const before = agent.device(udid)?.lastUnlocked ?? null;
    const seen = waitForEvent(agent, `the ${act} heard`, (e) =>
      e.type === 'device' && e.device.udid === udid && e.device.lastUnlocked !== before
        ? true
        : undefined,
    );
    // The lock watcher (re)connects in the background: act until it has heard one.
    const timer = setInterval(() => void f.sim.ctl(act), 200);
    try {
      await seen;
    } finally {
      clearInterval(timer);
    }
  }

  it('restarted, not unlocked since: NOT_UNLOCKED_SINCE_REBOOT; an unlock starts the retry', async () => {
    // A restart: the device leaves USB and comes back (with a new usbmuxd id).
    await rebootedOnUsb(agent, f.sim, udid);
    const failed = await backUpNow();
    assert.equal(failed.outcome, 'failure');
    assert.equal(failed.reasonCode, 'NOT_UNLOCKED_SINCE_REBOOT');
    const n = notificationsOf(agent, udid).find((x) => x.attemptId === failed.id);
    assert.ok(n, 'recorded with the attempt');
    assert.equal(n.severity, 'warning');
    assert.match(n.message, /has restarted and has not been unlocked since/);
    assert.match(n.fixHint ?? '', /^Unlock the device once with its passcode/);

    // Automatic backups on, with an interval that makes one due: the retry waits for the unlock,
    // then starts without the backoff.
    const retry = nextAttempt(agent, udid, (a) => a.outcome === 'running', 'the retry to start');
    agent.setConfig({ enabled: 'true', interval: '10s' });
    await heard('unlock');
    const started = await retry;
    assert.equal(started.trigger, 'retry');
    const done = await nextAttempt(
      agent,
      udid,
      (a) => a.id === started.id && a.outcome !== 'running',
      'the retry to end',
    );
    assert.equal(done.outcome, 'success', done.message ?? '');
    agent.setConfig({ enabled: 'false' });
  });

  it("a cut-off backup left the phone's snapshot: the next says to restart it; after a restart it works", async () => {
    await heard('unlock');
    await f.sim.ctl('fault', { name: 'staleSnapshot', value: 'on' });
    await f.sim.ctl('fault', { name: 'dropAfterBytes', value: '5000' });
    const cut = await backUpNow();
    assert.equal(cut.reasonCode, 'CONNECTION_LOST');
    await f.sim.ctl('fault', { name: 'dropAfterBytes', value: 'off' });
    const stuck = await backUpNow();
    assert.equal(stuck.outcome, 'failure');
    assert.equal(stuck.reasonCode, 'DEVICE_ERROR');
    const n = notificationsOf(agent, udid).find((x) => x.attemptId === stuck.id);
    assert.ok(n);
    assert.match(n.message, /an earlier backup that was cut off left its snapshot behind/);
    assert.match(n.message, /MBErrorDomain 3|error 3/);
    assert.equal(n.fixHint, 'Restart the device, then back up again (only a restart clears it)');
    await rebootedOnUsb(agent, f.sim, udid);
    await heard('unlock');
    assert.equal((await backUpNow()).outcome, 'success');
    await f.sim.ctl('fault', { name: 'staleSnapshot', value: 'off' });
  });

  it('locked and watched for over a day with no unlock: NOT_UNLOCKED_24H', async () => {
    await heard('lock');
    const locked = await backUpNow();
    assert.equal(locked.reasonCode, 'DEVICE_LOCKED', 'locked just now: only locked');
    offset += 25 * HOUR;
    const day = await backUpNow();
    assert.equal(day.outcome, 'failure');
    assert.equal(day.reasonCode, 'NOT_UNLOCKED_24H');
    assert.match(day.message ?? '', /not been unlocked for more than 24 hours \(last unlocked/);
  });
});
