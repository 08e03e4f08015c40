// Fuzzing the in-place MoveItems reading (src/protocol/device-link/frame.ts) against the eager path
// it stands in for: parseDeviceDlFrame(frame) and parseDeviceDlMessage(decodePlist(frame)) accept
// the same frames, give the same messages, and refuse the rest with the same MooringError.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isMooringError } from '../../src/util/errors';
import {
  DlMessageName,
  dlMoveItems,
  parseDeviceDlFrame,
  parseDeviceDlMessage,
  type DeviceDlMessage,
} from '../../src/protocol/device-link';
import {
  PlistReal,
  decodePlist,
  encodeBinaryPlist,
  type PlistLimits,
  type PlistValue,
} from '../../src/protocol/plist';
import {
  DL_NAMES,
  anyPlistValue,
  dictOf,
  dlArrays,
  fuzzParams,
  mutated,
  testTimeoutMs,
} from './harness';

const T = { timeout: testTimeoutMs() };
const MOVE_NAMES = [DlMessageName.MOVE_ITEMS, DlMessageName.MOVE_FILES];

type Move = [from: string, to: string];
type Outcome =
  | { threw: false; message: DeviceDlMessage; moves: Move[] | undefined }
  | { threw: true; error: unknown };

function outcome(parse: () => DeviceDlMessage): Outcome {
  let message: DeviceDlMessage;
  try {
    message = parse();
  } catch (error) {
    return { threw: true, error };
  }
  // Materialised outside the try: a move that cannot be read is a failure, not a refusal.
  if (message.type !== 'MoveItems') return { threw: false, message, moves: undefined };
  const moves = [...message.moves];
  assert.deepEqual([...message.moves], moves, 'moves read twice differ');
  return { threw: false, message, moves };
}

function sorted(moves: readonly Move[]): Move[] {
  const key = ([a, b]: Move): string => `${a}\0${b}`;
  return [...moves].sort((x, y) => (key(x) < key(y) ? -1 : key(x) > key(y) ? 1 : 0));
}

/** A dict that names a key twice keeps its last value (the eager decode's reading of it). */
function lastWins(moves: readonly Move[]): Move[] {
  const m = new Map<string, string>();
  for (const [from, to] of moves) m.set(from, to);
  return [...m];
}

function describeError(e: unknown): string {
  return isMooringError(e)
    ? `MooringError ${e.code}: ${e.message}`
    : `${(e as Error)?.name}: ${String((e as Error)?.message ?? e)}`;
}

/**
 * Both paths over `frame`: both throw the same MooringError (code and message), or both return
 * the same message, moves compared as sorted lists (a JS object lists integer-like keys first).
 * Without `duplicates`, an accepted MoveItems must have been read in place; with it, a key the
 * in-place path read twice counts once, with its last value.
 */
function assertAgree(
  frame: Buffer,
  limits: Partial<PlistLimits> | undefined,
  duplicates = false,
): void {
  const inPlace = outcome(() => parseDeviceDlFrame(frame, limits));
  const eager = outcome(() => parseDeviceDlMessage(decodePlist(frame, limits)));
  const where = `frame ${frame.toString('hex')}${limits ? ` limits ${JSON.stringify(limits)}` : ''}`;
  if (inPlace.threw || eager.threw) {
    assert.ok(
      inPlace.threw && eager.threw,
      `only one path threw: in place ${inPlace.threw ? describeError(inPlace.error) : 'returned'}, ` +
        `eager ${eager.threw ? describeError(eager.error) : 'returned'}; ${where}`,
    );
    assert.ok(isMooringError(inPlace.error), `in place: ${describeError(inPlace.error)}; ${where}`);
    assert.ok(isMooringError(eager.error), `eager: ${describeError(eager.error)}; ${where}`);
    assert.equal(inPlace.error.code, eager.error.code, where);
    assert.equal(inPlace.error.message, eager.error.message, where);
    return;
  }
  if (inPlace.moves === undefined || eager.moves === undefined) {
    assert.deepEqual(inPlace.message, eager.message, where);
    return;
  }
  assert.deepEqual(
    { ...inPlace.message, moves: undefined },
    { ...eager.message, moves: undefined },
    where,
  );
  // What the eager path accepts the in-place path accepts too (a key sent twice aside): a binary
  // MoveItems it falls back on is one it refused.
  const lazy = inPlace.message.type === 'MoveItems' && !Array.isArray(inPlace.message.moves);
  if (!duplicates) assert.ok(lazy, `not read in place; ${where}`);
  const moves = duplicates ? lastWins(inPlace.moves) : inPlace.moves;
  assert.deepEqual(sorted(moves), sorted(eager.moves), where);
}

/** Strings of any UTF-16 code units: NUL, lone surrogates, every plane. */
const units = fc.integer({ min: 0, max: 0xffff }).map((u) => String.fromCharCode(u));
/** Paths about MAX_DL_PATH_BYTES long, in characters of 1 to 4 UTF-8 bytes (lone surrogates: 3). */
const nearLimit = fc
  .tuple(
    fc.constantFrom<[string, number]>(['a', 1], ['é', 2], ['\u0800', 3], ['\ud800', 3], ['😀', 4]),
    fc.integer({ min: -3, max: 3 }),
    fc.string({ unit: units, maxLength: 3 }),
  )
  .map(([[c, n], delta, tail]) => c.repeat(Math.floor(4096 / n) + delta) + tail);
