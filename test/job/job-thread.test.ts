/**
 * runBackupJob: a backup on its own worker thread, against an in-process simulator over its
 * usbmuxd. The job really runs on another thread (the device's lock file names it), ends with
 * the same backup as an in-process job, hands the caller the session's values and its events,
 * stops on the caller's abort; a thread that dies fails the job with a reason (before the commit:
 * the latest stays; mid-commit: the commit is finished at once; out of memory: said so, and the
 * process goes on), on the store's record of attempts too, and leaves no lock behind; a thread
 * that cannot start falls back to the in-process job. A thread started before its job
 * (thread-start) runs it, or is ended when the job does not take it, and never holds the process;
 * a thread runs with the heap limits D36 and D49 chose.
 */
import assert from 'node:assert/strict';
import { promises as fsp, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it, test } from 'node:test';
import { threadId } from 'node:worker_threads';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { CRASH_AT_ENV, GC_STATS_ENV, runBackupJob, type JobEvent } from '../../src/job';
import {
  DEFAULT_JOB_WORKER,
  JOB_OLD_GENERATION_MB,
  JOB_YOUNG_GENERATION_MB,
  prestartJobThread,
  takeJobThread,
} from '../../src/job/thread-start';
import { UsbmuxEndpoint, type ValueReader } from '../../src/lockdown';
import type { PairRecord } from '../../src/pairing/pair-record';
import { startSim, type RunningSim } from '../../src/sim/index';
import { deviceLockFile, openStore, readAttempts } from '../../src/store';
import { isMooringError } from '../../src/util/errors';
import { pairedEndpoint } from '../discovery/sim-helpers';
import { tempDirs } from '../helpers/temp-dirs';

const { tmp, cleanup } = tempDirs('mooring-job-thread-');
after(cleanup);

/** The payload files of a backup folder, by relative path, with their sizes. */
async function payloads(dir: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const top of await fsp.readdir(dir)) {
    if (!/^[0-9a-f]{2}$/.test(top)) continue;
    for (const f of await fsp.readdir(path.join(dir, top))) {
      out.set(`${top}/${f}`, (await fsp.stat(path.join(dir, top, f))).size);
    }
  }
  return out;
}

/** Runs `fn` with `name` set in the environment (a thread copies the environment as it starts). */
async function withEnv<T>(name: string, value: string, fn: () => Promise<T>): Promise<T> {
  process.env[name] = value;
  try {
    return await fn();
  } finally {
    delete process.env[name];
  }
}

/** Runs `fn` with the job's test fault hook set. */
function withCrashAt<T>(at: string, fn: () => Promise<T>): Promise<T> {
  return withEnv(CRASH_AT_ENV, at, fn);
}

