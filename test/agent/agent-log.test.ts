/**
 * The agent's log lines, and those its host adds (Agent.log), reach both the front end's log and
 * `<data>/logs/agent.log`, which readLog returns and a restarted agent appends to; a backup's story is in it (its start, its
 * notice, and for a failure the stage and the causes the notice leaves out); a data folder where
 * the log cannot be made leaves the agent working, and says so once.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { Agent, type AgentOptions } from '../../src/agent/agent';
import { logFilePath } from '../../src/util/log-file';
import { backUpNow, nextAttempt, simFixture, startedOnUsb } from './agent-helpers';

const made: string[] = [];
after(async () => {
  for (const d of made) await rm(d, { recursive: true, force: true });
});

async function options(lines: string[]): Promise<AgentOptions> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'mooring-agent-log-'));
  made.push(dataDir);
  return {
    dataDir,
    usbmuxd: null,
    mdns: null,
    systemPairRecordDir: null,
    log: (l) => lines.push(l),
  };
}

test('what the agent logs is in its log file too, and a restarted agent adds to it', async () => {
  const lines: string[] = [];
  const o = await options(lines);
  let agent = await Agent.open(o);
  const elsewhere = path.join(o.dataDir, 'elsewhere');
  try {
    agent.setConfig({ 'backup-dir': elsewhere });
  } finally {
    await agent.stop();
  }
  const said = lines.find((l) => l.startsWith('backups now go to'));
  assert.ok(said, lines.join('\n'));

  agent = await Agent.open(o);
  try {
    agent.setConfig({ 'backup-dir': null });
    // The host's own lines (the tray app's power events) join the agent's, in both places.
    agent.log('the computer is going to sleep');
    assert.equal(lines.at(-1), 'the computer is going to sleep');
    const tail = await agent.readLog({});
    assert.equal(tail.file, logFilePath(o.dataDir));
    assert.equal(tail.truncated, false);
    const logged = tail.text.trimEnd().split('\n');
    assert.equal(logged.length, lines.length, tail.text);
    logged.forEach((l, i) => {
      assert.match(l, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z /);
      assert.equal(l.slice(25), lines[i]);
    });
    assert.ok(lines.filter((l) => l.startsWith('backups now go to')).length === 2);
    assert.match(logged.at(-1)!, /Z the computer is going to sleep$/);
    // Bounded by what was asked: the newest whole line that fits.
    const last = await agent.readLog({ maxBytes: logged.at(-1)!.length + 1 });
    assert.deepEqual(last, { file: tail.file, text: `${logged.at(-1)!}\n`, truncated: true });
  } finally {
    await agent.stop();
  }
});

test('a log file that cannot be made: the agent still runs, and says so once', async () => {
  const lines: string[] = [];
  const o = await options(lines);
  await writeFile(path.join(o.dataDir, 'logs'), 'a file where the folder goes');
  const agent = await Agent.open(o);
  try {
    await agent.start();
    agent.setConfig({ paused: 'true' });
    assert.equal(agent.status().paused, true);
    const cannot = lines.filter((l) => l.startsWith('cannot write the log file'));
    assert.equal(cannot.length, 1, lines.join('\n'));
    assert.ok(cannot[0]!.includes(logFilePath(o.dataDir)), cannot[0]);
    await assert.rejects(agent.readLog({}), /ENOTDIR/);
  } finally {
    await agent.stop();
  }
});

test("a backup's story is in the log: start, notice, and a failure's stage and causes", async () => {
  const f = await simFixture('mooring-agent-log-sim-', { files: 6, bytes: 40_000, seed: 61 });
  let agent: Agent | undefined;
  try {
    agent = await startedOnUsb(f.agentOptions(), f.udid);
    const ok = await backUpNow(agent, f.udid);
    await f.sim.ctl('fault', { name: 'dropAfterBytes', value: '4000' });
    const ended = nextAttempt(agent, f.udid, (a) => a.outcome !== 'running', 'the cut-off backup');
    assert.equal((await agent.backupNow(f.udid)).started, true);
    const cut = await ended;
    assert.equal(cut.reasonCode, 'CONNECTION_LOST');
    const lines = (await agent.readLog({})).text.split('\n').map((l) => l.slice(25));
    const at = (re: RegExp): number => lines.findIndex((l) => re.test(l));
    assert.ok(at(/^Mooring \S+ started: data in .*, backups in .*, time zone UTC$/) >= 0);
    const started = at(
      new RegExp(`^backup of ${f.udid} started: attempt ${ok.id}, manual, over usb$`),
    );
    const succeeded = at(new RegExp(`^info BACKUP_SUCCEEDED \\(${f.udid}\\): `));
    assert.ok(started >= 0 && succeeded > started, lines.join('\n'));
    const failed = at(
      new RegExp(`^backup of ${f.udid} \\(attempt ${cut.id}\\) ended at its \\w+ stage: .+`),
    );
    const notice = at(new RegExp(`^warning CONNECTION_LOST \\(${f.udid}\\): `));
    assert.ok(failed >= 0 && notice > failed, lines.join('\n'));
  } finally {
    await agent?.stop();
    await f.close();
  }
});
