/**
 * The settings catalogue against a real history file: user strings parse to canonical values and
 * format back, bad input is refused with a message saying what is accepted, applyConfig writes
 * all or nothing, and a damaged stored value falls back to the default (reported) instead of
 * stopping the agent.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import Database from 'better-sqlite3';
import {
  applyConfig,
  DEVICE_KEYS,
  effectiveConfig,
  formatSetting,
  GLOBAL_KEYS,
  parseDuration,
  parseSetting,
  readDeviceOverrides,
  readGlobalSettings,
} from '../../src/agent/config';
import { openHistory, type History } from '../../src/history';
import { resolvePolicy, DEFAULT_POLICY } from '../../src/scheduler/policy';
import { isMooringError } from '../../src/util/errors';
import { tempDirs, UDID_A, UDID_B } from '../history/fixture';

const dirs = tempDirs('mooring-config-');
after(dirs.cleanup);

const S = 1000;
const M = 60 * S;
const H = 60 * M;
const D = 24 * H;

function fresh(): { h: History; file: string } {
  const file = path.join(dirs.tmp(), 'history.db');
  return { h: openHistory(file), file };
}

function usageError(fn: () => unknown, message: RegExp | string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(isMooringError(e, 'USAGE'), `expected a USAGE error, got ${String(e)}`);
    if (typeof message === 'string') assert.equal(e.message, message);
    else assert.match(e.message, message);
    return true;
  });
}

const DEFAULTS = {
  interval: '24h',
  window: 'any',
  enabled: 'true',
  paused: 'false',
  concurrency: '1',
  'retries-per-day': '5',
  'retry-after': '15m',
  'passcode-wait': '2h',
  webhook: 'off',
  'stale-after': '3d',
  'keep-all': '14d',
  'keep-daily': '60d',
  'keep-weekly': '365d',
  'make-room': 'false',
  'backup-dir': 'default',
};

/** The retention settings every device shows unless set (its periods, and "make room", D48). */
const RETENTION_DEFAULTS = {
  'keep-all': '14d',
  'keep-daily': '60d',
  'keep-weekly': '365d',
  'make-room': 'false',
};

test('the catalogue: global keys, and the ones a device may override', () => {
  assert.deepEqual([...GLOBAL_KEYS].sort(), Object.keys(DEFAULTS).sort());
  assert.deepEqual([...DEVICE_KEYS].sort(), [
    'enabled',
    'interval',
    'keep-all',
    'keep-daily',
    'keep-weekly',
    'make-room',
    'window',
  ]);
});

test('durations: s, m, h, d and combinations', () => {
  assert.equal(parseDuration('30s'), 30 * S);
  assert.equal(parseDuration('90m'), 90 * M);
  assert.equal(parseDuration('24h'), 24 * H);
  assert.equal(parseDuration('1h30m'), 90 * M);
  assert.equal(parseDuration('1d 12h'), 36 * H);
  assert.equal(parseDuration('2D'), 2 * D);
  for (const bad of ['', '24', 'h', '1x', '1h1h', '30s1m', '-1h', '1.5h', '1e3s', '9999999d'])
    assert.equal(parseDuration(bad), undefined, bad);

  assert.equal(parseSetting('interval', '90m', 'global'), 90 * M);
  assert.equal(formatSetting('interval', 90 * M), '1h30m');
  assert.equal(formatSetting('interval', 24 * H), '24h');
  assert.equal(formatSetting('interval', 36 * H), '36h');
  assert.equal(formatSetting('stale-after', 3 * D), '3d');
  assert.equal(formatSetting('interval', 10 * S), '10s');
  assert.equal(formatSetting('passcode-wait', 0), '0s');
  // Every formatted value parses back to itself.
  for (const ms of [10 * S, 61 * S, 90 * M, 25 * H + 1 * S, 3 * D, 7 * D + 5 * M]) {
    assert.equal(parseSetting('interval', formatSetting('interval', ms), 'global'), ms);
  }
});

