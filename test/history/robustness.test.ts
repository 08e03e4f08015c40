/**
 * The history survives a process killed mid-write (kill -9 of a real child), and a damaged file is
 * reported with what to do, never recreated over the user's history.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import {
  mkdirSync,
  openSync,
  closeSync,
  writeSync,
  truncateSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { createInterface } from 'node:readline';
import Database from 'better-sqlite3';
import { GLOBAL_SCOPE, notDue, openHistory } from '../../src/history';
import { isMooringError } from '../../src/util/errors';
import { sha256File, tempDirs, UDID_A } from './fixture';

const { tmp, cleanup } = tempDirs('mooring-history-crash-');
after(cleanup);

interface Round {
  interruptedAtStart: number;
  started: number[];
  finished: number[];
  lastSetting: number | undefined;
}

/** Runs the child until it has finished `commits` attempts, then kills it with SIGKILL. */
function runAndKill(file: string, commits: number): Promise<Round> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', path.join(__dirname, 'crash-child.ts'), file, UDID_A],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const r: Round = { interruptedAtStart: -1, started: [], finished: [], lastSetting: undefined };
    let stderr = '';
    let killed = false;
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    createInterface({ input: child.stdout }).on('line', (line) => {
      const [what, n] = line.split(' ');
      const v = Number(n);
      if (what === 'interrupted') r.interruptedAtStart = v;
      else if (what === 'started') r.started.push(v);
      else if (what === 'finished') r.finished.push(v);
      else if (what === 'setting') r.lastSetting = v;
      if (!killed && r.finished.length >= commits) {
        killed = true;
        child.kill('SIGKILL');
      }
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (signal === 'SIGKILL' && killed) resolve(r);
      else reject(new Error(`child ended by itself (${code ?? signal}): ${stderr}`));
    });
  });
}

function inspect(file: string): {
  integrity: string;
  fk: unknown[];
  outcomes: Map<number, string>;
  successNotices: number;
  successes: number;
  running: number;
  counter: number | undefined;
} {
  const db = new Database(file);
  try {
    const outcomes = new Map(
      (
        db.prepare('SELECT id, outcome FROM attempts').all() as { id: number; outcome: string }[]
      ).map((a) => [a.id, a.outcome]),
    );
    const setting = db
      .prepare(`SELECT value FROM settings WHERE scope = 'global' AND key = 'counter'`)
      .pluck()
      .get() as string | undefined;
    return {
      integrity: db.pragma('integrity_check', { simple: true }) as string,
      fk: db.pragma('foreign_key_check') as unknown[],
      outcomes,
      successNotices: db
        .prepare(`SELECT count(*) FROM notifications WHERE reason_code = 'BACKUP_SUCCEEDED'`)
        .pluck()
        .get() as number,
      successes: db
        .prepare(`SELECT count(*) FROM attempts WHERE outcome = 'success'`)
        .pluck()
        .get() as number,
      running: db
        .prepare(`SELECT count(*) FROM attempts WHERE outcome = 'running'`)
        .pluck()
        .get() as number,
      counter: setting === undefined ? undefined : (JSON.parse(setting) as { i: number }).i,
    };
  } finally {
    db.close();
  }
}

test('kill -9 in the middle of writing never corrupts the database or loses a commit', async () => {
  const file = path.join(tmp(), 'history.db');
  let runningBefore = 0;
  for (let round = 0; round < 2; round++) {
    const r = await runAndKill(file, round === 0 ? 60 : 97);
    assert.equal(
      r.interruptedAtStart,
      runningBefore,
      'a restart turns the attempt left running into interrupted',
    );
    const s = inspect(file);
    assert.equal(s.integrity, 'ok');
    assert.deepEqual(s.fk, []);
    for (const id of r.started) assert.ok(s.outcomes.has(id), `started attempt ${id} is there`);
    for (const id of r.finished)
      assert.equal(s.outcomes.get(id), 'success', `finished attempt ${id} is there`);
    assert.equal(s.successNotices, s.successes, 'an attempt and its notice commit together');
    assert.ok(s.running <= 1);
    assert.ok(s.counter !== undefined && r.lastSetting !== undefined && s.counter >= r.lastSetting);
    runningBefore = s.running;
  }
  // The agent's own open path agrees.
  const h = openHistory(file);
  assert.equal(h.markRunningAttemptsInterrupted().length, runningBefore);
  assert.equal(h.summary().attempts.running, 0);
  h.close();
});

function expectDamaged(file: string, why: RegExp): void {
  const before = sha256File(file);
  assert.throws(
    () => openHistory(file),
    (e: unknown) => {
      assert.ok(isMooringError(e, 'IO'), String(e));
      assert.equal(e.detail, 'HISTORY_DAMAGED');
      assert.ok(e.message.includes(file), e.message);
      assert.match(e.message, /move it aside/);
      assert.match(e.message, why);
      return true;
    },
  );
  assert.equal(sha256File(file), before, 'the damaged file is left exactly as it was');
}

/** A real history with some rows, checkpointed into the main file. */
function realHistory(file: string): number {
  const h = openHistory(file);
  h.upsertDevice({ udid: UDID_A });
  h.batch(() => {
    for (let i = 0; i < 3000; i++)
      h.addNotification({ ...notDue({ nextDueAt: i, now: i }), udid: UDID_A });
  });
  h.setSetting(GLOBAL_SCOPE, 'k', 1);
  h.close();
  return statSync(file).size;
}

test('a file that is not SQLite, or is cut short, is refused with what to do', () => {
  const dir = tmp();
  const junk = path.join(dir, 'junk.db');
  writeFileSync(junk, randomBytes(8192));
  expectDamaged(junk, /not an SQLite database/);

  const text = path.join(dir, 'notes.db');
  writeFileSync(text, 'my notes, not a database\n');
  expectDamaged(text, /not an SQLite database/);

  const stub = path.join(dir, 'stub.db');
  writeFileSync(
    stub,
    Buffer.concat([Buffer.from('SQLite format 3\0', 'latin1'), Buffer.alloc(40)]),
  );
  expectDamaged(stub, /only 56 bytes long/);

  const cut = path.join(dir, 'cut.db');
  const size = realHistory(cut);
  truncateSync(cut, Math.floor(size / 8192) * 4096);
  expectDamaged(cut, /damaged/);

  const folder = path.join(dir, 'folder.db');
  mkdirSync(folder);
  assert.throws(
    () => openHistory(folder),
    (e: unknown) => isMooringError(e, 'USAGE') && /is not a file/.test(e.message),
  );
});

test('damaged pages inside a real history are found at open, before anything is written', () => {
  const file = path.join(tmp(), 'history.db');
  const size = realHistory(file);
  const pages = size / 4096;
  assert.ok(pages > 10);
  const fd = openSync(file, 'r+');
  try {
    // Scribble over the b-tree page headers of a few pages in the middle, as a bad disk would.
    for (let p = Math.floor(pages / 2); p < Math.floor(pages / 2) + 4; p++)
      writeSync(fd, Buffer.alloc(64, 0xa5), 0, 64, p * 4096);
  } finally {
    closeSync(fd);
  }
  expectDamaged(file, /damaged \(/);
});
