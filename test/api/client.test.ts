/**
 * AgentClient against the real server and a real Agent (no USB, no Bonjour): typed answers,
 * the server's error message in a MooringError, the event stream as an async iterator, and an
 * unreachable agent.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Agent } from '../../src/agent/agent';
import type { AgentEvent } from '../../src/agent/types';
import { AgentApiError, AgentClient } from '../../src/api/client';
import type { RunningApiServer } from '../../src/api/server';
import { isMooringError } from '../../src/util/errors';
import { serveOnLoopback, startServedAgent, type ServedAgent } from '../helpers/agent-server';

const TOKEN = 'client-test-token-abcdefghijklmnopqrstuvwxyz0';
const UDID = '00008120-001A2B3C4D5E6F70';

describe('AgentClient', () => {
  let t: ServedAgent;
  let tmp: string;
  let agent: Agent;
  let server: RunningApiServer;
  let client: AgentClient;

  before(async () => {
    t = await startServedAgent('mooring-client-', TOKEN);
    ({ tmp, agent, server, client } = t);
  });
  after(() => t?.close());

  it('reads the status, devices, history and attempts the agent holds', async () => {
    const status = await client.status();
    assert.equal(status.pid, process.pid);
    assert.equal(status.dataDir, tmp);
    assert.equal(status.usbmuxd, 'off');
    assert.equal(status.bonjour, 'off');
    assert.deepEqual(await client.devices(), agent.devices());
    assert.equal(await client.device(UDID), undefined);
    assert.deepEqual(await client.history({ limit: 5 }), agent.history({ limit: 5 }));
    assert.deepEqual(
      await client.attempts({ outcome: 'success' }),
      agent.attempts({ outcome: 'success' }),
    );
    assert.equal(await client.markRead(), 0);
  });

  it('asks for one-time browser login links that work once and carry no token', async () => {
    const link = new URL(await client.loginLink());
    assert.equal(link.origin, server.url);
    assert.equal(link.pathname, '/login');
    assert.ok(!link.href.includes(TOKEN));
    const first = await fetch(link, { redirect: 'manual' });
    assert.equal(first.status, 303);
    assert.match(first.headers.get('set-cookie') ?? '', /^mooring_session=/);
    assert.equal((await fetch(link, { redirect: 'manual' })).status, 401);
    assert.notEqual(await client.loginLink(), link.href);
  });

  it('sets and resets settings, and carries the server message of a refused value', async () => {
    const set = await client.setConfig({ concurrency: '2' });
    assert.equal(set.concurrency, '2');
    assert.equal((await client.getConfig()).concurrency, '2');
    assert.equal(agent.getConfig().concurrency, '2');
    await assert.rejects(client.setConfig({ concurrency: '99' }), (e: unknown) => {
      assert.ok(e instanceof AgentApiError);
      assert.ok(isMooringError(e, 'USAGE'));
      assert.equal(e.status, 400);
      assert.match(e.message, /concurrency/);
      return true;
    });
    assert.equal((await client.setConfig({ concurrency: null })).concurrency, '1');
  });

  it('answers a refused backup with its reason rather than an exception', async () => {
    const r = await client.backupNow(UDID);
    assert.equal(r.started, false);
    assert.equal(r.code, 'UNKNOWN_DEVICE');
    assert.equal(await client.cancel(UDID), false);
  });

  it('iterates over the event stream until aborted', async () => {
    const abort = new AbortController();
    const events = await client.openEvents(abort.signal);
    assert.equal(await client.pause(), true);
    const seen: AgentEvent[] = [];
    for await (const e of events) {
      seen.push(e);
      if (e.type === 'agent') break;
    }
    assert.deepEqual(seen.at(-1), {
      type: 'agent',
      paused: true,
      running: 0,
      staleAfterMs: 3 * 24 * 3600_000,
    });
    assert.equal(await client.resume(), false);
    // A new stale-after setting is an "agent" event too: the UI colours the devices by it.
    const more = await client.openEvents(abort.signal);
    await client.setConfig({ 'stale-after': '5d' });
    for await (const e of more) {
      if (e.type === 'agent' && e.staleAfterMs === 5 * 24 * 3600_000) break;
    }
    await client.setConfig({ 'stale-after': null });

    // events() opens lazily and stops when the signal aborts.
    const second = new AbortController();
    const iterator = client.events(second.signal);
    const next = iterator.next();
    setImmediate(() => void client.pause().then(() => second.abort()));
    const first = await next;
    assert.equal(first.done, false);
    assert.equal((first.value as AgentEvent).type, 'agent');
    const end = await iterator.next();
    assert.equal(end.done, true);
    await client.resume();
    abort.abort();
  });

  it('refuses a wrong token with the server message, and reports an agent that is gone', async () => {
    const wrong = new AgentClient(server.url, 'nope');
    await assert.rejects(wrong.status(), (e: unknown) => {
      assert.ok(e instanceof AgentApiError);
      assert.equal(e.status, 401);
      assert.equal(e.apiCode, 'UNAUTHORIZED');
      assert.match(e.message, /token/);
      return true;
    });
    const s = await serveOnLoopback(agent, TOKEN);
    const gone = new AgentClient(s.url, TOKEN);
    await s.close();
    await assert.rejects(gone.status(), (e: unknown) => {
      assert.ok(e instanceof AgentApiError);
      assert.equal(e.status, 0);
      assert.match(e.message, /cannot reach the agent/);
      return true;
    });
  });
});
