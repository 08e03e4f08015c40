/**
 * Fault matrix, the agent (`mooring agent`, a real child process, with a simulated iPhone on USB):
 * - SIGKILL in a random phase of a backup (a random moment into it), then started again: the attempt is recorded
 *   interrupted (or success, when the kill came after its end), the latest complete backup
 *   verifies, nothing staged is left, and the next backup succeeds;
 * - the history database locked by another process (the sqlite3 CLI holding an exclusive
 *   transaction) while a backup ends: the backup is committed, and its end is recorded once the
 *   lock goes (instead of the attempt staying "running");
 * - the history database damaged (bytes overwritten): the agent refuses to start with a message
 *   that says what to do, never recreates it over the user's history; the backups are untouched;
 *   with the file moved aside as told, the agent starts, knows the device's last backup from the
 *   backup folder (so none is due at once), and backs up again when asked.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync, writeSync, promises as fsp, statSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { BackupNowResult } from '../../src/agent/types';
import { dateOfSnapshotId, verifyBackupFolder } from '../../src/store';
import { Scenario, treeNames } from '../helpers/agent-harness';
import { FaultReport, prng, RUNS } from './report';

const report = new FaultReport('agent-faults');
/** A new seed each run (in the report's notes); `RELIABILITY_SEED=S` replays one. */
const seed = Number(process.env.RELIABILITY_SEED) || Date.now() % 1_000_000;
const random = prng(seed);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** Where the agent is killed: the device status's backup phases. */
const PHASES = ['connecting', 'locking', 'preparing', 'transferring', 'finishing'];

