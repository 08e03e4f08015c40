/**
 * The UI's static files as the API server reads them: only regular files of known types inside
 * dist/renderer/ui; no way out by `..`, encoded slashes, dot-files or symlinks.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { readUiFile, readUiIndex } from '../../src/api/ui-files';

describe('UI static files', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'mooring-ui-files-'));
    mkdirSync(path.join(dir, 'ui', 'views'), { recursive: true });
    writeFileSync(path.join(dir, 'index.html'), '<!doctype html>');
    writeFileSync(path.join(dir, 'ui', 'main.js'), 'export {};');
    writeFileSync(path.join(dir, 'ui', 'views', 'a.js'), 'export const a = 1;');
    writeFileSync(path.join(dir, 'ui', 'styles.css'), 'body{}');
    writeFileSync(path.join(dir, 'ui', '.built'), 'x');
    writeFileSync(path.join(dir, 'ui', 'notes.txt'), 'x');
    writeFileSync(path.join(dir, 'secret.js'), 'secret');
    symlinkSync(path.join(dir, 'secret.js'), path.join(dir, 'ui', 'link.js'));
    mkdirSync(path.join(dir, 'ui', 'dir.js'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('serves the page and the scripts and styles under ui/ with their types', async () => {
    assert.equal(String(await readUiIndex(dir)), '<!doctype html>');
    const js = await readUiFile(dir, 'main.js');
    assert.equal(js?.type, 'text/javascript; charset=utf-8');
    assert.equal(String(js?.body), 'export {};');
    assert.equal(String((await readUiFile(dir, 'views/a.js'))?.body), 'export const a = 1;');
    assert.equal((await readUiFile(dir, 'styles.css'))?.type, 'text/css; charset=utf-8');
  });

  it('refuses everything else', async () => {
    for (const p of [
      '../secret.js',
      '%2e%2e/secret.js',
      'views/..%2F..%2Fsecret.js',
      '..%5Csecret.js',
      'link.js',
      'dir.js',
      '.built',
      'notes.txt',
      '',
      'views/',
      'missing.js',
      '%E0%A4%A.js',
      'main.js%00.css',
    ]) {
      assert.equal(await readUiFile(dir, p), undefined, p);
    }
  });
});
