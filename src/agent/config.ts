/**
 * The settings catalogue: what a user may set, in which units, and how it is stored.
 *
 * Users write strings ("24h", "01:00-06:00", "any", "true", "https://ntfy.sh/topic"); each is
 * parsed into one canonical JSON value (milliseconds, {start, end}, booleans, integers, a URL or
 * null) kept in the history's settings table under scope 'global' or the device's UDID, and
 * formatted back for display. Values read back are validated again: a damaged row falls back to
 * the default and is reported, so a bad database value can never stop the agent.
 */
import path from 'node:path';
import { GLOBAL_SCOPE, type History } from '../history';
import type { PolicyOverrides } from '../scheduler/policy';
import { DEFAULT_POLICY } from '../scheduler/policy';
import { parseWindow, type WindowSpec } from '../scheduler/window';
import { parsePeriodHours, PERIOD_UNITS, type RetentionPolicy } from '../store/retention';
import type { RoomPolicy } from '../store/make-room';
import { MooringError } from '../util/errors';
import type { ConfigValues } from './types';

export type Scope = 'global' | 'device';

export interface GlobalSettings {
  /** The scheduler's overrides, incl. paused. */
  overrides: PolicyOverrides;
  concurrency: number;
  webhook: string | null;
  /** NO_RECENT_BACKUP after this long without a successful backup. */
  staleAfterMs: number;
  /** Where backups go; null: the agent's default folder. */
  backupDir: string | null;
}

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

export const MIN_INTERVAL_MS = 10 * SECOND;
export const MAX_CONCURRENCY = 8;
export const MAX_RETRIES_PER_DAY = 50;
/** Longest duration accepted anywhere (a year): bounds arithmetic on user input. */
export const MAX_DURATION_MS = 366 * DAY;
/** Longest webhook URL accepted. */
export const MAX_WEBHOOK_URL_CHARS = 2048;
/** Longest user string looked at (longer ones are refused before parsing). */
const MAX_INPUT_CHARS = 4096;
/** Longest retention period short of "forever" (a century): bounds arithmetic on user input. */
export const MAX_RETENTION_MS = 36_500 * DAY;
/** Longest backup folder path accepted. */
export const MAX_PATH_CHARS = 1024;
/** The stored value of a retention period kept without end. */
export const FOREVER = 'forever';
/** The shown (and settable) value of backup-dir when it is the agent's default folder. */
export const DEFAULT_DIR = 'default';

export const DEFAULT_CONCURRENCY = 1;
export const DEFAULT_STALE_AFTER_MS = 3 * DAY;

type Kind = 'duration' | 'window' | 'boolean' | 'integer' | 'webhook' | 'retention' | 'path';

interface KeySpec {
  kind: Kind;
  /** Bounds for durations (ms) and integers. */
  min?: number;
  max?: number;
  /** Settable per device too (else global only). */
  device: boolean;
  /** The built-in default, canonical. */
  def: unknown;
  /** What the user reads in an error: what is accepted. */
  accepts: string;
}

