/**
 * Shared set-up for the tests that run lockdown and services against the real simulator:
 * a simulated device with usbmuxd (UNIX socket) and a Wi-Fi lockdownd on 127.0.0.2.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startSim, type RunningSim, type SimOptions } from '../../src/sim/index';
import { parseUsbmuxdAddress } from '../../src/transport/usbmuxd-address';
import { UsbmuxdClient } from '../../src/transport/usbmuxd-client';
import { openLockdown } from '../../src/lockdown/session';
import { TcpEndpoint, UsbmuxEndpoint } from '../../src/lockdown/endpoint';
import type { PairRecord } from '../../src/pairing/pair-record';

export const WIFI_HOST = '127.0.0.2';

export interface SimFixture {
  sim: RunningSim;
  tmp: string;
  mux: UsbmuxdClient;
  usb: UsbmuxEndpoint;
  wifi: TcpEndpoint;
  deviceId: number;
  close(): Promise<void>;
}

export async function startSimFixture(opts: Partial<SimOptions> = {}): Promise<SimFixture> {
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'mooring-d-'));
  const sim = await startSim({
    stateDir: path.join(tmp, 'sim'),
    wifi: WIFI_HOST,
    wifiPort: 0,
    trust: 'auto',
    files: 5,
    bytes: 20_000,
    seed: 1,
    ...opts,
  });
  try {
    const address = parseUsbmuxdAddress(sim.usbmuxdAddress);
    if (!address) throw new Error(`cannot parse ${sim.usbmuxdAddress}`);
    const mux = new UsbmuxdClient({ address, timeoutMs: 5000 });
    const dev = await mux.findDevice(sim.udid);
    if (!dev) throw new Error('the simulated device is not listed by its usbmuxd');
    const usb = new UsbmuxEndpoint(mux, dev.deviceId, dev.udid);
    const wifiPort = Number(sim.wifiAddress?.split(':').pop());
    const wifi = new TcpEndpoint({
      udid: sim.udid,
      host: WIFI_HOST,
      lockdownPort: wifiPort,
      connectTimeoutMs: 5000,
    });
    return {
      sim,
      tmp,
      mux,
      usb,
      wifi,
      deviceId: dev.deviceId,
      close: async () => {
        await sim.stop();
        await rm(tmp, { recursive: true, force: true });
      },
    };
  } catch (e) {
    await sim.stop();
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
}

/** Pairs over USB (the simulator's scripted user taps Trust) and returns the record. */
export async function pairOverUsb(f: SimFixture): Promise<PairRecord> {
  const lockdown = await openLockdown(f.usb, { timeoutMs: 5000 });
  try {
    return await lockdown.pair({
      systemBuid: await f.mux.readBuid(),
      pollIntervalMs: 50,
      timeoutMs: 10_000,
    });
  } finally {
    lockdown.close();
  }
}
