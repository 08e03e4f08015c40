import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assignSizes, planTree } from '../../../src/sim/content/plan';
import { Keystream, Prng } from '../../../src/sim/content/random';

test('the PRNG and keystream are reproducible', () => {
  const a = new Prng('s');
  const b = new Prng('s');
  const xs = Array.from({ length: 100 }, () => a.next());
  assert.deepEqual(
    xs,
    Array.from({ length: 100 }, () => b.next()),
  );
  assert.ok(new Set(xs).size > 95);
  const sample = new Prng('t').sample(50, 20);
  assert.equal(new Set(sample).size, 20);
  assert.ok(sample.every((i) => i >= 0 && i < 50));
  assert.deepEqual(new Keystream('k').take(1000), new Keystream('k').take(1000));
  assert.notDeepEqual(new Keystream('k').take(64), new Keystream('j').take(64));
});

test('planTree and assignSizes are pure and exact', () => {
  assert.deepEqual(planTree(5, 80), planTree(5, 80));
  assert.equal(planTree(5, 80).files.length, 80);
  const sizes = assignSizes([1, 2, 3, 0.5], 1001);
  assert.equal(
    sizes.reduce((a, b) => a + b, 0),
    1001,
  );
  assert.ok(sizes[2]! > sizes[0]!);
  assert.deepEqual(assignSizes([], 10), []);
  assert.deepEqual(assignSizes([1, 1], -5), [0, 0]);
});