const KEYS: Record<string, KeySpec> = {
  interval: {
    kind: 'duration',
    min: MIN_INTERVAL_MS,
    max: MAX_DURATION_MS,
    device: true,
    def: DEFAULT_POLICY.minIntervalMs,
    accepts: 'a duration of at least 10s like "24h", "90m" or "1h30m"',
  },
  window: {
    kind: 'window',
    device: true,
    def: 'any',
    accepts: 'HH:MM-HH:MM or "any"',
  },
  enabled: { kind: 'boolean', device: true, def: true, accepts: '"true" or "false"' },
  paused: { kind: 'boolean', device: false, def: false, accepts: '"true" or "false"' },
  concurrency: {
    kind: 'integer',
    min: 1,
    max: MAX_CONCURRENCY,
    device: false,
    def: DEFAULT_CONCURRENCY,
    accepts: `a whole number from 1 to ${MAX_CONCURRENCY}`,
  },
  'retries-per-day': {
    kind: 'integer',
    min: 1,
    max: MAX_RETRIES_PER_DAY,
    device: false,
    def: DEFAULT_POLICY.retry.maxPerDay,
    accepts: `a whole number from 1 to ${MAX_RETRIES_PER_DAY}`,
  },
  // The first retry after a failure; each further failure doubles the wait, up to 4 h (or this).
  'retry-after': {
    kind: 'duration',
    min: 10 * 1000,
    max: DAY,
    device: false,
    def: DEFAULT_POLICY.retry.initialDelayMs,
    accepts: 'a duration from 10s to 1d like "15m", "1h" or "30s"',
  },
  'passcode-wait': {
    kind: 'duration',
    min: 0,
    max: 7 * DAY,
    device: false,
    def: DEFAULT_POLICY.passcode.waitForUnlockMs,
    accepts: 'a duration up to 7d like "2h", "30m" or "0s" (do not wait)',
  },
  webhook: {
    kind: 'webhook',
    device: false,
    def: null,
    accepts: 'an http:// or https:// URL, or "off"',
  },
  'stale-after': {
    kind: 'duration',
    min: HOUR,
    max: MAX_DURATION_MS,
    device: false,
    def: DEFAULT_STALE_AFTER_MS,
    accepts: 'a duration of at least 1h like "3d" or "36h"',
  },
  // Retention (src/store/retention.ts): every snapshot younger than keep-all, then one a day
  // younger than keep-daily, then one a week younger than keep-weekly; latest and pinned always.
  'keep-all': {
    kind: 'retention',
    max: MAX_RETENTION_MS,
    device: true,
    def: 14 * DAY,
    accepts: 'a period like "14d", "2w", "36h", "0" or "forever"',
  },
  'keep-daily': {
    kind: 'retention',
    max: MAX_RETENTION_MS,
    device: true,
    def: 60 * DAY,
    accepts: 'a period like "60d", "8w", "2m" (months) or "forever"',
  },
  'keep-weekly': {
    kind: 'retention',
    max: MAX_RETENTION_MS,
    device: true,
    def: 365 * DAY,
    accepts: 'a period like "1y", "12m" (months), "52w" or "forever"',
  },
  // D48: when the device lacks room, the oldest snapshots (never pinned, never the latest) may go
  // beyond what retention lets go. Off: only what retention no longer keeps goes.
  'make-room': { kind: 'boolean', device: true, def: false, accepts: '"true" or "false"' },
  'backup-dir': {
    kind: 'path',
    device: false,
    def: null,
    accepts: `an absolute folder path, or "${DEFAULT_DIR}"`,
  },
};

/** The retention keys, shortest period first (each must be at least the one before). */
export const RETENTION_KEYS = ['keep-all', 'keep-daily', 'keep-weekly'] as const;

export const GLOBAL_KEYS: readonly string[] = Object.freeze(Object.keys(KEYS));
export const DEVICE_KEYS: readonly string[] = Object.freeze(
  Object.keys(KEYS).filter((k) => KEYS[k]!.device),
);

function usage(message: string): MooringError {
  return new MooringError('USAGE', message);
}

/** Printable and short, for quoting user input in an error. */
function shown(value: string): string {
  const s = value.length > 80 ? `${value.slice(0, 79)}…` : value;
  return JSON.stringify(s);
}

function specOf(key: string, scope: Scope): KeySpec {
  const spec = Object.prototype.hasOwnProperty.call(KEYS, key) ? KEYS[key] : undefined;
  if (spec === undefined) {
    const keys = (scope === 'device' ? DEVICE_KEYS : GLOBAL_KEYS).join(', ');
    throw usage(`unknown setting ${shown(String(key))}: settings are ${keys}`);
  }
  if (scope === 'device' && !spec.device) {
    throw usage(
      `${key} is a global setting and cannot be set per device (device settings: ${DEVICE_KEYS.join(', ')})`,
    );
  }
  return spec;
}

// ---- durations ----

const UNIT_MS: Record<string, number> = { d: DAY, h: HOUR, m: MINUTE, s: SECOND };

/** "24h", "90m", "1h30m", "1d 12h", "0s" → ms; undefined when not a duration. */
export function parseDuration(text: string): number | undefined {
  const s = text.trim().toLowerCase();
  const m = /^(?:(\d{1,6})d)? *(?:(\d{1,6})h)? *(?:(\d{1,6})m)? *(?:(\d{1,9})s)?$/.exec(s);
  if (m === null || s === '') return undefined;
  let ms = 0;
  (['d', 'h', 'm', 's'] as const).forEach((u, i) => {
    const n = m[i + 1];
    if (n !== undefined) ms += Number(n) * UNIT_MS[u]!;
  });
  return ms;
}

