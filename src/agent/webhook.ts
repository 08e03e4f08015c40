/**
 * The optional outgoing webhook: a headless install reaches its user's phone through a URL the
 * user set (an ntfy topic, or anything that takes a POST). Only warnings and errors about backups,
 * pairing, staleness and this computer are sent; skips never (they are routine).
 *
 * The body is plain text ("<device>: <message>\n<fix hint>") with ntfy's Title, Priority and Tags
 * headers, plus X-Mooring-* headers for other receivers. Sending is bounded (a timeout, no
 * redirects followed, one message per device and reason per hour) and never throws: a webhook
 * that fails is reported through onError and must never disturb a backup.
 */
import http from 'node:http';
import https from 'node:https';
import type { NotificationRow } from '../history';
import { MooringError } from '../util/errors';

export interface WebhookMessage {
  deviceName: string | null;
  notification: NotificationRow;
}

export const DEFAULT_WEBHOOK_TIMEOUT_MS = 10_000;
/** At most one message per (device, reason) in this time. */
export const WEBHOOK_RATE_LIMIT_MS = 60 * 60 * 1000;
/** Rate-limit entries kept; older ones are forgotten first. */
const MAX_RATE_ENTRIES = 1000;
/** Longest header value sent (Title). */
const MAX_HEADER_CHARS = 200;

const SENT_KINDS: ReadonlySet<string> = new Set(['backup', 'pairing', 'stale', 'agent']);

export class Webhook {
  private readonly url: URL;
  private readonly timeoutMs: number;
  private readonly onError: (e: Error) => void;
  private readonly now: () => number;
  /** (udid, reason) → when a message was last sent (or is being sent). */
  private readonly lastSent = new Map<string, number>();

  constructor(opts: {
    url: string;
    timeoutMs?: number;
    onError?: (e: Error) => void;
    /** Clock for the rate limit (tests). */
    now?: () => number;
  }) {
    let url: URL;
    try {
      url = new URL(opts.url);
    } catch {
      throw new MooringError('USAGE', `webhook: not a URL: ${JSON.stringify(opts.url)}`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new MooringError('USAGE', `webhook: expected an http:// or https:// URL`);
    }
    this.url = url;
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_WEBHOOK_TIMEOUT_MS;
    this.onError = opts.onError ?? (() => {});
    this.now = opts.now ?? Date.now;
  }

  /** Sends warnings and errors only (kinds backup, pairing, stale, agent; skips never); never throws. */
  async notify(m: WebhookMessage): Promise<boolean> {
    try {
      const n = m.notification;
      if (n.severity === 'info' || !SENT_KINDS.has(n.kind)) return false;
      const key = `${n.udid ?? ''}\u0000${n.reasonCode}`;
      const now = this.now();
      const last = this.lastSent.get(key);
      if (last !== undefined && now - last < WEBHOOK_RATE_LIMIT_MS && now >= last) return false;
      this.remember(key, now);
      try {
        await this.post(m);
        return true;
      } catch (e) {
        // A failed send does not use up the hour: the next notice may get through.
        if (this.lastSent.get(key) === now) this.lastSent.delete(key);
        throw e;
      }
    } catch (e) {
      this.report(e);
      return false;
    }
  }

  private remember(key: string, at: number): void {
    this.lastSent.delete(key);
    if (this.lastSent.size >= MAX_RATE_ENTRIES) {
      const oldest = this.lastSent.keys().next().value;
      if (oldest !== undefined) this.lastSent.delete(oldest);
    }
    this.lastSent.set(key, at);
  }

  private report(e: unknown): void {
    try {
      this.onError(e instanceof Error ? e : new Error(String(e)));
    } catch {
      // The reporter itself failed; nothing sensible is left to do.
    }
  }

  private post(m: WebhookMessage): Promise<void> {
    const n = m.notification;
    const who = m.deviceName ?? n.udid ?? 'Mooring';
    const body = `${who}: ${n.message}` + (n.fixHint === null ? '' : `\n${n.fixHint}`);
    const headers: Record<string, string> = {
      'Content-Type': 'text/plain; charset=utf-8',
      'Content-Length': String(Buffer.byteLength(body)),
      Connection: 'close',
      Title: headerValue(`Mooring: ${who}`),
      Priority: n.severity === 'error' ? 'high' : 'default',
      Tags: n.severity === 'error' ? 'rotating_light' : 'warning',
      'X-Mooring-Reason': n.reasonCode,
      'X-Mooring-Severity': n.severity,
    };
    if (n.udid !== null) headers['X-Mooring-Udid'] = headerValue(n.udid);
    const where = `${this.url.protocol}//${this.url.host}`;

    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const finish = (err?: Error): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        req.destroy();
        if (err) reject(err);
        else resolve();
      };
      const mod = this.url.protocol === 'https:' ? https : http;
      const req = mod.request(this.url, { method: 'POST', headers, agent: false }, (res) => {
        const status = res.statusCode ?? 0;
        res.destroy(); // the answer's body is of no interest
        if (status >= 200 && status < 300) finish();
        else if (status >= 300 && status < 400) {
          finish(
            new Error(
              `webhook ${where} answered HTTP ${status} (a redirect, not followed): set the final URL`,
            ),
          );
        } else finish(new Error(`webhook ${where} answered HTTP ${status}`));
      });
      const timer = setTimeout(
        () => finish(new Error(`webhook ${where} did not answer within ${this.timeoutMs} ms`)),
        this.timeoutMs,
      );
      req.on('error', (e) => finish(new Error(`webhook ${where} failed: ${e.message}`)));
      req.end(body);
    });
  }
}

/**
 * A header value: one line, bounded, and ASCII; other text is sent as an RFC 2047 encoded word
 * (which ntfy decodes), since Node refuses characters outside Latin-1 in headers.
 */
function headerValue(s: string): string {
  // eslint-disable-next-line no-control-regex
  let v = s.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
  if (v.length > MAX_HEADER_CHARS) v = `${v.slice(0, MAX_HEADER_CHARS - 1)}…`;
  if (/^[\u0020-\u007e]*$/.test(v)) return v;
  return `=?UTF-8?B?${Buffer.from(v, 'utf8').toString('base64')}?=`;
}
