/**
 * The ticker on node:test mock timers (setTimeout and Date are virtual; node-cron runs on them),
 * so minutes and hours pass instantly and every assertion is about order and counts, not speed.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { getTasks } from 'node-cron';
import { Ticker, type TickInfo } from '../../src/scheduler/ticker';
import { isMooringError } from '../../src/util/errors';

const SEC = 1000;
const MIN = 60 * SEC;

async function flush(): Promise<void> {
  for (let i = 0; i < 6; i++) await new Promise<void>((r) => setImmediate(r));
}

/** Advance virtual time in steps small enough for node-cron to see each slot on time. */
async function advance(t: TestContext, ms: number, step = SEC): Promise<void> {
  for (let done = 0; done < ms; done += step) {
    t.mock.timers.tick(Math.min(step, ms - done));
    await flush();
  }
}

function useClock(t: TestContext, iso: string): void {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: new Date(iso).getTime() });
}

function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((r) => (open = r));
  return { wait, open };
}

function recorder(): { infos: TickInfo[]; onTick: (i: TickInfo) => void } {
  const infos: TickInfo[] = [];
  return { infos, onTick: (i) => void infos.push(i) };
}

test('ticks once a minute, on the minute', async (t) => {
  useClock(t, '2024-06-12T10:00:30Z');
  const r = recorder();
  const ticker = new Ticker({ timeZone: 'Europe/Berlin', onTick: r.onTick });
  ticker.start();
  await advance(t, 3 * MIN);
  assert.deepEqual(
    r.infos.map((i) => [i.reason, i.at.toISOString()]),
    [
      ['tick', '2024-06-12T10:01:00.000Z'],
      ['tick', '2024-06-12T10:02:00.000Z'],
      ['tick', '2024-06-12T10:03:00.000Z'],
    ],
  );
  assert.ok(r.infos.every((i) => i.slept === undefined && !i.signal.aborted));
  assert.equal(ticker.stats.nextWakeAt, null);
  await ticker.stop();
});

test('the cron expression is read in the given time zone', async (t) => {
  useClock(t, '2024-06-12T05:20:00Z'); // 01:20 in New York (EDT)
  const r = recorder();
  const ticker = new Ticker({
    timeZone: 'America/New_York',
    cronExpression: '30 1 * * *',
    onTick: r.onTick,
  });
  ticker.start();
  await advance(t, 15 * MIN, 5 * SEC);
  assert.deepEqual(
    r.infos.map((i) => i.at.toISOString()),
    ['2024-06-12T05:30:00.000Z'],
  );
  await ticker.stop();
});

test('idle: ten minutes, ten runs, no other timers', async (t) => {
  useClock(t, '2024-06-12T10:00:00Z');
  const r = recorder();
  const ticker = new Ticker({ timeZone: 'UTC', onTick: r.onTick });
  ticker.start();
  await advance(t, 10 * MIN, 5 * SEC);
  assert.equal(r.infos.length, 10);
  assert.equal(ticker.stats.runs, 10);
  await ticker.stop();
});

test('no overlap: ticks during a long run are skipped and counted', async (t) => {
  useClock(t, '2024-06-12T10:00:30Z');
  const g = gate();
  let calls = 0;
  const ticker = new Ticker({
    timeZone: 'UTC',
    onTick: async () => {
      calls++;
      if (calls === 1) await g.wait;
    },
  });
  ticker.start();
  await advance(t, 3 * MIN);
  assert.equal(calls, 1);
  assert.equal(ticker.stats.running, true);
  assert.equal(ticker.stats.skippedTicks, 2);
  g.open();
  await flush();
  assert.equal(ticker.stats.running, false);
  await advance(t, MIN);
  assert.equal(calls, 2);
  await ticker.stop();
});

