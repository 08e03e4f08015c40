/**
 * Shared pieces of the property-based fuzz suite (fast-check). Coverage-guided fuzzing (libFuzzer,
 * Jazzer.js) is not available for Node 20 on these machines, so every parser is driven with
 * generated and mutated inputs instead, and checked against the properties every device-facing
 * parser promises: it returns or throws a MooringError (never a TypeError/RangeError, never a stack
 * overflow), it ends (sync parsers return; stream parsers settle on an ended stream), and where an
 * encoder exists, decode(encode(x)) gives x back.
 *
 * Runs: `FUZZ_RUNS` (default below, sized so the whole suite stays well under a minute on two
 * cores) scales every property; `npm run fuzz` sets it high. `FUZZ_SEED` replays a failure that
 * fast-check reported (it prints seed and path), or a file whose run hung (fuzzSeed prints it first).
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import fc from 'fast-check';
import { isMooringError, type MooringErrorCode } from '../../src/util/errors';
import { StreamReader } from '../../src/util/stream-reader';
import { PlistReal, PlistUid, type PlistDict, type PlistValue } from '../../src/protocol/plist';
import { setDictEntry } from '../../src/protocol/plist/xml';
import { DlMessageName } from '../../src/protocol/device-link';

/** Runs per property in the default (CI) run. */
export const DEFAULT_FUZZ_RUNS = 300;