describe('runBackupJob', () => {
  let root: string;
  let sim: RunningSim;
  let record: PairRecord;
  let endpoint: UsbmuxEndpoint;

  before(async () => {
    root = tmp();
    sim = await startSim({
      stateDir: path.join(root, 'sim'),
      usbmuxd: `UNIX:${path.join(root, 'usbmuxd.sock')}`,
      files: 40,
      bytes: 2_000_000,
      seed: 73,
      name: 'Thread phone',
    });
    ({ record, endpoint } = await pairedEndpoint(sim, path.join(root, 'pair-records')));
  });
  after(async () => {
    await sim?.stop();
  });

  /** The store's record of the last attempt, which the thread did not live to write. */
  const lastAttempt = async (dest: string) =>
    (await readAttempts((await openStore(dest, sim.udid)).stateDir)).at(-1);

  const latestId = async (dest: string): Promise<string | undefined> => {
    const store = await openStore(dest, sim.udid);
    return (await store.list()).find((s) => s.isLatest)?.id;
  };

  /** The thread that held the device's lock while the device sent. */
  const lockHolder = (dest: string) => {
    const seen: { thread?: unknown } = {};
    return {
      seen,
      onEvent: (e: JobEvent): void => {
        if (e.type === 'progress' && !('thread' in seen)) {
          seen.thread = (
            JSON.parse(readFileSync(deviceLockFile(dest, sim.udid), 'utf8')) as { thread?: unknown }
          ).thread;
        }
      },
    };
  };

  it('runs on its own thread and makes the same backup as the in-process job', async () => {
    const dest = path.join(root, 'thread');
    const lockFile = deviceLockFile(dest, sim.udid);
    const events: JobEvent[] = [];
    const holder = lockHolder(dest);
    let values: ValueReader | undefined;
    const logged: string[] = [];
    const out = await runBackupJob({
      endpoint,
      record,
      dest,
      full: true,
      log: (l) => logged.push(l),
      onEvent: (e) => {
        events.push(e);
        holder.onEvent(e);
      },
      sessionReads: [{}, { domain: 'com.apple.mobile.backup', key: 'WillEncrypt' }],
      onSession: (v) => {
        values = v;
      },
    });
    assert.equal(out.ok, true, out.message);
    assert.equal(out.stage, 'commit');
    assert.deepEqual(logged, [], 'no fallback');
    assert.equal(typeof holder.seen.thread, 'number');
    assert.notEqual(holder.seen.thread, threadId, 'the lock was taken on another thread');
    assert.ok(out.snapshot && out.snapshot.date instanceof Date, 'the snapshot crossed whole');
    assert.equal(out.verify?.ok, true);
    assert.ok(events.some((e) => e.type === 'phase' && e.phase === 'transferring'));
    await assert.rejects(fsp.stat(lockFile), { code: 'ENOENT' }, 'the lock was released');

    // The session's values, read on the job's thread, answered here as a session would.
    assert.ok(values);
    assert.equal((await values.getDomain()).DeviceName, 'Thread phone');
    assert.equal(await values.getValue('com.apple.mobile.backup', 'WillEncrypt'), false);
    await assert.rejects(values.getValue('com.apple.mobile.backup', 'RequiresEncrypt'), (e) =>
      isMooringError(e, 'USAGE'),
    );

    const inProcessDest = path.join(root, 'in-process');
    const same = await runBackupJob({
      endpoint,
      record,
      dest: inProcessDest,
      full: true,
      thread: false,
    });
    assert.equal(same.ok, true, same.message);
    assert.equal(same.result.filesReceived, out.result.filesReceived);
    assert.deepEqual(
      await payloads(path.join(dest, sim.udid)),
      await payloads(path.join(inProcessDest, sim.udid)),
    );
  });

  it("the caller's abort stops the job on its thread; the latest stays", async () => {
    const dest = path.join(root, 'thread');
    const before = await latestId(dest);
    assert.ok(before);
    const ac = new AbortController();
    const out = await runBackupJob({
      endpoint,
      record,
      dest,
      signal: ac.signal,
      onEvent: (e) => {
        if (e.type === 'phase' && e.phase === 'locking') ac.abort();
      },
    });
    assert.equal(out.ok, false);
    assert.equal(out.result.cancelled, true);
    assert.equal(out.result.cancelledBy, 'user');
    assert.equal(await latestId(dest), before);
    await assert.rejects(fsp.stat(deviceLockFile(dest, sim.udid)), { code: 'ENOENT' });
  });

  it('a thread that dies before its commit fails the job, not the connection; the latest stays', async () => {
    const dest = path.join(root, 'thread');
    const before = await latestId(dest);
    const out = await withCrashAt('thread-exit:staging:created', () =>
      runBackupJob({ endpoint, record, dest }),
    );
    assert.equal(out.ok, false);
    assert.equal(out.stage, 'backup', 'a failure of ours, not of the device connection');
    assert.equal(out.result.failure, 'internal');
    assert.match(out.message, /its thread ended before the backup did.*previous backup is kept/);
    assert.ok(isMooringError(out.error, 'IO'));
    assert.match(out.recovered ?? '', /discarded 1 unfinished backup/, 'its staging is gone now');
    assert.equal(await latestId(dest), before);
    const attempt = await lastAttempt(dest);
    assert.ok(attempt);
    assert.equal(attempt.ok, false);
    assert.equal(attempt.failure, 'internal');
    assert.equal(attempt.message, out.message);
    assert.equal(attempt.transport, 'usb');
    await assert.rejects(fsp.stat(deviceLockFile(dest, sim.udid)), { code: 'ENOENT' });
  });

  it('a thread that runs out of memory fails the job with that reason; this thread, the latest and the next backup are fine', async () => {
    const dest = path.join(root, 'thread');
    const before = await latestId(dest);
    assert.ok(before);
    const out = await withCrashAt('thread-oom:staging:created', () =>
      runBackupJob({ endpoint, record, dest }),
    );
    assert.equal(out.ok, false);
    assert.equal(out.stage, 'backup');
    assert.equal(out.result.failure, 'internal');
    assert.match(out.message, /it ran out of memory; the previous backup is kept unchanged/);
    assert.equal(
      (out.error as { cause?: { code?: string } }).cause?.code,
      'ERR_WORKER_OUT_OF_MEMORY',
    );
    assert.equal(await latestId(dest), before);
    const attempt = await lastAttempt(dest);
    assert.deepEqual(
      [attempt?.ok, attempt?.failure, attempt?.message],
      [false, 'internal', out.message],
    );
    await assert.rejects(fsp.stat(deviceLockFile(dest, sim.udid)), { code: 'ENOENT' });

    const next = await runBackupJob({ endpoint, record, dest });
    assert.equal(next.ok, true, next.message);
    assert.notEqual(await latestId(dest), before);
  });

  it('a thread that dies mid-commit: its commit is finished at once and no lock is left', async () => {
    const dest = path.join(root, 'thread');
    const before = await latestId(dest);
    const out = await withCrashAt('thread-exit:commit:moved-latest', () =>
      runBackupJob({ endpoint, record, dest }),
    );
    assert.equal(out.ok, false);
    assert.equal(out.stage, 'commit');
    assert.match(out.message, /while committing it; the store finished the commit/);
    assert.match(out.recovered ?? '', /finished an interrupted commit/);
    const attempt = await lastAttempt(dest);
    assert.ok(attempt);
    assert.deepEqual(
      [attempt.ok, attempt.failure, attempt.message],
      [false, 'internal', out.message],
    );
    // It died after the device had sent everything: what it had received is on the record.
    assert.ok(attempt.filesReceived > 0 && attempt.bytesReceived > 0);
    assert.equal(out.result.filesReceived, attempt.filesReceived);
    // Its lock named a thread that is gone: removed, so the next job is not locked out.
    await assert.rejects(fsp.stat(deviceLockFile(dest, sim.udid)), { code: 'ENOENT' });
    // The device folder the commit had moved aside is whole again before any next backup.
    const list = await (await openStore(dest, sim.udid)).list();
    const latest = list.find((s) => s.isLatest);
    assert.ok(latest && latest.id !== before && list.some((s) => s.id === before));
    assert.equal((await fsp.stat(path.join(dest, sim.udid, 'Manifest.db'))).isFile(), true);

    const next = await runBackupJob({ endpoint, record, dest });
    assert.equal(next.ok, true, next.message);
    assert.equal(next.recovered, undefined, 'nothing was left for it to recover');
  });

  it(`${GC_STATS_ENV}=1: the thread reports its garbage collections, once, before its outcome`, async () => {
    const logged: string[] = [];
    const out = await withEnv(GC_STATS_ENV, '1', () =>
      runBackupJob({ endpoint, record, dest: path.join(root, 'gc'), log: (l) => logged.push(l) }),
    );
    assert.equal(out.ok, true, out.message);
    assert.equal(logged.length, 1, logged.join('\n'));
    assert.match(
      logged[0]!,
      /^the backup's thread collected garbage: \d+ full \(\d+ ms\), \d+ young \(\d+ ms\)$/,
    );
  });

  it('a thread started before its job is known runs the job', async () => {
    const dest = path.join(root, 'prestarted');
    const id = prestartJobThread({ usbmuxd: true });
    assert.equal(typeof id, 'number');
    const holder = lockHolder(dest);
    const logged: string[] = [];
    const out = await runBackupJob({
      endpoint,
      record,
      dest,
      full: true,
      onEvent: holder.onEvent,
      log: (l) => logged.push(l),
    });
    assert.equal(out.ok, true, out.message);
    assert.deepEqual(logged, []);
    assert.equal(holder.seen.thread, id, 'the prestarted thread held the lock');
  });

  it('a prestarted thread a job does not take is ended; the next job gets a thread of its own', async () => {
    const dest = path.join(root, 'prestarted');
    const unused = prestartJobThread();
    assert.equal(typeof unused, 'number');
    const inProcess = await runBackupJob({ endpoint, record, dest, thread: false });
    assert.equal(inProcess.ok, true, inProcess.message);
    const holder = lockHolder(dest);
    const out = await runBackupJob({ endpoint, record, dest, onEvent: holder.onEvent });
    assert.equal(out.ok, true, out.message);
    assert.equal(typeof holder.seen.thread, 'number');
    assert.notEqual(holder.seen.thread, unused);
    assert.notEqual(holder.seen.thread, threadId);
  });

  for (const prestarted of [false, true]) {
    it(`a thread that cannot load${prestarted ? ', started before its job' : ''}: the job runs in-process and says why`, async () => {
      const dest = path.join(root, prestarted ? 'prestarted-missing' : 'fallback');
      if (prestarted)
        assert.equal(typeof prestartJobThread({ workerName: 'no-such.worker' }), 'number');
      const logged: string[] = [];
      const out = await runBackupJob({
        endpoint,
        record,
        dest,
        workerName: 'no-such.worker',
        log: (l) => logged.push(l),
      });
      assert.equal(out.ok, true, out.message);
      assert.equal(logged.length, 1);
      assert.match(
        logged[0]!,
        new RegExp(`the backup of ${sim.udid} runs in-process: .*no-such\\.worker`),
      );
    });
  }
});

test('a prestarted thread no job takes does not keep the process alive', () => {
  const ROOT = path.resolve(__dirname, '..', '..');
  const out = execFileSync(
    process.execPath,
    [
      '--import',
      'tsx',
      '-e',
      `const id = require('./src/job/thread-start').prestartJobThread({ usbmuxd: true });
       console.log(typeof id);`,
    ],
    { cwd: ROOT, encoding: 'utf8', timeout: 30_000 },
  );
  assert.equal(out.trim(), 'number');
});

test('a job thread runs with its young (D36) and old (D49) generation limits', async () => {
  const t = takeJobThread(DEFAULT_JOB_WORKER);
  if (t.notStarted !== undefined) assert.fail(t.notStarted);
  const worker = t.worker;
  try {
    await once(worker, 'online');
    const limits = worker.resourceLimits;
    assert.equal(limits?.maxYoungGenerationSizeMb, JOB_YOUNG_GENERATION_MB);
    assert.equal(limits?.maxOldGenerationSizeMb, JOB_OLD_GENERATION_MB);
  } finally {
    await worker.terminate();
  }
});
