/**
 * Shared set-up for the Agent tests: a temporary folder with a simulator behind its own usbmuxd
 * and a data folder holding its pair record in Mooring's own store, and waiting for agent events
 * with a safety timeout (the timeout only turns a missing event into a failure; it is not what a
 * test measures).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Agent, type AgentOptions } from '../../src/agent/agent';
import type { AgentEvent } from '../../src/agent/types';
import type { AttemptRow, NotificationRow } from '../../src/history';
import { startSim, type RunningSim, type SimOptions } from '../../src/sim/index';
import { muxFor, pairAndStore } from '../discovery/sim-helpers';

/** Pairs over the simulator's usbmuxd; the record goes to `<dataDir>/pair-records` as the agent reads it. */
export async function pairInto(sim: RunningSim, dataDir: string): Promise<void> {
  await pairAndStore(sim, path.join(dataDir, 'pair-records'));
}

export interface SimFixture {
  tmp: string;
  /** `<tmp>/data`: the agent's data folder. */
  dataDir: string;
  sim: RunningSim;
  udid: string;
  /**
   * Options of an agent that reaches the simulator through its usbmuxd, with no Bonjour, no
   * system pair records and the UTC time zone; `extra` overrides any of them.
   */
  agentOptions(extra?: Partial<AgentOptions>): AgentOptions;
  /**
   * Stops the simulator and removes the folder (stop the agent first). Throws if the agent logged
   * that a backup left its own thread or that the backup's session lacked a value the agent reads
   * (CONTACT_READS): with the default `log`, every agent test checks both.
   */
  close(): Promise<void>;
}

/**
 * A new temporary folder with a simulator in `<tmp>/sim` behind its own usbmuxd socket and,
 * unless `pair` is false, paired into `<tmp>/data`.
 */
export async function simFixture(
  prefix: string,
  simOptions: Omit<SimOptions, 'stateDir' | 'usbmuxd'>,
  { pair = true }: { pair?: boolean } = {},
): Promise<SimFixture> {
  const tmp = await mkdtemp(path.join(os.tmpdir(), prefix));
  let sim: RunningSim | undefined;
  const wrong: string[] = [];
  const log = (line: string): void => {
    if (/runs in-process|not among the reads asked for|at its backup's session failed/.test(line))
      wrong.push(line);
  };
  const close = async (): Promise<void> => {
    await sim?.stop();
    await rm(tmp, { recursive: true, force: true });
    assert.deepEqual(wrong, [], 'the agent logged a backup off its thread or a value not read');
  };
  try {
    const dataDir = path.join(tmp, 'data');
    sim = await startSim({
      stateDir: path.join(tmp, 'sim'),
      usbmuxd: `UNIX:${path.join(tmp, 'usbmuxd.sock')}`,
      ...simOptions,
    });
    if (pair) await pairInto(sim, dataDir);
    const running = sim;
    return {
      tmp,
      dataDir,
      sim,
      udid: sim.udid,
      agentOptions: (extra = {}) => ({
        dataDir,
        usbmuxd: muxFor(running),
        mdns: null,
        systemPairRecordDir: null,
        timeZone: 'UTC',
        log,
        ...extra,
      }),
      close,
    };
  } catch (e) {
    await close();
    throw e;
  }
}

/** `options` whose log also keeps each line in `lines` (the fixture's own log checks still run). */
export function keepingLog(options: AgentOptions, lines: string[]): AgentOptions {
  return {
    ...options,
    log: (line: string) => {
      lines.push(line);
      options.log?.(line);
    },
  };
}

export function waitForEvent<T>(
  agent: Agent,
  what: string,
  match: (e: AgentEvent) => T | undefined,
  timeoutMs = 60_000,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`timed out waiting for ${what}`));
    }, timeoutMs);
    const off = agent.subscribe((e) => {
      const v = match(e);
      if (v === undefined) return;
      clearTimeout(timer);
      off();
      resolve(v);
    });
  });
}

/** The next attempt event for `udid` that `pred` accepts. */
export function nextAttempt(
  agent: Agent,
  udid: string,
  pred: (a: AttemptRow) => boolean,
  what = 'an attempt',
  timeoutMs?: number,
): Promise<AttemptRow> {
  return waitForEvent(
    agent,
    what,
    (e) =>
      e.type === 'attempt' && e.attempt.udid === udid && pred(e.attempt) ? e.attempt : undefined,
    timeoutMs,
  );
}

/**
 * "Back up now" on `udid`, waited for to its end, which must be a success with a snapshot, and for
 * the copy the agent then makes for the next backup (D42), so that the test may open the store.
 */
export async function backUpNow(
  agent: Agent,
  udid: string,
): Promise<AttemptRow & { snapshotId: string }> {
  const done = nextAttempt(agent, udid, (a) => a.outcome !== 'running', 'a backup to end');
  const r = await agent.backupNow(udid);
  assert.equal(r.started, true, r.message);
  const a = await done;
  assert.equal(a.outcome, 'success', a.message ?? '');
  assert.ok(a.snapshotId, 'a successful backup names its snapshot');
  await agent.nextBackupPrepared(udid);
  return { ...a, snapshotId: a.snapshotId };
}

export function nextNotification(
  agent: Agent,
  udid: string,
  reasonCode: string,
  timeoutMs?: number,
): Promise<NotificationRow> {
  return waitForEvent(
    agent,
    `a ${reasonCode} notification`,
    (e) =>
      e.type === 'notification' &&
      e.notification.udid === udid &&
      e.notification.reasonCode === reasonCode
        ? e.notification
        : undefined,
    timeoutMs,
  );
}

/** Every notification of the device, oldest first. */
export function notificationsOf(agent: Agent, udid: string): NotificationRow[] {
  return agent.history({ udid, limit: 500 }).items.reverse();
}

export function attemptsOf(agent: Agent, udid: string): AttemptRow[] {
  return agent.attempts({ udid, limit: 500 }).items.reverse();
}

/** Resolves once the agent sees the device over USB (at once if it already does). */
export async function untilOnUsb(agent: Agent, udid: string): Promise<void> {
  // Checked and subscribed in the same turn: no event can slip in between.
  if (agent.device(udid)?.reachable.usb === true) return;
  await waitForEvent(agent, 'the device on USB', (e) =>
    e.type === 'device' && e.device.udid === udid && e.device.reachable.usb ? true : undefined,
  );
}

/** Restarts the simulator; resolves once the agent has seen the device leave USB and come back. */
export async function rebootedOnUsb(agent: Agent, sim: RunningSim, udid: string): Promise<void> {
  const gone = waitForEvent(agent, 'the device off USB', (e) =>
    e.type === 'device' && e.device.udid === udid && !e.device.reachable.usb ? true : undefined,
  );
  await sim.ctl('reboot');
  await gone;
  await untilOnUsb(agent, udid);
}

/**
 * An agent on `options`, started with automatic backups off (only the backups a test asks for
 * run), once `udid` is on USB. Stopped again if it gets no further.
 */
export async function startedOnUsb(options: AgentOptions, udid: string): Promise<Agent> {
  const agent = await Agent.open(options);
  try {
    agent.setConfig({ enabled: 'false' });
    await agent.start();
    await untilOnUsb(agent, udid);
    return agent;
  } catch (e) {
    await agent.stop();
    throw e;
  }
}
