/**
 * `mooring agent`: the long-running agent (discovery, schedule, backups, history) plus its HTTP
 * API on loopback. Prints one line on stdout, `Mooring agent: URL/login?code=…` (a one-time
 * browser login link: the token itself never goes in a URL or on stdout, which service managers
 * log; programs read it from DATA-DIR/agent.json), logs on stderr, and stops cleanly on
 * SIGTERM/SIGINT: running backups are cancelled and recorded interrupted. `--listen` beyond
 * loopback needs `--lan-password-file`.
 */
import net from 'node:net';
import { Agent } from '../../agent/agent';
import type { MdnsSocketOptions } from '../../discovery/bonjour-browser';
import { findPairRecord } from '../../lockdown';
import { UsbmuxdClient } from '../../transport/usbmuxd-client';
import { acquireAgentLock, type AgentLock } from '../../api/agent-file';
import { isLoopbackHost } from '../../api/http-guard';
import { readLanPasswordFile } from '../../api/lan-password';
import { DEFAULT_API_LISTEN, serveAgent, type ServedAgent } from '../../api/serve-agent';
import { UsageError } from '../../util/cli-flags';
import { makeContext, usbmuxd as usbmuxdOf } from '../context';
import { startEmbeddedSim, type EmbeddedSim } from '../embedded-sim';
import { pairRecordStoreDir } from '../../util/paths';
import { pairCommand } from './pair';

export const DEFAULT_LISTEN = `${DEFAULT_API_LISTEN.host}:${DEFAULT_API_LISTEN.port}`;
/** mDNS on the loopback interface only: the embedded simulator must never reach a real network. */
const LOOPBACK_MDNS: MdnsSocketOptions = { interface: '127.0.0.1', bind: '0.0.0.0' };

export interface AgentCommandOptions {
  dataDir: string;
  listen: string;
  backupDir?: string;
  /** ADDR, 'off', or undefined for the platform's usbmuxd. */
  usbmuxd?: string;
  /** ADDR, 'off', or undefined for every interface. */
  mdnsInterface?: string;
  wifiPort?: string;
  /** A file holding the password that allows a non-loopback --listen. */
  lanPasswordFile?: string;
  /** H8c: keep no backup passwords (every encryption action then needs them typed in). */
  noStorePasswords?: boolean;
  sim: boolean;
  out: (line: string) => void;
  err: (line: string) => void;
  /** Resolves when the agent should stop; default: SIGTERM or SIGINT. */
  stopSignal?: Promise<void>;
}

/** `HOST:PORT` or `[v6]:PORT`; port 0 = any free port. */
export function parseListen(value: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(value);
  const host = m?.[1] ?? m?.[2];
  const port = Number(m?.[3]);
  if (!m || host === undefined || port > 65535 || (m[1] !== undefined && !net.isIPv6(host))) {
    throw new UsageError(`--listen: expected HOST:PORT such as 127.0.0.1:8080, got "${value}"`);
  }
  return { host, port };
}

function mdnsOptions(flag: string | undefined): MdnsSocketOptions | null {
  if (flag === 'off') return null;
  if (flag === undefined) return {};
  if (net.isIP(flag) === 0) {
    throw new UsageError(`--mdns-interface: expected an interface address or off, got "${flag}"`);
  }
  return net.isIPv4(flag) ? { interface: flag, bind: '0.0.0.0' } : { interface: flag };
}

function wifiPortOption(flag: string | undefined): 'lockdown' | 'advertised' | undefined {
  if (flag === undefined || flag === 'lockdown' || flag === 'advertised') return flag;
  throw new UsageError(`--wifi-port: expected lockdown or advertised, got "${flag}"`);
}

function signalled(): { promise: Promise<void>; dispose(): void } {
  let fire!: () => void;
  const promise = new Promise<void>((r) => (fire = r));
  // `on`, not `once`: a second Ctrl-C during the stop must not fall through to the default
  // handler (signal-exit, loaded by a dependency, re-sends the signal when it is alone).
  const onSignal = (): void => fire();
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  return {
    promise,
    dispose: () => {
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
    },
  };
}

