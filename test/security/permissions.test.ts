/**
 * Secrets on disk are the user's only, and never in the agent's output (issue 7). Real runs, real
 * files: `mooring pair` against a simulated iPhone, then `mooring agent` as a child process that
 * backs the device up and is used through its API (including refused attempts that carry secrets:
 * a wrong sign-in, the token in a URL), then stopped; then the backup password store. All of it
 * under umask 000, so a file created without an explicit mode would show up as world-readable.
 * POSIX only (Windows has no mode bits; the data folder is in the user's profile there).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readdir, readFile, stat } from 'node:fs/promises';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  agentFilePath,
  lockFilePath,
  readAgentFile,
  tokenFilePath,
} from '../../src/api/agent-file';
import { parsePairRecord } from '../../src/pairing/pair-record';
import { FileSecretStore, secretsDir } from '../../src/secrets';
import { startSim, type RunningSim } from '../../src/sim/index';
import { pairRecordStoreDir } from '../../src/util/paths';
import { URL_LINE } from '../helpers/agent-harness';
import { mooring } from '../cli/run-cli';

const ROOT = path.join(__dirname, '..', '..');
const BIN = path.join(ROOT, 'src', 'bin', 'mooring.ts');
const WAIT_MS = 90_000;
const BACKUP_PASSWORD = 'a backup password 0f the user';
const WRONG_SIGN_IN = 'guessed-password-xyzzy-123';

async function mode(p: string): Promise<number> {
  return (await stat(p)).mode & 0o777;
}

/** Every file under `dir` with its mode (the folders too). */
async function modes(dir: string): Promise<Map<string, number>> {
  const out = new Map<string, number>([[dir, await mode(dir)]]);
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) for (const [k, v] of await modes(p)) out.set(k, v);
    else out.set(p, await mode(p));
  }
  return out;
}