/** ms → "24h", "1h30m", "3d", "45s" (days only from 48 h: "24h" reads better than "1d"). */
export function formatDuration(ms: number): string {
  let rest = Math.round(ms / SECOND) * SECOND;
  if (rest === 0) return '0s';
  let out = '';
  if (rest >= 2 * DAY && rest % HOUR === 0) {
    out += `${Math.floor(rest / DAY)}d`;
    rest %= DAY;
  }
  for (const [u, size] of [
    ['h', HOUR],
    ['m', MINUTE],
    ['s', SECOND],
  ] as const) {
    if (rest >= size) {
      out += `${Math.floor(rest / size)}${u}`;
      rest %= size;
    }
  }
  return out;
}

// ---- canonical values ----

/** Throws a USAGE error unless `v` is a valid canonical value for `spec`; returns it. */
function checkCanonical(key: string, spec: KeySpec, v: unknown): unknown {
  const bad = (): never => {
    const got = typeof v === 'string' ? v : (JSON.stringify(v) ?? 'nothing');
    throw usage(`${key}: expected ${spec.accepts}, got ${shown(got)}`);
  };
  switch (spec.kind) {
    case 'duration':
    case 'integer':
      if (
        typeof v !== 'number' ||
        !Number.isInteger(v) ||
        v < (spec.min ?? 0) ||
        v > (spec.max ?? Number.MAX_SAFE_INTEGER)
      ) {
        bad();
      }
      return v;
    case 'boolean':
      if (typeof v !== 'boolean') bad();
      return v;
    case 'window':
      if (v === 'any') return v;
      if (
        typeof v !== 'object' ||
        v === null ||
        typeof (v as { start?: unknown }).start !== 'string' ||
        typeof (v as { end?: unknown }).end !== 'string'
      ) {
        bad();
      }
      parseWindow(v as { start: string; end: string });
      return { start: (v as { start: string }).start, end: (v as { end: string }).end };
    case 'webhook':
      if (v === null) return v;
      if (typeof v !== 'string') bad();
      return checkWebhookUrl(key, spec, v as string);
    case 'retention':
      if (v === FOREVER) return v;
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > (spec.max ?? 0)) bad();
      // Periods are whole hours. Less came from a version that read "m" as minutes: most likely
      // months were meant, and minutes would prune every backup but the latest.
      if ((v as number) % HOUR !== 0) {
        throw usage(
          `${key}: ${formatDuration(v as number)} is not a whole number of hours, and "m" now means months: set it again`,
        );
      }
      return v;
    case 'path':
      if (v === null) return v;
      if (typeof v !== 'string') bad();
      return checkFolderPath(key, spec, v as string);
  }
}

/** An absolute, normalised folder path; what is on the disk is checked by the agent. */
function checkFolderPath(key: string, spec: KeySpec, s: string): string {
  if (s.length === 0 || s.length > MAX_PATH_CHARS || s.includes('\u0000')) {
    throw usage(`${key}: expected ${spec.accepts} of at most ${MAX_PATH_CHARS} characters`);
  }
  if (!path.isAbsolute(s)) {
    throw usage(`${key}: ${shown(s)} is not an absolute path: expected ${spec.accepts}`);
  }
  const normal = path.resolve(s);
  if (normal === path.parse(normal).root) {
    throw usage(`${key}: ${shown(s)} is the root of a disk: choose a folder on it`);
  }
  return normal;
}

function checkWebhookUrl(key: string, spec: KeySpec, s: string): string {
  if (s.length > MAX_WEBHOOK_URL_CHARS) {
    throw usage(`${key}: the URL is longer than ${MAX_WEBHOOK_URL_CHARS} characters`);
  }
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    throw usage(`${key}: expected ${spec.accepts}, got ${shown(s)}`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw usage(`${key}: expected ${spec.accepts}, got ${shown(s)} (${u.protocol} URL)`);
  }
  if (u.username !== '' || u.password !== '') {
    // Would be stored and shown in plain text; ntfy and friends take a token header instead.
    throw usage(`${key}: the URL must not contain a user name or password`);
  }
  return u.href;
}

