/**
 * Fault matrix, load: five devices (one on USB, four on loopback "Wi-Fi") all due at once under
 * the agent's concurrency limit. The agent backs every one up, never running more at a time than
 * the limit (measured from the recorded attempts' start and end times); with the limit raised to
 * two, "back up now" on all five starts two and refuses the rest with CONCURRENCY_LIMIT until a
 * slot is free; every device's latest backup verifies.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { BackupNowResult } from '../../src/agent/types';
import type { AttemptRow } from '../../src/history';
import { verifyBackupFolder } from '../../src/store';
import { Scenario } from '../helpers/agent-harness';
import { FaultReport } from './report';

const report = new FaultReport('five-devices');
const NAMES = ['usb', 'w1', 'w2', 'w3', 'w4'];

/** The most attempts that were running at the same moment. */
function maxOverlap(attempts: AttemptRow[]): number {
  const edges: Array<[number, number]> = [];
  for (const a of attempts) {
    edges.push([a.startedAt, 1]);
    edges.push([a.endedAt ?? Number.MAX_SAFE_INTEGER, -1]);
  }
  edges.sort((x, y) => x[0] - y[0] || x[1] - y[1]);
  let cur = 0;
  let max = 0;
  for (const [, d] of edges) max = Math.max(max, (cur += d));
  return max;
}

describe('five devices at once under the concurrency limit', () => {
  let s: Scenario;

  before(async () => {
    s = await Scenario.start({
      sims: NAMES.map((name, i) =>
        name === 'usb'
          ? { name, transport: 'usb' as const, seed: 751, files: 8, bytes: 200_000 }
          : {
              name,
              transport: 'wifi' as const,
              wifiHost: `127.0.0.${70 + i}`,
              seed: 751 + i,
              files: 8,
              bytes: 200_000,
            },
      ),
    });
  });
  after(async () => {
    report.write();
    await s?.close();
  });

  async function allLatestVerify(): Promise<void> {
    for (const n of NAMES) {
      const udid = s.udid(n);
      const v = await verifyBackupFolder(s.latestDir(udid), udid);
      assert.equal(v.ok, true, `${n}: ${JSON.stringify(v.problems[0])}`);
    }
  }

  it('all five due at start: each backed up, one at a time (the default limit)', async () => {
    await report.trial('five devices at once', 'all due at start, limit 1', async () => {
      for (const n of NAMES)
        await s.waitForAttempt(
          s.udid(n),
          `${n} backed up`,
          (a) => a.outcome === 'success',
          180_000,
        );
      const all = await s.attempts();
      assert.equal(maxOverlap(all), 1, 'never more than one backup at a time');
      await allLatestVerify();
    });
  });

  it('limit 2, "back up now" on all five: two run, the rest wait their turn', async () => {
    await report.trial('five devices at once', 'back up now on all five, limit 2', async () => {
      await s.config({ concurrency: '2' });
      for (const n of NAMES) await s.sim(n).ctl('mutate', { add: 1, modify: 1 });
      const since = Date.now();
      const results = await Promise.all(
        NAMES.map((n) =>
          s.api<BackupNowResult>('POST', `/api/devices/${s.udid(n)}/backup`).catch((e: Error) => e),
        ),
      );
      const started = results.filter((r) => !(r instanceof Error) && 'attemptId' in r).length;
      assert.equal(started, 2, `started at once: ${JSON.stringify(results.map(String))}`);
      const refused = results.filter((r) => r instanceof Error || !('attemptId' in r));
      assert.ok(
        refused.every((r) =>
          /CONCURRENCY_LIMIT|limit/i.test(r instanceof Error ? r.message : JSON.stringify(r)),
        ),
      );
      // Each refused device asks again until it gets a slot.
      for (const n of NAMES) {
        const udid = s.udid(n);
        await s.waitFor(
          `${n}: a new successful backup`,
          async () => {
            const mine = (await s.attempts(udid)).filter((a) => a.startedAt >= since);
            if (mine.some((a) => a.outcome === 'success')) return true;
            if (mine.every((a) => a.outcome !== 'running'))
              await s.api('POST', `/api/devices/${udid}/backup`).catch(() => undefined);
            return undefined;
          },
          180_000,
          300,
        );
      }
      const recent = (await s.attempts()).filter((a) => a.startedAt >= since);
      assert.ok(maxOverlap(recent) <= 2, `at most two at a time (saw ${maxOverlap(recent)})`);
      report.note(
        'five devices at once',
        'back up now on all five, limit 2',
        `most at once: ${maxOverlap(recent)}`,
      );
      await allLatestVerify();
    });
  });
});
