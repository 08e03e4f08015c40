import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { fileIdFor, MAX_RELATIVE_PATH_CHARS } from '../../src/format/file-id';
import { encodeMbFile, S_IFDIR, S_IFLNK, S_IFREG } from '../../src/format/mbfile';
import {
  compareManifestDbRows,
  compareStrategy,
  iterateManifestDb,
  manifestNamesOf,
  readManifestDb,
  writeManifestDb,
  type ManifestRow,
  type ManifestRowProblem,
} from '../../src/format/manifest-db';
import { isMooringError } from '../../src/util/errors';
import { tempDirs } from '../helpers/temp-dirs';
import { SAMPLE_MBFILE } from './samples';

const { tmp, cleanup } = tempDirs('mooring-manifestdb-');
after(cleanup);

const REC = SAMPLE_MBFILE;

function corruptDb(
  dir: string,
  name: string,
  sql: string,
  rows: Array<[string, string, string, number, Buffer]>,
): string {
  const file = path.join(dir, name);
  const db = new Database(file);
  db.exec(sql);
  for (const r of rows) db.prepare('INSERT INTO Files VALUES (?, ?, ?, ?, ?)').run(...r);
  db.close();
  return file;
}

test('readManifestDb refuses hostile manifests', () => {
  const dir = tmp();
  const schema =
    'CREATE TABLE Files (fileID TEXT PRIMARY KEY, domain TEXT, relativePath TEXT, flags INTEGER, file BLOB)';
  const good = (rel: string, mode = S_IFREG | 0o644): Buffer =>
    encodeMbFile({ ...REC, relativePath: rel, mode });
  const row = (
    domain: string,
    rel: string,
    flags = 1,
    file = good(rel),
  ): [string, string, string, number, Buffer] => [fileIdFor(domain, rel), domain, rel, flags, file];
  const garbage = path.join(dir, 'garbage.db');
  writeFileSync(garbage, Buffer.alloc(4096, 0x42));
  const cases: Array<[string, string]> = [
    ['garbage', garbage],
    ['missing', path.join(dir, 'nope.db')],
    ['no Files table', corruptDb(dir, 'a.db', 'CREATE TABLE Other (x)', [])],
    ['path escape', corruptDb(dir, 'b.db', schema, [row('HomeDomain', '../../etc/passwd')])],
    ['absolute path', corruptDb(dir, 'c.db', schema, [row('HomeDomain', '/etc/passwd')])],
    ['domain with slash', corruptDb(dir, 'd.db', schema, [row('Home/Domain', 'x')])],
    [
      'bad fileID',
      corruptDb(dir, 'e.db', schema, [['0'.repeat(40), 'HomeDomain', 'x', 1, good('x')]]),
    ],
    ['unknown flags', corruptDb(dir, 'f.db', schema, [row('HomeDomain', 'x', 3)])],
    [
      'not an MBFile',
      corruptDb(dir, 'g.db', schema, [row('HomeDomain', 'x', 1, Buffer.from('nope'))]),
    ],
    ['mode disagrees', corruptDb(dir, 'h.db', schema, [row('HomeDomain', 'x', 2, good('x'))])],
    ['path mismatch', corruptDb(dir, 'i.db', schema, [row('HomeDomain', 'x', 1, good('y'))])],
    [
      'symlink without target',
      corruptDb(dir, 'j.db', schema, [row('HomeDomain', 'x', 4, good('x', 0o120755))]),
    ],
  ];
  for (const [what, file] of cases) {
    assert.throws(
      () => readManifestDb(file),
      (e) => isMooringError(e, 'MALFORMED'),
      what,
    );
  }
  const many = corruptDb(dir, 'k.db', schema, [
    row('HomeDomain', 'a'),
    row('HomeDomain', 'b'),
    row('HomeDomain', 'c'),
  ]);
  assert.throws(
    () => readManifestDb(many, 2),
    (e) => isMooringError(e, 'LIMIT'),
  );
  assert.equal(readManifestDb(many).length, 3);
});

function goodRows(
  n: number,
): Array<Parameters<typeof writeManifestDb>[1] extends Iterable<infer R> ? R : never> {
  const rows: Array<Omit<ManifestRow, 'fileId'>> = [];
  for (let i = 0; i < n; i++) {
    const rel = `Media/DCIM/100APPLE/IMG_${String(i).padStart(4, '0')}.JPG`;
    rows.push({
      domain: i % 2 ? 'CameraRollDomain' : 'HomeDomain',
      relativePath: rel,
      flags: 1,
      file: { ...REC, relativePath: rel, size: i },
    });
  }
  rows.push({
    domain: 'HomeDomain',
    relativePath: 'Library',
    flags: 2,
    file: { ...REC, relativePath: 'Library', mode: S_IFDIR | 0o755, size: 0 },
  });
  rows.push({
    domain: 'HomeDomain',
    relativePath: 'Library/link',
    flags: 4,
    file: { ...REC, relativePath: 'Library/link', mode: S_IFLNK | 0o755, target: 'x' },
  });
  return rows;
}