/** "01:00-06:00" (also "1:00 - 6:00") → {start: "01:00", end: "06:00"} or 'any'. */
function parseWindowString(key: string, spec: KeySpec, s: string): WindowSpec {
  const t = s.trim().toLowerCase();
  if (t === 'any' || t === 'any time' || t === 'anytime') return 'any';
  const m = /^(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})$/.exec(t);
  const bad = usage(`${key}: expected ${spec.accepts}, got ${shown(s)}`);
  if (m === null) throw bad;
  const pad = (h: string, mi: string): string => `${h.padStart(2, '0')}:${mi}`;
  const w = { start: pad(m[1]!, m[2]!), end: pad(m[3]!, m[4]!) };
  try {
    parseWindow(w);
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    throw usage(`${key}: expected ${spec.accepts}, got ${shown(s)} (${why})`);
  }
  return w;
}

/** User string → canonical JSON value stored in history settings; USAGE error saying what is accepted. */
export function parseSetting(key: string, value: string, scope: Scope): unknown {
  const spec = specOf(key, scope);
  if (typeof value !== 'string' || value.length > MAX_INPUT_CHARS) {
    throw usage(`${key}: expected ${spec.accepts}`);
  }
  const t = value.trim();
  switch (spec.kind) {
    case 'duration': {
      const ms = parseDuration(t);
      if (ms === undefined) {
        throw usage(`${key}: expected ${spec.accepts} (units d, h, m, s), got ${shown(value)}`);
      }
      if (ms < (spec.min ?? 0) || ms > (spec.max ?? MAX_DURATION_MS)) {
        throw usage(
          `${key}: ${shown(value)} is out of range: expected ${spec.accepts}` +
            (spec.max !== undefined ? ` and at most ${formatDuration(spec.max)}` : ''),
        );
      }
      return ms;
    }
    case 'integer': {
      const n = /^\d{1,6}$/.test(t) ? Number(t) : NaN;
      if (!(n >= (spec.min ?? 0) && n <= (spec.max ?? Infinity))) {
        throw usage(`${key}: expected ${spec.accepts}, got ${shown(value)}`);
      }
      return n;
    }
    case 'boolean': {
      const l = t.toLowerCase();
      if (l === 'true' || l === 'on' || l === 'yes') return true;
      if (l === 'false' || l === 'off' || l === 'no') return false;
      throw usage(`${key}: expected ${spec.accepts}, got ${shown(value)}`);
    }
    case 'window':
      return parseWindowString(key, spec, value);
    case 'webhook':
      if (t.toLowerCase() === 'off' || t === '') return null;
      return checkWebhookUrl(key, spec, t);
    case 'retention': {
      const hours = parsePeriodHours(t);
      if (hours === Infinity) return FOREVER;
      if (hours === undefined) {
        throw usage(`${key}: expected ${spec.accepts} (${PERIOD_UNITS}), got ${shown(value)}`);
      }
      const ms = hours * HOUR;
      if (ms > (spec.max ?? 0)) {
        throw usage(`${key}: ${shown(value)} is longer than a century: use "forever"`);
      }
      return ms;
    }
    case 'path':
      if (t.toLowerCase() === DEFAULT_DIR) return null;
      return checkFolderPath(key, spec, t);
  }
}

/** Canonical value → the string the user reads (and could set again). */
export function formatSetting(key: string, canonical: unknown): string {
  const spec = specOf(key, 'global');
  const v = checkCanonical(key, spec, canonical);
  switch (spec.kind) {
    case 'duration':
      return formatDuration(v as number);
    case 'integer':
      return String(v);
    case 'boolean':
      return v === true ? 'true' : 'false';
    case 'window':
      return v === 'any'
        ? 'any'
        : `${(v as { start: string }).start}-${(v as { end: string }).end}`;
    case 'webhook':
      return v === null ? 'off' : (v as string);
    case 'retention':
      return v === FOREVER ? FOREVER : formatDuration(v as number);
    case 'path':
      return v === null ? DEFAULT_DIR : (v as string);
  }
}

// ---- reading and writing ----

