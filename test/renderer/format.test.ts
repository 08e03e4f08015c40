/**
 * The renderer's pure helpers under node (no DOM): sizes, moments, a device's status line for
 * each state, the next-run sentence, the timeline geometry and the settings form's logic.
 */
process.env.TZ = 'UTC';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DeviceStatus } from '../../src/agent/types';
import {
  deviceStatusLine,
  formatBytes,
  formatDuration,
  formatRelative,
  formatWhen,
  nextRunText,
  phaseText,
  progressPercent,
  progressText,
  reachableText,
} from '../../src/renderer/format';
import { changedSettings, fieldOfMessage } from '../../src/renderer/settings-logic';
import { layoutTimeline, MIN_BAR_HEIGHT, snapshotPoints } from '../../src/renderer/timeline';

const NOW = Date.UTC(2026, 2, 10, 12, 0, 0); // 2026-03-10 12:00 UTC
const H = 3600_000;

function device(over: Partial<DeviceStatus> = {}): DeviceStatus {
  return {
    udid: '00008120-0001',
    name: 'Anna’s iPhone',
    productType: 'iPhone15,2',
    iosVersion: '17.5',
    paired: true,
    reachable: { usb: false, wifi: true },
    address: '192.168.1.20',
    lastSeen: NOW - 60_000,
    lastContact: NOW - 60_000,
    lastSuccess: NOW - 3 * H,
    lastUnlocked: null,
    running: null,
    next: { code: 'NOT_DUE', message: 'Not due yet', at: NOW + 21 * H },
    pairing: { health: 'ok', expiresAt: null, message: null },
    latestSnapshot: null,
    settings: {},
    wifiBackups: true,
    encryption: { on: null, passwordStored: false, latestOpens: null, storeKind: null }, // H8c
    ...over,
  };
}

/** The default stale-after setting (3 days). */
const STALE = 72 * 3600_000;

const running = (over: Partial<NonNullable<DeviceStatus['running']>> = {}) => ({
  attemptId: 7,
  trigger: 'manual' as const,
  transport: 'wifi' as const,
  startedAt: NOW - 60_000,
  phase: 'transferring',
  bytes: 42_000_000,
  files: 120,
  percent: 42.6 as number | null,
  quietSince: null as number | null,
  passcodeWaiting: false,
  ...over,
});

