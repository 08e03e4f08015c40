/**
 * The simulated device's user data: a deterministic synthetic file tree kept on disk under
 * `<stateDir>/content/`, so a restarted simulator is the same device and benches can hold gigabytes.
 *
 * Layout: `index.json` (every entry's metadata: domain, relativePath, type, mode, times, inode,
 * protection class, digests, symlink target) and `blobs/<id[0:2]>/<id>` holding each regular file's
 * bytes, named by its backup fileID. Directories and symlinks exist only in the index: the store
 * never materialises device paths on the host, so nothing a restore feeds it can escape its folder.
 *
 * The index also keeps a change journal (a generation number, and the keys each generation
 * touched), so a backup can follow what changed since the Manifest.db it last built
 * (src/sim/backup/manifest-cache.ts) instead of rescanning the whole tree.
 *
 * One async lock serialises everything that reads or rewrites blobs (mutate, wipe, restore, and a
 * backup's upload), so a backup never streams a file that a mutation is rewriting.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { MooringError } from '../../util/errors';
import { BlobWriter, digestFile } from './blob';
import { contentChunks, type GenerateContext } from './generators';
import { fileIdFor } from '../../format/file-id';
import { S_IFDIR, S_IFLNK, S_IFREG } from '../../format/mbfile';
import {
  MOBILE_UID,
  buildListing,
  compareEntries,
  inKeyOrder,
  sortEntries,
  entryKey,
  type ContentEntry,
  type ContentKind,
  type ListingJson,
} from './model';
import { appDomain, assignSizes, photoPath, planTree, type AppInfo } from './plan';
import { Prng } from './random';

export type { AppInfo } from './plan';
export type { ContentEntry, ListingEntry, ListingJson } from './model';

export const CONTENT_DIR = 'content';
export const INDEX_FILE = 'index.json';
const INDEX_FORMAT = 'mooring-sim-content/1';

export const DEFAULT_CONTENT_FILES = 120;
export const DEFAULT_CONTENT_BYTES = 16 * 1024 * 1024;
export const DEFAULT_CONTENT_SEED = 1;
/** Bounds on what the simulator agrees to generate. */
/** The index is one JSON document (~350 bytes per entry): keep it well below V8's string limit. */
export const MAX_CONTENT_FILES = 500_000;
export const MAX_CONTENT_BYTES = 1024 ** 4;
/** Bounds on one mutate request. */
export const MAX_MUTATE_COUNT = 100_000;

export interface ContentOptions {
  /** Number of regular files (directories and symlinks come on top). */
  files?: number;
  /** Total bytes of regular files (exact unless smaller than the fixed small files). */
  bytes?: number;
  seed?: number;
}

export interface MutateRequest {
  add?: number;
  modify?: number;
  delete?: number;
}

export interface MutateResult {
  /** `domain/relativePath` of each affected file. */
  added: string[];
  modified: string[];
  deleted: string[];
}

/** A file or other entry a restore brings back; files carry the path of their staged bytes. */
export interface RestoredItem {
  entry: ContentEntry;
  stagedPath?: string;
}

export interface RestoreScope {
  /** Which existing device entries the restore is responsible for. */
  inScope: (domain: string, relativePath: string) => boolean;
  /** Remove in-scope device entries the backup does not contain. */
  removeNotRestored: boolean;
}

interface IndexFile {
  format: typeof INDEX_FORMAT;
  seed: number;
  files: number;
  bytes: number;
  /** Mutations applied so far: the next mutate uses step + 1. */
  step: number;
  nextImage: number;
  nextDoc: number;
  timeBase: number;
  apps: AppInfo[];
  entries: ContentEntry[];
  /**
   * Change journal (absent in older indexes: treated as empty from generation 0). Every change of
   * `entries` makes a new generation; `journal` lists the entry keys each generation touched
   * (added, modified, deleted), complete from `journalFrom` on: what a phone knows about its own
   * changes without rescanning, so a backup's work can follow what changed (changedSince).
   */
  generation?: number;
  journalFrom?: number;
  journal?: Array<{ gen: number; keys: string[] }>;
}

/** Keys kept in the change journal; older generations are dropped (changedSince says unknown). */
export const MAX_JOURNAL_KEYS = 500_000;

const DAY = 86_400;

function checkCount(name: string, v: number | undefined, max: number, dflt: number): number {
  if (v === undefined) return dflt;
  if (!Number.isSafeInteger(v) || v < 0 || v > max) {
    throw new MooringError('USAGE', `${name} must be an integer between 0 and ${max} (got ${v})`);
  }
  return v;
}

