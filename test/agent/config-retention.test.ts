/**
 * The retention and destination settings against a real history file: keep-all / keep-daily /
 * keep-weekly parse periods and "forever", must grow in the scope written (a device's own values
 * merged with the global ones), reach the store's RetentionPolicy per device; backup-dir takes an
 * absolute folder or "default" and nothing else.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import {
  applyConfig,
  checkConfig,
  effectiveConfig,
  parseSetting,
  readGlobalSettings,
  readRetention,
} from '../../src/agent/config';
import { openHistory, type History } from '../../src/history';
import { DEFAULT_RETENTION } from '../../src/store/retention';
import { isMooringError } from '../../src/util/errors';
import { tempDirs, UDID_A, UDID_B } from '../history/fixture';

const dirs = tempDirs('mooring-config-retention-');
after(dirs.cleanup);

const D = 24 * 3600 * 1000;

function fresh(): History {
  return openHistory(path.join(dirs.tmp(), 'history.db'));
}

function usageError(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(isMooringError(e, 'USAGE'), `expected a USAGE error, got ${String(e)}`);
    assert.match(e.message, message);
    return true;
  });
}

test('retention periods: durations, weeks, years and "forever"; bad ones say what is accepted', () => {
  assert.equal(parseSetting('keep-all', '14d', 'global'), 14 * D);
  assert.equal(parseSetting('keep-all', '0s', 'device'), 0);
  assert.equal(parseSetting('keep-daily', '8w', 'global'), 56 * D);
  assert.equal(parseSetting('keep-weekly', '1y', 'global'), 365 * D);
  assert.equal(parseSetting('keep-weekly', 'Forever', 'device'), 'forever');
  assert.equal(parseSetting('keep-all', '36h', 'global'), 1.5 * D);
  // "m" is months here as in `mooring prune`: read as minutes, "1m/2m/12m" would prune all.
  assert.equal(parseSetting('keep-daily', '2m', 'global'), 60 * D);
  assert.equal(parseSetting('keep-weekly', '1y 6m', 'device'), 545 * D);
  assert.equal(parseSetting('keep-all', '0', 'device'), 0);
  usageError(() => parseSetting('keep-all', '90min', 'global'), /30-day months/);
  usageError(() => parseSetting('keep-all', '30s', 'global'), /keep-all: expected a period/);
  usageError(() => parseSetting('keep-all', 'banana', 'global'), /keep-all: expected a period/);
  usageError(() => parseSetting('keep-all', '-1d', 'global'), /keep-all: expected a period/);
  usageError(() => parseSetting('keep-weekly', '200y', 'global'), /longer than a century/);
});

test('the periods must grow in the scope written, with the device merged over the global values', () => {
  const h = fresh();
  try {
    usageError(
      () => applyConfig(h, { 'keep-all': '90d' }),
      /keep-daily \(60d\) must be at least keep-all \(90d\)/,
    );
    usageError(
      () => applyConfig(h, { 'keep-daily': '400d' }),
      /keep-weekly \(365d\) must be at least keep-daily \(400d\)/,
    );
    // Nothing was written by the refused changes.
    assert.equal(effectiveConfig(h)['keep-all'], '14d');
    applyConfig(h, { 'keep-all': '90d', 'keep-daily': '120d' });
    assert.deepEqual(readRetention(h), { keepAllDays: 90, dailyDays: 120, weeklyDays: 365 });

    // A device inherits the global periods and is checked against them.
    usageError(
      () => applyConfig(h, { 'keep-daily': '30d' }, UDID_A),
      /keep-daily \(30d\) must be at least keep-all \(90d\)/,
    );
    assert.deepEqual(checkConfig(h, { 'keep-all': '1d', 'keep-daily': '30d' }, UDID_A), [
      ['keep-all', 1 * D],
      ['keep-daily', 30 * D],
    ]);
    applyConfig(h, { 'keep-all': '1d', 'keep-daily': '30d', 'keep-weekly': 'forever' }, UDID_A);
    assert.deepEqual(readRetention(h, UDID_A), {
      keepAllDays: 1,
      dailyDays: 30,
      weeklyDays: Infinity,
    });
    assert.deepEqual(readRetention(h, UDID_B), {
      keepAllDays: 90,
      dailyDays: 120,
      weeklyDays: 365,
    });
    assert.equal(effectiveConfig(h, UDID_A)['keep-weekly'], 'forever');

    // A global change that outgrows a device's own period: the longer one is used, nothing fails.
    applyConfig(h, { 'keep-daily': '100d' }, UDID_B);
    applyConfig(h, { 'keep-weekly': '2y', 'keep-daily': '1y', 'keep-all': '110d' });
    assert.deepEqual(readRetention(h, UDID_B), {
      keepAllDays: 110,
      dailyDays: 110, // its own 100d is shorter than the global keep-all now
      weeklyDays: 730,
    });
    // Resetting one of a device's periods is checked against what it then inherits.
    usageError(
      () => applyConfig(h, { 'keep-all': null }, UDID_A),
      /keep-daily \(30d\) must be at least keep-all \(110d\)/,
    );
    // Resetting everything brings back the store's default policy.
    applyConfig(h, { 'keep-all': null, 'keep-daily': null, 'keep-weekly': null }, UDID_A);
    applyConfig(h, { 'keep-daily': null }, UDID_B);
    applyConfig(h, { 'keep-all': null, 'keep-daily': null, 'keep-weekly': null });
    assert.deepEqual(readRetention(h, UDID_A), DEFAULT_RETENTION);
    assert.deepEqual(readRetention(h, UDID_B), DEFAULT_RETENTION);
  } finally {
    h.close();
  }
});

test('a period stored in minutes by an earlier version is set aside, not obeyed, and says why', () => {
  const h = fresh();
  try {
    // What "keep-all 2m / keep-daily 3m / keep-weekly 12m" became when "m" meant minutes.
    h.setSetting('global', 'keep-all', 2 * 60_000);
    h.setSetting('global', 'keep-daily', 3 * 60_000);
    h.setSetting('global', 'keep-weekly', 12 * 60_000);
    const problems: string[] = [];
    assert.deepEqual(
      readRetention(h, undefined, (p) => problems.push(p)),
      DEFAULT_RETENTION,
    );
    assert.equal(problems.length, 3);
    assert.match(
      problems[0]!,
      /keep-all.*2m is not a whole number of hours, and "m" now means months/,
    );
    assert.match(problems[0]!, /using the default/);
  } finally {
    h.close();
  }
});

test('backup-dir: an absolute folder (normalised) or "default"; global only', () => {
  const h = fresh();
  try {
    const abs = path.resolve('/srv/backups/../iphone-backups');
    assert.equal(parseSetting('backup-dir', '/srv/backups/../iphone-backups', 'global'), abs);
    assert.equal(parseSetting('backup-dir', 'default', 'global'), null);
    usageError(() => parseSetting('backup-dir', 'backups', 'global'), /not an absolute path/);
    usageError(() => parseSetting('backup-dir', '/', 'global'), /the root of a disk/);
    usageError(() => parseSetting('backup-dir', '/a\u0000b', 'global'), /absolute folder path/);
    usageError(
      () => parseSetting('backup-dir', `/${'x'.repeat(2000)}`, 'global'),
      /at most 1024 characters/,
    );
    usageError(() => applyConfig(h, { 'backup-dir': '/srv/b' }, UDID_A), /global setting/);

    // Unset: the agent's own folder is shown in its place.
    assert.equal(effectiveConfig(h)['backup-dir'], 'default');
    assert.equal(
      effectiveConfig(h, undefined, undefined, { 'backup-dir': '/data/backups' })['backup-dir'],
      '/data/backups',
    );
    applyConfig(h, { 'backup-dir': '/srv/b' });
    assert.equal(readGlobalSettings(h).backupDir, '/srv/b');
    assert.equal(
      effectiveConfig(h, undefined, undefined, { 'backup-dir': '/data/backups' })['backup-dir'],
      '/srv/b',
    );
    applyConfig(h, { 'backup-dir': null });
    assert.equal(readGlobalSettings(h).backupDir, null);
  } finally {
    h.close();
  }
});
