/**
 * The backup-dir check on real file systems: a folder on the temp folder's disk is accepted and
 * left as it was; a folder on a real exFAT (a loop device, mounted by Debian's exfat-fuse), which
 * takes a first backup but refuses the hard links every later one needs, is refused with what to
 * do; a file is refused. An agent started with its folder on that exFAT (the start option is not
 * checked) backs up once, then says to choose another disk. The exFAT needs root, /dev/fuse and the exfat-fuse and exfatprogs
 * packages (installed by .ci/run); without them that case is skipped, saying why.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it, test } from 'node:test';
import { Agent } from '../../src/agent/agent';
import { prepareBackupFolder } from '../../src/agent/backup-folder';
import { FOLDER_SHARES_NOTHING_FIX } from '../../src/history';
import { isMooringError } from '../../src/util/errors';
import { tempDirs } from '../helpers/temp-dirs';
import { backUpNow, nextAttempt, notificationsOf, simFixture, startedOnUsb } from './agent-helpers';

const dirs = tempDirs('mooring-backup-folder-');
after(dirs.cleanup);

function refused(dir: string, message: RegExp): void {
  assert.throws(
    () => prepareBackupFolder(dir),
    (e: unknown) => isMooringError(e, 'USAGE') && message.test(e.message),
  );
}

function whyNoExfat(): string | undefined {
  if (process.getuid?.() !== 0) return 'not root (a loop device and a FUSE mount are needed)';
  if (!existsSync('/dev/fuse')) return '/dev/fuse is missing';
  for (const tool of ['/usr/sbin/mkfs.exfat', '/usr/sbin/mount.exfat-fuse']) {
    if (!existsSync(tool)) return `${tool} is missing (apt-get install exfatprogs exfat-fuse)`;
  }
  return undefined;
}

test('a folder on this disk is accepted (created if missing) and left empty', () => {
  const dir = path.join(dirs.tmp(), 'new', 'iPhone backups');
  prepareBackupFolder(dir);
  assert.deepEqual(readdirSync(dir), [], 'the probe files are gone');
  prepareBackupFolder(dir);
  const file = path.join(dirs.tmp(), 'a-file');
  writeFileSync(file, 'x');
  refused(file, /^backup-dir: cannot use .*a-file.*\. Choose a folder this user may write to$/);
});

describe('a folder on exFAT', { skip: whyNoExfat() ?? false }, () => {
  let image: string;
  let loop: string;
  let mountPoint: string;

  before(() => {
    const tmp = dirs.tmp();
    image = path.join(tmp, 'exfat.img');
    mountPoint = path.join(tmp, 'mnt');
    mkdirSync(mountPoint);
    execFileSync('truncate', ['-s', '256M', image]);
    execFileSync('/usr/sbin/mkfs.exfat', [image], { stdio: 'ignore' });
    loop = execFileSync('losetup', ['-f', '--show', image]).toString().trim();
    execFileSync('/usr/sbin/mount.exfat-fuse', [loop, mountPoint], { stdio: 'ignore' });
  });
  after(() => {
    if (mountPoint !== undefined) execFileSync('umount', [mountPoint], { stdio: 'ignore' });
    if (loop !== undefined) execFileSync('losetup', ['-d', loop]);
  });

  it('is refused: every backup after the first would fail there; nothing is left behind', () => {
    const dir = path.join(mountPoint, 'iPhone backups');
    refused(
      dir,
      /cannot share files between backups \(hard links refused: E\w+; .*\), so every backup after the first would fail\. Choose a folder on a disk formatted APFS, NTFS, ext4, Btrfs or XFS \(not exFAT or FAT32\)$/,
    );
    assert.deepEqual(readdirSync(dir), [], 'the probe files are gone');
  });

  it('an agent started with such a folder: the first backup works, the next says to choose another disk', async () => {
    const f = await simFixture('mooring-backup-folder-exfat-', {
      files: 8,
      bytes: 50_000,
      seed: 81,
    });
    let agent: Agent | undefined;
    try {
      agent = await startedOnUsb(
        f.agentOptions({ backupDir: path.join(mountPoint, 'agent') }),
        f.udid,
      );
      assert.equal((await backUpNow(agent, f.udid)).outcome, 'success');
      const ended = nextAttempt(agent, f.udid, (a) => a.outcome !== 'running', 'the backup to end');
      assert.equal((await agent.backupNow(f.udid)).started, true);
      const second = await ended;
      assert.equal(second.outcome, 'failure');
      const notice = notificationsOf(agent, f.udid).find(
        (n) => n.attemptId === second.id && n.severity === 'error',
      );
      assert.ok(notice, 'the failure is recorded');
      assert.equal(notice.reasonCode, 'BACKUP_FAILED');
      assert.match(notice.message, /the filesystem refuses hard links/);
      assert.equal(notice.fixHint, FOLDER_SHARES_NOTHING_FIX);
      // The first backup is still the latest, whole.
      assert.equal((await agent.snapshots(f.udid)).length, 1);
    } finally {
      await agent?.stop();
      await f.close();
    }
  });
});
