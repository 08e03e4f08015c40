/**
 * H8c: the API of backup encryption. Passwords travel in POST bodies only (never in a URL, a query
 * or a log line: the server logs method and path), and no message here ever quotes one. A refusal
 * the person can act on (already on, wrong password, a backup running, a password that does not
 * open the latest backup) is 409 with the agent's result; malformed requests are 400.
 *
 *   POST /api/devices/:udid/encryption                 {action, password?, oldPassword?}
 *   POST /api/devices/:udid/encryption/password        {password}
 *   POST /api/devices/:udid/encryption/recovery-sheet  {}  → {fileName, html}
 */
import type { AgentService, EncryptionAction, EncryptionRequest } from '../agent/types';
import { isPlainObject, readJsonBody } from './body';
import { badRequest } from './http-error';
import { checkUdid, queryParams } from './query';
import type { Route, RouteContext } from './routes';

/** Longest password accepted (the secret store's bound; bodies are bounded anyway). */
export const MAX_API_PASSWORD_CHARS = 1024;
const ACTIONS: readonly EncryptionAction[] = ['enable', 'change', 'disable'];

/** A password field: a non-empty string without NUL, bounded. The message never shows it. */
export function checkPasswordField(v: unknown, what: string, fail: (m: string) => Error): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > MAX_API_PASSWORD_CHARS) {
    throw fail(`${what}: expected text of 1 to ${MAX_API_PASSWORD_CHARS} characters`);
  }
  if (v.includes('\u0000')) throw fail(`${what}: contains a NUL character`);
  return v;
}

/** `{action, password?, oldPassword?}` and nothing else (also used by the Electron IPC checks). */
export function checkEncryptionRequest(
  body: unknown,
  fail: (m: string) => Error,
): EncryptionRequest {
  if (!isPlainObject(body)) {
    throw fail(
      'expected a JSON object {"action": "enable"|"change"|"disable", "password"?, "oldPassword"?}',
    );
  }
  const action = body.action;
  if (typeof action !== 'string' || !(ACTIONS as readonly string[]).includes(action)) {
    throw fail('action: expected "enable", "change" or "disable"');
  }
  const out: EncryptionRequest = { action: action as EncryptionAction };
  for (const [k, v] of Object.entries(body)) {
    if (k === 'action') continue;
    if (v === undefined || v === null) continue;
    if (k === 'password') out.password = checkPasswordField(v, 'password', fail);
    else if (k === 'oldPassword') out.oldPassword = checkPasswordField(v, 'oldPassword', fail);
    else throw fail(`"${k.slice(0, 40)}": expected only action, password and oldPassword`);
  }
  if (out.action === 'enable' && out.oldPassword !== undefined) {
    throw fail('oldPassword: turning encryption on takes a new password only');
  }
  if (out.action === 'disable' && out.password !== undefined) {
    throw fail('password: turning encryption off takes the current password only (oldPassword)');
  }
  return out;
}

/** `{password}` and nothing else. */
export function checkStorePasswordBody(body: unknown, fail: (m: string) => Error): string {
  if (!isPlainObject(body) || Object.keys(body).some((k) => k !== 'password')) {
    throw fail('expected a JSON object {"password": "…"}');
  }
  return checkPasswordField(body.password, 'password', fail);
}

function udidOf(c: RouteContext): string {
  return checkUdid(decodeURIComponent(c.params[0] ?? ''));
}

async function bodyOf(c: RouteContext): Promise<unknown> {
  queryParams(c.search, []);
  return readJsonBody(c.req);
}

export function encryptionRoutes(service: AgentService): Route[] {
  const base = '^/api/devices/([^/]+)/encryption';
  return [
    {
      method: 'POST',
      path: new RegExp(`${base}$`),
      handle: async (c) => {
        const udid = udidOf(c);
        const req = checkEncryptionRequest(await bodyOf(c), badRequest);
        const r = await service.setEncryption(udid, req);
        return { status: r.ok ? 200 : 409, body: r };
      },
    },
    {
      method: 'POST',
      path: new RegExp(`${base}/password$`),
      handle: async (c) => {
        const udid = udidOf(c);
        const password = checkStorePasswordBody(await bodyOf(c), badRequest);
        const r = await service.storeBackupPassword(udid, password);
        return { status: r.stored ? 200 : 409, body: r };
      },
    },
    {
      method: 'POST',
      path: new RegExp(`${base}/recovery-sheet$`),
      handle: async (c) => {
        const udid = udidOf(c);
        const body = await bodyOf(c);
        if (body !== undefined && !(isPlainObject(body) && Object.keys(body).length === 0)) {
          throw badRequest('this request takes no body');
        }
        return { body: await service.recoverySheet(udid) };
      },
    },
  ];
}