function envInt(name: string): number | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer`);
  return n;
}

/** Runs for one property: FUZZ_RUNS × weight (weight < 1 for expensive targets), at least 10. */
export function fuzzRuns(weight = 1): number {
  return Math.max(10, Math.round((envInt('FUZZ_RUNS') ?? DEFAULT_FUZZ_RUNS) * weight));
}

let seedOfThisFile: number | undefined;

/**
 * FUZZ_SEED, or one drawn once per test file and written to stderr: a property whose input blocks
 * the process never reports its own seed (test/fuzz/usbmuxd-client once hung CI that way), and
 * `FUZZ_SEED=<it>` on that file gives every property the same inputs again.
 */
export function fuzzSeed(): number {
  if (seedOfThisFile === undefined) {
    seedOfThisFile = envInt('FUZZ_SEED') ?? 1 + Math.floor(Math.random() * 0x7ffffffe);
    const file = path.basename(process.argv[1] ?? 'this file');
    process.stderr.write(
      `${file}: fuzz seed ${seedOfThisFile} (FUZZ_SEED=${seedOfThisFile} repeats its inputs)\n`,
    );
  }
  return seedOfThisFile;
}

/** fast-check parameters for one property. */
export function fuzzParams(weight = 1): fc.Parameters<unknown> {
  return { numRuns: fuzzRuns(weight), seed: fuzzSeed() };
}

/** A long `npm run fuzz` must not be cut by the per-test timeout meant for CI. */
export function testTimeoutMs(): number {
  return envInt('FUZZ_RUNS') === undefined ? 60_000 : 24 * 3600_000;
}

/**
 * Calls `fn`; a MooringError (optionally of the given codes) is an accepted outcome, anything else
 * thrown fails the property with what was thrown.
 */
export function onlyMooringErrors<T>(
  fn: () => T,
  codes?: readonly MooringErrorCode[],
): T | undefined {
  try {
    return fn();
  } catch (e) {
    assertMooring(e, codes);
    return undefined;
  }
}

/** The async form: the promise must settle, with a value or a MooringError. */
export async function onlyMooringErrorsAsync<T>(
  fn: () => Promise<T>,
  codes?: readonly MooringErrorCode[],
): Promise<T | undefined> {
  try {
    return await fn();
  } catch (e) {
    assertMooring(e, codes);
    return undefined;
  }
}

function assertMooring(e: unknown, codes?: readonly MooringErrorCode[]): void {
  if (!isMooringError(e)) {
    const what = e instanceof Error ? `${e.name}: ${e.message}\n${e.stack}` : String(e);
    assert.fail(`threw something other than a MooringError: ${what}`);
  }
  if (codes && !codes.includes(e.code)) {
    assert.fail(`MooringError ${e.code} (${e.message}) is not one of ${codes.join(', ')}`);
  }
}

/**
 * A StreamReader over `bytes`, delivered in the given chunk sizes (cycled), then ended: every read
 * either gets its bytes or fails CLOSED, so a decoder that waits for more than it was given
 * settles instead of hanging.
 */
export function endedReader(bytes: Buffer, chunkSizes: readonly number[] = []): StreamReader {
  const s = new PassThrough();
  const reader = new StreamReader(s);
  if (chunkSizes.length === 0) {
    s.end(bytes);
  } else {
    let off = 0;
    let i = 0;
    while (off < bytes.length) {
      const n = Math.max(1, chunkSizes[i++ % chunkSizes.length]!);
      s.write(bytes.subarray(off, off + n));
      off += n;
    }
    s.end();
  }
  return reader;
}

/** Chunk sizes for endedReader: one piece, or many small ones (byte-at-a-time included). */
export const chunkings = fc.oneof(
  fc.constant<number[]>([]),
  fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 8 }),
);

// ---------------------------------------------------------------------------------------------
// Byte-level mutation of valid samples

type Mutation =
  | { kind: 'set'; at: number; byte: number }
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'delete'; at: number; count: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'interesting'; at: number; width: 1 | 2 | 4 | 8; value: number };

/** Boundary values a mutator writes into length fields (AFL's "interesting" values). */
const INTERESTING = [0, 1, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0xffff, 0x7fffffff, 0xffffffff];

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), byte: fc.nat(255) }),
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.nat(7) }),
  fc.record({
    kind: fc.constant('insert' as const),
    at: fc.nat(),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }),
  }),
  fc.record({
    kind: fc.constant('delete' as const),
    at: fc.nat(),
    count: fc.integer({ min: 1, max: 16 }),
  }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({
    kind: fc.constant('interesting' as const),
    at: fc.nat(),
    width: fc.constantFrom(1 as const, 2 as const, 4 as const, 8 as const),
    value: fc.constantFrom(...INTERESTING),
  }),
);

function applyMutation(b: Buffer, m: Mutation): Buffer {
  if (b.length === 0) return m.kind === 'insert' ? Buffer.from(m.bytes) : b;
  const at = m.at % b.length;
  switch (m.kind) {
    case 'set': {
      const c = Buffer.from(b);
      c[at] = m.byte;
      return c;
    }
    case 'flip': {
      const c = Buffer.from(b);
      c[at] = c[at]! ^ (1 << m.bit);
      return c;
    }
    case 'insert':
      return Buffer.concat([b.subarray(0, at), m.bytes, b.subarray(at)]);
    case 'delete':
      return Buffer.concat([b.subarray(0, at), b.subarray(at + m.count)]);
    case 'truncate':
      return Buffer.from(b.subarray(0, at));
    case 'interesting': {
      const c = Buffer.from(b);
      const start = Math.min(at, Math.max(0, c.length - m.width));
      const v = BigInt(m.value);
      for (let i = 0; i < m.width && start + i < c.length; i++) {
        // Big-endian and little-endian fields both exist: the value's low byte lands last here.
        c[start + i] = Number((v >> BigInt(8 * (m.width - 1 - i))) & 0xffn);
      }
      return c;
    }
  }
}

/** One to eight mutations of one of `samples`. */
export function mutated(samples: readonly Buffer[]): fc.Arbitrary<Buffer> {
  return fc
    .tuple(fc.constantFrom(...samples), fc.array(mutation, { minLength: 1, maxLength: 8 }))
    .map(([base, ms]) => ms.reduce(applyMutation, base));
}

/** Random bytes, sometimes starting with a format's magic so the parser gets past its first check. */
export function bytesWithPrefix(
  prefixes: readonly Buffer[],
  maxLength = 256,
): fc.Arbitrary<Buffer> {
  return fc
    .tuple(fc.constantFrom(Buffer.alloc(0), ...prefixes), fc.uint8Array({ maxLength }))
    .map(([p, rest]) => Buffer.concat([p, rest]));
}

// ---------------------------------------------------------------------------------------------
// Plist values

/** Builds a dict with setDictEntry, so `__proto__` stays an own key as decoders make it. */
export function dictOf(entries: ReadonlyArray<readonly [string, PlistValue]>): PlistDict {
  const d: PlistDict = {};
  for (const [k, v] of entries) setDictEntry(d, k, v);
  return d;
}

const anyString = fc.string({ unit: 'binary', maxLength: 40 });
const asciiKey = fc.oneof(
  fc.string({ unit: 'binary-ascii', maxLength: 12 }),
  fc.constantFrom(
    '__proto__',
    'constructor',
    'toString',
    'valueOf',
    'toJSON',
    'hasOwnProperty',
    'MessageType',
    '0',
    '1',
  ),
);

/** Every value kind the model has, including ones that do not survive both formats exactly. */
export const anyPlistValue: fc.Arbitrary<PlistValue> = fc.letrec<{ v: PlistValue }>((tie) => ({
  v: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    anyString,
    fc.integer(),
    fc.double(),
    fc.bigInt({ min: -(1n << 63n), max: (1n << 64n) - 1n }),
    fc.boolean(),
    // Beyond ~±70,000 years a binary date (double seconds since 2001) cannot hold milliseconds and
    // drifts by 1 ms per round trip: a known, harmless limit of the format, left out here.
    fc.date({ noInvalidDate: true, min: new Date(-1.5e15), max: new Date(1.5e15) }),
    fc.uint8Array({ maxLength: 40 }).map((u) => Buffer.from(u)),
    fc.nat(0xffffffff).map((n) => new PlistUid(n)),
    fc.double().map((n) => new PlistReal(n)),
    fc.array(tie('v'), { maxLength: 5 }),
    fc
      .array(fc.tuple(fc.oneof(asciiKey, anyString), tie('v')), { maxLength: 5 })
      .map((e) => dictOf(e)),
  ),
})).v;

// eslint-disable-next-line no-control-regex
const XML_SAFE = /^[^\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]*$/;

/**
 * Values both codecs carry exactly: safe integers, finite non-zero-sign reals that are not
 * integral (an integral real is written as <integer>), whole-second dates from years 0001–9999,
 * strings without the control characters XML scrubs or lone surrogates UTF-8 cannot hold.
 */
export const exactPlistValue: fc.Arbitrary<PlistValue> = fc.letrec<{ v: PlistValue }>((tie) => {
  const str = fc.string({ unit: 'grapheme', maxLength: 30 }).filter((s) => XML_SAFE.test(s));
  return {
    v: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      str,
      fc.oneof(fc.integer(), fc.maxSafeInteger()),
      fc.double({ noNaN: true, noDefaultInfinity: true }).filter((d) => !Number.isInteger(d)),
      fc.bigInt({ min: 1n << 53n, max: (1n << 64n) - 1n }),
      fc.bigInt({ min: -(1n << 63n), max: -(1n << 53n) - 1n }),
      fc.boolean(),
      fc
        .integer({ min: -62_135_596_800, max: 253_402_300_799 }) // 0001-01-01 … 9999-12-31T23:59:59Z
        .map((s) => new Date(s * 1000)),
      fc.uint8Array({ maxLength: 40 }).map((u) => Buffer.from(u)),
      fc.array(tie('v'), { maxLength: 5 }),
      fc.array(fc.tuple(str, tie('v')), { maxLength: 5 }).map((e) => dictOf(e)),
    ),
  };
}).v;

/** Device Link message names: every one we know, and some that are not. */
export const DL_NAMES = [...Object.values(DlMessageName), 'DLMessageBogus', 'DL', 'DLx', 'NotDL'];

/**
 * DL arrays: a known (or unknown) name followed by elements of plausible or arbitrary types (lists
 * of `path`, `moveMap`s, status-like values), or any value at all.
 */
export function dlArrays(
  path: fc.Arbitrary<string>,
  moveMap: fc.Arbitrary<PlistValue>,
): fc.Arbitrary<PlistValue> {
  return fc.oneof(
    fc
      .tuple(
        fc.constantFrom(...DL_NAMES),
        fc.array(
          fc.oneof(
            anyPlistValue,
            fc.array(path, { maxLength: 4 }),
            moveMap,
            fc.constantFrom(-13, 0, 100, 2n ** 64n - 13n, '___EmptyParameterString___'),
          ),
          { maxLength: 18 },
        ),
      )
      .map(([name, rest]) => [name, ...rest]),
    anyPlistValue,
  );
}
