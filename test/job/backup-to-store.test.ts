/**
 * backupToStore against an in-process simulator over its usbmuxd: a full then an incremental
 * backup committed as snapshots; a cancel, a revoked pairing, an unreachable Wi-Fi address and an
 * unusable destination each end as an outcome with the right stage (never a throw), and none of
 * them touches the latest complete backup.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { backupToStore, type JobEvent } from '../../src/job';
import { TcpEndpoint, UsbmuxEndpoint } from '../../src/lockdown/endpoint';
import type { PairRecord } from '../../src/pairing/pair-record';
import { startSim, type RunningSim } from '../../src/sim/index';
import { openStore, readAttempts } from '../../src/store';
import { stagedUsage } from '../../src/store/usage';
import { isMooringError } from '../../src/util/errors';
import { pairedEndpoint } from '../discovery/sim-helpers';

describe('backupToStore', () => {
  let tmp: string;
  let sim: RunningSim;
  let record: PairRecord;
  let dest: string;
  let endpoint: UsbmuxEndpoint;

  before(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'mooring-job-'));
    dest = path.join(tmp, 'backups');
    sim = await startSim({
      stateDir: path.join(tmp, 'sim'),
      usbmuxd: `UNIX:${path.join(tmp, 'usbmuxd.sock')}`,
      files: 20,
      bytes: 400_000,
      seed: 71,
      name: 'Job phone',
    });
    ({ record, endpoint } = await pairedEndpoint(sim, path.join(tmp, 'pair-records')));
  });
  after(async () => {
    await sim?.stop();
    await rm(tmp, { recursive: true, force: true });
  });

  const latestId = async (): Promise<string | undefined> => {
    const store = await openStore(dest, sim.udid);
    return (await store.list()).find((s) => s.isLatest)?.id;
  };

  it('backs up, verifies and commits a snapshot; the session hook sees the device', async () => {
    const events: JobEvent[] = [];
    let sessionName: unknown;
    const out = await backupToStore({
      endpoint,
      record,
      dest,
      onEvent: (e) => events.push(e),
      // A phone's Manifest.db is large enough to be read on another thread; this one is told to be.
      storeOptions: { rowsOffThreadBytes: 0 },
      onSession: async (s) => {
        sessionName = await s.getValue(undefined, 'DeviceName');
      },
    });
    assert.equal(out.ok, true, out.message);
    assert.equal(out.stage, 'commit');
    assert.equal(out.error, undefined);
    assert.equal(sessionName, 'Job phone');
    assert.ok(out.snapshot, 'a snapshot was committed');
    assert.equal(out.verify?.ok, true);
    assert.ok(out.result.filesReceived >= 20, `files received: ${out.result.filesReceived}`);
    // A full backup: every file the verify hashed was hashed as it arrived, none read back.
    assert.ok((out.verify?.hashed ?? 0) > 0);
    assert.equal(out.verify?.hashedWhileReceiving, out.verify?.hashed);
    // D34: its rows were read since the device sent Manifest.db, while it moved its files.
    assert.equal(out.verify?.rowsReadAhead, true);
    assert.ok(events.some((e) => e.type === 'phase' && e.phase === 'transferring'));
    assert.ok(events.some((e) => e.type === 'store' && /Verifying/.test(e.message)));
    assert.equal(await latestId(), out.snapshot.id);
    const store = await openStore(dest, sim.udid);
    const attempts = await readAttempts(store.stateDir);
    assert.equal(attempts.length, 1);
    assert.equal(attempts[0]!.ok, true);
    assert.equal(attempts[0]!.transport, 'usb');
  });

  it('a second backup is incremental and becomes the latest', async () => {
    await sim.ctl('mutate', { add: 2, modify: 2, delete: 1 });
    const before = await latestId();
    const out = await backupToStore({
      endpoint,
      record,
      dest,
      storeOptions: { rowsOffThreadBytes: 0 },
    });
    assert.equal(out.ok, true, out.message);
    assert.notEqual(out.snapshot?.id, before);
    // D34: compared with the previous snapshot's since the device sent it.
    assert.equal(out.verify?.rowsReadAhead, true);
    assert.equal(out.result.isFull, false);
    assert.equal(await latestId(), out.snapshot?.id);
    // D26: the engine reported what it changed; the verify left the rest out (at least the two
    // added and two modified files were checked), and the commit's sums are still a walk's.
    const v = out.verify!;
    assert.ok((v.unchangedFiles ?? 0) > 0 && v.unchangedFiles! <= v.files - 4, JSON.stringify(v));
    assert.match(out.message, new RegExp(`${v.unchangedFiles} unchanged since the previous`));
    const walked = await stagedUsage(path.join(dest, sim.udid));
    assert.deepEqual(
      [out.snapshot!.files, out.snapshot!.size, out.snapshot!.exclusiveBytes],
      [walked.files, walked.size, walked.exclusiveBytes],
    );
  });

  it('a previous backup the device cannot use (205) is followed, in the same job, by a full one', async () => {
    // An empty Manifest.plist: what a real device refuses with MBErrorDomain 205. A new file, so
    // no other snapshot's (hard-linked) copy changes.
    const plist = path.join(dest, sim.udid, 'Manifest.plist');
    await fsp.rm(plist);
    await fsp.writeFile(plist, '');
    const before = await latestId();
    const events: JobEvent[] = [];
    const out = await backupToStore({ endpoint, record, dest, onEvent: (e) => events.push(e) });
    assert.equal(out.ok, true, out.message);
    assert.equal(out.result.isFull, true, 'the device made a full backup');
    assert.ok(
      events.some(
        (e) =>
          e.type === 'store' &&
          /could not use the previous backup \(MBErrorDomain 205\)/.test(e.message),
      ),
      'it says why it asks again',
    );
    assert.equal(await latestId(), out.snapshot?.id);
    // The backup it could not use is kept as the snapshot before.
    const ids = (await (await openStore(dest, sim.udid)).list()).map((x) => x.id);
    assert.ok(before !== undefined && ids.includes(before), JSON.stringify(ids));
    assert.equal(out.verify?.ok, true);
  });

  it('one file that cannot be linked is named as the cause, not the disk (which links others)', async (t) => {
    const latest = path.join(dest, sim.udid);
    const bucket = (await fsp.readdir(latest)).find((n) => /^[0-9a-f]{2}$/.test(n))!;
    const victim = path.join(latest, bucket, (await fsp.readdir(path.join(latest, bucket)))[0]!);
    // Immutable: link() is refused (EPERM), even to root, while new files link fine.
    try {
      execFileSync('chattr', ['+i', victim], { stdio: 'ignore' });
    } catch {
      t.skip('chattr +i is not possible here (not root, or a file system without it)');
      return;
    }
    const before = await latestId();
    try {
      const out = await backupToStore({ endpoint, record, dest });
      assert.equal(out.ok, false);
      assert.ok(
        isMooringError(out.error, 'IO') && out.error.detail === 'LINK_REFUSED',
        String(out.error),
      );
      assert.match(
        out.message,
        /^Cannot share .+ with the new backup \(EPERM\), though this folder's disk shares other files: check that file's owner and attributes/,
      );
      assert.doesNotMatch(out.message, /APFS|exFAT/);
    } finally {
      execFileSync('chattr', ['-i', victim], { stdio: 'ignore' });
    }
    assert.equal(await latestId(), before, 'the latest is untouched');
  });

  it('a cancel through the signal ends as a cancelled backup stage, latest untouched', async () => {
    const before = await latestId();
    const ac = new AbortController();
    const out = await backupToStore({
      endpoint,
      record,
      dest,
      signal: ac.signal,
      onEvent: (e) => {
        if (e.type === 'phase' && e.phase === 'locking') ac.abort();
      },
    });
    assert.equal(out.ok, false);
    assert.equal(out.stage, 'backup');
    assert.equal(out.result.cancelled, true);
    assert.equal(out.result.cancelledBy, 'user');
    assert.equal(out.error, undefined);
    assert.equal(await latestId(), before);
    const staging = path.join(dest, '.mooring', sim.udid, 'staging');
    assert.deepEqual(await fsp.readdir(staging).catch(() => []), [], 'no staging left');
  });

  it('an unreachable Wi-Fi address fails at the connect stage, with the free space measured', async () => {
    const closed = await unusedPort();
    const out = await backupToStore({
      endpoint: new TcpEndpoint({ udid: sim.udid, host: '127.0.0.1', lockdownPort: closed }),
      record,
      dest,
    });
    assert.equal(out.ok, false);
    assert.equal(out.stage, 'connect');
    assert.ok(isMooringError(out.error, 'CLOSED'), String(out.error));
    assert.ok(typeof out.freeBytes === 'number' && out.freeBytes > 0);
  });

  it('a destination that cannot be a folder fails at the store stage without throwing', async () => {
    const file = path.join(tmp, 'not-a-folder');
    await fsp.writeFile(file, 'x');
    const out = await backupToStore({ endpoint, record, dest: file });
    assert.equal(out.ok, false);
    assert.equal(out.stage, 'store');
    assert.ok(out.error instanceof Error);
  });

  it('a revoked pairing fails at the session stage with a PAIRING error', async () => {
    const before = await latestId();
    await sim.ctl('revoke-pairing');
    const out = await backupToStore({ endpoint, record, dest });
    assert.equal(out.ok, false);
    assert.equal(out.stage, 'session');
    assert.ok(isMooringError(out.error, 'PAIRING'), String(out.error));
    assert.match(out.message, /no longer trusted|pair again/i);
    assert.equal(await latestId(), before);
  });
});

function unusedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}
