/**
 * Issue 6, benchmark 2: an incremental backup. A simulated device with 100,000 files is backed up
 * in full by `mooring backup` (the compiled CLI, over simulated USB); then `ctl mutate` rewrites 1%
 * of its files and `mooring backup` runs again (incremental: the device sends only what changed,
 * the store stages a hard-linked copy of the latest snapshot and commits a new one). Printed: wall
 * time, bytes moved, the ratio to the full backup, and the snapshot creation alone (stage a
 * hard-linked copy of 100,000 files + commit it) timed through the store API.
 *
 * The reference client does the same on the same device in the same run: `idevicebackup2 backup
 * --full` into a folder of its own right after Mooring's full backup, and `idevicebackup2 backup`
 * (its incremental) right after Mooring's, so both incrementals find the same 1 % changed since
 * their previous backup. Its ratio says how much of the incremental is the device's and the
 * protocol's (the simulated device compares the host's previous Manifest.db and sends a new one of
 * ~100 MB), whatever the host.
 *
 * The floor, measured rather than inferred: the raw sink (bench/raw-sink.ts: our protocol layers,
 * nothing kept) runs a full backup after idevicebackup2's, and an incremental against Mooring's
 * previous snapshot right before Mooring's incremental (it keeps nothing, so Mooring's still finds
 * the same 1 %). Its incremental over its full is what the device and the protocol leave to any
 * host.
 *
 * Then the incremental as the agent runs it: after a backup it makes the next one's copy of the
 * latest ahead (D42, SnapshotStore.prepareNext, called here as the agent calls it); another 1 %
 * changes and `mooring backup` runs from that copy, between two more that link their own.
 *
 *   BENCH_SCALE=0.1 node --import tsx bench/incremental.ts
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { startSim } from '../src/sim/index';
import { openStore } from '../src/store';
import { pairWithIdevicepair } from '../test/helpers/real-tools';
import {
  checkBuild,
  footer,
  du,
  header,
  mb,
  scaled,
  syncDisks,
  type ChildRun,
  timedChild,
  jobGc,
  timedMooringBackup,
  benchWorkDir,
  probeFileCreation,
  ROOT,
} from './lib/measure';

interface RawRun {
  run: ChildRun;
  /** The raw sink's session alone (its own clock: no process start-up). */
  seconds: number;
  files: number;
  bytes: number;
}

interface BackupRun {
  run: ChildRun;
  engineSeconds: number;
  bytesReceived: number;
  filesReceived: number;
  isFull: boolean;
  /** What the device uploaded (payloads only). */
  payloadFiles: number;
  payloadBytes: number;
  /** Where the engine's time went, as the device saw it. */
  phases: string;
}

