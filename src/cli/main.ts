/**
 * The `mooring` command line. Each command is a small module under commands/; this file only
 * parses arguments, sets up the context and turns errors into one line a person can act on.
 */
import { isMooringError, MooringError } from '../util/errors';
import { parseFlags, UsageError } from '../util/cli-flags';
import { findPairRecord } from '../lockdown';
import { makeContext, usbmuxd, type CliContext, type Via } from './context';
import { defaultDataDir, pairRecordStoreDir } from '../util/paths';
import { devicesCommand } from './commands/devices';
import { infoCommand } from './commands/info';
import { pairCommand } from './commands/pair';
import { wifiCommand } from './commands/wifi';
import { startEmbeddedSim, type EmbeddedSim } from './embedded-sim';
import { backupCommand } from './commands/backup';
import { logCommand } from './commands/log';
import { pinCommand, pruneCommand, snapshotsCommand, type StoreArgs } from './commands/snapshots';
import { diffCommand, extractCommand, filesCommand, verifyCommand } from './commands/inspect';
import { resolveDestination } from './agent-settings';
import { AgentApiError } from '../api/client';
import { EXIT_NO_AGENT, NoAgentError } from './agent-connection';
import { AGENT_COMMANDS, agentDevices, runAgentCommand } from './agent-commands';
// H8b: backup encryption and encrypted snapshots
import {
  encryptionCommand,
  ENCRYPTION_USAGE,
  readPasswordFile,
  terminalPrompt,
} from './commands/encryption';
import { FileSecretStore, passwordCandidates, secretsDir } from '../secrets';
import type { PasswordCandidates } from '../store/encrypted';

export const USAGE = `Usage: mooring COMMAND [options]

Commands:
  devices                      list connected devices and whether this computer is paired
  pair [--udid U]              pair over USB (the device asks "Trust This Computer?")
  info [--udid U] [--domain D] [--key K]
                               show the device's lockdown values
  wifi on|off [--udid U]       allow or stop backups over Wi-Fi (EnableWifiConnections)
  backup [--udid U] [--dest DIR] [--full] [--make-room]
                               back up one device now into a new verified snapshot;
                               --make-room: if the device lacks room, remove the oldest
                               snapshots it needs gone (never pinned ones, never the latest)
  snapshots [--udid U] [--dest DIR]
                               list the snapshots: date, files, size, bytes only that one holds
  pin|unpin SNAPSHOT           keep a snapshot forever (or not)
  prune [--keep-all 14d] [--daily 60d] [--weekly 365d|forever] [--dry-run]
                               remove snapshots the retention policy no longer keeps
                               (default: the device's keep-* settings; units y, m =
                               30-day months, w, d, h)
  verify [--snapshot S] [--no-hash]
                               check every file of a backup against its Manifest.db
  files [--snapshot S] [--domain D] [PATTERN]
                               list files in a backup
  extract [--snapshot S] [--domain D] [PATTERN] --to DIR
                               copy files out of a backup
  diff S1 S2                   files added, removed and changed between two snapshots
                               (files, extract, diff: encrypted backups open with the
                               stored password, or --password-file FILE)
  encryption on|off|change --udid U [--password-file F] [--old-password-file F]
             [--generate] [--no-store] [--out SHEET.html]
                               backup encryption on the device (it asks for its passcode);
                               "on" without a password generates one, prints it once and
                               writes a recovery sheet; Mooring keeps it (0600 file) unless
                               --no-store
  encryption status|password|sheet --udid U
                               is encryption on; tell Mooring the password; print the
                               recovery sheet again

The agent (automatic backups; the commands below talk to it):
  agent [--listen 127.0.0.1:PORT] [--backup-dir DIR] [--usbmuxd ADDR|off]
        [--mdns-interface ADDR|off] [--wifi-port lockdown|advertised] [--sim]
        [--lan-password-file FILE] [--no-store-passwords]
                               run discovery, the schedule and the HTTP API (default
                               127.0.0.1:47110); prints a one-time browser login link;
                               a LAN --listen (0.0.0.0:PORT) needs --lan-password-file;
                               backup passwords go to DATA/secrets (0600) unless
                               --no-store-passwords
  status                       the agent, its devices and unread notifications
  devices                      (while an agent runs) what the agent knows of each device
  history [--udid U] [--severity info|warning|error] [--kind K] [--limit N] [--before ID]
          [--mark-read]        notifications, newest first, each with its device's name
                               (--mark-read: those shown and older count as read;
                               with --severity or --kind, only those shown)
  attempts [--udid U] [--outcome O] [--limit N] [--before ID]
                               backup attempts, newest first
  backup-now --udid U [--wait] start a backup now (--wait: until it ends; exit 0 on success)
  cancel --udid U              cancel the device's running backup
  config get [KEY] | set KEY VALUE | reset KEY [--udid U]
                               settings: interval, window, enabled, paused, concurrency,
                               retries-per-day, retry-after, passcode-wait, webhook,
                               stale-after, keep-all, keep-daily, keep-weekly (retention
                               after each backup), make-room (the oldest may go when the
                               device lacks room), backup-dir (where new backups go)
  pause | resume               stop or restart automatic backups
  open                         print a new one-time link that opens the UI in a browser
  log [--bytes N]              the end of the agent's log (DATA/logs/agent.log; works
                               without a running agent)

Options:
  --udid U                     which device (needed when several are connected)
  --via usb|wifi|auto          how to reach it (default auto: USB first)
  --host ADDR[:PORT]           the device's Wi-Fi address, for --via wifi
  --usbmuxd ADDR               usbmuxd endpoint: UNIX:/path, /path, host:port
                               (default USBMUXD_SOCKET_ADDRESS, else the platform's)
  --dest DIR                   where backups live (default: the agent's backup folder)
  --data DIR, --data-dir DIR   Mooring's own files (default: per-user data folder)
  --agent URL                  the agent to talk to (token in MOORING_TOKEN; default: the
                               one DATA-DIR/agent.json names)
  --sim                        start a simulated iPhone in this process and use it
  --json                       machine-readable output
`;

