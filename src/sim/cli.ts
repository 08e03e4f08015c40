/**
 * The `mooring-sim` command line: run a simulated iPhone (`mooring-sim --state DIR …`) or talk
 * to a running one (`mooring-sim ctl --state DIR <command> …`). When the simulator is ready it
 * prints exactly one JSON line on stdout; logs go to stderr as JSON lines.
 */
import path from 'node:path';
import { isMooringError } from '../util/errors';
import { intFlag, parseFlags, UsageError } from '../util/cli-flags';
import { ContentStore } from './content/store';
import type { PasscodeMode, TrustMode } from './contracts';
import { CONTENT_COMMANDS, CTL_COMMANDS, controlSocketPath, sendControlRequest } from './control';
import { startSim, type SimOptions } from './index';

export const USAGE = `Usage:
  mooring-sim --state DIR [options]        run a simulated iPhone
  mooring-sim ctl --state DIR COMMAND …    control a running simulator

Options:
  --state DIR            device state (identity, pairings, content); required
  --usbmuxd ADDR         usbmuxd endpoint: UNIX:/path, /path or host:port
                         (default UNIX:DIR/usbmuxd.sock)
  --wifi HOST            also serve lockdownd on HOST:62078 (Wi-Fi)
  --wifi-port N          port for the Wi-Fi lockdownd (default 62078; 0 = any free port)
  --wifi-connections on|off
                         initial EnableWifiConnections (default: as stored, else on)
  --bonjour IFACE        advertise _apple-mobdev2._tcp on interface address IFACE (needs --wifi)
  --bonjour-txt          add TXT identifier/authTag (one tag per paired host; iOS 26.4+)
  --bonjour-mac-hidden   random MAC in the advert's name: only the TXT tags identify the device
  --udid U               device UDID (default derived from --seed)
  --name N               device name
  --ios VERSION          iOS version (default 17.5)
  --files N  --bytes N   size of the generated content (first start only)
  --seed N               seed for identity and content
  --trust auto|prompt|deny        scripted answer to "Trust This Computer?" (default auto)
  --passcode none|auto:SECONDS|never   passcode behaviour (default none)
  --keybag-dpic N  --keybag-iter N     PBKDF2 rounds of backup keybags made by ChangePassword
                         (default 10000000 / 10000 as iOS; lower only for quick tests)
  --service-tls-over-usb start mobilebackup2 and afc with TLS through usbmuxd too (real devices
                         start them plain there, TLS only over Wi-Fi)
  --quiet                no log lines on stderr

ctl commands:
  status | listing | wipe | mutate [--add N] [--modify N] [--delete N]
  lock | unlock | enter-passcode | reboot | detach | attach | offline | online
  revoke-pairing | trust accept|deny | fault NAME VALUE|off
`;

const EXIT_USAGE = 2;

export function parsePasscode(v: string): PasscodeMode {
  if (v === 'none') return { kind: 'none' };
  if (v === 'never') return { kind: 'never' };
  const m = /^auto:(\d+(?:\.\d+)?)$/.exec(v);
  if (m) return { kind: 'auto', seconds: Number(m[1]) };
  throw new UsageError(`--passcode: expected none, never or auto:SECONDS, got "${v}"`);
}

function parseTrust(v: string): TrustMode {
  if (v === 'auto' || v === 'prompt' || v === 'deny') return v;
  throw new UsageError(`--trust: expected auto, prompt or deny, got "${v}"`);
}

function onOff(name: string, v: string | undefined): boolean | undefined {
  if (v === undefined) return undefined;
  if (v === 'on' || v === 'true') return true;
  if (v === 'off' || v === 'false') return false;
  throw new UsageError(`--${name}: expected on or off, got "${v}"`);
}

const RUN_FLAGS = [
  'state',
  'usbmuxd',
  'wifi',
  'wifi-port',
  'wifi-connections',
  'bonjour',
  'udid',
  'name',
  'ios',
  'files',
  'bytes',
  'seed',
  'trust',
  'passcode',
  'keybag-dpic',
  'keybag-iter',
] as const;