test('iterateManifestDb streams rows, filters by domain, orders, and can be abandoned', () => {
  const dir = tmp();
  const file = path.join(dir, 'Manifest.db');
  writeManifestDb(file, goodRows(50));
  let n = 0;
  for (const r of iterateManifestDb(file)) {
    assert.equal(r.fileId, fileIdFor(r.domain, r.relativePath));
    n++;
  }
  assert.equal(n, 52);
  const camera = [...iterateManifestDb(file, { domain: 'CameraRollDomain', ordered: true })];
  assert.equal(camera.length, 25);
  assert.ok(camera.every((r) => r.domain === 'CameraRollDomain'));
  const paths = camera.map((r) => r.relativePath);
  assert.deepEqual(paths, [...paths].sort());
  // Abandoning an iteration closes the file: the next one (and a writer) can proceed.
  for (const _r of iterateManifestDb(file)) break;
  const w = new Database(file);
  w.prepare('DELETE FROM Files WHERE flags = 4').run();
  w.close();
  assert.equal(readManifestDb(file).length, 51);
});

test('iterateManifestDb reports every invalid row with onInvalid and keeps going', () => {
  const dir = tmp();
  const file = path.join(dir, 'Manifest.db');
  writeManifestDb(file, goodRows(4));
  const db = new Database(file);
  const ins = db.prepare('INSERT INTO Files VALUES (?, ?, ?, ?, ?)');
  ins.run(
    fileIdFor('HomeDomain', '../x'),
    'HomeDomain',
    '../x',
    1,
    encodeMbFile({ ...REC, relativePath: '../x' }),
  );
  ins.run('f'.repeat(40), 'HomeDomain', 'y', 1, encodeMbFile({ ...REC, relativePath: 'y' }));
  const long = 'a/'.repeat(5000) + 'b';
  ins.run(
    fileIdFor('HomeDomain', long),
    'HomeDomain',
    long,
    1,
    encodeMbFile({ ...REC, relativePath: 'z' }),
  );
  // An oversized MBFile blob never reaches JavaScript: SQL hands over NULL and its length.
  ins.run(fileIdFor('HomeDomain', 'big'), 'HomeDomain', 'big', 1, Buffer.alloc(10 * 1024 * 1024));
  db.close();
  const problems: ManifestRowProblem[] = [];
  const rows = [...iterateManifestDb(file, { onInvalid: (p) => problems.push(p) })];
  assert.equal(rows.length, 6);
  assert.equal(problems.length, 4);
  const text = problems.map((p) => p.problem).join('\n');
  assert.match(text, /unsafe path/);
  assert.match(text, /not SHA-1/);
  assert.match(text, /relativePath too long/);
  assert.match(text, /MBFile of "HomeDomain\/big" is 10485760 bytes/);
  assert.ok(problems.some((p) => p.fileId === 'f'.repeat(40) && p.relativePath === 'y'));
  assert.ok(problems.every((p) => (p.relativePath ?? '').length <= 1025));
  // Without onInvalid the first bad row throws, naming the file.
  assert.throws(
    () => [...iterateManifestDb(file)],
    (e) => isMooringError(e, 'MALFORMED') && e.message.includes(file),
  );
});

test('duplicate fileIDs (a table without its primary key) are refused', () => {
  const dir = tmp();
  const file = corruptDb(
    dir,
    'dup.db',
    'CREATE TABLE Files (fileID TEXT, domain TEXT, relativePath TEXT, flags INTEGER, file BLOB)',
    [
      [
        fileIdFor('HomeDomain', 'x'),
        'HomeDomain',
        'x',
        1,
        encodeMbFile({ ...REC, relativePath: 'x' }),
      ],
      [
        fileIdFor('HomeDomain', 'x'),
        'HomeDomain',
        'x',
        1,
        encodeMbFile({ ...REC, relativePath: 'x' }),
      ],
    ],
  );
  assert.throws(
    () => [...iterateManifestDb(file, { onInvalid: () => undefined })],
    (e) => isMooringError(e, 'MALFORMED') && /duplicate fileID/.test(e.message),
  );
  const truncated = path.join(dir, 'trunc.db');
  writeManifestDb(truncated, goodRows(300));
  const bytes = readFileSync(truncated);
  writeFileSync(truncated, bytes.subarray(0, Math.floor(bytes.length / 2)));
  assert.throws(
    () => [...iterateManifestDb(truncated)],
    (e) => isMooringError(e, 'MALFORMED') && e.message.includes(truncated),
  );
});

