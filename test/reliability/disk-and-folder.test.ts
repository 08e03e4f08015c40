/**
 * Fault matrix, this computer's disk: the destination on a REAL small filesystem (a tmpfs mounted
 * for this test; root only, skipped otherwise) fills up at a random point of a transfer; the
 * backup folder is made read-only (remount) at a random point; the whole backup folder is removed
 * in the middle of a backup. Each: a failed job with one clear message (never a throw), no
 * complete backup lost that the fault did not itself delete, and once the cause is gone the next
 * backup succeeds.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { closeSync, openSync, promises as fsp, writeSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import type { JobEvent } from '../../src/job';
import { FaultReport, prng, RUNS } from './report';
import { assertNothingCompleteLost, latestState, startRig, type Rig } from './rig';

const run = promisify(execFile);
const isRoot = process.getuid?.() === 0;
const MIB = 1024 * 1024;
/** What the simulated device (like a real one) wants free beyond the backup itself. */
const TMPFS_BYTES = 200 * MIB;
const report = new FaultReport('disk-and-folder');
const random = prng(7301);
let rig: Rig;
let mnt: string;
let mounted = false;

before(async () => {
  if (!isRoot) return;
  rig = await startRig({ seed: 731, files: 40, bytes: 1_500_000 });
  mnt = path.join(rig.tmp, 'mnt');
  await fsp.mkdir(mnt);
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${TMPFS_BYTES},mode=0755`, 'tmpfs', mnt]);
  mounted = true;
  rig.dest = path.join(mnt, 'dest');
  const first = await rig.backup(await rig.usb());
  assert.equal(first.ok, true, first.message);
});

after(async () => {
  report.write();
  if (mounted) {
    await run('mount', ['-o', 'remount,rw', mnt]).catch(() => undefined);
    try {
      execFileSync('umount', [mnt]);
    } catch {
      execFileSync('umount', ['-l', mnt]);
    }
  }
  await rig?.close();
});

/**
 * Writes `file` until ENOSPC, in ever smaller pieces. Synchronous on purpose: called from the
 * job's progress event, it holds the engine right there until the disk is full.
 */
function fillDisk(file: string): void {
  const fd = openSync(file, 'w');
  try {
    for (let chunk = 4 * MIB; chunk >= 4096; chunk /= 4) {
      const buf = Buffer.alloc(chunk, 0x5a);
      for (;;) {
        try {
          writeSync(fd, buf);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'ENOSPC') break;
          throw e;
        }
      }
    }
  } finally {
    closeSync(fd);
  }
}

/** Remounts read-only; retried while the engine has a file open for writing (EBUSY). */
async function remountReadOnly(): Promise<void> {
  for (let i = 0; ; i++) {
    try {
      await run('mount', ['-o', 'remount,ro', mnt]);
      return;
    } catch (e) {
      if (i > 400) throw e;
      await new Promise((r) => setTimeout(r, 2));
    }
  }
}

/** A backup with a fault started at a random percentage of its transfer. */
async function faulted(
  fault: string,
  inject: () => Promise<void>,
  undo: () => Promise<void>,
): Promise<{ message: string; pct: number; stage: string }> {
  const pct = 5 + Math.floor(random() * 85);
  let injected: Promise<void> | undefined;
  const out = await rig.backup(await rig.usb(), {
    full: true,
    onEvent: (e: JobEvent) => {
      if (!injected && e.type === 'progress' && e.percent >= pct) injected = inject();
    },
  });
  await injected;
  await undo();
  assert.ok(injected, `${fault}: injected`);
  assert.equal(out.ok, false, `${fault}: the backup cannot succeed (${out.message})`);
  return { message: out.message, pct, stage: out.stage };
}

test('disk full at a random point of the transfer (real tmpfs)', { skip: !isRoot }, async () => {
  for (let i = 0; i < RUNS; i++) {
    await report.trial('this computer', 'disk full mid-transfer (tmpfs)', async () => {
      await rig.sim.ctl('mutate', { add: 1, modify: 2 });
      const before = await latestState(rig.dest, rig.sim.udid);
      const filler = path.join(mnt, 'filler');
      const r = await faulted(
        'disk full',
        async () => fillDisk(filler),
        () => fsp.rm(filler, { force: true }),
      );
      assert.match(r.message, /Not enough free space on this computer/);
      await assertNothingCompleteLost(rig.dest, rig.sim.udid, before, r.stage === 'commit');
      const next = await rig.backup(await rig.usb());
      assert.equal(next.ok, true, next.message);
      report.note(
        'this computer',
        'disk full mid-transfer (tmpfs)',
        `${r.pct}%: ${r.message.slice(0, 110)}`,
      );
    });
  }
});

test('the backup folder made read-only at a random point', { skip: !isRoot }, async () => {
  for (let i = 0; i < RUNS; i++) {
    await report.trial('this computer', 'backup folder made read-only mid-transfer', async () => {
      await rig.sim.ctl('mutate', { add: 1, modify: 2 });
      const before = await latestState(rig.dest, rig.sim.udid);
      const r = await faulted('read-only', remountReadOnly, async () => {
        await run('mount', ['-o', 'remount,rw', mnt]);
      });
      assert.match(r.message, /^The backup folder .* became read-only during the backup/);
      await assertNothingCompleteLost(rig.dest, rig.sim.udid, before, r.stage === 'commit');
      const next = await rig.backup(await rig.usb());
      assert.equal(next.ok, true, next.message);
      report.note(
        'this computer',
        'backup folder made read-only mid-transfer',
        `${r.pct}%: ${r.message.slice(0, 110)}`,
      );
    });
  }
});

test('the backup folder removed in the middle of a backup', { skip: !isRoot }, async () => {
  for (let i = 0; i < RUNS; i++) {
    await report.trial('this computer', 'backup folder removed mid-transfer', async () => {
      const r = await faulted(
        'removed',
        // At once, as an unplugged disk would (a rename away), then deleted for good.
        async () => {
          const gone = `${rig.dest}.removed`;
          await fsp.rename(rig.dest, gone);
          await fsp.rm(gone, { recursive: true, force: true, maxRetries: 50, retryDelay: 1 });
        },
        async () => undefined,
      );
      assert.match(r.message, /^The backup folder .* disappeared during the backup/);
      // What was removed was removed by the fault; the job did not recreate a broken backup.
      const after = await latestState(rig.dest, rig.sim.udid);
      assert.equal(after.id, null, 'no backup appears from the interrupted one');
      const next = await rig.backup(await rig.usb());
      assert.equal(next.ok, true, next.message);
      assert.equal(next.result.isFull, true, 'the next backup starts over, in full');
      report.note(
        'this computer',
        'backup folder removed mid-transfer',
        `${r.pct}%: ${r.message.slice(0, 110)}`,
      );
    });
  }
});
