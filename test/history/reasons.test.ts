/** The reason-code catalogue: every code renders a message (and a fix where one applies), no collisions. */
process.env.TZ = 'UTC';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  backupDirChanged,
  backupFailed,
  deviceMisbehaved, // H7h
  backupSucceeded,
  busy,
  cancelled,
  computerAsleep,
  connectionLost,
  deviceError,
  deviceLocked,
  deviceNotSeen,
  disabled,
  interrupted,
  MAX_QUOTED_CHARS,
  MB_ERRORS,
  noRecentBackup,
  notDue,
  notEnoughSpace,
  roomMade,
  notUnlocked24h,
  notUnlockedSinceReboot,
  outsideWindow,
  pairingExpiring,
  pairingInvalid,
  passcodeNotEntered,
  pruneFailed,
  storeRecovered,
  webhookFailed,
  paused,
  queued,
  REASON_CODES,
  encryptedNotOpened, // H8c
  REASONS,
  retryLimitReached,
  SEVERITIES,
  STALE_ERROR_DAYS,
  verificationFailed,
  waitingForPasscode,
  waitingForUnlock,
  wifiUnreachable,
  type Notice,
  type ReasonCode,
} from '../../src/history/reasons';
import {
  formatAgo,
  formatBytes,
  formatCount,
  formatDuration,
  formatWhen,
} from '../../src/history/units';
import { CONTROL_CHARS } from './fixture';

const NOW = Date.UTC(2025, 2, 4, 10, 0); // Tuesday 2025-03-04 10:00 UTC
const H = 3_600_000;
const DAY = 24 * H;

