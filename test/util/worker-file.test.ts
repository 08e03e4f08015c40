/**
 * util/worker-file: in the packaged app a worker module is started from app.asar.unpacked, where
 * only the `*.worker.js` files are, so it may import Node's own modules only; the few that import
 * ours are started from app.asar (LOADED_FROM_ASAR). Checked here over every worker module of src/,
 * since a worker that breaks the rule still works everywhere but in the packaged app (there it
 * cannot load, and its work falls back to a slower path).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { LOADED_FROM_ASAR } from '../../src/util/worker-file';

const SRC = path.join(__dirname, '..', '..', 'src');

/** Every `*.worker.ts` under src/, by its worker name (`sha1.worker`). */
function workerModules(): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.worker.ts')) out.set(e.name.slice(0, -'.ts'.length), p);
    }
  };
  walk(SRC);
  return out;
}

/** What a module imports at run time: `import … from`, `export … from` and `require(…)`, not `import type`. */
function runtimeImports(source: string): string[] {
  const specs: string[] = [];
  for (const m of source.matchAll(/^\s*(import|export)\s+(type\s+)?[^;]*?\sfrom\s+'([^']+)'/gms))
    if (m[2] === undefined) specs.push(m[3]!);
  for (const m of source.matchAll(/^\s*import\s+'([^']+)'/gm)) specs.push(m[1]!);
  for (const m of source.matchAll(/\brequire\(\s*'([^']+)'\s*\)/g)) specs.push(m[1]!);
  return specs;
}

test('the import finder sees value imports and re-exports, not type-only ones', () => {
  const src = [
    "import fs from 'node:fs';",
    "import type { A } from '../a';",
    'import {',
    '  b,',
    '  type C,',
    "} from '../b';",
    "export { d } from './d';",
    "export type { E } from './e';",
    "import './side-effect';",
    "const f = require('../f');",
  ].join('\n');
  assert.deepEqual(runtimeImports(src).sort(), ['../b', '../f', './d', './side-effect', 'node:fs']);
});

test("a worker started from app.asar.unpacked imports only Node's own modules", () => {
  const workers = workerModules();
  assert.ok(workers.has('sha1.worker') && workers.has('job.worker'), [...workers.keys()].join());
  for (const [name, file] of workers) {
    if (LOADED_FROM_ASAR.has(name)) continue;
    const ours = runtimeImports(readFileSync(file, 'utf8')).filter((s) => !s.startsWith('node:'));
    assert.deepEqual(
      ours,
      [],
      `${name} imports ${ours.join(', ')}: it cannot load from app.asar.unpacked (add it to ` +
        "LOADED_FROM_ASAR, or import only Node's own modules)",
    );
  }
});

test('every worker named in LOADED_FROM_ASAR exists and does import our modules', () => {
  const workers = workerModules();
  for (const name of LOADED_FROM_ASAR) {
    const file = workers.get(name);
    assert.ok(file, `${name} is in LOADED_FROM_ASAR but no src/**/${name}.ts exists`);
    assert.ok(
      runtimeImports(readFileSync(file, 'utf8')).some((s) => s.startsWith('.')),
      `${name} imports none of our modules: it can load from app.asar.unpacked`,
    );
  }
});
