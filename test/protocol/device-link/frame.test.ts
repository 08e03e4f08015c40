// parseDeviceDlFrame (src/protocol/device-link/frame.ts): a binary MoveItems read in place, every
// other frame decoded whole; checked against parseDeviceDlMessage(decodePlist(frame)).
// The generated and byte-mutated comparisons are in test/fuzz/device-link-frame.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isMooringError } from '../../../src/util/errors';
import {
  DlMessageName,
  dlDeviceReady,
  dlDownloadFiles,
  dlMoveItems,
  parseDeviceDlFrame,
  parseDeviceDlMessage,
  type DeviceDlMessage,
  type KeptFrame,
} from '../../../src/protocol/device-link';
import {
  PlistReal,
  decodePlist,
  encodeBinaryPlist,
  encodeXmlPlist,
  type PlistLimits,
  type PlistValue,
} from '../../../src/protocol/plist';
import { handBuilt } from '../plist/samples';

type Move = [from: string, to: string];

/** A type-5 string object (1-byte length when 15 or longer). */
function str(s: string): Buffer {
  const body = Buffer.from(s, 'latin1');
  const head =
    body.length < 15 ? Buffer.from([0x50 | body.length]) : Buffer.from([0x5f, 0x10, body.length]);
  return Buffer.concat([head, body]);
}

/** The MoveItems a frame holds, asserted to be one. */
function moveItems(m: DeviceDlMessage): Extract<DeviceDlMessage, { type: 'MoveItems' }> {
  assert.equal(m.type, 'MoveItems');
  return m as Extract<DeviceDlMessage, { type: 'MoveItems' }>;
}

function sorted(moves: Iterable<Move>): Move[] {
  return [...moves].sort(([a, b], [c, d]) => (a < c ? -1 : a > c ? 1 : b < d ? -1 : b > d ? 1 : 0));
}

function eager(frame: Buffer, limits?: Partial<PlistLimits>): DeviceDlMessage {
  return parseDeviceDlMessage(decodePlist(frame, limits));
}

/** Both paths refuse `frame` with the same MooringError; returns it. */
function bothRefuse(frame: Buffer, limits?: Partial<PlistLimits>): Error {
  let expected: unknown;
  try {
    eager(frame, limits);
  } catch (e) {
    expected = e;
  }
  assert.ok(isMooringError(expected), `the eager path accepted ${frame.toString('hex')}`);
  assert.throws(
    () => parseDeviceDlFrame(frame, limits),
    (e: unknown) => {
      assert.ok(isMooringError(e), `not a MooringError: ${String(e)}`);
      assert.equal(e.code, expected.code);
      assert.equal(e.message, expected.message);
      return true;
    },
    `parseDeviceDlFrame accepted what the eager path refuses (${expected.code}: ${expected.message})`,
  );
  return expected;
}

/** The device's MoveItems [name, {key_i: value_i}, {}, 50], its dict written as given. */
function handMoveItems(keys: string[], values: string[]): Buffer {
  // 0 top; 1 name; 2 the dict; 3 {}; 4 the progress; then the distinct keys, then the values.
  const distinct = [...new Set(keys)];
  const keyIndex = (k: string): number => 5 + distinct.indexOf(k);
  const refs = [...keys.map(keyIndex), ...values.map((_, i) => 5 + distinct.length + i)];
  assert.ok(refs.length / 2 < 15);
  return handBuilt([
    Buffer.from([0xa4, 1, 2, 3, 4]),
    str(DlMessageName.MOVE_ITEMS),
    Buffer.from([0xd0 | keys.length, ...refs]),
    Buffer.from([0xd0]),
    Buffer.from([0x10, 50]),
    ...distinct.map(str),
    ...values.map(str),
  ]);
}

test('a binary MoveItems of 5,000 moves is read in place: the eager moves, in the device order', () => {
  // Not integer-like, so a JS object keeps the insertion order, and not sorted.
  const moves: Move[] = Array.from({ length: 5000 }, (_, i) => {
    const n = (i * 7919) % 5000;
    return [`Snapshot/f${n}.tmp`, `Snapshot/${n % 7}/f${n}`];
  });
  const frame = encodeBinaryPlist(dlMoveItems(Object.fromEntries(moves), 42.5));
  const m = moveItems(parseDeviceDlFrame(frame));
  assert.ok(!Array.isArray(m.moves), 'read in place, not decoded into an array');
  assert.equal(m.name, DlMessageName.MOVE_ITEMS);
  assert.equal(m.progress, 42.5);
  assert.deepEqual([...m.moves], moves);
  assert.deepEqual([...m.moves], moves, 'iterable more than once');
  const e = moveItems(eager(frame));
  assert.deepEqual([...m.moves], [...e.moves]);
  assert.deepEqual({ ...m, moves: [] }, { ...e, moves: [] });
});