/** Device paths, valid or not: empty, NUL, lone surrogates, integer-like and special names. */
const pathish = fc.oneof(
  { arbitrary: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 20 }), weight: 6 },
  { arbitrary: fc.string({ unit: units, maxLength: 10 }), weight: 2 },
  {
    arbitrary: fc.constantFrom(
      '',
      '\0',
      'a\0b',
      '__proto__',
      'constructor',
      'toString',
      '0',
      '1',
      '42',
      '4294967295',
      '-1',
      '01',
    ),
    weight: 2,
  },
  { arbitrary: nearLimit, weight: 1 },
);
const validPath = pathish.filter(
  (p) => p.length > 0 && !p.includes('\0') && Buffer.byteLength(p, 'utf8') <= 4096,
);
/** A MoveItems dict: of valid paths (read in place), or with bad paths and non-string values. */
const moveMap: fc.Arbitrary<PlistValue> = fc.oneof(
  {
    arbitrary: fc
      .array(fc.tuple(validPath, validPath), { maxLength: 8 })
      .map((entries) => dictOf(entries)),
    weight: 3,
  },
  {
    arbitrary: fc
      .array(
        fc.tuple(
          pathish,
          fc.oneof({ arbitrary: pathish, weight: 8 }, { arbitrary: anyPlistValue, weight: 1 }),
        ),
        { maxLength: 8 },
      )
      .map((entries) => dictOf(entries)),
    weight: 2,
  },
);
const progress: fc.Arbitrary<PlistValue> = fc.oneof(
  fc.double().map((d) => new PlistReal(d)),
  fc.double(),
  fc.integer(),
  fc.bigInt({ min: -(1n << 63n), max: (1n << 64n) - 1n }),
  fc.constantFrom(-5, 0, 50, 100, 150, Number.NaN, new PlistReal(Infinity), '50', true),
  anyPlistValue,
);

/** MoveItems / MoveFiles arrays of many shapes, some cut short, some with extra elements. */
const moveArray: fc.Arbitrary<PlistValue> = fc
  .record({
    name: fc.oneof(
      { arbitrary: fc.constantFrom(...MOVE_NAMES), weight: 9 },
      { arbitrary: fc.constantFrom(...DL_NAMES), weight: 1 },
    ),
    map: fc.oneof(
      { arbitrary: moveMap, weight: 8 },
      { arbitrary: anyPlistValue, weight: 1 },
      { arbitrary: fc.array(pathish, { maxLength: 3 }), weight: 1 },
    ),
    second: fc.oneof(
      { arbitrary: fc.constant({}), weight: 4 },
      { arbitrary: anyPlistValue, weight: 1 },
    ),
    progress,
    extra: fc.oneof(
      fc.array(anyPlistValue, { maxLength: 14 }),
      // Equal strings are written once: elements that share an object.
      fc.array(fc.constantFrom('', 'x', DlMessageName.MOVE_ITEMS), { maxLength: 14 }),
    ),
    cut: fc.option(fc.integer({ min: 0, max: 17 }), { nil: undefined }),
  })
  .map(({ name, map, second, progress, extra, cut }) => {
    const a: PlistValue[] = [name, map, second, progress, ...extra];
    return cut === undefined ? a : a.slice(0, cut);
  });

/** DL arrays of any name (as test/fuzz/device-link.test.ts makes them). */
const dlArray = dlArrays(pathish, moveMap);

/** Bounds a connection might set, tight enough to be reached. */
const limits: fc.Arbitrary<Partial<PlistLimits> | undefined> = fc.oneof(
  { arbitrary: fc.constant(undefined), weight: 3 },
  {
    arbitrary: fc.record({
      maxDepth: fc.integer({ min: 0, max: 6 }),
      maxObjects: fc.integer({ min: 1, max: 60 }),
    }),
    weight: 1,
  },
);

test('DL frames: any DL array reads the same in place as decoded whole', T, () => {
  fc.assert(
    fc.property(
      fc.oneof({ arbitrary: moveArray, weight: 3 }, { arbitrary: dlArray, weight: 1 }),
      limits,
      (v, lim) => assertAgree(encodeBinaryPlist(v), lim),
    ),
    fuzzParams(),
  );
});

/** Valid MoveItems frames of several shapes, for byte mutation. */
const SAMPLES: Buffer[] = (
  [
    dlMoveItems({ 'a/b.tmp': 'a/b', 'c/d.tmp': 'c/d' }, 50),
    dlMoveItems({ '10': 'x/10', '2': 'x/2', z: 'y', 'é/😀': '世界' }, 12.5),
    dlMoveItems({ ['p'.repeat(4000)]: 'q'.repeat(4096), r: 's' }),
    dlMoveItems({}),
    [DlMessageName.MOVE_FILES, { one: 'two', three: 'four' }, {}, new PlistReal(100), 0, 'x'],
    [DlMessageName.MOVE_ITEMS, { k: 'v', k2: 'v', k3: 'k' }, {}, 3n, ['k', 'v'], { k: 'v' }],
  ] as PlistValue[]
).map((v) => encodeBinaryPlist(v));

test('DL frames: byte-mutated MoveItems frames read the same in place as decoded whole', T, () => {
  fc.assert(
    fc.property(mutated(SAMPLES), (frame) => assertAgree(frame, undefined, true)),
    fuzzParams(),
  );
});

test('DL frames: a MoveItems frame with one byte replaced reads the same both ways', T, () => {
  const sample = fc.constantFrom(...SAMPLES);
  fc.assert(
    fc.property(
      sample.chain((s) => fc.tuple(fc.constant(s), fc.nat(s.length - 1), fc.nat(255))),
      ([s, at, byte]) => {
        const frame = Buffer.from(s);
        frame[at] = byte;
        assertAgree(frame, undefined, true);
      },
    ),
    fuzzParams(),
  );
});
