import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  renameSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import type { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { fileIdFor } from '../../src/format/file-id';
import { encodeMbFile, S_IFDIR } from '../../src/format/mbfile';
import {
  compareManifestDbRows,
  iterateManifestDb,
  writeManifestDb,
  type ComparedRow,
  type ManifestRowFacts,
  type ManifestRowProblem,
} from '../../src/format/manifest-db';
import {
  comparedRows,
  manifestRows,
  RowsReadAhead,
} from '../../src/store/manifest-rows-off-thread';
import {
  BATCH_ROWS,
  BATCHES_AHEAD,
  type ComparedBatch,
  type ManifestRowsMessage,
} from '../../src/store/manifest-rows.worker';
import { isMooringError } from '../../src/util/errors';
import { SAMPLE_MBFILE } from '../format/samples';
import { tempDirs } from '../helpers/temp-dirs';

const { tmp, cleanup } = tempDirs('mooring-rows-thread-');
after(cleanup);

/**
 * Rows as a sequence of events: a valid row's facts, or an invalid row's problem. A row read on
 * another thread comes without its names; its fileID is the SHA-1 of them.
 */
type Seen = ['row', string, number, number, string | undefined] | ['bad', string];

function rowEvent(r: ManifestRowFacts): Seen {
  return ['row', r.fileId, r.flags, r.file.size, r.file.digest?.toString('hex')];
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
  assert.ok(expected.some((e) => e[0] === 'row' && e[4] !== undefined));
  assert.ok(expected.some((e) => e[0] === 'row' && e[4] === undefined && e[2] === 1));
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

test('rows stay as they were read while the thread writes ahead, and after their batch is used', async () => {
  // More batches than the ring has slots (one more than the credit), so slots are reused.
  const { file } = manifestWithBadRows((BATCHES_AHEAD + 4) * BATCH_ROWS);
  const rows = manifestRows(file, { offThreadBytes: 0, onInvalid: () => undefined });
  const kept: ManifestRowFacts[] = [];
  // The first batch in use while the thread posts its credit of batches and begins the next.
  const first = await rows.next();
  assert.equal(first.done, false);
  kept.push(first.value as ManifestRowFacts);
  await new Promise((r) => setTimeout(r, 300));
  for await (const r of rows) kept.push(r);
  const expected = inThread(file).filter((e) => e[0] === 'row');
  assert.ok(
    expected.some((e) => e[4] !== undefined && e[4] !== expected[1]![4]),
    'digests differ',
  );
  assert.deepEqual(kept.map(rowEvent), expected);
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

/** A fileID of the wrong case: identical in both files, yet not one a verified base lets pass. */
const UPPER_ID = fileIdFor('HomeDomain', 'Library/upper').toUpperCase();

/**
 * A base of `n` rows and a new Manifest.db made from it: every 7th row's MBFile changed, every
 * 11th deleted, and rows the comparison must pass on as they are (a fileID that is a blob, flags
 * that are text, a NULL fileID) among new ones; and in both, a row with UPPER_ID.
 */
function comparedPair(n: number): { base: string; next: string } {
  const base = manifestWithBadRows(n).file;
  const b = new Database(base);
  b.prepare('INSERT INTO Files VALUES (?, ?, ?, ?, ?)').run(
    UPPER_ID,
    'HomeDomain',
    'Library/upper',
    1,
    encodeMbFile({ ...SAMPLE_MBFILE, relativePath: 'Library/upper' }),
  );
  b.close();
  const next = path.join(tmp(), 'Manifest.db');
  copyFileSync(base, next);
  const db = new Database(next);
  db.transaction(() => {
    db.prepare("UPDATE Files SET file = file || x'00' WHERE rowid % 7 = 0").run();
    db.prepare('DELETE FROM Files WHERE rowid % 11 = 0').run();
    const ins = db.prepare('INSERT INTO Files VALUES (?, ?, ?, ?, ?)');
    ins.run(Buffer.alloc(20, 1), 'HomeDomain', 'Library/blob-id', 1, Buffer.alloc(4));
    ins.run(
      fileIdFor('HomeDomain', 'Library/text-flags'),
      'HomeDomain',
      'Library/text-flags',
      'one',
      null,
    );
    ins.run(null, 'HomeDomain', 'Library/no-id', 1, null);
    ins.run(
      fileIdFor('HomeDomain', 'Library/new'),
      'HomeDomain',
      'Library/new',
      1,
      Buffer.alloc(4),
    );
  })();
  db.close();
  return { base, next };
}

/**
 * As the verify reads a row: the same only with a fileID of 40 lowercase hex digits, which it then
 * carries; flags as a number when they are one.
 */
const compareEvent = ([rowid, fileId, flags, identical]: ComparedRow): unknown[] => {
  const same = identical && typeof fileId === 'string' && /^[0-9a-f]{40}$/.test(fileId);
  return [rowid, same ? fileId : null, typeof flags === 'number' ? flags : NaN, same];
};

function comparedHere(next: string, base: string): unknown[][] {
  return [...compareManifestDbRows(next, base)!].map(compareEvent);
}

/** A batch's rows, as compareEvent makes them. */
function eventsOf(b: ComparedBatch): unknown[][] {
  const ids = Buffer.from(b.fileIds);
  return Array.from({ length: b.rowids.length }, (_, i) => [
    b.rowids[i]!,
    b.same[i] === 1 ? ids.toString('hex', i * 20, i * 20 + 20) : null,
    b.flags[i],
    b.same[i] === 1,
  ]);
}

async function collect(
  batches: Iterable<ComparedBatch> | AsyncIterable<ComparedBatch>,
): Promise<unknown[][]> {
  const out: unknown[][] = [];
  for await (const b of batches) out.push(...eventsOf(b));
  return out;
}

test("an incremental's comparison made on another thread gives the verdicts made here, row for row", async () => {
  const { base, next } = comparedPair(4 * BATCH_ROWS + 300);
  const expected = comparedHere(next, base);
  const same = expected.filter((e) => e[3] === true).length;
  assert.ok(same > 3 * BATCH_ROWS && same < expected.length - 500, `${same} of ${expected.length}`);
  assert.ok(expected.some((e) => e[1] === null));
  assert.ok(expected.some((e) => Number.isNaN(e[2])));
  // SQLite finds the wrong-case row identical; it is read in full, as one that differs.
  const upper = [...compareManifestDbRows(next, base)!].find(([, id]) => id === UPPER_ID);
  assert.equal(upper?.[3], true);
  assert.deepEqual(
    expected.find((e) => e[0] === upper[0]),
    [upper[0], null, 1, false],
  );
  let thread: Worker | undefined;
  const there = await comparedRows(next, base, {
    offThreadBytes: 0,
    onWorker: (w) => (thread = w),
  });
  assert.deepEqual(await collect(there!), expected);
  assert.ok(thread, 'compared on another thread');
  let none: Worker | undefined;
  const here = await comparedRows(next, base, {
    offThreadBytes: Infinity,
    onWorker: (w) => (none = w),
  });
  assert.deepEqual(await collect(here!), expected);
  assert.equal(none, undefined);
});

test('a comparing thread that ends early, or at once, leaves the rest to this one: no row lost or repeated', async () => {
  const { base, next } = comparedPair(6 * BATCH_ROWS + 10);
  const expected = comparedHere(next, base);
  let exited = false;
  const early = await comparedRows(next, base, {
    offThreadBytes: 0,
    onWorker: (w) => {
      w.once('exit', () => (exited = true));
      w.once('message', () => void w.terminate());
    },
  });
  const seen: unknown[][] = [];
  let exitedBeforeLastRow = false;
  for await (const b of early!) {
    // A batch ends where the thread's did; the rest is compared here in batches as large.
    assert.ok(b.rowids.length <= BATCH_ROWS);
    seen.push(...eventsOf(b));
    if (seen.length === expected.length) exitedBeforeLastRow = exited;
  }
  assert.deepEqual(seen, expected);
  assert.ok(exitedBeforeLastRow, 'the thread had ended before the last rows were compared');
  const atOnce = await comparedRows(next, base, {
    offThreadBytes: 0,
    onWorker: (w) => void w.terminate(),
  });
  assert.deepEqual(await collect(atOnce!), expected);
});

test('a base that cannot be attached, and a file that cannot be compared, are told as compareManifestDbRows tells them', async () => {
  const { base, next } = comparedPair(50);
  const notDb = path.join(tmp(), 'Manifest.db');
  writeFileSync(notDb, 'not a database');
  assert.equal(compareManifestDbRows(next, notDb), undefined);
  for (const offThreadBytes of [0, Infinity]) {
    assert.equal(await comparedRows(next, notDb, { offThreadBytes }), undefined);
    // More rows than allowed, and a new file that is no database: thrown, with the same words.
    for (const [file, maxRows, code] of [
      [next, 10, 'LIMIT'],
      [notDb, undefined, 'MALFORMED'],
    ] as const) {
      const opts = maxRows === undefined ? {} : { maxRows };
      const here = (() => {
        try {
          compareManifestDbRows(file, base, opts);
        } catch (e) {
          return e as Error;
        }
        return assert.fail('not thrown here');
      })();
      await assert.rejects(comparedRows(file, base, { ...opts, offThreadBytes }), (e) => {
        assert.ok(isMooringError(e, code), String(e));
        assert.equal(e.message, here.message);
        return true;
      });
    }
  }
});

// ---- a read begun before the verify (RowsReadAhead, D34) ----------------------------------------

/**
 * A Manifest.db of `n` rows where the device leaves it (`Snapshot/Manifest.db`) and where it will
 * move it (`final`).
 */
function inSnapshot(file: string): { snap: string; final: string } {
  const snap = path.join(path.dirname(file), 'Snapshot', 'Manifest.db');
  mkdirSync(path.dirname(snap));
  renameSync(file, snap);
  return { snap, final: file };
}

/** The kinds of the messages the read ahead's thread posts, as they come; and its exit. */
function watch(ahead: RowsReadAhead): { kinds: string[]; exited: Promise<unknown> } {
  const kinds: string[] = [];
  ahead.worker!.on('message', (m: ManifestRowsMessage) => kinds.push(m.kind));
  return { kinds, exited: once(ahead.worker!, 'exit') };
}

/** RowsReadAhead.start with a link of its own, in a folder of its own. */
function startAhead(
  file: string,
  opts: { base?: string; offThreadBytes?: number; batches?: number } = {},
  linkAt = path.join(tmp(), 'ahead.db'),
): RowsReadAhead | undefined {
  return RowsReadAhead.start(file, { linkAt, ...opts });
}

async function until(what: string, done: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !done(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(done(), what);
}

/** manifestRows(file) with `readAhead`: the rows, and whether they came from it. */
async function readWith(
  file: string,
  readAhead: RowsReadAhead,
): Promise<{ seen: Seen[]; taken: boolean }> {
  const seen: Seen[] = [];
  let taken = false;
  for await (const r of manifestRows(file, {
    // Below this size nothing else reads on another thread: a thread here is the read ahead.
    offThreadBytes: Infinity,
    readAhead,
    onReadAhead: () => (taken = true),
    onInvalid: (p) => seen.push(['bad', p.problem]),
  }))
    seen.push(rowEvent(r));
  return { seen, taken };
}

test('a read ahead of Snapshot/Manifest.db reads it before anyone asks; moved into place, it is taken: the same rows', async () => {
  const { snap, final } = inSnapshot(manifestWithBadRows(6 * BATCH_ROWS + 10).file);
  const link = path.join(tmp(), 'ahead.db');
  const ahead = startAhead(snap, { offThreadBytes: 0 }, link);
  assert.ok(ahead, 'begun');
  const { kinds } = watch(ahead);
  // The device's MoveItems, at once, before the thread has even started: the same inode.
  renameSync(snap, final);
  await until('every row read with nobody reading them yet', () => kinds.includes('end'));
  assert.deepEqual(kinds, ['opened', ...Array<string>(7).fill('rows'), 'end']);
  const { seen, taken } = await readWith(final, ahead);
  assert.ok(taken, 'the rows came from the read ahead');
  assert.deepEqual(seen, inThread(final));
  assert.equal(existsSync(link), false, 'its link is removed');
  // Taken once only: a second read is made here.
  assert.equal(await ahead.take(final, undefined, 2_000_000), undefined);
});

test('a read ahead posts at most its credit of batches until it is taken, then goes on as the rows are used', async () => {
  const credit = 3;
  const n = (credit + 2) * BATCH_ROWS;
  const { snap, final } = inSnapshot(manifestWithBadRows(n).file);
  const ahead = startAhead(snap, { offThreadBytes: 0, batches: credit })!;
  const { kinds, exited } = watch(ahead);
  await until('the credit used up', () => kinds.length === 1 + credit);
  // Given time, a thread without the credit would post the rest.
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(kinds.length, 1 + credit);
  renameSync(snap, final);
  const { seen, taken } = await readWith(final, ahead);
  assert.ok(taken);
  assert.deepEqual(seen, inThread(final));
  assert.equal(kinds.at(-1), 'end');
  await exited;
});

test('a read ahead is not taken when the file is no longer the very file it read, or has a journal beside it; the rows are then read afresh', async () => {
  const cases: Array<[string, (final: string) => void]> = [
    [
      'another file put in its place',
      (final) => {
        const other = manifestWithBadRows(2 * BATCH_ROWS).file;
        renameSync(other, final);
      },
    ],
    [
      'written to since (its mtime moved)',
      (final) => {
        const st = statSync(final);
        utimesSync(final, st.atime, new Date(st.mtimeMs + 5000));
      },
    ],
    [
      'a rollback journal beside it',
      (final) => writeFileSync(`${final}-journal`, ''), // empty: SQLite still reads the file
    ],
    ['gone', (final) => rmSync(final)],
  ];
  for (const [what, change] of cases) {
    const { snap, final } = inSnapshot(manifestWithBadRows(3 * BATCH_ROWS).file);
    const ahead = startAhead(snap, { offThreadBytes: 0 })!;
    const { kinds, exited } = watch(ahead);
    await until(`${what}: read ahead`, () => kinds.includes('end'));
    renameSync(snap, final);
    change(final);
    if (what === 'gone') {
      await assert.rejects(readWith(final, ahead), (e) => isMooringError(e, 'MALFORMED'), what);
    } else {
      const { seen, taken } = await readWith(final, ahead);
      assert.equal(taken, false, what);
      assert.deepEqual(seen, inThread(final), what);
    }
    await exited; // ended, not left running
  }
});

test('a read ahead is taken only by the read it made: all rows, or the comparison with that base', async () => {
  const { base, next } = comparedPair(3 * BATCH_ROWS);
  // Begun as a comparison with the base; the verify then reads all rows.
  const comparing = startAhead(next, { base, offThreadBytes: 0 })!;
  let w = watch(comparing);
  const all = await readWith(next, comparing);
  assert.equal(all.taken, false);
  assert.deepEqual(all.seen, inThread(next));
  await w.exited;
  // Begun as a read of all rows; the verify compares.
  const reading = startAhead(next, { offThreadBytes: 0 })!;
  w = watch(reading);
  let taken = false;
  const compared = await comparedRows(next, base, {
    offThreadBytes: Infinity,
    readAhead: reading,
    onReadAhead: () => (taken = true),
  });
  assert.equal(taken, false);
  assert.deepEqual(await collect(compared!), comparedHere(next, base));
  await w.exited;
  // Begun as that comparison: taken, the same verdicts.
  const same = startAhead(next, { base, offThreadBytes: 0 })!;
  w = watch(same);
  await until('compared ahead', () => w.kinds.includes('end'));
  const ahead = await comparedRows(next, base, {
    offThreadBytes: Infinity,
    readAhead: same,
    onReadAhead: () => (taken = true),
  });
  assert.equal(taken, true);
  assert.deepEqual(await collect(ahead!), comparedHere(next, base));
  await w.exited;
});

test('a file in WAL mode, or no SQLite file, is not read ahead: the verify reads it, as it would have', async () => {
  const wal = manifestWithBadRows(2 * BATCH_ROWS).file;
  const db = new Database(wal);
  db.pragma('journal_mode = WAL');
  db.close(); // checkpointed: the rows are all in the file, and its header says WAL
  const expected = inThread(wal);
  const ahead = startAhead(wal, { offThreadBytes: 0 })!;
  const { kinds, exited } = watch(ahead);
  const { seen, taken } = await readWith(wal, ahead);
  assert.equal(taken, false);
  assert.deepEqual(seen, expected);
  assert.deepEqual(kinds, ['error']);
  await exited;
  const notDb = path.join(tmp(), 'Manifest.db');
  writeFileSync(notDb, 'not a database, but a user-visible problem');
  const junk = startAhead(notDb, { offThreadBytes: 0 })!;
  await assert.rejects(readWith(notDb, junk), (e) => isMooringError(e, 'MALFORMED'));
  // Below the size from which rows are read on another thread, nothing is begun.
  assert.equal(startAhead(wal), undefined);
});