function ancestors(relativePath: string): string[] {
  const out: string[] = [''];
  const parts = relativePath.split('/');
  for (let i = 1; i < parts.length; i++) out.push(parts.slice(0, i).join('/'));
  return out;
}

export class ContentStore {
  private index: IndexFile;
  private lockTail: Promise<void> = Promise.resolve();

  private constructor(
    readonly dir: string,
    index: IndexFile,
  ) {
    this.index = index;
    inKeyOrder(index.entries); // noted once here, so that a backup's lookups never check it
  }

  /**
   * Opens the store in `stateDir`, generating the tree on first use. An existing store is
   * reopened as it is (the options only matter the first time: a restart is the same device).
   */
  static async open(stateDir: string, opts: ContentOptions = {}): Promise<ContentStore> {
    const files = checkCount('files', opts.files, MAX_CONTENT_FILES, DEFAULT_CONTENT_FILES);
    const bytes = checkCount('bytes', opts.bytes, MAX_CONTENT_BYTES, DEFAULT_CONTENT_BYTES);
    const seed = checkCount('seed', opts.seed, 0xffff_ffff, DEFAULT_CONTENT_SEED);
    const dir = path.join(stateDir, CONTENT_DIR);
    await fsp.mkdir(dir, { recursive: true });
    await fsp.rm(path.join(dir, 'staging'), { recursive: true, force: true });
    await fsp.rm(path.join(dir, 'tmp'), { recursive: true, force: true });
    const existing = await readIndex(path.join(dir, INDEX_FILE));
    if (existing) return new ContentStore(dir, existing);
    const store = new ContentStore(dir, await generate(dir, seed, files, bytes));
    await store.save();
    return store;
  }

  get seed(): number {
    return this.index.seed;
  }

  /** The current generation of the content (see IndexFile.journal). */
  get generation(): number {
    return this.index.generation ?? 0;
  }

  /**
   * Keys (entryKey) of every entry added, modified or deleted after generation `gen`; undefined
   * when the journal does not reach back that far (or `gen` is not one of this store's).
   */
  changedSince(gen: number): Set<string> | undefined {
    const idx = this.index;
    if (!Number.isSafeInteger(gen) || gen < (idx.journalFrom ?? 0) || gen > this.generation)
      return undefined;
    const out = new Set<string>();
    for (const j of idx.journal ?? []) if (j.gen > gen) for (const k of j.keys) out.add(k);
    return out;
  }

  /** Records a change of `entries`: `keys` touched, or undefined for "unknown" (journal reset). */
  private journalChange(keys: string[] | undefined): void {
    const idx = this.index;
    const gen = this.generation + 1;
    idx.generation = gen;
    const journal = keys === undefined ? [] : [...(idx.journal ?? []), { gen, keys }];
    if (keys === undefined) idx.journalFrom = gen;
    let total = journal.reduce((a, j) => a + j.keys.length, 0);
    while (journal.length > 0 && total > MAX_JOURNAL_KEYS) {
      const dropped = journal.shift()!;
      total -= dropped.keys.length;
      idx.journalFrom = dropped.gen;
    }
    idx.journal = journal;
  }

  /** The full tree, sorted, with digests: compare two of these to compare devices. */
  async listing(): Promise<ListingJson> {
    return buildListing(this.index.entries);
  }

  /** A copy of every entry (metadata only). */
  snapshot(): ContentEntry[] {
    return this.index.entries.map((e) => ({ ...e }));
  }

  /**
   * The current entries themselves, not copied: for readers holding the lock (a backup of
   * 100,000 files spent ~60 ms copying them). Never changed in place — a mutation, wipe or
   * restore replaces the array with new entry objects — and not to be changed by the reader.
   */
  currentEntries(): readonly ContentEntry[] {
    return this.index.entries;
  }

  apps(): AppInfo[] {
    return this.index.apps.map((a) => ({ ...a, GroupIdentifiers: [...a.GroupIdentifiers] }));
  }

  /** Where a regular file's bytes live. */
  blobPath(e: { domain: string; relativePath: string }): string {
    return this.blobPathOfId(fileIdFor(e.domain, e.relativePath));
  }

  /** blobPath for a fileID already at hand (one SHA-1 fewer per file in a backup). */
  blobPathOfId(fileId: string): string {
    return path.join(this.dir, 'blobs', fileId.slice(0, 2), fileId);
  }

  /** Runs `fn` with the store's lock held (see the module comment). */
  async withLock<T>(fn: () => Promise<T>): Promise<T> {
    const prev = this.lockTail;
    let release!: () => void;
    this.lockTail = new Promise<void>((r) => (release = r));
    await prev;
    try {
      return await fn();
    } finally {
      release();
    }
  }

