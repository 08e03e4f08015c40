/**
 * Which agent events become desktop notifications and what they say. The notifications are
 * rendered by the history's own reason builders (the texts the agent records), so these tests
 * see the real messages and fix hints.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AgentEvent } from '../../src/agent/types';
import {
  DESKTOP_CATEGORY,
  desktopNoticeFor,
  NOTICE_QUIET_MS,
  NoticeGate,
  MAX_BODY_CHARS,
} from '../../src/electron/desktop-notices';
import {
  backupFailed,
  backupSucceeded,
  cancelled,
  computerAsleep,
  connectionLost,
  deviceError,
  notDue,
  notEnoughSpace,
  noRecentBackup,
  notUnlocked24h,
  notUnlockedSinceReboot,
  pairingExpiring,
  pairingInvalid,
  passcodeNotEntered,
  REASON_CODES,
  retryLimitReached,
  verificationFailed,
  waitingForPasscode,
  type Notice,
} from '../../src/history/reasons';
import type { NotificationRow } from '../../src/history/types';
import { attempt, DAY, device, HOUR, NOW, UDID_A } from './fixtures';

let nextId = 1;
function row(n: Notice, o: Partial<NotificationRow> = {}): NotificationRow {
  return {
    id: nextId++,
    at: NOW,
    udid: UDID_A,
    attemptId: 7,
    read: false,
    ...n,
    ...o,
  };
}
const event = (n: NotificationRow): AgentEvent => ({ type: 'notification', notification: n });
const names = (udid: string): string | null => (udid === UDID_A ? "Anna's iPhone" : null);
const noticeOf = (n: Notice, o: Partial<NotificationRow> = {}) =>
  desktopNoticeFor(event(row(n, o)), names);

describe('desktop notifications', () => {
  it('asks for the passcode by name, once per attempt', () => {
    const n = noticeOf(waitingForPasscode());
    assert.ok(n);
    assert.equal(n.title, 'Passcode needed');
    assert.equal(n.body, "Enter your passcode on Anna's iPhone to start its backup");
    assert.equal(n.urgency, 'critical');
    assert.deepEqual(n.action, { kind: 'open-notifications', udid: UDID_A });
    const again = noticeOf(waitingForPasscode(), { attemptId: 8 });
    assert.notEqual(again?.key, n.key);
  });

  it('failures carry their message and fix', () => {
    const space = noticeOf(
      notEnoughSpace({ neededBytes: 5e9, freeBytes: 1.2e9, folder: '/Backups' }),
    );
    assert.ok(space);
    assert.equal(space.title, "Backup of Anna's iPhone failed");
    assert.equal(
      space.body,
      'Not enough free space on this computer: 5.0 GB needed, 1.2 GB free\nFree up space on /Backups or choose another backup folder',
    );
    assert.equal(space.urgency, 'critical');
    const lost = noticeOf(connectionLost({ transport: 'wifi', now: NOW }));
    assert.equal(lost?.urgency, 'normal'); // a warning: Mooring retries
    assert.match(lost?.body ?? '', /Keep the device on the same Wi-Fi network/);
    for (const n of [
      notUnlockedSinceReboot(),
      notUnlocked24h({ lastUnlockAt: NOW - 30 * HOUR, now: NOW }),
      passcodeNotEntered({ waitedMs: 10 * 60_000, now: NOW }),
      deviceError({ code: 105 }),
      verificationFailed({ problems: 2, firstProblem: 'Manifest.db: 1 missing file' }),
      backupFailed({ detail: 'protocol error' }),
    ]) {
      const d = noticeOf(n);
      assert.ok(d, n.reasonCode);
      assert.equal(d.title, "Backup of Anna's iPhone failed");
      assert.ok(n.fixHint && d.body.includes(n.fixHint.slice(0, 40)), n.reasonCode);
    }
  });

  it('no successful backup for N days', () => {
    const n = noticeOf(noRecentBackup({ days: 4, lastSuccessAt: NOW - 4 * DAY, now: NOW }));
    assert.ok(n);
    assert.equal(n.title, "No backup of Anna's iPhone for 4 days");
    assert.match(n.body, /^No successful backup for 4 days/);
    assert.match(n.body, /choose "Back up now"/);
    assert.equal(n.urgency, 'normal');
    const week = noticeOf(noRecentBackup({ days: 8, lastSuccessAt: NOW - 8 * DAY, now: NOW }));
    assert.equal(week?.urgency, 'critical');
    const never = noticeOf(noRecentBackup({ days: 3, now: NOW }));
    assert.equal(never?.title, "Anna's iPhone has not been backed up yet");
  });

  it('pairing that stopped or is about to stop working', () => {
    const invalid = noticeOf(pairingInvalid({ cause: 'refused' }), { attemptId: null });
    assert.equal(invalid?.title, "Anna's iPhone no longer trusts this computer");
    assert.match(invalid?.body ?? '', /tap "Trust"/);
    const expiring = noticeOf(
      pairingExpiring({ lastContactAt: NOW - 25 * DAY, expiresAt: NOW + 5 * DAY, now: NOW }),
    );
    assert.equal(expiring?.title, "Anna's iPhone: pairing expires soon");
  });

  it('stays quiet about everything that does not need the person', () => {
    for (const n of [
      notDue({ nextDueAt: NOW + HOUR, now: NOW }),
      backupSucceeded({ bytes: 1e9, durationMs: 60_000, filesChanged: 12 }),
      cancelled({ by: 'user' }),
      retryLimitReached({ attempts: 3, now: NOW }),
      computerAsleep({ from: NOW - 5 * HOUR, to: NOW - HOUR, now: NOW }),
    ]) {
      assert.equal(noticeOf(n), null, n.reasonCode);
    }
    // Already read elsewhere (the window): no desktop notification.
    assert.equal(noticeOf(waitingForPasscode(), { read: true }), null);
    // Events other than notifications never notify.
    assert.equal(desktopNoticeFor({ type: 'attempt', attempt: attempt() }, names), null);
    assert.equal(desktopNoticeFor({ type: 'device', device: device() }, names), null);
    assert.equal(
      desktopNoticeFor({ type: 'agent', paused: true, running: 0, staleAfterMs: 1 }, names),
      null,
    );
  });

  it('decides every reason code', () => {
    assert.deepEqual(Object.keys(DESKTOP_CATEGORY).sort(), [...REASON_CODES].sort());
  });

  it('uses a safe name for unknown devices and bounds the body', () => {
    const n = desktopNoticeFor(
      event(row(backupFailed({ detail: 'x'.repeat(1000) }), { udid: '00008030-000C11223344556E' })),
      names,
    );
    assert.equal(n?.title, 'Backup of Device 44556E failed');
    assert.ok((n?.body.length ?? 0) <= MAX_BODY_CHARS);
  });

  it('NoticeGate lets the same trouble through once per quiet period', () => {
    const gate = new NoticeGate();
    const n = noticeOf(notEnoughSpace({ freeBytes: 1e9 }));
    assert.ok(n);
    assert.equal(gate.admit(n, NOW), true);
    assert.equal(gate.admit(n, NOW + NOTICE_QUIET_MS - 1), false);
    assert.equal(gate.admit(n, NOW + NOTICE_QUIET_MS), true);
    const other = noticeOf(waitingForPasscode());
    assert.ok(other);
    assert.equal(gate.admit(other, NOW + 1), true);
  });
});
