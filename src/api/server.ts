/**
 * The agent's HTTP API on node:http: JSON routes (routes.ts) behind the Host, Origin and token
 * checks (http-guard.ts), the live event stream, and the browser UI: `/?token=` (the printed URL)
 * turns into a cookie, then `/` serves the UI's page and `/ui/…` its files (ui-files.ts).
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AgentService } from '../agent/types';
import { isMooringError, MooringError } from '../util/errors';
import {
  allowedHosts,
  hostAllowed,
  isLoopbackHost,
  originAllowed,
  requestToken,
  tokenCookie,
  tokensEqual,
} from './http-guard';
import { HttpError } from './http-error';
import { placeholderPage } from './placeholder-page';
import { apiRoutes, type Route } from './routes';
import { EventStreams } from './sse';
import { defaultUiDir, readUiFile, readUiIndex, UI_CSP } from './ui-files';

export interface ApiServerOptions {
  service: AgentService;
  /** Port 0 picks a free port. */
  listen: { host: string; port: number };
  token: string;
  log?: (line: string) => void;
  /**
   * Listen on an address other computers can reach (e.g. a NAS). Off by default: the token is
   * then the only guard, and it travels over plain HTTP.
   */
  allowRemote?: boolean;
  /** More names the Host header may carry (with the port), for allowRemote set-ups. */
  hostNames?: string[];
  /** Interval of the event stream's keepalive comments (default 15 s). */
  keepaliveMs?: number;
  /** The built UI (index.html + ui/); default dist/renderer; null: no UI (placeholder page). */
  uiDir?: string | null;
}

export interface RunningApiServer {
  /** http://HOST:PORT, without the token. */
  url: string;
  port: number;
  close(): Promise<void>;
}

/** Slow or stalled uploads are dropped after this long. */
const REQUEST_TIMEOUT_MS = 30_000;

const COMMON_HEADERS = {
  'Cache-Control': 'no-store',
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'X-Frame-Options': 'DENY',
};

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    ...COMMON_HEADERS,
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
  });
  res.end(text);
}

function sendError(res: ServerResponse, e: HttpError, extra: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  for (const [k, v] of Object.entries(extra)) res.setHeader(k, v);
  sendJson(res, e.status, { error: { code: e.code, message: e.message } });
}

function sendBody(
  req: IncomingMessage,
  res: ServerResponse,
  type: string,
  body: Buffer,
  csp: string,
): void {
  res.writeHead(200, {
    ...COMMON_HEADERS,
    'Content-Type': type,
    'Content-Security-Policy': csp,
    'Content-Length': body.length,
  });
  res.end(req.method === 'HEAD' ? undefined : body);
}

function urlHost(host: string): string {
  if (host === '0.0.0.0' || host === '::') return '127.0.0.1';
  return host.includes(':') ? `[${host}]` : host;
}

