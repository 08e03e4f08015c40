/**
 * Issue 7, hostile devices, end to end: `mooring backup` (a real child process) against the
 * simulator's evil modes that announce gigabytes or nest without end — its peak memory, read from
 * /proc, stays within a few frames of a normal backup's; nothing outside the staging area changes;
 * the latest backup stays intact and verified; the attempt is recorded. Then `mooring agent` meets
 * a hostile device and records a security notification (DEVICE_MISBEHAVED) through its API.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, promises as fsp } from 'node:fs';
import path from 'node:path';
import type { EvilMode } from '../../src/sim/contracts';
import { Scenario } from '../helpers/agent-harness';
import { FaultReport } from '../reliability/report';
import {
  fingerprint,
  readAttemptLines,
  startCliSim,
  storePaths,
  verifyOk,
  type CliSim,
  type RunResult,
} from '../cli/backup-fixture';

/** Largest growth of peak RSS over a normal backup's we accept: a 32 MiB frame plus slack. */
const MAX_EXTRA_RSS_BYTES = 96 * 1024 * 1024;

/** Peak resident memory (VmHWM) of a process, or undefined once it is gone. */
function peakRss(pid: number): number | undefined {
  try {
    const m = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Runs `mooring ARGS`, sampling the child's peak RSS every 20 ms until it exits. */
async function withPeakRss(
  cs: CliSim,
  args: string[],
): Promise<{ run: RunResult; peakBytes: number }> {
  let peak = 0;
  let timer: NodeJS.Timeout | undefined;
  const run = await cs.mooring(args, {
    onSpawn: (child) => {
      timer = setInterval(() => {
        const v = child.pid === undefined ? undefined : peakRss(child.pid);
        if (v !== undefined) peak = Math.max(peak, v);
      }, 20);
    },
    timeoutMs: 60_000,
  });
  clearInterval(timer);
  return { run, peakBytes: peak };
}

const MiB = (n: number): string => `${(n / 1024 / 1024).toFixed(1)} MiB`;

/** The tally docs/RELIABILITY.md quotes (test/reliability/report.ts format). */
const report = new FaultReport('hostile-device-cli');
after(() => {
  report.write();
});

describe('mooring backup against a hostile device', () => {
  let cs: CliSim;
  let dest: string;
  let outer: string;
  let normalPeak = 0;

  before(async () => {
    cs = await startCliSim({ seed: 707, files: 30, bytes: 400_000 });
    outer = path.join(cs.tmp, 'outer');
    dest = path.join(outer, 'dest');
    // The canary tree beside the destination, where "../.." paths would land.
    await fsp.mkdir(path.join(outer, 'canary', 'deeper'), { recursive: true });
    await fsp.writeFile(path.join(outer, 'canary', 'secret.txt'), 'canary: not for the device\n');
    await fsp.writeFile(path.join(outer, 'canary', 'deeper', 'b.txt'), 'canary b\n');
    const good = await withPeakRss(cs, ['backup', '--dest', dest, '--json']);
    assert.equal(good.run.code, 0, good.run.err);
    normalPeak = good.peakBytes;
    assert.ok(normalPeak > 0, 'the peak RSS of a normal backup was read from /proc');
  });

  after(async () => {
    await cs?.close();
    await fsp.rm(`/tmp/mooring-escape-${cs?.sim.udid}.txt`, { force: true });
  });

  const modes: Array<[EvilMode, RegExp]> = [
    ['oversized-frame', /4294967280-byte plist frame/],
    ['huge-filename', /file name is 4294967040 bytes/],
    ['huge-block', /block of 4294967280 bytes/],
    ['deep-plist', /nests deeper than/],
    ['dl-escape', /outside its backup folder/],
  ];
  for (const [mode, text] of modes) {
    test(`${mode}: refused, memory bounded, nothing outside touched, attempt recorded`, () =>
      report.trial('hostile device (mooring backup)', mode, async () => {
        const udid = cs.sim.udid;
        const p = storePaths(dest, udid);
        const latestBefore = await fingerprint(p.latest);
        const attemptsBefore = (await readAttemptLines(dest, udid)).length;
        const outside = async (): Promise<Map<string, string>> => {
          const all = await fingerprint(outer);
          const staging = path.relative(outer, p.staging) + '/';
          const state = path.relative(outer, p.state);
          for (const k of [...all.keys()]) {
            if (k.startsWith(staging)) all.delete(k);
            else if (
              path.dirname(k) === state &&
              ['attempts.jsonl', 'lock'].includes(path.basename(k))
            )
              all.delete(k);
          }
          return all;
        };
        const outsideBefore = await outside();

        await cs.sim.ctl('mutate', { add: 1, modify: 1 });
        await cs.sim.ctl('fault', { name: 'evil', value: mode });
        let r;
        try {
          r = await withPeakRss(cs, ['backup', '--dest', dest, '--json']);
        } finally {
          await cs.sim.ctl('fault', { name: 'evil', value: 'off' });
        }
        const { run, peakBytes } = r;
        assert.equal(run.code, 1, run.out + run.err);
        assert.equal(run.result?.ok, false);
        assert.match(String(run.result?.message), text);
        assert.ok(
          peakBytes < normalPeak + MAX_EXTRA_RSS_BYTES,
          `${mode}: peak RSS ${MiB(peakBytes)} vs ${MiB(normalPeak)} for a normal backup`,
        );

        assert.deepEqual(await outside(), outsideBefore, `${mode}: something outside changed`);
        assert.equal(existsSync(`/tmp/mooring-escape-${udid}.txt`), false);
        // The latest backup untouched (and no snapshot added: `latest` would have moved).
        assert.deepEqual(await fingerprint(p.latest), latestBefore);
        const attempts = await readAttemptLines(dest, udid);
        assert.equal(attempts.length, attemptsBefore + 1);
        assert.equal(attempts[attempts.length - 1]!.ok, false);
        report.note(
          'hostile device (mooring backup)',
          mode,
          `peak RSS ${MiB(peakBytes)} (a normal backup: ${MiB(normalPeak)})`,
        );
      }));
  }

  test('afterwards the latest backup verifies and the device backs up fine', async () => {
    await verifyOk(cs, dest);
    const next = await cs.mooring(['backup', '--dest', dest, '--json']);
    assert.equal(next.code, 0, next.err);
  });
});

describe('mooring agent meets a hostile device', () => {
  let s: Scenario;

  before(async () => {
    s = await Scenario.start({
      sims: [{ name: 'evil', transport: 'usb', seed: 708, faults: { evil: 'path-escape' } }],
    });
  });
  after(async () => {
    await s?.close();
  });

  test('the attempt fails with DEVICE_MISBEHAVED and a security notification is recorded', () =>
    report.trial('hostile device (mooring agent)', 'path-escape', async () => {
      const udid = s.udid('evil');
      const failed = await s.waitForAttempt(
        udid,
        'the hostile backup',
        (a) => a.outcome !== 'running',
      );
      assert.equal(failed.outcome, 'failure', JSON.stringify(failed));
      assert.equal(failed.reasonCode, 'DEVICE_MISBEHAVED', JSON.stringify(failed));
      const note = (await s.notifications(udid)).find((n) => n.attemptId === failed.id);
      assert.ok(note, 'a notification for the attempt');
      assert.equal(note.reasonCode, 'DEVICE_MISBEHAVED');
      assert.equal(note.severity, 'error');
      assert.equal(note.params?.security, true);
      assert.equal(note.params?.refusedPaths, 2);
      assert.match(note.message, /^Security: the device tried to use 2 unsafe paths/);
      // Written nowhere: not in /tmp, not anywhere in the scenario's folder (data, backups, sims).
      assert.equal(existsSync(`/tmp/mooring-escape-${udid}.txt`), false);
      const everywhere = await fsp.readdir(s.tmp, { recursive: true });
      assert.deepEqual(
        everywhere.filter((n) => n.includes('mooring-escape-')),
        [],
      );
      assert.equal(await s.snapshots(udid).then((x) => x.length), 0, 'nothing committed');
    }));
});
