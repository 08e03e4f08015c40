/**
 * The API beyond loopback is opt-in with a password, and browsers sign in without the token in a
 * URL (issue 7). The server runs in LAN mode (password configured) on 127.0.0.1: tests never
 * listen on an outside interface; which Host names a 0.0.0.0 listener accepts is checked on the
 * pure function. The building blocks (one-time codes, signed sessions, the rate limiter, the
 * password check) are tested with explicit clocks.
 */
import assert from 'node:assert/strict';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  LOGIN_CODE_TTL_MS,
  LOGIN_WINDOW_MS,
  LoginCodes,
  LoginRateLimiter,
  MAX_FAILURES_PER_ADDRESS,
  MAX_FAILURES_TOTAL,
  MAX_LOGIN_CODES,
  PasswordCheck,
  SESSION_MAX_AGE_MS,
  SessionCookies,
} from '../../src/api/browser-login';
import { lanHostNames, startApiServer, type RunningApiServer } from '../../src/api/server';
import { isMooringError } from '../../src/util/errors';
import { startBareAgent, type BareAgent } from '../helpers/agent-server';
import { mooring } from '../cli/run-cli';
import { errorOf, raw } from '../api/http-helpers';

const TOKEN = 'lan-token-0123456789abcdefghijklmnopqrstuvwx';
const PASSWORD = 'correct horse battery staple';
const FORM = { 'Content-Type': 'application/x-www-form-urlencoded' };

describe('LAN opt-in and browser sign-in', () => {
  let bare: BareAgent;
  let server: RunningApiServer;

  before(async () => {
    bare = await startBareAgent('mooring-lan-');
    server = await startApiServer({
      service: bare.agent,
      listen: { host: '127.0.0.1', port: 0 },
      token: TOKEN,
      lanPassword: PASSWORD,
      uiDir: null,
    });
  });
  after(async () => {
    await server?.close();
    await bare?.close();
  });

  const signIn = (secret: string, headers: Record<string, string> = {}) =>
    raw(server.port, {
      method: 'POST',
      path: '/login',
      headers: { ...FORM, ...headers },
      body: new URLSearchParams({ secret }).toString(),
    });

  it('refuses a non-loopback address without a LAN password', async () => {
    for (const host of ['0.0.0.0', '192.168.1.20', '::']) {
      await assert.rejects(
        startApiServer({ service: bare.agent, listen: { host, port: 0 }, token: TOKEN }),
        (e: unknown) => isMooringError(e, 'USAGE') && /--lan-password-file/.test(e.message),
        host,
      );
    }
  });

  it('signs a browser in with the password; the session opens the API; API clients still need the token', async () => {
    const anonymous = await raw(server.port, { path: '/api/status' });
    assert.equal(anonymous.status, 401);
    const page = await raw(server.port, { path: '/login' });
    assert.equal(page.status, 200);
    assert.match(page.text, /LAN password/);
    assert.match(String(page.headers['content-security-policy']), /form-action 'self'/);
    const ok = await signIn(PASSWORD, { Origin: server.url });
    assert.equal(ok.status, 303);
    const cookie = (ok.headers['set-cookie']?.[0] ?? '').split(';')[0]!;
    assert.match(cookie, /^mooring_session=v1\./);
    assert.ok(!cookie.includes(PASSWORD) && !cookie.includes(TOKEN));
    assert.equal(
      (await raw(server.port, { path: '/api/status', headers: { Cookie: cookie } })).status,
      200,
    );
    assert.equal((await raw(server.port, { path: '/api/status', token: TOKEN })).status, 200);
    // Signing out clears the cookie.
    const out = await raw(server.port, {
      method: 'POST',
      path: '/logout',
      headers: { Cookie: cookie },
    });
    assert.match(out.headers['set-cookie']?.[0] ?? '', /^mooring_session=; .*Max-Age=0/);
  });

  it('answers the Host names of this computer, not others', () => {
    const any = lanHostNames('0.0.0.0');
    for (const list of Object.values(os.networkInterfaces())) {
      for (const a of list ?? []) assert.ok(any.includes(a.address), a.address);
    }
    assert.ok(any.includes(os.hostname()));
    assert.ok(!any.includes('evil.example'));
    // One address: only this computer's names besides it (the address itself is added by the server).
    assert.deepEqual(lanHostNames('192.168.1.20'), [os.hostname(), `${os.hostname()}.local`]);
  });

  it('refuses an oversized or non-form sign-in body', async () => {
    const big = await raw(server.port, {
      method: 'POST',
      path: '/login',
      headers: FORM,
      body: `secret=${'a'.repeat(5000)}`,
    });
    assert.equal(big.status, 413);
    const json = await raw(server.port, {
      method: 'POST',
      path: '/login',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ secret: PASSWORD }),
    });
    assert.equal(json.status, 415);
    assert.equal(errorOf(json).code, 'BAD_REQUEST');
  });
  // Last: afterwards this address may not sign in for a minute.
  it('rate-limits failed sign-ins per address: after the limit even the right password waits', async () => {
    for (let i = 0; i < MAX_FAILURES_PER_ADDRESS; i++) {
      const r = await signIn(`wrong password ${i}`);
      assert.equal(r.status, 401, `attempt ${i}`);
      assert.equal(r.headers['set-cookie'], undefined);
      assert.match(r.text, /Wrong password/);
    }
    const limited = await signIn(PASSWORD);
    assert.equal(limited.status, 429);
    assert.ok(Number(limited.headers['retry-after']) >= 1);
    assert.equal(limited.headers['set-cookie'], undefined);
  });
});

