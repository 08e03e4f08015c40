// Fuzzing AFC packets and bodies (src/protocol/afc): header bounds, whole packets, streamed reads,
// NUL-terminated paths, u64 arguments and key/value info lists.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  AFC_HEADER_BYTES,
  AFC_MAGIC,
  decodeAfcHeader,
  decodeAfcPacket,
  decodeAfcPath,
  decodeKeyValueList,
  decodeU64,
  encodeAfcPacket,
  encodeAfcPath,
  encodeKeyValueList,
  encodeU64s,
  MAX_AFC_INFO_ENTRIES,
  readAfcPacket,
} from '../../src/protocol/afc';
import {
  bytesWithPrefix,
  chunkings,
  endedReader,
  fuzzParams,
  mutated,
  onlyMooringErrors,
  onlyMooringErrorsAsync,
  testTimeoutMs,
} from './harness';

const T = { timeout: testTimeoutMs() };
const bytes = (max: number): fc.Arbitrary<Buffer> =>
  fc.uint8Array({ maxLength: max }).map((u) => Buffer.from(u));
const packet = fc.record({
  packetNum: fc.maxSafeNat(),
  operation: fc.nat(0x40),
  headerData: bytes(64),
  payload: bytes(200),
});

test('AFC packets: encode → decode and streamed read give the packet back', T, async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(packet, { minLength: 1, maxLength: 4 }),
      chunkings,
      async (ps, chunks) => {
        const wire = ps.map((p) => encodeAfcPacket(p));
        const reader = endedReader(Buffer.concat(wire), chunks);
        for (let i = 0; i < ps.length; i++) {
          const p = ps[i]!;
          for (const got of [
            decodeAfcPacket(wire[i]!),
            await readAfcPacket(reader, { timeoutMs: 5_000 }),
          ]) {
            assert.equal(got.packetNum, p.packetNum);
            assert.equal(got.operation, p.operation);
            assert.deepEqual(got.headerData, p.headerData);
            assert.deepEqual(got.payload, p.payload);
            assert.deepEqual(got.data, Buffer.concat([p.headerData, p.payload]));
          }
        }
        await assert.rejects(readAfcPacket(reader, { timeoutMs: 5_000 }), { code: 'CLOSED' });
      },
    ),
    fuzzParams(0.5),
  );
});

test(
  'AFC packets: random and mutated bytes decode within bounds or fail with a MooringError',
  T,
  async () => {
    const samples = [
      encodeAfcPacket({
        packetNum: 1,
        operation: 0x0a,
        headerData: encodeAfcPath('/Books'),
        payload: Buffer.from('x'),
      }),
      encodeAfcPacket({ packetNum: 2, operation: 0x01, headerData: encodeU64s(0) }),
    ];
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(mutated(samples), bytesWithPrefix([AFC_MAGIC], 120)),
        fc.integer({ min: AFC_HEADER_BYTES, max: 4096 }),
        chunkings,
        async (buf, max, chunks) => {
          const h = onlyMooringErrors(
            () => decodeAfcHeader(buf, max),
            ['MALFORMED', 'FRAME_TOO_LARGE'],
          );
          if (h)
            assert.ok(
              h.thisLength >= AFC_HEADER_BYTES &&
                h.thisLength <= h.entireLength &&
                h.entireLength <= max,
            );
          onlyMooringErrors(
            () => decodeAfcPacket(buf, max),
            ['MALFORMED', 'FRAME_TOO_LARGE', 'CLOSED'],
          );
          const reader = endedReader(buf, chunks);
          for (let i = 0; i < 4; i++) {
            const p = await onlyMooringErrorsAsync(
              () => readAfcPacket(reader, { timeoutMs: 5_000, maxPacketBytes: max }),
              ['MALFORMED', 'FRAME_TOO_LARGE', 'CLOSED'],
            );
            if (!p) break;
          }
        },
      ),
      fuzzParams(),
    );
  },
);

test(
  'AFC bodies: paths, u64s and key/value lists round-trip; junk fails with a MooringError',
  T,
  () => {
    const text = fc.string({ unit: 'grapheme', maxLength: 20 }).filter((s) => !s.includes('\0'));
    fc.assert(
      fc.property(
        text,
        fc.array(fc.maxSafeNat(), { maxLength: 4 }),
        fc.uniqueArray(fc.tuple(text, text), { selector: (e) => e[0], maxLength: 8 }),
        bytes(200),
        fc.nat(300),
        (p, nums, entries, junk, at) => {
          const enc = encodeAfcPath(p);
          assert.deepEqual(decodeAfcPath(enc), { path: p, end: enc.length });
          const u = encodeU64s(...nums);
          nums.forEach((n, i) => assert.equal(decodeU64(u, 8 * i, 'n'), n));
          const kv = Object.fromEntries(entries);
          assert.deepEqual({ ...decodeKeyValueList(encodeKeyValueList(kv)) }, kv);
          onlyMooringErrors(() => decodeAfcPath(junk, at % (junk.length + 1)), ['LIMIT']);
          onlyMooringErrors(() => decodeU64(junk, at, 'x'), ['MALFORMED']);
          const list = onlyMooringErrors(() => decodeKeyValueList(junk), ['MALFORMED', 'LIMIT']);
          if (list) assert.ok(Object.keys(list).length <= MAX_AFC_INFO_ENTRIES);
        },
      ),
      fuzzParams(),
    );
  },
);