test('each key parses what it should and says what it accepts otherwise', () => {
  assert.deepEqual(parseSetting('window', '01:00-06:00', 'global'), {
    start: '01:00',
    end: '06:00',
  });
  assert.deepEqual(parseSetting('window', '22:30 - 2:00', 'device'), {
    start: '22:30',
    end: '02:00',
  });
  assert.equal(parseSetting('window', 'any', 'global'), 'any');
  assert.equal(parseSetting('enabled', 'false', 'device'), false);
  assert.equal(parseSetting('paused', 'TRUE', 'global'), true);
  assert.equal(parseSetting('concurrency', '8', 'global'), 8);
  assert.equal(parseSetting('retries-per-day', '50', 'global'), 50);
  assert.equal(parseSetting('passcode-wait', '0s', 'global'), 0);
  assert.equal(parseSetting('webhook', 'off', 'global'), null);
  assert.equal(
    parseSetting('webhook', 'https://ntfy.sh/my-phone', 'global'),
    'https://ntfy.sh/my-phone',
  );

  usageError(
    () => parseSetting('window', '25:00-3', 'global'),
    'window: expected HH:MM-HH:MM or "any", got "25:00-3"',
  );
  usageError(
    () => parseSetting('window', '25:00-03:00', 'global'),
    /^window: expected HH:MM-HH:MM/,
  );
  usageError(() => parseSetting('window', '03:00-03:00', 'global'), /empty/);
  usageError(() => parseSetting('interval', '5s', 'global'), /at least 10s/);
  usageError(() => parseSetting('interval', 'daily', 'global'), /units d, h, m, s.*"daily"/);
  usageError(() => parseSetting('interval', '400d', 'global'), /out of range/);
  usageError(() => parseSetting('enabled', 'maybe', 'global'), /"true" or "false", got "maybe"/);
  usageError(() => parseSetting('concurrency', '0', 'global'), /from 1 to 8, got "0"/);
  usageError(() => parseSetting('concurrency', '9', 'global'), /from 1 to 8/);
  usageError(() => parseSetting('concurrency', '1.5', 'global'), /from 1 to 8/);
  usageError(() => parseSetting('retries-per-day', '51', 'global'), /from 1 to 50/);
  usageError(
    () => parseSetting('retry-after', '5s', 'global'),
    /^retry-after: "5s" is out of range: expected a duration from 10s to 1d/,
  );
  usageError(() => parseSetting('passcode-wait', '8d', 'global'), /up to 7d/);
  usageError(() => parseSetting('stale-after', '30m', 'global'), /at least 1h/);
  usageError(() => parseSetting('webhook', 'ftp://x.example/', 'global'), /http:\/\/ or https:/);
  usageError(() => parseSetting('webhook', 'not a url', 'global'), /http:\/\/ or https:/);
  usageError(
    () => parseSetting('webhook', 'https://me:secret@ntfy.sh/x', 'global'),
    /user name or password/,
  );
  usageError(
    () => parseSetting('webhook', `https://ntfy.sh/${'x'.repeat(3000)}`, 'global'),
    /longer than/,
  );
  usageError(
    () => parseSetting('colour', 'red', 'global'),
    /unknown setting "colour": settings are interval, window/,
  );
  usageError(
    () => parseSetting('paused', 'true', 'device'),
    /global setting.*interval, window, enabled/,
  );
  usageError(() => parseSetting('interval', 'x'.repeat(10_000), 'global'), /^interval: expected/);
});

test('effective values: defaults, global, device overrides; null resets', () => {
  const { h } = fresh();
  try {
    assert.deepEqual(effectiveConfig(h), DEFAULTS);
    assert.deepEqual(effectiveConfig(h, UDID_A), {
      interval: '24h',
      window: 'any',
      enabled: 'true',
      ...RETENTION_DEFAULTS,
    });

    applyConfig(h, { interval: '12h', window: '01:00-06:00', webhook: 'https://ntfy.sh/t' });
    applyConfig(h, { window: '22:00-02:00', enabled: 'false' }, UDID_A);

    assert.equal(effectiveConfig(h).interval, '12h');
    assert.equal(effectiveConfig(h).webhook, 'https://ntfy.sh/t');
    assert.deepEqual(effectiveConfig(h, UDID_A), {
      interval: '12h', // inherited from global
      window: '22:00-02:00',
      enabled: 'false',
      ...RETENTION_DEFAULTS,
    });
    assert.deepEqual(effectiveConfig(h, UDID_B), {
      interval: '12h',
      window: '01:00-06:00',
      enabled: 'true',
      ...RETENTION_DEFAULTS,
    });

    // The scheduler sees the same values.
    const g = readGlobalSettings(h);
    assert.deepEqual(g.overrides, {
      minIntervalMs: 12 * H,
      window: { start: '01:00', end: '06:00' },
    });
    assert.equal(g.webhook, 'https://ntfy.sh/t');
    const policy = resolvePolicy(g.overrides, readDeviceOverrides(h, UDID_A));
    assert.equal(policy.minIntervalMs, 12 * H);
    assert.deepEqual(policy.window, { start: '22:00', end: '02:00' });
    assert.equal(policy.enabled, false);

    applyConfig(h, { window: null }, UDID_A);
    assert.equal(effectiveConfig(h, UDID_A).window, '01:00-06:00');
    applyConfig(h, { interval: null, webhook: 'off' });
    assert.equal(effectiveConfig(h).interval, '24h');
    assert.equal(readGlobalSettings(h).webhook, null);
  } finally {
    h.close();
  }
});

