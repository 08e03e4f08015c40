/**
 * The simulator's control socket: a UNIX socket in the state directory taking one JSON request
 * line `{"command": "...", "args": {...}}` and answering one JSON line `{"ok": true, "result": …}`
 * or `{"ok": false, "error": "..."}`. `mooring-sim ctl` and `RunningSim.ctl` both come here.
 */
import { promises as fsp } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { MooringError, isMooringError } from '../util/errors';
import type { SimFaults } from './contracts';
import { EVIL_MODES } from './backup/evil';
import type { SimDevice } from './device';

export const CONTROL_SOCKET_NAME = 'control.sock';
/** A request line longer than this is refused. */
export const MAX_CONTROL_REQUEST_BYTES = 64 * 1024;
/** A reply line longer than this is refused by the client (listings of huge trees). */
export const MAX_CONTROL_REPLY_BYTES = 512 * 1024 * 1024;
/** A request must arrive within this time of connecting. */
export const CONTROL_READ_TIMEOUT_MS = 10_000;
/** Longest the client waits for an answer (wipe or mutate of a big tree takes a while). */
export const CONTROL_REPLY_TIMEOUT_MS = 10 * 60_000;
/** UNIX socket paths are limited to ~108 bytes on Linux. */
export const MAX_SOCKET_PATH_BYTES = 100;

export function controlSocketPath(stateDir: string): string {
  return path.join(stateDir, CONTROL_SOCKET_NAME);
}

/** What the dispatcher needs from the running simulator. */
export interface SimControlTarget {
  device: SimDevice;
  content: {
    listing(): Promise<unknown>;
    mutate(req: { add?: number; modify?: number; delete?: number }): Promise<unknown>;
    wipe(): Promise<void>;
  };
  detach(): boolean;
  attach(): number;
  reboot(): Promise<void>;
  offline(): Promise<void>;
  online(): Promise<void>;
  status(): Record<string, unknown>;
}

export const CTL_COMMANDS = [
  'mutate',
  'listing',
  'wipe',
  'lock',
  'unlock',
  'reboot',
  'detach',
  'attach',
  'offline',
  'online',
  'enter-passcode',
  'revoke-pairing',
  'trust',
  'fault',
  'status',
] as const;

/** Commands that only touch the content store, so they work without a running simulator. */
export const CONTENT_COMMANDS = new Set(['mutate', 'listing', 'wipe']);

const FAULT_NAMES = [
  'dropAfterBytes',
  'delayFirstMessageMs',
  'lowDisk',
  'staleSnapshot',
  'evil',
] as const;
const EVIL_VALUES = EVIL_MODES; // H7h: the list lives beside the modes

function countArg(args: Record<string, unknown>, name: string): number | undefined {
  const v = args[name];
  if (v === undefined) return undefined;
  const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) {
    throw new MooringError(
      'USAGE',
      `mutate --${name} needs a non-negative integer, got ${JSON.stringify(v)}`,
    );
  }
  return n;
}

/** Parses `fault <name> <value>`; 'off' clears a fault. Returns the faults after the change. */
export function applyFault(faults: SimFaults, name: unknown, value: unknown): SimFaults {
  if (typeof name !== 'string' || !(FAULT_NAMES as readonly string[]).includes(name)) {
    throw new MooringError(
      'USAGE',
      `fault: unknown fault ${JSON.stringify(name)} (known: ${FAULT_NAMES.join(', ')})`,
    );
  }
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  const key = name as (typeof FAULT_NAMES)[number];
  if (text === 'off' || text === 'none') {
    delete faults[key];
    return faults;
  }
  switch (key) {
    case 'dropAfterBytes':
    case 'delayFirstMessageMs': {
      if (!/^\d{1,15}$/.test(text))
        throw new MooringError(
          'USAGE',
          `fault ${key}: expected a byte/ms count or off, got ${text}`,
        );
      faults[key] = Number(text);
      break;
    }
    case 'lowDisk':
    case 'staleSnapshot':
      if (!['on', 'true', 'off', 'false'].includes(text)) {
        throw new MooringError('USAGE', `fault ${key}: expected on or off, got ${text}`);
      }
      if (text === 'on' || text === 'true') faults[key] = true;
      else delete faults[key];
      break;
    case 'evil':
      if (!(EVIL_VALUES as readonly string[]).includes(text)) {
        throw new MooringError(
          'USAGE',
          `fault evil: expected one of ${EVIL_VALUES.join(', ')} or off, got ${text}`,
        );
      }
      faults.evil = text as (typeof EVIL_VALUES)[number];
      break;
  }
  return faults;
}

