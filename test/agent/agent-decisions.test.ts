/**
 * The agent's pure translations: how a job's outcome becomes an attempt outcome and a notice
 * (every row of the table in issue 4), how a scheduler skip becomes a recorded reason (or none),
 * how the scheduler's DeviceState is derived from a real history database, and how the backup
 * folder's own record of its snapshots joins the history's last success.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  attemptFacts,
  scheduleLastSuccess,
  shownLastSuccess,
  type AttemptFacts,
} from '../../src/agent/device-state';
import type { FolderFacts } from '../../src/agent/folder-backups';
import type { FolderBackup, RoomPlan } from '../../src/store';
import { classifyOutcome, type OutcomeFacts } from '../../src/agent/outcome-notice';
import { skipView } from '../../src/agent/skip-notice';
import type { BackupResult } from '../../src/backup';
import { openHistory, type History } from '../../src/history';
import type { JobOutcome } from '../../src/job';
import { DEFAULT_POLICY, decide, type SkipDecision } from '../../src/scheduler';
import { notUnlockedSinceBoot } from '../../src/lockdown/errors';
import { MooringError } from '../../src/util/errors';

const NOW = Date.UTC(2026, 0, 10, 12, 0, 0);

function result(extra: Partial<BackupResult> = {}): BackupResult {
  return {
    ok: false,
    message: 'failed',
    bytesReceived: 10,
    filesReceived: 1,
    refusedPaths: [],
    durationMs: 1000,
    warnings: [],
    ...extra,
  };
}

function job(extra: Partial<JobOutcome> = {}, r: Partial<BackupResult> = {}): JobOutcome {
  return {
    ok: false,
    udid: '00008120-0000000000000001',
    message: r.message ?? 'failed',
    result: result(r),
    stage: 'backup',
    freeBytes: 5_000_000,
    ...extra,
  };
}

function classify(j: JobOutcome, extra: Partial<OutcomeFacts> = {}) {
  return classifyOutcome({
    job: j,
    transport: 'usb',
    startedAt: NOW - 60_000,
    now: NOW,
    stopping: false,
    folder: '/backups',
    ...extra,
  });
}

describe('classifyOutcome', () => {
  it('a success is BACKUP_SUCCEEDED with size, duration and files', () => {
    const c = classify(
      job(
        { ok: true, stage: 'commit' },
        { ok: true, bytesReceived: 2048, filesReceived: 3, isFull: true },
      ),
    );
    assert.equal(c.outcome, 'success');
    assert.equal(c.notice.reasonCode, 'BACKUP_SUCCEEDED');
    assert.match(c.notice.message, /^Full backup finished: 2\.0 KB in .*, 3 files changed/);
  });

  it('a cancel is CANCELLED, or INTERRUPTED while the agent stops', () => {
    const cancelledJob = job({}, { failure: 'cancelled', cancelled: true, cancelledBy: 'user' });
    assert.equal(classify(cancelledJob).outcome, 'cancelled');
    assert.equal(classify(cancelledJob).notice.reasonCode, 'CANCELLED');
    const stop = classify(cancelledJob, { stopping: true });
    assert.equal(stop.outcome, 'interrupted');
    assert.equal(stop.notice.reasonCode, 'INTERRUPTED');
    const device = classify(
      job({}, { failure: 'cancelled', cancelled: true, cancelledBy: 'device' }),
    );
    assert.equal(device.outcome, 'cancelled');
    assert.match(device.notice.message, /on the device/);
  });

  it('a backup that does not verify is VERIFICATION_FAILED', () => {
    const c = classify(
      job({
        stage: 'verify',
        verify: {
          ok: false,
          path: '/backups/x',
          udid: '00008120-0000000000000001',
          encrypted: false,
          contentsChecked: true,
          entries: 2,
          files: 2,
          bytes: 6,
          hashed: 2,
          problems: [{ kind: 'missing', problem: 'missing file x' }],
          problemCount: 2,
          notes: [],
        },
      }),
    );
    assert.equal(c.outcome, 'failure');
    assert.equal(c.notice.reasonCode, 'VERIFICATION_FAILED');
    assert.match(c.notice.message, /2 problems, first: missing file x/);
  });

  it('no passcode (our wait, or MBErrorDomain 208) is PASSCODE_NOT_ENTERED with the retry time', () => {
    const ours = classify(job({}, { failure: 'passcode' }), {
      passcodeWaitedMs: 120_000,
      retryAt: NOW + 3_600_000,
    });
    assert.equal(ours.notice.reasonCode, 'PASSCODE_NOT_ENTERED');
    assert.match(ours.notice.message, /within 2 min.*tries again/);
    const device = classify(job({}, { failure: 'device-error', errorCode: 208 }));
    assert.equal(device.notice.reasonCode, 'PASSCODE_NOT_ENTERED');
    assert.equal(device.deviceErrorCode, 208);
  });

  it('MBErrorDomain 105 and our own full disk are NOT_ENOUGH_SPACE with the figures', () => {
    const c = classify(
      job({}, { failure: 'device-error', errorCode: 105, neededBytes: 9_000_000 }),
    );
    assert.equal(c.notice.reasonCode, 'NOT_ENOUGH_SPACE');
    assert.equal(c.notice.params.neededBytes, 9_000_000);
    assert.equal(c.notice.params.freeBytes, 5_000_000);
    assert.equal(c.deviceErrorCode, 105);
    const local = classify(
      job({}, { failure: 'local-io', message: 'Not enough free space on this computer: …' }),
    );
    assert.equal(local.notice.reasonCode, 'NOT_ENOUGH_SPACE');
    const enospc = Object.assign(new Error('no space'), { code: 'ENOSPC' });
    const store = classify(
      job({ stage: 'store', error: new MooringError('IO', 'Not enough…', { cause: enospc }) }),
    );
    assert.equal(store.notice.reasonCode, 'NOT_ENOUGH_SPACE');
  });

  it('D48: NOT_ENOUGH_SPACE names "Make room" where it could help, and says when even it could not', () => {
    const short = job({}, { failure: 'device-error', errorCode: 105, neededBytes: 9_000_000 });
    const plan = (beyondPossible: number, outOfReach?: { possibleBytes: number }): RoomPlan => ({
      neededBytes: 4_000_000,
      byRetention: [],
      beyondRetention: [],
      freesBytes: 0,
      beyondPossible,
      ...(outOfReach ? { outOfReach } : {}),
    });
    const off = classify({ ...short, roomMade: plan(2) }, { makeRoom: false });
    assert.match(off.notice.fixHint!, /turn on “Make room” in Settings/);
    assert.equal(off.notice.params.makeRoom, 'off');
    // Nothing it could remove (a first backup), or no purge asked (our disk filled mid-transfer).
    for (const nothing of [{ ...short, roomMade: plan(0) }, short]) {
      const c = classify(nothing, { makeRoom: false });
      assert.doesNotMatch(c.notice.fixHint!, /Make room/);
      assert.equal(c.notice.params.makeRoom, undefined);
    }
    const on = classify(
      { ...short, roomMade: plan(2, { possibleBytes: 1_500_000 }) },
      { makeRoom: true },
    );
    assert.match(on.notice.message, /removing every older backup would free only 1\.5 MB/);
    assert.doesNotMatch(on.notice.fixHint!, /Make room/);
  });

  it('a lost connection or a device gone silent is CONNECTION_LOST for its transport', () => {
    const wifi = classify(job({}, { failure: 'connection-lost' }), { transport: 'wifi' });
    assert.equal(wifi.notice.reasonCode, 'CONNECTION_LOST');
    assert.match(wifi.notice.message, /left the Wi-Fi network/);
    const usb = classify(job({}, { failure: 'timeout' }));
    assert.match(usb.notice.message, /was disconnected/);
  });

  it('a refused session is PAIRING_INVALID and marks the pairing refused', () => {
    const c = classify(
      job({ stage: 'session', error: new MooringError('PAIRING', 'no longer trusted') }),
    );
    assert.equal(c.notice.reasonCode, 'PAIRING_INVALID');
    assert.equal(c.refused, true);
    assert.match(c.notice.fixHint ?? '', /Trust/);
  });

  it('no connection is WIFI_UNREACHABLE on Wi-Fi (with the address), CONNECTION_LOST on USB', () => {
    const err = new MooringError('CLOSED', 'ECONNREFUSED');
    const wifi = classify(job({ stage: 'connect', error: err }), {
      transport: 'wifi',
      address: '192.168.1.20',
    });
    assert.equal(wifi.notice.reasonCode, 'WIFI_UNREACHABLE');
    assert.match(wifi.notice.message, /192\.168\.1\.20/);
    assert.equal(wifi.refused, false);
    const usb = classify(job({ stage: 'connect', error: err }));
    assert.equal(usb.notice.reasonCode, 'CONNECTION_LOST');
  });

  it('a held sync lock or store lock is BUSY; a locked device is DEVICE_LOCKED', () => {
    const sync = classify(
      job({}, { failure: 'setup', cause: { code: 'DEVICE_ERROR', detail: 19 } }),
    );
    assert.equal(sync.notice.reasonCode, 'BUSY');
    assert.match(sync.notice.message, /^A sync/);
    const store = classify(
      job({ stage: 'store', error: new MooringError('USAGE', 'held', { detail: 'LOCKED' }) }),
    );
    assert.equal(store.notice.reasonCode, 'BUSY');
    const locked = classify(
      job({}, { failure: 'setup', cause: { code: 'DEVICE_ERROR', detail: 'PasswordProtected' } }),
    );
    assert.equal(locked.notice.reasonCode, 'DEVICE_LOCKED');
  });

  it('not unlocked since a restart; not unlocked for a day only when watched all that day', () => {
    const sealed = classify(
      job({ error: notUnlockedSinceBoot('com.apple.mobilebackup2') }, { failure: 'setup' }),
    );
    assert.equal(sealed.outcome, 'failure');
    assert.equal(sealed.notice.reasonCode, 'NOT_UNLOCKED_SINCE_REBOOT');
    assert.match(sealed.notice.fixHint ?? '', /^Unlock the device once with its passcode/);
    const H = 3_600_000;
    const lockedWith = (lockState: OutcomeFacts['lockState']) =>
      classify(
        job({}, { failure: 'setup', cause: { code: 'DEVICE_ERROR', detail: 'PasswordProtected' } }),
        { lockState },
      ).notice;
    // Watched for 30 h; the last lock or unlock 26 h ago.
    const day = lockedWith({ observedSince: NOW - 30 * H, lastActivity: NOW - 26 * H });
    assert.equal(day.reasonCode, 'NOT_UNLOCKED_24H');
    assert.equal(day.severity, 'warning');
    assert.match(
      day.message,
      /not been unlocked for more than 24 hours \(last unlocked 26 h ago\)/,
    );
    // Watched for 30 h with nothing at all: no time to name.
    const none = lockedWith({ observedSince: NOW - 30 * H, lastActivity: undefined });
    assert.match(none.message, /^The device has not been unlocked for more than 24 hours, so/);
    // Not claimed: watched only since 3 h ago (it may have been unlocked away from here)…
    assert.equal(
      lockedWith({ observedSince: NOW - 3 * H, lastActivity: NOW - 26 * H }).reasonCode,
      'DEVICE_LOCKED',
    );
    // …not watched now, or locked or unlocked within the day.
    assert.equal(
      lockedWith({ observedSince: undefined, lastActivity: undefined }).reasonCode,
      'DEVICE_LOCKED',
    );
    assert.equal(
      lockedWith({ observedSince: NOW - 30 * H, lastActivity: NOW - 2 * H }).reasonCode,
      'DEVICE_LOCKED',
    );
  });

  it('other device codes are DEVICE_ERROR with the code; anything else BACKUP_FAILED', () => {
    const dev = classify(
      job({}, { failure: 'device-error', errorCode: 104, errorDescription: 'upload failed' }),
    );
    assert.equal(dev.notice.reasonCode, 'DEVICE_ERROR');
    assert.equal(dev.deviceErrorCode, 104);
    assert.match(dev.notice.message, /MBErrorDomain 104/);
    const other = classify(
      job({ message: 'The device sent something invalid' }, { failure: 'protocol' }),
    );
    assert.equal(other.notice.reasonCode, 'BACKUP_FAILED');
    assert.match(other.notice.message, /something invalid/);
  });
});

describe('skipView', () => {
  const state = {
    reachable: { usb: false, wifi: false },
    attemptsToday: 0,
    consecutiveFailures: 0,
    running: false,
  };
  const load = { running: 0, concurrency: 1 };
  const skipOf = (d: ReturnType<typeof decide>): SkipDecision => {
    assert.equal(d.action, 'skip');
    return d as SkipDecision;
  };

  it('maps scheduler codes to history reasons', () => {
    const now = new Date(NOW);
    const cases: Array<[ReturnType<typeof decide>, string]> = [
      [
        decide(
          now,
          'UTC',
          { ...DEFAULT_POLICY },
          { ...state, lastSuccessAt: new Date(NOW - 1000) },
          load,
        ),
        'NOT_DUE',
      ],
      [
        decide(
          now,
          'UTC',
          { ...DEFAULT_POLICY, window: { start: '01:00', end: '02:00' } },
          state,
          load,
        ),
        'OUTSIDE_WINDOW',
      ],
      [decide(now, 'UTC', { ...DEFAULT_POLICY }, state, load), 'DEVICE_NOT_SEEN'],
      [decide(now, 'UTC', { ...DEFAULT_POLICY, paused: true }, state, load), 'PAUSED'],
      [decide(now, 'UTC', { ...DEFAULT_POLICY, enabled: false }, state, load), 'DISABLED'],
      [
        decide(
          now,
          'UTC',
          { ...DEFAULT_POLICY },
          { ...state, reachable: { usb: true, wifi: false } },
          { running: 1, concurrency: 1 },
        ),
        'QUEUED',
      ],
      [
        decide(
          now,
          'UTC',
          { ...DEFAULT_POLICY },
          {
            ...state,
            consecutiveFailures: 5,
            attemptsToday: 5,
            lastAttemptAt: new Date(NOW - 1000),
          },
          load,
        ),
        'RETRY_LIMIT_REACHED',
      ],
      [
        decide(
          now,
          'UTC',
          { ...DEFAULT_POLICY },
          {
            ...state,
            reachable: { usb: true, wifi: false },
            passcodeRequired: true,
            lastSuccessAt: new Date(NOW - 25 * 3_600_000),
          },
          load,
        ),
        'WAITING_FOR_UNLOCK',
      ],
    ];
    for (const [d, code] of cases) {
      const v = skipView(skipOf(d), DEFAULT_POLICY, NOW);
      assert.equal(v.code, code);
      assert.equal(v.notice?.reasonCode, code, code);
      assert.equal(v.message, v.notice?.message);
    }
  });

  it('does not record a backoff or a running backup, but still explains them', () => {
    const backoff = skipView(
      skipOf(
        decide(
          new Date(NOW),
          'UTC',
          { ...DEFAULT_POLICY },
          {
            ...state,
            consecutiveFailures: 1,
            attemptsToday: 1,
            lastAttemptAt: new Date(NOW - 1000),
          },
          load,
        ),
      ),
      DEFAULT_POLICY,
      NOW,
    );
    assert.equal(backoff.code, 'RETRY_BACKOFF');
    assert.equal(backoff.notice, null);
    assert.match(backoff.message, /^Trying again .* after 1 failed attempt$/);
    const running = skipView(
      skipOf(
        decide(new Date(NOW), 'UTC', { ...DEFAULT_POLICY }, { ...state, running: true }, load),
      ),
      DEFAULT_POLICY,
      NOW,
    );
    assert.equal(running.code, 'ALREADY_RUNNING');
    assert.equal(running.notice, null);
  });
});

describe('attemptFacts (from a real history database)', () => {
  let tmp: string;
  let h: History;
  const udid = '00008120-0000000000000002';
  let clock = NOW - 3 * 86_400_000;

  before(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'mooring-agent-state-'));
    h = openHistory(path.join(tmp, 'history.db'), { clock: () => clock });
    h.upsertDevice({ udid });
  });
  after(async () => {
    h.close();
    await rm(tmp, { recursive: true, force: true });
  });

  const attempt = (
    at: number,
    trigger: 'schedule' | 'manual' | 'retry',
    outcome: 'success' | 'failure' | 'cancelled' | 'interrupted',
    reasonCode?: 'PASSCODE_NOT_ENTERED' | 'CONNECTION_LOST',
  ): number => {
    clock = at;
    const id = h.startAttempt({ udid, trigger, transport: 'usb' });
    clock = at + 1000;
    h.finishAttempt(id, { outcome, ...(reasonCode ? { reasonCode } : {}) });
    return id;
  };

  it('counts failures since the last success; today only automatic ones; interruptions not at all', () => {
    const dayStart = Date.UTC(2026, 0, 10);
    assert.deepEqual(attemptFacts(h, udid, dayStart), { consecutiveFailures: 0, attemptsToday: 0 });
    attempt(NOW - 2 * 86_400_000, 'schedule', 'success');
    attempt(NOW - 86_400_000, 'schedule', 'failure', 'CONNECTION_LOST');
    attempt(NOW - 3_600_000, 'retry', 'failure', 'CONNECTION_LOST');
    attempt(NOW - 1_800_000, 'manual', 'cancelled');
    attempt(NOW - 900_000, 'schedule', 'interrupted');
    attempt(NOW - 600_000, 'retry', 'failure', 'PASSCODE_NOT_ENTERED');
    const f = attemptFacts(h, udid, dayStart);
    assert.equal(f.lastSuccessAt, NOW - 2 * 86_400_000, 'the START of the last success');
    assert.equal(f.consecutiveFailures, 4);
    assert.equal(f.attemptsToday, 2, 'the two automatic failures of today');
    assert.equal(f.lastFailureReason, 'PASSCODE_NOT_ENTERED');
    assert.equal(f.lastAttemptAt, NOW - 600_000 + 1000);
  });
});

describe('the last success, from the history and the backup folder', () => {
  const H = 3_600_000;
  // The agent's own last backup: 10:00–10:05, snapshot 20260110T100001Z.
  const own: AttemptFacts = {
    consecutiveFailures: 0,
    attemptsToday: 0,
    lastSuccessAt: NOW - 2 * H,
    lastSuccessEndedAt: NOW - 2 * H + 300_000,
    lastSuccessSnapshot: '20260110T100001Z',
  };
  const folder = (value: FolderBackup, readAt = NOW): FolderFacts => ({
    dest: '/backups',
    reading: { value, key: 'k' },
    readAt,
  });
  const known = (sound: { id: string; at: number } | null): FolderBackup => ({
    state: 'known',
    sound,
    latest: sound,
  });
  const ownMark = { id: '20260110T100001Z', at: NOW - 2 * H + 1000 };
  const cliMark = { id: '20260110T110000Z', at: NOW - H };

  it('without a reading of the folder, or one that cannot tell, the history decides', () => {
    assert.equal(scheduleLastSuccess(own), own.lastSuccessAt);
    const unplugged = folder({ state: 'unknown', why: 'the backup folder is missing' });
    assert.equal(scheduleLastSuccess(own, unplugged), own.lastSuccessAt);
    assert.equal(shownLastSuccess(own.lastSuccessEndedAt, unplugged), own.lastSuccessEndedAt);
  });

  it('read after the last success ended, the folder decides', () => {
    // Its own snapshot: the history's start, to the millisecond (an id keeps whole seconds).
    assert.equal(scheduleLastSuccess(own, folder(known(ownMark))), own.lastSuccessAt);
    // A newer one made by `mooring backup`.
    assert.equal(scheduleLastSuccess(own, folder(known(cliMark))), cliMark.at);
    // No sound backup there (moved to an empty folder, deleted, damaged): due now.
    assert.equal(scheduleLastSuccess(own, folder(known(null))), undefined);
    // An older sound one only (the latest marked damaged): counted from that one.
    const older = { id: '20260109T100000Z', at: NOW - 26 * H };
    assert.equal(scheduleLastSuccess(own, folder(known(older))), older.at);
    // Never backed up by the agent: the folder alone.
    const none: AttemptFacts = { consecutiveFailures: 0, attemptsToday: 0 };
    assert.equal(scheduleLastSuccess(none, folder(known(cliMark))), cliMark.at);
    assert.equal(scheduleLastSuccess(none, folder(known(null))), undefined);
  });

  it('read before the last success ended (its snapshot not in it yet), the newer of the two', () => {
    const early = NOW - 2 * H + 100_000;
    assert.equal(scheduleLastSuccess(own, folder(known(null), early)), own.lastSuccessAt);
    const older = { id: '20260109T100000Z', at: NOW - 26 * H };
    assert.equal(scheduleLastSuccess(own, folder(known(older), early)), own.lastSuccessAt);
    assert.equal(scheduleLastSuccess(own, folder(known(cliMark), early)), cliMark.at);
  });

  it('the status shows the newer of the history and the folder, never nothing when one knows', () => {
    assert.equal(shownLastSuccess(own.lastSuccessEndedAt, folder(known(cliMark))), cliMark.at);
    assert.equal(shownLastSuccess(NOW, folder(known(cliMark))), NOW);
    assert.equal(shownLastSuccess(null, folder(known(cliMark))), cliMark.at);
    assert.equal(shownLastSuccess(NOW, folder(known(null))), NOW);
    assert.equal(shownLastSuccess(undefined, folder(known(null))), null);
    assert.equal(shownLastSuccess(null), null);
  });
});
