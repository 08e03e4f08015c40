/**
 * Bytes for the synthetic files. Media gets a real container header followed by keystream bytes
 * (incompressible, like real HEIC/MOV data); preferences are real binary plists; sms.db and
 * AddressBook.sqlitedb are real SQLite databases with plausible tables. Everything derives from
 * (seed, domain, relativePath, revision), so a file's bytes do not depend on generation order.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { encodeBinaryPlist } from '../../protocol/plist';
import type { PlistDict } from '../../protocol/plist/types';
import { KEYSTREAM_CHUNK_BYTES, Keystream, Prng } from './random';
import type { ContentKind } from './model';

export interface ContentSpec {
  domain: string;
  relativePath: string;
  kind: ContentKind;
  revision: number;
  /** Wanted size for 'random' and 'text'; the structured kinds decide their own size. */
  size: number;
  /** Used as a plausible timestamp inside structured content. */
  mtime: number;
}

export interface GenerateContext {
  seed: number;
  /** Scratch directory for building SQLite files. */
  tmpDir: string;
}

function seedText(ctx: GenerateContext, spec: ContentSpec, what: string): string {
  return `mooring-sim/${what}/${ctx.seed}/${spec.domain}/${spec.relativePath}/${spec.revision}`;
}

const ascii = (s: string): Buffer => Buffer.from(s, 'latin1');

/** Leading bytes of each media type (ISO-BMFF `ftyp` boxes, JFIF, PDF), so `file(1)` agrees. */
const HEADERS: Record<string, Buffer> = {
  heic: Buffer.concat([
    Buffer.from([0, 0, 0, 0x18]),
    ascii('ftypheic'),
    Buffer.alloc(4),
    ascii('mif1heic'),
  ]),
  mov: Buffer.concat([
    Buffer.from([0, 0, 0, 0x14]),
    ascii('ftypqt  '),
    Buffer.alloc(4),
    ascii('qt  '),
  ]),
  jpeg: Buffer.concat([
    Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 0x10]),
    ascii('JFIF\0'),
    Buffer.from([1, 1, 0, 0, 1, 0, 1, 0, 0]),
  ]),
  m4a: Buffer.concat([
    Buffer.from([0, 0, 0, 0x18]),
    ascii('ftypM4A '),
    Buffer.alloc(4),
    ascii('M4A isom'),
  ]),
  pdf: ascii('%PDF-1.7\n%\xe2\xe3\xcf\xd3\n'),
};
HEADERS.jpg = HEADERS.jpeg!;

function headerFor(relativePath: string): Buffer | undefined {
  const ext = path.extname(relativePath).slice(1).toLowerCase();
  return HEADERS[ext];
}

const WORDS = (
  'harbour mooring tide anchor rope quay ferry lantern gull keel stern bow buoy chart compass ' +
  'north south east west morning evening rain wind calm swell pier dock sail mast deck cabin ' +
  'note list plan trip budget recipe flour butter sugar salt walk run meeting call friday monday'
).split(' ');

function* randomChunks(spec: ContentSpec, ctx: GenerateContext): Generator<Buffer> {
  const ks = new Keystream(seedText(ctx, spec, 'bytes'));
  const header = headerFor(spec.relativePath);
  let left = spec.size;
  let first = true;
  while (left > 0) {
    const n = Math.min(left, KEYSTREAM_CHUNK_BYTES);
    const chunk = ks.take(n);
    if (first && header) header.copy(chunk, 0, 0, Math.min(header.length, n));
    first = false;
    left -= n;
    yield chunk;
  }
}

function* textChunks(spec: ContentSpec, ctx: GenerateContext): Generator<Buffer> {
  const rng = new Prng(seedText(ctx, spec, 'text'));
  const CHUNK = 64 * 1024;
  let left = spec.size;
  while (left > 0) {
    const want = Math.min(left, CHUNK);
    const parts: string[] = [];
    let len = 0;
    while (len < want) {
      const w = rng.pick(WORDS);
      const sep = rng.int(0, 11) === 0 ? '.\n' : ' ';
      parts.push(w, sep);
      len += w.length + sep.length;
    }
    const buf = Buffer.from(parts.join(''), 'latin1').subarray(0, want);
    left -= want;
    yield buf;
  }
}

