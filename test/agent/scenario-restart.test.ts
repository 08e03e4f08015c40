/**
 * Issue 4 acceptance, the agent's own life and this computer's disk:
 * - the agent is killed (kill -9) in the middle of a backup and started again: the attempt is
 *   recorded as interrupted (INTERRUPTED notice), and the next run succeeds; SIGTERM in the middle
 *   of one stops it cleanly (exit 0, agent.json removed) with the attempt recorded interrupted and
 *   the last complete backup untouched;
 * - the backup folder is on a real filesystem too small for the backup (a tmpfs, root only):
 *   NOT_ENOUGH_SPACE before any data moved (the device asked for the free space and never sent a
 *   file; nothing was staged).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { BackupNowResult } from '../../src/agent/types';
import { exists, fingerprint, isRoot, Scenario, treeNames } from '../helpers/agent-harness';

/**
 * The device holds a backup this long before its first message: "in the middle of one". Not
 * longer: the simulator's timer keeps the test process alive until it ends.
 */
const HOLD_MS = '10000';

describe('mooring agent: restarted in the middle of a backup', () => {
  let s: Scenario;

  before(async () => {
    s = await Scenario.start({
      sims: [
        {
          name: 'phone',
          transport: 'usb',
          seed: 431,
          faults: { delayFirstMessageMs: Number(HOLD_MS) },
        },
      ],
    });
  });
  after(async () => {
    await s?.close();
  });

  /** Resolves once the device's backup has started and the agent shows it running. */
  async function runningAttempt(udid: string): Promise<number> {
    return s.waitFor('a running backup', async () => {
      const d = await s.device(udid);
      return d.running !== null && s.simSaw('phone', 'mobilebackup2.request', { name: 'Backup' })
        ? d.running.attemptId
        : undefined;
    });
  }

  it('kill -9 mid-backup, start again: interrupted recorded, then the next run succeeds', async () => {
    const udid = s.udid('phone');
    const attemptId = await runningAttempt(udid);
    const killed = await s.stopAgent('SIGKILL');
    assert.equal(killed.signal, 'SIGKILL');
    // What the killed agent left: its attempt still 'running' in the file.
    const left = execFileSync(
      'sqlite3',
      [
        '-readonly',
        path.join(s.dataDir, 'history.db'),
        `SELECT outcome FROM attempts WHERE id = ${attemptId}`,
      ],
      { encoding: 'utf8' },
    ).trim();
    assert.equal(left, 'running');

    await s.sim('phone').ctl('fault', { name: 'delayFirstMessageMs', value: 'off' });
    await s.startAgent();
    const a = await s.waitForAttempt(udid, 'the interrupted attempt', (x) => x.id === attemptId);
    assert.equal(a.outcome, 'interrupted');
    assert.equal(a.reasonCode, 'INTERRUPTED');
    assert.ok(a.endedAt !== null);
    const note = (await s.notifications(udid)).find((n) => n.attemptId === attemptId);
    assert.ok(note, 'an INTERRUPTED notice for the attempt');
    assert.equal(note.reasonCode, 'INTERRUPTED');
    assert.equal(note.severity, 'warning');
    assert.match(
      note.message,
      /^The backup \(started .+\) was interrupted because Mooring stopped; the last complete backup is untouched/,
    );

    const ok = await s.waitForAttempt(
      udid,
      'the next run',
      (x) => x.id > attemptId && x.outcome === 'success',
    );
    assert.equal(ok.trigger, 'schedule');
    assert.ok(await exists(path.join(s.latestDir(udid), 'Status.plist')));
    assert.deepEqual(
      await treeNames(s.stagingDir(udid)),
      [],
      'the killed run left no staging behind',
    );
    assert.equal((await s.snapshots(udid)).length, 1);
  });

  it('SIGTERM mid-backup: a clean exit 0, the attempt recorded interrupted, the last backup intact', async () => {
    const udid = s.udid('phone');
    const latest = await fingerprint(s.latestDir(udid));
    await s.sim('phone').ctl('mutate', { add: 3, modify: 2 });
    await s.sim('phone').ctl('fault', { name: 'delayFirstMessageMs', value: HOLD_MS });
    s.simLogs.get('phone')!.length = 0;
    const started = await s.api<BackupNowResult>('POST', `/api/devices/${udid}/backup`);
    assert.equal(started.started, true, JSON.stringify(started));
    const attemptId = await runningAttempt(udid);
    assert.equal(attemptId, started.attemptId);

    const stopped = await s.stopAgent('SIGTERM');
    assert.deepEqual(stopped, { code: 0, signal: null }, 'a clean exit');
    assert.equal(await exists(path.join(s.dataDir, 'agent.json')), false, 'agent.json removed');

    const row = JSON.parse(
      execFileSync(
        'sqlite3',
        [
          '-readonly',
          '-json',
          path.join(s.dataDir, 'history.db'),
          `SELECT a.outcome, a.reason_code, n.reason_code AS notice FROM attempts a LEFT JOIN notifications n ON n.attempt_id = a.id WHERE a.id = ${attemptId}`,
        ],
        { encoding: 'utf8' },
      ),
    ) as Array<{ outcome: string; reason_code: string; notice: string | null }>;
    assert.ok(row.length >= 1);
    assert.equal(row[0]!.outcome, 'interrupted');
    assert.equal(row[0]!.reason_code, 'INTERRUPTED');
    assert.ok(
      row.some((r) => r.notice === 'INTERRUPTED'),
      JSON.stringify(row),
    );

    assert.deepEqual(
      await fingerprint(s.latestDir(udid)),
      latest,
      'the last complete backup is unchanged',
    );
    assert.deepEqual(await treeNames(s.stagingDir(udid)), [], 'the cancelled run left no staging');
  });
});

