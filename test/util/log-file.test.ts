/**
 * The agent's log file on a real disk: lines with their time, kept to one line and bounded;
 * rotation past the size limit keeping the set number of older files; the tail read across the
 * current and the previous file, whole lines only; its folder and file private to the user; and a
 * log that cannot be opened refused at once, while one that cannot be written loses only lines.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import {
  formatLogLine,
  LogFile,
  logFilePath,
  MAX_LOG_LINE_CHARS,
  readLogTail,
} from '../../src/util/log-file';
import { tempDirs } from '../helpers/temp-dirs';

const dirs = tempDirs('mooring-log-file-');
after(dirs.cleanup);

const AT = new Date(Date.UTC(2026, 10, 25, 3, 4, 5, 6));

test('a line: its time, one line whatever it holds, bounded', () => {
  assert.equal(formatLogLine(AT, 'backup started'), '2026-11-25T03:04:05.006Z backup started\n');
  // A device's words cannot start a line of their own or move the cursor.
  assert.equal(
    formatLogLine(AT, 'name "x\n2026-01-01T00:00:00.000Z forged"\r\n\u001b[2J'),
    '2026-11-25T03:04:05.006Z name "x ⏎ 2026-01-01T00:00:00.000Z forged" ⏎ \\x1b[2J\n',
  );
  const long = formatLogLine(AT, 'y'.repeat(MAX_LOG_LINE_CHARS + 10));
  assert.ok(long.endsWith(' … (10 more characters)\n'), long.slice(-40));
  assert.equal(long.split('\n').length, 2);
});

test('appends across reopenings; private folder and file', async () => {
  const data = dirs.tmp();
  const file = logFilePath(data);
  assert.equal(file, path.join(data, 'logs', 'agent.log'));
  const first = new LogFile(file, { now: () => AT });
  first.write('one');
  first.close();
  first.write('after close: dropped');
  const second = new LogFile(file, { now: () => AT });
  second.write('two');
  second.close();
  assert.equal(
    readFileSync(file, 'utf8'),
    '2026-11-25T03:04:05.006Z one\n2026-11-25T03:04:05.006Z two\n',
  );
  if (process.platform !== 'win32') {
    assert.equal(statSync(path.dirname(file)).mode & 0o777, 0o700);
    assert.equal(statSync(file).mode & 0o777, 0o600);
  }
  const tail = await readLogTail(file);
  assert.deepEqual(tail, { file, text: readFileSync(file, 'utf8'), truncated: false });
});

test('rotates past its size, keeping two older files; the tail reaches into the previous one', async () => {
  const file = logFilePath(dirs.tmp());
  const line = formatLogLine(AT, 'line 00').length; // every line here is as long
  const log = new LogFile(file, { maxBytes: line * 4, keep: 2, now: () => AT });
  for (let i = 0; i < 14; i++) log.write(`line ${String(i).padStart(2, '0')}`);
  log.close();
  const lines = (f: string): string[] =>
    readFileSync(f, 'utf8')
      .trim()
      .split('\n')
      .map((l) => l.slice(25));
  // 14 lines, 4 to a file: 00-03, 04-07, 08-11 (now .1 and .2 of them), 12-13 current.
  assert.deepEqual(lines(file), ['line 12', 'line 13']);
  assert.deepEqual(lines(`${file}.1`), ['line 08', 'line 09', 'line 10', 'line 11']);
  assert.deepEqual(lines(`${file}.2`), ['line 04', 'line 05', 'line 06', 'line 07']);
  assert.equal(existsSync(`${file}.3`), false, 'the oldest went');

  // Three lines and a half of room: the two current ones, the newest whole one before them.
  const tail = await readLogTail(file, Math.floor(line * 3.5));
  assert.equal(tail.truncated, true);
  assert.deepEqual(
    tail.text
      .trim()
      .split('\n')
      .map((l) => l.slice(25)),
    ['line 11', 'line 12', 'line 13'],
  );
  // Room for all of both: all of them, and the third file's lines said to be left out.
  const both = await readLogTail(file, line * 100);
  assert.equal(both.text.trim().split('\n').length, 6);
  assert.equal(both.truncated, true);
  assert.equal((await readLogTail(`${file}.1`, line * 100)).truncated, false, 'all of one file');
});

test('a rotation that cannot rename goes on writing in the same file', () => {
  const file = logFilePath(dirs.tmp());
  // agent.log.1 is a folder with something in it: renaming agent.log onto it fails.
  mkdirSync(`${file}.1`, { recursive: true });
  writeFileSync(path.join(`${file}.1`, 'keep'), 'x');
  const log = new LogFile(file, { maxBytes: 100, keep: 1, now: () => AT });
  for (let i = 0; i < 10; i++) log.write(`line ${i}`);
  log.close();
  assert.equal(readFileSync(file, 'utf8').trim().split('\n').length, 10, 'nothing dropped');
});

test('no log yet: an empty tail naming the file; a log that cannot be opened throws', async () => {
  const data = dirs.tmp();
  assert.deepEqual(await readLogTail(logFilePath(data)), {
    file: logFilePath(data),
    text: '',
    truncated: false,
  });
  writeFileSync(path.join(data, 'logs'), 'a file where the folder goes');
  assert.throws(() => new LogFile(logFilePath(data)), /EEXIST|ENOTDIR/);
});
