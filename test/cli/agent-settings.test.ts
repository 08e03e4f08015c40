/**
 * Where the store commands look without --dest, and which periods prune applies without flags,
 * when no agent runs: read from the agent's real history file (its backup-dir and keep-*
 * settings), the defaults without one, and a history that cannot be read said (the folder) or refused (the periods); it is never written.
 * (With a running agent: test/cli/agent-cli.test.ts.)
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import Database from 'better-sqlite3';
import path from 'node:path';
import { after, test } from 'node:test';
import { applyConfig } from '../../src/agent/config';
import {
  agentRetention,
  requireChosenFolder,
  resolveDestination,
} from '../../src/cli/agent-settings';
import { isMooringError } from '../../src/util/errors';
import { mooring } from './run-cli';
import { openHistory } from '../../src/history';
import { DEFAULT_RETENTION } from '../../src/store/retention';
import { historyFile } from '../../src/util/paths';
import { tempDirs, UDID_A, UDID_B } from '../history/fixture';

const dirs = tempDirs('mooring-cli-agent-settings-');
after(dirs.cleanup);

function dataDirWith(config: Record<string, string>, udid?: string): string {
  const data = dirs.tmp();
  const h = openHistory(historyFile(data));
  try {
    applyConfig(h, config, udid);
  } finally {
    h.close();
  }
  return data;
}

test('without --dest: the backup-dir setting, else the default folder; --dest wins', async () => {
  const warnings: string[] = [];
  const warn = (l: string): number => warnings.push(l);
  const chosen = path.join(dirs.tmp(), 'external', 'iPhone backups');
  const data = dataDirWith({ 'backup-dir': chosen });
  assert.deepEqual(await resolveDestination(undefined, data, warn), {
    dir: chosen,
    from: 'the backup-dir setting',
    chosen: true,
  });
  assert.deepEqual(await resolveDestination('relative/dest', data, warn), {
    dir: path.resolve('relative/dest'),
    from: '--dest',
    chosen: false,
  });
  const none = dirs.tmp();
  assert.deepEqual(await resolveDestination(undefined, none, warn), {
    dir: path.join(none, 'backups'),
    from: 'the default backup folder',
    chosen: false,
  });
  // Looking did not create a history where there was none.
  assert.equal(existsSync(historyFile(none)), false);
  assert.deepEqual(warnings, []);
});

test('prune without flags: the device’s own periods over the global ones; none without a history', () => {
  const data = dataDirWith({ 'keep-all': '30d', 'keep-daily': '6m', 'keep-weekly': 'forever' });
  const h = openHistory(historyFile(data));
  applyConfig(h, { 'keep-all': '1w' }, UDID_A);
  h.close();
  const warn = (l: string): never => assert.fail(l);
  assert.deepEqual(agentRetention(data, UDID_A, warn), {
    keepAllDays: 7,
    dailyDays: 180,
    weeklyDays: Infinity,
  });
  assert.deepEqual(agentRetention(data, UDID_B, warn), {
    keepAllDays: 30,
    dailyDays: 180,
    weeklyDays: Infinity,
  });
  assert.equal(agentRetention(dirs.tmp(), UDID_A, warn), undefined);
  assert.deepEqual(agentRetention(dataDirWith({}), UDID_A, warn), DEFAULT_RETENTION);
});

test('a history that cannot be read: the default folder, said once; its periods are not guessed', async () => {
  const data = dirs.tmp();
  mkdirSync(data, { recursive: true });
  writeFileSync(historyFile(data), 'not a database, but long enough to be looked at '.repeat(20));
  const warnings: string[] = [];
  const d = await resolveDestination(undefined, data, (l) => warnings.push(l));
  assert.deepEqual(d, {
    dir: path.join(data, 'backups'),
    from: 'the default backup folder',
    chosen: false,
  });
  assert.equal(warnings.length, 1);
  assert.match(
    warnings[0]!,
    /^mooring: not reading the agent's settings: The history database .* is damaged/,
  );
  // Prune must not fall back to defaults that may keep less than the settings it cannot read.
  assert.throws(() => agentRetention(data, UDID_A, () => undefined), /is damaged/);
});

test('the history is only read: nothing is written, and a newer agent’s is refused as it is', () => {
  const data = dataDirWith({ 'keep-all': '30d' });
  const file = historyFile(data);
  const before = statSync(file).mtimeMs;
  assert.equal(agentRetention(data, UDID_A, () => undefined)?.keepAllDays, 30);
  assert.equal(statSync(file).mtimeMs, before);
  // A history written by a newer agent than this command line: refused, left as it is.
  const db = new Database(file);
  db.pragma('user_version = 99');
  db.close();
  assert.throws(
    () => agentRetention(data, UDID_A, () => undefined),
    /was written by a newer version of Mooring/,
  );
  const check = new Database(file, { readonly: true });
  assert.equal(check.pragma('user_version', { simple: true }), 99);
  check.close();
});

test('a chosen backup folder that is missing is refused for a backup, never created', async () => {
  const missing = path.join(dirs.tmp(), 'unplugged disk', 'backups');
  assert.throws(
    () => requireChosenFolder({ dir: missing, from: 'the backup-dir setting', chosen: true }),
    (e: unknown) =>
      isMooringError(e, 'IO') &&
      /^The backup folder .*unplugged disk.* \(the backup-dir setting\) is missing: connect the disk/.test(
        e.message,
      ),
  );
  requireChosenFolder({ dir: missing, from: 'the default backup folder', chosen: false });
  // `mooring backup` with that setting: refused before anything is written.
  const data = dataDirWith({ 'backup-dir': missing });
  const r = await mooring('backup', '--sim', '--data', data);
  assert.equal(r.code, 1, r.err);
  assert.match(r.err, /The backup folder .* is missing: connect the disk it is on, or pass --dest/);
  assert.equal(existsSync(path.dirname(missing)), false);
});