test('MoveFiles and its other elements are read as the eager path reads them', () => {
  const cases: PlistValue[] = [
    [DlMessageName.MOVE_FILES, { a: 'b' }, {}, new PlistReal(150), 0, 'extra', [1, 2]],
    [DlMessageName.MOVE_ITEMS, { a: 'b' }, 'not a dict', -3n],
    [DlMessageName.MOVE_ITEMS, { a: 'b' }, {}, 'progress as text'],
    [DlMessageName.MOVE_ITEMS, {}, {}, new PlistReal(Number.NaN)],
  ];
  for (const v of cases) {
    const frame = encodeBinaryPlist(v);
    const m = moveItems(parseDeviceDlFrame(frame));
    assert.ok(!Array.isArray(m.moves));
    const e = moveItems(eager(frame));
    assert.deepEqual({ ...m, moves: [...m.moves] }, { ...e, moves: [...e.moves] });
  }
});

test('a key sent twice is two moves in place (the eager decode keeps its last value)', () => {
  const frame = handMoveItems(['a/k', 'a/k'], ['b/1', 'b/2']);
  assert.equal(frame.toString('latin1').split('a/k').length, 2, "'a/k' is one object, used twice");
  const m = moveItems(parseDeviceDlFrame(frame));
  assert.deepEqual(
    [...m.moves],
    [
      ['a/k', 'b/1'],
      ['a/k', 'b/2'],
    ],
  );
  assert.deepEqual([...moveItems(eager(frame)).moves], [['a/k', 'b/2']]);
});

test('in place, moves keep the device order; a decoded dict lists integer-like keys first', () => {
  const frame = handMoveItems(['b', '10', '2'], ['B', 'TEN', 'TWO']);
  const expected: Move[] = [
    ['b', 'B'],
    ['10', 'TEN'],
    ['2', 'TWO'],
  ];
  assert.deepEqual([...moveItems(parseDeviceDlFrame(frame)).moves], expected);
  const e = [...moveItems(eager(frame)).moves];
  assert.deepEqual(e, [
    ['2', 'TWO'],
    ['10', 'TEN'],
    ['b', 'B'],
  ]);
  assert.deepEqual(sorted(e), sorted(expected));
});

test('an XML MoveItems is decoded whole, as before', () => {
  const moves = { 'x/1.tmp': 'x/1', '7': 'seven', 'é/😀': '世界' };
  const frame = Buffer.from(encodeXmlPlist(dlMoveItems(moves, 30)));
  let kept = 0;
  const m = moveItems(
    parseDeviceDlFrame(frame, undefined, (f) => {
      kept++;
      return { buf: f, current: () => true };
    }),
  );
  assert.equal(kept, 0, 'keep is for binary frames read in place');
  assert.ok(Array.isArray(m.moves));
  assert.deepEqual(m, eager(frame));
  assert.deepEqual(Object.fromEntries(m.moves), moves);
  assert.equal(m.progress, 30);
});

test('other messages are decoded whole, without keeping their frame', () => {
  const keep = (): KeptFrame => assert.fail('keep called for a message that is not MoveItems');
  const others: PlistValue[] = [
    dlDeviceReady(),
    dlDownloadFiles(['a', 'b'], 10),
    ['DLMessageRemoveItems', ['a'], {}, new PlistReal(1)],
    ['DLMessageBogus', { a: 'b' }, {}, 1],
  ];
  for (const v of others) {
    const frame = encodeBinaryPlist(v);
    assert.deepEqual(parseDeviceDlFrame(frame, undefined, keep), eager(frame));
  }
});

test('keep: moves are read from the kept copy, and only while it is current', () => {
  const expected: Move[] = [
    ['a/1.tmp', 'a/1'],
    ['b/2.tmp', 'b/2'],
    ['c/3.tmp', 'c/3'],
  ];
  const frame = encodeBinaryPlist(dlMoveItems(Object.fromEntries(expected), 50));
  let current = true;
  const copies: Buffer[] = [];
  const m = moveItems(
    parseDeviceDlFrame(frame, undefined, (f) => {
      assert.equal(f, frame);
      const copy = Buffer.from(f);
      copies.push(copy);
      return { buf: copy, current: () => current };
    }),
  );
  assert.equal(copies.length, 1);
  assert.equal(m.progress, 50);
  // The frame itself may be reused once parsed: the moves do not come from it.
  frame.fill(0);
  assert.deepEqual([...m.moves], expected);
  // They come from the copy: a change there shows.
  const copy = copies[0]!;
  copy[copy.indexOf('b/2.tmp')] = 'z'.charCodeAt(0);
  assert.deepEqual([...m.moves][1], ['z/2.tmp', 'b/2']);
  // Once the copy is no longer current, reading it is a plain Error (a bug in the caller).
  current = false;
  const stale = (e: unknown): boolean =>
    e instanceof Error &&
    !isMooringError(e) &&
    /after the next message had arrived/.test(e.message);
  assert.throws(() => [...m.moves], stale);
  // …checked at each move, not only at the start.
  current = true;
  const it = m.moves[Symbol.iterator]();
  assert.deepEqual(it.next().value, expected[0]);
  current = false;
  assert.throws(() => it.next(), stale);
});

