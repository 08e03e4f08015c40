/** The device lock: one process at a time, stale locks broken, live ones never taken over. */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { promises as fsp, utimesSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openStore } from '../../src/store';
import { Worker } from 'node:worker_threads';
import {
  breakOwnStaleLock,
  DeviceLock,
  noteJobThread,
  releaseLockOfThread,
} from '../../src/store/lock';
import { isMooringError, type MooringError } from '../../src/util/errors';
import { sampleEntries, tempDirs, UDID, writeBackup } from './fixture';

const { tmp, cleanup } = tempDirs('mooring-lock-');
after(cleanup);

const locked = (e: unknown): e is MooringError =>
  isMooringError(e, 'USAGE') && e.detail === 'LOCKED';

test('two processes: the second cannot stage, prune or pin while the first holds the lock', async () => {
  const dest = tmp();
  await writeBackup(path.join(dest, UDID), sampleEntries(3));
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', path.join(__dirname, 'child.ts'), JSON.stringify({ dest, mode: 'hold' })],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
  try {
    const ready = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('\n')) resolve(out.trim());
      });
      child.on('close', () => reject(new Error(`child exited: ${stderr}`)));
    });
    assert.match(ready, /^ready \d{8}T\d{6}Z/);

    const store = await openStore(dest, UDID);
    assert.match(store.recovery.skipped ?? '', new RegExp(`process ${child.pid}`));
    await assert.rejects(
      store.beginStaging(),
      (e) => locked(e) && e.message.includes(String(child.pid)),
    );
    await assert.rejects(store.prune(), locked);
    await assert.rejects(store.pin('latest'), locked);
    // Reading needs no lock.
    assert.equal((await store.list()).length, 1);
    assert.ok((await store.verify()).ok);
    // The other process's staging is not ours to discard.
    assert.equal((await fsp.readdir(store.stagingDir)).length, 1);

    child.stdin.end();
    assert.equal(await exited, 0, stderr);
    const s = await store.beginStaging();
    await s.discard();
  } finally {
    child.kill('SIGKILL');
  }
});

test('stale locks are broken; live, foreign-host and freshly written ones are not', async () => {
  const dir = tmp();
  const file = path.join(dir, 'lock');
  const a = await DeviceLock.acquire(file, 'test');
  await assert.rejects(DeviceLock.acquire(file, 'test'), locked);
  await a.release();
  const b = await DeviceLock.acquire(file, 'test');
  assert.equal(b.brokeStale, undefined);
  await b.release();
  await assert.rejects(fsp.access(file));

  const boot = Date.now() - os.uptime() * 1000;
  const write = (c: Record<string, unknown>): Promise<void> =>
    fsp.writeFile(file, JSON.stringify({ token: 't', since: 'x', purpose: 'p', ...c }));
  // A process that has exited (and been reaped).
  const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
  await write({ pid: dead, host: os.hostname(), boot });
  const c = await DeviceLock.acquire(file, 'test');
  assert.match(c.brokeStale ?? '', new RegExp(`process ${dead} is gone`));
  await c.release();
  // A lock from before a reboot, even with a live pid.
  await write({ pid: process.ppid, host: os.hostname(), boot: boot - 3_600_000 });
  const d = await DeviceLock.acquire(file, 'test');
  assert.match(d.brokeStale ?? '', /reboot/);
  await d.release();
  // Another machine (a shared drive): cannot tell, so never broken.
  await write({ pid: dead, host: `not-${os.hostname()}`, boot });
  await assert.rejects(DeviceLock.acquire(file, 'test'), locked);
  // An empty lock file: a writer may be between create and write, unless it is old.
  await fsp.writeFile(file, '');
  await assert.rejects(DeviceLock.acquire(file, 'test'), locked);
  const old = (Date.now() - 60_000) / 1000;
  utimesSync(file, old, old);
  const e = await DeviceLock.acquire(file, 'test');
  assert.match(e.brokeStale ?? '', /unreadable/);
  assert.ok(await e.stillHeld());
  await e.release();
  assert.equal(await e.stillHeld(), false);
});

