/**
 * PEM (RFC 7468) text ⇄ DER bytes. Pair records and lockdownd carry keys and certificates as
 * PEM text inside plist data values; this is the boundary where they become DER.
 */
import { MooringError } from '../../util/errors';

/** Largest PEM text accepted: an RSA-8192 private key is about 6.4 KiB of PEM. */
export const MAX_PEM_BYTES = 64 * 1024;

export interface PemBlock {
  label: string; // e.g. 'CERTIFICATE', 'RSA PUBLIC KEY', 'PRIVATE KEY'
  der: Buffer;
}

const BEGIN = /-----BEGIN ([A-Z0-9 ]{1,40})-----/;

/**
 * Decodes the first PEM block. Text before BEGIN and after END (comments, a trailing NUL that
 * some writers add) is ignored; the body must be base64 and whitespace only (no RFC 1421
 * headers: those mean an encrypted legacy key, which we cannot use anyway).
 */
export function decodePem(input: string | Buffer, expectedLabels?: readonly string[]): PemBlock {
  const size = typeof input === 'string' ? Buffer.byteLength(input) : input.length;
  if (size > MAX_PEM_BYTES) {
    throw new MooringError('LIMIT', `PEM text of ${size} bytes exceeds ${MAX_PEM_BYTES} bytes`);
  }
  const text = typeof input === 'string' ? input : input.toString('latin1');
  const begin = BEGIN.exec(text);
  if (!begin) throw new MooringError('MALFORMED', 'no "-----BEGIN …-----" line: not PEM text');
  const label = begin[1] as string;
  const bodyStart = begin.index + begin[0].length;
  const endMarker = `-----END ${label}-----`;
  const endAt = text.indexOf(endMarker, bodyStart);
  if (endAt < 0) throw new MooringError('MALFORMED', `PEM ${label}: no matching END line`);
  if (expectedLabels && !expectedLabels.includes(label)) {
    throw new MooringError(
      'MALFORMED',
      `PEM block is "${label}", expected ${expectedLabels.map((l) => `"${l}"`).join(' or ')}`,
    );
  }
  const body = text.slice(bodyStart, endAt).replace(/[ \t\r\n]/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(body) || body.length % 4 !== 0) {
    throw new MooringError('MALFORMED', `PEM ${label}: body is not base64`);
  }
  const der = Buffer.from(body, 'base64');
  if (der.length === 0) throw new MooringError('MALFORMED', `PEM ${label}: empty body`);
  return { label, der };
}

/** PEM text with 64-character lines and a final newline, as OpenSSL writes it. */
export function encodePem(label: string, der: Buffer): string {
  if (!/^[A-Z0-9 ]{1,40}$/.test(label)) {
    throw new MooringError('PROTOCOL', `"${label}" is not a PEM label`);
  }
  const b64 = der.toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 64) lines.push(b64.slice(i, i + 64));
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/** True when the bytes/text look like PEM rather than raw DER. */
export function looksLikePem(input: string | Buffer): boolean {
  const head =
    typeof input === 'string' ? input : input.subarray(0, MAX_PEM_BYTES).toString('latin1');
  return head.includes('-----BEGIN ');
}