function prefsPlist(spec: ContentSpec, ctx: GenerateContext): Buffer {
  const rng = new Prng(seedText(ctx, spec, 'plist'));
  const name = path.basename(spec.relativePath);
  const date = new Date(spec.mtime * 1000);
  let v: PlistDict;
  if (name === '.GlobalPreferences.plist') {
    v = {
      AppleLanguages: ['en-GB', rng.pick(['fr-FR', 'de-DE', 'nl-NL'])],
      AppleLocale: 'en_GB',
      AppleICUForce24HourTime: true,
      AppleKeyboards: ['en_GB@sw=QWERTY;hw=Automatic', 'emoji@sw=Emoji'],
      AppleKeyboardsExpanded: 1,
      MooringRevision: spec.revision,
    };
  } else if (name === 'com.apple.springboard.plist') {
    v = {
      SBAutoLockTime: rng.pick([30, 60, 120, 300]),
      SBShowBatteryPercentage: rng.int(0, 1) === 1,
      SBLastBootDate: date,
      SBSearchDisabledDomains: [],
      MooringRevision: spec.revision,
    };
  } else {
    const settings: PlistDict = {};
    const n = rng.int(3, 9);
    for (let i = 0; i < n; i++) settings[`${rng.pick(WORDS)}${i}`] = rng.int(0, 1000);
    v = {
      LaunchCount: rng.int(1, 5000) + spec.revision,
      LastLaunchDate: date,
      NSUserDefaultsSchemaVersion: 2,
      Settings: settings,
      RecentSearches: [rng.pick(WORDS), rng.pick(WORDS)],
      MooringRevision: spec.revision,
    };
  }
  return encodeBinaryPlist(v);
}

/** Apple's reference date (2001-01-01) in Unix seconds: Messages stores dates relative to it. */
const APPLE_EPOCH = 978_307_200;

async function sqliteFile(
  spec: ContentSpec,
  ctx: GenerateContext,
  build: (db: Database.Database, rng: Prng) => void,
): Promise<Buffer> {
  await fsp.mkdir(ctx.tmpDir, { recursive: true });
  const file = path.join(
    ctx.tmpDir,
    `gen-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}.sqlite`,
  );
  const db = new Database(file);
  try {
    db.pragma('journal_mode = DELETE');
    const rng = new Prng(seedText(ctx, spec, 'sqlite'));
    db.transaction(() => build(db, rng))();
  } finally {
    db.close();
  }
  try {
    return await fsp.readFile(file);
  } finally {
    await fsp.rm(file, { force: true });
  }
}

function buildSms(db: Database.Database, rng: Prng, spec: ContentSpec): void {
  db.exec(`
    CREATE TABLE handle (ROWID INTEGER PRIMARY KEY AUTOINCREMENT UNIQUE, id TEXT NOT NULL, country TEXT, service TEXT NOT NULL, uncanonicalized_id TEXT, person_centric_id TEXT, UNIQUE (id, service));
    CREATE TABLE chat (ROWID INTEGER PRIMARY KEY AUTOINCREMENT, guid TEXT UNIQUE NOT NULL, style INTEGER, state INTEGER, chat_identifier TEXT, service_name TEXT, display_name TEXT);
    CREATE TABLE message (ROWID INTEGER PRIMARY KEY AUTOINCREMENT, guid TEXT UNIQUE NOT NULL, text TEXT, handle_id INTEGER DEFAULT 0, service TEXT, date INTEGER, date_read INTEGER, is_from_me INTEGER DEFAULT 0, is_read INTEGER DEFAULT 0);
    CREATE TABLE chat_message_join (chat_id INTEGER REFERENCES chat (ROWID) ON DELETE CASCADE, message_id INTEGER REFERENCES message (ROWID) ON DELETE CASCADE, message_date INTEGER DEFAULT 0, PRIMARY KEY (chat_id, message_id));
    CREATE TABLE chat_handle_join (chat_id INTEGER REFERENCES chat (ROWID) ON DELETE CASCADE, handle_id INTEGER REFERENCES handle (ROWID) ON DELETE CASCADE, UNIQUE(chat_id, handle_id));
    CREATE INDEX message_idx_handle ON message(handle_id, date);
  `);
  const handles = rng.int(3, 8);
  const insHandle = db.prepare('INSERT INTO handle (id, country, service) VALUES (?, ?, ?)');
  const insChat = db.prepare(
    'INSERT INTO chat (guid, style, state, chat_identifier, service_name) VALUES (?, 45, 3, ?, ?)',
  );
  const insJoin = db.prepare('INSERT INTO chat_handle_join (chat_id, handle_id) VALUES (?, ?)');
  for (let h = 1; h <= handles; h++) {
    const num = `+4477009${String(rng.int(10000, 99999))}`;
    const svc = rng.int(0, 2) === 0 ? 'SMS' : 'iMessage';
    insHandle.run(num, 'gb', svc);
    insChat.run(`${svc};-;${num}`, num, svc);
    insJoin.run(h, h);
  }
  const insMsg = db.prepare(
    'INSERT INTO message (guid, text, handle_id, service, date, date_read, is_from_me, is_read) VALUES (?, ?, ?, ?, ?, ?, ?, 1)',
  );
  const insCmj = db.prepare(
    'INSERT INTO chat_message_join (chat_id, message_id, message_date) VALUES (?, ?, ?)',
  );
  const messages = rng.int(40, 90) + spec.revision * 3;
  let t = (spec.mtime - APPLE_EPOCH - 90 * 86400) * 1e9;
  for (let m = 1; m <= messages; m++) {
    const h = rng.int(1, handles);
    const words = Array.from({ length: rng.int(2, 14) }, () => rng.pick(WORDS)).join(' ');
    t += rng.int(60, 86400) * 1e9;
    const guid = [8, 4, 4, 4, 12]
      .map((n) => rng.next().toString(16).padStart(8, '0').repeat(2).slice(0, n))
      .join('-');
    insMsg.run(guid.toUpperCase(), words, h, 'iMessage', t, t + 5e9, rng.int(0, 1));
    insCmj.run(h, m, t);
  }
}