  /** A writer for bytes a restore receives; commit them later with applyRestore. */
  async stagingWriter(): Promise<BlobWriter> {
    const name = `${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}`;
    return BlobWriter.create(path.join(this.dir, 'staging', name));
  }

  async clearStaging(): Promise<void> {
    await fsp.rm(path.join(this.dir, 'staging'), { recursive: true, force: true });
  }

  /** Deterministic add/modify/delete of files: the next step of the seed. */
  async mutate(req: MutateRequest): Promise<MutateResult> {
    const add = checkCount('add', req.add, MAX_MUTATE_COUNT, 0);
    const modify = checkCount('modify', req.modify, MAX_MUTATE_COUNT, 0);
    const del = checkCount('delete', req.delete, MAX_MUTATE_COUNT, 0);
    return this.withLock(async () => {
      const idx = this.index;
      const step = idx.step + 1;
      const rng = new Prng(`mooring-sim/mutate/${idx.seed}/${step}`);
      const now = idx.timeBase + 400 * DAY + step * 3600;
      const ctx = this.generateContext();
      const byKey = new Map(idx.entries.map((e) => [entryKey(e.domain, e.relativePath), { ...e }]));
      const files = [...byKey.values()].filter((e) => e.type === 'file').sort(compareEntries);
      const result: MutateResult = { added: [], modified: [], deleted: [] };
      const picks = rng.sample(files.length, del + modify);
      const toDelete = picks.slice(0, del).map((i) => files[i]!);
      const toModify = picks.slice(del).map((i) => files[i]!);
      const touched: string[] = [];
      for (const e of toDelete) {
        touched.push(entryKey(e.domain, e.relativePath));
        byKey.delete(entryKey(e.domain, e.relativePath));
        await fsp.rm(this.blobPath(e), { force: true });
        result.deleted.push(`${e.domain}/${e.relativePath}`);
      }
      let tick = 0;
      for (const e of toModify) {
        // Restored files have no recorded kind: they get new random bytes.
        const kind = e.kind ?? 'random';
        const size =
          kind === 'random' || kind === 'text'
            ? Math.max(1, Math.round(e.size * (0.5 + rng.float())))
            : 0;
        const mtime = now + tick++;
        await this.writeFile(e, kind, step, size, mtime, ctx);
        e.mtime = mtime;
        e.ctime = mtime;
        touched.push(entryKey(e.domain, e.relativePath));
        result.modified.push(`${e.domain}/${e.relativePath}`);
      }
      // A loop, not Math.max(...all): half a million arguments overflow the stack.
      let inode = 0;
      for (const e of byKey.values()) if (e.inode > inode) inode = e.inode;
      const mean = idx.files > 0 ? idx.bytes / idx.files : 64 * 1024;
      for (let i = 0; i < add; i++) {
        const mtime = now + tick++;
        let domain: string;
        let relativePath: string;
        let kind: ContentKind = 'random';
        let size: number;
        if (rng.float() < 0.6 || idx.apps.length === 0) {
          const mov = rng.int(0, 4) === 0;
          domain = 'CameraRollDomain';
          relativePath = photoPath(idx.nextImage++, mov ? 'MOV' : 'HEIC');
          size = Math.max(1, Math.round(mean * rng.pareto(1.5, 4) * (mov ? 1.5 : 0.6)));
        } else {
          const app = rng.pick(idx.apps);
          domain = appDomain(app);
          relativePath = `Documents/added-${step}-${idx.nextDoc++}.txt`;
          kind = 'text';
          size = Math.max(1, Math.round(mean * 0.1 * rng.pareto(1.5, 4)));
        }
        for (const d of ancestors(relativePath)) {
          const k = entryKey(domain, d);
          if (!byKey.has(k)) {
            byKey.set(k, dirEntry(domain, d, mtime, ++inode));
            touched.push(k);
          }
        }
        const e: ContentEntry = {
          domain,
          relativePath,
          type: 'file',
          size: 0,
          mode: S_IFREG | 0o644,
          mtime,
          ctime: mtime,
          birth: mtime,
          inode: ++inode,
          uid: MOBILE_UID,
          gid: MOBILE_UID,
          protectionClass: 3,
          kind,
          revision: step,
        };
        await this.writeFile(e, kind, step, size, mtime, ctx);
        byKey.set(entryKey(domain, relativePath), e);
        touched.push(entryKey(domain, relativePath));
        result.added.push(`${domain}/${relativePath}`);
      }
      idx.entries = sortEntries([...byKey.values()]);
      idx.step = step;
      this.journalChange(touched);
      await this.save();
      return result;
    });
  }

