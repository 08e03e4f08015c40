/**
 * The agent's outward voice: subscribers get every AgentEvent; every notification recorded also
 * goes to the webhook when one is configured (the Webhook filters by severity and rate-limits).
 * A failing listener or webhook never disturbs the agent. A webhook that fails is recorded as a
 * WEBHOOK_FAILED notice (never sent to it): once, then again only after it worked or an hour
 * passed, so a person who relies on it learns from Mooring that it has gone quiet.
 */
import {
  webhookFailed,
  type History,
  type NotificationInput,
  type NotificationRow,
} from '../history';
import type { AgentEvent } from './types';
import { Webhook, WEBHOOK_RATE_LIMIT_MS } from './webhook';

export interface NotifierOptions {
  db: History;
  /** The webhook URL currently configured, or null. */
  webhookUrl: () => string | null;
  log: (line: string) => void;
  /** Keeps background work (webhook sends) so stop() can wait for it. */
  track: (p: Promise<unknown>) => void;
  now?: () => number;
}

export class Notifier {
  private readonly listeners = new Set<(e: AgentEvent) => void>();
  private webhook: { url: string; hook: Webhook } | undefined;
  /** When WEBHOOK_FAILED was last recorded, while the webhook has not worked since. */
  private webhookFailureToldAt: number | undefined;

  constructor(private readonly o: NotifierOptions) {}

  get hasListeners(): boolean {
    return this.listeners.size > 0;
  }

  subscribe(listener: (e: AgentEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  clear(): void {
    this.listeners.clear();
  }

  emit(e: AgentEvent): void {
    for (const l of [...this.listeners]) {
      try {
        l(e);
      } catch (err) {
        this.o.log(`event listener failed: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  }

  /** Records a notification, then tells subscribers and the webhook. */
  record(n: NotificationInput): NotificationRow | undefined {
    let row: NotificationRow;
    try {
      row = this.o.db.addNotification(n);
    } catch (e) {
      this.o.log(`could not record ${n.reasonCode}: ${e instanceof Error ? e.message : String(e)}`);
      return undefined;
    }
    this.announce(row);
    return row;
  }

  /** A notification already in the history (recorded with an attempt): events and the webhook. */
  announce(row: NotificationRow): void {
    // The log tells the same story as the Notifications tab, for whoever reads only the log.
    this.o.log(`${row.severity} ${row.reasonCode} (${row.udid ?? 'Mooring'}): ${row.message}`);
    this.emit({ type: 'notification', notification: row });
    const url = this.o.webhookUrl();
    if (url === null || row.reasonCode === 'WEBHOOK_FAILED') return;
    if (this.webhook?.url !== url) {
      // One Webhook per URL: its per-(device, reason) rate limit survives unrelated setting changes.
      const hook = new Webhook({ url, onError: (e) => this.webhookFailed(e) });
      this.webhook = { url, hook };
      this.webhookFailureToldAt = undefined;
    }
    const name = row.udid === null ? null : (this.o.db.getDevice(row.udid)?.name ?? null);
    const sent = this.webhook.hook.notify({ deviceName: name, notification: row }).then((ok) => {
      if (ok) this.webhookFailureToldAt = undefined;
    });
    this.o.track(sent);
  }

  private webhookFailed(e: Error): void {
    this.o.log(`webhook: ${e.message}`);
    const now = (this.o.now ?? Date.now)();
    const told = this.webhookFailureToldAt;
    if (told !== undefined && now - told < WEBHOOK_RATE_LIMIT_MS && now >= told) return;
    this.webhookFailureToldAt = now;
    this.record(webhookFailed({ detail: e.message }));
  }
}
