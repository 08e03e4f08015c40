/**
 * DeviceRegistry over USB: usbmuxd Listen through the simulator's usbmuxd — attach, pairing
 * (usbmuxd's Paired event re-reads the record), `ctl detach`/`attach`, and usbmuxd going away
 * and coming back (re-Listen with backoff).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PairRecordIndex } from '../../src/discovery/pair-record-index';
import { DeviceRegistry, type UsbmuxdListenState } from '../../src/discovery/registry';
import { UsbmuxEndpoint } from '../../src/lockdown/endpoint';
import { deletePairRecord } from '../../src/lockdown/pair-records';
import type { PairRecord } from '../../src/pairing/pair-record';
import { startSim, type RunningSim, type SimOptions } from '../../src/sim/index';
import type { UsbmuxdClient } from '../../src/transport/usbmuxd-client';
import { muxFor, pairAndStore, udidThrough, waitForEvent } from './sim-helpers';

describe('DeviceRegistry: USB through usbmuxd', () => {
  let tmp: string;
  let simOpts: SimOptions;
  let sim: RunningSim;
  let mux: UsbmuxdClient;
  let storeDir: string;
  let registry: DeviceRegistry;
  let record: PairRecord;
  const muxStates: UsbmuxdListenState[] = [];

  before(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'mooring-disc-usb-'));
    storeDir = path.join(tmp, 'store');
    simOpts = {
      stateDir: path.join(tmp, 'sim'),
      usbmuxd: `UNIX:${path.join(tmp, 'usbmuxd.sock')}`,
      files: 3,
      bytes: 3000,
      seed: 41,
      name: 'Disc USB',
    };
    sim = await startSim(simOpts);
    mux = muxFor(sim);
    registry = new DeviceRegistry({
      usbmuxd: mux,
      bonjour: null,
      pairRecords: new PairRecordIndex({ storeDir, systemDir: null, usbmuxd: mux }),
      relisten: { initialDelayMs: 50, maxDelayMs: 400 },
    });
    registry.on('usbmuxd', (s) => muxStates.push(s));
  });
  after(async () => {
    await registry.stop();
    await sim.stop();
    await rm(tmp, { recursive: true, force: true });
  });

  it('sees an attached, not yet paired device, then its pairing', async () => {
    const appeared = waitForEvent(registry, 'appeared', (p) => p.udid === sim.udid);
    await registry.start();
    const [p] = await appeared;
    assert.equal(p.reachable, true);
    assert.equal(p.paired, false);
    assert.equal(typeof p.usb?.deviceId, 'number');
    assert.equal(p.wifi, undefined);
    assert.deepEqual(muxStates[0], { state: 'listening' });

    const paired = waitForEvent(registry, 'changed', (q) => q.udid === sim.udid && q.paired);
    record = await pairAndStore(sim, storeDir, mux);
    await paired;
    assert.equal(registry.pairRecords.get(sim.udid)?.hostId, record.HostID);
    assert.equal(registry.pairRecords.get(sim.udid)?.wifiMac, sim.device.identity.wifiMac);

    const ep = registry.endpoint(sim.udid);
    assert.ok(ep instanceof UsbmuxEndpoint);
    assert.equal(ep.transport, 'usb');
    assert.equal(await udidThrough(ep, record), sim.udid);
  });

  it('follows ctl detach and attach', async () => {
    const before = registry.get(sim.udid)!;
    const gone = waitForEvent(registry, 'disappeared', (p) => p.udid === sim.udid);
    const detachedAt = Date.now();
    await sim.ctl('detach');
    const [p] = await gone;
    assert.equal(p.reachable, false);
    assert.ok(p.lastSeen.getTime() >= detachedAt, 'last seen when it left, not when it came');
    assert.equal(p.usb, undefined);
    assert.equal(registry.endpoint(sim.udid), undefined);
    assert.equal(registry.list().length, 1, 'a device that left is still known, unreachable');

    const back = waitForEvent(registry, 'appeared', (q) => q.udid === sim.udid);
    const { deviceId } = (await sim.ctl('attach')) as { deviceId: number };
    const [q] = await back;
    assert.equal(q.usb?.deviceId, deviceId);
    assert.notEqual(deviceId, before.usb?.deviceId, 'usbmuxd hands out a new DeviceID');
    assert.ok(q.lastSeen.getTime() >= p.lastSeen.getTime());
    assert.equal(await udidThrough(registry.endpoint(sim.udid)!, record), sim.udid);
  });

  it('re-Listens with backoff when usbmuxd goes away and comes back', async () => {
    const gone = waitForEvent(registry, 'disappeared', (p) => p.udid === sim.udid);
    const lost = waitForEvent(registry, 'usbmuxd', (s) => s.state === 'lost');
    await sim.stop();
    await gone;
    const [state] = await lost;
    assert.equal(state.state, 'lost');
    // usbmuxd is down: at least one retry finds nothing there.
    await waitForEvent(registry, 'usbmuxd', (s) => s.state === 'unavailable');

    const back = waitForEvent(registry, 'appeared', (p) => p.udid === sim.udid);
    sim = await startSim(simOpts);
    const [p] = await back;
    assert.equal(p.paired, true, 'the record is still ours');
    assert.equal(await udidThrough(registry.endpoint(sim.udid)!, record), sim.udid);
  });

  it('notices a deleted pair record on refresh', async () => {
    const unpaired = waitForEvent(registry, 'changed', (p) => p.udid === sim.udid && !p.paired);
    await deletePairRecord(sim.udid, { usbmuxd: muxFor(sim), storeDir });
    await registry.refreshPairRecords();
    const [p] = await unpaired;
    assert.equal(p.reachable, true, 'still attached, just not ours any more');
    assert.equal(registry.pairRecords.get(sim.udid), undefined);
  });
});
