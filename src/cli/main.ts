/**
 * The `mooring` command line. Each command is a small module under commands/; this file only
 * parses arguments, sets up the context and turns errors into one line a person can act on.
 */
import { isMooringError, MooringError } from '../util/errors';
import { parseFlags, UsageError } from '../util/cli-flags';
import { makeContext, type CliContext, type Via } from './context';
import { defaultDataDir } from './paths';
import { devicesCommand } from './commands/devices';
import { infoCommand } from './commands/info';
import { pairCommand } from './commands/pair';
import { wifiCommand } from './commands/wifi';
import { startEmbeddedSim, type EmbeddedSim } from './embedded-sim';

export const USAGE = `Usage: mooring COMMAND [options]

Commands:
  devices                      list connected devices and whether this computer is paired
  pair [--udid U]              pair over USB (the device asks "Trust This Computer?")
  info [--udid U] [--domain D] [--key K]
                               show the device's lockdown values
  wifi on|off [--udid U]       allow or stop backups over Wi-Fi (EnableWifiConnections)

Options:
  --udid U                     which device (needed when several are connected)
  --via usb|wifi|auto          how to reach it (default auto: USB first)
  --host ADDR[:PORT]           the device's Wi-Fi address, for --via wifi
  --usbmuxd ADDR               usbmuxd endpoint: UNIX:/path, /path, host:port
                               (default USBMUXD_SOCKET_ADDRESS, else the platform's)
  --data-dir DIR               Mooring's own files (default: per-user data folder)
  --sim                        start a simulated iPhone in this process and use it
  --json                       machine-readable output
`;

const EXIT_USAGE = 2;
const VALUED = ['udid', 'via', 'host', 'usbmuxd', 'data-dir', 'domain', 'key'] as const;
const BOOLEANS = ['json', 'sim', 'help'] as const;

function parseVia(v: string | undefined): Via {
  if (v === undefined) return 'auto';
  if (v === 'usb' || v === 'wifi' || v === 'auto') return v;
  throw new UsageError(`--via: expected usb, wifi or auto, got "${v}"`);
}

export async function main(
  argv: string[],
  out: (line: string) => void = (l) => process.stdout.write(l + '\n'),
  err: (line: string) => void = (l) => process.stderr.write(l + '\n'),
): Promise<number> {
  let sim: EmbeddedSim | undefined;
  try {
    const { flags, positionals } = parseFlags(argv, VALUED, BOOLEANS);
    const [command, ...rest] = positionals;
    if (flags.has('help') || command === undefined || command === 'help') {
      out(USAGE);
      return command === undefined && !flags.has('help') ? EXIT_USAGE : 0;
    }
    const dataDir = flags.get('data-dir') ?? defaultDataDir();
    const via = parseVia(flags.get('via'));
    let usbmuxdFlag = flags.get('usbmuxd');
    let host = flags.get('host');
    let udid = flags.get('udid');
    if (flags.has('sim')) {
      sim = await startEmbeddedSim(dataDir);
      err(`Using a simulated iPhone (${sim.udid}).`);
      usbmuxdFlag = sim.usbmuxdAddress;
      host ??= sim.wifiAddress;
      udid ??= sim.udid;
    }
    const ctx: CliContext = makeContext(dataDir, usbmuxdFlag, out, err);
    if (host !== undefined) ctx.wifiHost = host;
    if (via === 'wifi' && host === undefined) {
      throw new UsageError("--via wifi needs --host ADDRESS (the device's Wi-Fi address)");
    }
    const json = flags.has('json');
    const noMore = (): void => {
      if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}"`);
    };
    switch (command) {
      case 'devices':
        noMore();
        return await devicesCommand(ctx, json);
      case 'pair':
        noMore();
        return await pairCommand(ctx, udid);
      case 'info':
        noMore();
        return await infoCommand(ctx, {
          udid,
          via,
          domain: flags.get('domain'),
          key: flags.get('key'),
          json,
        });
      case 'wifi': {
        const [state, ...extra] = rest;
        if ((state !== 'on' && state !== 'off') || extra.length > 0) {
          throw new UsageError('usage: mooring wifi on|off [--udid U]');
        }
        return await wifiCommand(ctx, state === 'on', udid, via);
      }
      default:
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (e) {
    if (isMooringError(e, 'USAGE')) {
      err(`mooring: ${e.message}`);
      if (e instanceof UsageError) err('Run "mooring --help" for the commands and options.');
      return EXIT_USAGE;
    }
    err(`mooring: ${e instanceof Error ? e.message : String(e)}`);
    if (e instanceof MooringError && e.code === 'USBMUXD') return 3;
    return 1;
  } finally {
    await sim?.stop();
  }
}
