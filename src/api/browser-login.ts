/**
 * How a browser signs in without the API token ever travelling in a URL (URLs end up in browser
 * history, shell scroll-back, proxy and service logs):
 * - a one-time login link (`/login?code=…`): `mooring agent` prints one at start; a code works
 *   once, for LOGIN_CODE_TTL_MS, so a copy left in a log or a history is worthless;
 * - or the login form (POST, body only): the LAN password when one is configured, or the API
 *   token itself (DATA-DIR/api-token) for a browser on this computer.
 * Either gives a session cookie that is not the token: a MAC over (issued-at, nonce) keyed by the
 * token and the LAN password, so it survives an agent restart, expires after SESSION_MAX_AGE_MS
 * and dies when the token or the password changes. Failed logins are rate-limited per address and
 * in total; password checks are constant-time (scrypt, then timingSafeEqual).
 */
import { createHmac, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import { escapeHtml } from '../util/html';

export const SESSION_COOKIE = 'mooring_session';
/** A login link works this long after it is printed. */
export const LOGIN_CODE_TTL_MS = 10 * 60_000;
/** At most this many unused login links at once (older ones are dropped). */
export const MAX_LOGIN_CODES = 32;
/** A browser session lasts this long, then the person signs in again. */
export const SESSION_MAX_AGE_MS = 7 * 24 * 3600_000;
/** Failed logins allowed per client address, and in total, per LOGIN_WINDOW_MS. */
export const MAX_FAILURES_PER_ADDRESS = 5;
export const MAX_FAILURES_TOTAL = 20;
export const LOGIN_WINDOW_MS = 60_000;
/** LAN passwords: long enough to resist guessing at the rate limit, short enough to bound work. */
export const MIN_LAN_PASSWORD_LENGTH = 12;
export const MAX_LAN_PASSWORD_LENGTH = 1024;

const scryptAsync = promisify(scrypt) as (
  password: string,
  salt: Buffer,
  keylen: number,
) => Promise<Buffer>;

/** One-time login codes, kept in memory only. */
export class LoginCodes {
  private readonly codes = new Map<string, number>();

  issue(now = Date.now()): string {
    this.prune(now);
    while (this.codes.size >= MAX_LOGIN_CODES) {
      const oldest = this.codes.keys().next().value as string;
      this.codes.delete(oldest);
    }
    const code = randomBytes(24).toString('base64url');
    this.codes.set(code, now + LOGIN_CODE_TTL_MS);
    return code;
  }

  /** True once for a valid, unexpired code; the code is gone afterwards either way. */
  consume(code: string, now = Date.now()): boolean {
    this.prune(now);
    // Map lookup by a secret: the codes are random 192-bit values, so timing reveals nothing usable.
    const expires = this.codes.get(code);
    this.codes.delete(code);
    return expires !== undefined && expires > now;
  }

  get size(): number {
    return this.codes.size;
  }

  private prune(now: number): void {
    for (const [code, expires] of this.codes) if (expires <= now) this.codes.delete(code);
  }
}

/** Signed session cookie values. */
export class SessionCookies {
  private readonly key: Buffer;

  /** `token` and `lanPassword` key the MAC: changing either signs every browser out. */
  constructor(token: string, lanPassword?: string) {
    this.key = createHmac('sha256', token)
      .update('mooring browser session v1\0')
      .update(lanPassword ?? '')
      .digest();
  }

  issue(now = Date.now()): string {
    const body = `v1.${Math.floor(now / 1000).toString(36)}.${randomBytes(16).toString('base64url')}`;
    return `${body}.${this.mac(body)}`;
  }

  valid(value: string | undefined, now = Date.now()): boolean {
    if (value === undefined || value.length > 200) return false;
    const m = /^(v1\.([0-9a-z]{1,10})\.[A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{43})$/.exec(value);
    if (!m) return false;
    const expected = Buffer.from(this.mac(m[1]!));
    const given = Buffer.from(m[3]!);
    if (!timingSafeEqual(expected, given)) return false;
    const issued = parseInt(m[2]!, 36) * 1000;
    return issued <= now + 60_000 && now - issued < SESSION_MAX_AGE_MS;
  }

  private mac(body: string): string {
    return createHmac('sha256', this.key).update(body).digest('base64url');
  }
}

/** `Set-Cookie` for a new session (Secure when the server speaks TLS). */
export function sessionCookie(value: string, secure: boolean): string {
  const maxAge = Math.floor(SESSION_MAX_AGE_MS / 1000);
  return `${SESSION_COOKIE}=${value}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${maxAge}${secure ? '; Secure' : ''}`;
}

export function clearedSessionCookie(secure: boolean): string {
  return `${SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0${secure ? '; Secure' : ''}`;
}

/** Failed-login counting: per address and in total, over a sliding window. */
export class LoginRateLimiter {
  private readonly failures = new Map<string, number[]>();
  private total: number[] = [];

  /** 0 when a login may be tried now, else the seconds to wait. */
  retryAfter(address: string, now = Date.now()): number {
    this.prune(now);
    const mine = this.failures.get(address) ?? [];
    const waits: number[] = [];
    if (mine.length >= MAX_FAILURES_PER_ADDRESS) waits.push(mine[0]! + LOGIN_WINDOW_MS - now);
    if (this.total.length >= MAX_FAILURES_TOTAL) {
      waits.push(this.total[0]! + LOGIN_WINDOW_MS - now);
    }
    return waits.length === 0 ? 0 : Math.max(1, Math.ceil(Math.max(...waits) / 1000));
  }

  failed(address: string, now = Date.now()): void {
    const mine = this.failures.get(address) ?? [];
    mine.push(now);
    this.failures.set(address, mine);
    this.total.push(now);
  }

  private prune(now: number): void {
    const fresh = (t: number): boolean => now - t < LOGIN_WINDOW_MS;
    this.total = this.total.filter(fresh);
    for (const [address, times] of this.failures) {
      const kept = times.filter(fresh);
      if (kept.length === 0) this.failures.delete(address);
      else this.failures.set(address, kept);
    }
  }
}

/**
 * Checks a LAN password without keeping it in the clear in memory longer than needed and in
 * constant time: both sides go through scrypt with a per-process salt, then timingSafeEqual.
 */
export class PasswordCheck {
  private constructor(
    private readonly salt: Buffer,
    private readonly hash: Buffer,
  ) {}

  static async of(password: string): Promise<PasswordCheck> {
    const salt = randomBytes(16);
    return new PasswordCheck(salt, await scryptAsync(password, salt, 32));
  }

  async matches(given: string): Promise<boolean> {
    if (given.length > MAX_LAN_PASSWORD_LENGTH) return false;
    return timingSafeEqual(await scryptAsync(given, this.salt, 32), this.hash);
  }
}

/** What is wrong with a LAN password, or undefined when it is acceptable. */
export function lanPasswordProblem(password: string): string | undefined {
  if (password.length < MIN_LAN_PASSWORD_LENGTH) {
    return `it is shorter than ${MIN_LAN_PASSWORD_LENGTH} characters`;
  }
  if (password.length > MAX_LAN_PASSWORD_LENGTH) {
    return `it is longer than ${MAX_LAN_PASSWORD_LENGTH} characters`;
  }
  return undefined;
}

/** The sign-in page: static HTML, no script, posting to /login only. */
export function loginPage(o: { lan: boolean; message?: string }): string {
  const what = o.lan
    ? 'the agent’s LAN password (or its access token)'
    : 'the access token (in the file <code>api-token</code> of Mooring’s data folder), or open the login link <code>mooring agent</code> printed';
  const message = o.message ? `<p role="alert"><strong>${escapeHtml(o.message)}</strong></p>` : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Sign in – Mooring</title></head>
<body><h1>Mooring agent</h1>${message}
<form method="post" action="/login">
<p><label for="secret">Enter ${what}:</label></p>
<p><input id="secret" name="secret" type="password" autocomplete="current-password" required maxlength="${MAX_LAN_PASSWORD_LENGTH}" autofocus></p>
<p><button type="submit">Sign in</button></p>
</form></body></html>
`;
}

/** CSP of the login page: nothing loads, the form posts to this server only. */
export const LOGIN_CSP = "default-src 'none'; form-action 'self'; frame-ancestors 'none'";
