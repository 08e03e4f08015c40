/**
 * Issue 4 acceptance, the passcode prompt of iOS 16.1+ (a simulated iPhone on iOS 17.5 with a
 * passcode, which only `ctl enter-passcode` types):
 * - prompted then entered: `mooring agent` records WAITING_FOR_PASSCODE for the attempt and shows
 *   it in the device's status; once the passcode is entered the backup succeeds;
 * - never entered: PASSCODE_NOT_ENTERED with its fix and the time it tries again (an hour later,
 *   as nobody is holding the phone); when someone unlocks the phone after the ordinary backoff,
 *   the agent retries by itself at once, the passcode is entered and the backup succeeds.
 *   `mooring agent` has no option for the engine's passcode timeout (the default is 10 minutes,
 *   the simulated device's own prompt gives up after 2), so this part runs the same Agent class in
 *   this process with `backupTimeouts.passcodeMs` short, and moves its clock (AgentOptions.now,
 *   made for this) past the backoff instead of waiting a quarter of an hour.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Agent } from '../../src/agent/agent';
import type { AttemptRow, NotificationRow } from '../../src/history';
import { parseUsbmuxdAddress } from '../../src/transport/usbmuxd-address';
import { UsbmuxdClient } from '../../src/transport/usbmuxd-client';
import { AGENT_TZ, Scenario, WAIT_MS } from '../helpers/agent-harness';

const NEVER = { kind: 'never' } as const;

describe('mooring agent: passcode prompted, then entered', () => {
  let s: Scenario;

  before(async () => {
    s = await Scenario.start({
      sims: [{ name: 'locked', transport: 'usb', seed: 451, passcode: NEVER }],
    });
  });
  after(async () => {
    await s?.close();
  });

  it('WAITING_FOR_PASSCODE while the device asks; success once the passcode is entered', async () => {
    const udid = s.udid('locked');
    const waiting = await s.waitForNotification(
      'WAITING_FOR_PASSCODE',
      (n) => n.reasonCode === 'WAITING_FOR_PASSCODE',
      udid,
    );
    assert.equal(waiting.kind, 'backup');
    assert.equal(waiting.severity, 'warning');
    assert.equal(waiting.message, 'The device is waiting for its passcode to start the backup');
    assert.equal(waiting.fixHint, 'Enter the passcode on the device');
    assert.ok(waiting.attemptId !== null);
    const dev = await s.device(udid);
    assert.equal(dev.running?.attemptId, waiting.attemptId);
    assert.equal(dev.running?.passcodeWaiting, true);
    assert.ok(s.simEvents('locked').includes('mobilebackup2.passcode-prompt'));

    const entered = (await s.sim('locked').ctl('enter-passcode')) as { prompts: number };
    assert.equal(entered.prompts, 1, 'the prompt was up');
    const ok = await s.waitForAttempt(
      udid,
      'the backup',
      (a) => a.id === waiting.attemptId && a.outcome !== 'running',
    );
    assert.equal(ok.outcome, 'success', JSON.stringify(ok));
    assert.ok(ok.snapshotId);
    const notes = await s.notifications(udid);
    const forAttempt = notes.filter((n) => n.attemptId === ok.id).map((n) => n.reasonCode);
    assert.deepEqual(forAttempt, ['BACKUP_SUCCEEDED', 'WAITING_FOR_PASSCODE'], 'newest first');
    assert.equal((await s.device(udid)).running, null);
  });
});

describe('the agent: passcode never entered, retried later', () => {
  let s: Scenario;
  let agent: Agent | undefined;
  /** Added to the real clock: how the test lets an hour pass. */
  let offset = 0;
  /** Long enough for the test to type the passcode at the retry's prompt on a busy machine. */
  const PASSCODE_MS = 5000;

  before(async () => {
    s = await Scenario.start({
      sims: [{ name: 'away', transport: 'usb', seed: 452, passcode: NEVER }],
      startAgent: false,
    });
  });
  after(async () => {
    await agent?.stop();
    await s?.close();
  });

  const attempts = (udid: string): AttemptRow[] => agent!.attempts({ udid, limit: 100 }).items;
  const notes = (udid: string): NotificationRow[] => agent!.history({ udid, limit: 100 }).items;

  it('PASSCODE_NOT_ENTERED with the time it tries again; then the retry succeeds', async () => {
    const sim = s.sim('away');
    const address = parseUsbmuxdAddress(sim.usbmuxdAddress);
    assert.ok(address);
    agent = await Agent.open({
      dataDir: s.dataDir,
      usbmuxd: new UsbmuxdClient({ address }),
      mdns: null,
      timeZone: AGENT_TZ,
      systemPairRecordDir: null,
      now: () => Date.now() + offset,
      backupTimeouts: { passcodeMs: PASSCODE_MS },
      log: s.logSink(),
    });
    await agent.start();
    const udid = sim.udid;

    // Nobody is there: the prompt stays up until the agent gives up.
    const failed = await s.waitFor('the unanswered attempt', () =>
      attempts(udid).find((a) => a.outcome !== 'running'),
    );
    assert.equal(failed.outcome, 'failure', JSON.stringify(failed));
    assert.equal(failed.reasonCode, 'PASSCODE_NOT_ENTERED');
    assert.ok(s.simEvents('away').includes('mobilebackup2.passcode-prompt'));
    const forAttempt = notes(udid).filter((n) => n.attemptId === failed.id);
    assert.deepEqual(
      forAttempt.map((n) => n.reasonCode),
      ['PASSCODE_NOT_ENTERED', 'WAITING_FOR_PASSCODE'],
    );
    const notEntered = forAttempt[0]!;
    assert.equal(notEntered.severity, 'warning');
    assert.match(
      notEntered.message,
      /^Nobody entered the passcode on the device within \d+ s; Mooring tries again /,
    );
    assert.equal(
      notEntered.fixHint,
      'When the device asks for its passcode during a backup, enter it; or choose "Back up now" while you hold the device',
    );
    // Not hammering a phone nobody looks at: the next try is an hour away (PasscodePolicy).
    const retryAt = Number(notEntered.params?.retryAt);
    const HOUR = 3600_000;
    assert.ok(Math.abs(retryAt - (failed.endedAt! + HOUR)) < 2000, `retry ${retryAt} ≈ end + 1 h`);
    const dev = await s.waitFor('the retry in the status', () => {
      const d = agent!.device(udid)!;
      return d.next.code === 'RETRY_BACKOFF' ? d : undefined;
    });
    assert.ok(
      dev.next.at !== null && Math.abs(dev.next.at - retryAt) < 2000,
      JSON.stringify(dev.next),
    );
    assert.match(dev.next.message, /^Trying again .+ after 1 failed attempt$/);

    // Twenty minutes later (the agent's clock) someone picks the phone up and unlocks it. The
    // ordinary backoff (15 minutes) has passed, and an unlock after a prompt nobody answered
    // lifts the hour's wait: the retry starts at once, while the phone is in someone's hand.
    offset = 20 * 60_000;
    await s.waitFor(
      'the agent to see the unlock',
      async () => {
        await sim.ctl('unlock'); // SpringBoard posts the lock state; the agent observes it
        return agent!.device(udid)!.lastUnlocked !== null;
      },
      WAIT_MS,
      500,
    );
    const prompt = await s.waitFor(
      'the retry asking for the passcode',
      () =>
        notes(udid).find(
          (n) => n.reasonCode === 'WAITING_FOR_PASSCODE' && n.attemptId !== failed.id,
        ),
      WAIT_MS,
      50,
    );
    const entered = (await sim.ctl('enter-passcode')) as { prompts: number };
    assert.ok(entered.prompts >= 1);
    const retried = await s.waitFor('the retry to end', () =>
      attempts(udid).find((a) => a.id === prompt.attemptId && a.outcome !== 'running'),
    );
    assert.equal(retried.outcome, 'success', JSON.stringify(retried));
    assert.equal(retried.trigger, 'retry');
    assert.ok(retried.snapshotId);
    assert.ok(
      retried.startedAt >= failed.endedAt! + 15 * 60_000 && retried.startedAt < retryAt,
      'after the ordinary backoff, before the hour: the unlock brought it forward',
    );
  });
});
