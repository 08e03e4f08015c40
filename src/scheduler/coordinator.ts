/**
 * Who may run a backup right now: one job per device and at most `concurrency` jobs overall —
 * a tiny semaphore keyed by UDID. decide() already reads the same numbers; this is where they
 * are enforced atomically, so two decisions made from the same snapshot cannot both start.
 *
 * Each job carries an AbortController: cancel(udid) or cancelAll() (shutdown) abort its signal,
 * and the job releases its slot when its work has actually stopped (run() does that for you).
 * No timers, no I/O.
 */

export type BusyCode = 'ALREADY_RUNNING' | 'CONCURRENCY_LIMIT';

export interface Job {
  readonly udid: string;
  readonly startedAt: Date;
  /** Free-form label for status displays, e.g. 'schedule' | 'retry' | 'manual'. */
  readonly label: string | undefined;
  readonly signal: AbortSignal;
  /** Asks the job to stop; it keeps its slot until release(). */
  cancel(reason?: unknown): void;
  /** Frees the slot. Idempotent. */
  release(): void;
}

export type AcquireResult = { ok: true; job: Job } | { ok: false; reasonCode: BusyCode };
export type WaitResult =
  { ok: true; job: Job } | { ok: false; reasonCode: 'ALREADY_RUNNING' | 'CANCELLED' };

export interface CoordinatorOptions {
  concurrency: number;
  /** Clock for Job.startedAt (tests). */
  now?: () => Date;
}

interface Waiter {
  udid: string;
  label: string | undefined;
  resolve: (r: WaitResult) => void;
  detach: () => void;
}

function checkConcurrency(n: number): number {
  if (!Number.isInteger(n) || n < 1)
    throw new RangeError(`concurrency must be a whole number >= 1, got ${n}`);
  return n;
}

export class Coordinator {
  private limit: number;
  private readonly now: () => Date;
  private readonly jobs = new Map<string, Job>();
  private readonly queue: Waiter[] = [];
  private idleWaiters: (() => void)[] = [];

  constructor(opts: CoordinatorOptions) {
    this.limit = checkConcurrency(opts.concurrency);
    this.now = opts.now ?? (() => new Date());
  }

  get concurrency(): number {
    return this.limit;
  }

  /** Changes the global limit; raising it lets queued waiters in. Running jobs are never cut. */
  setConcurrency(n: number): void {
    this.limit = checkConcurrency(n);
    this.pump();
  }

  /** The `global` argument of decide(). */
  load(): { running: number; concurrency: number } {
    return { running: this.jobs.size, concurrency: this.limit };
  }

  isRunning(udid: string): boolean {
    return this.jobs.has(udid);
  }

  isQueued(udid: string): boolean {
    return this.queue.some((w) => w.udid === udid);
  }

  running(): Job[] {
    return [...this.jobs.values()];
  }

  /** Takes a slot now or says why not. Queued waiters keep their turn: a free slot they are
   *  waiting for is not given away. */
  tryAcquire(udid: string, label?: string): AcquireResult {
    if (this.jobs.has(udid) || this.isQueued(udid))
      return { ok: false, reasonCode: 'ALREADY_RUNNING' };
    if (this.queue.length > 0 || this.jobs.size >= this.limit)
      return { ok: false, reasonCode: 'CONCURRENCY_LIMIT' };
    return { ok: true, job: this.grant(udid, label) };
  }

  /**
   * Waits (first come, first served) for a slot, e.g. for "back up now" while others run.
   * Resolves ALREADY_RUNNING at once if the device runs or waits already; CANCELLED if `signal`
   * aborts or cancel(udid) is called while waiting.
   */
  acquire(udid: string, opts: { label?: string; signal?: AbortSignal } = {}): Promise<WaitResult> {
    const first = this.tryAcquire(udid, opts.label);
    if (first.ok) return Promise.resolve(first);
    if (first.reasonCode === 'ALREADY_RUNNING') {
      return Promise.resolve({ ok: false, reasonCode: 'ALREADY_RUNNING' });
    }
    if (opts.signal?.aborted === true)
      return Promise.resolve({ ok: false, reasonCode: 'CANCELLED' });
    return new Promise<WaitResult>((resolve) => {
      const onAbort = (): void => {
        this.removeWaiter(waiter);
        resolve({ ok: false, reasonCode: 'CANCELLED' });
      };
      const waiter: Waiter = {
        udid,
        label: opts.label,
        resolve,
        detach: () => opts.signal?.removeEventListener('abort', onAbort),
      };
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      this.queue.push(waiter);
    });
  }

  /**
   * tryAcquire + run + release: `work` gets the job (use job.signal); the slot is freed when the
   * returned promise settles, whatever the outcome.
   */
  run<T>(
    udid: string,
    work: (job: Job) => Promise<T>,
    label?: string,
  ): { ok: true; job: Job; done: Promise<T> } | { ok: false; reasonCode: BusyCode } {
    const r = this.tryAcquire(udid, label);
    if (!r.ok) return r;
    const job = r.job;
    let done: Promise<T>;
    try {
      done = work(job);
    } catch (err) {
      done = Promise.reject(err);
    }
    return { ok: true, job, done: done.finally(() => job.release()) };
  }

  /** Cancels the device's running job (true) or its place in the queue (true); false if neither. */
  cancel(udid: string, reason?: unknown): boolean {
    const job = this.jobs.get(udid);
    if (job !== undefined) {
      job.cancel(reason);
      return true;
    }
    const w = this.queue.find((x) => x.udid === udid);
    if (w === undefined) return false;
    this.removeWaiter(w);
    w.resolve({ ok: false, reasonCode: 'CANCELLED' });
    return true;
  }

  /** Shutdown: empties the queue and cancels every running job. Returns how many were running. */
  cancelAll(reason?: unknown): number {
    for (const w of this.queue.splice(0)) {
      w.detach();
      w.resolve({ ok: false, reasonCode: 'CANCELLED' });
    }
    const n = this.jobs.size;
    for (const job of this.jobs.values()) job.cancel(reason);
    return n;
  }

  /** Resolves when no job runs and none waits. */
  whenIdle(): Promise<void> {
    if (this.jobs.size === 0 && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private grant(udid: string, label: string | undefined): Job {
    const controller = new AbortController();
    let released = false;
    const job: Job = {
      udid,
      label,
      startedAt: this.now(),
      signal: controller.signal,
      cancel: (reason?: unknown) => {
        if (!controller.signal.aborted)
          controller.abort(reason ?? new Error(`backup of ${udid} cancelled`));
      },
      release: () => {
        if (released) return;
        released = true;
        if (this.jobs.get(udid) === job) this.jobs.delete(udid);
        this.pump();
      },
    };
    this.jobs.set(udid, job);
    return job;
  }

  private removeWaiter(w: Waiter): void {
    const i = this.queue.indexOf(w);
    if (i >= 0) this.queue.splice(i, 1);
    w.detach();
    this.pump();
  }

  /** Hands free slots to waiters in order; a waiter whose device got busy meanwhile is told so. */
  private pump(): void {
    while (this.queue.length > 0 && this.jobs.size < this.limit) {
      const w = this.queue.shift()!;
      w.detach();
      if (this.jobs.has(w.udid)) {
        w.resolve({ ok: false, reasonCode: 'ALREADY_RUNNING' });
        continue;
      }
      w.resolve({ ok: true, job: this.grant(w.udid, w.label) });
    }
    if (this.jobs.size === 0 && this.queue.length === 0) {
      const ws = this.idleWaiters;
      this.idleWaiters = [];
      for (const r of ws) r();
    }
  }
}