test('every global key reaches readGlobalSettings', () => {
  const { h } = fresh();
  try {
    applyConfig(h, {
      interval: '6h',
      window: '02:00-05:00',
      enabled: 'false',
      paused: 'true',
      concurrency: '3',
      'retries-per-day': '7',
      'retry-after': '6h',
      'passcode-wait': '45m',
      webhook: 'http://127.0.0.1:8080/hook',
      'stale-after': '5d',
    });
    assert.deepEqual(readGlobalSettings(h), {
      overrides: {
        minIntervalMs: 6 * H,
        window: { start: '02:00', end: '05:00' },
        enabled: false,
        paused: true,
        // A first retry later than the 4 h ceiling raises the ceiling with it.
        retry: { maxPerDay: 7, initialDelayMs: 6 * H, maxDelayMs: 6 * H },
        passcode: { waitForUnlockMs: 45 * M },
      },
      concurrency: 3,
      webhook: 'http://127.0.0.1:8080/hook',
      staleAfterMs: 5 * D,
      backupDir: null,
    });
    const p = resolvePolicy(readGlobalSettings(h).overrides);
    assert.equal(p.retry.maxPerDay, 7);
    assert.equal(p.retry.initialDelayMs, 6 * H);
    assert.equal(p.passcode.waitForUnlockMs, 45 * M);
    assert.equal(p.passcode.recentUseMs, DEFAULT_POLICY.passcode.recentUseMs);
    assert.equal(p.paused, true);
  } finally {
    h.close();
  }
});

test('applyConfig is all or nothing', () => {
  const { h } = fresh();
  try {
    applyConfig(h, { interval: '12h' });
    usageError(
      () => applyConfig(h, { interval: '6h', concurrency: '99', window: '01:00-02:00' }),
      /^concurrency: expected a whole number from 1 to 8/,
    );
    assert.deepEqual(h.listSettings('global'), { interval: 12 * H });
    usageError(() => applyConfig(h, { interval: '6h', paused: 'true' }, UDID_A), /global setting/);
    assert.deepEqual(h.listSettings(UDID_A), {});
    usageError(
      () => applyConfig(h, { interval: 6 as unknown as string }),
      /interval: expected a string value, or null/,
    );
    assert.deepEqual(h.listSettings('global'), { interval: 12 * H });
  } finally {
    h.close();
  }
});

test('damaged stored values fall back to the default and are reported', () => {
  const { h, file } = fresh();
  applyConfig(h, { concurrency: '2', 'stale-after': '2d' });
  applyConfig(h, { enabled: 'false' }, UDID_A);
  // Values a broken writer (or a hand edit of the file) could leave behind.
  h.setSetting('global', 'interval', 'banana');
  h.setSetting('global', 'window', { start: '25:00', end: '03:00' });
  h.setSetting('global', 'webhook', 'file:///etc/passwd');
  h.setSetting(UDID_A, 'interval', 5);
  h.close();
  const db = new Database(file);
  db.prepare(
    "UPDATE settings SET value = '99' WHERE scope = 'global' AND key = 'concurrency'",
  ).run();
  db.close();

  const h2 = openHistory(file);
  try {
    const problems: string[] = [];
    const g = readGlobalSettings(h2, (p) => problems.push(p));
    assert.deepEqual(g, {
      overrides: {},
      concurrency: 1,
      webhook: null,
      staleAfterMs: 2 * D, // the intact value is kept
      backupDir: null,
    });
    assert.equal(problems.length, 4, problems.join('\n'));
    assert.match(problems.join('\n'), /setting interval \(global\) holds an invalid value/);
    assert.match(
      problems.join('\n'),
      /setting concurrency \(global\) holds an invalid value: concurrency: expected a whole number from 1 to 8, got "99"/,
    );
    assert.ok(problems.every((p) => p.endsWith('using the default')));

    const devProblems: string[] = [];
    assert.deepEqual(
      readDeviceOverrides(h2, UDID_A, (p) => devProblems.push(p)),
      {
        enabled: false,
      },
    );
    assert.equal(devProblems.length, 1);
    assert.match(devProblems[0]!, /interval/);

    // Without a reporter nothing throws either; the values shown are the defaults.
    assert.deepEqual(effectiveConfig(h2), { ...DEFAULTS, 'stale-after': '2d' });
    assert.deepEqual(effectiveConfig(h2, UDID_A), {
      interval: '24h',
      window: 'any',
      enabled: 'false',
      ...RETENTION_DEFAULTS,
    });
    // And a damaged value can be overwritten.
    applyConfig(h2, { interval: '8h' });
    assert.equal(effectiveConfig(h2).interval, '8h');
  } finally {
    h2.close();
  }
});
