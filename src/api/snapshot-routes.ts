/**
 * Snapshot browsing over HTTP: the device's snapshots, a page of a snapshot's files, the diff of
 * two snapshots, and one file as a download (all read-only); and pinning a snapshot, the one
 * change made here. Parameters are checked here before the
 * agent sees them (it checks again); the agent's "not found" becomes 404, "encrypted" (no password that opens it) and a damaged snapshot 409.
 */
import { pipeline } from 'node:stream/promises';
import {
  MAX_FILE_PAGE,
  type AgentService,
  type FileQuery,
  type SnapshotBrowsing,
} from '../agent/types';
import { MooringError } from '../util/errors';
import { readSwitchBody } from './body';
import { HttpError, badRequest } from './http-error';
import { checkUdid, queryParams } from './query';
import type { Route, RouteContext, Reply } from './routes';

const DEVICE = '/api/devices/([^/]+)';
const SNAPSHOT = `${DEVICE}/snapshots/([^/]+)`;

function param(c: RouteContext, i: number, what: string): string {
  try {
    return decodeURIComponent(c.params[i] ?? '');
  } catch {
    throw badRequest(`${what}: not a valid URL component`);
  }
}

const udidOf = (c: RouteContext): string => checkUdid(param(c, 0, 'udid'));

function snapshotOf(c: RouteContext): string {
  const id = param(c, 1, 'snapshot');
  if (id !== 'latest' && !/^\d{8}T\d{6}Z(?:-\d{1,4})?$/.test(id)) {
    throw badRequest(
      `snapshot: "${id.slice(0, 40)}" is not a snapshot id (expected 20250101T013000Z or latest)`,
    );
  }
  return id;
}

function required(p: Map<string, string>, name: string): string {
  const v = p.get(name);
  if (v === undefined || v === '') throw badRequest(`${name} is required`);
  return v;
}

function limitOf(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!/^\d{1,7}$/.test(v) || n < 1 || n > MAX_FILE_PAGE) {
    throw badRequest(
      `limit: expected an integer from 1 to ${MAX_FILE_PAGE}, got "${v.slice(0, 40)}"`,
    );
  }
  return n;
}

/** The agent's refusals that are not plain bad input get their own status. */
async function answer(run: () => Promise<Reply>): Promise<Reply> {
  try {
    return await run();
  } catch (e) {
    if (e instanceof MooringError) {
      if (e.detail === 'NOT_FOUND') throw new HttpError(404, 'NOT_FOUND', e.message);
      if (e.detail === 'ENCRYPTED') throw new HttpError(409, 'ENCRYPTED', e.message);
      // A pin while a backup (or another process) holds the device's store.
      if (e.detail === 'LOCKED') throw new HttpError(409, 'LOCKED', e.message);
      // A snapshot whose files do not parse is damaged on disk: the request was fine.
      if (e.code === 'MALFORMED') throw new HttpError(409, 'DAMAGED', e.message);
      if (e.code === 'UNSAFE_PATH') throw new HttpError(403, 'UNSAFE_PATH', e.message);
    }
    throw e;
  }
}

/** `filename` (ASCII stand-in) and `filename*` (the real name, RFC 5987). */
export function attachmentHeader(name: string): string {
  const ascii = name.replace(/[^\x20-\x7e]|["\\%;]/g, '_') || 'file';
  const encoded = encodeURIComponent(name).replace(
    /['()*]/g,
    (ch) => `%${ch.charCodeAt(0).toString(16).toUpperCase()}`,
  );
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encoded}`;
}

/** `{"pinned": true|false}` and nothing else. */
async function pinnedBody(c: RouteContext): Promise<boolean> {
  queryParams(c.search, []);
  return readSwitchBody(c.req, 'pinned');
}

export function snapshotRoutes(
  service: SnapshotBrowsing & Pick<AgentService, 'pinSnapshot'>,
): Route[] {
  return [
    {
      method: 'POST',
      path: new RegExp(`^${SNAPSHOT}/pin$`),
      handle: (c) =>
        answer(async () => {
          const pinned = await pinnedBody(c);
          return { body: await service.pinSnapshot(udidOf(c), snapshotOf(c), pinned) };
        }),
    },
    {
      method: 'GET',
      path: new RegExp(`^${DEVICE}/snapshots$`),
      handle: (c) =>
        answer(async () => {
          queryParams(c.search, []);
          return { body: await service.snapshots(udidOf(c)) };
        }),
    },
    {
      method: 'GET',
      path: new RegExp(`^${SNAPSHOT}/files$`),
      handle: (c) =>
        answer(async () => {
          const p = queryParams(c.search, ['domain', 'pattern', 'limit', 'after']);
          const q: FileQuery = {};
          const domain = p.get('domain');
          const pattern = p.get('pattern');
          const after = p.get('after');
          const limit = limitOf(p.get('limit'));
          if (domain) q.domain = domain;
          if (pattern) q.pattern = pattern;
          if (after) q.after = after;
          if (limit !== undefined) q.limit = limit;
          return { body: await service.files(udidOf(c), snapshotOf(c), q) };
        }),
    },
    {
      method: 'GET',
      path: new RegExp(`^${DEVICE}/diff$`),
      handle: (c) =>
        answer(async () => {
          const p = queryParams(c.search, ['from', 'to']);
          const udid = udidOf(c);
          return { body: await service.diff(udid, required(p, 'from'), required(p, 'to')) };
        }),
    },
    {
      method: 'GET',
      path: new RegExp(`^${SNAPSHOT}/file$`),
      handle: (c) =>
        answer(async () => {
          const p = queryParams(c.search, ['domain', 'path']);
          const f = await service.openFile(
            udidOf(c),
            snapshotOf(c),
            required(p, 'domain'),
            required(p, 'path'),
          );
          c.res.writeHead(200, {
            'Content-Type': 'application/octet-stream',
            'Content-Length': f.size,
            'Content-Disposition': attachmentHeader(f.name),
            'X-Content-Type-Options': 'nosniff',
            'Content-Security-Policy': "default-src 'none'; sandbox",
            'Cache-Control': 'no-store',
            'Referrer-Policy': 'no-referrer',
          });
          // A client that goes away ends the read; a read error cuts the response short.
          await pipeline(f.stream, c.res).catch(() => c.res.destroy());
          return 'streamed';
        }),
    },
  ];
}