test('wakeAt: runs at the requested moment, the earliest request wins', async (t) => {
  useClock(t, '2024-06-12T10:00:05Z');
  const r = recorder();
  const ticker = new Ticker({ timeZone: 'UTC', onTick: r.onTick });
  ticker.start();
  ticker.wakeAt(new Date('2024-06-12T10:00:35Z'));
  ticker.wakeAt(new Date('2024-06-12T10:00:20Z'));
  ticker.wakeAt(new Date('2024-06-12T10:00:50Z'));
  ticker.wakeAt(null);
  assert.deepEqual(ticker.stats.nextWakeAt, new Date('2024-06-12T10:00:20Z'));
  await advance(t, 14 * SEC);
  assert.equal(r.infos.length, 0);
  await advance(t, 2 * SEC);
  assert.deepEqual(
    r.infos.map((i) => [i.reason, i.at.toISOString()]),
    [['wakeup', '2024-06-12T10:00:20.000Z']],
  );
  assert.equal(
    ticker.stats.nextWakeAt,
    null,
    'a fired wakeup is gone; later ones must be asked again',
  );
  await advance(t, 45 * SEC);
  assert.deepEqual(
    r.infos.map((i) => i.reason),
    ['wakeup', 'tick'],
  );
  await ticker.stop();
});

test('wakeAt in the past runs after the minimum delay, not in a tight loop', async (t) => {
  useClock(t, '2024-06-12T10:00:05Z');
  const r = recorder();
  const ticker = new Ticker({ timeZone: 'UTC', onTick: r.onTick, minWakeDelayMs: 2 * SEC });
  ticker.start();
  ticker.wakeAt(new Date('2024-06-12T09:00:00Z'));
  await advance(t, SEC);
  assert.equal(r.infos.length, 0);
  await advance(t, SEC);
  assert.deepEqual(
    r.infos.map((i) => i.reason),
    ['wakeup'],
  );
  await ticker.stop();
});

test('a wakeup during a run is deferred, then runs right after it', async (t) => {
  useClock(t, '2024-06-12T10:00:05Z');
  const g = gate();
  const reasons: string[] = [];
  const ticker = new Ticker({
    timeZone: 'UTC',
    onTick: async (i) => {
      reasons.push(i.reason);
      if (reasons.length === 1) await g.wait;
    },
  });
  ticker.start();
  const first = ticker.poke();
  ticker.wakeAt(new Date('2024-06-12T10:00:10Z'));
  await advance(t, 10 * SEC);
  assert.deepEqual(reasons, ['poke']);
  assert.equal(ticker.stats.deferred, 1);
  g.open();
  await first;
  assert.deepEqual(reasons, ['poke', 'wakeup']);
  await ticker.stop();
});

test('poke: resolves after its run; pokes during a run coalesce into one more run', async (t) => {
  useClock(t, '2024-06-12T10:00:05Z');
  const g = gate();
  let calls = 0;
  const ticker = new Ticker({
    timeZone: 'UTC',
    onTick: async () => {
      calls++;
      if (calls === 1) await g.wait;
    },
  });
  ticker.start();
  const p1 = ticker.poke();
  const p2 = ticker.poke();
  const p3 = ticker.poke();
  let p2done = false;
  void p2.then(() => (p2done = true));
  await flush();
  assert.equal(calls, 1);
  assert.equal(p2done, false);
  g.open();
  await Promise.all([p1, p2, p3]);
  assert.equal(calls, 2);
  await ticker.poke();
  assert.equal(calls, 3);
  await ticker.stop();
});

test('a poke that lands as a run is finishing is not left for the next tick', async (t) => {
  useClock(t, '2024-06-12T10:00:05Z');
  let calls = 0;
  const ticker = new Ticker({ timeZone: 'UTC', onTick: () => void calls++ });
  ticker.start();
  const p1 = ticker.poke();
  // The run's loop has looked at `pending` and is on its way out, but has not cleared itself.
  await Promise.resolve();
  await Promise.resolve();
  let served = false;
  const p2 = ticker.poke().then(() => (served = true));
  await p1;
  await flush();
  assert.equal(served, true, 'the second poke was served without waiting for a tick');
  assert.equal(calls, 2);
  await p2;
  await ticker.stop();
});