/** Runs one ctl command against the running simulator. */
export async function dispatchControl(
  sim: SimControlTarget,
  command: string,
  args: Record<string, unknown> = {},
): Promise<unknown> {
  const d = sim.device;
  switch (command) {
    case 'mutate':
      return sim.content.mutate({
        add: countArg(args, 'add'),
        modify: countArg(args, 'modify'),
        delete: countArg(args, 'delete'),
      });
    case 'listing':
      return sim.content.listing();
    case 'wipe':
      await sim.content.wipe();
      return { wiped: true };
    case 'lock':
      d.lock();
      return { locked: d.locked };
    case 'unlock':
      d.unlock();
      return { locked: d.locked };
    case 'enter-passcode':
      return { prompts: d.enterPasscode(), locked: d.locked };
    case 'reboot':
      await sim.reboot();
      return { rebooted: true, locked: d.locked };
    case 'detach':
      return { detached: sim.detach() };
    case 'attach':
      return { deviceId: sim.attach() };
    case 'offline':
      await sim.offline();
      return { online: false };
    case 'online':
      await sim.online();
      return { online: true };
    case 'revoke-pairing': {
      const n = await d.pairings.clear();
      d.emit('pairings-changed');
      d.log('pairings-revoked', { count: n });
      return { revoked: n };
    }
    case 'trust': {
      const answer = args.answer;
      if (answer !== 'accept' && answer !== 'deny') {
        throw new MooringError(
          'USAGE',
          `trust: expected accept or deny, got ${JSON.stringify(answer)}`,
        );
      }
      d.answerTrust(answer);
      return { answered: answer };
    }
    case 'fault':
      return { faults: { ...applyFault(d.faults, args.name, args.value) } };
    case 'status':
      return sim.status();
    default:
      throw new MooringError(
        'USAGE',
        `unknown ctl command ${JSON.stringify(command)} (known: ${CTL_COMMANDS.join(', ')})`,
      );
  }
}

export interface ControlServer {
  readonly path: string;
  close(): Promise<void>;
}

/** Serves the control socket. Refuses to start if another simulator answers on it. */
export async function startControlServer(
  socketPath: string,
  handle: (command: string, args: Record<string, unknown>) => Promise<unknown>,
  log: (event: string, fields?: Record<string, unknown>) => void,
): Promise<ControlServer> {
  if (Buffer.byteLength(socketPath) > MAX_SOCKET_PATH_BYTES) {
    throw new MooringError(
      'USAGE',
      `--state path is too long for a UNIX socket (${socketPath}); use a shorter one`,
    );
  }
  if (await socketAnswers(socketPath)) {
    throw new MooringError(
      'USAGE',
      `another mooring-sim is already running with this --state (${socketPath})`,
    );
  }
  await fsp.rm(socketPath, { force: true });
  const sockets = new Set<net.Socket>();
  const server = net.createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => undefined);
    serveControlClient(sock, handle, log);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => {
      server.off('error', reject);
      resolve();
    });
  });
  await fsp.chmod(socketPath, 0o600);
  return {
    path: socketPath,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await fsp.rm(socketPath, { force: true });
    },
  };
}

