/**
 * The browser UI's files (dist/renderer, built by scripts/build-renderer.js): index.html for `/`
 * and its scripts and styles under `/ui/…`. Read-only and confined: only regular files of known
 * types inside the ui folder, no directory listings, no dot-files, no way out through `..` or
 * symlinks. Every answer carries the UI's Content-Security-Policy.
 */
import { promises as fsp, existsSync } from 'node:fs';
import path from 'node:path';

/** No inline scripts or styles, nothing from elsewhere, never inside a frame. */
export const UI_CSP =
  "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'";

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.html': 'text/html; charset=utf-8',
};

/** Largest file served; the UI's files are a few KB. */
const MAX_FILE_BYTES = 4 * 1024 * 1024;

/**
 * Where the built UI lives: next to the compiled API (dist/api → dist/renderer), or, when the
 * agent runs from the sources (tsx), in dist/renderer of the checkout. Undefined when not built.
 */
export function defaultUiDir(): string | undefined {
  const candidates = [
    path.join(__dirname, '..', 'renderer'),
    path.join(__dirname, '..', '..', 'dist', 'renderer'),
  ];
  return candidates.find((d) => existsSync(path.join(d, 'ui', 'main.js')));
}

export interface UiFile {
  body: Buffer;
  type: string;
}

/** `/ui/…` (already without the prefix, still URL-encoded) → the file, or undefined (404). */
export async function readUiFile(uiDir: string, encoded: string): Promise<UiFile | undefined> {
  let rel: string;
  try {
    rel = decodeURIComponent(encoded);
  } catch {
    return undefined;
  }
  const parts = rel.split('/');
  if (
    rel.length > 200 ||
    rel.includes('\\') ||
    rel.includes('\0') ||
    parts.some((p) => p === '' || p.startsWith('.'))
  ) {
    return undefined;
  }
  const type = TYPES[path.extname(rel).toLowerCase()];
  if (type === undefined) return undefined;
  const base = path.join(uiDir, 'ui');
  try {
    const [realBase, real] = await Promise.all([
      fsp.realpath(base),
      fsp.realpath(path.join(base, ...parts)),
    ]);
    if (!real.startsWith(realBase + path.sep)) return undefined;
    const st = await fsp.stat(real);
    if (!st.isFile() || st.size > MAX_FILE_BYTES) return undefined;
    return { body: await fsp.readFile(real), type };
  } catch {
    return undefined;
  }
}

export async function readUiIndex(uiDir: string): Promise<Buffer | undefined> {
  try {
    return await fsp.readFile(path.join(uiDir, 'index.html'));
  } catch {
    return undefined;
  }
}