test("another thread's lock is live while it runs; once it has ended, its lock is removed", async () => {
  const file = path.join(tmp(), 'lock');
  // A real worker thread takes the lock and ends without releasing it (a backup job's thread
  // that died: job/job-thread, which registers its threads with noteJobThread).
  const code = `
    require(${JSON.stringify(require.resolve('tsx/cjs'))});
    const { parentPort, workerData } = require('node:worker_threads');
    const { DeviceLock } = require(${JSON.stringify(require.resolve('../../src/store/lock'))});
    DeviceLock.acquire(workerData, 'backup').then(() => parentPort.postMessage('held'));
  `;
  const w = new Worker(code, { eval: true, workerData: file });
  const thread = w.threadId; // -1 once it has ended
  noteJobThread(thread, true);
  const ended = new Promise((resolve) => w.once('exit', resolve));
  assert.equal(await new Promise((resolve) => w.once('message', resolve)), 'held');
  const held = JSON.parse(await fsp.readFile(file, 'utf8')) as { pid: number; thread: number };
  assert.deepEqual([held.pid, held.thread], [process.pid, thread]);
  // Same process, a running thread: not "a failed release of ours", so never broken.
  await assert.rejects(DeviceLock.acquire(file, 'verify'), locked);
  assert.equal(await breakOwnStaleLock(file), undefined);
  await w.terminate();
  await ended;
  // Its host removes exactly that thread's lock.
  assert.equal(await releaseLockOfThread(file, thread + 1), false);
  await assert.rejects(DeviceLock.acquire(file, 'verify'), locked);
  assert.equal(await releaseLockOfThread(file, thread), true);
  noteJobThread(thread, false);
  await assert.rejects(fsp.access(file));
  const mine = await DeviceLock.acquire(file, 'verify');
  assert.equal(mine.brokeStale, undefined);
  assert.equal(await releaseLockOfThread(file, thread), false, "ours is not that thread's");
  assert.equal(await breakOwnStaleLock(file), undefined, 'ours is live');
  assert.ok(await mine.stillHeld());
  await mine.release();
});

test('a lock an ended thread or a failed release of ours left is broken; live ones are not', async () => {
  const file = path.join(tmp(), 'lock');
  const boot = Date.now() - os.uptime() * 1000;
  const write = (c: Record<string, unknown>): Promise<void> =>
    fsp.writeFile(
      file,
      JSON.stringify({
        pid: process.pid,
        host: os.hostname(),
        boot,
        since: 'x',
        purpose: 'p',
        ...c,
      }),
    );
  // A thread of ours that has ended (the disk was away when its host tried to remove it).
  await write({ token: 'a', thread: 4242 });
  const a = await DeviceLock.acquire(file, 'test');
  assert.match(a.brokeStale ?? '', /thread 4242 of this process, which has ended/);
  await a.release();
  await write({ token: 'b', thread: 4242 });
  assert.match((await breakOwnStaleLock(file)) ?? '', /which has ended/);
  await assert.rejects(fsp.access(file));
  // The same thread while it runs: live.
  noteJobThread(4242, true);
  try {
    await write({ token: 'c', thread: 4242 });
    await assert.rejects(DeviceLock.acquire(file, 'test'), locked);
    assert.equal(await breakOwnStaleLock(file), undefined);
  } finally {
    noteJobThread(4242, false);
  }
  // This thread's own failed release, and a lock from before locks named their thread.
  await write({ token: 'd', thread: 0 });
  assert.match((await breakOwnStaleLock(file)) ?? '', /failed release/);
  await write({ token: 'e' });
  assert.match((await breakOwnStaleLock(file)) ?? '', /failed release/);
  // Another live process's lock is never ours to break.
  await write({ token: 'f', pid: process.ppid, thread: 7 });
  assert.equal(await breakOwnStaleLock(file), undefined);
  await assert.rejects(DeviceLock.acquire(file, 'test'), locked);
});