/** Called once per damaged stored value (which then counts as unset). */
export type DamagedSettingHandler = (problem: string) => void;

function scopeOf(udid: string | undefined): string {
  return udid === undefined ? GLOBAL_SCOPE : udid;
}

/** The stored canonical value of `key`, re-validated; undefined when unset or damaged. */
function readStored(
  h: History,
  scope: string,
  key: string,
  onDamaged: DamagedSettingHandler | undefined,
): unknown {
  const spec = KEYS[key]!;
  let raw: unknown;
  try {
    raw = h.getSetting(scope, key);
  } catch (e) {
    onDamaged?.(
      `setting ${key} (${scope}) cannot be read: ${(e as Error).message}; using the default`,
    );
    return undefined;
  }
  if (raw === undefined) return undefined;
  try {
    return checkCanonical(key, spec, raw);
  } catch (e) {
    onDamaged?.(
      `setting ${key} (${scope}) holds an invalid value: ${(e as Error).message}; using the default`,
    );
    return undefined;
  }
}

function overridesFrom(get: (key: string) => unknown, global: boolean): PolicyOverrides {
  const o: PolicyOverrides = {};
  const interval = get('interval');
  if (interval !== undefined) o.minIntervalMs = interval as number;
  const window = get('window');
  if (window !== undefined) o.window = window as WindowSpec;
  const enabled = get('enabled');
  if (enabled !== undefined) o.enabled = enabled as boolean;
  if (global) {
    const paused = get('paused');
    if (paused !== undefined) o.paused = paused as boolean;
    const retries = get('retries-per-day');
    if (retries !== undefined) o.retry = { maxPerDay: retries as number };
    const first = get('retry-after') as number | undefined;
    if (first !== undefined) {
      o.retry = {
        ...o.retry,
        initialDelayMs: first,
        maxDelayMs: Math.max(first, DEFAULT_POLICY.retry.maxDelayMs),
      };
    }
    const wait = get('passcode-wait');
    if (wait !== undefined) o.passcode = { waitForUnlockMs: wait as number };
  }
  return o;
}

export function readGlobalSettings(h: History, onDamaged?: DamagedSettingHandler): GlobalSettings {
  const get = (key: string): unknown => readStored(h, GLOBAL_SCOPE, key, onDamaged);
  return {
    overrides: overridesFrom(get, true),
    concurrency: (get('concurrency') as number | undefined) ?? DEFAULT_CONCURRENCY,
    webhook: (get('webhook') as string | null | undefined) ?? null,
    staleAfterMs: (get('stale-after') as number | undefined) ?? DEFAULT_STALE_AFTER_MS,
    backupDir: (get('backup-dir') as string | null | undefined) ?? null,
  };
}

/** A retention period in days as src/store takes it (Infinity for "forever"). */
function periodDays(v: unknown): number {
  return v === FOREVER ? Infinity : (v as number) / DAY;
}

/**
 * The retention policy of a device (its own periods, else the global ones, else the defaults)
 * or the global one (udid undefined). Each period is at least the one before it: a combination
 * that shrinks (a device's keep-daily under a newer global keep-all) keeps the longer period.
 */
export function readRetention(
  h: History,
  udid?: string,
  onDamaged?: DamagedSettingHandler,
): RetentionPolicy {
  const [all, daily, weekly] = RETENTION_KEYS.map((key) => {
    const own = udid === undefined ? undefined : readStored(h, udid, key, onDamaged);
    return periodDays(own ?? readStored(h, GLOBAL_SCOPE, key, onDamaged) ?? KEYS[key]!.def);
  }) as [number, number, number];
  const dailyDays = Math.max(all, daily);
  return { keepAllDays: all, dailyDays, weeklyDays: Math.max(dailyDays, weekly) };
}

/** D48: what may go when the device lacks room (a device's own make-room, else the global). */
export function readRoomPolicy(
  h: History,
  udid: string,
  onDamaged?: DamagedSettingHandler,
): RoomPolicy {
  const own = readStored(h, udid, 'make-room', onDamaged);
  const v = own ?? readStored(h, GLOBAL_SCOPE, 'make-room', onDamaged) ?? KEYS['make-room']!.def;
  return { retention: readRetention(h, udid, onDamaged), beyondRetention: v === true };
}