describe('mooring agent under faults', () => {
  let s: Scenario;
  let udid: string;

  before(async () => {
    s = await Scenario.start({
      sims: [{ name: 'phone', transport: 'usb', seed: 741, files: 30, bytes: 1_200_000 }],
    });
    udid = s.udid('phone');
    await s.waitForAttempt(udid, 'the first backup', (a) => a.outcome === 'success');
  });
  after(async () => {
    report.write();
    await s?.close();
  });

  async function latestVerifies(): Promise<void> {
    const v = await verifyBackupFolder(s.latestDir(udid), udid);
    assert.equal(v.ok, true, `the latest backup verifies: ${JSON.stringify(v.problems[0])}`);
  }

  /** Asks for a backup now (retrying while a scheduled one still holds the slot). */
  async function backupNow(): Promise<number> {
    return s.waitFor('a backup to start', async () => {
      const r = await s.api<BackupNowResult>('POST', `/api/devices/${udid}/backup`);
      return 'attemptId' in r ? (r.attemptId as number) : undefined;
    });
  }

  it('SIGKILL at random moments of a backup, then a restart', async () => {
    for (let i = 0; i < 2 * RUNS; i++) {
      await report.trial('SIGKILL of mooring agent', 'at a random moment of a backup', async () => {
        await s.sim('phone').ctl('mutate', { add: 1, modify: 2 });
        const id = await backupNow();
        // A phase of the backup drawn at random, then a random 0–300 ms into it.
        const target = PHASES[Math.floor(random() * PHASES.length)]!;
        const delay = Math.floor(random() * 300);
        const reached = await s
          .waitFor(
            `phase ${target}`,
            async () => {
              const d = await s.device(udid);
              if (d.running === null) return 'ended';
              return d.running.phase === target ? target : undefined;
            },
            30_000,
            15,
          )
          .catch(() => 'not seen');
        await sleep(delay);
        const phase = `${target}${reached === target ? '' : ` (${reached})`}`;
        const killed = await s.stopAgent('SIGKILL');
        assert.equal(killed.signal, 'SIGKILL');
        await latestVerifies();
        await s.startAgent();
        const a = await s.waitForAttempt(
          udid,
          'the killed attempt',
          (x) => x.id === id && x.outcome !== 'running',
        );
        assert.ok(a.outcome === 'interrupted' || a.outcome === 'success', a.outcome);
        if (a.outcome === 'interrupted') assert.equal(a.reasonCode, 'INTERRUPTED');
        const next = await s.waitFor('the next backup', async () => {
          const later = (await s.attempts(udid)).filter((x) => x.id > id);
          if (later.some((x) => x.outcome === 'success')) return true;
          if (later.every((x) => x.outcome !== 'running')) await backupNow().catch(() => undefined);
          return undefined;
        });
        assert.equal(next, true);
        await latestVerifies();
        assert.deepEqual(await treeNames(s.stagingDir(udid)), [], 'nothing staged is left');
        report.note(
          'SIGKILL of mooring agent',
          'at a random moment of a backup',
          `seed ${seed}, ${phase} +${delay} ms: ${a.outcome}`,
        );
      });
    }
  });

  it('the history database locked by another process while a backup ends', async () => {
    await report.trial(
      'history database',
      'locked by the sqlite3 CLI (exclusive) as a backup ends',
      async () => {
        const db = path.join(s.dataDir, 'history.db');
        await s.sim('phone').ctl('mutate', { modify: 1 });
        await s.sim('phone').ctl('fault', { name: 'delayFirstMessageMs', value: '1500' });
        const backupEnds = (): number =>
          (s.simLogs.get('phone') ?? []).filter((l) =>
            /^mobilebackup2\.(done|failed|host-closed|dropped|connection-error)$/.test(
              String(l.event),
            ),
          ).length;
        const endsBefore = backupEnds();
        const id = await backupNow();
        const latestBefore = (await s.snapshots(udid)).find((x) => x.isLatest)?.id;
        const locker: ChildProcess = spawn('sqlite3', [db], { stdio: ['pipe', 'pipe', 'pipe'] });
        let lockerOut = '';
        locker.stdout!.on('data', (c: Buffer) => (lockerOut += c.toString()));
        locker.stdin!.write("BEGIN EXCLUSIVE;\nSELECT 'held';\n");
        try {
          await s.waitFor('the lock to be held', () => lockerOut.includes('held'), 10_000, 20);
          await s.sim('phone').ctl('fault', { name: 'delayFirstMessageMs', value: 'off' });
          // The backup itself does not need the history: it goes on while the lock is held (the
          // agent's own writes meanwhile wait for the lock, then fail and are logged).
          await s
            .waitFor(
              'the device to end the backup',
              () => backupEnds() > endsBefore || undefined,
              30_000,
              50,
            )
            .catch(() => undefined);
          await sleep(1500); // the end is tried and refused while the lock is held
        } finally {
          locker.stdin!.end('COMMIT;\n.quit\n');
          await new Promise((r) => locker.once('close', r));
        }
        const a = await s.waitForAttempt(
          udid,
          'the end recorded after the lock',
          (x) => x.id === id && x.outcome !== 'running',
          60_000,
        );
        // Committed (the usual case) or failed (the agent's wait for the lock held up the device
        // too long): either way recorded, and the latest complete backup whole.
        assert.ok(a.outcome === 'success' || a.outcome === 'failure', a.outcome);
        if (a.outcome === 'success') {
          const l = (await s.snapshots(udid)).find((x) => x.isLatest)?.id;
          assert.notEqual(l, latestBefore, 'a success names a new latest');
        }
        await latestVerifies();
        report.note(
          'history database',
          'locked by the sqlite3 CLI (exclusive) as a backup ends',
          `attempt ${a.outcome} (${a.reasonCode ?? ''})`,
        );
        const later = await backupNow();
        await s.waitForAttempt(
          udid,
          'a backup after it',
          (x) => x.id === later && x.outcome === 'success',
        );
      },
    );
  });

  it('the history database damaged: refused with what to do, backups untouched', async () => {
    await report.trial('history database', 'bytes overwritten (damaged pages)', async () => {
      const db = path.join(s.dataDir, 'history.db');
      const stopped = await s.stopAgent('SIGTERM');
      assert.equal(stopped.code, 0);
      const snapshots = await s.snapshots(udid);
      // Everything into the main file first, then scribble over the b-tree page headers of
      // every page after the first, as a bad disk would: found by the integrity check at open.
      execFileSync('sqlite3', [db, 'PRAGMA wal_checkpoint(TRUNCATE);']);
      const pages = Math.floor(statSync(db).size / 4096);
      assert.ok(pages >= 2, `pages: ${pages}`);
      const fd = openSync(db, 'r+');
      for (let p = 1; p < pages; p++) writeSync(fd, Buffer.alloc(64, 0xa5), 0, 64, p * 4096);
      closeSync(fd);
      const damagedBytes = await fsp.readFile(db);
      await assert.rejects(s.startAgent(), (e: Error) => {
        assert.match(e.message, /The history database .* is damaged .*move it aside/);
        return true;
      });
      s.agent = undefined;
      assert.deepEqual(await fsp.readFile(db), damagedBytes, 'the damaged file is left as it was');
      assert.deepEqual(await s.snapshots(udid), snapshots, 'the backups are untouched');
      await latestVerifies();
      // What the message tells the user to do: move it aside; a new history starts.
      await fsp.rename(db, `${db}.damaged`);
      for (const x of ['-wal', '-shm']) await fsp.rm(`${db}${x}`, { force: true });
      await s.startAgent();
      // A new history knows no backup, but the folder does: the device is not "never backed
      // up", and nothing is due until an interval after its latest snapshot.
      const latest = snapshots.find((x) => x.isLatest)!;
      const d = await s.waitFor('the device known again, not due', async () => {
        const x = await s.device(udid).catch(() => undefined);
        return x?.next.code === 'NOT_DUE' ? x : undefined;
      });
      assert.equal(d.lastSuccess, dateOfSnapshotId(latest.id)?.getTime(), JSON.stringify(d));
      assert.equal((await s.attempts(udid)).length, 0, 'no backup started by itself');
      const id = await backupNow();
      const done = await s.waitForAttempt(
        udid,
        'a backup with a new history',
        (x) => x.id === id && x.outcome !== 'running',
      );
      assert.equal(done.outcome, 'success', done.message ?? '');
      assert.equal(
        (await s.snapshots(udid)).length,
        snapshots.length + 1,
        'the store kept every snapshot',
      );
    });
  });
});
