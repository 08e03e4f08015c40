/**
 * The shape of a settings change list, checked the same way where it comes from outside (the
 * HTTP API's PATCH /api/config and the desktop bridge's setConfig) before the agent checks each
 * value: an object of at most MAX_CONFIG_KEYS setting names, each a string of at most
 * MAX_CONFIG_VALUE_CHARS characters, or null to reset it. Pure; the caller says how a refusal is
 * thrown (a 400 over HTTP, a USAGE error over the bridge).
 */
import { isPlainObject } from './body';

export const MAX_CONFIG_KEYS = 32;
export const MAX_CONFIG_KEY_CHARS = 64;
/** Long enough for a folder path or a webhook URL. */
export const MAX_CONFIG_VALUE_CHARS = 4096;

const CONFIG_KEY_SHAPE = /^[a-z][a-z0-9-]*$/;

function shown(v: unknown): string {
  if (typeof v === 'string') return `"${v.slice(0, 60)}"`;
  if (v === null || typeof v !== 'object') return String(v).slice(0, 60);
  return Array.isArray(v) ? 'an array' : 'an object';
}

export function checkConfigChanges(
  v: unknown,
  refuse: (message: string) => Error,
): Record<string, string | null> {
  if (!isPlainObject(v)) {
    throw refuse(`settings: expected an object such as {"interval": "12h"}, got ${shown(v)}`);
  }
  const entries = Object.entries(v);
  if (entries.length === 0) throw refuse('settings: no settings given');
  if (entries.length > MAX_CONFIG_KEYS) {
    throw refuse(`settings: at most ${MAX_CONFIG_KEYS} at once`);
  }
  const out: Record<string, string | null> = {};
  for (const [k, x] of entries) {
    if (k.length > MAX_CONFIG_KEY_CHARS || !CONFIG_KEY_SHAPE.test(k)) {
      throw refuse(
        `settings: "${k.slice(0, 40)}" is not a setting name (names are lower-case, like "interval"; \`mooring config get\` lists them)`,
      );
    }
    if (x !== null && (typeof x !== 'string' || x.length > MAX_CONFIG_VALUE_CHARS)) {
      throw refuse(
        `${k}: expected a string of at most ${MAX_CONFIG_VALUE_CHARS} characters, or null to reset`,
      );
    }
    out[k] = x;
  }
  return out;
}