describe(
  'mooring agent: a disk too small for the backup',
  { skip: isRoot ? false : 'needs root to mount a small tmpfs' },
  () => {
    let s: Scenario;
    /** Stays in place while the test polls staging: any payload seen there is recorded. */
    const seenInStaging = new Set<string>();

    before(async () => {
      s = await Scenario.start({
        sims: [{ name: 'big', transport: 'usb', seed: 441 }],
        startAgent: false,
      });
      // Room for the store's own files, far less than the device's 128 MiB margin + the backup.
      const mnt = s.mountTmpfs('small-disk', 32 * 1024 * 1024);
      s.backupDir = path.join(mnt, 'backups');
    });
    after(async () => {
      await s?.close();
    });

    it('NOT_ENOUGH_SPACE before any data moved', async () => {
      await s.startAgent();
      const udid = s.udid('big');
      const staging = s.stagingDir(udid);
      let failed;
      for (;;) {
        // Watch staging while the attempt runs: no payload (xx/<40 hex>) may ever appear.
        for (const n of await treeNames(staging)) if (/[0-9a-f]{40}/.test(n)) seenInStaging.add(n);
        const attempts = await s.attempts(udid);
        failed = attempts.find((a) => a.outcome !== 'running');
        if (failed) break;
        if (s.agent === undefined) assert.fail('agent gone');
        await new Promise((r) => setTimeout(r, 25));
        if (Date.now() - (attempts[0]?.startedAt ?? Date.now()) > 90_000)
          assert.fail(await s.diagnostics());
      }
      assert.equal(failed.outcome, 'failure', JSON.stringify(failed));
      assert.equal(failed.reasonCode, 'NOT_ENOUGH_SPACE', JSON.stringify(failed));
      assert.equal(failed.bytes, 0, 'no bytes moved');
      assert.equal(failed.snapshotId, null);

      const note = (await s.notifications(udid)).find((n) => n.attemptId === failed.id);
      assert.ok(note, 'a notification for the attempt');
      assert.equal(note.reasonCode, 'NOT_ENOUGH_SPACE');
      assert.equal(note.severity, 'error');
      assert.match(note.message, /^Not enough free space on this computer: .*(needed|free)/);
      // A first backup: no older one "make room" could remove, so the fix does not name it (D48).
      assert.match(note.fixHint ?? '', /^Free up space on .+ or choose another backup folder$/);

      // The device asked for the free space, found too little and sent no file.
      const events = s.simEvents('big');
      assert.ok(events.includes('mobilebackup2.purge-request'), events.join(' '));
      assert.ok(!events.includes('mobilebackup2.uploaded'), 'the device uploaded nothing');
      assert.deepEqual([...seenInStaging], [], 'no payload was ever staged');
      const left = (await treeNames(s.backupDir)).filter((n) => /[0-9a-f]{40}/.test(n));
      assert.deepEqual(left, [], 'no payload anywhere in the backup folder');
      assert.equal(await exists(s.latestDir(udid)), false, 'no half backup became the latest');
    });
  },
);