export function readDeviceOverrides(
  h: History,
  udid: string,
  onDamaged?: DamagedSettingHandler,
): PolicyOverrides {
  return overridesFrom((key) => readStored(h, udid, key, onDamaged), false);
}

/**
 * Global (udid undefined: every global key) or a device's effective values (every device key:
 * the device's own, else the global setting, else the default), as strings.
 */
export function effectiveConfig(
  h: History,
  udid?: string,
  onDamaged?: DamagedSettingHandler,
  /** Shown instead of a key's built-in default (backup-dir: the agent's own folder). */
  shownDefaults?: Readonly<Record<string, string>>,
): ConfigValues {
  const out: ConfigValues = {};
  for (const key of udid === undefined ? GLOBAL_KEYS : DEVICE_KEYS) {
    const own = udid === undefined ? undefined : readStored(h, udid, key, onDamaged);
    const v = own ?? readStored(h, GLOBAL_SCOPE, key, onDamaged);
    const fallback = shownDefaults?.[key];
    out[key] =
      v === undefined && fallback !== undefined
        ? fallback
        : formatSetting(key, v ?? KEYS[key]!.def);
  }
  return out;
}

/**
 * Validates changes as applyConfig would, writing nothing: each key and value, and the order of
 * the retention periods. Returns the canonical values (undefined: reset).
 */
export function checkConfig(
  h: History,
  changes: Record<string, string | null>,
  udid?: string,
): [key: string, value: unknown][] {
  if (typeof changes !== 'object' || changes === null || Array.isArray(changes)) {
    throw usage('expected settings as {key: "value" or null}');
  }
  const scope: Scope = udid === undefined ? 'global' : 'device';
  const parsed: [key: string, value: unknown][] = [];
  for (const [key, value] of Object.entries(changes)) {
    specOf(key, scope);
    if (value === null) parsed.push([key, undefined]);
    else if (typeof value === 'string') parsed.push([key, parseSetting(key, value, scope)]);
    else throw usage(`${key}: expected a string value, or null to reset it`);
  }
  checkRetentionOrder(h, parsed, udid);
  return parsed;
}

/** Validates every change first (nothing written if one is bad), then writes; null resets a key. */
export function applyConfig(
  h: History,
  changes: Record<string, string | null>,
  udid?: string,
): void {
  const parsed = checkConfig(h, changes, udid);
  const where = scopeOf(udid);
  h.batch(() => {
    for (const [key, v] of parsed) {
      if (v === undefined) h.deleteSetting(where, key);
      else h.setSetting(where, key, v);
    }
  });
}

/**
 * The periods must grow (keep-all ≤ keep-daily ≤ keep-weekly) in the scope being written, with
 * the changes applied: a USAGE error naming both keys otherwise.
 */
function checkRetentionOrder(
  h: History,
  parsed: readonly (readonly [key: string, value: unknown])[],
  udid: string | undefined,
): void {
  if (!parsed.some(([key]) => (RETENTION_KEYS as readonly string[]).includes(key))) return;
  const changed = new Map(parsed);
  const canonical = RETENTION_KEYS.map((key): unknown => {
    if (changed.has(key)) {
      const v = changed.get(key);
      if (v !== undefined) return v;
      // Reset: the device falls back to the global value, the global one to the default.
      if (udid !== undefined) return readStored(h, GLOBAL_SCOPE, key, undefined) ?? KEYS[key]!.def;
      return KEYS[key]!.def;
    }
    const own = udid === undefined ? undefined : readStored(h, udid, key, undefined);
    return own ?? readStored(h, GLOBAL_SCOPE, key, undefined) ?? KEYS[key]!.def;
  });
  for (let i = 1; i < RETENTION_KEYS.length; i++) {
    if (periodDays(canonical[i]) < periodDays(canonical[i - 1])) {
      const [shorter, longer] = [RETENTION_KEYS[i - 1]!, RETENTION_KEYS[i]!];
      throw usage(
        `${longer} (${formatSetting(longer, canonical[i])}) must be at least ${shorter} (${formatSetting(shorter, canonical[i - 1])}): ` +
          `snapshots are kept all for ${shorter}, then one a day up to keep-daily, then one a week up to keep-weekly`,
      );
    }
  }
}
