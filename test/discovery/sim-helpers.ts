/**
 * Shared set-up for the registry tests: simulators, pairing over each simulator's own usbmuxd
 * (its scripted user taps Trust), and waiting for registry events with a safety timeout.
 */
import { DeviceSession, openLockdown } from '../../src/lockdown/session';
import { UsbmuxEndpoint } from '../../src/lockdown/endpoint';
import { savePairRecord } from '../../src/lockdown/pair-records';
import type { PairRecord } from '../../src/pairing/pair-record';
import type { DeviceEndpoint } from '../../src/lockdown/endpoint';
import type { RunningSim } from '../../src/sim/index';
import { parseUsbmuxdAddress } from '../../src/transport/usbmuxd-address';
import { UsbmuxdClient } from '../../src/transport/usbmuxd-client';
import type { DeviceRegistry, DeviceRegistryEvents } from '../../src/discovery/registry';

/** mDNS on the loopback interface only (docs/DECISIONS.md D10). */
export const LOOPBACK_MDNS = { interface: '127.0.0.1', bind: '0.0.0.0' };

export function muxFor(sim: RunningSim): UsbmuxdClient {
  const address = parseUsbmuxdAddress(sim.usbmuxdAddress);
  if (!address) throw new Error(`cannot parse ${sim.usbmuxdAddress}`);
  return new UsbmuxdClient({ address, timeoutMs: 5000 });
}

/** Pairs over the simulator's usbmuxd and stores the record in `storeDir` (and that usbmuxd). */
export async function pairAndStore(
  sim: RunningSim,
  storeDir: string,
  mux = muxFor(sim),
): Promise<PairRecord> {
  const dev = await mux.findDevice(sim.udid);
  if (!dev) throw new Error(`${sim.udid} is not attached to its usbmuxd`);
  const lockdown = await openLockdown(new UsbmuxEndpoint(mux, dev.deviceId, dev.udid), {
    timeoutMs: 5000,
  });
  let record: PairRecord;
  try {
    record = await lockdown.pair({
      systemBuid: await mux.readBuid(),
      pollIntervalMs: 50,
      timeoutMs: 10_000,
    });
  } finally {
    lockdown.close();
  }
  await savePairRecord(sim.udid, record, { usbmuxd: mux, deviceId: dev.deviceId, storeDir });
  return record;
}

/** Pairs as pairAndStore does, and the simulator's endpoint through its usbmuxd. */
export async function pairedEndpoint(
  sim: RunningSim,
  storeDir: string,
): Promise<{ record: PairRecord; endpoint: UsbmuxEndpoint }> {
  const mux = muxFor(sim);
  const record = await pairAndStore(sim, storeDir, mux);
  const dev = await mux.findDevice(sim.udid);
  if (!dev) throw new Error(`${sim.udid} is not attached to its usbmuxd`);
  return { record, endpoint: new UsbmuxEndpoint(mux, dev.deviceId, dev.udid) };
}

/** Opens a session through the endpoint and returns the UDID the device reports. */
export async function udidThrough(endpoint: DeviceEndpoint, record: PairRecord): Promise<string> {
  const session = await DeviceSession.open(endpoint, record, { timeoutMs: 5000 });
  try {
    return String(await session.getValue(undefined, 'UniqueDeviceID'));
  } finally {
    session.lockdown.close();
  }
}

type EventArgs<K extends keyof DeviceRegistryEvents> = DeviceRegistryEvents[K];

/**
 * The first `event` whose arguments satisfy `pred`. The timeout is a safety net so a missing
 * event fails the test instead of hanging it; it is not what the test measures.
 */
export function waitForEvent<K extends keyof DeviceRegistryEvents>(
  registry: DeviceRegistry,
  event: K,
  pred: (...args: EventArgs<K>) => boolean,
  timeoutMs = 20_000,
): Promise<EventArgs<K>> {
  return new Promise((resolve, reject) => {
    const handler = (...args: EventArgs<K>): void => {
      if (!pred(...args)) return;
      clearTimeout(timer);
      registry.off(event, handler as never);
      resolve(args);
    };
    const timer = setTimeout(() => {
      registry.off(event, handler as never);
      reject(new Error(`no matching '${String(event)}' event`));
    }, timeoutMs);
    registry.on(event, handler as never);
  });
}
