#!/usr/bin/env node
// `npm run fuzz [-- <file substring>…]`: the property-based fuzz suite (test/fuzz) with many runs per
// property (FUZZ_RUNS, default 200000; FUZZ_SEED replays a reported failure, or a file that hung:
// each file prints its seed first). The default test run (`npm test`) runs the same properties
// with a small FUZZ_RUNS so CI stays bounded.
'use strict';
const { spawnSync } = require('node:child_process');
const { join } = require('node:path');

const filters = process.argv.slice(2);
const env = { ...process.env, FUZZ_RUNS: process.env.FUZZ_RUNS || '200000' };
const targets = filters.length ? filters.map((f) => `test/fuzz/${f}`) : ['test/fuzz/'];
console.error(
  `fuzz: FUZZ_RUNS=${env.FUZZ_RUNS}${env.FUZZ_SEED ? ` FUZZ_SEED=${env.FUZZ_SEED}` : ''}: ${targets.join(' ')}`,
);
const r = spawnSync(process.execPath, [join(__dirname, 'run-tests.js'), ...targets], {
  stdio: 'inherit',
  env,
  cwd: join(__dirname, '..'),
});
process.exit(r.status ?? 1);
