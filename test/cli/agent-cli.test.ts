/**
 * `mooring agent` as a real process (tsx), with one simulated iPhone on USB through its own
 * usbmuxd, and the client commands run in-process against it: status, devices, config,
 * backup-now --wait, history (the same rows as the API and as sqlite3 reads from the file),
 * a second agent refused, SIGTERM → exit 0 with agent.json removed.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { applyConfig } from '../../src/agent/config';
import { readAgentFile } from '../../src/api/agent-file';
import { AgentClient } from '../../src/api/client';
import { openHistory, type NotificationRow, type Page } from '../../src/history';
import { startSim, type RunningSim } from '../../src/sim';
import { mooring } from './run-cli';

const ROOT = path.join(__dirname, '..', '..');

interface AgentProcess {
  child: ChildProcess;
  url: string;
  token: string;
  stderr: () => string;
  exited: Promise<number | null>;
}

function startAgent(args: string[]): Promise<AgentProcess> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', path.join(ROOT, 'src/bin/mooring.ts'), 'agent', ...args],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (err += c));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    child.stdout!.setEncoding('utf8').on('data', (c: string) => {
      out += c;
      // A one-time login link, never the token: that comes from agent.json, as programs read it.
      const m = /^Mooring agent: (http:\/\/127\.0\.0\.1:\d+)\/login\?code=[A-Za-z0-9_-]+\n/.exec(
        out,
      );
      if (m) {
        void readAgentFile(args[args.indexOf('--data') + 1]!).then((file) =>
          file && file.url === m[1]
            ? resolve({ child, url: m[1]!, token: file.token, stderr: () => err, exited })
            : reject(new Error(`agent.json does not name ${m[1]}`)),
        );
      }
    });
    void exited.then((code) =>
      reject(new Error(`agent exited (${code}) before printing its URL: ${err}`)),
    );
  });
}

describe('mooring agent and its client commands', () => {
  let tmp: string;
  let data: string;
  let sim: RunningSim;
  let agent: AgentProcess;
  let agentArgs: string[];
  const cli = (...argv: string[]) => mooring(...argv, '--data', data);

  before(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'mooring-agent-cli-'));
    data = path.join(tmp, 'data');
    sim = await startSim({
      stateDir: path.join(tmp, 'sim'),
      name: 'Agent Test iPhone',
      files: 30,
      bytes: 400_000,
      seed: 11,
    });
    const paired = await cli('pair', '--usbmuxd', sim.usbmuxdAddress);
    assert.equal(paired.code, 0, paired.err);
    // Paused before the agent first looks, so only the manual backup below runs.
    const h = openHistory(path.join(data, 'history.db'));
    applyConfig(h, { paused: 'true' });
    h.close();
    agentArgs = [
      '--data',
      data,
      '--listen',
      '127.0.0.1:0',
      '--usbmuxd',
      sim.usbmuxdAddress,
      '--mdns-interface',
      'off',
      // Not the default folder, and not a stored setting: only the running agent knows it.
      '--backup-dir',
      path.join(tmp, 'chosen'),
    ];
    agent = await startAgent(agentArgs);
  });
  after(async () => {
    if (agent.child.exitCode === null) agent.child.kill('SIGKILL');
    await sim.stop();
    await rm(tmp, { recursive: true, force: true });
  });

  it('writes agent.json (0600) naming itself, and answers `mooring status`', async () => {
    const file = await readAgentFile(data);
    assert.deepEqual(
      { url: file?.url, token: file?.token, pid: file?.pid },
      { url: agent.url, token: agent.token, pid: agent.child.pid },
    );
    assert.equal((await stat(path.join(data, 'agent.json'))).mode & 0o777, 0o600);
    const r = await cli('status');
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, new RegExp(`Mooring agent .*pid ${agent.child.pid}`));
    assert.match(r.out, /Automatic backups: paused/);
    // --agent URL with the token in MOORING_TOKEN finds the same agent without agent.json.
    const elsewhere = path.join(tmp, 'no-agent-here');
    const noToken = await mooring('status', '--agent', agent.url, '--data', elsewhere);
    assert.equal(noToken.code, 2);
    assert.match(noToken.err, /MOORING_TOKEN/);
    process.env.MOORING_TOKEN = agent.token;
    try {
      const named = await mooring('status', '--agent', agent.url, '--data', elsewhere);
      assert.equal(named.code, 0, named.err);
      assert.match(named.out, new RegExp(`pid ${agent.child.pid}`));
    } finally {
      delete process.env.MOORING_TOKEN;
    }
    const json = JSON.parse((await cli('status', '--json')).out) as {
      pid: number;
      usbmuxd: string;
    };
    assert.equal(json.pid, agent.child.pid);
    assert.equal(json.usbmuxd, 'listening');
  });

  it('lists the simulated iPhone as the agent sees it', async () => {
    const r = await cli('devices', '--json');
    assert.equal(r.code, 0, r.err);
    const devices = JSON.parse(r.out) as Array<{
      udid: string;
      paired: boolean;
      reachable: { usb: boolean };
    }>;
    const d = devices.find((x) => x.udid === sim.udid);
    assert.ok(d, r.out);
    assert.equal(d.paired, true);
    assert.equal(d.reachable.usb, true);
    const human = await cli('devices');
    assert.match(human.out, new RegExp(`\\(${sim.udid}\\)`));
    assert.match(human.out, /reachable: USB/);
  });

  it('sets, reads and refuses settings through the agent', async () => {
    const set = await cli('config', 'set', 'interval', '15s');
    assert.equal(set.code, 0, set.err);
    assert.match(set.out, /^interval\s+15s$/);
    const get = await cli('config', 'get', 'interval');
    assert.equal(get.out, 'interval  15s');
    const all = JSON.parse((await cli('config', 'get', '--json')).out) as Record<string, string>;
    assert.equal(all.interval, '15s');
    assert.equal(all.paused, 'true');
    const bad = await cli('config', 'set', 'interval', '1s');
    assert.equal(bad.code, 2);
    assert.match(bad.err, /interval/);
    const unknown = await cli('config', 'get', 'colour');
    assert.equal(unknown.code, 2);
    assert.match(unknown.err, /unknown setting "colour"/);
  });

  it('backs up now and waits for the outcome; history shows the database rows', async () => {
    const r = await cli('backup-now', '--udid', sim.udid, '--wait');
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /success/);
    const again = await cli('attempts', '--json', '--udid', sim.udid);
    const attempts = JSON.parse(again.out) as {
      items: Array<{ outcome: string; trigger: string }>;
    };
    assert.equal(attempts.items[0]?.outcome, 'success');
    assert.equal(attempts.items[0]?.trigger, 'manual');

    const cliPage = JSON.parse(
      (await cli('history', '--json', '--limit', '1000')).out,
    ) as Page<NotificationRow>;
    const apiPage = await new AgentClient(agent.url, agent.token).history({ limit: 1000 });
    assert.deepEqual(cliPage, apiPage);
    const rows = JSON.parse(
      execFileSync('sqlite3', [
        '-json',
        path.join(data, 'history.db'),
        'select id, at, udid, kind, severity, reason_code, message, fix_hint, attempt_id from notifications order by id desc',
      ]).toString() || '[]',
    ) as Array<Record<string, unknown>>;
    assert.ok(rows.length > 0);
    assert.deepEqual(
      cliPage.items.map((n) => [
        n.id,
        n.at,
        n.udid,
        n.kind,
        n.severity,
        n.reasonCode,
        n.message,
        n.fixHint,
        n.attemptId,
      ]),
      rows.map((x) => [
        x.id,
        x.at,
        x.udid,
        x.kind,
        x.severity,
        x.reason_code,
        x.message,
        x.fix_hint,
        x.attempt_id,
      ]),
    );
    assert.ok(
      cliPage.items.some((n) => n.reasonCode === 'BACKUP_SUCCEEDED' && n.udid === sim.udid),
    );

    const human = await cli('history', '--udid', sim.udid);
    assert.equal(human.code, 0, human.err);
    // Each line names the device before its message.
    const lines = human.out.split('\n').filter((l) => !l.startsWith('    '));
    assert.ok(lines.length > 0);
    for (const l of lines) assert.match(l, /(Agent Test iPhone|Mooring): /);
    assert.match(human.out, /Agent Test iPhone: /);
  });

  it('the store commands use the running agent’s folder and the device’s periods, without --dest', async () => {
    const listed = await cli('snapshots', '--json');
    assert.equal(listed.code, 0, listed.err);
    const snapshots = JSON.parse(listed.out) as Array<{ id: string; isLatest: boolean }>;
    assert.equal(snapshots.length, 1);
    assert.equal(snapshots[0]!.isLatest, true);
    // The device keeps everything for two (30-day) months: prune says whose periods it applies.
    const set = await cli('config', 'set', 'keep-all', '2m', '--udid', sim.udid);
    assert.equal(set.code, 0, set.err);
    const plan = await cli('prune', '--dry-run');
    assert.equal(plan.code, 0, plan.err);
    assert.match(
      plan.out,
      new RegExp(`^Retention \\(the keep-\\* settings of ${sim.udid}\\): keep all for 60 days, `),
    );
    // One period given: the others are still the device's, not the defaults.
    const one = JSON.parse(
      (await cli('prune', '--dry-run', '--weekly', 'forever', '--json')).out,
    ) as {
      policy: string;
      from: string;
    };
    assert.equal(one.policy, 'keep all for 60 days, one a day up to 60 days, one a week forever');
    assert.equal(one.from, `--weekly, the rest from the keep-* settings of ${sim.udid}`);
    const all = await cli(
      'prune',
      '--dry-run',
      '--keep-all',
      '1d',
      '--daily',
      '2d',
      '--weekly',
      '3d',
      '--json',
    );
    assert.equal(JSON.parse(all.out).from, 'the flags given');
    assert.equal((await cli('config', 'reset', 'keep-all', '--udid', sim.udid)).code, 0);
  });

  it('backup-now --wait says what to do when the backup fails', async () => {
    // The device drops the connection early: CONNECTION_LOST, which has a fix.
    await sim.ctl('fault', { name: 'dropAfterBytes', value: '2000' });
    try {
      const r = await cli('backup-now', '--udid', sim.udid, '--wait');
      assert.equal(r.code, 1);
      assert.match(r.out, /: failure — /);
      assert.match(r.err, /^ {2}what to do: \S/m);
    } finally {
      await sim.ctl('fault', { name: 'dropAfterBytes', value: 'off' });
    }
  });

  it('status carries the stale-after setting, which the UI and the tray judge staleness by', async () => {
    const staleAfter = async (): Promise<number> =>
      (JSON.parse((await cli('status', '--json')).out) as { staleAfterMs: number }).staleAfterMs;
    assert.equal(await staleAfter(), 3 * 24 * 3600_000);
    assert.equal((await cli('config', 'set', 'stale-after', '5d')).code, 0);
    assert.equal(await staleAfter(), 5 * 24 * 3600_000);
    assert.equal((await cli('config', 'reset', 'stale-after')).code, 0);
  });

  it('`mooring open` prints a new one-time login link (no token in it) that works once', async () => {
    const r = await cli('open');
    assert.equal(r.code, 0, r.err);
    const link = new URL(r.out.trim());
    assert.equal(link.origin, agent.url);
    assert.equal(link.pathname, '/login');
    assert.ok(!r.out.includes(agent.token));
    assert.equal((await fetch(link, { redirect: 'manual' })).status, 303);
    assert.equal((await fetch(link, { redirect: 'manual' })).status, 401);
  });

  it('history --mark-read counts what it shows, and older, as read (filtered: only what it shows); status says how', async () => {
    const before = await cli('status');
    assert.match(
      before.out,
      /^Unread notifications: .*\(`mooring history --mark-read` after reading them\)$/m,
    );
    const unread = (await new AgentClient(agent.url, agent.token).status()).summary.unread.total;
    assert.ok(unread > 0);
    const list = async (): Promise<NotificationRow[]> =>
      (JSON.parse((await cli('history', '--json', '--limit', '1000')).out) as Page<NotificationRow>)
        .items;
    const unreadInfo = (await list()).filter((n) => !n.read && n.severity === 'info');
    assert.ok(unreadInfo.length > 0);
    // Filtered, it marks exactly the rows it shows: not the ones the filter hides.
    const filtered = await cli('history', '--mark-read', '--severity', 'info', '--limit', '1000');
    assert.equal(filtered.code, 0, filtered.err);
    const infoCount = unreadInfo.length;
    assert.match(filtered.out, new RegExp(`^${infoCount} notifications? marked read\\.$`, 'm'));
    const afterFilter = await list();
    assert.ok(afterFilter.filter((n) => n.severity === 'info').every((n) => n.read));
    const rest = unread - infoCount;
    assert.equal(afterFilter.filter((n) => !n.read).length, rest, 'the others stay unread');
    const marked = await cli('history', '--mark-read');
    assert.equal(marked.code, 0, marked.err);
    assert.match(marked.out, new RegExp(`^${rest} notifications? marked read\\.$`, 'm'));
    assert.match((await cli('status')).out, /^Unread notifications: none$/m);
    const page = JSON.parse(
      (await cli('history', '--json', '--limit', '1000')).out,
    ) as Page<NotificationRow>;
    assert.ok(page.items.every((n) => n.read));
  });

  it('cancels a running backup (`mooring cancel`), recorded as cancelled', async () => {
    // The device stalls before its first message, so the backup is surely still running.
    await sim.ctl('fault', { name: 'delayFirstMessageMs', value: '3000' });
    const abort = new AbortController();
    const events = await new AgentClient(agent.url, agent.token).openEvents(abort.signal);
    try {
      const started = JSON.parse((await cli('backup-now', '--udid', sim.udid, '--json')).out) as {
        started: boolean;
        attemptId: number;
      };
      assert.equal(started.started, true);
      const r = await cli('cancel', '--udid', sim.udid);
      assert.equal(r.code, 0, r.err);
      assert.match(r.out, /^Agent Test iPhone: backup cancelled/);
      let outcome: string | undefined;
      for await (const e of events) {
        if (
          e.type === 'attempt' &&
          e.attempt.id === started.attemptId &&
          e.attempt.outcome !== 'running'
        ) {
          outcome = e.attempt.outcome;
          break;
        }
      }
      assert.equal(outcome, 'cancelled');
      const none = await cli('cancel', '--udid', sim.udid);
      assert.equal(none.code, 1);
      assert.match(none.err, /no backup is running/);
    } finally {
      abort.abort();
    }
  });

  it('refuses a second agent on the same data folder', async () => {
    const second = spawn(
      process.execPath,
      ['--import', 'tsx', path.join(ROOT, 'src/bin/mooring.ts'), 'agent', ...agentArgs],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let err = '';
    second.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
    const code = await new Promise<number | null>((r) => second.on('exit', r));
    assert.equal(code, 2, err);
    assert.match(
      err,
      new RegExp(`another Mooring agent \\(pid ${agent.child.pid}\\) is already running`),
    );
    // The first one is untouched.
    assert.equal((await readAgentFile(data))?.pid, agent.child.pid);
  });

  it('stops on SIGTERM with exit 0 (a running backup recorded interrupted), removing agent.json', async () => {
    const started = JSON.parse((await cli('backup-now', '--udid', sim.udid, '--json')).out) as {
      attemptId: number;
    };
    agent.child.kill('SIGTERM');
    assert.equal(await agent.exited, 0, agent.stderr());
    assert.doesNotMatch(agent.stderr(), /still open after the command ended/);
    await assert.rejects(stat(path.join(data, 'agent.json')), /ENOENT/);
    await assert.rejects(stat(path.join(data, 'agent.lock')), /ENOENT/);
    const outcome = execFileSync('sqlite3', [
      path.join(data, 'history.db'),
      `select outcome from attempts where id = ${started.attemptId}`,
    ])
      .toString()
      .trim();
    assert.equal(outcome, 'interrupted');
    const r = await cli('status');
    assert.equal(r.code, 3);
    assert.match(
      r.err,
      new RegExp(`No Mooring agent is running for .*data: start one with \`mooring agent\``),
    );
  });
});
