// Bounded allocation: worst-case inputs fuzzing turned up, each run in a child process whose V8
// heap is capped at 64 MiB (a tsx child idles at ~10 MiB). A parser that allocates with anything
// but its bounded input (or hands back a value that explodes when walked) dies of OOM there.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CASES } from './memory-child';

const run = promisify(execFile);
const CHILD = join(__dirname, 'memory-child.ts');
const HEAP_CAP_MB = 64;

for (const name of Object.keys(CASES)) {
  test(
    `bounded memory under a ${HEAP_CAP_MB} MiB heap: ${name} is refused with LIMIT`,
    { timeout: 60_000 },
    async () => {
      const { stdout } = await run(
        process.execPath,
        [`--max-old-space-size=${HEAP_CAP_MB}`, '--import', 'tsx', CHILD, name],
        { cwd: join(__dirname, '..', '..'), timeout: 50_000, maxBuffer: 1 << 20 },
      ).catch((e: { code?: unknown; signal?: unknown; stderr?: string }) => {
        assert.fail(
          `child died (code ${String(e.code)}, signal ${String(e.signal)}): ${e.stderr?.slice(-400)}`,
        );
      });
      const result = JSON.parse(stdout.trim().split('\n').pop()!) as {
        name: string;
        outcome: string;
      };
      assert.deepEqual({ name: result.name, outcome: result.outcome }, { name, outcome: 'LIMIT' });
    },
  );
}
