/**
 * The desktop app's Electron configuration passes @doyensec/electronegativity (issue 7): no HIGH
 * or CRITICAL finding that .electronegativity.json does not accept with a reason. The same run
 * over a deliberately unsafe app must fail, so a scan that silently checked nothing cannot pass.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';

const ROOT = path.join(__dirname, '..', '..');
const SCRIPT = path.join(ROOT, 'scripts', 'electronegativity.js');

interface Finding {
  check: string;
  severity: string;
  file: string;
  accepted: string | null;
}
interface Summary {
  scanned: string[];
  excludedChecks: string[];
  findings: Finding[];
  failing: number;
}

async function scan(args: string[]): Promise<{ code: number; summary: Summary }> {
  try {
    const { stdout } = await promisify(execFile)('node', [SCRIPT, '--json', ...args], {
      timeout: 150_000,
    });
    return { code: 0, summary: JSON.parse(stdout) as Summary };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    if (typeof err.code !== 'number' || !err.stdout) throw e;
    return { code: err.code, summary: JSON.parse(err.stdout) as Summary };
  }
}

const UNSAFE_MAIN = `const { BrowserWindow } = require('electron');
const win = new BrowserWindow({
  webPreferences: { nodeIntegration: true, contextIsolation: false, webSecurity: false, sandbox: false },
});
win.loadURL('http://example.com/');
`;

describe('electronegativity', () => {
  it('finds no unaccepted high-severity issue in the desktop app, and fails an unsafe one', async () => {
    const unsafe = await mkdtemp(path.join(os.tmpdir(), 'mooring-unsafe-electron-'));
    try {
      await mkdir(path.join(unsafe, 'src', 'electron'), { recursive: true });
      await mkdir(path.join(unsafe, 'src', 'renderer'), { recursive: true });
      await writeFile(path.join(unsafe, 'src', 'electron', 'main.js'), UNSAFE_MAIN);
      await writeFile(path.join(unsafe, 'src', 'renderer', 'index.html'), '<html></html>\n');
      await writeFile(
        path.join(unsafe, 'package.json'),
        JSON.stringify({ name: 'unsafe', devDependencies: { electron: '^41.0.0' } }),
      );
      const config = path.join(ROOT, '.electronegativity.json');
      const [ours, theirs] = await Promise.all([
        scan([]),
        scan(['--root', unsafe, '--config', config]),
      ]);

      assert.equal(ours.code, 0, JSON.stringify(ours.summary.findings, null, 2));
      assert.equal(ours.summary.failing, 0);
      assert.ok(ours.summary.scanned.includes('src/electron'));
      const high = ours.summary.findings.filter(
        (f) => (f.severity === 'HIGH' || f.severity === 'CRITICAL') && f.accepted === null,
      );
      assert.deepEqual(high, []);

      assert.equal(theirs.code, 1);
      assert.ok(theirs.summary.failing > 0);
      const checks = new Set(theirs.summary.findings.map((f) => f.check));
      for (const check of [
        'CONTEXT_ISOLATION_JS_CHECK',
        'WEB_SECURITY_JS_CHECK',
        'SANDBOX_JS_CHECK',
      ]) {
        assert.ok(checks.has(check), `${check} not in ${[...checks].join(', ')}`);
      }
    } finally {
      await rm(unsafe, { recursive: true, force: true });
    }
  });

  it('assumes the Electron version package.json asks for', async () => {
    const config = JSON.parse(
      await readFile(path.join(ROOT, '.electronegativity.json'), 'utf8'),
    ) as {
      electronVersion: string;
      excludedChecks: Record<string, string>;
    };
    const pkg = JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8')) as {
      devDependencies: Record<string, string>;
    };
    const wanted = /(\d+)\./.exec(pkg.devDependencies.electron ?? '')?.[1];
    assert.equal(config.electronVersion.split('.')[0], wanted);
    // Every skipped check says why.
    for (const reason of Object.values(config.excludedChecks)) assert.ok(reason.length > 20);
  });
});