test('without keep, a MoveItems is read from the frame itself', () => {
  const frame = encodeBinaryPlist(dlMoveItems({ 'a/1.tmp': 'a/1' }));
  const m = moveItems(parseDeviceDlFrame(frame));
  frame[frame.indexOf('a/1.tmp')] = 'q'.charCodeAt(0);
  assert.deepEqual([...m.moves], [['q/1.tmp', 'a/1']]);
});

test('what the eager path refuses is refused with its error', () => {
  const long = 'p'.repeat(4097);
  const cases: Array<[PlistValue, RegExp]> = [
    [[DlMessageName.MOVE_ITEMS, { a: 'b' }, {}], /needs at least 4 elements, got 3/],
    [[DlMessageName.MOVE_ITEMS, ['a', 'b'], {}, 0], /map is not a dict/],
    [[DlMessageName.MOVE_ITEMS, { a: 5 }, {}, 0], /destination is not a string/],
    [[DlMessageName.MOVE_ITEMS, { a: '' }, {}, 0], /destination is empty/],
    [[DlMessageName.MOVE_FILES, { '': 'b' }, {}, 0], /MoveFiles source is empty/],
    [[DlMessageName.MOVE_ITEMS, { 'a\0b': 'b' }, {}, 0], /source contains a NUL/],
    [[DlMessageName.MOVE_ITEMS, { a: long }, {}, 0], /destination is longer than 4096 bytes/],
    [[DlMessageName.MOVE_ITEMS, { a: '😀'.repeat(1025) }, {}, 0], /longer than 4096 bytes/],
    [[DlMessageName.MOVE_ITEMS, { a: '\ud800'.repeat(1366) }, {}, 0], /longer than 4096 bytes/],
    [[DlMessageName.MOVE_ITEMS, { a: 'b' }, {}, 0, ...Array(13).fill(0)], /more than 16/],
  ];
  for (const [v, message] of cases) {
    assert.match(bothRefuse(encodeBinaryPlist(v)).message, message);
  }
  // At the limit, the same paths are accepted.
  for (const to of ['p'.repeat(4096), '😀'.repeat(1024), '\ud800'.repeat(1365)]) {
    const m = moveItems(parseDeviceDlFrame(encodeBinaryPlist(dlMoveItems({ [to]: to }))));
    assert.ok(!Array.isArray(m.moves), 'read in place');
    assert.deepEqual([...m.moves], [[to, to]]);
  }
  // Bounds: nesting and object count, as the connection's limits set them.
  const frame = encodeBinaryPlist(dlMoveItems({ a: 'b', c: 'd' }));
  assert.match(bothRefuse(frame, { maxDepth: 1 }).message, /deeper than 1 levels/);
  assert.match(bothRefuse(frame, { maxObjects: 8 }).message, /declares 9 objects/);
  // Not a plist at all, or another version of the binary format.
  bothRefuse(Buffer.alloc(0));
  bothRefuse(Buffer.from('bplist00'));
  bothRefuse(Buffer.from('bplist01garbage'));
  bothRefuse(frame.subarray(0, frame.length - 1));
});

test('a MoveItems whose other elements expand past maxObjects is refused, as the eager path refuses it', () => {
  // 0 [1, 2, 4 × 14]; 1 the name; 2 {}; 3 the integer 3; 4 an array of 100,000 references to 3.
  // Each copy of object 4 is 100,001 values, the whole message 1.4 million: over maxObjects.
  const n = 100_000;
  const shared = Buffer.alloc(6 + n, 3);
  shared[0] = 0xaf;
  shared[1] = 0x12;
  shared.writeUInt32BE(n, 2);
  const frame = handBuilt([
    Buffer.from([0xa0 | 0x0f, 0x10, 16, 1, 2, ...Array<number>(14).fill(4)]),
    str(DlMessageName.MOVE_ITEMS),
    Buffer.from([0xd0]),
    Buffer.from([0x10, 3]),
    shared,
  ]);
  assert.match(bothRefuse(frame).message, /expands to more than 1000000 values/);
  // The same with a connection's tighter bound: 5 objects, 6 values.
  const small = encodeBinaryPlist([DlMessageName.MOVE_ITEMS, {}, {}, '', '']);
  assert.match(bothRefuse(small, { maxObjects: 5 }).message, /expands to more than 5 values/);
});
