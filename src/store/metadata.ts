/**
 * snapshots.json: what the store knows about each snapshot that the folders themselves do not say
 * (pinned, full or incremental, which one is the latest). Written atomically; read bounded and
 * validated, and reconciled with the folders on every open.
 */
import { MooringError } from '../util/errors';
import { readBoundedFile } from '../format/plist-file';
import { writeFileDurable } from './fs-util';
import { compareSnapshotIds, dateOfSnapshotId, isSnapshotId } from './ids';

export type SnapshotStatus = 'complete' | 'incomplete';

export interface SnapshotRecord {
  id: string;
  /** ISO time the backup started (the id's time). */
  date: string;
  pinned: boolean;
  status: SnapshotStatus;
  udid: string;
  isFull?: boolean;
  /** Logical bytes and payload files when it was committed or adopted. */
  bytes?: number;
  files?: number;
  /** Made by another tool (idevicebackup2, Finder) and taken over as it was. */
  adopted?: boolean;
  /** Status.plist UUID: tells our latest from one another tool wrote over it in place. */
  uuid?: string;
  /** Set when a verification found it damaged on disk (a file removed or cut short). */
  damaged?: SnapshotDamage;
}

/** A whole backup: complete when taken, and not marked damaged since. */
export function isSoundRecord(r: SnapshotRecord): boolean {
  return r.status === 'complete' && r.damaged === undefined;
}

/** What a failed verification of a committed snapshot found (kept until it verifies again). */
export interface SnapshotDamage {
  /** ISO time of the verification that found it. */
  at: string;
  problems: number;
  /** The first problem, as one line (bounded). */
  example: string;
}

export const MAX_DAMAGE_EXAMPLE_CHARS = 500;

function validDamage(d: unknown): boolean {
  if (d === undefined) return true;
  if (typeof d !== 'object' || d === null) return false;
  const x = d as Record<string, unknown>;
  return (
    typeof x.at === 'string' &&
    !Number.isNaN(Date.parse(x.at)) &&
    typeof x.problems === 'number' &&
    Number.isSafeInteger(x.problems) &&
    x.problems >= 0 &&
    typeof x.example === 'string' &&
    x.example.length <= MAX_DAMAGE_EXAMPLE_CHARS
  );
}

export interface StoreMetadata {
  version: 1;
  udid: string;
  /** The id of `<dest>/<UDID>`, or null when there is none. */
  latest: string | null;
  /** Sorted by id. The latest is among them. */
  snapshots: SnapshotRecord[];
}

export const MAX_METADATA_BYTES = 16 * 1024 * 1024;

export function emptyMetadata(udid: string): StoreMetadata {
  return { version: 1, udid, latest: null, snapshots: [] };
}

function bad(file: string, why: string): MooringError {
  return new MooringError('MALFORMED', `${file}: ${why}`);
}

function validRecord(r: unknown): r is SnapshotRecord {
  if (typeof r !== 'object' || r === null) return false;
  const x = r as Record<string, unknown>;
  const optNum = (v: unknown): boolean =>
    v === undefined || (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0);
  return (
    typeof x.id === 'string' &&
    isSnapshotId(x.id) &&
    typeof x.date === 'string' &&
    !Number.isNaN(Date.parse(x.date)) &&
    typeof x.pinned === 'boolean' &&
    (x.status === 'complete' || x.status === 'incomplete') &&
    typeof x.udid === 'string' &&
    (x.isFull === undefined || typeof x.isFull === 'boolean') &&
    (x.adopted === undefined || typeof x.adopted === 'boolean') &&
    (x.uuid === undefined || typeof x.uuid === 'string') &&
    optNum(x.bytes) &&
    optNum(x.files) &&
    validDamage(x.damaged)
  );
}

/** Reads snapshots.json; undefined when absent, MALFORMED when damaged. */
export async function readMetadata(file: string, udid: string): Promise<StoreMetadata | undefined> {
  let buf: Buffer;
  try {
    buf = await readBoundedFile(file, MAX_METADATA_BYTES, 'snapshots.json');
  } catch (e) {
    if (e instanceof MooringError && e.detail === 'ENOENT') return undefined;
    throw e;
  }
  let v: unknown;
  try {
    v = JSON.parse(buf.toString('utf8'));
  } catch {
    throw bad(file, 'not JSON');
  }
  if (typeof v !== 'object' || v === null) throw bad(file, 'not an object');
  const m = v as Record<string, unknown>;
  if (m.version !== 1) throw bad(file, `unknown version ${JSON.stringify(m.version)}`);
  if (m.udid !== udid) throw bad(file, `belongs to ${JSON.stringify(m.udid)}, not ${udid}`);
  if (!Array.isArray(m.snapshots) || !m.snapshots.every(validRecord))
    throw bad(file, 'a snapshot record is damaged');
  const snapshots = m.snapshots as SnapshotRecord[];
  if (new Set(snapshots.map((s) => s.id)).size !== snapshots.length)
    throw bad(file, 'a snapshot id appears twice');
  const latest = m.latest;
  if (latest !== null && (typeof latest !== 'string' || !snapshots.some((s) => s.id === latest)))
    throw bad(file, 'latest names no snapshot');
  return { version: 1, udid, latest, snapshots: sortRecords(snapshots) };
}

export function sortRecords(rs: SnapshotRecord[]): SnapshotRecord[] {
  return [...rs].sort((a, b) => compareSnapshotIds(a.id, b.id));
}

export async function writeMetadata(file: string, m: StoreMetadata): Promise<void> {
  const out: StoreMetadata = { ...m, snapshots: sortRecords(m.snapshots) };
  await writeFileDurable(file, `${JSON.stringify(out, null, 2)}\n`);
}

/** The date of a record as a Date (the id's time when the stored date is unusable). */
export function recordDate(r: SnapshotRecord): Date {
  const t = Date.parse(r.date);
  return Number.isNaN(t) ? (dateOfSnapshotId(r.id) ?? new Date(0)) : new Date(t);
}
