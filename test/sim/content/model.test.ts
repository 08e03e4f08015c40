import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileIdFor, pathProblem, targetStaysInDomain } from '../../../src/sim/content/model';
import { assignSizes, planTree } from '../../../src/sim/content/plan';
import { Keystream, Prng } from '../../../src/sim/content/random';

test('fileID is SHA-1(domain-relativePath): the reference examples', () => {
  assert.equal(
    fileIdFor('HomeDomain', 'Library/SMS/sms.db'),
    '3d0d7e5fb2ce288813306e4d4636395e047a3d28',
  );
  assert.equal(
    fileIdFor('CameraRollDomain', 'Media/PhotoData/Thumbnails/V2/DCIM/102APPLE'),
    'ae94e0607ca39a88c18aca095cb5b4f8471291a0',
  );
});

test('pathProblem refuses what could escape or confuse', () => {
  assert.equal(pathProblem('HomeDomain', 'Library/SMS/sms.db'), undefined);
  assert.equal(pathProblem('HomeDomain', ''), undefined);
  for (const bad of [
    '../x',
    'a/../b',
    '/etc/passwd',
    'a//b',
    'a/./b',
    'a\u0000b',
    'x'.repeat(2000),
    'a/',
  ]) {
    assert.ok(pathProblem('HomeDomain', bad), JSON.stringify(bad));
  }
  for (const bad of ['', 'a/b', '..', 'x\u0000', 'd'.repeat(300)])
    assert.ok(pathProblem(bad, 'f'), JSON.stringify(bad));
});

test('targetStaysInDomain resolves relative to the link folder', () => {
  assert.ok(targetStaysInDomain('Library/Caches/prefs', '../Preferences'));
  assert.ok(targetStaysInDomain('Media/DCIM/latest', '100APPLE'));
  assert.ok(!targetStaysInDomain('Library/x', '../../etc'));
  assert.ok(!targetStaysInDomain('x', '/etc/passwd'));
  assert.ok(!targetStaysInDomain('x', ''));
});

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