const EXIT_USAGE = 2;
const VALUED = [
  'udid',
  'via',
  'host',
  'usbmuxd',
  'data-dir',
  'domain',
  'key',
  'dest',
  'snapshot',
  'to',
  'keep-all',
  'daily',
  'weekly',
  'data',
  'listen',
  'backup-dir',
  'mdns-interface',
  'wifi-port',
  'lan-password-file', // H7a: mooring agent --listen beyond loopback
  'password-file', // H8b: encryption and encrypted backups
  'old-password-file', // H8b
  'out', // H8b: recovery sheet
  'agent',
  'limit',
  'before',
  'severity',
  'kind',
  'outcome',
  'bytes',
] as const;
const BOOLEANS = [
  'json',
  'sim',
  'help',
  'full',
  'make-room', // D48
  'dry-run',
  'no-hash',
  'wait',
  'mark-read',
  'generate', // H8b
  'no-store', // H8b
  'no-store-passwords', // H8c: mooring agent keeps no backup passwords
] as const;

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
    if (flags.has('data') && flags.has('data-dir')) {
      throw new UsageError('--data and --data-dir are the same option: give one');
    }
    const dataDir = flags.get('data') ?? flags.get('data-dir') ?? defaultDataDir();
    const agentArgs = { command, rest, flags, dataDir, out, err };
    if ((AGENT_COMMANDS as readonly string[]).includes(command)) {
      return await runAgentCommand(agentArgs);
    }
    if (command === 'log') {
      if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}"`);
      return await logCommand(dataDir, { bytes: flags.get('bytes'), json: flags.has('json'), out });
    }
    if (command === 'devices' && !flags.has('sim')) {
      const viaAgent = await agentDevices(agentArgs);
      if (viaAgent !== undefined) return viaAgent;
    }
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
    if (sim && ['backup', 'info', 'wifi', 'encryption'].includes(command)) {
      // The simulated iPhone trusts this computer without a person: pair it on first use.
      const known = await findPairRecord(sim.udid, {
        usbmuxd: usbmuxd(ctx),
        storeDir: pairRecordStoreDir(dataDir),
      });
      if (!known) await pairCommand(ctx, sim.udid);
    }
    const storeArgs = async (): Promise<StoreArgs> => ({
      dest: (await resolveDestination(flags.get('dest'), dataDir, ctx.err)).dir,
      ...(udid === undefined ? {} : { udid }),
      json,
    });
    // H8b: encrypted snapshots open with --password-file, then the stored passwords.
    const passwordFile = flags.get('password-file');
    const passwordsFor =
      (deviceUdid: string): PasswordCandidates =>
      async (keyBagId) => {
        const given =
          passwordFile === undefined ? [] : [await readPasswordFile(passwordFile, 'the password')];
        const stored = new FileSecretStore(secretsDir(dataDir));
        const list = await passwordCandidates(stored, deviceUdid, given)(keyBagId);
        // Nothing stored (e.g. --no-store users) and a person at a terminal: ask.
        const prompt = list.length === 0 ? terminalPrompt() : undefined;
        if (prompt) list.push(await prompt(`Backup password of ${deviceUdid}: `));
        return list;
      };
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
      case 'backup': {
        noMore();
        const abort = new AbortController();
        // Ctrl-C: stop cleanly (the device is told, the lock released, the latest backup untouched).
        // `on`, not `once`: signal-exit (loaded by appium-ios-device) re-sends SIGINT when its own
        // listener is the last one left, which would kill the process mid-cancel.
        const onSigint = (): void => abort.abort();
        process.on('SIGINT', onSigint);
        try {
          return await backupCommand(ctx, {
            udid,
            via,
            dest: flags.get('dest'),
            full: flags.has('full'),
            makeRoom: flags.has('make-room'),
            json,
            live: process.stderr.isTTY === true,
            signal: abort.signal,
          });
        } finally {
          process.off('SIGINT', onSigint);
        }
      }
      case 'snapshots':
        noMore();
        return await snapshotsCommand(ctx, await storeArgs());
      case 'pin':
      case 'unpin': {
        const [snapshot, ...extra] = rest;
        if (snapshot === undefined || extra.length > 0) {
          throw new UsageError(`usage: mooring ${command} SNAPSHOT [--udid U] [--dest DIR]`);
        }
        return await pinCommand(ctx, await storeArgs(), snapshot, command === 'pin');
      }
      case 'prune':
        noMore();
        return await pruneCommand(ctx, await storeArgs(), flags, flags.has('dry-run'));
      case 'verify':
        noMore();
        return await verifyCommand(
          ctx,
          await storeArgs(),
          flags.get('snapshot'),
          !flags.has('no-hash'),
        );
      case 'files':
      case 'extract': {
        if (rest.length > 1) throw new UsageError(`unexpected argument "${rest[1]}"`);
        const q = {
          snapshot: flags.get('snapshot'),
          domain: flags.get('domain'),
          pattern: rest[0],
          passwordsFor, // H8b
        };
        if (command === 'files') return await filesCommand(ctx, await storeArgs(), q);
        const to = flags.get('to');
        if (to === undefined) throw new UsageError('extract needs --to DIR (where the files go)');
        return await extractCommand(ctx, await storeArgs(), q, to);
      }
      case 'diff': {
        const [from, to, ...extra] = rest;
        if (from === undefined || to === undefined || extra.length > 0) {
          throw new UsageError('usage: mooring diff SNAPSHOT1 SNAPSHOT2 [--udid U] [--dest DIR]');
        }
        return await diffCommand(ctx, await storeArgs(), from, to, passwordsFor); // H8b
      }
      case 'encryption': {
        // H8b
        const [sub, ...extra] = rest;
        if (sub === undefined || extra.length > 0) throw new UsageError(ENCRYPTION_USAGE);
        const prompt = terminalPrompt();
        return await encryptionCommand(ctx, {
          sub,
          ...(udid === undefined ? {} : { udid }),
          via,
          ...(flags.has('dest') ? { dest: flags.get('dest')! } : {}),
          ...(passwordFile === undefined ? {} : { passwordFile }),
          ...(flags.has('old-password-file')
            ? { oldPasswordFile: flags.get('old-password-file')! }
            : {}),
          generate: flags.has('generate'),
          noStore: flags.has('no-store'),
          ...(flags.has('out') ? { out: flags.get('out')! } : {}),
          json,
          ...(prompt ? { prompt } : {}),
        });
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
    if (e instanceof NoAgentError || (e instanceof AgentApiError && e.status === 0)) {
      return EXIT_NO_AGENT;
    }
    return 1;
  } finally {
    await sim?.stop();
  }
}