/** Turns `mooring-sim …` arguments into SimOptions (exported for tests). */
export function parseRunArgs(argv: string[]): SimOptions & { quiet: boolean } {
  const { flags, positionals } = parseFlags(argv, RUN_FLAGS, [
    'quiet',
    'bonjour-txt',
    'bonjour-mac-hidden',
    'service-tls-over-usb',
  ]);
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const stateDir = flags.get('state');
  if (!stateDir) throw new UsageError('--state DIR is required');
  const opts: SimOptions & { quiet: boolean } = {
    stateDir: path.resolve(stateDir),
    quiet: flags.has('quiet'),
  };
  const str = (k: string): string | undefined => flags.get(k);
  if (str('usbmuxd') !== undefined) opts.usbmuxd = str('usbmuxd');
  if (str('wifi') !== undefined) opts.wifi = str('wifi');
  if (str('bonjour') !== undefined) opts.bonjour = str('bonjour');
  if (flags.has('bonjour-txt')) opts.bonjourTxt = true;
  if (flags.has('bonjour-mac-hidden')) opts.bonjourMacHidden = true;
  if (flags.has('service-tls-over-usb')) opts.serviceTlsOverUsb = true;
  if (str('udid') !== undefined) opts.udid = str('udid');
  if (str('name') !== undefined) {
    const name = str('name')!;
    if (name === '' || name.length > 255)
      throw new UsageError('--name: expected 1 to 255 characters');
    opts.name = name;
  }
  if (str('ios') !== undefined) {
    const ios = str('ios')!;
    if (!/^\d{1,2}\.\d{1,2}(\.\d{1,2})?$/.test(ios))
      throw new UsageError(`--ios: expected a version like 17.5, got "${ios}"`);
    opts.ios = ios;
  }
  opts.wifiPort = intFlag(flags, 'wifi-port', 65535);
  opts.files = intFlag(flags, 'files');
  opts.bytes = intFlag(flags, 'bytes');
  opts.seed = intFlag(flags, 'seed', 0xffff_ffff);
  const dpic = intFlag(flags, 'keybag-dpic', 100_000_000);
  const iter = intFlag(flags, 'keybag-iter', 10_000_000);
  if (dpic !== undefined || iter !== undefined)
    opts.keyBagRounds = {
      ...(dpic !== undefined ? { dpic: Math.max(1, dpic) } : {}),
      ...(iter !== undefined ? { iter: Math.max(1, iter) } : {}),
    };
  opts.wifiConnections = onOff('wifi-connections', str('wifi-connections'));
  if (str('trust') !== undefined) opts.trust = parseTrust(str('trust')!);
  if (str('passcode') !== undefined) opts.passcode = parsePasscode(str('passcode')!);
  if (opts.wifiPort !== undefined && opts.wifi === undefined)
    throw new UsageError('--wifi-port needs --wifi');
  return opts;
}

/** Turns `mooring-sim ctl …` arguments into a control request (exported for tests). */
export function parseCtlArgs(argv: string[]): {
  stateDir: string;
  command: string;
  args: Record<string, unknown>;
} {
  const { flags, positionals } = parseFlags(argv, ['state', 'add', 'modify', 'delete']);
  const stateDir = flags.get('state');
  if (!stateDir) throw new UsageError('ctl: --state DIR is required');
  const [command, ...rest] = positionals;
  if (command === undefined)
    throw new UsageError(`ctl: a command is required (${CTL_COMMANDS.join(', ')})`);
  if (!(CTL_COMMANDS as readonly string[]).includes(command)) {
    throw new UsageError(`ctl: unknown command "${command}" (known: ${CTL_COMMANDS.join(', ')})`);
  }
  const args: Record<string, unknown> = {};
  const countFlags = ['add', 'modify', 'delete'].filter((f) => flags.has(f));
  if (command === 'mutate') {
    for (const f of countFlags) args[f] = intFlag(flags, f);
  } else if (countFlags.length > 0) {
    throw new UsageError(`ctl ${command}: --${countFlags[0]} only applies to mutate`);
  }
  const expectArgs = command === 'trust' ? 1 : command === 'fault' ? 2 : 0;
  if (rest.length !== expectArgs) {
    const shape =
      command === 'trust'
        ? 'trust accept|deny'
        : command === 'fault'
          ? 'fault NAME VALUE'
          : command;
    throw new UsageError(`ctl: usage: ${shape}`);
  }
  if (command === 'trust') args.answer = rest[0];
  if (command === 'fault') {
    args.name = rest[0];
    args.value = rest[1];
  }
  return { stateDir: path.resolve(stateDir), command, args };
}

async function runCtl(argv: string[]): Promise<number> {
  const { stateDir, command, args } = parseCtlArgs(argv);
  let result: unknown;
  try {
    result = await sendControlRequest(controlSocketPath(stateDir), command, args);
  } catch (e) {
    if (!(isMooringError(e, 'IO') && e.detail === 'not-running' && CONTENT_COMMANDS.has(command)))
      throw e;
    // Content lives on disk: without a running simulator, edit the store directly.
    const store = await ContentStore.open(stateDir);
    if (command === 'listing') result = await store.listing();
    else if (command === 'wipe') {
      await store.wipe();
      result = { wiped: true };
    } else result = await store.mutate(args as { add?: number; modify?: number; delete?: number });
  }
  process.stdout.write(JSON.stringify(result ?? null, null, 2) + '\n');
  return 0;
}

async function runSim(argv: string[]): Promise<number> {
  const opts = parseRunArgs(argv);
  const sim = await startSim({ ...opts, log: !opts.quiet });
  process.stdout.write(
    JSON.stringify({
      ready: true,
      udid: sim.udid,
      usbmuxd: sim.usbmuxdAddress,
      wifi: sim.wifiAddress ?? null,
      stateDir: sim.stateDir,
      control: controlSocketPath(sim.stateDir),
      pairRecordDir: sim.pairRecordDir,
      pid: process.pid,
    }) + '\n',
  );
  await new Promise<void>((resolve) => {
    const onSignal = (): void => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      resolve();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
  await sim.stop();
  return 0;
}

export async function main(argv: string[]): Promise<number> {
  try {
    if (argv.includes('--help') || argv.includes('-h')) {
      process.stdout.write(USAGE);
      return 0;
    }
    if (argv[0] === 'ctl') return await runCtl(argv.slice(1));
    return await runSim(argv);
  } catch (e) {
    if (isMooringError(e, 'USAGE')) {
      process.stderr.write(`mooring-sim: ${e.message}\n`);
      if (e instanceof UsageError)
        process.stderr.write('Run mooring-sim --help for the options.\n');
      return EXIT_USAGE;
    }
    process.stderr.write(`mooring-sim: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
}
