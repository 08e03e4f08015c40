/**
 * The agent's rounds of decisions: on every tick (and every poke) each known device gets the pure
 * scheduler's answer, which either starts a backup or becomes the device's status line, recorded
 * in the history only when its reason changes. The same round warns once a day about devices
 * without a recent backup or with a pairing about to expire, notes windows missed while the
 * computer slept, and sets the one wakeup at the earliest moment an answer can change.
 */
import {
  computerAsleep,
  noRecentBackup,
  pairingExpiring,
  pairingInvalid,
  type Notice,
} from '../history';
import {
  decide,
  isDue,
  localDayBounds,
  missedWindow,
  resolvePolicy,
  type Decision,
  type SchedulePolicy,
  type TickInfo,
} from '../scheduler';
import { errText, type AgentContext } from './agent-context';
import { readDeviceOverrides, type GlobalSettings } from './config';
import type { BackupRunner } from './backup-runner';
import type { DeviceContact } from './device-contact';
import { readDeviceFolder } from './folder-backups';
import { dayKey } from './device-runtime';
import type { PairingView } from './device-view';
import { skipView } from './skip-notice';

const DAY_MS = 24 * 60 * 60 * 1000;
/** How long a round of decisions waits for the backup folder's records (see readFolders). */
export const FOLDER_READ_WAIT_MS = 2000;

/** Skips whose message names a time that settings can move. */
const TIMED_SKIPS = new Set([
  'NOT_DUE',
  'OUTSIDE_WINDOW',
  'RETRY_LIMIT_REACHED',
  'WAITING_FOR_UNLOCK',
]);

export class Scheduling {
  constructor(
    private readonly ctx: AgentContext,
    private readonly runner: Pick<BackupRunner, 'start'>,
    private readonly contact: Pick<DeviceContact, 'maybeReprobe'>,
  ) {}

  async onTick(info: TickInfo): Promise<void> {
    if (this.ctx.stopping) return;
    await this.readFolders();
    if (this.ctx.stopping) return;
    const now = this.ctx.now();
    if (info.slept) this.noteSleep(info.slept.from.getTime(), info.slept.to.getTime(), now);
    this.decideAll(now);
  }

