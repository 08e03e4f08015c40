/**
 * Who may talk to the agent's HTTP API. The API listens on loopback, but any web page the user
 * opens can still send requests there, so every request must pass three checks: the Host header
 * names this server (a DNS-rebinding page arrives with its own host name), a present Origin is
 * this server's (cross-site requests), and the token matches (other local users and programs).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import net from 'node:net';

/** An older browser cookie holding the token itself (still accepted; sessions replace it). */
export const TOKEN_COOKIE = 'mooring_token';

/** Constant-time comparison; hashing first makes the lengths equal and hides the token's. */
export function tokensEqual(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given, 'utf8').digest();
  const b = createHash('sha256').update(expected, 'utf8').digest();
  return timingSafeEqual(a, b);
}

/** The token a request carries: `Authorization: Bearer T`, else the `mooring_token` cookie. */
export function requestToken(req: IncomingMessage): string | undefined {
  const auth = req.headers.authorization;
  if (auth !== undefined) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    return m ? m[1] : undefined;
  }
  return cookieValue(req.headers.cookie, TOKEN_COOKIE);
}

export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

export function isLoopbackHost(host: string): boolean {
  if (host === 'localhost') return true;
  const h = host.replace(/^\[|\]$/g, '');
  if (net.isIPv4(h)) return h.startsWith('127.');
  return h === '::1';
}

/** The Host header values that name this server, lower-case. */
export function allowedHosts(port: number, extra: readonly string[] = []): Set<string> {
  const hosts = new Set([`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`]);
  for (const h of extra) {
    const name = net.isIPv6(h) ? `[${h}]` : h;
    hosts.add(`${name.toLowerCase()}:${port}`);
  }
  return hosts;
}

export function hostAllowed(host: string | undefined, allowed: Set<string>): host is string {
  return host !== undefined && allowed.has(host.toLowerCase());
}

/** A request without Origin comes from a program (curl, the CLI); with one it must be ours. */
export function originAllowed(origin: string | undefined, host: string): boolean {
  return origin === undefined || origin.toLowerCase() === `http://${host.toLowerCase()}`;
}
