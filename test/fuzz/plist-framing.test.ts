// Fuzzing PlistConnection's `[u32 BE length][plist]` framing (src/transport/plist-connection.ts)
// over a real stream: every receive settles, frames survive any chunking, and a hostile length
// prefix is refused before its body is awaited.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Duplex } from 'node:stream';
import fc from 'fast-check';
import { encodeBinaryPlist, encodeXmlPlist, type PlistValue } from '../../src/protocol/plist';
import { PlistConnection } from '../../src/transport/plist-connection';
import { isMooringError } from '../../src/util/errors';
import { exactPlistValue, fuzzParams, onlyMooringErrorsAsync, testTimeoutMs } from './harness';

const T = { timeout: testTimeoutMs() };

/** A Duplex whose readable side delivers `bytes` in the given pieces, then ends; writes vanish. */
function feed(bytes: Buffer, pieces: readonly number[]): Duplex {
  const d = new Duplex({
    read() {},
    write(_c, _e, cb) {
      cb();
    },
  });
  let off = 0;
  let i = 0;
  while (off < bytes.length) {
    const n = pieces.length === 0 ? bytes.length : Math.max(1, pieces[i++ % pieces.length]!);
    d.push(bytes.subarray(off, off + n));
    off += n;
  }
  d.push(null);
  return d;
}

function frame(body: Buffer): Buffer {
  const h = Buffer.alloc(4);
  h.writeUInt32BE(body.length, 0);
  return Buffer.concat([h, body]);
}

const pieces = fc.oneof(
  fc.constant<number[]>([]),
  fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 1, maxLength: 6 }),
);

test('framing: generated messages come back in order, whatever the chunking', T, async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.tuple(exactPlistValue, fc.boolean()), { minLength: 1, maxLength: 5 }),
      pieces,
      async (msgs, chunks) => {
        const wire = Buffer.concat(
          msgs.map(([v, binary]) => frame(binary ? encodeBinaryPlist(v) : encodeXmlPlist(v))),
        );
        const conn = new PlistConnection(feed(wire, chunks), { readTimeoutMs: 5_000 });
        const got: PlistValue[] = [];
        for (let i = 0; i < msgs.length; i++) got.push(await conn.receive());
        assert.deepStrictEqual(
          got,
          msgs.map(([v]) => v),
        );
        // Then the stream ends: CLOSED, not a hang.
        await assert.rejects(conn.receive(), (e: unknown) => isMooringError(e, 'CLOSED'));
        conn.close();
      },
    ),
    fuzzParams(0.5),
  );
});

test('framing: hostile bytes end every receive in a value or a MooringError', T, async () => {
  const valid = frame(encodeXmlPlist({ Request: 'QueryType' }));
  const hostile = fc.oneof(
    fc.uint8Array({ maxLength: 80 }).map((u) => Buffer.from(u)),
    // A plausible header in front of random bytes: lengths of 0, small, just past the limit, 4 GiB.
    fc
      .tuple(
        fc.constantFrom(0, 1, 8, 64, 1024, 32 * 1024 * 1024 + 1, 0xffffffff),
        fc.uint8Array({ maxLength: 80 }),
      )
      .map(([len, rest]) => {
        const h = Buffer.alloc(4);
        h.writeUInt32BE(len, 0);
        return Buffer.concat([h, rest]);
      }),
    fc.tuple(fc.nat(valid.length - 1), fc.nat(255)).map(([at, b]) => {
      const c = Buffer.concat([valid, valid]);
      c[at] = b;
      return c;
    }),
  );
  await fc.assert(
    fc.asyncProperty(hostile, pieces, async (bytes, chunks) => {
      const conn = new PlistConnection(feed(bytes, chunks), {
        readTimeoutMs: 5_000,
        maxFrameBytes: 4096,
      });
      // Keep receiving until the connection fails: at most one frame per 4 bytes can exist.
      for (let i = 0; i <= bytes.length / 4 + 1; i++) {
        const r = await onlyMooringErrorsAsync(
          () => conn.receive(),
          ['CLOSED', 'MALFORMED', 'LIMIT', 'FRAME_TOO_LARGE'],
        );
        if (r === undefined) break;
      }
      conn.close();
    }),
    fuzzParams(),
  );
});
