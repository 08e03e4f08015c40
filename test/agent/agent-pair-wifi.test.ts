/**
 * Pairing and the Wi-Fi switch from the agent (and its HTTP API), against a simulated iPhone on
 * USB whose "Trust This Computer?" dialog is answered with `ctl trust accept|deny`: an unpaired
 * device is listed as NOT_PAIRED with what to do; nobody answering ends the bounded wait with a
 * clear message; "Don't Trust" leaves it unpaired and says so; "Trust" saves the record where
 * `mooring pair` saves it and the device is then contacted and backed up; Wi-Fi connections are
 * switched off and on again on the device and shown in its status.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { Agent } from '../../src/agent/agent';
import type { PairResult } from '../../src/agent/types';
import { AgentApiError, AgentClient } from '../../src/api/client';
import type { RunningApiServer } from '../../src/api/server';
import type { RunningSim } from '../../src/sim/index';
import { isMooringError } from '../../src/util/errors';
import { serveOnLoopback } from '../helpers/agent-server';
import {
  nextAttempt,
  simFixture,
  type SimFixture,
  untilOnUsb,
  waitForEvent,
} from './agent-helpers';

const TOKEN = 'pair-wifi-test-token-0123456789abcdef';
const PAIR_WAIT_MS = 3000;

describe('Agent: pairing and Wi-Fi from the agent', () => {
  let f: SimFixture;
  let dataDir: string;
  let sim: RunningSim;
  let agent: Agent;
  let server: RunningApiServer;
  let client: AgentClient;
  let udid: string;

  async function simStatus(): Promise<{
    trustDialog: string;
    pairedHosts: string[];
    wifiConnections: boolean;
  }> {
    return (await sim.ctl('status')) as {
      trustDialog: string;
      pairedHosts: string[];
      wifiConnections: boolean;
    };
  }

  /** Resolves once the device shows the Trust dialog (polls its status; bounded). */
  async function dialogShown(): Promise<void> {
    for (let i = 0; i < 200; i++) {
      if ((await simStatus()).trustDialog === 'showing') return;
      await delay(50);
    }
    throw new Error('the Trust dialog never showed');
  }

  async function answered(p: Promise<PairResult>, answer: 'accept' | 'deny'): Promise<PairResult> {
    await dialogShown();
    await sim.ctl('trust', { answer });
    return p;
  }

  before(async () => {
    f = await simFixture(
      'mooring-agent-pair-',
      { files: 10, bytes: 100_000, seed: 29, name: 'Pairing iPhone', trust: 'prompt' },
      { pair: false },
    );
    ({ sim, udid, dataDir } = f);
    agent = await Agent.open(f.agentOptions({ pairWaitMs: PAIR_WAIT_MS }));
    agent.setConfig({ enabled: 'false' }); // only the backups the test asks for
    await agent.start();
    server = await serveOnLoopback(agent, TOKEN);
    client = new AgentClient(server.url, TOKEN);
    await untilOnUsb(agent, udid);
  });
  after(async () => {
    await server?.close();
    await agent?.stop();
    await f?.close();
  });

  it('lists an unpaired device on USB as NOT_PAIRED, saying to pair it', async () => {
    const d = agent.devices().find((x) => x.udid === udid);
    assert.ok(d, 'listed');
    assert.equal(d.paired, false);
    assert.equal(d.next.code, 'NOT_PAIRED');
    assert.match(d.next.message, /connect it by USB, unlock it and pair it/);
    assert.equal(d.wifiBackups, null, 'never talked to');
    const r = await agent.backupNow(udid);
    assert.equal(r.code, 'NOT_PAIRED');
    await assert.rejects(agent.setWifi(udid, true), (e: unknown) => {
      return isMooringError(e, 'USAGE') && /not paired with this computer/.test(e.message);
    });
  });

  it('ends the wait with a clear message when nobody answers', async () => {
    const r = await agent.pair(udid);
    assert.equal(r.paired, false);
    assert.match(r.message, /Nobody answered "Trust This Computer\?" .* within 3 seconds/);
    assert.equal(agent.device(udid)?.paired, false);
  });

  it('"Don\'t Trust" leaves it unpaired and says what to do (through the API: 409)', async () => {
    const r = await answered(client.pair(udid), 'deny');
    assert.equal(r.paired, false);
    assert.match(r.message, /tapped "Don't Trust".*pair again and tap "Trust"/);
    assert.equal((await client.device(udid))?.paired, false);
    assert.deepEqual((await simStatus()).pairedHosts, []);
    assert.equal(existsSync(path.join(dataDir, 'pair-records', `${udid}.plist`)), false);
  });

  it('"Trust" pairs it: record saved, first contact, then it is backed up', async () => {
    const contacted = waitForEvent(agent, 'the first contact', (e) =>
      e.type === 'device' && e.device.udid === udid && e.device.name !== null
        ? e.device
        : undefined,
    );
    const r = await answered(agent.pair(udid), 'accept');
    assert.equal(r.paired, true, r.message);
    assert.match(r.message, /^Paired with Pairing iPhone/);
    assert.ok(existsSync(path.join(dataDir, 'pair-records', `${udid}.plist`)), 'Mooring store');
    assert.equal((await simStatus()).pairedHosts.length, 1);

    const d = await contacted;
    assert.equal(d.paired, true);
    assert.equal(d.name, 'Pairing iPhone');
    assert.notEqual(agent.device(udid)?.next.code, 'NOT_PAIRED');
    assert.equal(agent.device(udid)?.wifiBackups, true, 'read at first contact');

    const done = nextAttempt(agent, udid, (a) => a.outcome !== 'running', 'the backup');
    const started = await agent.backupNow(udid);
    assert.equal(started.started, true, started.message);
    const a = await done;
    assert.equal(a.outcome, 'success', a.message ?? '');
  });

  it('switches Wi-Fi connections off and on, on the device and in its status', async () => {
    assert.deepEqual(await agent.setWifi(udid, false), { on: false });
    assert.equal((await simStatus()).wifiConnections, false);
    assert.equal(agent.device(udid)?.wifiBackups, false);

    assert.deepEqual(await client.setWifi(udid, true), { on: true });
    assert.equal((await simStatus()).wifiConnections, true);
    assert.equal((await client.device(udid))?.wifiBackups, true);
  });

  it('refuses bad Wi-Fi and pairing requests with a 400 and a message', async () => {
    const post = async (p: string, body: unknown): Promise<{ status: number; text: string }> => {
      const res = await fetch(`${server.url}${p}`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' },
        body: JSON.stringify(body),
      });
      return { status: res.status, text: await res.text() };
    };
    const bad = await post(`/api/devices/${udid}/wifi`, { on: 'yes' });
    assert.equal(bad.status, 400);
    assert.match(bad.text, /expected a JSON object \{\\"on\\": true\}/);
    assert.equal((await post(`/api/devices/${udid}/pair`, { now: true })).status, 400);

    const unknown = '00008120-0000000000000001';
    await assert.rejects(
      client.setWifi(unknown, true),
      (e: unknown) =>
        e instanceof AgentApiError && e.status === 400 && /No device .* is known/.test(e.message),
    );
    await assert.rejects(
      client.pair(unknown),
      (e: unknown) =>
        e instanceof AgentApiError && e.status === 400 && /connect it by USB/.test(e.message),
    );
  });
});
