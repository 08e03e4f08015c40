/**
 * The API's routes: one line per method and path, each a thin translation between HTTP and one
 * AgentService call. Validation of parameters and bodies happens here, before the agent sees them.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AgentService } from '../agent/types';
import { MAX_PAGE_SIZE, type MarkReadOptions } from '../history';
import { isPlainObject, readJsonBody, readSwitchBody } from './body';
import type { LoginCodes } from './browser-login';
import { checkConfigChanges } from './config-changes';
import { HttpError, badRequest } from './http-error';
import { attemptQuery, checkUdid, historyQuery, logQuery, queryParams, udidQuery } from './query';
import { snapshotRoutes } from './snapshot-routes';
import { encryptionRoutes } from './encryption-routes'; // H8c
import { MAX_EVENT_STREAMS, type EventStreams } from './sse';

export interface RouteContext {
  params: string[];
  search: URLSearchParams;
  req: IncomingMessage;
  res: ServerResponse;
}

/** A JSON answer, or 'streamed' when the handler wrote the response itself. */
export type Reply = { status?: number; body: unknown } | 'streamed';

export interface Route {
  method: 'GET' | 'POST' | 'PATCH';
  path: RegExp;
  handle: (c: RouteContext) => Reply | Promise<Reply>;
}

const UDID = '([^/]+)';

const ok = (body: unknown): Reply => ({ body });

function noQuery(c: RouteContext, answer: () => unknown): Reply {
  queryParams(c.search, []);
  return ok(answer());
}

/** Routes that take no parameters and no body still read (and bound) what was sent. */
async function nothingSent(c: RouteContext): Promise<void> {
  queryParams(c.search, []);
  const body = await readJsonBody(c.req);
  if (body !== undefined && !(isPlainObject(body) && Object.keys(body).length === 0)) {
    throw badRequest('this request takes no body');
  }
}

function udidParam(c: RouteContext): string {
  return checkUdid(decodeURIComponent(c.params[0] ?? ''));
}

const positiveId = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) > 0;

async function markReadBody(c: RouteContext): Promise<MarkReadOptions> {
  queryParams(c.search, []);
  const body = (await readJsonBody(c.req)) ?? {};
  if (!isPlainObject(body)) throw badRequest('expected a JSON object {udid?, upTo?, ids?}');
  const out: MarkReadOptions = {};
  for (const [k, v] of Object.entries(body)) {
    if (k === 'udid' && typeof v === 'string') out.udid = checkUdid(v);
    else if (k === 'udid' && v === null) out.udid = null;
    else if (k === 'upTo' && positiveId(v)) out.upTo = v;
    else if (
      k === 'ids' &&
      Array.isArray(v) &&
      v.length <= MAX_PAGE_SIZE &&
      v.every((x) => positiveId(x))
    ) {
      out.ids = v as number[];
    } else {
      throw badRequest(
        `"${k.slice(0, 40)}": expected udid (a UDID, or null for Mooring's own), upTo (a positive id) or ids (at most ${MAX_PAGE_SIZE} positive ids)`,
      );
    }
  }
  return out;
}

/** `{on: true|false}` and nothing else. */
async function wifiBody(c: RouteContext): Promise<boolean> {
  queryParams(c.search, []);
  return readSwitchBody(c.req, 'on');
}

async function configChanges(c: RouteContext): Promise<Record<string, string | null>> {
  return checkConfigChanges(await readJsonBody(c.req), badRequest);
}

/** Every /api route; the server checks Host, Origin and the token before any of them runs. */
export function apiRoutes(
  service: AgentService,
  streams: EventStreams,
  codes: LoginCodes,
): Route[] {
  return [
    { method: 'GET', path: /^\/api\/status$/, handle: (c) => noQuery(c, () => service.status()) },
    { method: 'GET', path: /^\/api\/devices$/, handle: (c) => noQuery(c, () => service.devices()) },
    {
      method: 'GET',
      path: new RegExp(`^/api/devices/${UDID}$`),
      handle: (c) => {
        queryParams(c.search, []);
        const udid = udidParam(c);
        const d = service.device(udid);
        if (!d) throw new HttpError(404, 'NOT_FOUND', `no device ${udid} is known to this agent`);
        return ok(d);
      },
    },
    {
      method: 'POST',
      path: new RegExp(`^/api/devices/${UDID}/backup$`),
      handle: async (c) => {
        const udid = udidParam(c);
        await nothingSent(c);
        const r = await service.backupNow(udid);
        return { status: r.started ? 202 : 409, body: r };
      },
    },
    {
      method: 'POST',
      path: new RegExp(`^/api/devices/${UDID}/cancel$`),
      handle: async (c) => {
        const udid = udidParam(c);
        await nothingSent(c);
        return ok({ cancelled: service.cancel(udid) });
      },
    },
    {
      method: 'POST',
      path: new RegExp(`^/api/devices/${UDID}/wifi$`),
      handle: async (c) => {
        const udid = udidParam(c);
        return ok(await service.setWifi(udid, await wifiBody(c)));
      },
    },
    {
      method: 'POST',
      path: new RegExp(`^/api/devices/${UDID}/pair$`),
      handle: async (c) => {
        const udid = udidParam(c);
        await nothingSent(c);
        const r = await service.pair(udid);
        return { status: r.paired ? 200 : 409, body: r };
      },
    },
    {
      method: 'GET',
      path: /^\/api\/history$/,
      handle: (c) => ok(service.history(historyQuery(c.search))),
    },
    {
      method: 'POST',
      path: /^\/api\/history\/read$/,
      handle: async (c) => ok({ marked: service.markRead(await markReadBody(c)) }),
    },
    {
      method: 'GET',
      path: /^\/api\/log$/,
      handle: async (c) => ok(await service.readLog(logQuery(c.search))),
    },
    {
      method: 'GET',
      path: /^\/api\/attempts$/,
      handle: (c) => ok(service.attempts(attemptQuery(c.search))),
    },
    {
      method: 'GET',
      path: /^\/api\/config$/,
      handle: (c) => ok(service.getConfig(udidQuery(c.search))),
    },
    {
      method: 'PATCH',
      path: /^\/api\/config$/,
      handle: async (c) => {
        const udid = udidQuery(c.search);
        return ok(service.setConfig(await configChanges(c), udid));
      },
    },
    {
      method: 'POST',
      path: /^\/api\/pause$/,
      handle: async (c) => {
        await nothingSent(c);
        service.pause();
        return ok({ paused: service.status().paused });
      },
    },
    {
      method: 'POST',
      path: /^\/api\/resume$/,
      handle: async (c) => {
        await nothingSent(c);
        service.resume();
        return ok({ paused: service.status().paused });
      },
    },
    {
      method: 'GET',
      path: /^\/api\/events$/,
      handle: (c) => {
        queryParams(c.search, []);
        if (streams.count >= MAX_EVENT_STREAMS) {
          throw new HttpError(503, 'BUSY', `at most ${MAX_EVENT_STREAMS} event streams at a time`);
        }
        streams.attach(c.res);
        return 'streamed';
      },
    },
    {
      // A fresh one-time browser login link, for a front end that opens the browser for the person.
      method: 'POST',
      path: /^\/api\/login-link$/,
      handle: async (c) => {
        await nothingSent(c);
        return ok({ url: `http://${c.req.headers.host}/login?code=${codes.issue()}` });
      },
    },
    ...snapshotRoutes(service),
    ...encryptionRoutes(service), // H8c
  ];
}