/** At least one rendering per code; the Record type makes tsc fail when a code has none. */
const EXAMPLES: Record<ReasonCode, Notice[]> = {
  NOT_DUE: [
    notDue({ nextDueAt: NOW + 16 * H, lastSuccessAt: NOW - 8 * H, now: NOW }),
    notDue({ nextDueAt: NOW + H, now: NOW }),
  ],
  OUTSIDE_WINDOW: [
    outsideWindow({
      window: { start: '01:00', end: '06:00' },
      nextWindowAt: NOW + 15 * H,
      now: NOW,
    }),
    outsideWindow({ window: { start: '22:00', end: '02:00' }, now: NOW }),
  ],
  PAUSED: [paused({ now: NOW }), paused({ since: NOW - H, now: NOW })],
  DEVICE_NOT_SEEN: [
    deviceNotSeen({ lastSeenAt: NOW - 3 * DAY, now: NOW }),
    deviceNotSeen({ now: NOW }),
  ],
  DEVICE_LOCKED: [deviceLocked()],
  NOT_UNLOCKED_24H: [
    notUnlocked24h({ now: NOW }),
    notUnlocked24h({ lastUnlockAt: NOW - 30 * H, now: NOW }),
  ],
  NOT_UNLOCKED_SINCE_REBOOT: [notUnlockedSinceReboot()],
  WIFI_UNREACHABLE: [wifiUnreachable({ address: '192.168.1.20' }), wifiUnreachable({})],
  BUSY: [busy({}), busy({ other: 'sync' }), busy({ other: 'backup' })],
  RETRY_LIMIT_REACHED: [
    retryLimitReached({ attempts: 3, nextTryAt: NOW + DAY, now: NOW }),
    retryLimitReached({ attempts: 1, now: NOW }),
  ],
  WAITING_FOR_UNLOCK: [
    waitingForUnlock({ waitUntil: NOW + 2 * H, lastUnlockedAt: NOW - 20 * H, now: NOW }),
    waitingForUnlock({ waitUntil: NOW + H, now: NOW }),
  ],
  QUEUED: [queued({ running: 1, concurrency: 1 }), queued({ running: 3, concurrency: 3 })],
  DISABLED: [disabled()],
  WAITING_FOR_PASSCODE: [waitingForPasscode()],
  PASSCODE_NOT_ENTERED: [
    passcodeNotEntered({ waitedMs: 120_000, retryAt: NOW + 2 * H, now: NOW }),
    passcodeNotEntered({ waitedMs: 45_000, now: NOW }),
  ],
  NOT_ENOUGH_SPACE: [
    notEnoughSpace({ neededBytes: 3.2e9, freeBytes: 1.1e9 }),
    notEnoughSpace({ freeBytes: 200e6, folder: '/Volumes/Backup' }),
    // D48
    notEnoughSpace({ neededBytes: 3.2e9, freeBytes: 1.1e9, makeRoom: 'off' }),
    notEnoughSpace({
      neededBytes: 3.2e9,
      freeBytes: 1.1e9,
      makeRoom: 'out-of-reach',
      possibleBytes: 0.4e9,
    }),
  ],
  CONNECTION_LOST: [
    connectionLost({ transport: 'wifi', retryAt: NOW + H, now: NOW }),
    connectionLost({ transport: 'usb', now: NOW }),
  ],
  DEVICE_ERROR: [
    ...Object.keys(MB_ERRORS).map((c) => deviceError({ code: Number(c) })),
    deviceError({ code: 999, description: 'Something odd' }),
    deviceError({ code: 998 }),
  ],
  VERIFICATION_FAILED: [
    verificationFailed({ problems: 1 }),
    verificationFailed({
      problems: 1234,
      firstProblem: 'missing 3d/3d0d7e5fb2ce288813306e4d4636395e047a3d28',
    }),
  ],
  BACKUP_FAILED: [backupFailed({ detail: 'the device sent a malformed message' })],
  // H7h
  DEVICE_MISBEHAVED: [
    deviceMisbehaved({ detail: 'The device sent something invalid' }),
    deviceMisbehaved({ detail: 'refused', refusedPaths: 2, firstRefusedPath: 'x/../../y' }),
  ],
  CANCELLED: [cancelled({ by: 'user' }), cancelled({ by: 'device' })],
  INTERRUPTED: [interrupted({ startedAt: NOW - H, now: NOW }), interrupted({ now: NOW })],
  BACKUP_SUCCEEDED: [
    backupSucceeded({ bytes: 1.25e9, durationMs: 200_000, filesChanged: 1234, full: true }),
    backupSucceeded({ bytes: 812, durationMs: 900, filesChanged: 1 }),
  ],
  PAIRING_INVALID: [
    pairingInvalid({ cause: 'refused' }),
    pairingInvalid({ cause: 'expired' }),
    pairingInvalid({ cause: 'missing' }),
  ],
  PAIRING_EXPIRING: [
    pairingExpiring({ lastContactAt: NOW - 25 * DAY, expiresAt: NOW + 5 * DAY, now: NOW }),
    pairingExpiring({ lastContactAt: NOW - 31 * DAY, expiresAt: NOW - DAY, now: NOW }),
  ],
  NO_RECENT_BACKUP: [
    noRecentBackup({ days: 2, lastSuccessAt: NOW - 2 * DAY, now: NOW }),
    noRecentBackup({ days: 9, now: NOW }),
  ],
  COMPUTER_ASLEEP: [computerAsleep({ from: NOW - 9 * H, to: NOW - 3 * H, now: NOW })],
  PRUNE_FAILED: [pruneFailed({ detail: 'EACCES: permission denied, rename …/snapshots/x' })],
  // D48
  ROOM_MADE: [
    roomMade({
      byRetention: 1,
      beyondRetention: 0,
      from: NOW - 400 * DAY,
      to: NOW - 400 * DAY,
      freedBytes: 2.5e9,
      now: NOW,
    }),
    roomMade({
      byRetention: 1,
      beyondRetention: 2,
      from: NOW - 400 * DAY,
      to: NOW - 20 * DAY,
      freedBytes: 4e9,
      folder: '/Volumes/Backup',
      now: NOW,
    }),
  ],
  STORE_RECOVERED: [
    storeRecovered({ found: 'snapshot 20261124T101500Z has no folder any more; forgotten' }),
  ],
  // H8c
  ENCRYPTED_NOT_OPENED: [
    encryptedNotOpened({ problem: 'NO_PASSWORD' }),
    encryptedNotOpened({ problem: 'MISMATCH' }),
  ],
  BACKUP_DIR_CHANGED: [backupDirChanged({ from: '/old/backups', to: '/Volumes/Disk/backups' })],
  WEBHOOK_FAILED: [webhookFailed({ detail: 'webhook ntfy.sh answered HTTP 401' })],
};

