/**
 * The desktop window's page comes from our own `app://mooring/` scheme, not file://: a file://
 * page may read any local file the renderer names, and shares one origin with every other file.
 * The scheme serves dist/renderer only (index.html at `/`, the UI's files under `/ui/`, confined
 * as the HTTP server confines them: src/api/ui-files.ts) and puts the UI's Content-Security-Policy
 * on every answer, errors included. Free of Electron: main.ts hands each request to appResponse
 * through protocol.handle, and tests call it under Node.
 */
import { readUiFile, readUiIndex, UI_CSP } from '../api/ui-files';

export const APP_SCHEME = 'app';
export const APP_HOST = 'mooring';
/** The page the window loads, and the only one the bridge answers (ipc.ts checkSender). */
export const APP_PAGE_URL = `${APP_SCHEME}://${APP_HOST}/index.html`;

export interface AppResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer | null;
}

function reply(status: number, type: string, body: Buffer | null): AppResponse {
  return {
    status,
    headers: {
      'Content-Type': type,
      'Content-Security-Policy': UI_CSP,
      'X-Content-Type-Options': 'nosniff',
      'Cache-Control': 'no-store',
    },
    body,
  };
}

const notFound = (): AppResponse =>
  reply(404, 'text/plain; charset=utf-8', Buffer.from('Not found\n'));

/** The answer to one app:// request: GET or HEAD of our page or a file under ui/, else 404/405. */
export async function appResponse(
  url: string,
  method: string,
  rendererDir: string,
): Promise<AppResponse> {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return notFound();
  }
  if (u.protocol !== `${APP_SCHEME}:` || u.host !== APP_HOST) return notFound();
  if (method !== 'GET' && method !== 'HEAD') {
    return reply(405, 'text/plain; charset=utf-8', Buffer.from('Method not allowed\n'));
  }
  const head = (r: AppResponse): AppResponse => (method === 'HEAD' ? { ...r, body: null } : r);
  if (u.pathname === '/' || u.pathname === '/index.html') {
    const index = await readUiIndex(rendererDir);
    return head(index ? reply(200, 'text/html; charset=utf-8', index) : notFound());
  }
  if (u.pathname.startsWith('/ui/')) {
    const file = await readUiFile(rendererDir, u.pathname.slice('/ui/'.length));
    return head(file ? reply(200, file.type, file.body) : notFound());
  }
  return notFound();
}
