/**
 * The Agent in-process with a simulated iPhone on USB (through the simulator's usbmuxd) and a real
 * history database: the scheduled backup when due, NOT_DUE recorded once (not at every look),
 * the next scheduled backup once the 10 s interval has passed, "back up now" (started, refused
 * while running, refused with advice while unreachable, unknown device), cancel, and a revoked
 * pairing recorded as PAIRING_INVALID with its fix.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Agent } from '../../src/agent/agent';
import type { RunningSim } from '../../src/sim/index';
import {
  attemptsOf,
  nextAttempt,
  nextNotification,
  notificationsOf,
  simFixture,
  type SimFixture,
  waitForEvent,
} from './agent-helpers';

describe('Agent: one USB device', () => {
  let f: SimFixture;
  let sim: RunningSim;
  let agent: Agent;
  let udid: string;

  before(async () => {
    f = await simFixture('mooring-agent-', {
      files: 20,
      bytes: 1_000_000,
      seed: 81,
      name: 'Agent USB',
    });
    ({ sim, udid } = f);
    agent = await Agent.open(f.agentOptions());
    agent.setConfig({ interval: '10s' });
  });
  after(async () => {
    await agent?.stop();
    await f?.close();
  });

  it('backs up the device on its own when it is due, then records NOT_DUE', async () => {
    const done = nextAttempt(agent, udid, (a) => a.outcome !== 'running', 'the first backup');
    const notDue = nextNotification(agent, udid, 'NOT_DUE');
    await agent.start();
    const first = await done;
    assert.equal(first.outcome, 'success', first.message ?? '');
    assert.equal(first.trigger, 'schedule');
    assert.equal(first.transport, 'usb');
    assert.ok(first.snapshotId, 'a snapshot was committed');
    assert.ok(first.files >= 20, `files: ${first.files}`);
    const n = await notDue;
    assert.match(n.message, /^Not due yet: last backup .* next backup/);
    const d = agent.device(udid)!;
    assert.equal(d.name, 'Agent USB');
    assert.ok(d.productType?.startsWith('iPhone'));
    assert.ok(d.iosVersion);
    assert.equal(d.paired, true);
    assert.deepEqual(d.reachable, { usb: true, wifi: false });
    assert.ok(d.lastSuccess !== null && d.lastContact !== null);
    assert.equal(d.latestSnapshot?.id, first.snapshotId);
    assert.equal(d.pairing.health, 'ok');
    assert.equal(d.next.code, 'NOT_DUE');
    assert.equal(d.settings.interval, '10s');
    const codes = notificationsOf(agent, udid).map((x) => x.reasonCode);
    assert.deepEqual(codes.slice(-2), ['BACKUP_SUCCEEDED', 'NOT_DUE']);
  });

  it('records a skip only when its reason changes, not at every look', async () => {
    const count = (): number =>
      notificationsOf(agent, udid).filter((x) => x.reasonCode === 'NOT_DUE').length;
    assert.equal(count(), 1);
    // Unplugging and plugging back makes the agent look again twice; still NOT_DUE, not recorded again.
    const gone = waitForEvent(agent, 'unplugged', (e) =>
      e.type === 'device' && e.device.udid === udid && !e.device.reachable.usb ? true : undefined,
    );
    await sim.ctl('detach');
    await gone;
    // Back: a first contact (CONTACTING) reads its details, then the decision is NOT_DUE again.
    const contacted = waitForEvent(agent, 'contacted again', (e) =>
      e.type === 'device' && e.device.udid === udid && e.device.next.code === 'CONTACTING'
        ? true
        : undefined,
    );
    const decided = waitForEvent(agent, 'decided again', (e) =>
      e.type === 'device' &&
      e.device.udid === udid &&
      e.device.reachable.usb &&
      e.device.next.code === 'NOT_DUE'
        ? true
        : undefined,
    );
    await sim.ctl('attach');
    await contacted;
    await decided;
    assert.equal(count(), 1);
  });

  it('backs up again once the interval has passed, woken at the due time', async () => {
    const [first] = attemptsOf(agent, udid);
    const second = await nextAttempt(agent, udid, (a) => a.outcome !== 'running', 'the second');
    assert.equal(second.outcome, 'success', second.message ?? '');
    assert.equal(second.trigger, 'schedule');
    assert.ok(
      second.startedAt >= first!.startedAt + 10_000,
      `started ${second.startedAt - first!.startedAt} ms after the first`,
    );
    assert.equal(attemptsOf(agent, udid).length, 2);
  });

  it('backs up now on request, refusing a second one while it runs', async () => {
    agent.setConfig({ interval: '24h' });
    const done = nextAttempt(agent, udid, (a) => a.outcome !== 'running', 'the manual backup');
    const r = await agent.backupNow(udid);
    assert.equal(r.started, true, r.message);
    assert.equal(r.code, null);
    assert.ok(r.attemptId !== null);
    const again = await agent.backupNow(udid);
    assert.equal(again.started, false);
    assert.equal(again.code, 'ALREADY_RUNNING');
    const a = await done;
    assert.equal(a.id, r.attemptId);
    assert.equal(a.outcome, 'success', a.message ?? '');
    assert.equal(a.trigger, 'manual');
    assert.equal(agent.status().running, 0);
  });

  it('refuses back-up-now for an unknown device and says what to do for an unreachable one', async () => {
    const unknown = await agent.backupNow('00008030-0000000000000000');
    assert.equal(unknown.started, false);
    assert.equal(unknown.code, 'UNKNOWN_DEVICE');
    const gone = waitForEvent(agent, 'unplugged', (e) =>
      e.type === 'device' && e.device.udid === udid && !e.device.reachable.usb ? true : undefined,
    );
    await sim.ctl('detach');
    await gone;
    const r = await agent.backupNow(udid);
    assert.equal(r.started, false);
    assert.equal(r.code, 'NOT_REACHABLE');
    assert.match(r.message, /not reachable .*connect it by USB/);
    const back = waitForEvent(agent, 'plugged in', (e) =>
      e.type === 'device' && e.device.udid === udid && e.device.reachable.usb ? true : undefined,
    );
    await sim.ctl('attach');
    await back;
  });

  it('cancels a running backup: recorded cancelled, the latest snapshot unchanged', async () => {
    const before = agent.device(udid)!.latestSnapshot;
    const done = nextAttempt(agent, udid, (a) => a.outcome !== 'running', 'the cancelled one');
    const r = await agent.backupNow(udid);
    assert.equal(r.started, true, r.message);
    assert.equal(agent.cancel(udid), true);
    const a = await done;
    assert.equal(a.outcome, 'cancelled');
    assert.equal(a.reasonCode, 'CANCELLED');
    assert.equal(agent.cancel(udid), false, 'nothing left to cancel');
    assert.deepEqual(agent.device(udid)!.latestSnapshot, before);
  });

  it('records a revoked pairing as PAIRING_INVALID with its fix, and tells the webhook', async () => {
    const posts: Array<{ headers: http.IncomingHttpHeaders; body: string }> = [];
    let heard: () => void = () => undefined;
    const posted = new Promise<void>((resolve) => (heard = resolve));
    const server = http.createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (c: string) => (body += c));
      req.on('end', () => {
        posts.push({ headers: req.headers, body });
        res.end('ok');
        heard();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    agent.setConfig({ webhook: `http://127.0.0.1:${port}/mooring` });
    await sim.ctl('revoke-pairing');
    const invalid = nextNotification(agent, udid, 'PAIRING_INVALID');
    const done = nextAttempt(agent, udid, (a) => a.outcome !== 'running', 'the refused one');
    const r = await agent.backupNow(udid);
    assert.equal(r.started, true, r.message);
    const a = await done;
    assert.equal(a.outcome, 'failure');
    assert.equal(a.reasonCode, 'PAIRING_INVALID');
    const n = await invalid;
    assert.equal(n.severity, 'error');
    assert.match(n.message, /^Pairing no longer valid/);
    assert.match(n.fixHint ?? '', /USB.*Trust/);
    assert.equal(agent.device(udid)!.pairing.health, 'invalid');
    await posted;
    server.close();
    const post = posts.find((x) => x.headers['x-mooring-reason'] === 'PAIRING_INVALID');
    assert.ok(
      post,
      `the webhook got ${posts.map((x) => x.headers['x-mooring-reason']).join(', ')}`,
    );
    assert.match(post.body, /^Agent USB: Pairing no longer valid/);
    assert.ok(
      posts.every((x) => x.headers['x-mooring-severity'] !== 'info'),
      'no info notices on the webhook',
    );
  });
});
