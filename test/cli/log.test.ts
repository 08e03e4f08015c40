/**
 * `mooring log` reads the agent's log file from the data folder, with no agent running: all of a
 * short log, the newest whole lines for --bytes, JSON for programs, a plain sentence when there is
 * no log yet, and usage errors that say what is accepted.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { LogFile, logFilePath } from '../../src/util/log-file';
import { tempDirs } from '../helpers/temp-dirs';
import { mooring } from './run-cli';

const dirs = tempDirs('mooring-cli-log-');
after(dirs.cleanup);

test('no log yet: says where it will be, exit 0', async () => {
  const data = dirs.tmp();
  const r = await mooring('log', '--data', data);
  assert.equal(r.code, 0, r.err);
  assert.equal(
    r.out,
    `The agent's log (${logFilePath(data)}) is empty or not there yet: it is written while \`mooring agent\` or the Mooring app runs with this data folder.`,
  );
});

test('the end of the log, as much as --bytes allows; --json', async () => {
  const data = dirs.tmp();
  const log = new LogFile(logFilePath(data), { now: () => new Date(Date.UTC(2026, 10, 25)) });
  for (const l of ['backups now go to /a', 'backup of X failed: connection lost', 'third line']) {
    log.write(l);
  }
  log.close();
  const all = await mooring('log', '--data-dir', data);
  assert.equal(all.code, 0, all.err);
  assert.deepEqual(all.out.split('\n'), [
    '2026-11-25T00:00:00.000Z backups now go to /a',
    '2026-11-25T00:00:00.000Z backup of X failed: connection lost',
    '2026-11-25T00:00:00.000Z third line',
  ]);
  const end = await mooring('log', '--data-dir', data, '--bytes', '60');
  assert.deepEqual(end.out.split('\n'), [
    `(older lines left out: --bytes N shows more; the whole log is ${logFilePath(data)})`,
    '2026-11-25T00:00:00.000Z third line',
  ]);
  const json = await mooring('log', '--data-dir', data, '--bytes', '60', '--json');
  assert.deepEqual(JSON.parse(json.out), {
    file: logFilePath(data),
    text: '2026-11-25T00:00:00.000Z third line\n',
    truncated: true,
  });
});

test('usage errors: --bytes out of range or not a number, an extra argument', async () => {
  const data = dirs.tmp();
  for (const bad of ['0', '2000000', '1e3', 'lots']) {
    const r = await mooring('log', '--data', data, '--bytes', bad);
    assert.equal(r.code, 2, bad);
    assert.match(r.err, /--bytes: expected a whole number from 1 to 1048576/);
  }
  const extra = await mooring('log', 'agent.log', '--data', data);
  assert.equal(extra.code, 2);
  assert.match(extra.err, /unexpected argument "agent\.log"/);
});
