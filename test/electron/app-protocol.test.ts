/**
 * The desktop window's app:// scheme (pure, no Electron): our page and the UI's files from a
 * renderer folder on disk, the UI's Content-Security-Policy on every answer (errors included),
 * and nothing else — other hosts, paths outside ui/, dot-files, `..` in any spelling, symlinks
 * out of the folder, folders, unknown types and other methods are all refused.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { UI_CSP } from '../../src/api/ui-files';
import { APP_PAGE_URL, appResponse } from '../../src/electron/app-protocol';

describe('app:// scheme', () => {
  let tmp: string;
  let dir: string;

  before(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'mooring-app-protocol-'));
    dir = path.join(tmp, 'renderer');
    await mkdir(path.join(dir, 'ui', 'views'), { recursive: true });
    await writeFile(path.join(dir, 'index.html'), '<!doctype html><title>Mooring</title>');
    await writeFile(path.join(dir, 'ui', 'main.js'), 'export {};\n');
    await writeFile(path.join(dir, 'ui', 'styles.css'), 'body{}');
    await writeFile(path.join(dir, 'ui', 'views', 'files.js'), 'export const x = 1;\n');
    await writeFile(path.join(dir, 'ui', '.built.js'), 'secret');
    await writeFile(path.join(dir, 'ui', 'notes.txt'), 'not a UI type');
    await writeFile(path.join(tmp, 'secret.js'), 'outside');
    await symlink(path.join(tmp, 'secret.js'), path.join(dir, 'ui', 'link.js'));
  });
  after(() => rm(tmp, { recursive: true, force: true }));

  const get = (url: string, method = 'GET') => appResponse(url, method, dir);

  it('serves our page at / and /index.html with the CSP and nosniff', async () => {
    assert.equal(APP_PAGE_URL, 'app://mooring/index.html');
    for (const url of [APP_PAGE_URL, 'app://mooring/', `${APP_PAGE_URL}#/device/x/files`]) {
      const r = await get(url);
      assert.equal(r.status, 200, url);
      assert.equal(r.headers['Content-Type'], 'text/html; charset=utf-8');
      assert.equal(r.headers['Content-Security-Policy'], UI_CSP);
      assert.equal(r.headers['X-Content-Type-Options'], 'nosniff');
      assert.equal(r.body?.toString(), '<!doctype html><title>Mooring</title>');
    }
    assert.ok(UI_CSP.includes("frame-ancestors 'none'"));
    assert.ok(UI_CSP.includes("script-src 'self'"));
  });

  it('serves the UI files under /ui/ with their types', async () => {
    const js = await get('app://mooring/ui/main.js');
    assert.equal(js.status, 200);
    assert.equal(js.headers['Content-Type'], 'text/javascript; charset=utf-8');
    assert.equal(js.body?.toString(), 'export {};\n');
    const nested = await get('app://mooring/ui/views/files.js?x=1');
    assert.equal(nested.body?.toString(), 'export const x = 1;\n');
    const css = await get('app://mooring/ui/styles.css');
    assert.equal(css.headers['Content-Type'], 'text/css; charset=utf-8');
    const head = await get('app://mooring/ui/main.js', 'HEAD');
    assert.equal(head.status, 200);
    assert.equal(head.body, null);
  });

  it('refuses everything else, with the CSP on the refusal too', async () => {
    for (const url of [
      'app://evil/index.html',
      'app://mooring.evil/index.html',
      'file:///etc/passwd',
      'https://mooring/index.html',
      'app://mooring/other.html',
      'app://mooring/ui/',
      'app://mooring/ui/views',
      'app://mooring/ui/.built.js',
      'app://mooring/ui/notes.txt',
      'app://mooring/ui/link.js',
      'app://mooring/ui/missing.js',
      'app://mooring/ui/..%2F..%2Fsecret.js',
      'app://mooring/ui/views%2F..%2F..%2Findex.html',
      'app://mooring/ui/%E0%A4%A.js',
      'app://mooring/../secret.js',
      'app://mooring/ui/../../secret.js',
      'not a url',
    ]) {
      const r = await get(url);
      assert.equal(r.status, 404, url);
      assert.equal(r.headers['Content-Security-Policy'], UI_CSP, url);
      assert.notEqual(r.body?.toString(), 'outside', url);
    }
    // Dot segments, even encoded ones, are resolved by URL parsing first: they never get out.
    const dots = await get('app://mooring/ui/%2e%2e/%2e%2e/index.html');
    assert.equal(dots.body?.toString(), '<!doctype html><title>Mooring</title>');
    const post = await get(APP_PAGE_URL, 'POST');
    assert.equal(post.status, 405);
    assert.equal(post.headers['Content-Security-Policy'], UI_CSP);
  });

  it('answers 404 when the renderer is not built', async () => {
    const r = await appResponse(APP_PAGE_URL, 'GET', path.join(tmp, 'nowhere'));
    assert.equal(r.status, 404);
  });
});
