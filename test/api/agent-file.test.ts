/** agent.json, the persisted API token and the one-agent-per-folder lock, on real files. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile, chmod } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  acquireAgentLock,
  agentFilePath,
  loadOrCreateToken,
  lockFilePath,
  readAgentFile,
  removeAgentFile,
  tokenFilePath,
  writeAgentFile,
} from '../../src/api/agent-file';

describe('agent files', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'mooring-agent-file-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes agent.json 0600, reads it back, and removes only its own', async () => {
    const info = { url: 'http://127.0.0.1:5', token: 't', pid: process.pid, startedAt: 1 };
    await writeAgentFile(dir, info);
    assert.equal((await stat(agentFilePath(dir))).mode & 0o777, 0o600);
    assert.deepEqual(await readAgentFile(dir), info);
    await writeAgentFile(dir, { ...info, pid: process.pid + 1 });
    await removeAgentFile(dir);
    assert.ok(await readAgentFile(dir), "another agent's file stays");
    await writeAgentFile(dir, info);
    await removeAgentFile(dir);
    assert.equal(await readAgentFile(dir), undefined);
    await writeFile(agentFilePath(dir), '{"url": 5}');
    assert.equal(await readAgentFile(dir), undefined);
  });

  it('creates the token once (43 base64url characters, 0600) and reuses it', async () => {
    const t = await loadOrCreateToken(dir);
    assert.match(t, /^[A-Za-z0-9_-]{43}$/);
    assert.equal((await stat(tokenFilePath(dir))).mode & 0o777, 0o600);
    await chmod(tokenFilePath(dir), 0o644);
    assert.equal(await loadOrCreateToken(dir), t);
    assert.equal((await stat(tokenFilePath(dir))).mode & 0o777, 0o600);
    await writeFile(tokenFilePath(dir), 'garbage');
    const fresh = await loadOrCreateToken(dir);
    assert.notEqual(fresh, t);
    assert.equal((await readFile(tokenFilePath(dir), 'utf8')).trim(), fresh);
  });

  it('lets one agent claim a folder, refuses a second, and takes over a dead one', async () => {
    const lock = await acquireAgentLock(dir);
    await assert.rejects(
      acquireAgentLock(dir),
      /another Mooring agent \(pid \d+\) is already running/,
    );
    await lock.release();
    const again = await acquireAgentLock(dir);
    await again.release();

    // A lock left by a process that has exited.
    const child = spawn(process.execPath, ['-e', '']);
    const pid = child.pid!;
    await new Promise((r) => child.on('exit', r));
    await writeFile(lockFilePath(dir), `${pid}\n`);
    const taken = await acquireAgentLock(dir);
    assert.equal((await readFile(lockFilePath(dir), 'utf8')).trim(), String(process.pid));
    await taken.release();
    await assert.rejects(stat(lockFilePath(dir)), /ENOENT/);
  });
});