describe('permissions and secrets in logs', { skip: process.platform === 'win32' }, () => {
  let tmp: string;
  let data: string;
  let sim: RunningSim;
  let child: ChildProcess | undefined;
  let oldUmask: number;
  let output = '';
  let token = '';
  let agentFileMode = -1;

  before(async () => {
    oldUmask = process.umask(0o000);
    tmp = await mkdtemp(path.join(os.tmpdir(), 'mooring-perms-'));
    data = path.join(tmp, 'data');
    sim = await startSim({ stateDir: path.join(tmp, 'sim'), files: 12, bytes: 60_000, seed: 71 });
    const paired = await mooring('pair', '--usbmuxd', sim.usbmuxdAddress, '--data', data);
    assert.equal(paired.code, 0, paired.err);
    output += paired.out + paired.err;

    const env: NodeJS.ProcessEnv = { ...process.env };
    delete env.MOORING_TOKEN;
    delete env.USBMUXD_SOCKET_ADDRESS;
    const c = spawn(
      process.execPath,
      ['--import', 'tsx', BIN, 'agent', '--data', data, '--listen', '127.0.0.1:0'].concat([
        '--usbmuxd',
        sim.usbmuxdAddress,
        '--mdns-interface',
        'off',
      ]),
      { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child = c;
    const exited = new Promise<number | null>((r) => c.on('close', (code) => r(code)));
    c.stderr!.setEncoding('utf8').on('data', (s: string) => (output += s));
    const line = await new Promise<string>((resolve, reject) => {
      let buf = '';
      const timer = setTimeout(() => reject(new Error(`no URL line:\n${output}`)), WAIT_MS);
      c.stdout!.setEncoding('utf8').on('data', (s: string) => {
        output += s;
        buf += s;
        const nl = buf.indexOf('\n');
        if (nl >= 0) {
          clearTimeout(timer);
          resolve(buf.slice(0, nl));
        }
      });
      void exited.then((code) => reject(new Error(`agent exited (${code}):\n${output}`)));
    });
    const m = URL_LINE.exec(line);
    assert.ok(m, line);
    const base = m[2]!;
    const file = await readAgentFile(data);
    assert.ok(file);
    token = file.token;
    agentFileMode = await mode(agentFilePath(data));
    const auth = { authorization: `Bearer ${token}` };

    // Use it as people and attackers would: a backup, a wrong sign-in, the token in URLs.
    const started = await fetch(`${base}/api/devices/${sim.udid}/backup`, {
      method: 'POST',
      headers: auth,
    });
    // 409: the schedule started one as soon as the device appeared, which is as good.
    assert.ok([202, 409].includes(started.status), await started.text());
    const deadline = Date.now() + WAIT_MS;
    for (;;) {
      const page = (await (
        await fetch(`${base}/api/attempts?limit=5`, { headers: auth })
      ).json()) as {
        items: Array<{ outcome: string }>;
      };
      if (page.items.some((a) => a.outcome !== 'running')) {
        assert.equal(page.items[0]!.outcome, 'success', JSON.stringify(page.items));
        break;
      }
      assert.ok(Date.now() < deadline, `no finished backup:\n${output}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    const wrong = await fetch(`${base}/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `secret=${WRONG_SIGN_IN}`,
      redirect: 'manual',
    });
    assert.equal(wrong.status, 401);
    for (const p of [
      `/?token=${token}`,
      `/api/status?token=${token}`,
      `/api/nope?token=${token}`,
    ]) {
      assert.ok((await fetch(`${base}${p}`)).status >= 400, p);
    }
    const bad = await fetch(
      `${base}/api/devices/${sim.udid}/snapshots/latest/file?domain=HomeDomain&path=${token}`,
      {
        headers: auth,
      },
    );
    assert.ok(bad.status >= 400);

    c.kill('SIGTERM');
    assert.equal(await exited, 0, output);
    child = undefined;

    // The backup password store, written by its real code into the same data folder.
    await new FileSecretStore(secretsDir(data)).set(sim.udid, BACKUP_PASSWORD);
  });

  after(async () => {
    process.umask(oldUmask);
    child?.kill('SIGKILL');
    await sim?.stop();
    await rm(tmp, { recursive: true, force: true });
  });

  it('keeps the data folder, pair records, token, agent.json, lock and secrets to the user (0700/0600)', async () => {
    assert.equal(agentFileMode, 0o600, 'agent.json while the agent ran');
    assert.equal(await mode(data), 0o700, 'the data folder');
    assert.equal(await mode(tokenFilePath(data)), 0o600, 'api-token');
    const records = await modes(pairRecordStoreDir(data));
    assert.ok(records.size >= 2, 'a pair record was written');
    for (const [p, m] of records) {
      assert.equal(m, p === pairRecordStoreDir(data) ? 0o700 : 0o600, p);
    }
    const secrets = await modes(secretsDir(data));
    assert.ok(secrets.size >= 2, 'a secret record was written');
    for (const [p, m] of secrets) assert.equal(m, p === secretsDir(data) ? 0o700 : 0o600, p);
    // Stopped cleanly: agent.json and the lock are gone.
    await assert.rejects(stat(agentFilePath(data)));
    await assert.rejects(stat(lockFilePath(data)));
  });

  it('never writes the token, a sign-in attempt, a pair record key or a backup password to its output', async () => {
    assert.ok(output.length > 0 && /Mooring agent: http/.test(output));
    const records = await readdir(pairRecordStoreDir(data));
    const record = parsePairRecord(
      await readFile(
        path.join(
          pairRecordStoreDir(data),
          records.find((n) => n.endsWith('.plist'))!,
        ),
      ),
    );
    // A line from the middle of each private key (PEM bodies are what a leak would print).
    const keys = [record.HostPrivateKey, record.RootPrivateKey].map(
      (pem) => pem.toString('utf8').split('\n')[5]!,
    );
    const secrets: Array<[string, string]> = [
      ['the API token', token],
      ['a wrong sign-in secret', WRONG_SIGN_IN],
      ['the backup password', BACKUP_PASSWORD],
      ...keys.map((k, i): [string, string] => [`private key ${i}`, k]),
    ];
    const flat = output.replace(/\s+/g, '');
    for (const [what, secret] of secrets) {
      assert.ok(secret.length >= 20, what);
      assert.ok(
        !output.includes(secret) && !flat.includes(secret.replace(/\s+/g, '')),
        `${what} in the output`,
      );
    }
  });
});
