/**
 * The HTTP API over real HTTP on 127.0.0.1, in front of a real Agent (no USB, no Bonjour) on a
 * temporary data folder: the guards (token, Host, Origin, body size), validation, the config
 * round trip, history paging against the database itself, and the event stream.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { AgentService } from '../../src/agent/types';
import { startApiServer, type RunningApiServer } from '../../src/api/server';
import { MAX_EVENT_STREAMS } from '../../src/api/sse';
import {
  openHistory,
  paused,
  type History,
  type NotificationRow,
  type Page,
} from '../../src/history';
import {
  serveOnLoopback,
  startBareAgent,
  startServedAgent,
  type ServedAgent,
} from '../helpers/agent-server';
import { errorOf, raw } from './http-helpers';

const TOKEN = 'test-token-0123456789abcdefghijklmnopqrstuvw';

describe('API server', () => {
  let t: ServedAgent;
  let tmp: string;
  let server: RunningApiServer;
  let history: History;
  let port: number;
  const get = (p: string, headers: Record<string, string> = {}) =>
    raw(port, { path: p, token: TOKEN, headers });

  before(async () => {
    t = await startServedAgent('mooring-api-', TOKEN, {
      // The placeholder page is what / shows without a built UI; the UI itself: test/renderer.
      server: { keepaliveMs: 50, uiDir: null },
    });
    ({ tmp, server, port } = t);
    // A second connection to the same database file, as another process would have.
    history = openHistory(path.join(tmp, 'history.db'));
  });
  after(async () => {
    history?.close();
    await t?.close();
  });

  it('answers the URL it printed, on the port it picked', async () => {
    assert.equal(server.url, `http://127.0.0.1:${port}`);
    const r = await get('/api/status');
    assert.equal(r.status, 200);
    assert.equal((r.json as { pid: number }).pid, process.pid);
  });

  it('refuses /api without the token, with a wrong one, and with a wrong cookie (401)', async () => {
    const variants: Array<Record<string, string>> = [
      {},
      { Authorization: 'Bearer wrong' },
      { Authorization: `Bearer ${TOKEN}x` },
      { Authorization: `Basic ${TOKEN}` },
      { Cookie: 'mooring_token=wrong' },
    ];
    for (const headers of variants) {
      const r = await raw(port, { path: '/api/status', headers });
      assert.equal(r.status, 401, JSON.stringify(headers));
      assert.equal(errorOf(r).code, 'UNAUTHORIZED');
      assert.match(errorOf(r).message, /token/);
    }
    // Unknown routes are not revealed without the token either.
    assert.equal((await raw(port, { path: '/api/nope' })).status, 401);
  });

  it('signs a browser in with a one-time link (HttpOnly SameSite=Strict session cookie), never with ?token=', async () => {
    const inUrl = await raw(port, { path: `/?token=${TOKEN}` });
    assert.equal(inUrl.status, 400);
    assert.equal(errorOf(inUrl).code, 'TOKEN_IN_URL');
    assert.equal(inUrl.headers['set-cookie'], undefined);
    const anonymous = await raw(port, { path: '/' });
    assert.equal(anonymous.status, 303);
    assert.equal(anonymous.headers.location, '/login');
    const link = new URL(server.loginUrl());
    assert.equal(link.origin, server.url);
    assert.equal(link.searchParams.get('token'), null);
    assert.ok(!link.href.includes(TOKEN));
    const head = await raw(port, { method: 'HEAD', path: link.pathname + link.search });
    assert.equal(head.headers['set-cookie'], undefined);
    const r = await raw(port, { path: link.pathname + link.search });
    assert.equal(r.status, 303, 'a HEAD request did not spend the code');
    assert.equal(r.headers.location, '/');
    const cookie = r.headers['set-cookie']?.[0] ?? '';
    assert.match(
      cookie,
      /^mooring_session=[^;]+; HttpOnly; SameSite=Strict; Path=\/; Max-Age=\d+$/,
    );
    assert.ok(!cookie.includes(TOKEN));
    // The link works once.
    const again = await raw(port, { path: link.pathname + link.search });
    assert.equal(again.status, 401);
    assert.equal(again.headers['set-cookie'], undefined);
    const pair = cookie.split(';')[0]!;
    const status = await raw(port, {
      path: '/api/status',
      headers: { Cookie: `other=1; ${pair}` },
    });
    assert.equal(status.status, 200);
    const page = await raw(port, { path: '/', headers: { Cookie: pair } });
    assert.equal(page.status, 200);
    assert.match(page.text, /href="\/api\/status"/);
    assert.match(String(page.headers['content-security-policy']), /default-src 'none'/);
    // A tampered session cookie is refused.
    const forged = `${pair.slice(0, -2)}${pair.endsWith('AA') ? 'BB' : 'AA'}`;
    assert.equal(
      (await raw(port, { path: '/api/status', headers: { Cookie: forged } })).status,
      401,
    );
  });

  it('refuses a foreign Host (DNS rebinding) and a foreign Origin (CSRF) even with the token', async () => {
    for (const host of [`evil.example:${port}`, '127.0.0.1', `127.0.0.1:${port + 1}`]) {
      const r = await get('/api/status', { Host: host });
      assert.equal(r.status, 403, host);
      assert.equal(errorOf(r).code, 'FORBIDDEN_HOST');
    }
    for (const host of [`localhost:${port}`, `[::1]:${port}`, `LOCALHOST:${port}`]) {
      assert.equal((await get('/api/status', { Host: host })).status, 200, host);
    }
    const foreign = await get('/api/status', { Origin: 'http://evil.example' });
    assert.equal(foreign.status, 403);
    assert.equal(errorOf(foreign).code, 'FORBIDDEN_ORIGIN');
    const nullOrigin = await get('/api/status', { Origin: 'null' });
    assert.equal(nullOrigin.status, 403);
    const same = await get('/api/status', { Origin: `http://127.0.0.1:${port}` });
    assert.equal(same.status, 200);
  });

  const patchText = (contentType: string, body: string) =>
    raw(port, {
      method: 'PATCH',
      path: '/api/config',
      token: TOKEN,
      headers: { 'Content-Type': contentType },
      body,
    });

  it('refuses a body over 64 KiB (413) and a body that is not JSON (400)', async () => {
    const config = (await get('/api/config')).json;
    const big = JSON.stringify({ interval: 'x'.repeat(70 * 1024) });
    const r = await patchText('application/json', big);
    assert.equal(r.status, 413);
    assert.equal(errorOf(r).code, 'TOO_LARGE');
    const text = await patchText('text/plain', 'interval=1h');
    assert.equal(text.status, 400);
    assert.match(errorOf(text).message, /JSON/);
    const broken = await patchText('application/json', '{"interval": ');
    assert.equal(broken.status, 400);
    // Still the old values: nothing half-applied.
    assert.deepEqual((await get('/api/config')).json, config);
  });

  const patch = (body: unknown, query = '') =>
    raw(port, {
      method: 'PATCH',
      path: `/api/config${query}`,
      token: TOKEN,
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });

  it('round-trips PATCH /api/config, resets with null, and explains a bad value (400)', async () => {
    const before = (await get('/api/config')).json as Record<string, string>;
    assert.equal(typeof before.interval, 'string');
    const set = await patch({ interval: '12h', window: '01:00-06:00' });
    assert.equal(set.status, 200, set.text);
    assert.equal((set.json as Record<string, string>).interval, '12h');
    assert.equal((set.json as Record<string, string>).window, '01:00-06:00');
    assert.deepEqual((await get('/api/config')).json, set.json);

    const bad = await patch({ interval: 'soon', window: 'any' });
    assert.equal(bad.status, 400);
    assert.equal(errorOf(bad).code, 'BAD_REQUEST');
    assert.match(errorOf(bad).message, /interval/);
    // Nothing written when one value is bad.
    assert.equal(((await get('/api/config')).json as Record<string, string>).window, '01:00-06:00');

    const wrongType = await patch({ interval: 12 });
    assert.equal(wrongType.status, 400);
    assert.match(errorOf(wrongType).message, /string/);
    assert.equal((await patch([])).status, 400);
    // The same shape checks as the desktop bridge (src/api/config-changes.ts).
    const badName = await patch({ ['X'.repeat(5000)]: '1' });
    assert.equal(badName.status, 400);
    assert.match(errorOf(badName).message, /not a setting name/);
    assert.ok(errorOf(badName).message.length < 300, 'the name is not echoed in full');
    const tooLong = await patch({ webhook: 'x'.repeat(5000) });
    assert.equal(tooLong.status, 400);
    assert.match(errorOf(tooLong).message, /at most 4096 characters/);

    const reset = await patch({ interval: null, window: null });
    assert.equal(reset.status, 200);
    assert.deepEqual(reset.json, before);
  });

  it('validates query parameters: limit bounds, UDID shape, enums, unknown names', async () => {
    const cases: Array<[string, RegExp]> = [
      ['/api/history?limit=0', /limit/],
      ['/api/history?limit=100000', /limit/],
      ['/api/history?limit=abc', /limit/],
      ['/api/history?before=-1', /before/],
      ['/api/history?severity=fatal', /severity: expected one of info, warning, error/],
      ['/api/history?kind=nope', /kind/],
      ['/api/history?udid=..%2F..%2Fetc', /UDID/],
      ['/api/history?limit=1&limit=2', /twice/],
      ['/api/history?sort=asc', /unknown query parameter "sort"/],
      ['/api/attempts?outcome=great', /outcome/],
      ['/api/config?udid=x', /UDID/],
      ['/api/status?x=1', /unknown query parameter/],
      ['/api/devices/not-a-udid', /UDID/],
      ['/api/log?bytes=0', /bytes: expected an integer from 1 to 1048576/],
      ['/api/log?bytes=2000000', /bytes/],
      ['/api/log?lines=5', /unknown query parameter "lines" \(accepted: bytes\)/],
    ];
    for (const [p, message] of cases) {
      const r = await get(p);
      assert.equal(r.status, 400, p);
      assert.match(errorOf(r).message, message, p);
    }
  });

  it("sends the end of the agent's log file: whole lines, as much as asked", async () => {
    // Two lines ("backups now go to …"), and back as it was.
    t.agent.setConfig({ 'backup-dir': path.join(tmp, 'moved') });
    t.agent.setConfig({ 'backup-dir': null });
    const r = await get('/api/log');
    assert.equal(r.status, 200);
    const tail = r.json as { file: string; text: string; truncated: boolean };
    assert.equal(tail.file, path.join(tmp, 'logs', 'agent.log'));
    assert.equal(tail.text, readFileSync(tail.file, 'utf8'), 'all of a short log');
    assert.equal(tail.truncated, false);
    assert.match(tail.text, /Z backups now go to .*moved/);
    const lastLine = tail.text.trimEnd().split('\n').at(-1)!;
    const small = (await get(`/api/log?bytes=${Buffer.byteLength(lastLine) + 1}`)).json;
    assert.deepEqual(small, { file: tail.file, text: `${lastLine}\n`, truncated: true });
    assert.equal((await raw(port, { path: '/api/log' })).status, 401, 'not without the token');
  });

  it('answers 404 for an unknown device or route, 405 for a wrong method, 409 for a refused backup', async () => {
    const udid = '00008120-001A2B3C4D5E6F70';
    const missing = await get(`/api/devices/${udid}`);
    assert.equal(missing.status, 404);
    assert.match(errorOf(missing).message, new RegExp(udid));
    assert.equal((await get('/api/nothing-here')).status, 404);
    const wrong = await raw(port, { method: 'DELETE', path: '/api/status', token: TOKEN });
    assert.equal(wrong.status, 405);
    assert.equal(wrong.headers.allow, 'GET');
    const refused = await raw(port, {
      method: 'POST',
      path: `/api/devices/${udid}/backup`,
      token: TOKEN,
    });
    assert.equal(refused.status, 409);
    const result = refused.json as { started: boolean; code: string; message: string };
    assert.equal(result.started, false);
    assert.equal(result.code, 'UNKNOWN_DEVICE');
    const cancel = await raw(port, {
      method: 'POST',
      path: `/api/devices/${udid}/cancel`,
      token: TOKEN,
    });
    assert.deepEqual(cancel.json, { cancelled: false });
  });

  it('pages the history newest first, exactly as the database holds it', async () => {
    const udid = '00008120-00AA00BB00CC00DD';
    history.upsertDevice({ udid, name: 'Test iPhone' });
    for (let i = 0; i < 5; i++) history.addNotification({ ...paused({ now: Date.now() }), udid });
    const first = (await get(`/api/history?udid=${udid}&limit=2`)).json as Page<NotificationRow>;
    assert.equal(first.items.length, 2);
    assert.notEqual(first.nextCursor, null);
    const second = (await get(`/api/history?udid=${udid}&limit=2&before=${first.nextCursor}`))
      .json as Page<NotificationRow>;
    const third = (await get(`/api/history?udid=${udid}&limit=2&before=${second.nextCursor}`))
      .json as Page<NotificationRow>;
    assert.equal(third.nextCursor, null);
    const viaApi = [...first.items, ...second.items, ...third.items];
    assert.deepEqual(viaApi, history.listHistory({ udid, limit: 100 }).items);
    assert.equal(viaApi.length, 5);
    const ids = viaApi.map((n) => n.id);
    assert.deepEqual(
      ids,
      [...ids].sort((a, b) => b - a),
    );

    const markRead = (body: unknown) =>
      raw(port, {
        method: 'POST',
        path: '/api/history/read',
        token: TOKEN,
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(body),
      });
    // By id: exactly those.
    const byId = await markRead({ udid, ids: [ids[1], ids[3]] });
    assert.deepEqual(byId.json, { marked: 2 });
    assert.deepEqual(
      history
        .listHistory({ udid })
        .items.filter((n) => n.read)
        .map((n) => n.id),
      [ids[1], ids[3]],
    );
    for (const bad of [
      { ids: [0] },
      { ids: ['1'] },
      { ids: 5 },
      { ids: new Array(1001).fill(1) },
    ]) {
      const r = await markRead(bad);
      assert.equal(r.status, 400, JSON.stringify(bad).slice(0, 40));
      assert.match(errorOf(r).message, /ids \(at most 1000 positive ids\)/);
    }
    const marked = await markRead({ udid });
    assert.deepEqual(marked.json, { marked: 3 });
    assert.ok(history.listHistory({ udid }).items.every((n) => n.read));
  });

  it('streams an "agent" event after pause, and keepalive comments while quiet', async () => {
    const received = new Promise<{ event: string; data: unknown; sawKeepalive: boolean }>(
      (resolve, reject) => {
        const req = http.get(
          {
            host: '127.0.0.1',
            port,
            path: '/api/events',
            headers: { Authorization: `Bearer ${TOKEN}` },
            agent: false,
          },
          (res) => {
            assert.equal(res.statusCode, 200);
            assert.match(String(res.headers['content-type']), /^text\/event-stream/);
            let text = '';
            let paused = false;
            res.setEncoding('utf8');
            res.on('data', (chunk: string) => {
              text += chunk;
              if (!paused && text.includes(': connected')) {
                paused = true;
                void raw(port, { method: 'POST', path: '/api/pause', token: TOKEN });
              }
              const m = /event: agent\ndata: (.*)\n\n/.exec(text);
              if (m && text.includes(': keepalive')) {
                res.destroy();
                resolve({ event: 'agent', data: JSON.parse(m[1]!), sawKeepalive: true });
              }
            });
            res.on('error', () => undefined);
          },
        );
        req.on('error', reject);
      },
    );
    const got = await received;
    assert.deepEqual(got.data, {
      type: 'agent',
      paused: true,
      running: 0,
      staleAfterMs: 3 * 24 * 3600_000,
    });
    const resumed = await raw(port, { method: 'POST', path: '/api/resume', token: TOKEN });
    assert.deepEqual(resumed.json, { paused: false });
  });
});

describe('API server limits', () => {
  it('refuses a non-loopback address and a port in use, and ends event streams on close()', async () => {
    const t = await startServedAgent('mooring-api-remote-', TOKEN);
    const { agent, server: server0 } = t;
    try {
      await assert.rejects(
        startApiServer({ service: agent, listen: { host: '0.0.0.0', port: 0 }, token: TOKEN }),
        /not a loopback address/,
      );
      await assert.rejects(
        startApiServer({
          service: agent,
          listen: { host: '127.0.0.1', port: server0.port },
          token: TOKEN,
        }),
        /already in use/,
      );
      const s = await serveOnLoopback(agent, TOKEN);
      // close() ends open event streams instead of waiting for them.
      const ended = new Promise<void>((resolve) => {
        http.get(
          {
            host: '127.0.0.1',
            port: s.port,
            path: '/api/events',
            headers: { Authorization: `Bearer ${TOKEN}` },
            agent: false,
          },
          (res) => {
            res.resume();
            res.on('end', resolve);
            res.on('close', resolve);
            res.once('data', () => void s.close());
          },
        );
      });
      await ended;
    } finally {
      await t.close();
    }
  });
});

describe('API event streams', () => {
  it('unsubscribes when the client goes away, and caps how many streams are open', async () => {
    const t = await startBareAgent('mooring-api-sse-');
    const { agent } = t;
    // The real agent, with its subscriptions counted on the way through.
    let active = 0;
    let onUnsubscribe = (): void => undefined;
    const service: AgentService = {
      status: () => agent.status(),
      devices: () => agent.devices(),
      device: (u) => agent.device(u),
      history: (q) => agent.history(q),
      attempts: (q) => agent.attempts(q),
      markRead: (o) => agent.markRead(o),
      backupNow: (u) => agent.backupNow(u),
      cancel: (u) => agent.cancel(u),
      getConfig: (u) => agent.getConfig(u),
      setConfig: (c, u) => agent.setConfig(c, u),
      pause: () => agent.pause(),
      resume: () => agent.resume(),
      setWifi: (u, on) => agent.setWifi(u, on),
      pair: (u) => agent.pair(u),
      readLog: (q) => agent.readLog(q),
      pinSnapshot: (u, id, p) => agent.pinSnapshot(u, id, p),
      snapshots: (u) => agent.snapshots(u),
      files: (u, id, q) => agent.files(u, id, q),
      diff: (u, a, b) => agent.diff(u, a, b),
      openFile: (u, id, d, p) => agent.openFile(u, id, d, p),
      setEncryption: (u, r) => agent.setEncryption(u, r), // H8c
      storeBackupPassword: (u, p) => agent.storeBackupPassword(u, p),
      recoverySheet: (u) => agent.recoverySheet(u),
      subscribe: (listener) => {
        active++;
        const off = agent.subscribe(listener);
        return () => {
          off();
          active--;
          onUnsubscribe();
        };
      },
    };
    const s = await serveOnLoopback(service, TOKEN);
    const open = (): Promise<{ status: number; close(): void }> =>
      new Promise((resolve, reject) => {
        const req = http.get(
          {
            host: '127.0.0.1',
            port: s.port,
            path: '/api/events',
            headers: { Authorization: `Bearer ${TOKEN}` },
            agent: false,
          },
          (res) => {
            res.on('error', () => undefined);
            res.resume();
            resolve({ status: res.statusCode ?? 0, close: () => req.destroy() });
          },
        );
        req.on('error', reject);
      });
    try {
      const first = await open();
      assert.equal(first.status, 200);
      assert.equal(active, 1);
      const gone = new Promise<void>((r) => (onUnsubscribe = r));
      first.close();
      await gone;
      assert.equal(active, 0);

      const streams = [];
      for (let i = 0; i < MAX_EVENT_STREAMS; i++) streams.push(await open());
      assert.ok(streams.every((x) => x.status === 200));
      const refused = await raw(s.port, { path: '/api/events', token: TOKEN });
      assert.equal(refused.status, 503);
      assert.match(errorOf(refused).message, new RegExp(`at most ${MAX_EVENT_STREAMS}`));
      await s.close();
      assert.equal(active, 0, 'close() ended every stream');
    } finally {
      await s.close();
      await t.close();
    }
  });
});
