import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { INCREMENTAL_MARKING_ENV } from '../../src/util/v8-heap';

const MODULE = path.join(__dirname, '..', '..', 'src', 'util', 'v8-heap.ts');

/**
 * A node that calls markHeapsInOneStep, then keeps replacing ~10 MB of live objects so that V8
 * must collect the old generation a few times; its --trace-gc lines for those collections.
 */
function fullCollections(env: Record<string, string>): string[] {
  const script = `
    require(${JSON.stringify(MODULE)}).markHeapsInOneStep();
    const keep = [];
    for (let i = 0; i < 60; i++) {
      const a = [];
      for (let j = 0; j < 200000; j++) a.push({ j });
      keep.push(a);
      if (keep.length > 4) keep.shift();
    }`;
  const out = execFileSync(process.execPath, ['--import', 'tsx', '--trace-gc', '-e', script], {
    env: { ...process.env, ...env },
    encoding: 'utf8',
  });
  return out.split('\n').filter((l) => l.includes('Mark-Compact'));
}

test('markHeapsInOneStep: old-generation collections no longer begin with incremental marking', () => {
  const off = fullCollections({ [INCREMENTAL_MARKING_ENV]: '' });
  assert.ok(off.length > 0, 'the script made V8 collect its old generation');
  for (const line of off) assert.doesNotMatch(line, /since start of marking|incremental marking/);
  // The same script with V8's default marks incrementally: the check above can fail.
  const on = fullCollections({ [INCREMENTAL_MARKING_ENV]: '1' });
  assert.ok(
    on.some((l) => /since start of marking/.test(l)),
    on.join('\n'),
  );
});
