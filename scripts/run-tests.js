#!/usr/bin/env node
// Runs every test/**/*.test.ts with node's own test runner (through tsx), so the closing lines are node's.
// Node 20's --test does not discover .ts files by itself, hence this list.
'use strict';
const { readdirSync, statSync } = require('node:fs');
const { join, relative } = require('node:path');
const { spawnSync } = require('node:child_process');

const root = join(__dirname, '..');
const filter = process.argv.slice(2);
const files = [];
(function walk(dir) {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (name.endsWith('.test.ts')) files.push(relative(root, p));
  }
})(join(root, 'test'));
const chosen = filter.length ? files.filter((f) => filter.some((x) => f.includes(x))) : files;
if (chosen.length === 0) {
  console.error('no test files matched');
  process.exit(1);
}
// The UI tests load dist/renderer: build it when it is missing or older than its sources.
const renderer = require('./build-renderer.js');
if (renderer.isStale()) {
  console.error('building the renderer (dist/renderer)…');
  try {
    renderer.build();
  } catch (e) {
    console.error(`build-renderer: ${e.message}`);
    process.exit(1);
  }
}
const concurrency = process.env.TEST_CONCURRENCY || '2';
const r = spawnSync(
  process.execPath,
  [
    '--import',
    'tsx',
    '--test',
    `--test-concurrency=${concurrency}`,
    // A file whose tests all finished ends even if something (a library's timer) still holds
    // its event loop: a hang must not eat CI's time. Leaks are still bugs: find and fix them.
    '--test-force-exit',
    '--test-reporter=spec',
    ...chosen,
  ],
  { stdio: 'inherit', cwd: root },
);
process.exit(r.status === null ? 1 : r.status);
