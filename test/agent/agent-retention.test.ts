/**
 * The agent keeps the backup folder by the retention settings and can move it, against a
 * simulated iPhone on USB and real snapshot folders: after each committed backup the device's
 * snapshots the policy no longer keeps are removed (pinned and latest kept); a prune that fails
 * leaves the new backup good and is recorded as PRUNE_FAILED, and is finished by a later backup;
 * backup-dir moves new backups to another folder (refused while a backup runs, or for a folder
 * that cannot be written), leaves the old folder as it is, and survives a restart.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { Agent, type AgentOptions } from '../../src/agent/agent';
import { dateOfSnapshotId, openStore } from '../../src/store';
import { isMooringError } from '../../src/util/errors';
import {
  backUpNow,
  keepingLog,
  nextAttempt,
  notificationsOf,
  simFixture,
  type SimFixture,
  startedOnUsb,
  untilOnUsb,
} from './agent-helpers';

/** A file system other than the temp folder's (tmpfs on Linux). */
const OTHER_FS = '/dev/shm';

describe('Agent: retention and the backup folder', () => {
  let f: SimFixture;
  let tmp: string;
  let agent: Agent;
  let udid: string;
  let options: AgentOptions;

  /** One manual backup to its end; the committed snapshot's id. */
  async function backUp(): Promise<{ snapshotId: string; attemptId: number }> {
    const a = await backUpNow(agent, udid);
    return { snapshotId: a.snapshotId, attemptId: a.id };
  }

  /**
   * Snapshot ids are whole seconds and unique, so quick backups get ids a little ahead of the
   * clock; retention keeps a snapshot "from the future" as young. Waits until `id` is past.
   */
  async function past(id: string): Promise<void> {
    const ms = dateOfSnapshotId(id)!.getTime() + 1001 - Date.now();
    if (ms > 0) await delay(ms);
  }

  const snapshotDir = (dir: string, id: string): string =>
    path.join(dir, '.mooring', udid, 'snapshots', id);

  async function ids(): Promise<string[]> {
    return (await agent.snapshots(udid)).map((s) => s.id);
  }

  function usage(fn: () => unknown, message: RegExp): void {
    assert.throws(fn, (e: unknown) => isMooringError(e, 'USAGE') && message.test(e.message));
  }

  before(async () => {
    f = await simFixture('mooring-agent-retention-', {
      files: 12,
      bytes: 200_000,
      seed: 53,
      name: 'Retention iPhone',
    });
    ({ tmp, udid } = f);
    options = f.agentOptions();
    agent = await startedOnUsb(options, udid);
  });
  after(async () => {
    await agent?.stop();
    await f?.close();
  });

  it('prunes after each backup by the device own policy; pinned and latest stay', async () => {
    const dir = agent.backupDir;
    const s1 = (await backUp()).snapshotId;
    const s2 = (await backUp()).snapshotId;
    const s3 = (await backUp()).snapshotId;
    // The default policy keeps everything younger than 14 days.
    assert.deepEqual(await ids(), [s1, s2, s3]);

    const store = await openStore(dir, udid);
    await store.pin(s2);
    agent.setConfig({ 'keep-all': '0s', 'keep-daily': '0s', 'keep-weekly': '0s' }, udid);
    assert.equal(agent.getConfig()['keep-all'], '14d', 'the global policy is unchanged');
    assert.equal(agent.getConfig(udid)['keep-all'], '0s');

    await past(s3);
    const s4 = (await backUp()).snapshotId;
    assert.deepEqual(await ids(), [s2, s4]);
    assert.equal(existsSync(snapshotDir(dir, s1)), false, `${s1} removed`);
    assert.equal(existsSync(snapshotDir(dir, s3)), false, `${s3} removed`);
    assert.equal(existsSync(snapshotDir(dir, s2)), true, 'the pinned snapshot stays');
    assert.equal(existsSync(path.join(dir, udid, 'Manifest.db')), true, 'the latest stays');
    assert.equal(agent.device(udid)?.latestSnapshot?.id, s4);
    const pinned = (await agent.snapshots(udid)).find((s) => s.id === s2);
    assert.equal(pinned?.pinned, true);
  });

  it('a prune that fails leaves the backup good, says so, and is finished later', async () => {
    const dir = agent.backupDir;
    const before = await ids();
    const s4 = before[before.length - 1]!;
    // Snapshots on their way out are renamed into trash/: on another file system that rename
    // fails (EXDEV), as it would for a folder moved there by hand.
    const trash = path.join(dir, '.mooring', udid, 'trash');
    const elsewhere = await mkdtemp(path.join(OTHER_FS, 'mooring-trash-'));
    await rm(trash, { recursive: true, force: true });
    await symlink(elsewhere, trash);

    await past(s4);
    const { snapshotId: s5, attemptId } = await backUp();
    const notice = notificationsOf(agent, udid).find((n) => n.reasonCode === 'PRUNE_FAILED');
    assert.ok(notice, 'PRUNE_FAILED recorded');
    assert.equal(notice.severity, 'warning');
    assert.equal(notice.attemptId, attemptId);
    assert.match(notice.message, /The backup is complete, but older backups could not be removed/);
    assert.ok(notice.fixHint);
    const attempt = agent.attempts({ udid, limit: 1 }).items[0]!;
    assert.equal(attempt.outcome, 'success', 'the backup itself counts as done');
    assert.equal(agent.device(udid)?.latestSnapshot?.id, s5);
    assert.equal(existsSync(snapshotDir(dir, s4)), true, `${s4} still there`);

    await rm(trash, { force: true });
    await rm(elsewhere, { recursive: true, force: true });
    await past(s5);
    const s6 = (await backUp()).snapshotId;
    assert.deepEqual(await ids(), [before[0]!, s6]);
    assert.equal(existsSync(snapshotDir(dir, s4)), false);
    assert.equal(existsSync(snapshotDir(dir, s5)), false);
  });

  it('moves new backups to another folder and leaves the old one as it is', async () => {
    const oldDir = agent.backupDir;
    const oldIds = await ids();
    const newDir = path.join(tmp, 'elsewhere', 'iphone-backups');

    // Refused while a backup writes into the current folder.
    const running = nextAttempt(agent, udid, (a) => a.outcome !== 'running', 'the backup to end');
    assert.equal((await agent.backupNow(udid)).started, true);
    usage(() => agent.setConfig({ 'backup-dir': newDir }), /a backup is running/);
    assert.equal((await running).outcome, 'success');
    const oldLatest = agent.device(udid)?.latestSnapshot?.id;

    // Folders that cannot hold backups are refused, and nothing changes.
    await writeFile(path.join(tmp, 'a-file'), 'x');
    usage(() => agent.setConfig({ 'backup-dir': 'relative/dir' }), /not an absolute path/);
    usage(
      () => agent.setConfig({ 'backup-dir': path.join(tmp, 'a-file', 'sub') }),
      /backup-dir: cannot use .*a-file/,
    );
    assert.equal(agent.backupDir, oldDir);
    assert.equal(agent.getConfig()['backup-dir'], oldDir, 'the default folder is shown');

    const config = agent.setConfig({ 'backup-dir': newDir });
    assert.equal(config['backup-dir'], newDir);
    assert.equal(agent.status().backupDir, newDir);
    const moved = agent
      .history({ limit: 5 })
      .items.find((n) => n.reasonCode === 'BACKUP_DIR_CHANGED');
    assert.ok(moved, 'BACKUP_DIR_CHANGED recorded');
    assert.equal(moved.udid, null);
    assert.ok(moved.message.includes(newDir) && moved.message.includes(oldDir), moved.message);
    assert.match(moved.message, /left there as they are/);
    assert.equal(agent.device(udid)?.latestSnapshot, null, 'the new folder has no backup yet');
    assert.deepEqual(await ids(), []);

    const s = (await backUp()).snapshotId;
    assert.ok(
      existsSync(path.join(newDir, udid, 'Manifest.db')),
      'the backup is in the new folder',
    );
    assert.deepEqual(await ids(), [s]);
    assert.equal(agent.device(udid)?.latestSnapshot?.id, s);
    // The old folder: exactly as it was.
    assert.ok(existsSync(path.join(oldDir, udid, 'Manifest.db')));
    for (const id of oldIds.slice(0, -1)) assert.ok(existsSync(snapshotDir(oldDir, id)), id);
    const oldStore = await openStore(oldDir, udid);
    assert.equal((await oldStore.resolve('latest')).id, oldLatest);

    // The choice survives a restart (it wins over the start option's default).
    await agent.stop();
    const logged: string[] = [];
    // The next backup's copy is made right after start here (D42), for a latest without one.
    agent = await Agent.open(keepingLog({ ...options, prepareAfterStartMs: 0 }, logged));
    assert.equal(agent.backupDir, newDir);
    assert.equal(agent.device(udid)?.latestSnapshot?.id, s);
    // A chosen folder that went away (its disk unplugged) is not created again: not for the next
    // backup's copy, and a backup fails.
    await rm(newDir, { recursive: true, force: true });
    const failed = nextAttempt(agent, udid, (a) => a.outcome !== 'running', 'the failed backup');
    await agent.start();
    await agent.nextBackupsPreparedAfterStart();
    assert.ok(
      logged.some((l) =>
        /^not preparing the next backup of .*: the backup folder .* is missing/.test(l),
      ),
      logged.join('\n'),
    );
    assert.equal(existsSync(newDir), false);
    await untilOnUsb(agent, udid);
    assert.equal((await agent.backupNow(udid)).started, true);
    const f = await failed;
    assert.equal(f.outcome, 'failure');
    assert.equal(f.reasonCode, 'BACKUP_FAILED');
    assert.match(f.message ?? '', /the backup folder .* is missing: connect the disk/);
    assert.equal(existsSync(newDir), false);
    // Back to the default folder.
    await mkdir(oldDir, { recursive: true });
    agent.setConfig({ 'backup-dir': null });
    assert.equal(agent.backupDir, oldDir);
    assert.equal(agent.getConfig()['backup-dir'], oldDir);
  });
});
