/**
 * LockWatcher against the real simulator in-process: lock, unlock and enter-passcode reach the
 * agent as 'activity'; a device that leaves Wi-Fi and comes back is watched again; stop() closes
 * every connection.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { DeviceSession } from '../../src/lockdown/session';
import type { PairRecord } from '../../src/pairing/pair-record';
import { LOCKSTATE_NOTIFICATION, LockWatcher } from '../../src/agent/lock-watcher';
import { NOTIFY_LOCKSTATE } from '../../src/sim/device';
import { pairOverUsb, startSimFixture, type SimFixture } from '../lockdown/sim-fixture';

let f: SimFixture;
let record: PairRecord;

before(async () => {
  f = await startSimFixture({ passcode: { kind: 'never' } });
  record = await pairOverUsb(f);
});

after(async () => {
  await f?.close();
});

/** Safety net so a missing event fails the test instead of hanging it (not what is measured). */
function within<T>(p: Promise<T>, what: string, ms = 15_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
    }),
  ]);
}

async function connections(): Promise<number> {
  const s = (await f.sim.ctl('status')) as { connections: number };
  return s.connections;
}

/** Server-side sockets close a moment after ours: wait (bounded) for the count to settle. */
async function connectionsSettleTo(n: number): Promise<number> {
  for (let i = 0; i < 250; i++) {
    const c = await connections();
    if (c === n) return c;
    await new Promise((r) => setTimeout(r, 20));
  }
  return connections();
}

test('the simulator and the watcher agree on the notification name', () => {
  assert.equal(NOTIFY_LOCKSTATE, LOCKSTATE_NOTIFICATION);
  assert.equal(LOCKSTATE_NOTIFICATION, 'com.apple.springboard.lockstate');
});

test('lock, unlock and enter-passcode are reported as activity; stop() closes everything', async () => {
  const clock = { t: 1_000_000 };
  const watcher = new LockWatcher({ retryMs: 50, now: () => clock.t });
  const activity: [string, number][] = [];
  watcher.on('activity', (udid, at) => activity.push([udid, at]));
  const errors: Error[] = [];
  watcher.on('error', (_u, e) => errors.push(e));
  let opened = 0;
  const ready = once(watcher, 'watching');
  watcher.watch(f.sim.udid, () => {
    opened++;
    return DeviceSession.open(f.usb, record, { timeoutMs: 5000 });
  });
  assert.deepEqual(await within(ready, 'watching'), [f.sim.udid]);
  // One live connection: notification_proxy; the lockdown session was closed.
  assert.equal(await connectionsSettleTo(1), 1);

  for (const [cmd, t] of [
    ['lock', 2_000_000],
    ['unlock', 3_000_000],
    ['lock', 4_000_000],
    ['enter-passcode', 5_000_000],
  ] as const) {
    clock.t = t;
    const next = once(watcher, 'activity');
    await f.sim.ctl(cmd);
    assert.deepEqual(await within(next, `activity after ${cmd}`), [f.sim.udid, t]);
  }
  assert.equal(activity.length, 4);
  assert.equal(opened, 1, 'one connection kept, not one per notification');
  assert.deepEqual(errors, []);

  // Watching twice keeps the one observer.
  watcher.watch(f.sim.udid, () => DeviceSession.open(f.usb, record, { timeoutMs: 5000 }));
  assert.deepEqual(watcher.udids, [f.sim.udid]);

  await watcher.stop();
  assert.deepEqual(watcher.udids, []);
  assert.equal(await connectionsSettleTo(0), 0);
  // Nothing observes any more: a further unlock reaches nobody.
  await f.sim.ctl('unlock');
  await new Promise((r) => setImmediate(r));
  assert.equal(activity.length, 4);
  assert.equal(opened, 1);
});

test('a device that goes offline and comes back is watched again', async () => {
  const watcher = new LockWatcher({ retryMs: 50 });
  const errors: Error[] = [];
  watcher.on('error', (_u, e) => errors.push(e));
  let opened = 0;
  let ready = once(watcher, 'watching');
  watcher.watch(f.sim.udid, () => {
    opened++;
    return DeviceSession.open(f.wifi, record, { timeoutMs: 5000 });
  });
  try {
    await within(ready, 'watching');
    const first = once(watcher, 'activity');
    await f.sim.ctl('unlock');
    await within(first, 'activity before going offline');

    // Off the network: the connection drops and reconnecting fails (reported, with backoff).
    const failed = once(watcher, 'error');
    await f.sim.ctl('offline');
    const [udid, err] = (await within(failed, 'a failed reconnect')) as [string, Error];
    assert.equal(udid, f.sim.udid);
    assert.ok(err instanceof Error);
    const attemptsWhileOffline = opened;
    assert.ok(attemptsWhileOffline >= 2, 'it tried to reconnect');

    ready = once(watcher, 'watching');
    await f.sim.ctl('online');
    await within(ready, 'watching again after coming back');
    const again = once(watcher, 'activity');
    await f.sim.ctl('lock');
    const [u2] = await within(again, 'activity after coming back');
    assert.equal(u2, f.sim.udid);
    assert.ok(errors.length >= 1);
  } finally {
    await watcher.stop();
  }
  assert.equal(await connectionsSettleTo(0), 0);
});

test('unwatch during the reconnect delay ends the loop: stop() resolves and nothing reopens', async () => {
  const watcher = new LockWatcher({ retryMs: 60_000 });
  let opened = 0;
  const failed = once(watcher, 'error');
  watcher.watch('00008030-000000000000DEAD', () => {
    opened++;
    return Promise.reject(new Error('device not reachable'));
  });
  const [, err] = (await within(failed, 'the first failure')) as [string, Error];
  assert.match(err.message, /not reachable/);
  // The watcher now sleeps for a minute; stop() must not wait for that.
  await within(watcher.stop(), 'stop()', 5_000);
  assert.equal(opened, 1);
});

test('errors without an error listener do not throw', async () => {
  const watcher = new LockWatcher({ retryMs: 60_000 });
  let opened = 0;
  watcher.watch('00008030-000000000000BEEF', async () => {
    opened++;
    throw new Error('refused');
  });
  // The failure is handled in microtasks; let them run before stopping.
  await new Promise((r) => setImmediate(r));
  await watcher.stop();
  assert.equal(opened, 1);
});
