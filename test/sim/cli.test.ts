import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { parseCtlArgs, parseRunArgs } from '../../src/sim/cli';
import { applyFault, controlSocketPath, sendControlRequest } from '../../src/sim/control';
import { startSim } from '../../src/sim/index';
import { isMooringError } from '../../src/util/errors';

const ROOT = path.join(__dirname, '..', '..');
const BIN = path.join(ROOT, 'src', 'bin', 'mooring-sim.ts');

function simProcess(args: string[]): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', BIN, ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

async function runToEnd(
  args: string[],
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const p = simProcess(args);
  let stdout = '';
  let stderr = '';
  p.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
  p.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const [code] = (await once(p, 'exit')) as [number | null];
  return { code, stdout, stderr };
}

function usage(flag: string) {
  return (e: unknown) => isMooringError(e, 'USAGE') && e.message.includes(flag);
}

describe('mooring-sim argument parsing', () => {
  it('reads every run flag', () => {
    const o = parseRunArgs([
      '--state',
      'd',
      '--usbmuxd',
      'UNIX:/tmp/x.sock',
      '--wifi',
      '127.0.0.2',
      '--wifi-port=0',
      '--bonjour',
      '127.0.0.1',
      '--udid',
      '00008120-0000000000000001',
      '--name',
      'Phone',
      '--ios',
      '16.1',
      '--files',
      '10',
      '--bytes',
      '2048',
      '--seed',
      '3',
      '--trust',
      'prompt',
      '--passcode',
      'auto:2.5',
      '--wifi-connections',
      'off',
      '--service-tls-over-usb',
      '--quiet',
    ]);
    assert.equal(o.stateDir, path.resolve('d'));
    assert.equal(o.serviceTlsOverUsb, true);
    assert.equal(parseRunArgs(['--state', 'd']).serviceTlsOverUsb, undefined);
    assert.equal(o.wifiPort, 0);
    assert.deepEqual(o.passcode, { kind: 'auto', seconds: 2.5 });
    assert.equal(o.trust, 'prompt');
    assert.equal(o.wifiConnections, false);
    assert.equal(o.files, 10);
    assert.equal(o.quiet, true);
  });

  // H8a: keybag rounds (default: iOS's; tests lower them).
  it('parses --keybag-dpic/--keybag-iter and bounds them', () => {
    assert.equal(parseRunArgs(['--state', 'd']).keyBagRounds, undefined);
    assert.deepEqual(parseRunArgs(['--state', 'd', '--keybag-dpic', '100']).keyBagRounds, {
      dpic: 100,
    });
    assert.deepEqual(
      parseRunArgs(['--state', 'd', '--keybag-dpic', '0', '--keybag-iter', '7']).keyBagRounds,
      { dpic: 1, iter: 7 },
    );
    assert.throws(
      () => parseRunArgs(['--state', 'd', '--keybag-dpic', '100000001']),
      usage('--keybag-dpic'),
    );
  });

  it('names the flag in every refusal', () => {
    assert.throws(() => parseRunArgs(['--files', '1']), usage('--state'));
    assert.throws(() => parseRunArgs(['--state', 'd', '--bogus', '1']), usage('--bogus'));
    assert.throws(() => parseRunArgs(['--state', 'd', '--files', 'many']), usage('--files'));
    assert.throws(() => parseRunArgs(['--state', 'd', '--files', '-1']), usage('--files'));
    assert.throws(
      () => parseRunArgs(['--state', 'd', '--passcode', 'auto:x']),
      usage('--passcode'),
    );
    assert.throws(() => parseRunArgs(['--state', 'd', '--trust', 'maybe']), usage('--trust'));
    assert.throws(() => parseRunArgs(['--state', 'd', '--ios', '17']), usage('--ios'));
    assert.throws(
      () => parseRunArgs(['--state', 'd', '--wifi-port', '70000', '--wifi', '127.0.0.2']),
      usage('--wifi-port'),
    );
    assert.throws(() => parseRunArgs(['--state', 'd', '--wifi-port', '1']), usage('--wifi-port'));
    assert.throws(() => parseRunArgs(['--state', 'd', '--seed']), usage('--seed'));
    assert.throws(
      () => parseRunArgs(['--state', 'd', '--seed', '1', '--seed', '2']),
      usage('--seed'),
    );
  });

  it('reads ctl commands and their arguments', () => {
    assert.deepEqual(parseCtlArgs(['--state', 'd', 'mutate', '--add', '3', '--delete', '1']).args, {
      add: 3,
      delete: 1,
    });
    assert.deepEqual(parseCtlArgs(['--state', 'd', 'trust', 'accept']).args, { answer: 'accept' });
    assert.deepEqual(parseCtlArgs(['--state', 'd', 'fault', 'lowDisk', 'on']).args, {
      name: 'lowDisk',
      value: 'on',
    });
    assert.throws(() => parseCtlArgs(['--state', 'd', 'explode']), usage('explode'));
    assert.throws(() => parseCtlArgs(['--state', 'd', 'trust']), usage('trust accept|deny'));
    assert.throws(() => parseCtlArgs(['--state', 'd', 'lock', '--add', '1']), usage('--add'));
    assert.throws(() => parseCtlArgs(['lock']), usage('--state'));
  });

  it('validates fault names and values', () => {
    const f = {};
    assert.deepEqual(applyFault(f, 'dropAfterBytes', '4096'), { dropAfterBytes: 4096 });
    assert.deepEqual(applyFault(f, 'evil', 'path-escape'), {
      dropAfterBytes: 4096,
      evil: 'path-escape',
    });
    assert.deepEqual(applyFault(f, 'dropAfterBytes', 'off'), { evil: 'path-escape' });
    assert.throws(() => applyFault({}, 'meltdown', '1'), usage('meltdown'));
    assert.throws(() => applyFault({}, 'evil', 'mostly'), usage('evil'));
    assert.throws(() => applyFault({}, 'lowDisk', 'sometimes'), usage('lowDisk'));
    assert.deepEqual(applyFault({}, 'staleSnapshot', 'on'), { staleSnapshot: true });
    assert.deepEqual(applyFault({ staleSnapshot: true }, 'staleSnapshot', 'off'), {});
    assert.throws(() => applyFault({}, 'staleSnapshot', '1'), usage('staleSnapshot'));
  });
});

