/**
 * `npm start` (scripts/start.js): the tray app where Electron and a display exist, else the headless
 * agent. Electron cannot run here, so the end-to-end test is the headless path with the embedded
 * simulator — README's main command — through the compiled bin/ that `npm install` builds.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { readAgentFile } from '../../src/api/agent-file';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { chooseMode } = require('../../scripts/start.js') as {
  chooseMode(o: {
    argv: string[];
    electronPath: string | null;
    platform: string;
    env: Record<string, string | undefined>;
  }): { mode: 'app' | 'agent'; why: string };
};

const ROOT = path.join(__dirname, '..', '..');

describe('npm start', () => {
  it('chooses the tray app only with Electron and a display, and never for --sim', () => {
    const e = '/opt/electron/electron';
    const rows: [string[], string | null, string, Record<string, string>, 'app' | 'agent'][] = [
      [[], e, 'linux', { DISPLAY: ':0' }, 'app'],
      [[], e, 'linux', { WAYLAND_DISPLAY: 'wayland-0' }, 'app'],
      [[], e, 'linux', {}, 'agent'],
      [[], e, 'darwin', {}, 'app'],
      [[], e, 'win32', {}, 'app'],
      [[], null, 'darwin', {}, 'agent'],
      [['--sim'], e, 'darwin', {}, 'agent'],
      [['--headless'], e, 'linux', { DISPLAY: ':0' }, 'agent'],
    ];
    for (const [argv, electronPath, platform, env, want] of rows) {
      const got = chooseMode({ argv, electronPath, platform, env });
      assert.equal(got.mode, want, `${argv.join(' ')} ${platform} ${JSON.stringify(env)}`);
      assert.ok(got.why.length > 0);
    }
  });

  it('runs the headless agent with the simulated iPhone, which gets backed up; SIGTERM stops it cleanly', async () => {
    const tmp = await mkdtemp(path.join(os.tmpdir(), 'mooring-start-'));
    const env = { ...process.env, DISPLAY: '', WAYLAND_DISPLAY: '' };
    const child = spawn(
      process.execPath,
      [
        path.join(ROOT, 'scripts', 'start.js'),
        '--sim',
        '--data',
        path.join(tmp, 'data'),
        '--listen',
        '127.0.0.1:0',
      ],
      { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    try {
      const deadline = Date.now() + 60_000;
      let url: URL | undefined;
      while (!url) {
        const m = /Mooring agent: (http:\/\/127\.0\.0\.1:\d+)\/login\?code=[A-Za-z0-9_-]+/.exec(
          out,
        );
        if (m) url = new URL(m[1]!);
        else if (Date.now() > deadline || child.exitCode !== null)
          assert.fail(`no URL line; stderr:\n${err}`);
        else await new Promise((r) => setTimeout(r, 100));
      }
      assert.match(err, /Starting the headless agent \(--sim runs the headless agent\)/);
      // The token is never printed: programs read it from agent.json.
      const token = (await readAgentFile(path.join(tmp, 'data')))!.token;
      const get = async (p: string): Promise<unknown> => {
        const res = await fetch(new URL(p, url), { headers: { authorization: `Bearer ${token}` } });
        assert.equal(res.status, 200);
        return res.json();
      };
      // The simulated iPhone is paired by itself and backed up on the default schedule.
      let done = false;
      while (!done) {
        const page = (await get('/api/attempts?limit=5')) as { items: { outcome: string }[] };
        done = page.items.some((a) => a.outcome === 'success');
        if (!done && Date.now() > deadline) assert.fail(`no successful backup; stderr:\n${err}`);
        if (!done) await new Promise((r) => setTimeout(r, 250));
      }
      const status = (await get('/api/status')) as { devices: { paired: boolean }[] };
      assert.equal(status.devices.length, 1);
      assert.equal(status.devices[0]!.paired, true);
      child.kill('SIGTERM');
      assert.equal(await exited, 0, err);
    } finally {
      child.kill('SIGKILL');
      await rm(tmp, { recursive: true, force: true });
    }
  });
});
