/**
 * The packaging config: electron-builder builds the unpacked Linux app (`--linux dir`) from
 * electron-builder.yml with a STAND-IN Electron distribution (Electron cannot be downloaded or run
 * here) and no native rebuild, and we list the app.asar it made. Proves main, preload, renderer,
 * assets and the native SQLite module (unpacked) are in; the simulator, tests, benchmarks, sources,
 * source maps and needless weight (the renderer's build stamp, sharp with its libvips, the Bare
 * runtime's native addons) are out; and everything main.js and preload.js require is in the
 * package, where what was left out is loaded by nothing we use.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { builtinModules } from 'node:module';
import { existsSync, statSync, readdirSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import asar from '@electron/asar';

const ROOT = path.join(__dirname, '..', '..');
const BIN = (name: string): string => path.join(ROOT, 'node_modules', '.bin', name);

function newest(dir: string): number {
  let m = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    m = Math.max(m, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return m;
}

function run(cmd: string, args: string[], what: string): void {
  const r = spawnSync(cmd, args, {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, ELECTRON_SKIP_BINARY_DOWNLOAD: '1' },
    maxBuffer: 64 * 1024 * 1024,
  });
  assert.equal(r.status, 0, `${what} failed:\n${r.stdout}\n${r.stderr}`);
}

/**
 * dist/ comes from `npm run build` (also `prepare`); rebuilt here only when the Electron part is
 * missing or older than its sources. tsc's exit status is left to `npm run typecheck` (it emits
 * despite type errors elsewhere); what matters here is that the outputs are fresh.
 */
function ensureBuilt(): void {
  const outputs = ['main.js', 'preload.js'].map((f) => path.join(ROOT, 'dist', 'electron', f));
  const builtAt = (): number =>
    outputs.every(existsSync) ? Math.min(...outputs.map((f) => statSync(f).mtimeMs)) : 0;
  const sources = newest(path.join(ROOT, 'src', 'electron'));
  if (builtAt() < sources) {
    const r = spawnSync(
      process.execPath,
      [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.build.json'],
      {
        cwd: ROOT,
        encoding: 'utf8',
      },
    );
    assert.ok(
      builtAt() >= sources,
      `tsc -p tsconfig.build.json did not build dist/electron:\n${r.stdout}${r.stderr}`,
    );
  }
  run(
    process.execPath,
    [path.join(ROOT, 'scripts', 'build-renderer.js'), '--if-stale'],
    'renderer build',
  );
}

async function listTree(dir: string, base = dir): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...(await listTree(p, base)));
    else out.push(path.relative(base, p).split(path.sep).join('/'));
  }
  return out;
}

