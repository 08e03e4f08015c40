/**
 * Removing a phone-sized backup folder (D50): every prune, discarded staging and failed backup
 * removes one. A tree of FILES small files in 256 folders (a backup's layout) is made once; each
 * round hard-links a copy of it (`cp -al`, as the store's snapshots share files) and removes the
 * copy in a child process, once with Node's `fs.promises.rm(recursive)` and once with the
 * compiled `removeTree`, alternately. Printed: wall and CPU seconds, and the child's peak RSS.
 *
 *   FILES=300000 ROUNDS=2 BENCH_DIR=/bench-ext4 node --import tsx bench/remove-tree.ts
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import {
  benchWorkDir,
  checkBuild,
  footer,
  header,
  lpad,
  pad,
  ROOT,
  scaled,
  syncDisks,
  timedChild,
} from './lib/measure';

const run = promisify(execFile);

/** What the child runs: one removal of argv[1] (a node -e script; `way` is argv[2]). */
const CHILD = `
const [dir, way] = process.argv.slice(1);
const go = way === 'fs.rm'
  ? () => require('node:fs').promises.rm(dir, { recursive: true, force: true })
  : () => require(${JSON.stringify(path.join(ROOT, 'dist', 'util', 'remove-tree'))}).removeTree(dir);
go().then(() => { if (require('node:fs').existsSync(dir)) { console.error('still there'); process.exit(1); } });
`;

async function main(): Promise<void> {
  header('Mooring: removing a backup folder (D50)');
  checkBuild();
  const files = Number(process.env.FILES ?? scaled(300_000, 1000));
  const rounds = Number(process.env.ROUNDS ?? '2');
  const tmp = await benchWorkDir('mooring-bench-rm-');
  try {
    const master = path.join(tmp, 'master');
    const t0 = Date.now();
    for (let d = 0; d < 256; d++)
      mkdirSync(path.join(master, d.toString(16).padStart(2, '0')), { recursive: true });
    for (let i = 0; i < files; i++) {
      const id = randomUUID().replace(/-/g, '').padEnd(40, '0');
      writeFileSync(path.join(master, id.slice(0, 2), id), `payload ${i}`);
    }
    console.log(
      `${files} files in 256 folders, made in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
    );
    console.log(
      `  ${pad('way', 12)} ${lpad('wall s', 8)} ${lpad('CPU s', 7)} ${lpad('peak RSS MiB', 13)}`,
    );
    for (let round = 1; round <= rounds; round++) {
      for (const way of ['fs.rm', 'removeTree']) {
        const copy = path.join(tmp, 'copy');
        await run('cp', ['-al', master, copy]);
        await syncDisks();
        const r = await timedChild(process.execPath, ['-e', CHILD, copy, way]);
        if (r.code !== 0) throw new Error(`${way} failed: ${r.stderr}`);
        console.log(
          `  ${pad(way, 12)} ${lpad(r.wallSeconds.toFixed(2), 8)} ${lpad((r.userSeconds + r.sysSeconds).toFixed(2), 7)} ${lpad(r.maxRssMiB.toFixed(0), 13)}`,
        );
      }
    }
  } finally {
    await run('rm', ['-rf', tmp]);
  }
  footer();
}

void main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