  /**
   * What the backup folder holds of each device, read before deciding (see folder-backups). A
   * folder that does not answer within FOLDER_READ_WAIT_MS (a network mount that hangs) does not
   * hold the round up: it decides with what was read before, and the read lands later.
   */
  private async readFolders(): Promise<void> {
    const { ctx } = this;
    const reads = ctx.db.listDevices().map(async (d) => {
      if (await readDeviceFolder(ctx, d.udid)) ctx.emitDevice(d.udid);
    });
    let timer: NodeJS.Timeout | undefined;
    const waited = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, FOLDER_READ_WAIT_MS);
    });
    try {
      await Promise.race([Promise.all(reads), waited]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** A setting changed: apply the limit, let timed skips be recorded again, decide anew. */
  afterSettingsChange(
    udid: string | undefined,
    before: { paused: boolean; staleAfterMs: number },
  ): void {
    const { ctx } = this;
    const g = ctx.settings();
    if (g.concurrency !== ctx.coordinator.concurrency)
      ctx.coordinator.setConcurrency(g.concurrency);
    // A new interval or window changes when a skip ends: let it be recorded again with its time.
    for (const [u, rt] of ctx.runtimes) {
      if ((udid === undefined || u === udid) && TIMED_SKIPS.has(rt.lastReason ?? '')) {
        rt.lastReason = undefined;
      }
    }
    if ((g.overrides.paused === true) !== before.paused || g.staleAfterMs !== before.staleAfterMs) {
      ctx.emitAgent();
    }
    ctx.redecide();
  }

  private decideAll(now: number): void {
    const { ctx } = this;
    const g = ctx.settings();
    if (g.concurrency !== ctx.coordinator.concurrency)
      ctx.coordinator.setConcurrency(g.concurrency);
    let earliest: number | undefined;
    for (const udid of ctx.view.knownUdids()) {
      if (ctx.stopping) return;
      if (ctx.db.getDevice(udid) === undefined) continue; // never contacted: not ours yet
      let at: number | null;
      try {
        at = this.decideOne(udid, now, g);
      } catch (e) {
        // One device's trouble (a damaged setting, a database error) must not stop the others.
        ctx.log(`deciding for ${udid} failed: ${errText(e)}`);
        continue;
      }
      if (at !== null && (earliest === undefined || at < earliest)) earliest = at;
    }
    if (earliest !== undefined) ctx.ticker.wakeAt(new Date(earliest));
  }

  /** One device's decision (and its staleness and pairing checks); returns when to look again. */
  private decideOne(udid: string, now: number, g: GlobalSettings): number | null {
    const [decisionAt, staleAt] = this.decideDevice(udid, now, g);
    if (decisionAt === null) return staleAt;
    return staleAt === null ? decisionAt : Math.min(decisionAt, staleAt);
  }

  private decideDevice(
    udid: string,
    now: number,
    g: GlobalSettings,
  ): [decisionAt: number | null, staleAt: number | null] {
    const { ctx } = this;
    const rt = ctx.runtime(udid);
    const policy = resolvePolicy(g.overrides, readDeviceOverrides(ctx.db, udid));
    const staleAt = this.checkStale(udid, now, g, policy);
    const pairing = ctx.view.pairingOf(udid, now);
    this.checkPairingExpiry(udid, now, pairing);
    if (rt.running) {
      ctx.setNext(udid, { code: 'RUNNING', message: 'A backup is running', at: null });
      return [null, staleAt];
    }
    const presence = ctx.registry.get(udid);
    if (presence?.reachable === true && rt.probing) {
      // Whether backups ask for the passcode decides when to start: wait for the first contact.
      ctx.setNext(udid, { code: 'CONTACTING', message: "Reading the device's details", at: null });
      return [null, staleAt];
    }
    if (presence?.reachable === true && pairing.health === 'invalid') {
      this.contact.maybeReprobe(udid, now);
      const n = pairingInvalid({ cause: ctx.view.isPaired(udid) ? 'refused' : 'missing' });
      this.recordSkip(udid, { code: n.reasonCode, notice: n, message: n.message, at: null });
      return [null, staleAt];
    }
    const d: Decision = decide(
      new Date(now),
      ctx.timeZone,
      policy,
      ctx.stateOf(udid, now, policy),
      ctx.coordinator.load(),
    );
    if (d.action === 'start') {
      const r = this.runner.start(udid, d.trigger, d.transport);
      if ('code' in r) ctx.log(`could not start the backup of ${udid}: ${r.message}`);
      return [null, staleAt];
    }
    const view = skipView(d, policy, now);
    this.recordSkip(udid, view);
    return [d.nextCheckAt === null ? null : d.nextCheckAt.getTime(), staleAt];
  }

  private recordSkip(
    udid: string,
    view: { code: string; notice: Notice | null; message: string; at: number | null },
  ): void {
    const rt = this.ctx.runtime(udid);
    if (view.notice !== null && rt.lastReason !== view.code) {
      this.ctx.record({ ...view.notice, udid });
    }
    rt.lastReason = view.code;
    this.ctx.setNext(udid, { code: view.code, message: view.message, at: view.at });
  }

  /**
   * NO_RECENT_BACKUP once per local day while the last success (or the first sighting) is older
   * than stale-after; the days in it make it escalate. Returns when to look again.
   */
  private checkStale(
    udid: string,
    now: number,
    g: GlobalSettings,
    policy: SchedulePolicy,
  ): number | null {
    const { ctx } = this;
    if (!policy.enabled) return null;
    const row = ctx.db.getDevice(udid);
    if (!row) return null;
    const last = ctx.view.lastSuccess(udid);
    const since = last ?? row.firstSeen;
    if (now - since < g.staleAfterMs) return since + g.staleAfterMs;
    const rt = ctx.runtime(udid);
    const today = dayKey(now, ctx.timeZone);
    if (rt.staleDay !== today) {
      rt.staleDay = today;
      ctx.record({
        ...noRecentBackup({
          days: (now - since) / DAY_MS,
          ...(last === null ? {} : { lastSuccessAt: last }),
          now,
        }),
        udid,
      });
    }
    return localDayBounds(new Date(now), ctx.timeZone).end.getTime();
  }

  /** PAIRING_EXPIRING at most once per local day while the pairing is close to its end. */
  private checkPairingExpiry(udid: string, now: number, pairing: PairingView): void {
    const { ctx } = this;
    if (pairing.health !== 'expiring' || pairing.expiresAt === null) return;
    const rt = ctx.runtime(udid);
    const today = dayKey(now, ctx.timeZone);
    const lastContact = ctx.db.getDevice(udid)?.lastContact;
    if (rt.pairingWarnDay === today || lastContact === null || lastContact === undefined) return;
    rt.pairingWarnDay = today;
    ctx.record({
      ...pairingExpiring({ lastContactAt: lastContact, expiresAt: pairing.expiresAt, now }),
      udid,
    });
  }

  /** The computer slept from `from` to `to`: a notice for each device that was due in a window it missed. */
  private noteSleep(from: number, to: number, now: number): void {
    const { ctx } = this;
    for (const row of ctx.db.listDevices()) {
      const policy = ctx.policyOf(row.udid);
      if (!policy.enabled || policy.paused) continue;
      const missed = missedWindow(new Date(from), new Date(to), ctx.timeZone, policy.window);
      const last = ctx.stateOf(row.udid, now, policy).lastSuccessAt;
      if (missed.windows.some((w) => isDue(w.open, ctx.timeZone, policy, last))) {
        ctx.record({ ...computerAsleep({ from, to, now }), udid: row.udid });
      }
    }
  }
}
