/**
 * Lockdown values read on one thread and answered on another: every plist type survives, a
 * failed read fails the same way, a read nobody asked for is refused, and against the simulator
 * the recording answers as the live session does.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, test } from 'node:test';
import { DeviceSession } from '../../src/lockdown';
import {
  readAnswers,
  RecordedValues,
  type ValueReader,
  type ValueQuery,
} from '../../src/lockdown/values';
import { PlistUid, type PlistDict, type PlistValue } from '../../src/protocol/plist/types';
import { startSim } from '../../src/sim/index';
import { isMooringError, MooringError } from '../../src/util/errors';
import { pairedEndpoint } from '../discovery/sim-helpers';
import { tempDirs } from '../helpers/temp-dirs';

const { tmp, cleanup } = tempDirs('mooring-values-');
after(cleanup);

class FakeLockdown implements ValueReader {
  constructor(private readonly domains: Record<string, PlistDict>) {}
  getValue(domain?: string, key?: string): Promise<PlistValue | undefined> {
    if (domain === 'refused') {
      return Promise.reject(
        new MooringError('DEVICE_ERROR', 'GetValue failed', { detail: 'MissingValue' }),
      );
    }
    const d = this.domains[domain ?? ''];
    return Promise.resolve(key === undefined ? d : d?.[key]);
  }
  async getDomain(domain?: string): Promise<PlistDict> {
    return (await this.getValue(domain)) as PlistDict;
  }
}

test('every plist type crosses; errors and unasked reads fail as they should', async () => {
  const when = new Date('2026-11-22T10:00:00Z');
  const dev = new FakeLockdown({
    '': { DeviceName: 'P', Big: 2n ** 62n, Data: Buffer.from([1, 2, 3]), When: when },
    x: { Uid: new PlistUid(7), List: [1, 'two', { three: true }], Flag: false, NotADict: 1 },
  });
  const queries: ValueQuery[] = [
    {},
    { domain: 'x', key: 'Uid' },
    { domain: 'x', key: 'List' },
    { domain: 'x', key: 'Flag' },
    { domain: 'x', key: 'Absent' },
    { domain: 'x', key: 'NotADict' },
    { domain: 'refused', key: 'Any' },
  ];
  const r = new RecordedValues(structuredClone(await readAnswers(dev, queries)));
  const root = await r.getDomain();
  assert.deepEqual(root, {
    DeviceName: 'P',
    Big: 2n ** 62n,
    Data: Buffer.from([1, 2, 3]),
    When: when,
  });
  assert.ok(Buffer.isBuffer(root.Data));
  assert.ok(root.When instanceof Date);
  const uid = await r.getValue('x', 'Uid');
  assert.ok(uid instanceof PlistUid && uid.value === 7);
  assert.deepEqual(await r.getValue('x', 'List'), [1, 'two', { three: true }]);
  assert.equal(await r.getValue('x', 'Flag'), false);
  assert.equal(await r.getValue('x', 'Absent'), undefined);
  await assert.rejects(
    r.getValue('refused', 'Any'),
    (e) => isMooringError(e, 'DEVICE_ERROR') && e.detail === 'MissingValue',
  );
  await assert.rejects(
    r.getValue('x', 'Other'),
    (e) => isMooringError(e, 'USAGE') && /not among the reads/.test(e.message),
  );
  await assert.rejects(
    r.getDomain('x'),
    (e) => isMooringError(e, 'USAGE'),
    'a whole domain is a read of its own',
  );
});

test('against the simulator the recording answers as the session does', async () => {
  const root = tmp();
  const sim = await startSim({
    stateDir: path.join(root, 'sim'),
    usbmuxd: `UNIX:${path.join(root, 'usbmuxd.sock')}`,
    files: 1,
    bytes: 1000,
    seed: 5,
    name: 'Values phone',
  });
  try {
    const { record, endpoint } = await pairedEndpoint(sim, path.join(root, 'pair-records'));
    const session = await DeviceSession.open(endpoint, record, {});
    try {
      const queries: ValueQuery[] = [
        {},
        { domain: 'com.apple.mobile.wireless_lockdown', key: 'EnableWifiConnections' },
        { domain: 'com.apple.mobile.backup', key: 'WillEncrypt' },
      ];
      const r = new RecordedValues(structuredClone(await readAnswers(session, queries)));
      // The device's clock moves between the two reads; everything else is the same.
      const { TimeIntervalSince1970: t1, ...recorded } = await r.getDomain();
      const { TimeIntervalSince1970: t2, ...live } = await session.getDomain();
      assert.deepEqual(recorded, live);
      assert.equal(typeof t1, typeof t2);
      for (const q of queries.slice(1)) {
        assert.deepEqual(
          await r.getValue(q.domain, q.key),
          await session.getValue(q.domain, q.key),
        );
      }
      assert.equal((await r.getDomain()).DeviceName, 'Values phone');
    } finally {
      await session.close();
    }
  } finally {
    await sim.stop();
  }
});
