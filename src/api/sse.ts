/**
 * GET /api/events: the agent's events as a text/event-stream (`event: <type>`, `data: <JSON>`).
 * A comment every keepalive interval keeps proxies and idle timers from closing a quiet stream
 * and lets a dead client be noticed. A client that stops reading is dropped once MAX_BUFFERED
 * bytes wait for it, so a stuck browser tab cannot grow the agent's memory.
 */
import type { ServerResponse } from 'node:http';
import type { AgentEvent, AgentService } from '../agent/types';

export const DEFAULT_KEEPALIVE_MS = 15_000;
export const MAX_EVENT_STREAMS = 32;
const MAX_BUFFERED = 1024 * 1024;

export function formatEvent(e: AgentEvent): string {
  return `event: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`;
}

export class EventStreams {
  private readonly open = new Set<() => void>();

  constructor(
    private readonly service: AgentService,
    private readonly keepaliveMs = DEFAULT_KEEPALIVE_MS,
  ) {}

  get count(): number {
    return this.open.size;
  }

  /** Starts streaming to `res` until the client goes away or closeAll() runs. */
  attach(res: ServerResponse): void {
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      'X-Content-Type-Options': 'nosniff',
      Connection: 'keep-alive',
    });
    res.write(': connected\n\n');
    const send = (text: string): void => {
      if (res.writableLength > MAX_BUFFERED) {
        close();
        return;
      }
      res.write(text);
    };
    const unsubscribe = this.service.subscribe((e) => send(formatEvent(e)));
    const timer = setInterval(() => send(': keepalive\n\n'), this.keepaliveMs);
    timer.unref();
    let closed = false;
    const close = (): void => {
      if (closed) return;
      closed = true;
      unsubscribe();
      clearInterval(timer);
      this.open.delete(close);
      res.end();
    };
    this.open.add(close);
    // The response's 'close' (not the request's: that one fires once the request is read)
    // tells that the client went away.
    res.on('close', close);
  }

  closeAll(): void {
    for (const close of [...this.open]) close();
  }
}
