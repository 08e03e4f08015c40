import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PlistUid, decodePlist, encodeBinaryPlist, isPlistDict } from '../../src/protocol/plist';
import { decodeMbFile, encodeMbFile } from '../../src/format/mbfile';
import { isMooringError } from '../../src/util/errors';
import { SAMPLE_MBFILE } from './samples';

const REC = SAMPLE_MBFILE;

test('MBFile is a real NSKeyedArchiver archive and round-trips', () => {
  const buf = encodeMbFile(REC);
  const top = decodePlist(buf);
  assert.ok(isPlistDict(top));
  assert.equal(top.$archiver, 'NSKeyedArchiver');
  assert.equal(top.$version, 100000);
  assert.ok(isPlistDict(top.$top) && top.$top.root instanceof PlistUid);
  const objects = top.$objects as unknown[];
  assert.equal(objects[0], '$null');
  const root = objects[(top.$top.root as PlistUid).value];
  assert.ok(isPlistDict(root as never));
  const r = root as Record<string, unknown>;
  assert.ok(r.RelativePath instanceof PlistUid);
  assert.equal(objects[(r.RelativePath as PlistUid).value], REC.relativePath);
  const cls = objects[(r.$class as PlistUid).value] as Record<string, unknown>;
  assert.deepEqual(cls, { $classname: 'MBFile', $classes: ['MBFile', 'NSObject'] });
  assert.deepEqual(decodeMbFile(buf), REC);
  const link = { ...REC, digest: undefined, target: '../Preferences', mode: 0o120755 };
  delete link.digest;
  assert.deepEqual(decodeMbFile(encodeMbFile(link)), link);
});

test('hostile MBFile archives are refused', () => {
  const wrap = (objects: unknown[], root = 1): Buffer =>
    encodeBinaryPlist({
      $archiver: 'NSKeyedArchiver',
      $version: 100000,
      $top: { root: new PlistUid(root) },
      $objects: objects as never,
    });
  const cls = { $classname: 'MBFile', $classes: ['MBFile', 'NSObject'] };
  const cases: Buffer[] = [
    encodeBinaryPlist(['not', 'a', 'dict']),
    encodeBinaryPlist({ $archiver: 'Other', $objects: [], $top: { root: new PlistUid(1) } }),
    wrap(['$null', { RelativePath: new PlistUid(9), Mode: 1, $class: new PlistUid(2) }, cls]), // UID out of range
    wrap([
      '$null',
      { RelativePath: new PlistUid(2), Mode: 1, $class: new PlistUid(3) },
      'x',
      { $classname: 'NSData' },
    ]),
    wrap(['$null', { RelativePath: new PlistUid(2), $class: new PlistUid(3) }, 'x', cls]), // no Mode
    wrap([
      '$null',
      { RelativePath: new PlistUid(2), Mode: 'x', $class: new PlistUid(3) },
      'x',
      cls,
    ]),
    wrap([
      '$null',
      { RelativePath: new PlistUid(2), Mode: 1, Digest: new PlistUid(2), $class: new PlistUid(3) },
      'x',
      cls,
    ]),
    wrap(['$null'], 5),
    Buffer.from('garbage'),
    Buffer.concat([Buffer.from('bplist00'), Buffer.alloc(70_000)]),
  ];
  for (const [i, c] of cases.entries()) {
    assert.throws(
      () => decodeMbFile(c),
      (e) => isMooringError(e, 'MALFORMED') || isMooringError(e, 'LIMIT'),
      `case ${i}`,
    );
  }
});
