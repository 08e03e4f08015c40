/**
 * The agent's HTTP API on node:http: JSON routes (routes.ts) behind the Host, Origin and token
 * checks (http-guard.ts), the live event stream, and the browser UI. Browsers sign in at /login
 * (a one-time link, or a form taking the LAN password or the token: browser-login.ts) and get a
 * session cookie; then `/` serves the UI's page and `/ui/…` its files (ui-files.ts). The token
 * itself is never accepted in a URL.
 *
 * Loopback only, unless a LAN password is given: then the server may listen on any address, the
 * Host header may also name this computer's LAN addresses and names, and browsers there sign in
 * with the password. Plain HTTP (no TLS yet: see docs/DECISIONS.md, "The API on a LAN").
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import type { AgentService } from '../agent/types';
import { isMooringError, MooringError } from '../util/errors';
import {
  clearedSessionCookie,
  LoginCodes,
  LoginRateLimiter,
  loginPage,
  LOGIN_CSP,
  PasswordCheck,
  SESSION_COOKIE,
  SessionCookies,
  sessionCookie,
} from './browser-login';
import {
  allowedHosts,
  cookieValue,
  hostAllowed,
  isLoopbackHost,
  originAllowed,
  requestToken,
  TOKEN_COOKIE,
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
   * Required to listen on an address other computers can reach (e.g. a NAS): browsers there sign
   * in with it (rate-limited), API clients still send the token. Without it only loopback works.
   */
  lanPassword?: string;
  /** More names the Host header may carry (with the port), e.g. a NAS's DNS name. */
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
  /** A new one-time login link for a browser (`URL/login?code=…`): valid once, for 10 minutes. */
  loginUrl(): string;
  close(): Promise<void>;
}

/** Largest sign-in form accepted. */
const MAX_LOGIN_BODY_BYTES = 4096;

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

/** The names and addresses by which other computers may reach this one (for the Host check). */
export function lanHostNames(listenHost: string): string[] {
  const names = [os.hostname(), `${os.hostname()}.local`];
  if (listenHost === '0.0.0.0' || listenHost === '::') {
    for (const list of Object.values(os.networkInterfaces())) {
      for (const a of list ?? []) names.push(a.address);
    }
  }
  return names;
}

function redirect(res: ServerResponse, location: string, cookie?: string): void {
  res.writeHead(303, {
    ...COMMON_HEADERS,
    Location: location,
    ...(cookie === undefined ? {} : { 'Set-Cookie': cookie }),
  });
  res.end();
}

function sendLoginPage(
  res: ServerResponse,
  status: number,
  lan: boolean,
  message?: string,
  extra: Record<string, string> = {},
): void {
  const html = loginPage({ lan, ...(message === undefined ? {} : { message }) });
  res.writeHead(status, {
    ...COMMON_HEADERS,
    ...extra,
    'Content-Type': 'text/html; charset=utf-8',
    'Content-Security-Policy': LOGIN_CSP,
    'Content-Length': Buffer.byteLength(html),
  });
  res.end(html);
}

/** The `secret` field of a url-encoded sign-in form, at most MAX_LOGIN_BODY_BYTES. */
async function readLoginSecret(req: IncomingMessage): Promise<string> {
  const type = req.headers['content-type'] ?? '';
  if (!/^application\/x-www-form-urlencoded\s*(;|$)/i.test(type)) {
    throw new HttpError(
      415,
      'BAD_REQUEST',
      'send the sign-in form as application/x-www-form-urlencoded',
    );
  }
  const declared = Number(req.headers['content-length'] ?? 0);
  const tooLarge = new HttpError(
    413,
    'TOO_LARGE',
    `sign-in form larger than ${MAX_LOGIN_BODY_BYTES} bytes`,
  );
  if (declared > MAX_LOGIN_BODY_BYTES) throw tooLarge;
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_LOGIN_BODY_BYTES) throw tooLarge;
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8')).get('secret') ?? '';
}

