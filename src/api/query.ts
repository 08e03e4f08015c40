/**
 * Query parameters of the API, validated before they reach the agent: unknown or repeated
 * parameters, out-of-range numbers and unknown enum values are refused with a message saying
 * what is accepted.
 */
import { MAX_LOG_TAIL_BYTES } from '../util/log-file';
import {
  ATTEMPT_OUTCOMES,
  MAX_PAGE_SIZE,
  NOTIFICATION_KINDS,
  SEVERITIES,
  type AttemptOutcome,
  type AttemptQuery,
  type HistoryQuery,
  type NotificationKind,
  type Severity,
} from '../history';
import { isUdid, UDID_EXAMPLE } from '../util/udid';
import { badRequest } from './http-error';

export function checkUdid(v: string, what = 'udid'): string {
  if (!isUdid(v)) {
    throw badRequest(
      `${what}: "${v.slice(0, 80)}" is not a UDID (expected ${UDID_EXAMPLE} or 40 hex digits)`,
    );
  }
  return v;
}

/** The parameters as a map; any name not in `allowed`, or given twice, is refused. */
export function queryParams(
  search: URLSearchParams,
  allowed: readonly string[],
): Map<string, string> {
  const out = new Map<string, string>();
  for (const [k, v] of search) {
    if (!allowed.includes(k)) {
      const accepted = allowed.length ? `accepted: ${allowed.join(', ')}` : 'none are accepted';
      throw badRequest(`unknown query parameter "${k.slice(0, 40)}" (${accepted})`);
    }
    if (out.has(k)) throw badRequest(`query parameter "${k}" given twice`);
    out.set(k, v);
  }
  return out;
}

function intParam(
  v: string | undefined,
  name: string,
  min: number,
  max: number,
): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!/^\d{1,16}$/.test(v) || n < min || n > max) {
    throw badRequest(`${name}: expected an integer from ${min} to ${max}, got "${v.slice(0, 40)}"`);
  }
  return n;
}

function enumParam<T extends string>(
  v: string | undefined,
  name: string,
  values: readonly T[],
): T | undefined {
  if (v === undefined) return undefined;
  if (!(values as readonly string[]).includes(v)) {
    throw badRequest(`${name}: expected one of ${values.join(', ')}, got "${v.slice(0, 40)}"`);
  }
  return v as T;
}

const paging = (p: Map<string, string>): { before?: number; limit?: number } => {
  const before = intParam(p.get('before'), 'before', 1, Number.MAX_SAFE_INTEGER);
  const limit = intParam(p.get('limit'), 'limit', 1, MAX_PAGE_SIZE);
  return { ...(before === undefined ? {} : { before }), ...(limit === undefined ? {} : { limit }) };
};

const optionalUdid = (p: Map<string, string>): { udid?: string } => {
  const udid = p.get('udid');
  return udid === undefined ? {} : { udid: checkUdid(udid) };
};

export function historyQuery(search: URLSearchParams): HistoryQuery {
  const p = queryParams(search, ['udid', 'severity', 'kind', 'before', 'limit']);
  const severity = enumParam<Severity>(p.get('severity'), 'severity', SEVERITIES);
  const kind = enumParam<NotificationKind>(p.get('kind'), 'kind', NOTIFICATION_KINDS);
  return {
    ...optionalUdid(p),
    ...(severity === undefined ? {} : { severity }),
    ...(kind === undefined ? {} : { kind }),
    ...paging(p),
  };
}

export function attemptQuery(search: URLSearchParams): AttemptQuery {
  const p = queryParams(search, ['udid', 'outcome', 'before', 'limit']);
  const outcome = enumParam<AttemptOutcome>(p.get('outcome'), 'outcome', ATTEMPT_OUTCOMES);
  return { ...optionalUdid(p), ...(outcome === undefined ? {} : { outcome }), ...paging(p) };
}

/** `?udid=U` or nothing (config routes). */
export function udidQuery(search: URLSearchParams): string | undefined {
  return optionalUdid(queryParams(search, ['udid'])).udid;
}

/** `?bytes=N`: how much of the log's end to send (GET /api/log). */
export function logQuery(search: URLSearchParams): { maxBytes?: number } {
  const bytes = intParam(
    queryParams(search, ['bytes']).get('bytes'),
    'bytes',
    1,
    MAX_LOG_TAIL_BYTES,
  );
  return bytes === undefined ? {} : { maxBytes: bytes };
}
