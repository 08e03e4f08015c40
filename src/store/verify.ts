/**
 * Verification of one backup folder `<UDID>/`: every file entry of Manifest.db has its payload,
 * of the right size and (unencrypted backups) the right SHA-1; Status.plist says finished;
 * Info.plist and Manifest.plist are readable and name this device. The report lists exactly what
 * is missing or damaged. Nothing is written: the folder may be the latest backup or a snapshot.
 */
import { createHash } from 'node:crypto';
import { constants as fsc, promises as fsp } from 'node:fs';
import path from 'node:path';
import { isMooringError } from '../util/errors';
import {
  INFO_PLIST,
  MANIFEST_DB,
  MANIFEST_PLIST,
  SNAPSHOT_DIR,
  STATUS_PLIST,
  payloadPath,
} from '../format/layout';
import { iterateManifestDb, MANIFEST_FLAG, type ManifestRow } from '../format/manifest-db';
import { readInfoPlist } from '../format/info-plist';
import { readManifestPlist } from '../format/manifest-plist';
import { readStatusPlist } from '../format/status-plist';

export type VerifyProblemKind =
  | 'folder'
  | 'status-plist'
  | 'info-plist'
  | 'manifest-plist'
  | 'manifest-db'
  | 'manifest-row'
  | 'missing'
  | 'not-a-file'
  | 'size'
  | 'digest'
  | 'unreadable';

export interface VerifyProblem {
  kind: VerifyProblemKind;
  fileId?: string;
  domain?: string;
  relativePath?: string;
  problem: string;
}

export interface VerifyReport {
  ok: boolean;
  /** The backup folder checked (`…/<UDID>`). */
  path: string;
  udid: string;
  snapshotState?: string;
  encrypted: boolean;
  /** False when Manifest.db could not be read (or is encrypted): payloads were not checked. */
  contentsChecked: boolean;
  /** Manifest.db rows read, file entries among them, their bytes, files whose SHA-1 was checked. */
  entries: number;
  files: number;
  bytes: number;
  hashed: number;
  /** At most `maxProblems` of them; `problemCount` counts all. */
  problems: VerifyProblem[];
  problemCount: number;
  notes: string[];
}

export interface VerifyOptions {
  /** Check content digests where the backup has them (default true). */
  hash?: boolean;
  maxProblems?: number;
}

export const MAX_REPORTED_PROBLEMS = 10_000;
/** Payloads checked at once. */
const CHECK_CONCURRENCY = 8;
const HASH_CHUNK_BYTES = 1024 * 1024;

export async function verifyBackupFolder(
  dir: string,
  udid: string,
  opts: VerifyOptions = {},
): Promise<VerifyReport> {
  const maxProblems = opts.maxProblems ?? MAX_REPORTED_PROBLEMS;
  const report: VerifyReport = {
    ok: false,
    path: dir,
    udid,
    encrypted: false,
    contentsChecked: false,
    entries: 0,
    files: 0,
    bytes: 0,
    hashed: 0,
    problems: [],
    problemCount: 0,
    notes: [],
  };
  const add = (p: VerifyProblem): void => {
    report.problemCount++;
    if (report.problems.length < maxProblems) report.problems.push(p);
  };
  const message = (e: unknown): string => (e instanceof Error ? e.message : String(e));

  try {
    const st = await fsp.stat(dir);
    if (!st.isDirectory()) throw new Error(`${dir} is not a folder`);
  } catch (e) {
    add({ kind: 'folder', problem: `the backup folder cannot be read: ${message(e)}` });
    return report;
  }

  try {
    const status = await readStatusPlist(path.join(dir, STATUS_PLIST));
    report.snapshotState = status.snapshotState;
    if (status.snapshotState !== 'finished') {
      add({
        kind: 'status-plist',
        problem: `Status.plist says SnapshotState "${status.snapshotState}", not "finished": the backup did not complete`,
      });
    }
  } catch (e) {
    add({ kind: 'status-plist', problem: message(e) });
  }

  try {
    const info = await readInfoPlist(path.join(dir, INFO_PLIST));
    if (info.targetIdentifier.toUpperCase() !== udid.toUpperCase()) {
      add({
        kind: 'info-plist',
        problem: `Info.plist is of device ${info.targetIdentifier}, not ${udid}`,
      });
    }
  } catch (e) {
    add({ kind: 'info-plist', problem: message(e) });
  }

  try {
    const manifest = await readManifestPlist(path.join(dir, MANIFEST_PLIST));
    report.encrypted = manifest.isEncrypted;
    if (manifest.udid !== undefined && manifest.udid.toUpperCase() !== udid.toUpperCase()) {
      add({
        kind: 'manifest-plist',
        problem: `Manifest.plist is of device ${manifest.udid}, not ${udid}`,
      });
    }
  } catch (e) {
    add({ kind: 'manifest-plist', problem: message(e) });
  }

  if (report.encrypted) {
    report.notes.push(
      'The backup is encrypted: Manifest.db cannot be read without the password, so file payloads were not checked.',
    );
  } else {
    await checkPayloads(dir, opts.hash !== false, report, add);
  }

  try {
    await fsp.lstat(path.join(dir, SNAPSHOT_DIR));
    report.notes.push(
      'A Snapshot/ folder (an interrupted transfer) is present; it is not part of the backup.',
    );
  } catch {
    // the usual case
  }
  report.ok = report.problemCount === 0;
  return report;
}