export async function startApiServer(o: ApiServerOptions): Promise<RunningApiServer> {
  const lan = o.lanPassword !== undefined;
  if (!lan && !isLoopbackHost(o.listen.host)) {
    throw new MooringError(
      'USAGE',
      `--listen: ${o.listen.host} is not a loopback address. The API listens on 127.0.0.1, ::1 or localhost unless you opt in to your network with a password: --lan-password-file FILE (browsers there then sign in with it; API clients still need the token)`,
    );
  }
  const streams = new EventStreams(o.service, o.keepaliveMs);
  const codes = new LoginCodes();
  const sessions = new SessionCookies(o.token, o.lanPassword);
  const limiter = new LoginRateLimiter();
  const password = lan ? await PasswordCheck.of(o.lanPassword!) : undefined;
  const uiDir = o.uiDir === undefined ? defaultUiDir() : (o.uiDir ?? undefined);
  let hosts = new Set<string>();
  let origin = '';
  const routes: Route[] = apiRoutes(o.service, streams, codes);

  /** The token (Authorization: Bearer, or the older token cookie), else a valid session cookie. */
  const authorised = (req: IncomingMessage): boolean => {
    const cookie = req.headers.cookie;
    if (
      req.headers.authorization !== undefined ||
      cookieValue(cookie, TOKEN_COOKIE) !== undefined
    ) {
      const t = requestToken(req);
      if (t !== undefined && tokensEqual(t, o.token)) return true;
      if (req.headers.authorization !== undefined) return false;
    }
    return sessions.valid(cookieValue(cookie, SESSION_COOKIE));
  };

  const login = async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
    if (req.method === 'POST') {
      const address = req.socket.remoteAddress ?? '?';
      const wait = limiter.retryAfter(address);
      if (wait > 0) {
        o.log?.(`api: sign-in from ${address} refused: too many failed attempts`);
        sendLoginPage(res, 429, lan, `Too many failed attempts: wait ${wait} s and try again.`, {
          'Retry-After': String(wait),
        });
        return;
      }
      const secret = await readLoginSecret(req);
      const ok =
        secret !== '' &&
        (tokensEqual(secret, o.token) ||
          (password !== undefined && (await password.matches(secret))));
      if (!ok) {
        limiter.failed(address);
        o.log?.(`api: failed sign-in from ${address}`);
        sendLoginPage(res, 401, lan, lan ? 'Wrong password.' : 'Wrong access token.');
        return;
      }
      redirect(res, '/', sessionCookie(sessions.issue(), false));
      return;
    }
    const code = url.searchParams.get('code');
    // HEAD (link previews) never spends a one-time code.
    if (code === null || req.method === 'HEAD') {
      sendLoginPage(res, 200, lan);
    } else if (codes.consume(code)) {
      redirect(res, '/', sessionCookie(sessions.issue(), false));
    } else {
      sendLoginPage(
        res,
        401,
        lan,
        'This login link has expired or was already used: sign in below.',
      );
    }
  };

  const page = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (!authorised(req)) {
      redirect(res, '/login');
      return;
    }
    const index = uiDir !== undefined ? await readUiIndex(uiDir) : undefined;
    if (index !== undefined) {
      sendBody(req, res, 'text/html; charset=utf-8', index, UI_CSP);
      return;
    }
    const html = placeholderPage();
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
    if (url.searchParams.has('token')) {
      // A token in a URL ends up in histories and logs: refused everywhere, even a right one.
      throw new HttpError(
        400,
        'TOKEN_IN_URL',
        'the access token is never accepted in a URL: open the login link `mooring agent` printed, sign in at /login, or send Authorization: Bearer TOKEN',
      );
    }
    const read = req.method === 'GET' || req.method === 'HEAD';
    if (url.pathname === '/' && read) {
      await page(req, res);
      return;
    }
    if (url.pathname === '/login' && (read || req.method === 'POST')) {
      await login(req, res, url);
      return;
    }
    if (url.pathname === '/logout' && req.method === 'POST') {
      redirect(res, '/login', clearedSessionCookie(false));
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
  hosts = allowedHosts(port, [
    o.listen.host,
    ...(lan ? lanHostNames(o.listen.host) : []),
    ...(o.hostNames ?? []),
  ]);
  origin = `http://${urlHost(o.listen.host)}:${port}`;

  let closing: Promise<void> | undefined;
  return {
    url: origin,
    port,
    loginUrl: () => `${origin}/login?code=${codes.issue()}`,
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        streams.closeAll();
        server.close(() => resolve());
        server.closeAllConnections();
      })),
  };
}
