/**
 * The agent's outward voice: subscribers get every AgentEvent; every notification recorded also
 * goes to the webhook when one is configured (the Webhook filters by severity and rate-limits).
 * A failing listener or webhook never disturbs the agent.
 */
import type { History, NotificationInput, NotificationRow } from '../history';
import type { AgentEvent } from './types';
import { Webhook } from './webhook';

export interface NotifierOptions {
  db: History;
  /** The webhook URL currently configured, or null. */
  webhookUrl: () => string | null;
  log: (line: string) => void;
  /** Keeps background work (webhook sends) so stop() can wait for it. */
  track: (p: Promise<unknown>) => void;
}

export class Notifier {
  private readonly listeners = new Set<(e: AgentEvent) => void>();
  private webhook: { url: string; hook: Webhook } | undefined;

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
    this.emit({ type: 'notification', notification: row });
    const url = this.o.webhookUrl();
    if (url === null) return;
    if (this.webhook?.url !== url) {
      // One Webhook per URL: its per-(device, reason) rate limit survives unrelated setting changes.
      const hook = new Webhook({ url, onError: (e) => this.o.log(`webhook: ${e.message}`) });
      this.webhook = { url, hook };
    }
    const name = row.udid === null ? null : (this.o.db.getDevice(row.udid)?.name ?? null);
    this.o.track(this.webhook.hook.notify({ deviceName: name, notification: row }));
  }
}
