/** The job gate: one backup per device, a global limit, FIFO waiting, cancellation. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Coordinator, type Job } from '../../src/scheduler/coordinator';
import { decide, resolvePolicy } from '../../src/scheduler/policy';

function take(c: Coordinator, udid: string, label?: string): Job {
  const r = c.tryAcquire(udid, label);
  assert.ok(r.ok, `expected a slot for ${udid}, got ${JSON.stringify(r)}`);
  return r.job;
}

test('one job per device, a global limit, and load() for decide()', () => {
  const c = new Coordinator({ concurrency: 2, now: () => new Date('2024-06-12T10:00:00Z') });
  const a = take(c, 'A', 'schedule');
  assert.deepEqual(c.tryAcquire('A'), { ok: false, reasonCode: 'ALREADY_RUNNING' });
  take(c, 'B');
  assert.deepEqual(c.tryAcquire('C'), { ok: false, reasonCode: 'CONCURRENCY_LIMIT' });
  assert.deepEqual(c.load(), { running: 2, concurrency: 2 });
  assert.equal(c.isRunning('A'), true);
  assert.equal(a.label, 'schedule');
  assert.deepEqual(a.startedAt, new Date('2024-06-12T10:00:00Z'));
  assert.deepEqual(
    c.running().map((j) => j.udid),
    ['A', 'B'],
  );
  // decide() sees the same numbers.
  const d = decide(
    new Date(),
    'UTC',
    resolvePolicy(),
    {
      reachable: { usb: true, wifi: false },
      attemptsToday: 0,
      consecutiveFailures: 0,
      running: c.isRunning('C'),
    },
    c.load(),
  );
  assert.equal(d.action === 'skip' && d.reasonCode, 'CONCURRENCY_LIMIT');
  a.release();
  a.release(); // idempotent: must not free a second slot
  assert.equal(c.isRunning('A'), false);
  take(c, 'C');
  assert.deepEqual(c.tryAcquire('D'), { ok: false, reasonCode: 'CONCURRENCY_LIMIT' });
});

test('acquire waits first come, first served; cancel and abort leave the queue', async () => {
  const c = new Coordinator({ concurrency: 1 });
  const a = take(c, 'A');
  const order: string[] = [];
  const pB = c.acquire('B').then((r) => (order.push('B'), r));
  const ac = new AbortController();
  const pC = c.acquire('C', { signal: ac.signal }).then((r) => (order.push('C'), r));
  const pD = c.acquire('D').then((r) => (order.push('D'), r));
  const pE = c.acquire('E').then((r) => (order.push('E'), r));
  assert.deepEqual(
    await c.acquire('B'),
    { ok: false, reasonCode: 'ALREADY_RUNNING' },
    'B already waits',
  );
  assert.deepEqual(c.tryAcquire('F'), { ok: false, reasonCode: 'CONCURRENCY_LIMIT' });
  assert.equal(c.isQueued('D'), true);

  ac.abort();
  assert.deepEqual(await pC, { ok: false, reasonCode: 'CANCELLED' });
  assert.equal(c.cancel('E'), true);
  assert.deepEqual(await pE, { ok: false, reasonCode: 'CANCELLED' });

  a.release();
  const rB = await pB;
  assert.ok(rB.ok);
  assert.equal(c.isRunning('B'), true);
  assert.equal(c.isQueued('D'), true, 'D waits for the next slot');
  rB.job.release();
  const rD = await pD;
  assert.ok(rD.ok);
  assert.deepEqual(order, ['C', 'E', 'B', 'D']);
  assert.equal(c.cancel('nobody'), false);
});

test('a waiter is not overtaken by tryAcquire when a slot frees', async () => {
  const c = new Coordinator({ concurrency: 1 });
  const a = take(c, 'A');
  const pB = c.acquire('B');
  a.release();
  assert.deepEqual(c.tryAcquire('C'), { ok: false, reasonCode: 'CONCURRENCY_LIMIT' });
  assert.ok((await pB).ok);
});

test('an already aborted signal does not queue', async () => {
  const c = new Coordinator({ concurrency: 1 });
  take(c, 'A');
  assert.deepEqual(await c.acquire('B', { signal: AbortSignal.abort() }), {
    ok: false,
    reasonCode: 'CANCELLED',
  });
  assert.equal(c.isQueued('B'), false);
});

test('raising the limit lets waiters in; lowering never cuts running jobs', async () => {
  const c = new Coordinator({ concurrency: 1 });
  take(c, 'A');
  const pB = c.acquire('B');
  c.setConcurrency(2);
  assert.ok((await pB).ok);
  c.setConcurrency(1);
  assert.deepEqual(c.load(), { running: 2, concurrency: 1 });
  assert.throws(() => c.setConcurrency(0), RangeError);
  assert.throws(() => new Coordinator({ concurrency: 1.5 }), RangeError);
});

test('cancel aborts the running job with the reason; the slot stays until it stops', () => {
  const c = new Coordinator({ concurrency: 1 });
  const a = take(c, 'A');
  const reason = new Error('device left Wi-Fi');
  assert.equal(c.cancel('A', reason), true);
  assert.equal(a.signal.aborted, true);
  assert.equal(a.signal.reason, reason);
  assert.equal(c.isRunning('A'), true, 'still running until the work has stopped');
  a.cancel(new Error('second cancel is ignored'));
  assert.equal(a.signal.reason, reason);
  a.release();
  assert.equal(c.isRunning('A'), false);
});

test('run(): releases on success, on rejection and on a synchronous throw', async () => {
  const c = new Coordinator({ concurrency: 1 });
  const ok = c.run('A', async (job) => `done ${job.udid}`);
  assert.ok(ok.ok);
  assert.deepEqual(
    c.run('B', async () => 1),
    { ok: false, reasonCode: 'CONCURRENCY_LIMIT' },
  );
  assert.equal(await ok.done, 'done A');
  assert.equal(c.isRunning('A'), false);

  const bad = c.run('A', async () => {
    throw new Error('backup failed');
  });
  assert.ok(bad.ok);
  await assert.rejects(bad.done, /backup failed/);
  assert.equal(c.isRunning('A'), false);

  const sync = c.run('A', () => {
    throw new Error('sync throw');
  });
  assert.ok(sync.ok);
  await assert.rejects(sync.done, /sync throw/);
  assert.equal(c.load().running, 0);
});

test('shutdown: cancelAll aborts running jobs and empties the queue; whenIdle resolves when all stopped', async () => {
  const c = new Coordinator({ concurrency: 2 });
  const stopped: string[] = [];
  const work = (job: Job): Promise<void> =>
    new Promise<void>((resolve) => {
      job.signal.addEventListener('abort', () => {
        stopped.push(job.udid);
        resolve();
      });
    });
  const a = c.run('A', work);
  const b = c.run('B', work);
  assert.ok(a.ok && b.ok);
  const pC = c.acquire('C');
  let idle = false;
  const whenIdle = c.whenIdle().then(() => (idle = true));
  assert.equal(c.cancelAll(new Error('agent shutting down')), 2);
  assert.deepEqual(await pC, { ok: false, reasonCode: 'CANCELLED' });
  await Promise.all([a.done, b.done]);
  await whenIdle;
  assert.equal(idle, true);
  assert.deepEqual(stopped.sort(), ['A', 'B']);
  await c.whenIdle(); // already idle: resolves at once
});