function buildAddressBook(db: Database.Database, rng: Prng, spec: ContentSpec): void {
  db.exec(`
    CREATE TABLE ABPerson (ROWID INTEGER PRIMARY KEY AUTOINCREMENT, First TEXT, Last TEXT, Middle TEXT, Organization TEXT, Department TEXT, Note TEXT, Kind INTEGER, Birthday TEXT, JobTitle TEXT, Nickname TEXT, CreationDate INTEGER, ModificationDate INTEGER, CompositeNameFallback TEXT, DisplayName TEXT);
    CREATE TABLE ABMultiValue (UID INTEGER PRIMARY KEY, record_id INTEGER, property INTEGER, identifier INTEGER, label INTEGER, value TEXT, guid TEXT);
    CREATE TABLE ABMultiValueLabel (value TEXT, UNIQUE(value));
    CREATE TABLE ABGroup (ROWID INTEGER PRIMARY KEY AUTOINCREMENT, Name TEXT, ExternalIdentifier TEXT);
    CREATE INDEX ABMultiValueRecordIDIndex ON ABMultiValue(record_id);
  `);
  for (const l of ['_$!<Mobile>!$_', '_$!<Home>!$_', '_$!<Work>!$_']) {
    db.prepare('INSERT INTO ABMultiValueLabel (value) VALUES (?)').run(l);
  }
  const first = [
    'Ada',
    'Ben',
    'Chloe',
    'Dev',
    'Elif',
    'Finn',
    'Grace',
    'Hugo',
    'Isla',
    'Jonah',
    'Kai',
    'Lena',
  ];
  const last = [
    'Hughes',
    'Okafor',
    'Nakamura',
    'Rossi',
    'Silva',
    'Novak',
    'Byrne',
    'Kowalski',
    'Dubois',
  ];
  const insP = db.prepare(
    'INSERT INTO ABPerson (First, Last, Organization, Kind, CreationDate, ModificationDate) VALUES (?, ?, ?, 0, ?, ?)',
  );
  const insV = db.prepare(
    'INSERT INTO ABMultiValue (record_id, property, identifier, label, value) VALUES (?, ?, 0, ?, ?)',
  );
  const people = rng.int(15, 40) + spec.revision;
  for (let p = 1; p <= people; p++) {
    const created = spec.mtime - APPLE_EPOCH - rng.int(86400, 800 * 86400);
    const f = rng.pick(first);
    const l = rng.pick(last);
    insP.run(
      f,
      l,
      rng.int(0, 3) === 0 ? `${rng.pick(WORDS)} Ltd` : null,
      created,
      created + rng.int(0, 86400),
    );
    insV.run(p, 3, 1, `+44 7700 9${String(rng.int(10000, 99999))}`);
    if (rng.int(0, 1) === 1) insV.run(p, 4, 2, `${f}.${l}@example.org`.toLowerCase());
  }
}

/** The bytes of one file, in bounded chunks. */
export async function* contentChunks(
  spec: ContentSpec,
  ctx: GenerateContext,
): AsyncGenerator<Buffer> {
  switch (spec.kind) {
    case 'random':
      yield* randomChunks(spec, ctx);
      return;
    case 'text':
      yield* textChunks(spec, ctx);
      return;
    case 'plist':
      yield prefsPlist(spec, ctx);
      return;
    case 'sqlite-sms':
      yield await sqliteFile(spec, ctx, (db, rng) => buildSms(db, rng, spec));
      return;
    case 'sqlite-addressbook':
      yield await sqliteFile(spec, ctx, (db, rng) => buildAddressBook(db, rng, spec));
      return;
  }
}
