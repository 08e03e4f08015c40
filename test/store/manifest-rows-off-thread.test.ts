import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { fileIdFor } from '../../src/format/file-id';
import { encodeMbFile, S_IFDIR } from '../../src/format/mbfile';
import {
  iterateManifestDb,
  writeManifestDb,
  type ManifestRowFacts,
  type ManifestRowProblem,
} from '../../src/format/manifest-db';
import { manifestRows } from '../../src/store/manifest-rows-off-thread';
import { BATCH_ROWS, BATCHES_AHEAD } from '../../src/store/manifest-rows.worker';
import { isMooringError } from '../../src/util/errors';
import { SAMPLE_MBFILE } from '../format/samples';
import { tempDirs } from '../helpers/temp-dirs';

const { tmp, cleanup } = tempDirs('mooring-rows-thread-');
after(cleanup);

/** Rows a sequence of events: a valid row's facts, or an invalid row's problem. */
type Seen = ['row', string, string, string, number, number, string | undefined] | ['bad', string];

function rowEvent(r: ManifestRowFacts): Seen {
  return [
    'row',
    r.fileId,
    r.domain,
    r.relativePath,
    r.flags,
    r.file.size,
    r.file.digest?.toString('hex'),
  ];
}

/**
 * A Manifest.db of `n` rows across several batches: files with and without a digest, folders,
 * and invalid rows first, at a batch's edge, in runs, and last.
 */
function manifestWithBadRows(n: number): { file: string; bad: number } {
  const file = path.join(tmp(), 'Manifest.db');
  writeManifestDb(file, []);
  const db = new Database(file);
  const ins = db.prepare('INSERT INTO Files VALUES (?, ?, ?, ?, ?)');
  const badAt = new Set([0, BATCH_ROWS - 1, BATCH_ROWS, 2500, 2501, 2502, n - 1]);
  db.transaction(() => {
    for (let i = 0; i < n; i++) {
      const rel = `Library/f${i}`;
      if (badAt.has(i)) {
        // A fileID that is not SHA-1(domain-relativePath).
        ins.run(
          `${i}`.padStart(40, 'e'),
          'HomeDomain',
          rel,
          1,
          encodeMbFile({ ...SAMPLE_MBFILE, relativePath: rel }),
        );
        continue;
      }
      const dir = i % 97 === 0;
      const { digest: _, ...noDigest } = SAMPLE_MBFILE;
      const rec = dir
        ? { ...noDigest, relativePath: rel, mode: S_IFDIR | 0o755, size: 0 }
        : i % 3 === 0
          ? { ...noDigest, relativePath: rel, size: i }
          : { ...SAMPLE_MBFILE, relativePath: rel, size: i * 7, digest: Buffer.alloc(20, i % 251) };
      ins.run(fileIdFor('HomeDomain', rel), 'HomeDomain', rel, dir ? 2 : 1, encodeMbFile(rec));
    }
  })();
  db.close();
  return { file, bad: badAt.size };
}

function inThread(file: string, maxRows?: number): Seen[] {
  const seen: Seen[] = [];
  for (const r of iterateManifestDb(file, {
    ...(maxRows !== undefined ? { maxRows } : {}),
    onInvalid: (p: ManifestRowProblem) => seen.push(['bad', p.problem]),
  }))
    seen.push(rowEvent(r));
  return seen;
}

async function offThread(
  file: string,
  o: { onWorker?: (w: Worker) => void; maxRows?: number; offThreadBytes?: number } = {},
): Promise<Seen[]> {
  const seen: Seen[] = [];
  for await (const r of manifestRows(file, {
    offThreadBytes: 0,
    ...o,
    onInvalid: (p) => seen.push(['bad', p.problem]),
  }))
    seen.push(rowEvent(r));
  return seen;
}

test('rows read on another thread come as iterateManifestDb gives them, invalid rows in their place', async () => {
  const { file, bad } = manifestWithBadRows(3 * BATCH_ROWS + 100);
  const expected = inThread(file);
  assert.equal(expected.filter((e) => e[0] === 'bad').length, bad);
  assert.ok(expected.some((e) => e[0] === 'row' && e[6] !== undefined));
  assert.ok(expected.some((e) => e[0] === 'row' && e[6] === undefined && e[4] === 1));
  let thread: Worker | undefined;
  const seen = await offThread(file, { onWorker: (w) => (thread = w) });
  assert.ok(thread, 'the rows were read on another thread');
  assert.deepEqual(seen, expected);
  // Below the size threshold they are read here, the same.
  let none: Worker | undefined;
  assert.deepEqual(
    await offThread(file, { offThreadBytes: Infinity, onWorker: (w) => (none = w) }),
    expected,
  );
  assert.equal(none, undefined);
});

test('a thread that ends early, or at once, leaves the rest to this one: no row lost or repeated', async () => {
  const { file } = manifestWithBadRows(6 * BATCH_ROWS + 10);
  const expected = inThread(file);
  // Ended after its first batch: the rest is read here, from the row it had reached.
  let exitedBeforeLastRow = false;
  let exited = false;
  const seen: Seen[] = [];
  for await (const r of manifestRows(file, {
    offThreadBytes: 0,
    onInvalid: (p) => seen.push(['bad', p.problem]),
    onWorker: (w) => {
      w.once('exit', () => (exited = true));
      w.once('message', () => void w.terminate());
    },
  })) {
    seen.push(rowEvent(r));
    if (seen.length === expected.length - 1) exitedBeforeLastRow = exited;
  }
  assert.deepEqual(seen, expected);
  assert.ok(exitedBeforeLastRow, 'the thread had ended before the last rows were read');
  // Ended before it posted anything (as a thread that cannot load its modules): all read here.
  assert.deepEqual(await offThread(file, { onWorker: (w) => void w.terminate() }), expected);
});

test('errors come from the thread as iterateManifestDb throws them', async () => {
  const { file } = manifestWithBadRows(50);
  const limit = (() => {
    try {
      inThread(file, 10);
    } catch (e) {
      return e;
    }
    assert.fail('the limit was not enforced in-thread');
  })();
  await assert.rejects(offThread(file, { maxRows: 10 }), (e) => {
    assert.ok(isMooringError(e, 'LIMIT'));
    assert.equal(e.message, (limit as Error).message);
    return true;
  });
  const notDb = path.join(tmp(), 'Manifest.db');
  writeFileSync(notDb, 'not a database, but a user-visible problem');
  let inThreadError: unknown;
  try {
    inThread(notDb);
  } catch (e) {
    inThreadError = e;
  }
  assert.ok(isMooringError(inThreadError, 'MALFORMED'));
  await assert.rejects(offThread(notDb), (e) => {
    assert.ok(isMooringError(e, 'MALFORMED'));
    assert.equal(e.message, (inThreadError as Error).message);
    return true;
  });
});

test('the thread posts only a few batches ahead of the reader, and ends when the reader stops', async () => {
  const { file } = manifestWithBadRows((BATCHES_AHEAD + 4) * BATCH_ROWS);
  let thread: Worker | undefined;
  let posted = 0;
  const rows = manifestRows(file, {
    offThreadBytes: 0,
    onInvalid: () => undefined,
    onWorker: (w) => {
      thread = w;
      w.on('message', () => posted++);
    },
  });
  await rows.next(); // the first batch is in use, not yet used up
  while (posted < BATCHES_AHEAD) await new Promise((r) => setTimeout(r, 10));
  // Given time, a thread without the credit would post all of them.
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(posted, BATCHES_AHEAD);
  const exited = once(thread!, 'exit');
  await rows.return(undefined);
  await exited;
});
