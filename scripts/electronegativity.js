#!/usr/bin/env node
// Runs @doyensec/electronegativity over the desktop app (the Electron main process, its preload and
// the window's page) as .electronegativity.json says, and fails on any HIGH or CRITICAL finding that
// the config does not accept with a reason. `--json` prints the summary as JSON (the test reads it);
// `--config FILE` and `--root DIR` let the test scan a deliberately unsafe app to prove it can fail.
// The scanned files are copied into one temporary folder because the tool takes a single input.
'use strict';
const { cpSync, mkdtempSync, readFileSync, rmSync, statSync, existsSync } = require('node:fs');
const { spawnSync } = require('node:child_process');
const os = require('node:os');
const path = require('node:path');

function arg(name) {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
}

const root = path.resolve(arg('--root') ?? path.join(__dirname, '..'));
const configFile = path.resolve(arg('--config') ?? path.join(root, '.electronegativity.json'));
const asJson = process.argv.includes('--json');
const config = JSON.parse(readFileSync(configFile, 'utf8'));
const cli = require.resolve('@doyensec/electronegativity/dist/index.js');

/** One CSV line into fields: quoted fields may hold commas; "" is a quote. */
function csvFields(line) {
  const out = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i];
    if (quoted) {
      if (ch === '"' && line[i + 1] === '"') {
        cur += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else cur += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      out.push(cur.trim());
      cur = '';
    } else cur += ch;
  }
  out.push(cur.trim());
  return out;
}

const work = mkdtempSync(path.join(os.tmpdir(), 'mooring-electronegativity-'));
let findings;
try {
  const scan = path.join(work, 'scan');
  const scanned = [];
  for (const input of config.inputs) {
    const from = path.join(root, input);
    if (!existsSync(from))
      throw new Error(`.electronegativity.json: input ${input} does not exist`);
    cpSync(from, path.join(scan, input), { recursive: statSync(from).isDirectory() });
    scanned.push(input);
  }
  const csv = path.join(work, 'findings.csv');
  const args = [cli, '-i', scan, '-r', '-v', 'false', '-o', csv];
  if (config.electronVersion) args.push('-e', config.electronVersion);
  const excluded = Object.keys(config.excludedChecks ?? {});
  if (excluded.length > 0) args.push('-x', excluded.join(','));
  const run = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 120_000 });
  if (run.status !== 0 || !existsSync(csv)) {
    throw new Error(`electronegativity failed (exit ${run.status}):\n${run.stdout}\n${run.stderr}`);
  }
  const lines = readFileSync(csv, 'utf8')
    .split('\n')
    .slice(1)
    .filter((l) => l.trim() !== '');
  findings = lines.map((l) => {
    const [check, severity, confidence, file, location, sample, description] = csvFields(l);
    return { check, severity, confidence, file, location, sample, description };
  });
  const accepted = config.acceptedFindings ?? [];
  for (const f of findings) {
    const a = accepted.find(
      (x) => x.check === f.check && (x.file === undefined || path.basename(f.file) === x.file),
    );
    f.accepted = a ? a.reason : null;
  }
  const failing = findings.filter((f) => config.failOn.includes(f.severity) && !f.accepted);
  const summary = { scanned, excludedChecks: excluded, findings, failing: failing.length };
  if (asJson) process.stdout.write(JSON.stringify(summary, null, 2) + '\n');
  else {
    for (const f of findings) {
      const mark = f.accepted ? 'accepted' : config.failOn.includes(f.severity) ? 'FAIL' : 'note';
      console.log(`${mark.padEnd(8)} ${f.severity.padEnd(8)} ${f.check} ${f.file}:${f.location}`);
    }
    console.log(
      `electronegativity: ${findings.length} finding(s), ${failing.length} failing (${config.failOn.join('/')} not accepted in ${path.relative(root, configFile)})`,
    );
  }
  process.exitCode = failing.length === 0 ? 0 : 1;
} finally {
  rmSync(work, { recursive: true, force: true });
}