async function checkPayloads(
  dir: string,
  hash: boolean,
  report: VerifyReport,
  add: (p: VerifyProblem) => void,
): Promise<void> {
  const db = path.join(dir, MANIFEST_DB);
  let batch: ManifestRow[] = [];
  const flush = async (): Promise<void> => {
    const rows = batch;
    batch = [];
    for (let i = 0; i < rows.length; i += CHECK_CONCURRENCY) {
      const results = await Promise.all(
        rows.slice(i, i + CHECK_CONCURRENCY).map((r) => checkPayload(dir, r, hash)),
      );
      results.forEach((res, k) => {
        const r = rows[i + k]!;
        if (res.hashed) report.hashed++;
        if (res.problem) {
          add({
            kind: res.problem.kind,
            fileId: r.fileId,
            domain: r.domain,
            relativePath: r.relativePath,
            problem: res.problem.text,
          });
        }
      });
    }
  };
  try {
    for (const row of iterateManifestDb(db, {
      onInvalid: (p) => add({ kind: 'manifest-row', ...p }),
    })) {
      report.entries++;
      if (row.flags !== MANIFEST_FLAG.file) continue;
      report.files++;
      report.bytes += row.file.size;
      batch.push(row);
      if (batch.length >= CHECK_CONCURRENCY * 8) await flush();
    }
    await flush();
    report.contentsChecked = true;
  } catch (e) {
    add({
      kind: 'manifest-db',
      problem: isMooringError(e) ? e.message : `Manifest.db cannot be read: ${String(e)}`,
    });
  }
}

interface PayloadResult {
  hashed: boolean;
  problem?: { kind: VerifyProblemKind; text: string };
}

async function checkPayload(dir: string, row: ManifestRow, hash: boolean): Promise<PayloadResult> {
  const file = payloadPath(dir, row.fileId);
  let st;
  try {
    st = await fsp.lstat(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR')
      return { hashed: false, problem: { kind: 'missing', text: 'the payload file is missing' } };
    return { hashed: false, problem: { kind: 'unreadable', text: (e as Error).message } };
  }
  if (!st.isFile())
    return {
      hashed: false,
      problem: { kind: 'not-a-file', text: 'the payload is not a regular file' },
    };
  if (st.size !== row.file.size) {
    return {
      hashed: false,
      problem: {
        kind: 'size',
        text: `the payload is ${st.size} bytes, Manifest.db says ${row.file.size}`,
      },
    };
  }
  const digest = row.file.digest;
  if (!hash || digest === undefined || digest.length !== 20) return { hashed: false };
  try {
    const actual = await sha1File(file, row.file.size);
    if (!actual.equals(digest)) {
      return {
        hashed: true,
        problem: {
          kind: 'digest',
          text: `the payload's SHA-1 is ${actual.toString('hex')}, Manifest.db says ${digest.toString('hex')}`,
        },
      };
    }
    return { hashed: true };
  } catch (e) {
    return { hashed: false, problem: { kind: 'unreadable', text: (e as Error).message } };
  }
}

/** SHA-1 of the first `size` bytes (plus a check that there are no more), in bounded chunks. */
export async function sha1File(file: string, size: number): Promise<Buffer> {
  const fh = await fsp.open(file, fsc.O_RDONLY | fsc.O_NOFOLLOW);
  try {
    const h = createHash('sha1');
    const buf = Buffer.alloc(Math.min(HASH_CHUNK_BYTES, Math.max(size, 1)));
    let pos = 0;
    while (pos < size) {
      const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, size - pos), pos);
      if (bytesRead === 0) break;
      h.update(buf.subarray(0, bytesRead));
      pos += bytesRead;
    }
    return h.digest();
  } finally {
    await fh.close();
  }
}