/** Starts the simulator with Bonjour on loopback and pairs it, as a person tapping Trust would. */
async function embeddedSim(o: AgentCommandOptions): Promise<EmbeddedSim> {
  const sim = await startEmbeddedSim(o.dataDir, { bonjour: true });
  o.err(`Using a simulated iPhone (${sim.udid}), on USB and on Wi-Fi via 127.0.0.1.`);
  const ctx = makeContext(o.dataDir, sim.usbmuxdAddress, o.err, o.err);
  const known = await findPairRecord(sim.udid, {
    usbmuxd: usbmuxdOf(ctx),
    storeDir: pairRecordStoreDir(o.dataDir),
  });
  if (!known) await pairCommand(ctx, sim.udid);
  return sim;
}

/** The LAN password when --listen asks for a non-loopback address (read before anything starts). */
async function lanPasswordFor(
  listen: { host: string },
  file: string | undefined,
): Promise<string | undefined> {
  if (isLoopbackHost(listen.host)) {
    if (file !== undefined) {
      throw new UsageError(
        '--lan-password-file: only with --listen on a LAN address such as 0.0.0.0:47110',
      );
    }
    return undefined;
  }
  if (file === undefined) {
    throw new UsageError(
      `--listen ${listen.host}: other computers could reach the agent there. Opt in with --lan-password-file FILE (a password of 12+ characters, file mode 600): browsers then sign in with it and API clients still need the token`,
    );
  }
  return readLanPasswordFile(file);
}

export async function agentCommand(o: AgentCommandOptions): Promise<number> {
  const listen = parseListen(o.listen);
  const lanPassword = await lanPasswordFor(listen, o.lanPasswordFile);
  let mdns = mdnsOptions(o.mdnsInterface);
  let wifiPort = wifiPortOption(o.wifiPort);
  let usbmuxdFlag = o.usbmuxd;
  const signals = o.stopSignal ? undefined : signalled();
  const stopRequested = o.stopSignal ?? signals!.promise;
  let lock: AgentLock | undefined;
  let sim: EmbeddedSim | undefined;
  let agent: Agent | undefined;
  let served: ServedAgent | undefined;
  try {
    lock = await acquireAgentLock(o.dataDir);
    if (o.sim) {
      sim = await embeddedSim(o);
      usbmuxdFlag = sim.usbmuxdAddress;
      mdns = LOOPBACK_MDNS;
      // The simulator's Wi-Fi lockdownd listens on a free port, which only its advert names.
      wifiPort = 'advertised';
    }
    const usbmuxd =
      usbmuxdFlag === 'off'
        ? null
        : new UsbmuxdClient({
            address: makeContext(o.dataDir, usbmuxdFlag, o.out, o.err).usbmuxdAddress,
          });
    agent = await Agent.open({
      dataDir: o.dataDir,
      ...(o.backupDir === undefined ? {} : { backupDir: o.backupDir }),
      usbmuxd,
      mdns,
      ...(wifiPort === undefined ? {} : { wifiPort }),
      ...(o.noStorePasswords ? { secrets: null } : {}), // H8c
      log: o.err,
    });
    await agent.start();
    served = await serveAgent(agent, {
      dataDir: o.dataDir,
      listen,
      log: o.err,
      ...(lanPassword === undefined ? {} : { lanPassword }),
    });
    o.out(`Mooring agent: ${served.loginUrl()}`);
    if (lanPassword !== undefined) {
      o.err(
        `The API also answers other computers on ${listen.host}:${served.port}: browsers sign in with the LAN password at /login; API clients send the token (DATA-DIR/agent.json). It is plain HTTP: use it on a network you trust, or behind a TLS proxy.`,
      );
    }
    await stopRequested;
    o.err('Stopping the agent…');
    return 0;
  } finally {
    await served?.close();
    await agent?.stop();
    await sim?.stop();
    await lock?.release();
    signals?.dispose();
  }
}
