// Fuzzing MBFile archives (src/format/mbfile.ts): the NSKeyedArchiver blobs in Manifest.db, read
// from a backup folder another tool (or a damaged disk) may have written.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  decodeMbFile,
  encodeMbFile,
  S_IFLNK,
  S_IFREG,
  type MbFileRecord,
} from '../../src/format/mbfile';
import {
  anyPlistValue,
  dictOf,
  fuzzParams,
  mutated,
  onlyMooringErrors,
  testTimeoutMs,
} from './harness';
import { encodeBinaryPlist, PlistUid } from '../../src/protocol/plist';

const T = { timeout: testTimeoutMs() };
const u32 = fc.nat(0xffffffff);

const record: fc.Arbitrary<MbFileRecord> = fc
  .record({
    relativePath: fc.string({ unit: 'grapheme', maxLength: 60 }),
    lastModified: u32,
    lastStatusChange: u32,
    birth: u32,
    size: fc.maxSafeNat(),
    mode: fc.constantFrom(S_IFREG | 0o644, S_IFLNK | 0o755, 0o040755),
    userId: fc.nat(0xffff),
    groupId: fc.nat(0xffff),
    inode: fc.maxSafeNat(),
    protectionClass: fc.nat(11),
    flags: fc.nat(0xff),
    target: fc.option(fc.string({ minLength: 1, maxLength: 40 }), { nil: undefined }),
    digest: fc.option(
      fc.uint8Array({ minLength: 20, maxLength: 20 }).map((u) => Buffer.from(u)),
      { nil: undefined },
    ),
    encryptionKey: fc.option(
      fc.uint8Array({ minLength: 44, maxLength: 44 }).map((u) => Buffer.from(u)),
      {
        nil: undefined,
      },
    ),
  })
  .map(
    (r) =>
      Object.fromEntries(
        Object.entries(r).filter(([, v]) => v !== undefined),
      ) as unknown as MbFileRecord,
  );

test(
  'MBFile: encode → decode round-trips; mutated archives decode or fail MALFORMED/LIMIT',
  T,
  () => {
    fc.assert(
      fc.property(
        record.chain((r) => fc.tuple(fc.constant(r), mutated([encodeMbFile(r)]))),
        ([r, junk]) => {
          assert.deepEqual(decodeMbFile(encodeMbFile(r)), r);
          onlyMooringErrors(() => decodeMbFile(junk), ['MALFORMED', 'LIMIT']);
        },
      ),
      fuzzParams(0.3),
    );
  },
);

test('MBFile: keyed archives with wrong shapes and dangling UIDs fail MALFORMED/LIMIT', T, () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.oneof(
          anyPlistValue,
          fc.nat(12).map((n) => new PlistUid(n)),
        ),
        { maxLength: 8 },
      ),
      fc.nat(12),
      anyPlistValue,
      (objects, root, field) => {
        const archive = dictOf([
          ['$archiver', 'NSKeyedArchiver'],
          ['$version', 100000],
          ['$top', dictOf([['root', new PlistUid(root)]])],
          [
            '$objects',
            [
              '$null',
              dictOf([
                ['$class', new PlistUid(2)],
                ['RelativePath', new PlistUid(3)],
                ['Size', field],
                ['Target', field],
                ['Digest', field],
                ['EncryptionKey', field],
              ]),
              dictOf([['$classname', 'MBFile']]),
              ...objects,
            ],
          ],
        ]);
        onlyMooringErrors(() => decodeMbFile(encodeBinaryPlist(archive)), ['MALFORMED', 'LIMIT']);
      },
    ),
    fuzzParams(0.3),
  );
});
