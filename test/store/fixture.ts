/**
 * Synthetic backups for store tests: a real Manifest.db, real plists and payloads, written the way
 * the backup engine must write (a new file renamed over the old name, never into an existing file),
 * so snapshots that share files by hard links stay intact.
 */
import { spawn } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { encodeBinaryPlist, encodeXmlPlist } from '../../src/protocol/plist';
import { fileIdFor, payloadRelPath } from '../../src/format/file-id';
import Database from 'better-sqlite3';
import { encodeMbFile, S_IFDIR, S_IFLNK, S_IFREG } from '../../src/format/mbfile';
import { MANIFEST_FLAG, writeManifestDb, type ManifestRow } from '../../src/format/manifest-db';
import { encodeStatusPlist, type SnapshotState } from '../../src/format/status-plist';
import { walkFiles } from '../../src/store/fs-util';
import type { TreeUsage } from '../../src/store/usage';

export const UDID = '00008110-000A1B2C3D4E5F60';

export interface FakeEntry {
  domain: string;
  relativePath: string;
  /** Content of a file; absent for directories and symlinks. */
  content?: string | Buffer;
  type?: 'file' | 'dir' | 'symlink';
  target?: string;
  mtime?: number;
}

export interface FakeBackupOptions {
  state?: SnapshotState;
  /** Leave out MBFile digests (size-only verification). */
  noDigest?: boolean;
  uuid?: string;
  date?: Date;
  udid?: string;
}

export { tempDirs } from '../helpers/temp-dirs';

async function replaceFile(file: string, data: string | Buffer): Promise<void> {
  const tmp = `${file}.new-${randomUUID()}`;
  await fsp.writeFile(tmp, data, { flag: 'wx' });
  await fsp.rename(tmp, file);
}

/**
 * Makes `dir` (a `<UDID>` backup folder, possibly a hard-link copy of an older one) hold exactly
 * `entries`: changed payloads are replaced (new inode), unchanged ones are left alone, payloads
 * no longer listed are unlinked, and the plists and Manifest.db are rewritten as new files.
 */
export async function writeBackup(
  dir: string,
  entries: FakeEntry[],
  opts: FakeBackupOptions = {},
): Promise<void> {
  await fsp.mkdir(dir, { recursive: true });
  const udid = opts.udid ?? UDID;
  const rows: Array<Omit<ManifestRow, 'fileId'>> = [];
  const keep = new Set<string>();
  for (const e of entries) {
    const type = e.type ?? 'file';
    const mtime = e.mtime ?? 1_700_000_000;
    const base = {
      relativePath: e.relativePath,
      lastModified: mtime,
      lastStatusChange: mtime,
      birth: mtime,
      userId: 501,
      groupId: 501,
      inode: rows.length + 1000,
      protectionClass: type === 'file' ? 3 : 0,
      flags: 0,
    };
    if (type === 'file') {
      const data = Buffer.from(e.content ?? '');
      const id = fileIdFor(e.domain, e.relativePath);
      const file = path.join(dir, payloadRelPath(id));
      keep.add(payloadRelPath(id));
      await fsp.mkdir(path.dirname(file), { recursive: true });
      const same = await fsp.readFile(file).then(
        (b) => b.equals(data),
        () => false,
      );
      if (!same) await replaceFile(file, data);
      rows.push({
        domain: e.domain,
        relativePath: e.relativePath,
        flags: MANIFEST_FLAG.file,
        file: {
          ...base,
          size: data.length,
          mode: S_IFREG | 0o644,
          ...(opts.noDigest ? {} : { digest: createHash('sha1').update(data).digest() }),
        },
      });
    } else if (type === 'dir') {
      rows.push({
        domain: e.domain,
        relativePath: e.relativePath,
        flags: MANIFEST_FLAG.dir,
        file: { ...base, size: 0, mode: S_IFDIR | 0o755 },
      });
    } else {
      rows.push({
        domain: e.domain,
        relativePath: e.relativePath,
        flags: MANIFEST_FLAG.symlink,
        file: { ...base, size: 0, mode: S_IFLNK | 0o755, target: e.target ?? 'x' },
      });
    }
  }
  for (const b of await fsp.readdir(dir)) {
    if (!/^[0-9a-f]{2}$/.test(b)) continue;
    for (const f of await fsp.readdir(path.join(dir, b)))
      if (!keep.has(`${b}/${f}`)) await fsp.unlink(path.join(dir, b, f));
  }
  const db = path.join(dir, `Manifest.db.new-${randomUUID()}`);
  writeManifestDb(db, rows);
  await fsp.rename(db, path.join(dir, 'Manifest.db'));
  await replaceFile(
    path.join(dir, 'Info.plist'),
    encodeXmlPlist({
      'Target Identifier': udid,
      'Unique Identifier': udid.toUpperCase(),
      'Device Name': 'Test iPhone',
      'Target Type': 'Device',
    }),
  );
  await replaceFile(
    path.join(dir, 'Manifest.plist'),
    encodeBinaryPlist({
      IsEncrypted: false,
      Lockdown: { UniqueDeviceID: udid, DeviceName: 'Test iPhone' },
      Version: '10.0',
      Date: opts.date ?? new Date(),
    }),
  );
  await replaceFile(
    path.join(dir, 'Status.plist'),
    encodeStatusPlist({
      uuid: opts.uuid ?? randomUUID().toUpperCase(),
      isFullBackup: false,
      snapshotState: opts.state ?? 'finished',
      date: opts.date ?? new Date(),
    }),
  );
}