test('manifestNamesOf gives the names of the fileIDs asked, only where the fileID is their SHA-1', () => {
  const dir = tmp();
  const long = 'd'.repeat(MAX_RELATIVE_PATH_CHARS + 5);
  const row = (domain: string, rel: string, fileId = fileIdFor(domain, rel)) =>
    [fileId, domain, rel, 1, encodeMbFile({ ...REC, relativePath: rel })] as [
      string,
      string,
      string,
      number,
      Buffer,
    ];
  const forged = fileIdFor('HomeDomain', 'Library/real');
  const file = corruptDb(
    dir,
    'names.db',
    'CREATE TABLE Files (fileID TEXT PRIMARY KEY, domain TEXT, relativePath TEXT, flags INTEGER, file BLOB)',
    [
      row('HomeDomain', 'Library/a'),
      row('MediaDomain', 'Media/DCIM/b.jpg'),
      row('HomeDomain', 'Library/unasked'),
      // A fileID that is not SHA-1 of the names beside it, and one whose name is cut by the bound.
      row('HomeDomain', 'Library/forged', forged),
      row('HomeDomain', long),
    ],
  );
  const asked = [
    fileIdFor('HomeDomain', 'Library/a'),
    fileIdFor('MediaDomain', 'Media/DCIM/b.jpg'),
    forged,
    fileIdFor('HomeDomain', long),
    fileIdFor('HomeDomain', 'Library/absent'),
  ];
  assert.deepEqual(
    manifestNamesOf(file, asked),
    new Map([
      [asked[0], { domain: 'HomeDomain', relativePath: 'Library/a' }],
      [asked[1], { domain: 'MediaDomain', relativePath: 'Media/DCIM/b.jpg' }],
    ]),
  );
  assert.equal(manifestNamesOf(path.join(dir, 'absent.db'), []).size, 0);
  assert.throws(
    () => manifestNamesOf(path.join(dir, 'absent.db'), asked),
    (e) => isMooringError(e, 'MALFORMED'),
  );
});

test('compareManifestDbRows: the same verdicts whether rows kept their rowids or not, and without an index on the base', () => {
  const dir = tmp();
  const rows = goodRows(40);
  const base = path.join(dir, 'base.db');
  writeManifestDb(base, rows);
  const changed = (i: number): boolean => i % 10 === 3;
  // The new file: rows 3, 13, 23, 33 changed (Size), one row left out, one added; and a copy of it
  // whose rows are in reverse order, so no row keeps its rowid.
  const next = rows
    .filter((_, i) => i !== 7)
    .map((r, i0) => {
      const i = i0 >= 7 ? i0 + 1 : i0;
      return changed(i) ? { ...r, file: { ...r.file, size: r.file.size + 1 } } : r;
    });
  next.push({
    ...rows[0]!,
    relativePath: 'Media/new.JPG',
    file: { ...REC, relativePath: 'Media/new.JPG' },
  });
  const same = path.join(dir, 'same-order.db');
  writeManifestDb(same, next);
  const reversed = path.join(dir, 'reversed.db');
  writeManifestDb(reversed, [...next].reverse());
  // The base without its primary key (nor any index on fileID).
  const bare = path.join(dir, 'bare.db');
  const db = new Database(bare);
  db.exec(
    'CREATE TABLE Files (fileID TEXT, domain TEXT, relativePath TEXT, flags INTEGER, file BLOB)',
  );
  db.exec(
    `ATTACH DATABASE '${base}' AS b; INSERT INTO Files SELECT * FROM b.Files ORDER BY rowid DESC`,
  );
  db.close();

  const verdicts = (file: string, against: string): Map<string, boolean> => {
    const out = new Map<string, boolean>();
    for (const [, fileId, , isSame] of compareManifestDbRows(file, against)!) {
      assert.equal(typeof fileId, 'string');
      assert.ok(!out.has(fileId as string), 'one verdict per row');
      out.set(fileId as string, isSame);
    }
    return out;
  };
  const expected = new Map(
    next.map((r) => {
      const i = rows.indexOf(r);
      return [fileIdFor(r.domain, r.relativePath), i >= 0 && !changed(i)] as [string, boolean];
    }),
  );
  assert.equal(expected.size, rows.length);
  assert.equal([...expected.values()].filter((v) => !v).length, 5); // 4 changed, 1 new
  for (const [file, against] of [
    [same, base],
    [reversed, base],
    [same, bare],
    [reversed, bare],
  ] as const) {
    assert.deepEqual(
      verdicts(file, against),
      expected,
      `${path.basename(file)} against ${path.basename(against)}`,
    );
  }

  // Which way it went: by rowid against an indexed base, by a join against the bare one (a
  // lookup by fileID there would scan the base once per row).
  const strategy = (against: string): string => {
    const d = new Database(same, { readonly: true });
    try {
      d.prepare('ATTACH DATABASE ? AS base').run(against);
      return compareStrategy(d);
    } finally {
      d.close();
    }
  };
  assert.equal(strategy(base), 'rowid');
  assert.equal(strategy(bare), 'join');
});