export async function startApiServer(o: ApiServerOptions): Promise<RunningApiServer> {
  if (!o.allowRemote && !isLoopbackHost(o.listen.host)) {
    throw new MooringError(
      'USAGE',
      `--listen: ${o.listen.host} is not a loopback address; the API listens on 127.0.0.1, ::1 or localhost only`,
    );
  }
  const streams = new EventStreams(o.service, o.keepaliveMs);
  const routes: Route[] = apiRoutes(o.service, streams);
  const uiDir = o.uiDir === undefined ? defaultUiDir() : (o.uiDir ?? undefined);
  let hosts = new Set<string>();
  let origin = '';

  const authorised = (req: IncomingMessage): boolean => {
    const t = requestToken(req);
    return t !== undefined && tokensEqual(t, o.token);
  };

  const page = async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
    const given = url.searchParams.get('token');
    if (given !== null) {
      if (!tokensEqual(given, o.token)) {
        throw new HttpError(
          401,
          'UNAUTHORIZED',
          'wrong token: open the URL `mooring agent` printed',
        );
      }
      // The token leaves the address bar (and history) at once; the cookie carries it from now on.
      res.writeHead(303, { ...COMMON_HEADERS, 'Set-Cookie': tokenCookie(o.token), Location: '/' });
      res.end();
      return;
    }
    // The UI only for a browser holding the token cookie: the page itself is no secret, but
    // without the cookie every call it makes would fail; the placeholder says what to open.
    const index = uiDir !== undefined && authorised(req) ? await readUiIndex(uiDir) : undefined;
    if (index !== undefined) {
      sendBody(req, res, 'text/html; charset=utf-8', index, UI_CSP);
      return;
    }
    const html = placeholderPage(authorised(req));
    res.writeHead(200, {
      ...COMMON_HEADERS,
      'Content-Type': 'text/html; charset=utf-8',
      'Content-Security-Policy': "default-src 'none'; frame-ancestors 'none'",
      'Content-Length': Buffer.byteLength(html),
    });
    res.end(html);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const host = req.headers.host;
    if (!hostAllowed(host, hosts)) {
      throw new HttpError(
        403,
        'FORBIDDEN_HOST',
        `this agent answers only to ${origin} (Host "${(host ?? '').slice(0, 100)}" refused)`,
      );
    }
    if (!originAllowed(req.headers.origin, host)) {
      throw new HttpError(403, 'FORBIDDEN_ORIGIN', 'requests from other web sites are refused');
    }
    const raw = req.url ?? '';
    if (!raw.startsWith('/')) throw new HttpError(400, 'BAD_REQUEST', 'expected a path');
    const url = new URL(raw, origin);
    const read = req.method === 'GET' || req.method === 'HEAD';
    if (url.pathname === '/' && read) {
      await page(req, res, url);
      return;
    }
    if (url.pathname.startsWith('/ui/') && read) {
      const file = uiDir === undefined ? undefined : await readUiFile(uiDir, url.pathname.slice(4));
      if (!file) throw new HttpError(404, 'NOT_FOUND', `nothing at ${url.pathname.slice(0, 100)}`);
      sendBody(req, res, file.type, file.body, UI_CSP);
      return;
    }
    if (!url.pathname.startsWith('/api/')) {
      throw new HttpError(404, 'NOT_FOUND', `nothing at ${url.pathname.slice(0, 100)}`);
    }
    if (!authorised(req)) {
      throw new HttpError(
        401,
        'UNAUTHORIZED',
        'missing or wrong token: send Authorization: Bearer TOKEN (the token is in the URL `mooring agent` printed and in DATA-DIR/agent.json)',
      );
    }
    const matching = routes.filter((r) => r.path.test(url.pathname));
    if (matching.length === 0) {
      throw new HttpError(404, 'NOT_FOUND', `no API route ${url.pathname.slice(0, 100)}`);
    }
    const route = matching.find((r) => r.method === req.method);
    if (!route) {
      sendError(
        res,
        new HttpError(405, 'METHOD_NOT_ALLOWED', `${req.method} is not accepted here`),
        { Allow: matching.map((r) => r.method).join(', ') },
      );
      return;
    }
    const params = route.path.exec(url.pathname)!.slice(1);
    const reply = await route.handle({ params, search: url.searchParams, req, res });
    if (reply !== 'streamed') sendJson(res, reply.status ?? 200, reply.body);
  };

  const server = http.createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      if (e instanceof HttpError) {
        // An oversized body is left unread: close the connection rather than read it all.
        sendError(res, e, e.status === 413 ? { Connection: 'close' } : {});
      } else if (isMooringError(e, 'USAGE')) {
        sendError(res, new HttpError(400, 'BAD_REQUEST', e.message));
      } else {
        const message = e instanceof Error ? e.message : String(e);
        o.log?.(`api: ${req.method} ${(req.url ?? '').split('?')[0]} failed: ${message}`);
        sendError(res, new HttpError(500, 'INTERNAL', message));
      }
    });
  });
  server.requestTimeout = REQUEST_TIMEOUT_MS;
  server.headersTimeout = REQUEST_TIMEOUT_MS;

  await new Promise<void>((resolve, reject) => {
    const failed = (e: NodeJS.ErrnoException): void => {
      const where = `${o.listen.host}:${o.listen.port}`;
      reject(
        e.code === 'EADDRINUSE'
          ? new MooringError(
              'USAGE',
              `--listen: ${where} is already in use (another program, or an agent for another data folder): pass --listen 127.0.0.1:PORT`,
              { cause: e },
            )
          : new MooringError('IO', `cannot listen on ${where}: ${e.message}`, { cause: e }),
      );
    };
    server.once('error', failed);
    server.listen(o.listen.port, o.listen.host, () => {
      server.off('error', failed);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  hosts = allowedHosts(port, [o.listen.host, ...(o.hostNames ?? [])]);
  origin = `http://${urlHost(o.listen.host)}:${port}`;

  let closing: Promise<void> | undefined;
  return {
    url: origin,
    port,
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        streams.closeAll();
        server.close(() => resolve());
        server.closeAllConnections();
      })),
  };
}