  /** Erases all content, as a device reset does (apps stay known; their data goes). */
  async wipe(): Promise<void> {
    await this.withLock(async () => {
      await fsp.rm(path.join(this.dir, 'blobs'), { recursive: true, force: true });
      this.index.entries = [];
      this.journalChange(undefined);
      await this.save();
    });
  }

  /**
   * Commits a restore: staged bytes are moved into place and the index is rebuilt. Entries the
   * backup holds replace the device's; in-scope entries it lacks go only with removeNotRestored.
   */
  async applyRestore(items: readonly RestoredItem[], scope: RestoreScope): Promise<void> {
    await this.withLock(async () => {
      const before = this.index.entries;
      const next = new Map<string, ContentEntry>();
      for (const e of before) {
        if (scope.removeNotRestored && scope.inScope(e.domain, e.relativePath)) continue;
        next.set(entryKey(e.domain, e.relativePath), e);
      }
      for (const item of items) {
        const e = item.entry;
        if (e.type === 'file' && item.stagedPath === undefined) {
          throw new MooringError(
            'PROTOCOL',
            `restored file ${e.domain}/${e.relativePath} has no bytes`,
          );
        }
        next.set(entryKey(e.domain, e.relativePath), { ...e });
      }
      for (const item of items) {
        if (item.stagedPath !== undefined) {
          const dest = this.blobPath(item.entry);
          await fsp.mkdir(path.dirname(dest), { recursive: true });
          await fsp.rename(item.stagedPath, dest);
        }
      }
      for (const e of before) {
        if (e.type !== 'file') continue;
        const now = next.get(entryKey(e.domain, e.relativePath));
        if (!now || now.type !== 'file') await fsp.rm(this.blobPath(e), { force: true });
      }
      this.index.entries = sortEntries([...next.values()]);
      this.journalChange(undefined); // a restore may touch everything: the next backup rescans
      await this.save();
      await this.clearStaging();
    });
  }

  /** Re-hashes every blob; returns one line per mismatch (empty when disk and index agree). */
  async verifyBlobs(): Promise<string[]> {
    const problems: string[] = [];
    for (const e of this.index.entries) {
      if (e.type !== 'file') continue;
      try {
        const d = await digestFile(this.blobPath(e));
        if (d.size !== e.size || d.sha256 !== e.sha256)
          problems.push(`${e.domain}/${e.relativePath}: bytes differ`);
      } catch (err) {
        problems.push(`${e.domain}/${e.relativePath}: ${(err as Error).message}`);
      }
    }
    return problems;
  }

  private generateContext(): GenerateContext {
    return { seed: this.index.seed, tmpDir: path.join(this.dir, 'tmp') };
  }

  /** (Re)writes a file's blob and records size and digests in `e`. */
  private async writeFile(
    e: ContentEntry,
    kind: ContentKind,
    revision: number,
    size: number,
    mtime: number,
    ctx: GenerateContext,
  ): Promise<void> {
    const d = await writeGenerated(
      this.blobPath(e),
      { domain: e.domain, relativePath: e.relativePath, kind, revision, size, mtime },
      ctx,
    );
    e.size = d.size;
    e.sha256 = d.sha256;
    e.sha1 = d.sha1;
    e.kind = kind;
    e.revision = revision;
  }

  private async save(): Promise<void> {
    const file = path.join(this.dir, INDEX_FILE);
    const tmp = `${file}.tmp-${process.pid}`;
    await fsp.writeFile(tmp, JSON.stringify(this.index));
    await fsp.rename(tmp, file);
  }
}

async function writeGenerated(
  dest: string,
  spec: Parameters<typeof contentChunks>[0],
  ctx: GenerateContext,
): Promise<{ size: number; sha256: string; sha1: string }> {
  const w = await BlobWriter.create(`${dest}.tmp-${process.pid}`);
  try {
    for await (const chunk of contentChunks(spec, ctx)) await w.write(chunk);
    return await w.commit(dest);
  } catch (err) {
    await w.abort();
    throw err;
  }
}

function dirEntry(
  domain: string,
  relativePath: string,
  mtime: number,
  inode: number,
): ContentEntry {
  return {
    domain,
    relativePath,
    type: 'dir',
    size: 0,
    mode: S_IFDIR | 0o755,
    mtime,
    ctime: mtime,
    birth: mtime,
    inode,
    uid: MOBILE_UID,
    gid: MOBILE_UID,
    protectionClass: 0,
  };
}

