/**
 * How a backup names things on disk (reference §5, §5.3): a file's fileID, the bucketed payload
 * path, and which (domain, relativePath) pairs are safe to turn into paths at all.
 */
import crypto from 'node:crypto';

/**
 * Lower-case hex SHA-1 of a string's UTF-8. Node's one-shot `crypto.hash` (20.12 and later) costs
 * about half of a Hash object per call, which a verify makes for every row; older Nodes get the
 * Hash object.
 */
const sha1Hex: (s: string) => string =
  typeof crypto.hash === 'function'
    ? (s) => crypto.hash('sha1', s, 'hex')
    : (s) => crypto.createHash('sha1').update(s, 'utf8').digest('hex');

/** Manifest.db's fileID: lower-case hex SHA-1 of `domain + "-" + relativePath` (UTF-8). */
export function fileIdFor(domain: string, relativePath: string): string {
  return sha1Hex(`${domain}-${relativePath}`);
}

const FILE_ID = /^[0-9a-f]{40}$/;

export function isFileId(s: string): boolean {
  return FILE_ID.test(s);
}

/** Where a payload lives inside `<UDID>/` (iOS > 10.2): `<fileID[0:2]>/<fileID>`. */
export function payloadRelPath(fileId: string): string {
  if (!isFileId(fileId)) throw new RangeError(`not a fileID: ${JSON.stringify(fileId)}`);
  return `${fileId.slice(0, 2)}/${fileId}`;
}

/** Longest relativePath / domain accepted from a Manifest.db (a device's or a host's). */
export const MAX_RELATIVE_PATH_CHARS = 1024;
export const MAX_DOMAIN_CHARS = 255;

/** Why a (domain, relativePath) pair is unsafe to materialise, or undefined when it is fine. */
export function pathProblem(domain: string, relativePath: string): string | undefined {
  if (domain.length === 0 || domain.length > MAX_DOMAIN_CHARS) return 'domain length out of range';
  if (/[/\\]/.test(domain) || domain.includes('\u0000') || domain === '.' || domain === '..') {
    return 'domain has a separator';
  }
  if (relativePath.length > MAX_RELATIVE_PATH_CHARS) return 'relativePath too long';
  if (relativePath === '') return undefined;
  if (relativePath.includes('\u0000')) return 'relativePath contains NUL';
  if (relativePath.startsWith('/')) return 'relativePath is absolute';
  for (const seg of relativePath.split('/')) {
    if (seg === '' || seg === '.' || seg === '..') return `relativePath has a "${seg}" segment`;
  }
  return undefined;
}

/** Whether a symlink target stays inside its own domain when resolved from the link's folder. */
export function targetStaysInDomain(relativePath: string, target: string): boolean {
  if (target === '' || target.startsWith('/') || target.includes('\u0000')) return false;
  const parts = relativePath.split('/').slice(0, -1);
  for (const seg of target.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') {
      if (parts.length === 0) return false;
      parts.pop();
    } else parts.push(seg);
  }
  return true;
}