for (const [wake, reason] of [
  ['2024-06-12T13:02:45Z', 'catch-up'], // the wake is far from a slot: node-cron only reports misses
  ['2024-06-12T13:02:10Z', 'tick'], // close enough after a slot: node-cron runs that slot too
] as const) {
  test(`sleep: hours without timers give one run (${reason}) that reports the gap`, async (t) => {
    useClock(t, '2024-06-12T10:00:30Z');
    const r = recorder();
    const ticker = new Ticker({ timeZone: 'UTC', onTick: r.onTick });
    ticker.start();
    await advance(t, 2 * MIN);
    assert.equal(r.infos.length, 2);
    // The machine sleeps for 3 h: the wall clock jumps, and the pending timer fires only after
    // the wake (timers run on a clock that stops during suspend).
    t.mock.timers.setTime(new Date(wake).getTime());
    t.mock.timers.tick(1);
    await flush();
    assert.deepEqual(
      r.infos.slice(2).map((i) => [i.reason, i.slept]),
      [
        [
          reason,
          { from: new Date('2024-06-12T10:02:00Z'), to: new Date(new Date(wake).getTime() + 1) },
        ],
      ],
    );
    assert.ok(ticker.stats.missedSlots >= 170);
    await advance(t, MIN);
    assert.deepEqual(
      r.infos.slice(3).map((i) => [i.reason, i.slept]),
      [['tick', undefined]],
    );
    await ticker.stop();
  });
}

test('stop: waits for the running callback, aborts its signal, then nothing runs', async (t) => {
  useClock(t, '2024-06-12T10:00:05Z');
  const g = gate();
  let seen: TickInfo | undefined;
  let calls = 0;
  const ticker = new Ticker({
    timeZone: 'UTC',
    onTick: async (i) => {
      calls++;
      seen = i;
      await g.wait;
    },
  });
  const cronTasks = getTasks().size;
  ticker.start();
  assert.equal(getTasks().size, cronTasks + 1);
  void ticker.poke();
  await flush();
  ticker.wakeAt(new Date('2024-06-12T10:00:30Z'));
  let stopped = false;
  const stopping = ticker.stop().then(() => (stopped = true));
  await flush();
  assert.equal(seen?.signal.aborted, true);
  assert.equal(stopped, false, 'stop() must wait for the running callback');
  g.open();
  await stopping;
  assert.equal(stopped, true);
  assert.equal(getTasks().size, cronTasks, 'the node-cron task is destroyed');
  await advance(t, 3 * MIN, 5 * SEC);
  await ticker.poke();
  ticker.wakeAt(new Date('2024-06-12T10:05:00Z'));
  await advance(t, MIN, 5 * SEC);
  assert.equal(calls, 1);
  assert.equal(ticker.stats.nextWakeAt, null);
  await ticker.stop(); // idempotent
});

test('an AbortSignal given at construction stops the ticker', async (t) => {
  useClock(t, '2024-06-12T10:00:30Z');
  const ac = new AbortController();
  const r = recorder();
  const ticker = new Ticker({ timeZone: 'UTC', onTick: r.onTick, signal: ac.signal });
  ticker.start();
  await advance(t, MIN);
  assert.equal(r.infos.length, 1);
  ac.abort();
  await advance(t, 3 * MIN, 5 * SEC);
  assert.equal(r.infos.length, 1);
});

test('errors from the callback are counted and reported; ticking goes on', async (t) => {
  useClock(t, '2024-06-12T10:00:30Z');
  const errors: unknown[] = [];
  let calls = 0;
  const ticker = new Ticker({
    timeZone: 'UTC',
    onTick: () => {
      calls++;
      throw new Error(`boom ${calls}`);
    },
    onError: (e) => {
      errors.push(e);
      throw new Error('reporter broken too');
    },
  });
  ticker.start();
  await advance(t, 2 * MIN);
  assert.equal(calls, 2);
  assert.equal(ticker.stats.errors, 2);
  assert.deepEqual(
    errors.map((e) => (e as Error).message),
    ['boom 1', 'boom 2'],
  );
  await ticker.stop();
});

test('an unknown time zone is refused', () => {
  assert.throws(
    () => new Ticker({ timeZone: 'Atlantis/Capital', onTick: () => undefined }),
    (e: unknown) => isMooringError(e, 'USAGE'),
  );
});

test('real timers: a wakeup fires without mocks (node-cron loaded for real)', async () => {
  let resolveRun!: (i: TickInfo) => void;
  const ran = new Promise<TickInfo>((r) => (resolveRun = r));
  const ticker = new Ticker({
    timeZone: 'Europe/Berlin',
    onTick: (i) => resolveRun(i),
    minWakeDelayMs: 10,
  });
  ticker.start();
  ticker.wakeAt(new Date(Date.now() + 20));
  const info = await ran;
  assert.equal(info.reason, 'wakeup');
  await ticker.stop();
});
