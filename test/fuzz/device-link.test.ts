// Fuzzing Device Link (src/protocol/device-link): DL message shapes in both directions, status
// codes, multi-status payloads, and the raw file stream that follows Upload/DownloadFiles.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  DlFileCode,
  DlFileStreamDecoder,
  dlContentsOfDirectory,
  dlCopyItem,
  dlCreateDirectory,
  dlDisconnect,
  dlDownloadFiles,
  dlMoveItems,
  dlMultiStatusPayload,
  dlPing,
  dlProcessMessage,
  dlRemoveItems,
  dlStatusResponse,
  dlUploadFiles,
  dlVersionExchange,
  dlVersionsOk,
  encodeDlErrorBlock,
  encodeDlFile,
  encodeDlPath,
  encodeDlStreamEnd,
  MAX_DL_PATH_BYTES,
  normalizeDlStatusCode,
  parseDeviceDlMessage,
  parseDlMultiStatus,
  parseHostDlMessage,
  type DlBlock,
} from '../../src/protocol/device-link';
import { decodePlist, encodeBinaryPlist, type PlistValue } from '../../src/protocol/plist';
import {
  chunkings,
  dictOf,
  dlArrays,
  endedReader,
  fuzzParams,
  onlyMooringErrors,
  onlyMooringErrorsAsync,
  testTimeoutMs,
} from './harness';

const T = { timeout: testTimeoutMs() };
/** Device paths, with the names that are special to JS objects mixed in. */
const path = fc.oneof(
  {
    arbitrary: fc
      .string({ unit: 'grapheme', minLength: 1, maxLength: 30 })
      .filter((p) => !p.includes('\0')),
    weight: 9,
  },
  {
    arbitrary: fc.constantFrom('__proto__', 'constructor', 'toString', 'hasOwnProperty'),
    weight: 1,
  },
);

/** DL arrays: a known (or unknown) name followed by elements of plausible or arbitrary types. */
const dlArray = dlArrays(
  path,
  fc.array(path, { maxLength: 2 }).map((ps) => dictOf(ps.map((p) => [p, `${p}.new`] as const))),
);

test('DL messages: any array parses to a typed message or fails MALFORMED/LIMIT', T, () => {
  fc.assert(
    fc.property(dlArray, (v) => {
      const m = onlyMooringErrors(() => parseDeviceDlMessage(v), ['MALFORMED', 'LIMIT']);
      if (m && 'paths' in m) for (const p of m.paths) assert.ok(p.length > 0 && !p.includes('\0'));
      if (m?.type === 'MoveItems')
        for (const [a, b] of m.moves) assert.ok(a.length > 0 && b.length > 0);
      onlyMooringErrors(() => parseHostDlMessage(v), ['MALFORMED', 'LIMIT']);
      if (Array.isArray(v)) {
        onlyMooringErrors(() => parseDlMultiStatus(v[1]), ['MALFORMED', 'LIMIT']);
        onlyMooringErrors(() => normalizeDlStatusCode(v[1]), ['MALFORMED']);
      }
    }),
    fuzzParams(),
  );
});

test(
  'DL messages: what the builders make, the parsers read back (through a binary plist)',
  T,
  () => {
    const back = (v: PlistValue): PlistValue => decodePlist(encodeBinaryPlist(v));
    fc.assert(
      fc.property(
        fc.array(path, { maxLength: 5 }),
        path,
        path,
        fc.integer({ min: -(2 ** 31), max: 2 ** 31 }),
        fc.nat(100),
        fc.nat(),
        (paths, a, b, code, progress, n) => {
          assert.deepEqual(parseDeviceDlMessage(back(dlDownloadFiles(paths, progress))), {
            type: 'DownloadFiles',
            paths,
            progress,
          });
          const moves = Object.fromEntries(paths.map((p) => [p, `${p}/x`]));
          const mv = parseDeviceDlMessage(back(dlMoveItems(moves, progress)));
          assert.deepEqual(mv.type === 'MoveItems' && Object.fromEntries(mv.moves), moves);
          assert.deepEqual(parseDeviceDlMessage(back(dlRemoveItems(paths))).type, 'RemoveItems');
          assert.deepEqual(parseDeviceDlMessage(back(dlCopyItem(a, b))), {
            type: 'CopyItem',
            source: a,
            destination: b,
          });
          assert.deepEqual(parseDeviceDlMessage(back(dlCreateDirectory(a))), {
            type: 'CreateDirectory',
            path: a,
          });
          assert.deepEqual(parseDeviceDlMessage(back(dlContentsOfDirectory(a))), {
            type: 'ContentsOfDirectory',
            path: a,
          });
          assert.deepEqual(parseDeviceDlMessage(back(dlUploadFiles(progress, n))), {
            type: 'UploadFiles',
            progress,
            totalBytes: n,
          });
          assert.deepEqual(parseDeviceDlMessage(back(dlVersionExchange(300, n))), {
            type: 'VersionExchange',
            major: 300,
            minor: n,
          });
          assert.deepEqual(parseHostDlMessage(back(dlVersionsOk(n))), {
            type: 'VersionExchange',
            status: 'DLVersionsOk',
            major: n,
          });
          const errors = new Map(paths.map((p) => [p, { code, text: `e ${p}` }]));
          const st = parseHostDlMessage(
            back(dlStatusResponse(code, 'Multi status', dlMultiStatusPayload(errors))),
          );
          assert.ok(st.type === 'StatusResponse' && st.code === code);
          assert.deepEqual(parseDlMultiStatus(st.payload), errors);
          // 2^64-wrapped codes (as pymobiledevice3 sends) read as the negative number they stand for.
          if (code < 0) assert.equal(normalizeDlStatusCode((1n << 64n) + BigInt(code)), code);
          assert.deepEqual(parseHostDlMessage(back(dlDisconnect(a))), {
            type: 'Disconnect',
            reason: a,
          });
          assert.deepEqual(parseHostDlMessage(back(dlPing())), {
            type: 'Ping',
            message: undefined,
          });
          assert.deepEqual(parseHostDlMessage(back(dlProcessMessage({ a }))), {
            type: 'ProcessMessage',
            message: { a },
          });
        },
      ),
      fuzzParams(0.5),
    );
  },
);