function serveControlClient(
  sock: net.Socket,
  handle: (command: string, args: Record<string, unknown>) => Promise<unknown>,
  log: (event: string, fields?: Record<string, unknown>) => void,
): void {
  let buf = Buffer.alloc(0);
  const timer = setTimeout(() => sock.destroy(), CONTROL_READ_TIMEOUT_MS);
  sock.once('close', () => clearTimeout(timer));
  const reply = (v: unknown): void => {
    sock.end(JSON.stringify(v) + '\n');
  };
  const onData = (chunk: Buffer): void => {
    buf = Buffer.concat([buf, chunk]);
    const nl = buf.indexOf(0x0a);
    if (nl < 0) {
      if (buf.length > MAX_CONTROL_REQUEST_BYTES) {
        clearTimeout(timer);
        sock.off('data', onData);
        reply({ ok: false, error: 'control request too large' });
      }
      return;
    }
    clearTimeout(timer);
    sock.off('data', onData);
    let command: unknown;
    let args: unknown;
    try {
      const req = JSON.parse(buf.subarray(0, nl).toString('utf8')) as {
        command?: unknown;
        args?: unknown;
      };
      command = req.command;
      args = req.args ?? {};
    } catch {
      reply({ ok: false, error: 'control request is not JSON' });
      return;
    }
    if (
      typeof command !== 'string' ||
      typeof args !== 'object' ||
      args === null ||
      Array.isArray(args)
    ) {
      reply({ ok: false, error: 'control request needs {"command": string, "args"?: object}' });
      return;
    }
    log('ctl', { command, args });
    handle(command, args as Record<string, unknown>).then(
      (result) => reply({ ok: true, result: result ?? null }),
      (e: unknown) => {
        const error = e instanceof Error ? e.message : String(e);
        if (!isMooringError(e, 'USAGE')) log('ctl-failed', { command, error });
        reply({ ok: false, error });
      },
    );
  };
  sock.on('data', onData);
}

async function socketAnswers(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.createConnection(socketPath);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
}

/**
 * Sends one ctl request. Rejects with IO/`detail: 'not-running'` when nothing listens, and with
 * USAGE carrying the simulator's message when the command failed.
 */
export function sendControlRequest(
  socketPath: string,
  command: string,
  args: Record<string, unknown> = {},
  timeoutMs = CONTROL_REPLY_TIMEOUT_MS,
): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const sock = net.createConnection(socketPath);
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const finish = (err: Error | undefined, value?: unknown): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(value);
    };
    const timer = setTimeout(
      () =>
        finish(
          new MooringError(
            'TIMEOUT',
            `the simulator did not answer "${command}" within ${timeoutMs} ms`,
          ),
        ),
      timeoutMs,
    );
    sock.once('connect', () => sock.write(JSON.stringify({ command, args }) + '\n'));
    sock.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_CONTROL_REPLY_BYTES) {
        finish(new MooringError('LIMIT', `ctl reply exceeds ${MAX_CONTROL_REPLY_BYTES} bytes`));
        return;
      }
      chunks.push(c);
    });
    sock.once('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT' || e.code === 'ECONNREFUSED') {
        finish(
          new MooringError(
            'IO',
            `no simulator is running with this state directory (${socketPath})`,
            { detail: 'not-running', cause: e },
          ),
        );
      } else {
        finish(new MooringError('IO', `control socket ${socketPath}: ${e.message}`, { cause: e }));
      }
    });
    sock.once('close', () => {
      const text = Buffer.concat(chunks).toString('utf8').trim();
      let reply: { ok?: unknown; result?: unknown; error?: unknown };
      try {
        reply = JSON.parse(text) as typeof reply;
      } catch {
        finish(
          new MooringError(
            'MALFORMED',
            `the simulator's ctl reply is not JSON: ${text.slice(0, 200)}`,
          ),
        );
        return;
      }
      if (reply.ok === true) finish(undefined, reply.result);
      else
        finish(
          new MooringError(
            'USAGE',
            typeof reply.error === 'string' ? reply.error : 'ctl command failed',
          ),
        );
    });
  });
}
