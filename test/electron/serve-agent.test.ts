/**
 * The desktop app serves the agent it hosts as `mooring agent` does (src/api/serve-agent.ts):
 * the API and UI on loopback with the data folder's persisted token, agent.json naming them for
 * the CLI, a free port when the usual one is taken, and agent.json gone after close. Against a
 * real Agent (no USB, no Bonjour) and real HTTP on 127.0.0.1.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { AgentService } from '../../src/agent/types';
import { agentFilePath, loadOrCreateToken, readAgentFile } from '../../src/api/agent-file';
import { DEFAULT_API_LISTEN, serveAgent } from '../../src/api/serve-agent';
import { startBareAgent, type BareAgent } from '../helpers/agent-server';

async function occupiedPort(): Promise<{ port: number; close(): Promise<void> }> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return {
    port: (s.address() as net.AddressInfo).port,
    close: () => new Promise<void>((r) => s.close(() => r())),
  };
}

describe('serveAgent (the desktop app and `mooring agent`)', () => {
  let t: BareAgent;
  let tmp: string;
  let service: AgentService;

  before(async () => {
    t = await startBareAgent('mooring-serve-');
    tmp = t.tmp;
    service = t.agent;
  });
  after(() => t?.close());

  it('listens on 127.0.0.1:47110 by default (the CLI looks there)', () => {
    assert.deepEqual(DEFAULT_API_LISTEN, { host: '127.0.0.1', port: 47110 });
  });

  it('serves the API with the persisted token and names it in agent.json, removed on close', async () => {
    const served = await serveAgent(service, {
      dataDir: tmp,
      listen: { host: '127.0.0.1', port: 0 },
    });
    try {
      assert.equal(served.token, await loadOrCreateToken(tmp), 'the same token as before');
      const file = await readAgentFile(tmp);
      assert.deepEqual(file && { url: file.url, token: file.token, pid: file.pid }, {
        url: served.url,
        token: served.token,
        pid: process.pid,
      });
      assert.equal(served.url, `http://127.0.0.1:${served.port}`);
      const status = await fetch(`${served.url}/api/status`, {
        headers: { authorization: `Bearer ${served.token}` },
      });
      assert.equal(status.status, 200);
      assert.equal(((await status.json()) as { dataDir: string }).dataDir, tmp);
      const refused = await fetch(`${served.url}/api/status`);
      assert.equal(refused.status, 401);
    } finally {
      await served.close();
    }
    assert.equal(existsSync(agentFilePath(tmp)), false);
    await assert.rejects(fetch(`${served.url}/api/status`));
  });

  it('takes a free port when the usual one is busy, only when asked to', async () => {
    const busy = await occupiedPort();
    try {
      await assert.rejects(
        serveAgent(service, { dataDir: tmp, listen: { host: '127.0.0.1', port: busy.port } }),
        /already in use/,
      );
      assert.equal(existsSync(agentFilePath(tmp)), false, 'no agent.json for a failed start');
      const logged: string[] = [];
      const served = await serveAgent(service, {
        dataDir: tmp,
        listen: { host: '127.0.0.1', port: busy.port },
        anyPortIfBusy: true,
        log: (l) => logged.push(l),
      });
      try {
        assert.notEqual(served.port, busy.port);
        assert.equal((await readAgentFile(tmp))?.url, served.url);
        assert.match(logged.join('\n'), new RegExp(`127\\.0\\.0\\.1:${busy.port} is in use`));
        const r = await fetch(`${served.url}/api/devices`, {
          headers: { authorization: `Bearer ${served.token}` },
        });
        assert.deepEqual(await r.json(), []);
      } finally {
        await served.close();
      }
    } finally {
      await busy.close();
    }
  });
});
