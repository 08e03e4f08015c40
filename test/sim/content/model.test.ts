import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assignSizes, planTree } from '../../../src/sim/content/plan';
import { Keystream, Prng } from '../../../src/sim/content/random';
import {
  compareEntries,
  entryIndex,
  entryIndexes,
  entryKey,
  type ContentEntry,
} from '../../../src/sim/content/model';

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

test('entryIndex finds every entry by its key, sorted or not, and nothing else', () => {
  const keys: Array<[string, string]> = [
    ['HomeDomain', ''],
    ['HomeDomain', 'Library'],
    ['HomeDomain', 'Library/a.db'],
    ['HomeDomain', 'Library/b'],
    ['MediaDomain', 'DCIM/1.jpg'],
    ['AppDomain-x', 'Documents/z'],
    ['HomeDomain', 'Library/a.db-wal'],
  ];
  const entry = ([domain, relativePath]: [string, string]): ContentEntry =>
    ({ domain, relativePath }) as ContentEntry;
  const sorted = keys.map(entry).sort(compareEntries);
  const unsorted = keys.map(entry); // as given: not in key order (the scan is used)
  for (const entries of [sorted, unsorted]) {
    entries.forEach((e, i) => assert.equal(entryIndex(entries, e.domain, e.relativePath), i));
    assert.equal(entryIndex(entries, 'HomeDomain', 'Library/a'), -1);
    assert.equal(entryIndex(entries, 'HomeDomain', 'library'), -1);
    assert.equal(entryIndex(entries, 'ZDomain', ''), -1);
    assert.equal(entryIndex(entries, '', ''), -1);
    const wanted = [entries[5]!, entries[1]!, entries[3]!];
    assert.deepEqual(
      entryIndexes(entries, [
        ...wanted.map((e) => entryKey(e.domain, e.relativePath)),
        entryKey('NoDomain', 'x'),
      ]),
      [1, 3, 5],
    );
  }
  assert.equal(entryIndex([], 'HomeDomain', ''), -1);
});
