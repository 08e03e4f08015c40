#!/usr/bin/env node
// Builds the UI into dist/renderer: index.html at the top (served at `/`, loaded by Electron from
// file://) and everything it loads under ui/ (served at `/ui/…`), so the page's relative
// `ui/main.js` resolves the same way over HTTP and from disk. `isStale()` lets the test runner
// rebuild only when a source is newer than the last build.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const root = path.join(__dirname, '..');
const srcDir = path.join(root, 'src', 'renderer');
const tscOut = path.join(root, 'dist', '.renderer-tsc');
const outDir = path.join(root, 'dist', 'renderer');
const stamp = path.join(outDir, '.built');
/** Inputs besides src/renderer whose change changes the output. */
const extraInputs = ['tsconfig.renderer.json', 'src/agent/types.ts', 'scripts/build-renderer.js'];

function newestMtime(p) {
  const st = fs.statSync(p);
  if (!st.isDirectory()) return st.mtimeMs;
  let m = st.mtimeMs;
  for (const name of fs.readdirSync(p)) m = Math.max(m, newestMtime(path.join(p, name)));
  return m;
}

function isStale() {
  if (!fs.existsSync(stamp)) return true;
  const built = fs.statSync(stamp).mtimeMs;
  const inputs = [srcDir, ...extraInputs.map((f) => path.join(root, f))].filter((p) =>
    fs.existsSync(p),
  );
  return inputs.some((p) => newestMtime(p) > built);
}

/** Browsers load ES modules by exact URL: every relative import must name its .js file. */
function checkImports(file) {
  const text = fs.readFileSync(file, 'utf8');
  const re = /(?:^|\n)\s*(?:import|export)\b[^'"]*?from\s*['"]([^'"]+)['"]/g;
  for (let m; (m = re.exec(text));) {
    const spec = m[1];
    if (!spec.startsWith('./') && !spec.startsWith('../')) {
      throw new Error(`${file}: bare import "${spec}" cannot load in the browser`);
    }
    if (!spec.endsWith('.js')) throw new Error(`${file}: import "${spec}" must end in .js`);
  }
}

function copyTree(from, to, filter) {
  fs.mkdirSync(to, { recursive: true });
  for (const ent of fs.readdirSync(from, { withFileTypes: true })) {
    const a = path.join(from, ent.name);
    const b = path.join(to, ent.name);
    if (ent.isDirectory()) copyTree(a, b, filter);
    else if (filter(ent.name)) fs.copyFileSync(a, b);
  }
}

function build() {
  fs.rmSync(tscOut, { recursive: true, force: true });
  const tsc = require.resolve('typescript/bin/tsc');
  const r = spawnSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.renderer.json')], {
    stdio: 'inherit',
    cwd: root,
  });
  if (r.status !== 0) throw new Error('tsc -p tsconfig.renderer.json failed');
  fs.rmSync(outDir, { recursive: true, force: true });
  const ui = path.join(outDir, 'ui');
  // Only the renderer's own modules: the agent files tsc emitted for the type imports stay behind.
  copyTree(path.join(tscOut, 'renderer'), ui, (n) => n.endsWith('.js'));
  copyTree(srcDir, ui, (n) => n.endsWith('.css') || n.endsWith('.svg'));
  fs.copyFileSync(path.join(srcDir, 'index.html'), path.join(outDir, 'index.html'));
  fs.rmSync(tscOut, { recursive: true, force: true });
  (function check(dir) {
    for (const ent of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, ent.name);
      if (ent.isDirectory()) check(p);
      else if (ent.name.endsWith('.js')) checkImports(p);
    }
  })(ui);
  fs.writeFileSync(stamp, `${new Date().toISOString()}\n`);
}

module.exports = { build, isStale, outDir };

if (require.main === module) {
  try {
    if (process.argv.includes('--if-stale') && !isStale()) process.exit(0);
    build();
  } catch (e) {
    console.error(`build-renderer: ${e.message}`);
    process.exit(1);
  }
}