export function sampleEntries(n: number): FakeEntry[] {
  const out: FakeEntry[] = [
    { domain: 'HomeDomain', relativePath: 'Library', type: 'dir' },
    { domain: 'HomeDomain', relativePath: 'Library/link', type: 'symlink', target: 'SMS' },
  ];
  for (let i = 0; i < n; i++) {
    out.push({
      domain: i % 2 ? 'CameraRollDomain' : 'HomeDomain',
      relativePath: i % 2 ? `Media/DCIM/100APPLE/IMG_${1000 + i}.JPG` : `Library/file${i}.txt`,
      content: `content of file ${i} `.repeat(10 + i),
    });
  }
  return out;
}

/**
 * Adds a Files row to the backup's Manifest.db as a hostile device could write it (a 3-byte
 * regular file, no payload, the path unchecked), for tests of what reading code refuses.
 */
export function insertRawFileRow(backupDir: string, domain: string, relativePath: string): void {
  const db = new Database(path.join(backupDir, 'Manifest.db'));
  try {
    db.prepare('INSERT INTO Files VALUES (?, ?, ?, ?, ?)').run(
      fileIdFor(domain, relativePath),
      domain,
      relativePath,
      1,
      encodeMbFile({
        relativePath,
        lastModified: 0,
        lastStatusChange: 0,
        birth: 0,
        size: 3,
        mode: S_IFREG | 0o644,
        userId: 0,
        groupId: 0,
        inode: 0,
        protectionClass: 0,
        flags: 0,
      }),
    );
  } finally {
    db.close();
  }
}

/** A folder's usage counted independently of store/usage: every regular file, payload names, single-link bytes. */
export async function walkedUsage(dir: string): Promise<TreeUsage> {
  const u: TreeUsage = { files: 0, size: 0, exclusiveBytes: 0 };
  await walkFiles(dir, (f) => {
    u.size += f.size;
    if (/^[0-9a-f]{2}\/[0-9a-f]{40}$/.test(f.rel)) u.files++;
    if (f.nlink <= 1) u.exclusiveBytes += f.size;
  });
  return u;
}

/** Every file's path under `dir` with its inode ("dev:ino"): which names share which files. */
export async function inodesOf(dir: string): Promise<Map<string, string>> {
  const m = new Map<string, string>();
  await walkFiles(dir, (f) => {
    m.set(f.rel, f.inode);
  });
  return m;
}

// ---- a second process (child.ts) -------------------------------------------------------------

export interface ChildResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs test/store/child.ts with `args` (its usage says which); resolves however it ended. */
export function runChild(args: Record<string, unknown>): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const p = spawn(
      process.execPath,
      ['--import', 'tsx', path.join(__dirname, 'child.ts'), JSON.stringify(args)],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('error', reject);
    p.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}
