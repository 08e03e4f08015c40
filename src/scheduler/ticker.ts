/**
 * The tick source: node-cron calls us once a minute in the user's zone; we call the agent's
 * async callback, never two at a time. Between ticks, `wakeAt` arms one timer for the earliest
 * moment a decision said to look again (Decision.nextCheckAt), so a backup due at 01:00:20 does
 * not wait for 01:01. Idle means a minute timer plus at most that one wakeup: no polling.
 *
 * node-cron neither awaits nor cancels a running job on stop and silently drops slots it missed
 * (sleep, a blocked loop); so overlap, stopping and catch-up are ours:
 * - a cron tick arriving while the callback runs is skipped (counted): the next tick follows;
 * - a wakeup, poke or catch-up arriving while it runs is deferred to run right after, because
 *   it was asked for a reason;
 * - missed slots (the computer slept) trigger one catch-up run, and every run is told whether
 *   the process slept since the previous sign of life (`TickInfo.slept`).
 */
import { createTask, type Logger, type ScheduledTask } from 'node-cron';
import { assertTimeZone, MINUTE_MS } from './time';
import { detectSleep } from './sleep';

export type TickReason = 'tick' | 'wakeup' | 'poke' | 'catch-up';

export interface TickInfo {
  reason: TickReason;
  /** When this run started (the wall clock, not the cron slot). */
  at: Date;
  /** Aborted when the ticker stops: long callbacks should give up. */
  signal: AbortSignal;
  /** Set when the process slept (or was frozen, or the clock jumped forward) since the previous
   *  sign of life: the gap, for "computer asleep during the window". */
  slept?: { from: Date; to: Date };
}

export interface TickerOptions {
  /** IANA zone the cron expression is read in. */
  timeZone: string;
  onTick: (info: TickInfo) => Promise<void> | void;
  /** Errors thrown by onTick (the ticker keeps going). */
  onError?: (err: unknown) => void;
  /** Aborting it stops the ticker (like calling stop()). */
  signal?: AbortSignal;
  /** Default '* * * * *' (every minute). */
  cronExpression?: string;
  /** Interval the expression fires at, for sleep detection. Default one minute. */
  expectedIntervalMs?: number;
  /** Floor for wakeup delays, so a wakeup asked for "now" over and over cannot spin. Default 1 s. */
  minWakeDelayMs?: number;
  /** Do not keep the process alive for the ticker's timers. */
  unref?: boolean;
}

export interface TickerStats {
  runs: number;
  /** Cron ticks dropped because the callback was still running. */
  skippedTicks: number;
  /** Wakeups/pokes/catch-ups that arrived during a run and ran after it. */
  deferred: number;
  /** Cron slots node-cron reported missed (sleep, blocked event loop). */
  missedSlots: number;
  errors: number;
  running: boolean;
  nextWakeAt: Date | null;
  lastRunAt: Date | null;
}

/** setTimeout's limit; a wakeup further out is left to the minute ticks. */
const MAX_TIMER_MS = 2 ** 31 - 1;

const quietLogger: Logger = {
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  debug: () => undefined,
};

export class Ticker {
  private readonly opts: TickerOptions;
  private readonly expectedIntervalMs: number;
  private readonly minWakeDelayMs: number;
  private readonly controller = new AbortController();
  private task: ScheduledTask | undefined;
  private current: Promise<void> | undefined;
  /** A run asked for while one was in progress: its reason and who waits for it. */
  private pending: { reason: TickReason; waiters: (() => void)[] } | undefined;
  private wakeTimer: NodeJS.Timeout | undefined;
  private catchUp: NodeJS.Immediate | undefined;
  private wakeTime: number | undefined;
  private lastAliveAt: Date | undefined;
  private sleptGap: { from: Date; to: Date } | undefined;
  private started = false;
  private stopped = false;
  private stopping: Promise<void> | undefined;
  private readonly counters = { runs: 0, skippedTicks: 0, deferred: 0, missedSlots: 0, errors: 0 };
  private lastRunAt: Date | undefined;
  private readonly onAbort = (): void => void this.stop();

  constructor(opts: TickerOptions) {
    assertTimeZone(opts.timeZone);
    this.opts = opts;
    this.expectedIntervalMs = opts.expectedIntervalMs ?? MINUTE_MS;
    this.minWakeDelayMs = opts.minWakeDelayMs ?? 1000;
  }

  /** Starts the cron ticks. The first run comes at the next slot (use poke() for one now). */
  start(): void {
    if (this.started || this.stopped) return;
    this.started = true;
    if (this.opts.signal?.aborted === true) {
      void this.stop();
      return;
    }
    this.opts.signal?.addEventListener('abort', this.onAbort, { once: true });
    this.lastAliveAt = new Date();
    this.task = createTask(this.opts.cronExpression ?? '* * * * *', () => this.onCron(), {
      timezone: this.opts.timeZone,
      logger: quietLogger,
      suppressMissedWarning: true,
      // A tick a few seconds late (busy machine) still runs as a tick, not a missed slot.
      missedExecutionTolerance: 30_000,
      unref: this.opts.unref === true,
    });
    this.task.on('execution:missed', () => this.onMissed());
    void this.task.start();
  }

