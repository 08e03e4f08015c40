/**
 * Fault matrix: the device vanishes in the middle of a backup, on USB (through usbmuxd) and on
 * Wi-Fi (TCP to its lockdownd): the connection drops after a random number of payload bytes (the
 * simulator's `dropAfterBytes`), or the device reboots (the simulator is stopped mid-transfer and
 * started again from its state). Each time: the job ends as a failed backup with a clear message
 * (never a throw), the latest complete backup is unchanged and verifies, nothing is left staged,
 * the attempt is recorded, and the next backup succeeds.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { openStore, readAttempts } from '../../src/store';
import { FaultReport, prng, RUNS } from './report';
import { assertNothingCompleteLost, latestState, startRig, type Rig } from './rig';

const report = new FaultReport('device-vanishes');
let rig: Rig;
let total = 0;
const random = prng(7101);
/** Random drop points per transport in the default run (RELIABILITY_RUNS multiplies). */
const DROPS = 2;

before(async () => {
  rig = await startRig({ seed: 711, files: 40, bytes: 1_500_000, wifi: '127.0.0.6' });
  total = ((await rig.sim.ctl('listing')) as { bytes: number }).bytes;
  const first = await rig.backup(await rig.usb());
  assert.equal(first.ok, true, first.message);
});

after(async () => {
  report.write();
  await rig?.close();
});

async function attempts(): Promise<number> {
  return (await readAttempts((await openStore(rig.dest, rig.sim.udid)).stateDir)).length;
}

async function endpointFor(t: 'usb' | 'wifi') {
  return t === 'usb' ? rig.usb() : rig.wifi();
}

/** One fault: mutate, run a backup that the fault breaks, check, then a good backup. */
async function vanish(
  t: 'usb' | 'wifi',
  what: string,
  arm: () => Promise<((e: { type: string; percent?: number }) => void) | undefined>,
  disarm: () => Promise<void>,
): Promise<void> {
  await report.trial(`device vanishes (${t === 'usb' ? 'USB' : 'Wi-Fi'})`, what, async () => {
    await rig.sim.ctl('mutate', { add: 1, modify: 2, delete: 1 });
    const before = await latestState(rig.dest, rig.sim.udid);
    const recorded = await attempts();
    const onProgress = await arm();
    let out;
    try {
      out = await rig.backup(await endpointFor(t), {
        full: true,
        timeouts: { messageMs: 15_000 },
        ...(onProgress
          ? { onEvent: (e) => onProgress(e as { type: string; percent?: number }) }
          : {}),
      });
    } finally {
      await disarm();
    }
    assert.equal(out.ok, false, `the backup cannot succeed: ${out.message}`);
    assert.equal(out.stage, 'backup', out.message);
    assert.match(out.message, /connection|closed|lost|disconnect|reset|EPIPE|timed out/i);
    await assertNothingCompleteLost(rig.dest, rig.sim.udid, before);
    assert.equal(await attempts(), recorded + 1, 'the failed attempt is recorded');
    const next = await rig.backup(await endpointFor(t));
    assert.equal(next.ok, true, `the next backup: ${next.message}`);
    report.note(
      `device vanishes (${t === 'usb' ? 'USB' : 'Wi-Fi'})`,
      what,
      out.message.slice(0, 120),
    );
  });
}

for (const t of ['usb', 'wifi'] as const) {
  test(`${t}: the connection drops at random byte offsets`, async () => {
    for (let i = 0; i < DROPS * RUNS; i++) {
      const at = Math.floor(random() * total * 0.95);
      await vanish(
        t,
        'connection dropped at a random payload byte',
        async () => {
          await rig.sim.ctl('fault', { name: 'dropAfterBytes', value: String(at) });
          return undefined;
        },
        async () => {
          await rig.sim.ctl('fault', { name: 'dropAfterBytes', value: 'off' });
        },
      );
    }
  });

  test(`${t}: the device reboots mid-transfer`, async () => {
    for (let i = 0; i < RUNS; i++) {
      const pct = 10 + Math.floor(random() * 80);
      let stopping: Promise<void> | undefined;
      await vanish(
        t,
        'device rebooted mid-transfer (simulator stopped, started again)',
        async () => (e) => {
          if (!stopping && e.type === 'progress' && (e.percent ?? 0) >= pct)
            stopping = rig.sim.stop();
        },
        async () => {
          await stopping;
          await rig.reboot();
        },
      );
    }
  });
}