describe('browser sign-in building blocks', () => {
  it('one-time login codes work once, expire, and are bounded in number', () => {
    const codes = new LoginCodes();
    const t0 = 1_000_000;
    const a = codes.issue(t0);
    assert.match(a, /^[A-Za-z0-9_-]{32}$/);
    assert.equal(codes.consume(a, t0 + 1), true);
    assert.equal(codes.consume(a, t0 + 2), false);
    const b = codes.issue(t0);
    assert.equal(codes.consume(b, t0 + LOGIN_CODE_TTL_MS), false);
    assert.equal(codes.consume('made-up', t0), false);
    const first = codes.issue(t0);
    for (let i = 0; i < MAX_LOGIN_CODES; i++) codes.issue(t0);
    assert.equal(codes.size, MAX_LOGIN_CODES);
    assert.equal(codes.consume(first, t0), false, 'the oldest code was dropped');
  });

  it('session cookies are signed by the token and the password, and expire', () => {
    const t0 = Date.UTC(2026, 0, 1);
    const s = new SessionCookies(TOKEN, PASSWORD);
    const v = s.issue(t0);
    assert.equal(s.valid(v, t0 + 1000), true);
    assert.equal(new SessionCookies(TOKEN, PASSWORD).valid(v, t0), true, 'survives a restart');
    assert.equal(new SessionCookies(TOKEN, 'another password!').valid(v, t0), false);
    assert.equal(new SessionCookies(`${TOKEN}x`, PASSWORD).valid(v, t0), false);
    assert.equal(s.valid(v, t0 + SESSION_MAX_AGE_MS), false, 'expired');
    assert.equal(s.valid(v, t0 - 3600_000), false, 'issued in the future');
    const [ver, issued, nonce] = v.split('.');
    const other = s.issue(t0).split('.')[3];
    assert.equal(
      s.valid(`${ver}.${issued}.${nonce}.${other}`, t0),
      false,
      'MAC of another session',
    );
    assert.equal(s.valid(undefined), false);
    assert.equal(s.valid('x'.repeat(500)), false);
  });

  it('the rate limiter counts per address and in total over a sliding window', () => {
    const l = new LoginRateLimiter();
    const t0 = 5_000_000;
    for (let i = 0; i < MAX_FAILURES_PER_ADDRESS; i++) l.failed('10.0.0.1', t0);
    assert.ok(l.retryAfter('10.0.0.1', t0) > 0);
    assert.equal(l.retryAfter('10.0.0.2', t0), 0);
    assert.equal(l.retryAfter('10.0.0.1', t0 + LOGIN_WINDOW_MS), 0, 'the window slides');
    const g = new LoginRateLimiter();
    for (let i = 0; i < MAX_FAILURES_TOTAL; i++) g.failed(`10.1.0.${i}`, t0);
    assert.ok(g.retryAfter('10.9.9.9', t0) > 0, 'a distributed guess hits the total limit');
  });

  it('the password check accepts the password only', async () => {
    const c = await PasswordCheck.of(PASSWORD);
    assert.equal(await c.matches(PASSWORD), true);
    assert.equal(await c.matches(`${PASSWORD} `), false);
    assert.equal(await c.matches(''), false);
    assert.equal(await c.matches('x'.repeat(5000)), false);
  });
});

describe('mooring agent --listen beyond loopback', () => {
  let tmp: string;
  before(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'mooring-lan-cli-'));
  });
  after(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  const agent = (...args: string[]) =>
    mooring('agent', '--data', path.join(tmp, 'data'), '--usbmuxd', 'off', ...args);

  it('is refused without a password file, with a readable-by-others one, or a short password', async () => {
    const none = await agent('--listen', '0.0.0.0:0');
    assert.equal(none.code, 2);
    assert.match(none.err, /--lan-password-file/);

    const file = path.join(tmp, 'lan-password');
    await writeFile(file, `${PASSWORD}\n`, { mode: 0o644 });
    await chmod(file, 0o644);
    const open = await agent('--listen', '0.0.0.0:0', '--lan-password-file', file);
    assert.equal(open.code, 2);
    assert.match(open.err, /chmod 600/);

    await writeFile(file, 'short\n');
    await chmod(file, 0o600);
    const short = await agent('--listen', '0.0.0.0:0', '--lan-password-file', file);
    assert.equal(short.code, 2);
    assert.match(short.err, /shorter than 12/);
    assert.ok(!short.err.includes('short\n'));

    const loopback = await agent('--listen', '127.0.0.1:0', '--lan-password-file', file);
    assert.equal(loopback.code, 2);
    assert.match(loopback.err, /only with --listen on a LAN address/);
  });
});
