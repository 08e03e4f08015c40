/**
 * The schedule counts what the backup folder holds, not only the agent's own attempts: a backup
 * made by `mooring backup` (a real child process, on the same simulated iPhone through its
 * usbmuxd) beside a running agent moves the next due time and the device's "last backup"; and
 * when backup-dir moves to an empty folder the next backup starts at once, into that folder,
 * instead of an interval after the last one made elsewhere; and a folder that does not answer (a
 * hung network mount) holds up no round of decisions, nor piles up reads.
 */
import assert from 'node:assert/strict';
import { existsSync, promises as fsp, type PathLike } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { Agent } from '../../src/agent/agent';
import type { DeviceStatus } from '../../src/agent/types';
import { dateOfSnapshotId } from '../../src/store';
import { runMooring } from '../cli/backup-fixture';
import {
  backUpNow,
  nextAttempt,
  simFixture,
  type SimFixture,
  untilOnUsb,
  waitForEvent,
} from './agent-helpers';

const HOUR = 3_600_000;

describe('the schedule and the backup folder', () => {
  let f: SimFixture;
  let agent: Agent;
  let udid: string;

  before(async () => {
    f = await simFixture('mooring-folder-backups-', { files: 8, bytes: 60_000, seed: 97 });
    udid = f.udid;
    agent = await Agent.open(f.agentOptions());
    // Automatic backups start off: the first backup is the test's own.
    agent.setConfig({ enabled: 'false' });
    await agent.start();
    await untilOnUsb(agent, udid);
  });
  after(async () => {
    await agent?.stop();
    await f?.close();
  });

  /** Applies `changes` and returns the device's status once its next step is NOT_DUE at `at`. */
  async function notDueAt(changes: Record<string, string>, at: number): Promise<DeviceStatus> {
    const seen = waitForEvent(agent, `NOT_DUE at ${new Date(at).toISOString()}`, (e) =>
      e.type === 'device' &&
      e.device.udid === udid &&
      e.device.next.code === 'NOT_DUE' &&
      e.device.next.at === at
        ? e.device
        : undefined,
    );
    agent.setConfig(changes, udid);
    return seen;
  }

  it('a `mooring backup` beside the agent counts: the next is due an interval after it', async () => {
    const own = await backUpNow(agent, udid);
    await notDueAt({ enabled: 'true', interval: '2h' }, own.startedAt + 2 * HOUR);
    // Snapshot ids keep whole seconds: the command line's begins in a later one, as it would.
    await delay(Math.max(0, (own.endedAt ?? own.startedAt) + 1000 - Date.now()));

    const cli = await runMooring([
      'backup',
      '--udid',
      udid,
      '--dest',
      agent.backupDir,
      '--usbmuxd',
      f.sim.usbmuxdAddress,
      '--data-dir',
      f.dataDir,
      '--json',
    ]);
    assert.equal(cli.code, 0, cli.err);
    const id = (cli.result?.snapshot as { id: string } | undefined)?.id ?? 'none';
    const cliAt = dateOfSnapshotId(id)?.getTime();
    assert.ok(cliAt !== undefined && cliAt > own.startedAt, `a newer snapshot: ${id}`);

    // The next round of decisions (here on a change of interval) reads the folder.
    const status = await notDueAt({ interval: '3h' }, cliAt + 3 * HOUR);
    assert.equal(status.lastSuccess, cliAt, "the device's last backup is the command line's");
    assert.equal(status.latestSnapshot?.id, id);
    assert.match(status.next.message, /last backup/);
    // Nothing of the agent's own ran for it.
    assert.equal(agent.attempts({ udid, limit: 10 }).items.length, 1);
  });

  it('backup-dir moved to an empty folder: the next backup starts at once, into it', async () => {
    const newDir = path.join(f.tmp, 'new disk', 'iPhone backups');
    const started = nextAttempt(agent, udid, (a) => a.outcome === 'running', 'a backup to start');
    const ended = nextAttempt(agent, udid, (a) => a.outcome !== 'running', 'the backup to end');
    agent.setConfig({ 'backup-dir': newDir });
    const a = await started;
    assert.equal(a.trigger, 'schedule', 'started by the schedule, 3 h before it was due');
    const done = await ended;
    assert.equal(done.outcome, 'success', done.message ?? '');
    assert.ok(
      existsSync(path.join(newDir, udid, 'Manifest.db')),
      'the backup is in the new folder',
    );
    await agent.nextBackupPrepared(udid);
    // And then it is not due again until an interval after that one.
    await notDueAt({ interval: '4h' }, done.startedAt + 4 * HOUR);
  });

  it('a backup folder that does not answer (a hung network mount) holds no round up, and is asked once', async () => {
    const dest = agent.backupDir;
    const real = fsp.stat;
    const held: Array<() => void> = [];
    let asked = 0;
    // Every stat under the folder hangs until released, as on a mount whose server went away.
    const hanging = (p: PathLike, ...rest: unknown[]): Promise<unknown> => {
      const call = (): Promise<unknown> =>
        (real as (...a: unknown[]) => Promise<unknown>)(p, ...rest);
      if (!String(p).startsWith(dest)) return call();
      asked++;
      return new Promise((resolve, reject) => held.push(() => void call().then(resolve, reject)));
    };
    (fsp as { stat: unknown }).stat = hanging;
    try {
      for (let i = 0; i < 3; i++) {
        await agent['onTick']({
          reason: 'poke',
          at: new Date(),
          signal: new AbortController().signal,
        });
      }
      assert.equal(asked, 1, 'one read of the folder, which the later rounds join');
      assert.equal(agent.device(udid)?.next.code, 'NOT_DUE', 'decided with what was read before');
    } finally {
      fsp.stat = real;
      for (const release of held) release();
    }
  });
});