describe('renderer text helpers', () => {
  it('formats sizes in decimal units', () => {
    assert.equal(formatBytes(0), '0 bytes');
    assert.equal(formatBytes(1), '1 byte');
    assert.equal(formatBytes(999), '999 bytes');
    assert.equal(formatBytes(3_400), '3.4 KB');
    assert.equal(formatBytes(21_200_000), '21.2 MB');
    assert.equal(formatBytes(999_999), '1.0 MB');
    assert.equal(formatBytes(120_000_000_000), '120 GB');
  });

  it('formats durations and moments relative to now', () => {
    assert.equal(formatDuration(45_000), '45 s');
    assert.equal(formatDuration(3 * 60_000), '3 min');
    assert.equal(formatDuration(2 * H + 5 * 60_000), '2 h 05 min');
    assert.equal(formatDuration(52 * H), '2 days 4 h');
    assert.equal(formatRelative(NOW - 10_000, NOW), 'just now');
    assert.equal(formatRelative(NOW + 5 * 60_000, NOW), 'in 5 min');
    assert.equal(formatRelative(NOW - 3 * H, NOW), '3 h ago');
    assert.equal(formatRelative(NOW + 50 * H, NOW), 'in 2 days');
    assert.equal(formatWhen(NOW + 2 * H, NOW), 'today at 14:00');
    assert.equal(formatWhen(NOW + 14 * H, NOW), 'tomorrow at 02:00');
    assert.equal(formatWhen(NOW - 13 * H, NOW), 'yesterday at 23:00');
    assert.equal(formatWhen(NOW + 72 * H, NOW), '2026-03-13 at 12:00');
  });

  it('reads progress as the device’s own percentage, once it reports one', () => {
    assert.equal(progressPercent({ percent: 42.6 }), 42);
    assert.equal(progressPercent({ percent: 100.4 }), 100);
    assert.equal(progressPercent({ percent: null }), null);
    assert.equal(progressText(running(), NOW), 'Backing up… 42% (42.0 MB)');
    assert.equal(progressText(running({ percent: null }), NOW), 'Backing up… (42.0 MB)');
    assert.equal(
      progressText(running({ phase: 'connecting', bytes: 0, percent: null }), NOW),
      'Connecting…',
    );
    assert.equal(
      progressText(running({ passcodeWaiting: true }), NOW),
      'Waiting for the passcode on the device',
    );
    // A device that went quiet says since when (it may be preparing for minutes).
    assert.equal(
      progressText(
        running({ phase: 'preparing', bytes: 0, percent: null, quietSince: NOW - 3 * 60_000 }),
        NOW,
      ),
      `${phaseText('preparing')}…; the device has sent nothing since ${formatWhen(NOW - 3 * 60_000, NOW)} and may still be preparing`,
    );
  });

  it('says each device state in one line with its tone', () => {
    assert.deepEqual(deviceStatusLine(device(), NOW, STALE), {
      text: 'Backed up 3 h ago',
      tone: 'ok',
    });
    assert.deepEqual(deviceStatusLine(device({ running: running() }), NOW, STALE), {
      text: 'Backing up… 42% (42.0 MB)',
      tone: 'busy',
    });
    assert.deepEqual(
      deviceStatusLine(device({ running: running({ passcodeWaiting: true }) }), NOW, STALE),
      { text: 'Waiting for the passcode on the device', tone: 'busy' },
    );
    assert.deepEqual(
      deviceStatusLine(
        device({ pairing: { health: 'invalid', expiresAt: null, message: 'x' } }),
        NOW,
        STALE,
      ),
      { text: 'Not trusted any more: pair again', tone: 'attention' },
    );
    assert.deepEqual(
      deviceStatusLine(
        device({
          paired: false,
          lastSuccess: null,
          next: { code: 'NOT_PAIRED', message: 'pair it', at: null },
        }),
        NOW,
        STALE,
      ),
      { text: 'Not paired yet', tone: 'attention' },
    );
    assert.deepEqual(
      deviceStatusLine(
        device({ reachable: { usb: false, wifi: false }, lastSeen: NOW - 50 * H }),
        NOW,
        STALE,
      ),
      { text: 'Not seen for 2 days 2 h', tone: 'attention' },
    );
    assert.deepEqual(deviceStatusLine(device({ lastSuccess: null }), NOW, STALE), {
      text: 'Never backed up',
      tone: 'attention',
    });
    assert.equal(
      deviceStatusLine(device({ lastSuccess: NOW - 80 * H }), NOW, STALE).tone,
      'attention',
    );
    // The stale-after setting decides, as it does for the tray and the notices.
    assert.equal(
      deviceStatusLine(device({ lastSuccess: NOW - 80 * H }), NOW, 7 * 24 * H).tone,
      'ok',
    );
    assert.equal(
      deviceStatusLine(device({ lastSuccess: NOW - 13 * H }), NOW, 12 * H).tone,
      'attention',
    );
    assert.equal(reachableText({ usb: true, wifi: true }), 'USB and Wi-Fi');
    assert.equal(reachableText({ usb: false, wifi: false }), 'Not connected');
  });

  it('says when the next backup is planned and why', () => {
    assert.deepEqual(nextRunText(device(), NOW), {
      headline: 'Next backup: tomorrow at 09:00 (in 21 h)',
      why: 'Not due yet',
    });
    const outside = device({
      next: { code: 'OUTSIDE_WINDOW', message: 'Outside the window 01:00-06:00', at: NOW + 13 * H },
    });
    assert.equal(nextRunText(outside, NOW).headline, 'Next backup: tomorrow at 01:00 (in 13 h)');
    assert.equal(nextRunText(outside, NOW).why, 'Outside the window 01:00-06:00');
    assert.equal(
      nextRunText(device({ next: { code: 'DUE', message: 'Due', at: null } }), NOW).headline,
      'Next backup: starting now',
    );
    assert.deepEqual(
      nextRunText(
        device({ next: { code: 'DISABLED', message: 'Automatic backups are off', at: null } }),
        NOW,
      ),
      { headline: 'Next backup: not planned', why: 'Automatic backups are off' },
    );
    assert.equal(nextRunText(device({ running: running() }), NOW).headline, 'Backing up now');
  });
});

