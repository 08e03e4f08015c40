/**
 * Stopping a backup from outside the DeviceLink loop: our own cancel (AbortSignal, Ctrl-C), the
 * user cancelling on the device (notification_proxy), or a passcode prompt nobody answers. The loop
 * races every wait against this, so a stop never waits for the device's next byte.
 */
import { MooringError } from '../util/errors';

export type StopReason = 'user' | 'device' | 'passcode';

export class BackupStopped extends Error {
  constructor(readonly reason: StopReason) {
    super(`backup stopped (${reason})`);
    this.name = 'BackupStopped';
  }
}

export class Interrupt {
  private stopReason: StopReason | undefined;
  private readonly listeners = new Set<(reason: StopReason) => void>();

  get reason(): StopReason | undefined {
    return this.stopReason;
  }

  /** The first reason wins. */
  stop(reason: StopReason): void {
    if (this.stopReason !== undefined) return;
    this.stopReason = reason;
    for (const l of [...this.listeners]) l(reason);
  }

  /** Throws BackupStopped once stopped. */
  check(): void {
    if (this.stopReason !== undefined) throw new BackupStopped(this.stopReason);
  }

  /**
   * `p`, or BackupStopped as soon as a stop arrives. `p` keeps running (its later rejection is
   * handled here): the caller closes the connection, which ends it.
   */
  race<T>(p: Promise<T>): Promise<T> {
    if (this.stopReason !== undefined) {
      p.catch(() => undefined);
      return Promise.reject(new BackupStopped(this.stopReason));
    }
    return new Promise<T>((resolve, reject) => {
      const onStop = (reason: StopReason): void => reject(new BackupStopped(reason));
      this.listeners.add(onStop);
      p.then(
        (v) => {
          this.listeners.delete(onStop);
          resolve(v);
        },
        (e: unknown) => {
          this.listeners.delete(onStop);
          reject(e);
        },
      );
    });
  }

  /** Sleeps, ending early (BackupStopped) on a stop. */
  sleep(ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const p = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, ms);
    });
    return this.race(p).finally(() => clearTimeout(timer));
  }
}

/**
 * `p`, or TIMEOUT after `ms`. For writes: a device that stops reading would otherwise block a
 * write forever (reads have their own deadlines in StreamReader).
 */
export function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new MooringError('TIMEOUT', `${what} did not complete within ${ms} ms`)),
      ms,
    );
  });
  p.catch(() => undefined);
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
