/**
 * Issue 6 target "snapshot creation for 100,000 files under 5 s", alone and quickly: a backup
 * folder of FILES small payloads (256 folders, as a real backup) is made once, then each build's
 * compiled store API stages a hard-linked copy of it and commits it, alternately for ROUNDS
 * rounds (each commit moves the previous latest into snapshots/, as a real backup does). No
 * simulator: only the store's own work is timed (wall and this process's CPU seconds).
 *
 *   BUILDS=before:/tmp/b/bin/mooring.js,after:bin/mooring.js FILES=100000 ROUNDS=3 \
 *     node --import tsx bench/snapshot-creation.ts
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, promises as fsp, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { encodeStatusPlist } from '../src/format/status-plist';
import { footer, header, syncDisks, benchWorkDir } from './lib/measure';

interface StoreApi {
  openStore(
    dest: string,
    udid: string,
  ): Promise<{ beginStaging(): Promise<{ backupDir: string; commit(): Promise<unknown> }> }>;
}

const run = promisify(execFile);
const UDID = '00008110-000A1B2C3D4E5F60';

function builds(): Array<{ name: string; store: StoreApi }> {
  const raw = process.env.BUILDS ?? `current:${path.join(__dirname, '..', 'bin', 'mooring.js')}`;
  return raw.split(',').map((spec) => {
    const i = spec.indexOf(':');
    const bin = path.resolve(spec.slice(i + 1));
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const store = require(path.join(path.dirname(bin), '..', 'dist', 'store')) as StoreApi;
    return { name: spec.slice(0, i), store };
  });
}

async function main(): Promise<void> {
  header('Mooring snapshot creation (issue 6 §2)');
  const files = Number(process.env.FILES ?? '100000');
  const rounds = Number(process.env.ROUNDS ?? '3');
  const all = builds();
  const tmp = await benchWorkDir('mooring-bench-snap-');
  try {
    const dests = all.map((b) => path.join(tmp, b.name));
    const t0 = Date.now();
    for (const [k, dest] of dests.entries()) {
      const dir = path.join(dest, UDID);
      if (k > 0) {
        // The same tree for the next build, by hard links (quick; the store never writes into files).
        await fsp.mkdir(dest);
        await run('cp', ['-al', path.join(dests[0]!, UDID), dir]);
        continue;
      }
      for (let d = 0; d < 256; d++)
        mkdirSync(path.join(dir, d.toString(16).padStart(2, '0')), { recursive: true });
      for (let i = 0; i < files; i++) {
        const id = randomUUID().replace(/-/g, '').padEnd(40, '0');
        writeFileSync(path.join(dir, id.slice(0, 2), id), `payload ${i}`);
      }
      const status = { uuid: randomUUID().toUpperCase(), isFullBackup: true, date: new Date() };
      writeFileSync(
        path.join(dir, 'Status.plist'),
        encodeStatusPlist({ ...status, snapshotState: 'finished' }),
      );
    }
    console.log(
      `${files} files per backup folder, made in ${((Date.now() - t0) / 1000).toFixed(1)} s; builds: ${all.map((b) => b.name).join(', ')}`,
    );
    for (let round = 1; round <= rounds; round++) {
      for (const [i, b] of all.entries()) {
        const store = await b.store.openStore(dests[i]!, UDID);
        await syncDisks();
        const c0 = process.cpuUsage();
        const t = process.hrtime.bigint();
        const staging = await store.beginStaging();
        const t1 = process.hrtime.bigint();
        await staging.commit();
        const t2 = process.hrtime.bigint();
        const cpu = process.cpuUsage(c0);
        console.log(
          `  round ${round} ${b.name.padEnd(8)} ${(Number(t2 - t) / 1e9).toFixed(2)} s ` +
            `(staging ${(Number(t1 - t) / 1e9).toFixed(2)} s + commit ${(Number(t2 - t1) / 1e9).toFixed(2)} s), ` +
            `CPU ${((cpu.user + cpu.system) / 1e6).toFixed(2)} s`,
        );
      }
    }
    footer();
  } finally {
    await fsp.rm(tmp, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