async function main(): Promise<void> {
  header('Mooring incremental backup (issue 6 §2)');
  checkBuild();
  const files = scaled(100_000, 1000);
  const bytes = scaled(1e9, 1e7);
  const changed = Math.max(1, Math.round(files / 100));
  const tmp = await benchWorkDir('mooring-bench-inc-');
  const finished: Array<Record<string, unknown>> = [];
  const t0 = Date.now();
  const sim = await startSim({
    stateDir: path.join(tmp, 'sim'),
    files,
    bytes,
    seed: 7,
    log: (line) => {
      const e = JSON.parse(line) as Record<string, unknown>;
      if (typeof e.event === 'string' && e.event.startsWith('mobilebackup2.')) finished.push(e);
    },
  });
  const dest = path.join(tmp, 'dest');
  try {
    const listing = (await sim.ctl('listing')) as { files: number; bytes: number };
    console.log(
      `device: ${listing.files} files, ${mb(listing.bytes)} MB (generated in ${((Date.now() - t0) / 1000).toFixed(1)} s)`,
    );
    await pairWithIdevicepair(sim.usbmuxdAddress, sim.udid);
    probeFileCreation(tmp);
    const backup = async (): Promise<BackupRun> => {
      await syncDisks();
      finished.length = 0;
      const run = await timedMooringBackup({
        udid: sim.udid,
        via: 'usb',
        reach: ['--usbmuxd', sim.usbmuxdAddress],
        dataDir: path.join(tmp, 'data'),
        dest,
      });
      let r: {
        ok?: boolean;
        durationMs?: number;
        bytesReceived?: number;
        filesReceived?: number;
        isFull?: boolean;
      } = {};
      try {
        r = JSON.parse(run.stdout.trim().split('\n').pop() ?? '') as typeof r;
      } catch {
        // reported below
      }
      if (run.code !== 0 || r.ok !== true) {
        throw new Error(`mooring backup failed:\n${run.stdout.slice(-2000)}\n${run.stderr}`);
      }
      const at = (ev: string): number =>
        Date.parse(String(finished.find((x) => x.event === `mobilebackup2.${ev}`)?.t));
      const f = finished.find((x) => x.event === 'mobilebackup2.finished') ?? {};
      // The device compares the host's Manifest.db with its own cache (src/sim/backup/manifest-cache.ts).
      const decoded = finished.find((x) => x.event === 'mobilebackup2.mode')?.decodedRows;
      const phases =
        `device side: ${((at('mode') - at('request')) / 1000).toFixed(1)} s from the request to reading the host's previous ` +
        `backup, ${((at('uploaded') - at('mode')) / 1000).toFixed(1)} s planning + uploading, ` +
        `${((at('finished') - at('uploaded')) / 1000).toFixed(1)} s Manifest.db + moves` +
        (decoded !== undefined ? `; ${String(decoded)} host Manifest.db rows decoded` : '');
      return {
        run,
        engineSeconds: (r.durationMs ?? NaN) / 1000,
        bytesReceived: r.bytesReceived ?? NaN,
        filesReceived: r.filesReceived ?? NaN,
        isFull: r.isFull === true,
        payloadFiles: Number(f.files),
        payloadBytes: Number(f.bytes),
        phases,
      };
    };
    const show = (what: string, b: BackupRun): void => {
      console.log(
        `  ${what}: ${b.run.wallSeconds.toFixed(2)} s wall (engine ${b.engineSeconds.toFixed(2)} s), ` +
          `device sent ${b.payloadFiles} files / ${mb(b.payloadBytes)} MB, host received ` +
          `${b.filesReceived} files / ${mb(b.bytesReceived)} MB, CPU ${(b.run.userSeconds + b.run.sysSeconds).toFixed(2)} s ` +
          `(simulator ${b.run.simCpuSeconds.toFixed(2)} s), ` +
          `peak RSS ${b.run.maxRssMiB.toFixed(0)} MiB${b.isFull ? ' (full)' : ' (incremental)'}`,
      );
      console.log(`    ${b.phases}${jobGc(b.run) ? `; job thread GC: ${jobGc(b.run)}` : ''}`);
    };

    const idbDest = path.join(tmp, 'idevicebackup2');
    await fsp.mkdir(idbDest);
    /** idevicebackup2 into its own folder: `--full` the first time, then its incremental. */
    const reference = async (full: boolean): Promise<ChildRun> => {
      await syncDisks();
      const run = await timedChild(
        'idevicebackup2',
        ['-u', sim.udid, 'backup', ...(full ? ['--full'] : []), idbDest],
        { USBMUXD_SOCKET_ADDRESS: sim.usbmuxdAddress },
      );
      if (run.code !== 0 || !/Backup Successful/.test(run.stdout + run.stderr)) {
        throw new Error(`idevicebackup2 failed:\n${run.stdout.slice(-2000)}\n${run.stderr}`);
      }
      return run;
    };
    const showReference = (what: string, r: ChildRun): void => {
      console.log(
        `  ${what}: ${r.wallSeconds.toFixed(2)} s wall, CPU ${(r.userSeconds + r.sysSeconds).toFixed(2)} s ` +
          `(simulator ${r.simCpuSeconds.toFixed(2)} s), peak RSS ${r.maxRssMiB.toFixed(0)} MiB`,
      );
    };

    /** The raw sink: a full backup, or with `previous` (a backup folder) an incremental against it. */
    const rawSink = async (previous?: string): Promise<RawRun> => {
      await syncDisks();
      const run = await timedChild(process.execPath, [
        '--import',
        'tsx',
        path.join(ROOT, 'bench', 'raw-sink.ts'),
        '--udid',
        sim.udid,
        '--usbmuxd',
        sim.usbmuxdAddress,
        ...(previous === undefined ? [] : ['--previous', previous]),
      ]);
      let r: { ok?: boolean; seconds?: number; files?: number; bytes?: number } = {};
      try {
        r = JSON.parse(run.stdout.trim()) as typeof r;
      } catch {
        // reported below
      }
      if (run.code !== 0 || r.ok !== true) {
        throw new Error(`the raw sink failed:\n${run.stdout.slice(-2000)}\n${run.stderr}`);
      }
      return { run, seconds: r.seconds ?? NaN, files: r.files ?? NaN, bytes: r.bytes ?? NaN };
    };
    const showRaw = (what: string, r: RawRun): void => {
      console.log(
        `  ${what}: ${r.run.wallSeconds.toFixed(2)} s wall (session ${r.seconds.toFixed(2)} s), ` +
          `received ${r.files} files / ${mb(r.bytes)} MB, CPU ${(r.run.userSeconds + r.run.sysSeconds).toFixed(2)} s ` +
          `(simulator ${r.run.simCpuSeconds.toFixed(2)} s)`,
      );
    };

    const full = await backup();
    show('full backup       ', full);
    const idbFull = await reference(true);
    showReference('idevicebackup2 --full', idbFull);
    const rawFull = await rawSink();
    showRaw('raw sink, full', rawFull);
    const m = (await sim.ctl('mutate', { modify: changed })) as { modified: string[] };
    const store = await openStore(dest, sim.udid);
    const before = (await store.list()).at(-1);
    if (!before) throw new Error('no snapshot after the full backup');
    const rawInc = await rawSink((await store.resolve(before.id)).path);
    showRaw("raw sink, incremental against Mooring's previous snapshot", rawInc);
    const inc = await backup();
    show(`after ${m.modified.length} files changed`, inc);
    if (inc.isFull) throw new Error('the second backup was not incremental');
    const idbInc = await reference(false);
    showReference('idevicebackup2 incremental', idbInc);
    const pct = (a: number, b: number): string => `${((a / b) * 100).toFixed(1)} %`;
    console.log(
      `  incremental / full: ${pct(inc.run.wallSeconds, full.run.wallSeconds)} of the wall time, ` +
        `${pct(inc.bytesReceived, full.bytesReceived)} of the bytes received; idevicebackup2 ` +
        `${pct(idbInc.wallSeconds, idbFull.wallSeconds)} of its own full backup's time`,
    );
    console.log(
      `  against idevicebackup2 on the same device: full ${(idbFull.wallSeconds / full.run.wallSeconds).toFixed(2)}×, ` +
        `incremental ${(idbInc.wallSeconds / inc.run.wallSeconds).toFixed(2)}× its speed`,
    );
    console.log(
      `  the floor (raw sink): its incremental is ${pct(rawInc.run.wallSeconds, rawFull.run.wallSeconds)} of its full ` +
        `backup's wall time (${pct(rawInc.seconds, rawFull.seconds)} of the session); Mooring's incremental ` +
        `${(rawInc.run.wallSeconds / inc.run.wallSeconds).toFixed(2)}× the raw sink's speed, its full ` +
        `${(rawFull.run.wallSeconds / full.run.wallSeconds).toFixed(2)}×`,
    );

    // Where an incremental's host time goes besides the transfer: the whole-snapshot verify.
    const timed = async (fn: () => Promise<unknown>): Promise<number> => {
      const t = process.hrtime.bigint();
      await fn();
      return Number(process.hrtime.bigint() - t) / 1e9;
    };
    const hashed = await timed(() => store.verify('latest'));
    const sizes = await timed(() => store.verify('latest', { hash: false }));
    // What the job's verify of an incremental does now: hash only the files not shared with the
    // previous snapshot (store/verify.ts planStagingVerify), sizes of the rest.
    let quick = { hashed: 0 };
    const unshared = await timed(async () => {
      quick = await store.verify('latest', { hashOnlyUnshared: true });
    });
    // ... and, as Staging.verify does, with the previous snapshot as base: Manifest.db rows
    // identical to the base's are not decoded again (store/verify.ts VerifyOptions.base).
    const previous = (await store.list()).at(-2);
    let based = { hashed: 0, ok: false };
    const withBase = await timed(async () => {
      based = await store.verify('latest', {
        hashOnlyUnshared: true,
        ...(previous ? { base: (await store.resolve(previous.id)).path } : {}),
      });
    });
    if (!based.ok) throw new Error('the verify against the previous snapshot failed');
    console.log(
      `  verify of the latest snapshot (${listing.files} files, in page cache): ${hashed.toFixed(2)} s ` +
        `hashing every file, ${sizes.toFixed(2)} s checking sizes only, ${unshared.toFixed(2)} s ` +
        `hashing only the ${quick.hashed} files new in it, ${withBase.toFixed(2)} s doing so against the ` +
        `previous snapshot (unchanged rows not decoded: what a backup's verify does between full re-hashes)`,
    );

    // D42: the agent makes the next backup's copy of the latest after each backup, at the links'
    // low priority, while no one waits; the next incremental (here `mooring backup`, which takes
    // such a copy when it finds one) then starts with its folder complete. Three more incrementals
    // of another 1 % each, without, with and without that copy: each from the Manifest.db the
    // device sent last (the one above followed the raw sink's, which costs the device more).
    // Before the snapshot creation below: that snapshot has no verify of its own, so a backup
    // after it would hash every file again.
    const another = async (ahead: boolean): Promise<BackupRun> => {
      const m = (await sim.ctl('mutate', { modify: changed })) as { modified: string[] };
      await syncDisks();
      let note = 'linking its own copy';
      if (ahead) {
        const made = await (await openStore(dest, sim.udid)).prepareNext();
        if (made === undefined || made.reused) throw new Error('no copy was made ahead');
        note = `from the copy made ahead (as the agent does after each backup: ${made.files} files linked in ${made.seconds.toFixed(2)} s)`;
      }
      const b = await backup();
      if (b.isFull) throw new Error('an incremental came out full');
      show(`after ${m.modified.length} more changed, ${note}`, b);
      return b;
    };
    const without1 = await another(false);
    const ahead = await another(true);
    const without2 = await another(false);
    const mid = (without1.run.wallSeconds + without2.run.wallSeconds) / 2;
    console.log(
      `  incremental from the copy made ahead: ${ahead.run.wallSeconds.toFixed(2)} s against ` +
        `${without1.run.wallSeconds.toFixed(2)} s and ${without2.run.wallSeconds.toFixed(2)} s without; ` +
        `${pct(ahead.run.wallSeconds, full.run.wallSeconds)} of the full backup's wall time against ` +
        `${pct(mid, full.run.wallSeconds)} (their mean); ` +
        `${(idbInc.wallSeconds / ahead.run.wallSeconds).toFixed(2)}× idevicebackup2's incremental speed`,
    );

    // Snapshot creation alone: a hard-linked staging copy of the latest snapshot, committed.
    await syncDisks();
    const s0 = process.hrtime.bigint();
    const staging = await store.beginStaging();
    const s1 = process.hrtime.bigint();
    await staging.commit();
    const s2 = process.hrtime.bigint();
    const stage = Number(s1 - s0) / 1e9;
    const commit = Number(s2 - s1) / 1e9;
    console.log(
      `  snapshot creation for ${listing.files} files: ${(stage + commit).toFixed(2)} s ` +
        `(hard-linked staging copy ${stage.toFixed(2)} s + commit ${commit.toFixed(2)} s); store on disk ${mb(await du(dest))} MB for 6 snapshots`,
    );

    footer();
  } finally {
    await sim.stop();
    await fsp.rm(tmp, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
