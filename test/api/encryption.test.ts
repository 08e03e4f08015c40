/**
 * H8c: the encryption routes over real HTTP on 127.0.0.1, in front of a real Agent and a
 * simulator (keybag rounds lowered): passwords only in JSON bodies (a query is refused), shapes
 * checked before the agent acts (400), refusals the person can act on as 409 with the agent's
 * result, the token required, and no password in any log line of the agent or the server.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Agent } from '../../src/agent/agent';
import type { RunningApiServer } from '../../src/api/server';
import {
  nextAttempt,
  simFixture,
  untilOnUsb,
  waitForEvent,
  type SimFixture,
} from '../agent/agent-helpers';
import { serveOnLoopback } from '../helpers/agent-server';
import { errorOf, raw, type RawResponse } from './http-helpers';

const TOKEN = 'enc-test-token-0123456789abcdef';
const PW1 = 'first-http-password';
const PW_WRONG = 'definitely-wrong-password';

describe('the encryption API', () => {
  let f: SimFixture;
  let agent: Agent;
  let server: RunningApiServer;
  let udid: string;
  const logs: string[] = [];

  const post = (p: string, body: unknown, token: string | null = TOKEN): Promise<RawResponse> =>
    raw(server.port, {
      method: 'POST',
      path: `/api/devices/${encodeURIComponent(udid)}${p}`,
      ...(token === null ? {} : { token }),
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });

  before(async () => {
    f = await simFixture('mooring-api-enc-', {
      files: 8,
      bytes: 100_000,
      seed: 812,
      keyBagRounds: { dpic: 10, iter: 10 },
    });
    udid = f.udid;
    agent = await Agent.open(f.agentOptions({ log: (l) => logs.push(l) }));
    agent.setConfig({ paused: 'true' });
    const contacted = waitForEvent(agent, 'first contact', (e) =>
      e.type === 'device' && e.device.udid === udid && e.device.encryption.on !== null
        ? true
        : undefined,
    );
    await agent.start();
    await untilOnUsb(agent, udid);
    await contacted;
    server = await serveOnLoopback(agent, TOKEN, { log: (l) => logs.push(l) });
  });
  after(async () => {
    await server?.close();
    await agent?.stop();
    await f?.close();
  });

  it('needs the token on every encryption route', async () => {
    for (const p of ['/encryption', '/encryption/password', '/encryption/recovery-sheet']) {
      const r = await post(p, {}, null);
      assert.equal(r.status, 401, `${p}: ${r.text}`);
    }
  });

  it('checks the shape of a request before the agent acts (400), never echoing a password', async () => {
    const bad: unknown[] = [
      [],
      { action: 'explode' },
      { action: 'enable', extra: 1 },
      { action: 'enable', password: '' },
      { action: 'enable', password: 42 },
      { action: 'enable', oldPassword: PW_WRONG },
      { action: 'disable', password: PW_WRONG },
      { action: 'enable', password: 'x'.repeat(1025) },
      { action: 'enable', password: 'a\u0000b' },
    ];
    for (const b of bad) {
      const r = await post('/encryption', b);
      assert.equal(r.status, 400, JSON.stringify(b).slice(0, 80));
      assert.doesNotMatch(errorOf(r).message, new RegExp(PW_WRONG));
    }
    // A password in the address is refused: passwords travel in bodies only.
    const q = await raw(server.port, {
      method: 'POST',
      path: `/api/devices/${udid}/encryption?password=${PW_WRONG}`,
      token: TOKEN,
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ action: 'enable' }),
    });
    assert.equal(q.status, 400);
    assert.equal((await post('/encryption/password', { password: 'x', more: 1 })).status, 400);
    assert.equal((await post('/encryption/recovery-sheet', { x: 1 })).status, 400);
    assert.equal(agent.device(udid)!.encryption.on, false, 'nothing reached the device');
  });

  it('turns encryption on, and answers 409 with the reason when it is already on', async () => {
    const r = await post('/encryption', { action: 'enable', password: PW1 });
    assert.equal(r.status, 200, r.text);
    const body = r.json as {
      ok: boolean;
      on: boolean;
      generatedPassword: null;
      recoverySheet: string;
    };
    assert.equal(body.ok, true);
    assert.equal(body.on, true);
    assert.equal(body.generatedPassword, null);
    assert.ok(body.recoverySheet.includes(PW1));
    const again = await post('/encryption', { action: 'enable', password: PW1 });
    assert.equal(again.status, 409);
    assert.equal((again.json as { failure: string }).failure, 'already-on');
    const device = await raw(server.port, { path: `/api/devices/${udid}`, token: TOKEN });
    assert.deepEqual((device.json as { encryption: unknown }).encryption, {
      on: true,
      passwordStored: true,
      latestOpens: null,
      storeKind: 'file',
    });
  });

  it('refuses to store a password that does not open the latest backup (409)', async () => {
    const done = nextAttempt(agent, udid, (a) => a.outcome !== 'running', 'a backup');
    assert.equal((await agent.backupNow(udid)).started, true);
    assert.equal((await done).outcome, 'success');
    const wrong = await post('/encryption/password', { password: PW_WRONG });
    assert.equal(wrong.status, 409);
    assert.equal((wrong.json as { stored: boolean }).stored, false);
    const right = await post('/encryption/password', { password: PW1 });
    assert.equal(right.status, 200, right.text);
    const sheet = await post('/encryption/recovery-sheet', {});
    assert.equal(sheet.status, 200);
    assert.equal(sheet.headers['cache-control'], 'no-store');
    assert.ok((sheet.json as { html: string }).html.includes(PW1));
  });

  it('answers a wrong current password with 409 wrong-password', async () => {
    const r = await post('/encryption', { action: 'disable', oldPassword: PW_WRONG });
    assert.equal(r.status, 409);
    assert.equal((r.json as { failure: string }).failure, 'wrong-password');
    assert.equal(agent.device(udid)!.encryption.on, true);
  });

  it('turns it off with the stored password; no password ever reached a log line', async () => {
    const r = await post('/encryption', { action: 'disable' });
    assert.equal(r.status, 200, r.text);
    assert.equal((r.json as { on: boolean }).on, false);
    assert.ok(logs.length > 0, 'the agent logged something');
    for (const line of logs) {
      assert.ok(!line.includes(PW1) && !line.includes(PW_WRONG), `a password in: ${line}`);
    }
  });
});
