/**
 * Issue 3 acceptance, full disk, on a REAL small filesystem: the destination is a tmpfs mounted for
 * this test (root only; tmpfs has hard links and real ENOSPC). First a backup that does not fit
 * (the device asks for the free space and gives up, MBErrorDomain 105), then a disk that fills up
 * in the middle of a transfer (our writes fail with ENOSPC). Each ends in one clear line, with the
 * previous backup verified and unchanged, no staging left, no journal, the snapshot list as it was;
 * once space is back the next backup succeeds. The mount is always removed.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { DEVICE_MARGIN, SMALL_DISK_SKIP, SmallDisk } from '../helpers/small-disk';
import {
  exists,
  fingerprint,
  killChildren,
  snapshots,
  startCliSim,
  storePaths,
  treeNames,
  verifyOk,
  type CliSim,
} from './backup-fixture';

const MIB = 1024 * 1024;

let cs: CliSim | undefined;
let mnt: string | undefined;
let disk: SmallDisk | undefined;

before(async () => {
  if (SMALL_DISK_SKIP) return;
  cs = await startCliSim({ seed: 304, files: 40, bytes: 1_000_000 });
  mnt = path.join(cs.tmp, 'mnt');
  await fsp.mkdir(mnt);
  disk = new SmallDisk(mnt);
});

after(async () => {
  killChildren();
  disk?.unmount();
  await cs?.close();
});

/** The previous backup is whole and unchanged and nothing of the failed one is left. */
async function assertUntouched(
  dest: string,
  latestBefore: Map<string, string>,
  listBefore: unknown,
  stagingUntilRecovery = false,
): Promise<void> {
  const p = storePaths(dest, cs!.sim.udid);
  if (!stagingUntilRecovery) assert.deepEqual(await treeNames(p.staging), [], 'no staging left');
  assert.equal(await exists(p.journal), false, 'no commit journal');
  assert.deepEqual(await fingerprint(p.latest), latestBefore, 'the latest backup is unchanged');
  await verifyOk(cs!, dest);
  assert.deepEqual(await snapshots(cs!, dest), listBefore, 'the snapshot list is unchanged');
  assert.deepEqual(await treeNames(p.staging), [], 'no staging left');
}

/** The failure line on stderr: exactly one `mooring: …` line, about space. */
function failureLine(err: string): string {
  const lines = err.split('\n').filter((l) => l.startsWith('mooring: '));
  assert.equal(lines.length, 1, err);
  return lines[0]!;
}

test(
  'a full destination disk: a clear error, the previous backup intact',
  { skip: SMALL_DISK_SKIP },
  async () => {
    const c = cs!;
    disk!.mount(DEVICE_MARGIN + 8 * MIB);
    const dest = path.join(mnt!, 'backups');
    const first = await c.mooring(['backup', '--dest', dest, '--json']);
    assert.equal(first.code, 0, first.err);
    const latestBefore = await fingerprint(storePaths(dest, c.sim.udid).latest);
    const listBefore = await snapshots(c, dest);
    assert.equal(listBefore.length, 1);

    // 1. More new content than the disk has room for: the device checks and refuses (105).
    const m = (await c.sim.ctl('mutate', { add: 30, modify: 10 })) as {
      added: string[];
      modified: string[];
    };
    const changed = new Set([...m.added, ...m.modified]);
    const l = await c.listing();
    const newBytes = l.entries
      .filter((e) => e.type === 'file' && changed.has(`${e.domain}/${e.relativePath}`))
      .reduce((a, e) => a + e.size, 0);
    assert.ok(newBytes > 256 * 1024, `enough new bytes to matter (${newBytes})`);
    // Room for the device's margin and half of the new bytes: it would fit without them.
    disk!.resize(disk!.usage().used + DEVICE_MARGIN + newBytes / 2);
    const tooBig = await c.mooring(['backup', '--dest', dest]);
    assert.equal(tooBig.code, 1, tooBig.err);
    assert.match(failureLine(tooBig.err), /^mooring: Not enough free space on this computer/);
    await assertUntouched(dest, latestBefore, listBefore);

    // 2. Room enough when it starts, but the disk fills up mid-transfer (another program).
    disk!.resize(disk!.usage().used + DEVICE_MARGIN + 16 * MIB);
    const held = c.gate.holdAfter(Math.round(l.bytes * 0.4));
    const filler = path.join(mnt!, 'filler.bin');
    const running = c.mooring(['backup', '--dest', dest, '--full', '--json']);
    await Promise.race([held, running.then((r) => assert.fail(`ended early: ${r.err}`))]);
    await fillDisk(filler);
    assert.ok(disk!.usage().free < 4096, `the disk is full (${disk!.usage().free} free)`);
    c.gate.release();
    const filled = await running;
    assert.equal(filled.code, 1, filled.out + filled.err);
    assert.equal(filled.result?.ok, false);
    assert.match(String(filled.result?.message), /^Not enough free space on this computer/);
    assert.equal(filled.result?.failure, 'local-io', 'our disk, not the device, failed');
    // Still full (what the failed backup freed is taken too): the previous backup can be
    // checked and listed all the same.
    await fillDisk(filler);
    await assertUntouched(dest, latestBefore, listBefore);
    await fsp.rm(filler);

    // 3. The disk fills up after the transfer, just before the commit (the journal write).
    let finishing!: () => void;
    const frozen = new Promise<void>((resolve) => (finishing = resolve));
    const late = c.mooring(['backup', '--dest', dest, '--json'], {
      onEvent: (e) => {
        // Hold the device's replies so the process waits in its clean-up, then fill up.
        if (e.type === 'phase' && e.phase === 'finishing') {
          c.gate.freeze();
          finishing();
        }
      },
    });
    await Promise.race([frozen, late.then((r) => assert.fail(`ended early: ${r.err}`))]);
    await fillDisk(filler);
    c.gate.release();
    const lateResult = await late;
    assert.equal(lateResult.code, 1, lateResult.out + lateResult.err);
    assert.match(
      failureLine(lateResult.err),
      /^mooring: Not enough free space on this computer to commit the backup/,
    );
    await assertUntouched(dest, latestBefore, listBefore, true);

    // 4. Completely full before it starts: not even the lock file fits.
    await fillDisk(filler);
    const none = await c.mooring(['backup', '--dest', dest]);
    assert.equal(none.code, 1, none.err);
    assert.match(failureLine(none.err), /^mooring: Not enough free space on this computer/);
    assert.equal(await exists(storePaths(dest, c.sim.udid).lock), false, 'no lock left behind');
    await assertUntouched(dest, latestBefore, listBefore);
    await fsp.rm(filler);

    // 5. Space back: the next backup succeeds at once and is the new latest.
    disk!.resize(DEVICE_MARGIN + 32 * MIB);
    const ok = await c.mooring(['backup', '--dest', dest, '--json']);
    assert.equal(ok.code, 0, ok.err);
    assert.equal(ok.result?.ok, true);
    assert.equal((await snapshots(c, dest)).length, 2);
  },
);

/** Writes `file` until the filesystem says ENOSPC, in ever smaller pieces. */
async function fillDisk(file: string): Promise<void> {
  const fh = await fsp.open(file, 'w');
  try {
    for (let chunk = 4 * MIB; chunk >= 4096; chunk /= 4) {
      const buf = Buffer.alloc(chunk, 0x5a);
      for (;;) {
        try {
          await fh.write(buf);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'ENOSPC') break;
          throw e;
        }
      }
    }
  } finally {
    await fh.close();
  }
}
