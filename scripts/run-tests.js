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
// The whole run's limit: well above its ~5-8 min on two cores, well inside CI's 90.
const deadlineMs = Number(process.env.TEST_DEADLINE_MIN || '40') * 60_000;
if (!(deadlineMs > 0)) {
  console.error('run-tests: TEST_DEADLINE_MIN must be a positive number of minutes');
  process.exit(1);
}
const r = spawnSync(
  process.execPath,
  [
    '--import',
    'tsx',
    '--test',
    `--test-concurrency=${concurrency}`,
    // No --test-force-exit: on Node 20-24 it can end a file before its last results reach this
    // process, which then reports fewer tests than ran, with exit 0 (nodejs/node#64833; here 8 of
    // test/scheduler/policy.test.ts's once). A file that hangs instead is stopped by the deadline.
    '--test-reporter=spec',
    ...chosen,
  ],
  { stdio: 'inherit', cwd: root, timeout: deadlineMs, killSignal: 'SIGKILL' },
);
if (r.error && r.error.code === 'ETIMEDOUT') {
  console.error(
    `\nrun-tests: the tests did not end within ${deadlineMs / 60000} min (TEST_DEADLINE_MIN): ` +
      'a test file hangs, most likely on a timer or socket left open; the last file shown above ' +
      'is where to look',
  );
  process.exit(1);
}
process.exit(r.status === null ? 1 : r.status);
