/** Request bodies: JSON only, at most MAX_BODY_BYTES, read before anything acts on them. */
import type { IncomingMessage } from 'node:http';
import { HttpError, badRequest } from './http-error';

export const MAX_BODY_BYTES = 64 * 1024;

const tooLarge = (): HttpError =>
  new HttpError(413, 'TOO_LARGE', `request body larger than ${MAX_BODY_BYTES} bytes`);

/** The parsed JSON body, or undefined when there is none. */
export async function readJsonBody(req: IncomingMessage): Promise<unknown> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > MAX_BODY_BYTES) throw tooLarge();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw tooLarge();
    chunks.push(chunk);
  }
  if (size === 0) return undefined;
  const type = req.headers['content-type'] ?? '';
  if (!/^application\/json\s*(;|$)/i.test(type)) {
    throw badRequest('send the body as JSON (Content-Type: application/json)');
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch {
    throw badRequest('the body is not valid JSON');
  }
}

/** An object literal (what JSON.parse or a structured clone of one gives), not an array, Map or class. */
export function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

/** A body of exactly `{"<key>": true}` or `{"<key>": false}` (the Wi-Fi switch, a pin). */
export async function readSwitchBody(req: IncomingMessage, key: string): Promise<boolean> {
  const body = await readJsonBody(req);
  if (!isPlainObject(body) || Object.keys(body).length !== 1 || typeof body[key] !== 'boolean') {
    throw badRequest(`expected a JSON object {"${key}": true} or {"${key}": false}`);
  }
  return body[key] as boolean;
}
