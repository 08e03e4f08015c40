#!/usr/bin/env node
// `npm start`: the tray app where Electron and a display exist, else the headless agent
// (`mooring agent`, same UI on localhost). `--sim` always means the headless agent: the desktop
// package never ships the simulator. `--headless` forces the agent; other arguments go to it.
'use strict';
const { spawn } = require('node:child_process');
const { existsSync } = require('node:fs');
const { join } = require('node:path');

/** Path of a runnable Electron binary, or null (not installed, or its download failed). */
function electronBinary() {
  try {
    // In Node, the electron package exports the binary's path (and throws if it is missing).
    const p = require('electron');
    return typeof p === 'string' && existsSync(p) ? p : null;
  } catch {
    return null;
  }
}

/** 'app' or 'agent', and why (printed, so nobody wonders which one started). */
function chooseMode({ argv, electronPath, platform, env }) {
  if (argv.includes('--sim')) return { mode: 'agent', why: '--sim runs the headless agent' };
  if (argv.includes('--headless')) return { mode: 'agent', why: '--headless' };
  if (electronPath === null) return { mode: 'agent', why: 'Electron is not installed here' };
  const display =
    platform === 'darwin' || platform === 'win32' || Boolean(env.DISPLAY || env.WAYLAND_DISPLAY);
  if (!display) return { mode: 'agent', why: 'no display' };
  return { mode: 'app', why: 'Electron and a display are available' };
}

function main() {
  const argv = process.argv.slice(2);
  const electronPath = electronBinary();
  const { mode, why } = chooseMode({
    argv,
    electronPath,
    platform: process.platform,
    env: process.env,
  });
  const root = join(__dirname, '..');
  process.stderr.write(
    `Starting the ${mode === 'app' ? 'tray app' : 'headless agent'} (${why}).\n`,
  );
  const child =
    mode === 'app'
      ? spawn(electronPath, [root], { stdio: 'inherit' })
      : spawn(
          process.execPath,
          [join(root, 'bin', 'mooring.js'), 'agent', ...argv.filter((a) => a !== '--headless')],
          { stdio: 'inherit' },
        );
  // Pass Ctrl-C / SIGTERM on, and leave with the child's status.
  for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => child.kill(sig));
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
}

module.exports = { chooseMode, electronBinary };
if (require.main === module) main();
