/**
 * notification_proxy client (reference §6.2). Observe/Post/Shutdown are fire-and-forget plists;
 * a background read loop turns RelayNotification messages into events and an async iterator,
 * and notices ProxyDeath (the answer to Shutdown, or the proxy dying).
 */
import { EventEmitter } from 'node:events';
import { MooringError, isMooringError } from '../../util/errors';
import { isPlistDict } from '../../protocol/plist/types';
import type { PlistConnection } from '../../transport/plist-connection';

export const NOTIFICATION_PROXY_SERVICE_NAME = 'com.apple.mobile.notification_proxy';
export const INSECURE_NOTIFICATION_PROXY_SERVICE_NAME =
  'com.apple.mobile.insecure_notification_proxy';

/** Longest notification name accepted or sent. */
export const MAX_NOTIFICATION_NAME_LENGTH = 1024;
/** Relayed names kept for the iterator before the oldest are dropped. */
export const MAX_QUEUED_NOTIFICATIONS = 1000;
/** How long shutdown() waits for ProxyDeath. */
export const DEFAULT_SHUTDOWN_TIMEOUT_MS = 5_000;
/** The read loop's deadline per message; an idle connection is normal, so it simply reads again. */
const IDLE_READ_MS = 60_000;

/** Notification names used around a backup (reference §6.1). */
export const Notifications = {
  SYNC_WILL_START: 'com.apple.itunes-mobdev.syncWillStart',
  SYNC_LOCK_REQUEST: 'com.apple.itunes-mobdev.syncLockRequest',
  SYNC_DID_START: 'com.apple.itunes-mobdev.syncDidStart',
  SYNC_DID_FINISH: 'com.apple.itunes-mobdev.syncDidFinish',
  SYNC_CANCEL_REQUEST: 'com.apple.itunes-client.syncCancelRequest',
  SYNC_SUSPEND_REQUEST: 'com.apple.itunes-client.syncSuspendRequest',
  SYNC_RESUME_REQUEST: 'com.apple.itunes-client.syncResumeRequest',
  BACKUP_DOMAIN_CHANGED: 'com.apple.mobile.backup.domain_changed',
  PASSCODE_PROMPT_PRESENTED: 'com.apple.LocalAuthentication.ui.presented',
  PASSCODE_PROMPT_DISMISSED: 'com.apple.LocalAuthentication.ui.dismissed',
} as const;

function checkName(name: string): void {
  if (typeof name !== 'string' || name.length === 0 || name.length > MAX_NOTIFICATION_NAME_LENGTH) {
    throw new MooringError(
      'USAGE',
      `notification name must be 1..${MAX_NOTIFICATION_NAME_LENGTH} characters`,
    );
  }
}

export interface NotificationProxyEvents {
  notification: [name: string];
  /** The proxy died (after Shutdown, or on its own). */
  death: [];
  /** The read loop ended: connection closed, or the device broke the protocol (`error` set). */
  end: [error: Error | undefined];
}

export class NotificationProxyClient extends EventEmitter<NotificationProxyEvents> {
  private readonly queue: string[] = [];
  private readonly waiters: Array<() => void> = [];
  private ended = false;
  private endError: Error | undefined;
  private dead = false;
  private closed = false;
  /** Resolves when the read loop has ended. */
  readonly finished: Promise<void>;

  constructor(readonly connection: PlistConnection) {
    super();
    this.finished = this.readLoop();
  }

  /** True once ProxyDeath arrived. */
  get proxyDied(): boolean {
    return this.dead;
  }

  async observe(name: string): Promise<void> {
    checkName(name);
    await this.connection.send({ Command: 'ObserveNotification', Name: name }, 'xml');
  }

  async post(name: string): Promise<void> {
    checkName(name);
    await this.connection.send({ Command: 'PostNotification', Name: name }, 'xml');
  }

  /**
   * Sends Shutdown, waits (bounded) for ProxyDeath, then closes. Resolves true when the proxy
   * confirmed, false when it did not answer in time (the connection is closed either way).
   */
  async shutdown(timeoutMs = DEFAULT_SHUTDOWN_TIMEOUT_MS): Promise<boolean> {
    if (!this.ended && !this.closed) {
      try {
        await this.connection.send({ Command: 'Shutdown' }, 'xml');
      } catch {
        // Already gone: nothing to wait for.
      }
    }
    let timer: NodeJS.Timeout | undefined;
    const confirmed = await Promise.race([
      this.finished.then(() => this.dead),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(this.dead), timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    this.close();
    return confirmed;
  }

  /** Waits for the next relayed name; TIMEOUT after `timeoutMs`, CLOSED when the proxy is gone. */
  async next(timeoutMs: number): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const name = this.queue.shift();
      if (name !== undefined) return name;
      if (this.ended) {
        throw this.endError ?? new MooringError('CLOSED', 'notification_proxy connection ended');
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new MooringError('TIMEOUT', `no notification within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          const i = this.waiters.indexOf(done);
          if (i !== -1) this.waiters.splice(i, 1);
          resolve();
        };
        const timer = setTimeout(done, left);
        this.waiters.push(done);
      });
    }
  }

  /** Relayed names as they arrive; ends when the proxy dies or the connection closes. */
  async *[Symbol.asyncIterator](): AsyncGenerator<string, void, undefined> {
    for (;;) {
      const name = this.queue.shift();
      if (name !== undefined) {
        yield name;
        continue;
      }
      if (this.ended) {
        if (this.endError) throw this.endError;
        return;
      }
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.connection.close();
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  private async readLoop(): Promise<void> {
    try {
      while (!this.closed) {
        let msg;
        try {
          msg = await this.connection.receive(IDLE_READ_MS);
        } catch (e) {
          if (isMooringError(e, 'TIMEOUT')) continue;
          // Closed by us or by the device: a normal end unless the bytes were bad.
          if (isMooringError(e, 'CLOSED') || this.closed) break;
          throw e;
        }
        if (!isPlistDict(msg) || typeof msg.Command !== 'string') {
          throw new MooringError(
            'MALFORMED',
            'notification_proxy sent a message without a Command',
          );
        }
        if (msg.Command === 'RelayNotification') {
          const name = msg.Name;
          if (
            typeof name !== 'string' ||
            name.length === 0 ||
            name.length > MAX_NOTIFICATION_NAME_LENGTH
          ) {
            throw new MooringError(
              'MALFORMED',
              'notification_proxy relayed a notification without a valid Name',
            );
          }
          if (this.queue.length >= MAX_QUEUED_NOTIFICATIONS) this.queue.shift();
          this.queue.push(name);
          this.wake();
          this.emit('notification', name);
        } else if (msg.Command === 'ProxyDeath') {
          this.dead = true;
          this.emit('death');
          break;
        }
        // Other commands are not part of the protocol we speak; ignore them.
      }
    } catch (e) {
      this.endError = e instanceof Error ? e : new Error(String(e));
    } finally {
      this.ended = true;
      this.wake();
      this.emit('end', this.endError);
    }
  }
}