describe('mooring-sim process', () => {
  let root: string;
  before(async () => {
    root = await fsp.mkdtemp(path.join(os.tmpdir(), 'sim-cli-'));
  });
  after(async () => {
    await fsp.rm(root, { recursive: true, force: true });
  });

  it('prints one ready line, answers ctl, refuses a second copy, and exits 0 on SIGTERM', async () => {
    const state = path.join(root, 'run');
    const p = simProcess([
      '--state',
      state,
      '--quiet',
      '--files',
      '4',
      '--bytes',
      '4096',
      '--seed',
      '2',
    ]);
    let stderr = '';
    p.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    const lines = createInterface({ input: p.stdout! });
    const [first] = (await once(lines, 'line')) as [string];
    const ready = JSON.parse(first) as Record<string, unknown>;
    assert.match(String(ready.udid), /^00008120-[0-9A-F]{16}$/);
    assert.equal(ready.usbmuxd, `UNIX:${path.join(state, 'usbmuxd.sock')}`);
    assert.equal(ready.wifi, null);

    const status = await runToEnd(['ctl', '--state', state, 'status']);
    assert.equal(status.code, 0, status.stderr);
    assert.equal((JSON.parse(status.stdout) as { udid: string }).udid, ready.udid);
    // The rest through the same control socket, in-process (each CLI spawn costs a second).
    const sock = controlSocketPath(state);
    assert.deepEqual(await sendControlRequest(sock, 'fault', { name: 'lowDisk', value: 'on' }), {
      faults: { lowDisk: true },
    });
    await assert.rejects(
      sendControlRequest(sock, 'trust', { answer: 'accept' }),
      /no trust dialog is showing/,
    );
    await assert.rejects(startSim({ stateDir: state }), usage('already running'));

    p.kill('SIGTERM');
    const [code] = (await once(p, 'exit')) as [number | null];
    assert.equal(code, 0, stderr);
    await assert.rejects(fsp.stat(path.join(state, 'control.sock')), 'control socket removed');

    // Content commands still work with the simulator stopped: they open the store directly.
    const listing = await runToEnd(['ctl', '--state', state, 'listing']);
    assert.equal(listing.code, 0, listing.stderr);
    assert.ok(JSON.parse(listing.stdout));
    await assert.rejects(
      sendControlRequest(controlSocketPath(state), 'lock'),
      (e) => isMooringError(e, 'IO') && /no simulator is running/.test(e.message),
    );
  });

  it('exits 2 with a message naming a bad flag', async () => {
    const r = await runToEnd(['--state', path.join(root, 'bad'), '--passcode', 'sometimes']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--passcode/);
    assert.equal(r.stdout, '');
  });
});
