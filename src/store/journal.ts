/**
 * journal.json: the one multi-step operation in progress (a commit or a prune), written durably
 * before its first step and cleared after its last, so the next open rolls it forward instead of
 * guessing from what the folders look like.
 */
import { MooringError } from '../util/errors';
import { readBoundedFile } from '../format/plist-file';
import { unlinkDurable, writeFileDurable } from './fs-util';
import { isSnapshotId } from './ids';
import type { SnapshotRecord } from './metadata';

export interface CommitJournal {
  op: 'commit';
  /** The staged snapshot becoming the latest. */
  id: string;
  /** The latest before it, which moves to snapshots/<prevId>; null when there was none. */
  prevId: string | null;
  record: SnapshotRecord;
  startedAt: string;
}

export interface PruneJournal {
  op: 'prune';
  ids: string[];
  startedAt: string;
}

export type Journal = CommitJournal | PruneJournal;

const MAX_JOURNAL_BYTES = 4 * 1024 * 1024;

export async function readJournal(file: string): Promise<Journal | undefined> {
  let buf: Buffer;
  try {
    buf = await readBoundedFile(file, MAX_JOURNAL_BYTES, 'journal.json');
  } catch (e) {
    if (e instanceof MooringError && e.detail === 'ENOENT') return undefined;
    throw e;
  }
  const bad = (why: string): MooringError =>
    new MooringError(
      'MALFORMED',
      `${file} is damaged (${why}); Mooring cannot tell how far the last operation got. ` +
        'Move the file aside and run `mooring verify` on this device.',
    );
  let v: unknown;
  try {
    v = JSON.parse(buf.toString('utf8'));
  } catch {
    throw bad('not JSON');
  }
  if (typeof v !== 'object' || v === null) throw bad('not an object');
  const j = v as Record<string, unknown>;
  if (j.op === 'commit') {
    const rec = j.record as Record<string, unknown> | undefined;
    if (
      typeof j.id !== 'string' ||
      !isSnapshotId(j.id) ||
      !(j.prevId === null || (typeof j.prevId === 'string' && isSnapshotId(j.prevId))) ||
      typeof rec !== 'object' ||
      rec === null ||
      rec.id !== j.id
    ) {
      throw bad('commit entry');
    }
    return v as CommitJournal;
  }
  if (j.op === 'prune') {
    if (!Array.isArray(j.ids) || !j.ids.every((x) => typeof x === 'string' && isSnapshotId(x)))
      throw bad('prune entry');
    return v as PruneJournal;
  }
  throw bad(`unknown op ${JSON.stringify(j.op)}`);
}

export async function writeJournal(file: string, j: Journal): Promise<void> {
  await writeFileDurable(file, JSON.stringify(j));
}

export async function clearJournal(file: string): Promise<void> {
  await unlinkDurable(file);
}