test('every code has renderings whose code, kind, severity and fix agree with the catalogue', () => {
  assert.deepEqual(Object.keys(EXAMPLES).sort(), [...REASON_CODES].sort());
  for (const code of REASON_CODES) {
    const spec = REASONS[code];
    assert.ok(EXAMPLES[code].length > 0, code);
    for (const n of EXAMPLES[code]) {
      assert.equal(n.reasonCode, code);
      assert.equal(n.kind, spec.kind, code);
      assert.ok(SEVERITIES.includes(n.severity), code);
      assert.ok(n.message.length > 10, `${code}: message`);
      assert.equal(
        n.fixHint !== null,
        spec.hasFix,
        `${code}: fix hint ${spec.hasFix ? 'missing' : 'unexpected'}`,
      );
      for (const text of [n.message, n.fixHint ?? '']) {
        assert.doesNotMatch(text, /undefined|NaN|null|\[object|Infinity/, `${code}: ${text}`);
        assert.doesNotMatch(text, /\.$/, `${code}: messages end without a full stop`);
        assert.doesNotMatch(text, CONTROL_CHARS, `${code}: control characters`);
      }
      assert.deepEqual(
        JSON.parse(JSON.stringify(n.params)),
        n.params,
        `${code}: params are plain JSON`,
      );
    }
  }
});

test('codes are stable identifiers and no two codes share a message', () => {
  assert.equal(new Set(REASON_CODES).size, REASON_CODES.length);
  for (const c of REASON_CODES) assert.match(c, /^[A-Z][A-Z0-9_]*[A-Z0-9]$/);
  const owner = new Map<string, ReasonCode>();
  for (const code of REASON_CODES) {
    for (const n of EXAMPLES[code]) {
      const prev = owner.get(n.message);
      assert.ok(prev === undefined || prev === code, `${code} and ${prev} render the same message`);
      owner.set(n.message, code);
    }
  }
});

test('the issue list is covered by the catalogue', () => {
  for (const c of [
    'NOT_DUE',
    'OUTSIDE_WINDOW',
    'DEVICE_NOT_SEEN',
    'DEVICE_LOCKED',
    'NOT_UNLOCKED_24H',
    'NOT_UNLOCKED_SINCE_REBOOT',
    'WAITING_FOR_PASSCODE',
    'PASSCODE_NOT_ENTERED',
    'PAIRING_INVALID',
    'WIFI_UNREACHABLE',
    'COMPUTER_ASLEEP',
    'NOT_ENOUGH_SPACE',
    'BUSY',
    'DEVICE_ERROR',
    'VERIFICATION_FAILED',
    'BACKUP_SUCCEEDED',
    'NO_RECENT_BACKUP',
    'INTERRUPTED',
  ]) {
    assert.ok((REASON_CODES as string[]).includes(c), c);
  }
});

test('messages carry the facts: space, times, sizes, durations', () => {
  const space = notEnoughSpace({ neededBytes: 3.2e9, freeBytes: 1.1e9, folder: '/Volumes/Backup' });
  assert.equal(space.message, 'Not enough free space on this computer: 3.2 GB needed, 1.1 GB free');
  assert.equal(space.fixHint, 'Free up space on /Volumes/Backup or choose another backup folder');
  assert.deepEqual(space.params, {
    neededBytes: 3.2e9,
    freeBytes: 1.1e9,
    folder: '/Volumes/Backup',
  });
  // D48: the fix names the setting that would have made the room; a room out of reach is said.
  assert.match(
    notEnoughSpace({ freeBytes: 1.1e9, folder: '/b', makeRoom: 'off' }).fixHint!,
    /^Free up space on \/b, choose another backup folder, or turn on “Make room” in Settings/,
  );
  assert.equal(
    notEnoughSpace({
      neededBytes: 3.2e9,
      freeBytes: 1.1e9,
      makeRoom: 'out-of-reach',
      possibleBytes: 0.4e9,
    }).message,
    'Not enough free space on this computer: 3.2 GB needed, 1.1 GB free; removing every older backup would free only 400 MB, so none was removed beyond what the retention settings let go',
  );
  const policyOnly = roomMade({
    byRetention: 2,
    beyondRetention: 0,
    from: NOW - 400 * DAY,
    to: NOW - 399 * DAY,
    freedBytes: 2.5e9,
    now: NOW,
  });
  assert.equal(policyOnly.severity, 'info');
  assert.match(
    policyOnly.message,
    /^The device needed room: Mooring removed 2 older backups that the retention settings no longer keep \(the oldest made on 2024-01-29 at \d\d:\d\d, the newest on 2024-01-30 at /,
  );
  assert.match(policyOnly.message, /freeing 2\.5 GB$/);
  const beyond = roomMade({
    byRetention: 0,
    beyondRetention: 1,
    from: NOW - DAY,
    to: NOW - DAY,
    freedBytes: 1e9,
    now: NOW,
  });
  assert.equal(beyond.severity, 'warning', 'backups the person kept are gone');
  assert.match(
    beyond.message,
    /removed 1 older backup \(made yesterday at \d\d:\d\d\), freeing 1\.0 GB$/,
  );

  assert.equal(
    notDue({ nextDueAt: Date.UTC(2025, 2, 5, 2, 0), lastSuccessAt: NOW - 22 * H, now: NOW })
      .message,
    'Not due yet: last backup 22 h ago; next backup tomorrow at 02:00',
  );
  assert.equal(
    outsideWindow({
      window: { start: '01:00', end: '06:00' },
      nextWindowAt: Date.UTC(2025, 2, 5, 1),
      now: NOW,
    }).message,
    'Outside the backup window (01:00–06:00); the next window opens tomorrow at 01:00',
  );
  assert.equal(
    deviceNotSeen({ lastSeenAt: Date.UTC(2025, 2, 1, 18, 30), now: NOW }).message,
    'The device was last seen on 2025-03-01 at 18:30 (2 days ago)',
  );
  assert.equal(
    backupSucceeded({ bytes: 1.25e9, durationMs: 200_000, filesChanged: 1234 }).message,
    'Backup finished: 1.3 GB in 3 min 20 s, 1,234 files changed',
  );
  assert.equal(
    passcodeNotEntered({ waitedMs: 120_000, retryAt: NOW + 2 * H, now: NOW }).message,
    'Nobody entered the passcode on the device within 2 min 00 s; Mooring tries again today at 12:00',
  );
  assert.match(
    computerAsleep({ from: NOW - 9 * H, to: NOW - 3 * H, now: NOW }).message,
    /asleep today at 01:00, awake again today at 07:00$/,
  );
});

test("the scheduler's skips explain themselves: waiting for an unlock, queued, disabled", () => {
  const w = waitingForUnlock({ waitUntil: NOW + 2 * H, lastUnlockedAt: NOW - 20 * H, now: NOW });
  assert.equal(w.kind, 'skip');
  assert.equal(w.severity, 'info');
  assert.equal(
    w.message,
    'Waiting for the device to be unlocked before starting (until today at 12:00), so nobody has to stand by a passcode prompt; last unlocked 20 h ago; after that the backup starts anyway and the device asks for its passcode',
  );
  assert.match(w.fixHint ?? '', /Unlock the device/);
  assert.deepEqual(w.params, { waitUntil: NOW + 2 * H, lastUnlockedAt: NOW - 20 * H, now: NOW });

  const q = queued({ running: 1, concurrency: 1 });
  assert.equal(
    q.message,
    "Queued: another device's backup is running (at most 1 at a time); this one starts when a slot frees up",
  );
  assert.match(queued({ running: 2, concurrency: 2 }).message, /^Queued: 2 other backups are/);
  assert.equal(q.severity, 'info');

  const d = disabled();
  assert.equal(d.message, 'Automatic backups are off for this device');
  assert.match(d.fixHint ?? '', /config set enabled true/);
});

test('device errors: the known MBErrorDomain codes each have their own explanation and fix', () => {
  for (const code of [1, 104, 105, 205, 208, 212]) {
    assert.ok(MB_ERRORS[code], `MBErrorDomain ${code} is mapped`);
  }
  const rendered = Object.keys(MB_ERRORS).map((c) => deviceError({ code: Number(c) }));
  assert.equal(new Set(rendered.map((n) => n.message)).size, rendered.length);
  assert.equal(new Set(rendered.map((n) => n.fixHint)).size, rendered.length);
  for (const n of rendered)
    assert.match(n.message, new RegExp(`\\(MBErrorDomain ${String(n.params.code)}\\)$`));
  assert.match(deviceError({ code: 105 }).message, /not enough free space on this computer/);
  assert.equal(deviceError({ code: 208 }).severity, 'warning');
  assert.equal(deviceError({ code: 1 }).severity, 'error');

  // The device's own description is untrusted: control characters out, length bounded.
  const odd = deviceError({
    code: 999,
    description: 'Bad\u0007 thing\nhappened' + 'x'.repeat(1000),
  });
  assert.doesNotMatch(odd.message, CONTROL_CHARS);
  assert.ok(odd.message.length < MAX_QUOTED_CHARS + 100);
  assert.match(odd.message, /^The device stopped the backup: "Bad thing happened/);
  assert.match(odd.fixHint ?? '', /report the error code/);
  // A known code keeps the device's words too.
  assert.match(
    deviceError({ code: 104, description: 'Multiple errors uploading files' }).message,
    /104: "Multiple errors uploading files"\)$/,
  );
});

test('no successful backup for N days escalates from warning to error', () => {
  assert.equal(
    noRecentBackup({ days: 2, lastSuccessAt: NOW - 2 * DAY, now: NOW }).severity,
    'warning',
  );
  assert.equal(
    noRecentBackup({ days: STALE_ERROR_DAYS - 1, lastSuccessAt: NOW - 6 * DAY, now: NOW }).severity,
    'warning',
  );
  assert.equal(
    noRecentBackup({ days: STALE_ERROR_DAYS, lastSuccessAt: NOW - 7 * DAY, now: NOW }).severity,
    'error',
  );
  assert.equal(
    noRecentBackup({ days: 2.7, lastSuccessAt: Date.UTC(2025, 2, 1, 12, 0), now: NOW }).message,
    'No successful backup for 2 days (last one on 2025-03-01 at 12:00)',
  );
  assert.match(
    noRecentBackup({ days: 1, now: NOW }).message,
    /^No successful backup yet, 1 day after/,
  );
});

test('units read as Finder and people do', () => {
  assert.equal(formatBytes(0), '0 bytes');
  assert.equal(formatBytes(999), '999 bytes');
  assert.equal(formatBytes(1000), '1.0 KB');
  assert.equal(formatBytes(12_345_678), '12.3 MB');
  assert.equal(formatBytes(3.2e9), '3.2 GB');
  assert.equal(formatBytes(120e9), '120 GB');
  assert.equal(formatBytes(2.5e15), '2500 TB');
  assert.equal(formatDuration(0), '0 s');
  assert.equal(formatDuration(59_400), '59 s');
  assert.equal(formatDuration(200_000), '3 min 20 s');
  assert.equal(formatDuration(2 * H + 5 * 60_000), '2 h 05 min');
  assert.equal(formatDuration(3 * DAY + 4 * H), '3 days 4 h');
  assert.equal(formatDuration(DAY), '1 day');
  assert.equal(formatAgo(NOW - 30_000, NOW), 'just now');
  assert.equal(formatAgo(NOW - 12 * 60_000, NOW), '12 min ago');
  assert.equal(formatAgo(NOW - 47 * H, NOW), '47 h ago');
  assert.equal(formatAgo(NOW - 3 * DAY, NOW), '3 days ago');
  assert.equal(formatWhen(NOW + 2 * H, NOW), 'today at 12:00');
  assert.equal(formatWhen(NOW - 11 * H, NOW), 'yesterday at 23:00');
  assert.equal(formatWhen(NOW + 14 * H, NOW), 'tomorrow at 00:00');
  assert.equal(formatWhen(Date.UTC(2024, 11, 31, 9, 5), NOW), 'on 2024-12-31 at 09:05');
  assert.equal(formatCount(1234567), '1,234,567');
});