type FileEntry = { path: string; data: Buffer; error?: string };

/** Reads a whole stream the way the host's upload handler walks it: path, blocks, next path. */
async function readAll(decoder: DlFileStreamDecoder): Promise<FileEntry[]> {
  const out: FileEntry[] = [];
  for (;;) {
    const p = await decoder.readPath();
    if (p === null) return out;
    const chunks: Buffer[] = [];
    let block: DlBlock;
    do {
      block = await decoder.readBlock();
      if (block.kind === 'data') chunks.push(block.data);
    } while (block.kind === 'data');
    out.push({
      path: p,
      data: Buffer.concat(chunks),
      ...(block.kind === 'success' ? {} : { error: block.message }),
    });
  }
}

test(
  'file stream: files encoded in chunks decode to the same files, whatever the TCP chunking',
  T,
  async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            path,
            data: fc.uint8Array({ maxLength: 300 }).map((u) => Buffer.from(u)),
            chunk: fc.integer({ min: 1, max: 128 }),
            error: fc.option(fc.string({ maxLength: 20 }), { nil: undefined }),
          }),
          { maxLength: 4 },
        ),
        chunkings,
        async (files, chunks) => {
          const wire = Buffer.concat([
            ...files.flatMap((f) =>
              f.error === undefined
                ? encodeDlFile(f.path, f.data, f.chunk)
                : [
                    encodeDlPath(f.path),
                    ...encodeDlFile(f.path, f.data, f.chunk).slice(1, -1),
                    encodeDlErrorBlock(DlFileCode.REMOTE_ERROR, f.error),
                  ],
            ),
            encodeDlStreamEnd(),
          ]);
          const got = await readAll(
            new DlFileStreamDecoder(endedReader(wire, chunks), { timeoutMs: 5_000 }),
          );
          assert.deepEqual(
            got,
            files.map((f) => ({
              path: f.path,
              data: f.data,
              ...(f.error === undefined ? {} : { error: f.error }),
            })),
          );
        },
      ),
      fuzzParams(0.5),
    );
  },
);

test('file stream: hostile bytes end in files or a MooringError, never a hang', T, async () => {
  const valid = Buffer.concat([
    ...encodeDlFile('Manifest.db', Buffer.alloc(40, 7), 16),
    encodeDlStreamEnd(),
  ]);
  const hostile = fc.oneof(
    fc.uint8Array({ maxLength: 120 }).map((u) => Buffer.from(u)),
    fc
      .tuple(fc.nat(valid.length - 1), fc.constantFrom(0, 1, 6, 0x0b, 0x0c, 0x7f, 0xff))
      .map(([at, b]) => {
        const c = Buffer.from(valid);
        c[at] = b;
        return c;
      }),
    fc.constantFrom(0, 1, MAX_DL_PATH_BYTES + 1, 0x7fffffff, 0xffffffff).map((len) => {
      const h = Buffer.alloc(4);
      h.writeUInt32BE(len);
      return Buffer.concat([encodeDlPath('a'), h, Buffer.from([0x0c, 1, 2])]);
    }),
  );
  await fc.assert(
    fc.asyncProperty(hostile, chunkings, async (bytes, chunks) => {
      const decoder = new DlFileStreamDecoder(endedReader(bytes, chunks), { timeoutMs: 5_000 });
      const files = await onlyMooringErrorsAsync(
        () => readAll(decoder),
        ['MALFORMED', 'LIMIT', 'FRAME_TOO_LARGE', 'CLOSED'],
      );
      for (const f of files ?? []) {
        assert.ok(Buffer.byteLength(f.path) <= MAX_DL_PATH_BYTES && !f.path.includes('\0'));
      }
    }),
    fuzzParams(),
  );
});