describe('snapshot timeline geometry', () => {
  const box = { width: 1000, height: 170, padX: 40, padTop: 24, padBottom: 28 };

  it('places bars by time and sizes them by the bytes each snapshot added', () => {
    const l = layoutTimeline(
      [
        { id: 'c', at: NOW, bytes: 1_000 },
        { id: 'a', at: NOW - 2 * H, bytes: 100_000 },
        { id: 'b', at: NOW - H, bytes: 50_000 },
      ],
      box,
    );
    assert.deepEqual(
      l.bars.map((b) => b.id),
      ['a', 'b', 'c'],
    );
    const [a, b, c] = l.bars;
    assert.ok(a!.x < b!.x && b!.x < c!.x);
    // The largest reaches the top margin; half the bytes, half the height.
    assert.equal(a!.y, box.padTop);
    assert.equal(a!.y + a!.height, l.baseline);
    assert.equal(b!.height, a!.height / 2);
    assert.ok(c!.height >= MIN_BAR_HEIGHT);
    assert.equal(l.from, NOW - 2 * H);
    assert.equal(l.to, NOW);
  });

  it('centres a single snapshot and draws none for no snapshots', () => {
    const one = layoutTimeline([{ id: 'x', at: NOW, bytes: 5 }], box);
    assert.equal(one.bars.length, 1);
    assert.equal(one.bars[0]!.x + one.bars[0]!.width / 2, box.width / 2);
    assert.deepEqual(layoutTimeline([], box).bars, []);
  });

  it('takes snapshots from successful attempts only', () => {
    const base = {
      udid: 'u',
      startedAt: NOW - H,
      endedAt: NOW,
      trigger: 'manual' as const,
      transport: 'usb' as const,
      reasonCode: null,
      files: 1,
      durationMs: 1,
      deviceErrorCode: null,
      message: null,
    };
    const points = snapshotPoints([
      { ...base, id: 1, outcome: 'success', bytes: 10, snapshotId: 's1' },
      { ...base, id: 2, outcome: 'failure', bytes: 99, snapshotId: null },
      { ...base, id: 3, outcome: 'cancelled', bytes: 5, snapshotId: null },
    ]);
    assert.deepEqual(points, [{ id: 's1', at: NOW, bytes: 10 }]);
  });
});

describe('settings form logic', () => {
  it('finds the field an agent message is about', () => {
    const keys = ['interval', 'window', 'retries-per-day', 'passcode-wait', 'webhook'];
    assert.equal(fieldOfMessage('interval: "1s" is out of range', keys), 'interval');
    assert.equal(
      fieldOfMessage('retries-per-day: expected a whole number', keys),
      'retries-per-day',
    );
    assert.equal(fieldOfMessage('paused is a global setting', ['paused']), 'paused');
    assert.equal(fieldOfMessage('unknown setting "colour"', keys), undefined);
  });

  it('sends only what changed, per scope', () => {
    const loaded = {
      device: { interval: '24h', window: 'any', enabled: 'true' },
      global: { 'retries-per-day': '5', paused: 'false' },
    };
    assert.deepEqual(
      changedSettings(loaded, [
        { key: 'interval', scope: 'device', value: '12h' },
        { key: 'window', scope: 'device', value: 'any' },
        { key: 'paused', scope: 'global', value: 'true' },
        { key: 'retries-per-day', scope: 'global', value: '5' },
      ]),
      { device: { interval: '12h' }, global: { paused: 'true' } },
    );
  });

  it('turns an emptied resettable field into a reset (null), and only that one', () => {
    const loaded = {
      device: { 'keep-all': '14d', interval: '24h' },
      global: { 'keep-all': '14d' },
    };
    assert.deepEqual(
      changedSettings(loaded, [
        { key: 'keep-all', scope: 'device', value: '', resettable: true },
        { key: 'interval', scope: 'device', value: '' },
        { key: 'keep-all', scope: 'global', value: '14d' },
      ]),
      { device: { 'keep-all': null, interval: '' }, global: {} },
    );
  });
});
