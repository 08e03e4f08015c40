/**
 * countGarbageCollections: a full collection (forced) and young ones (short-lived garbage) are
 * counted by kind, including those made in the very turn it is stopped.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { countGarbageCollections, describeGcCount } from '../../src/job/gc-count';

/** V8's gc(), without starting node with --expose-gc. */
function forceFullGc(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

test('counts full and young collections, up to the turn it is stopped in', async () => {
  const stop = countGarbageCollections();
  let keep: Array<{ i: number }> = [];
  for (let i = 0; i < 3_000_000; i++) {
    keep.push({ i });
    if (keep.length > 10_000) keep = [];
  }
  forceFullGc();
  forceFullGc();
  // Stopped in the same turn: the observer has not been given these entries yet.
  const c = await stop();
  assert.ok(c.full >= 2, `full collections: ${c.full}`);
  assert.ok(c.young >= 1, `young collections: ${c.young}`);
  assert.ok(c.fullMs > 0 && c.youngMs > 0);
  assert.match(describeGcCount(c), /^\d+ full \(\d+ ms\), \d+ young \(\d+ ms\)$/);
});

test('after stop, nothing more is counted', async () => {
  const stop = countGarbageCollections();
  const first = { ...(await stop()) };
  forceFullGc();
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(await stop(), first);
});