  /**
   * Asks for a run at `at` (typically the earliest Decision.nextCheckAt). The earliest pending
   * wakeup wins; null/undefined is ignored. Past times run after minWakeDelayMs.
   */
  wakeAt(at: Date | null | undefined): void {
    if (at === null || at === undefined || this.stopped) return;
    const t = at.getTime();
    if (!Number.isFinite(t)) return;
    if (this.wakeTimer !== undefined && this.wakeTime !== undefined && this.wakeTime <= t) return;
    const delay = Math.max(this.minWakeDelayMs, t - Date.now());
    if (delay > MAX_TIMER_MS) return;
    this.clearWakeup();
    this.wakeTime = t;
    this.wakeTimer = setTimeout(() => {
      this.wakeTimer = undefined;
      this.wakeTime = undefined;
      void this.request('wakeup');
    }, delay);
    if (this.opts.unref === true) this.wakeTimer.unref();
  }

  clearWakeup(): void {
    if (this.wakeTimer !== undefined) clearTimeout(this.wakeTimer);
    this.wakeTimer = undefined;
    this.wakeTime = undefined;
  }

  /** Runs the callback now (after the current run, if one is in progress); resolves when the
   *  run that serves this request has finished. Use on events: device attached, unlock, job done. */
  poke(): Promise<void> {
    return this.request('poke');
  }

  get stats(): TickerStats {
    return {
      ...this.counters,
      running: this.current !== undefined,
      nextWakeAt: this.wakeTime === undefined ? null : new Date(this.wakeTime),
      lastRunAt: this.lastRunAt ?? null,
    };
  }

  /** Stops ticks and wakeups, aborts the signal given to the callback, and waits for a running
   *  callback to finish. Idempotent. */
  stop(): Promise<void> {
    if (this.stopping !== undefined) return this.stopping;
    this.stopped = true;
    this.opts.signal?.removeEventListener('abort', this.onAbort);
    this.clearWakeup();
    if (this.catchUp !== undefined) clearImmediate(this.catchUp);
    this.catchUp = undefined;
    this.controller.abort(new Error('ticker stopped'));
    const task = this.task;
    this.task = undefined;
    this.stopping = (async () => {
      if (task !== undefined) await task.destroy();
      await this.current?.catch(() => undefined);
      this.flushPending();
    })();
    return this.stopping;
  }

  private observeAlive(now: Date): void {
    const s = detectSleep(this.lastAliveAt, now, this.expectedIntervalMs);
    this.lastAliveAt = now;
    if (s.slept) {
      // Several gaps before the next run (unlikely) merge into one.
      this.sleptGap = { from: this.sleptGap?.from ?? s.from, to: s.to };
    }
  }

  private onCron(): void {
    if (this.stopped) return;
    this.observeAlive(new Date());
    if (this.current !== undefined) {
      this.counters.skippedTicks++;
      return;
    }
    void this.drive('tick');
  }

  private onMissed(): void {
    if (this.stopped) return;
    this.counters.missedSlots++;
    this.observeAlive(new Date());
    // node-cron reports every missed slot of a long sleep in one go: coalesce them into one
    // catch-up, which a tick starting in the same beat makes unnecessary.
    if (this.catchUp !== undefined) return;
    const ranBefore = this.counters.runs;
    this.catchUp = setImmediate(() => {
      this.catchUp = undefined;
      if (this.counters.runs === ranBefore && this.current === undefined) {
        void this.request('catch-up');
      }
    });
  }

  private request(reason: TickReason): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (this.current === undefined) return this.drive(reason);
    return new Promise<void>((resolve) => {
      if (this.pending === undefined) {
        this.pending = { reason, waiters: [] };
        this.counters.deferred++;
      }
      this.pending.waiters.push(resolve);
    });
  }

  private drive(first: TickReason): Promise<void> {
    const run = (async () => {
      let reason: TickReason = first;
      let waiters: (() => void)[] = [];
      for (;;) {
        await this.invoke(reason);
        for (const w of waiters) w();
        const next = this.pending;
        if (next === undefined || this.stopped) break;
        this.pending = undefined;
        reason = next.reason;
        waiters = next.waiters;
      }
    })();
    this.current = run;
    const done = run.finally(() => {
      if (this.current === run) this.current = undefined;
      if (this.stopped) {
        this.flushPending();
        return;
      }
      // A request that arrived after the loop's last look at `pending` but before this point
      // found a run still in progress and queued itself: serve it now, not at the next tick.
      const late = this.pending;
      if (late !== undefined && this.current === undefined) {
        this.pending = undefined;
        void this.drive(late.reason).then(() => {
          for (const w of late.waiters) w();
        });
      }
    });
    return done;
  }

  private async invoke(reason: TickReason): Promise<void> {
    const at = new Date();
    this.observeAlive(at);
    const slept = this.sleptGap;
    this.sleptGap = undefined;
    this.counters.runs++;
    this.lastRunAt = at;
    const info: TickInfo = { reason, at, signal: this.controller.signal };
    if (slept !== undefined) info.slept = slept;
    try {
      await this.opts.onTick(info);
    } catch (err) {
      this.counters.errors++;
      try {
        this.opts.onError?.(err);
      } catch {
        // an error reporter that throws must not stop the schedule
      }
    }
  }

  private flushPending(): void {
    const p = this.pending;
    this.pending = undefined;
    for (const w of p?.waiters ?? []) w();
  }
}
