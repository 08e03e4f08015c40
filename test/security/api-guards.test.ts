/**
 * The local API's guards, route by route (issue 7): the real route table is enumerated, so a
 * route added later is checked without touching this file. Every /api route refuses a request
 * without the token, with a wrong one, with a foreign Host (DNS rebinding) and with a foreign
 * Origin (a web page's cross-site request), and answers with the token (the guard, not a missing
 * route, is what refused). Real HTTP on 127.0.0.1 in front of a real Agent.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import { LoginCodes } from '../../src/api/browser-login';
import { apiRoutes, type Route } from '../../src/api/routes';
import { EventStreams } from '../../src/api/sse';
import { startServedAgent, type ServedAgent } from '../helpers/agent-server';
import { errorOf, raw } from '../api/http-helpers';

const TOKEN = 'guard-token-0123456789abcdefghijklmnopqrstuv';
const SAMPLE_PARAMS = ['00008030-001A2B3C4D5E802E', 'latest'];

/** A concrete path for a route's pattern: each `([^/]+)` filled with a sample value. */
function samplePath(route: Route): string {
  let i = 0;
  const p = route.path.source
    .replace(/^\^/, '')
    .replace(/\$$/, '')
    .replace(/\(\[\^\/\]\+\)/g, () => SAMPLE_PARAMS[i++] ?? 'x')
    .replace(/\\\//g, '/');
  assert.match(p, /^\/api\/[A-Za-z0-9/_.-]+$/, `cannot make a sample path of ${route.path.source}`);
  assert.ok(route.path.test(p), `${p} does not match ${route.path.source}`);
  return p;
}

/** The status only: the response is dropped once its head arrives (event streams never end). */
function statusOf(port: number, method: string, path: string, headers: Record<string, string>) {
  return new Promise<number>((resolve, reject) => {
    const body = method === 'GET' ? undefined : '{}';
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        agent: false,
        headers: {
          ...headers,
          ...(body === undefined
            ? {}
            : { 'Content-Type': 'application/json', 'Content-Length': body.length }),
        },
      },
      (res) => {
        resolve(res.statusCode ?? 0);
        res.destroy();
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

describe('API guards on every route', () => {
  let t: ServedAgent;
  let routes: Route[];

  before(async () => {
    t = await startServedAgent('mooring-guards-', TOKEN, { server: { uiDir: null } });
    // The same table the server builds (no requests go through these instances).
    routes = apiRoutes(t.agent, new EventStreams(t.agent), new LoginCodes());
  });
  after(async () => {
    await t?.close();
  });

  it('has a route table covering the API, every path under /api/', () => {
    assert.ok(routes.length >= 20, `only ${routes.length} routes`);
    for (const r of routes) assert.ok(r.path.source.startsWith('^\\/api\\/'), r.path.source);
    const names = routes.map((r) => `${r.method} ${samplePath(r)}`);
    for (const must of ['GET /api/status', 'PATCH /api/config', 'POST /api/login-link']) {
      assert.ok(names.includes(must), `${must} missing from ${names.join(', ')}`);
    }
  });

  it('refuses every route without the token or with a wrong one (401)', async () => {
    const wrong: Array<Record<string, string>> = [
      {},
      { Authorization: 'Bearer nope' },
      { Authorization: `Bearer ${TOKEN.slice(0, -1)}` },
      { Authorization: `Basic ${TOKEN}` },
      { Cookie: 'mooring_token=nope' },
      { Cookie: 'mooring_session=v1.abc.def.ghi' },
    ];
    for (const r of routes) {
      const p = samplePath(r);
      for (const headers of wrong) {
        const status = await statusOf(t.port, r.method, p, headers);
        assert.equal(status, 401, `${r.method} ${p} with ${JSON.stringify(headers)}`);
      }
    }
  });

  it('refuses every route from a foreign Host or Origin even with the token (403)', async () => {
    const auth = { Authorization: `Bearer ${TOKEN}` };
    const foreign: Array<Record<string, string>> = [
      { Host: `evil.example:${t.port}` },
      { Host: `127.0.0.1.evil.example:${t.port}` },
      { Host: `127.0.0.1:${t.port + 1}` },
      { Host: '127.0.0.1' },
      { Origin: 'http://evil.example' },
      { Origin: 'null' },
      { Origin: `http://localhost:${t.port + 1}` },
      { Origin: `https://127.0.0.1:${t.port}` },
    ];
    for (const r of routes) {
      const p = samplePath(r);
      for (const headers of foreign) {
        const status = await statusOf(t.port, r.method, p, { ...auth, ...headers });
        assert.equal(status, 403, `${r.method} ${p} with ${JSON.stringify(headers)}`);
      }
    }
  });

  it('lets every route through with the token (so the refusals above came from the guards)', async () => {
    for (const r of routes) {
      const p = samplePath(r);
      const status = await statusOf(t.port, r.method, p, { Authorization: `Bearer ${TOKEN}` });
      assert.ok(![401, 403, 405].includes(status), `${r.method} ${p}: ${status}`);
    }
  });

  it('guards the pages too: foreign Host and Origin refused; no page but the sign-in one without a session', async () => {
    for (const p of ['/', '/login', '/ui/main.js']) {
      const r = await raw(t.port, { path: p, headers: { Host: `rebind.example:${t.port}` } });
      assert.equal(r.status, 403, p);
      assert.equal(errorOf(r).code, 'FORBIDDEN_HOST');
    }
    // Login CSRF: a page elsewhere posting the sign-in form.
    const csrf = await raw(t.port, {
      method: 'POST',
      path: '/login',
      headers: {
        Origin: 'http://evil.example',
        'Content-Type': 'application/x-www-form-urlencoded',
      },
      body: `secret=${TOKEN}`,
    });
    assert.equal(csrf.status, 403);
    assert.equal(csrf.headers['set-cookie'], undefined);
    const home = await raw(t.port, { path: '/' });
    assert.equal(home.status, 303);
    assert.equal(home.headers.location, '/login');
    const other = await raw(t.port, { path: '/secret.txt' });
    assert.equal(other.status, 404);
  });

  it('never takes the token in a URL, not even a right one, on any path', async () => {
    for (const p of ['/', '/api/status', '/login']) {
      const r = await raw(t.port, { path: `${p}?token=${TOKEN}` });
      assert.ok(r.status >= 400, `${p}?token= answered ${r.status}`);
      assert.equal(r.headers['set-cookie'], undefined, p);
    }
  });
});
