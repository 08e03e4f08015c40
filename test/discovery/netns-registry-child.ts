/**
 * Runs a DeviceRegistry (Wi-Fi only) inside the network namespace it is started in, for
 * netns.test.ts: `node --import tsx netns-registry-child.ts STORE_DIR IFACE_ADDR`. Prints one JSON
 * line per presence event; for each device that appears it also opens a lockdown session over
 * the endpoint and reports the UDID the device gives. Stops on SIGTERM.
 */
import { PairRecordIndex } from '../../src/discovery/pair-record-index';
import { DeviceRegistry, type DevicePresence } from '../../src/discovery/registry';
import { findPairRecord } from '../../src/lockdown/pair-records';
import { DeviceSession } from '../../src/lockdown/session';

const [storeDir, iface] = process.argv.slice(2);
if (!storeDir || !iface) {
  process.stderr.write('usage: netns-registry-child STORE_DIR IFACE_ADDR\n');
  process.exit(2);
}

const out = (o: Record<string, unknown>): void => {
  process.stdout.write(JSON.stringify(o) + '\n');
};

const registry = new DeviceRegistry({
  usbmuxd: null,
  // Inside the test's namespace: only its veth (and lo) exist.
  bonjour: { mdns: { interface: iface, bind: '0.0.0.0' }, requeryIntervalMs: 0 },
  pairRecords: new PairRecordIndex({ storeDir, systemDir: null }),
  connectTimeoutMs: 5000,
});

async function sessionUdid(p: DevicePresence): Promise<string> {
  try {
    const found = await findPairRecord(p.udid, { storeDir, systemDir: null });
    const endpoint = registry.endpoint(p.udid);
    if (!found || !endpoint) return 'unreachable';
    const session = await DeviceSession.open(endpoint, found.record, { timeoutMs: 5000 });
    try {
      return String(await session.getValue(undefined, 'UniqueDeviceID'));
    } finally {
      session.lockdown.close();
    }
  } catch (e) {
    return `error: ${(e as Error).message}`;
  }
}

registry.on('appeared', (p) => {
  void sessionUdid(p).then((udid) =>
    out({
      event: 'appeared',
      udid: p.udid,
      host: p.wifi?.host,
      port: p.wifi?.port,
      matchedBy: p.wifi?.matchedBy,
      sessionUdid: udid,
    }),
  );
});
registry.on('disappeared', (p) => out({ event: 'disappeared', udid: p.udid }));
registry.on('advert-ignored', ({ advert, reason }) =>
  out({ event: 'ignored', name: advert.instanceName, reason }),
);

process.on('SIGTERM', () => {
  void registry.stop().then(() => process.exit(0));
});

registry.start().then(
  () => out({ event: 'started' }),
  (e: unknown) => {
    out({ event: 'failed', error: String(e) });
    process.exit(1);
  },
);