async function generate(
  dir: string,
  seed: number,
  fileCount: number,
  bytes: number,
): Promise<IndexFile> {
  await fsp.rm(path.join(dir, 'blobs'), { recursive: true, force: true });
  const plan = planTree(seed, fileCount);
  const ctx: GenerateContext = { seed, tmpDir: path.join(dir, 'tmp') };
  const blob = (domain: string, relativePath: string): string => {
    const id = fileIdFor(domain, relativePath);
    return path.join(dir, 'blobs', id.slice(0, 2), id);
  };
  const entries: ContentEntry[] = [];
  const fileEntry = (
    f: (typeof plan.files)[number],
    d: { size: number; sha256: string; sha1: string },
  ): ContentEntry => ({
    domain: f.domain,
    relativePath: f.relativePath,
    type: 'file',
    size: d.size,
    mode: S_IFREG | 0o644,
    mtime: f.mtime,
    ctime: f.mtime,
    birth: f.birth,
    inode: 0,
    uid: MOBILE_UID,
    gid: MOBILE_UID,
    protectionClass: f.protectionClass,
    sha256: d.sha256,
    sha1: d.sha1,
    kind: f.kind,
    revision: 0,
  });
  // Structured files first: their sizes come out of the budget the bulk files share.
  let used = 0;
  const bulk = plan.files.filter((f) => f.weight > 0);
  for (const f of plan.files.filter((x) => x.weight === 0)) {
    const d = await writeGenerated(
      blob(f.domain, f.relativePath),
      { ...f, revision: 0, size: 0 },
      ctx,
    );
    used += d.size;
    entries.push(fileEntry(f, d));
  }
  const sizes = assignSizes(
    bulk.map((f) => f.weight),
    bytes - used,
  );
  for (let i = 0; i < bulk.length; i++) {
    const f = bulk[i]!;
    const d = await writeGenerated(
      blob(f.domain, f.relativePath),
      { ...f, revision: 0, size: sizes[i]! },
      ctx,
    );
    entries.push(fileEntry(f, d));
  }
  const dirRng = new Prng(`mooring-sim/dirs/${seed}`);
  const dirs = new Set<string>();
  const addDirs = (domain: string, relativePath: string, self: boolean): void => {
    for (const a of ancestors(relativePath)) dirs.add(entryKey(domain, a));
    if (self) dirs.add(entryKey(domain, relativePath));
  };
  for (const f of plan.files) addDirs(f.domain, f.relativePath, false);
  for (const l of plan.symlinks) addDirs(l.domain, l.relativePath, false);
  for (const d of plan.extraDirs) addDirs(d.domain, d.relativePath, true);
  for (const k of [...dirs].sort()) {
    const [domain, relativePath] = k.split('\u0000') as [string, string];
    const mtime = plan.timeBase + dirRng.int(0, 365 * DAY - 1);
    entries.push(dirEntry(domain, relativePath, mtime, 0));
  }
  for (const l of plan.symlinks) {
    entries.push({
      domain: l.domain,
      relativePath: l.relativePath,
      type: 'symlink',
      size: Buffer.byteLength(l.target),
      mode: S_IFLNK | 0o755,
      mtime: l.mtime,
      ctime: l.mtime,
      birth: l.mtime,
      inode: 0,
      uid: MOBILE_UID,
      gid: MOBILE_UID,
      protectionClass: 0,
      target: l.target,
    });
  }
  entries.sort(compareEntries);
  entries.forEach((e, i) => (e.inode = plan.inodeBase + i));
  await fsp.rm(ctx.tmpDir, { recursive: true, force: true });
  return {
    format: INDEX_FORMAT,
    seed,
    files: fileCount,
    bytes,
    step: 0,
    nextImage: plan.nextImage,
    nextDoc: 1,
    timeBase: plan.timeBase,
    apps: plan.apps,
    entries,
  };
}

async function readIndex(file: string): Promise<IndexFile | undefined> {
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new MooringError('IO', `cannot read content index ${file}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new MooringError(
      'IO',
      `content index ${file} is not JSON; delete the state directory to regenerate`,
      {
        cause: err,
      },
    );
  }
  const o = v as Partial<IndexFile> | null;
  if (!o || o.format !== INDEX_FORMAT || !Array.isArray(o.entries) || !Array.isArray(o.apps)) {
    throw new MooringError(
      'IO',
      `content index ${file} has an unknown format; delete the state directory to regenerate`,
    );
  }
  return o as IndexFile;
}