describe('electron-builder package (stand-in Electron)', () => {
  let tmp: string;
  let archive: string;
  let files: Set<string>;

  before(async () => {
    ensureBuilt();
    tmp = await mkdtemp(path.join(os.tmpdir(), 'mooring-package-'));
    // The stand-in Electron distribution: just an executable named `electron`, which
    // electron-builder copies and renames; it is never run.
    const standIn = path.join(tmp, 'electron-stand-in');
    await mkdir(standIn);
    await writeFile(path.join(standIn, 'electron'), '#!/bin/sh\necho "stand-in for Electron"\n');
    await chmod(path.join(standIn, 'electron'), 0o755);
    run(
      BIN('electron-builder'),
      [
        '--linux',
        'dir',
        '--config',
        'electron-builder.yml',
        `-c.electronDist=${standIn}`,
        '-c.npmRebuild=false',
        `-c.directories.output=${path.join(tmp, 'out')}`,
      ],
      'electron-builder --linux dir',
    );
    archive = path.join(tmp, 'out', 'linux-unpacked', 'resources', 'app.asar');
    files = new Set(
      asar.listPackage(archive, { isPack: false }).map((f) => f.split(path.sep).join('/')),
    );
  });
  after(() => rm(tmp, { recursive: true, force: true }));

  it('made the app around the stand-in executable', () => {
    assert.ok(existsSync(path.join(tmp, 'out', 'linux-unpacked', 'mooring')));
    assert.ok(existsSync(archive));
  });

  it('starts at dist/electron/main.js', () => {
    const pkg = JSON.parse(asar.extractFile(archive, 'package.json').toString('utf8')) as {
      main?: string;
    };
    assert.equal(pkg.main, 'dist/electron/main.js');
    assert.ok(files.has('/dist/electron/main.js'));
    assert.ok(files.has('/dist/electron/preload.js'));
  });

  it('holds the renderer and every asset', async () => {
    assert.ok(files.has('/dist/renderer/index.html'), 'renderer page');
    assert.ok(
      [...files].some((f) => /^\/dist\/renderer\/ui\/.+\.js$/.test(f)),
      'renderer scripts',
    );
    for (const rel of await listTree(path.join(ROOT, 'assets'))) {
      assert.ok(files.has(`/assets/${rel}`), `assets/${rel}`);
    }
  });

  it('unpacks the native SQLite module, without its sources', () => {
    const native = 'node_modules/better-sqlite3/build/Release/better_sqlite3.node';
    assert.ok(files.has(`/${native}`), 'listed in the archive');
    assert.ok(
      existsSync(path.join(tmp, 'out', 'linux-unpacked', 'resources', 'app.asar.unpacked', native)),
      'present beside it, unpacked',
    );
    assert.ok(files.has('/node_modules/better-sqlite3/lib/index.js'));
    assert.equal(
      [...files].some((f) => f.startsWith('/node_modules/better-sqlite3/deps/')),
      false,
    );
    assert.equal(
      [...files].some((f) => f.startsWith('/node_modules/better-sqlite3/src/')),
      false,
    );
  });

  it("unpacks the worker threads' modules beside app.asar, where util/worker-file starts them", () => {
    const workers = [...files].filter((f) => /^\/dist\/.+\.worker\.js$/.test(f));
    assert.ok(
      workers.includes('/dist/store/link-tree.worker.js'),
      `workers: ${workers.join(', ')}`,
    );
    for (const f of workers) {
      const unpacked = path.join(tmp, 'out', 'linux-unpacked', 'resources', 'app.asar.unpacked', f);
      assert.ok(existsSync(unpacked), `${f} unpacked`);
    }
  });

  it('leaves out the simulator, tests, benchmarks, sources and maps', () => {
    const out = [...files].filter(
      (f) =>
        /^\/(test|bench|src|scripts|docs|release|\.tmp)\//.test(f) ||
        /^\/dist\/(sim|test|bench|scripts|\.renderer-tsc)\//.test(f) ||
        /mooring-sim/.test(f) ||
        /\.map$/.test(f) ||
        (/\.ts$/.test(f) && !f.startsWith('/node_modules/')),
    );
    assert.deepEqual(out, []);
    assert.ok(!files.has('/dist/sim'), 'no dist/sim folder');
  });

  it('leaves out needless weight: the build stamp, sharp and libvips, Bare-runtime addons', () => {
    assert.equal(files.has('/dist/renderer/.built'), false, 'the renderer build stamp');
    const needless = [...files].filter(
      (f) =>
        /^\/node_modules\/(@img|sharp)(\/|$)/.test(f) ||
        /\.bare$/.test(f) ||
        /^\/node_modules\/bare-[^/]+\/(binding\.c|CMakeLists\.txt)$/.test(f),
    );
    assert.deepEqual(needless, []);
  });

  it('loads sharp nowhere but lazily in @appium/support image helpers, which nothing of ours uses', () => {
    const js = [...files].filter((f) => /\.(c?js)$/.test(f) && f.startsWith('/node_modules/'));
    const requiring = js.filter((f) =>
      /require\(["']sharp["']\)/.test(asar.extractFile(archive, f.slice(1)).toString('utf8')),
    );
    const imageUtil = '/node_modules/@appium/support/build/lib/image-util.js';
    assert.deepEqual(requiring, [imageUtil]);
    const text = asar.extractFile(archive, imageUtil.slice(1)).toString('utf8');
    // Inside the function that loads it on first use, not at the module's top level.
    const fn = text.indexOf('function requireSharp(');
    assert.ok(fn >= 0 && text.indexOf("require('sharp')") > fn, 'required lazily');
    // The part of appium-ios-device we load (usbmux) never touches the image helpers.
    const usbmuxDir = '/node_modules/appium-ios-device/build/lib/';
    const users = js.filter(
      (f) =>
        f.startsWith(usbmuxDir) &&
        /imageUtil|requireSharp|mjpeg/.test(asar.extractFile(archive, f.slice(1)).toString('utf8')),
    );
    assert.deepEqual(users, []);
  });

  it('holds everything main.js and preload.js require', () => {
    const builtins = new Set([...builtinModules, ...builtinModules.map((m) => `node:${m}`)]);
    const seen = new Set<string>();
    const missing: string[] = [];
    const resolve = (from: string, spec: string): string | undefined => {
      const base = path.posix.join(path.posix.dirname(from), spec);
      return [
        `${base}.js`,
        `${base}.json`,
        `${base}/index.js`,
        /\.(js|json)$/.test(base) ? base : '',
      ].find((c) => files.has(c));
    };
    const visit = (file: string): void => {
      if (seen.has(file)) return;
      seen.add(file);
      if (file.endsWith('.json')) return;
      const text = asar.extractFile(archive, file.slice(1)).toString('utf8');
      for (const m of text.matchAll(/require\(["']([^"']+)["']\)/g)) {
        const spec = m[1]!;
        if (spec.startsWith('.')) {
          const target = resolve(file, spec);
          if (target) visit(target);
          else missing.push(`${file}: ${spec}`);
        } else if (!builtins.has(spec) && spec !== 'electron') {
          const pkg = spec.startsWith('@')
            ? spec.split('/').slice(0, 2).join('/')
            : spec.split('/')[0];
          if (!files.has(`/node_modules/${pkg}/package.json`)) missing.push(`${file}: ${spec}`);
        }
      }
    };
    visit('/dist/electron/main.js');
    // The sandboxed preload can require nothing but electron.
    const preload = asar.extractFile(archive, 'dist/electron/preload.js').toString('utf8');
    assert.deepEqual(
      [...preload.matchAll(/require\(["']([^"']+)["']\)/g)].map((m) => m[1]),
      ['electron'],
    );
    assert.deepEqual(missing, []);
    assert.ok(seen.has('/dist/agent/agent.js'), 'main reaches the agent');
    assert.equal(
      [...seen].some((f) => f.startsWith('/dist/sim/')),
      false,
    );
  });
});
