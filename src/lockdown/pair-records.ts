/**
 * Where a pair record for a UDID comes from and where a new one goes (reference §2.1).
 * Lookup order, as pymobiledevice3: usbmuxd ReadPairRecord → the OS lockdown folder (if we may read
 * it) → Mooring's own store. Saving: usbmuxd SavePairRecord (so usbmuxd and other tools see the
 * pairing, and usbmuxd emits Paired) and always our own store (0600), which works without root.
 */
import { promises as fs, constants as fsConstants } from 'node:fs';
import path from 'node:path';
import { MooringError } from '../util/errors';
import {
  MAX_PAIR_RECORD_BYTES,
  parsePairRecord,
  serializePairRecord,
  type PairRecord,
} from '../pairing/pair-record';

/** The usbmuxd side of the lookup (UsbmuxdClient satisfies it). */
export interface PairRecordReader {
  readPairRecord(udid: string): Promise<Buffer | undefined>;
}
export interface PairRecordWriter {
  savePairRecord(udid: string, data: Buffer, deviceId?: number): Promise<void>;
}
export interface PairRecordDeleter {
  deletePairRecord(udid: string): Promise<unknown>;
}

/** The OS-wide folder libimobiledevice/usbmuxd/Apple use. */
export function systemLockdownDir(
  platform: NodeJS.Platform = process.platform,
  env: NodeJS.ProcessEnv = process.env,
): string {
  if (platform === 'win32') {
    const base = env.ProgramData ?? env.ALLUSERSPROFILE ?? 'C:\\ProgramData';
    return path.win32.join(base, 'Apple', 'Lockdown');
  }
  return platform === 'darwin' ? '/var/db/lockdown' : '/var/lib/lockdown';
}

/**
 * UDIDs become file names, so only the characters real UDIDs use are allowed
 * (40 hex digits, or the 8-16 dash form).
 */
export function assertSafeUdid(udid: string): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9-]{0,63}$/.test(udid)) {
    throw new MooringError('UNSAFE_PATH', `not a device identifier: ${JSON.stringify(udid)}`);
  }
}

export type PairRecordSource = 'usbmuxd' | 'system' | 'store';

export interface FoundPairRecord {
  record: PairRecord;
  source: PairRecordSource;
  /** "usbmuxd" or the file path. */
  location: string;
}

export interface FindPairRecordOptions {
  usbmuxd?: PairRecordReader;
  /** The OS lockdown folder; default systemLockdownDir(), null to skip it. */
  systemDir?: string | null;
  /** Mooring's own store folder. */
  storeDir?: string;
}

async function readBoundedFile(file: string): Promise<Buffer | undefined> {
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(file, fsConstants.O_RDONLY);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    // Missing, or root-only (macOS /var/db/lockdown): just not a source for us.
    if (code === 'ENOENT' || code === 'EACCES' || code === 'EPERM' || code === 'ENOTDIR')
      return undefined;
    throw new MooringError('IO', `cannot read ${file}: ${(e as Error).message}`, { cause: e });
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) return undefined;
    if (st.size > MAX_PAIR_RECORD_BYTES) {
      throw new MooringError(
        'LIMIT',
        `${file} is ${st.size} bytes; a pair record is never that large`,
      );
    }
    return await handle.readFile();
  } finally {
    await handle.close();
  }
}

/**
 * The pair record for `udid`, or undefined when no source has one. A source holding an
 * unreadable record is skipped; if no later source has a good one, that error is thrown.
 */
export async function findPairRecord(
  udid: string,
  opts: FindPairRecordOptions = {},
): Promise<FoundPairRecord | undefined> {
  assertSafeUdid(udid);
  let firstFailure: MooringError | undefined;
  const tryParse = (
    bytes: Buffer,
    source: PairRecordSource,
    location: string,
  ): FoundPairRecord | undefined => {
    try {
      return { record: parsePairRecord(bytes, udid), source, location };
    } catch (cause) {
      firstFailure ??= new MooringError(
        'PAIRING',
        `the pair record for ${udid} from ${location} is unusable: ${(cause as Error).message}`,
        {
          cause,
        },
      );
      return undefined;
    }
  };

  if (opts.usbmuxd) {
    let bytes: Buffer | undefined;
    try {
      bytes = await opts.usbmuxd.readPairRecord(udid);
    } catch {
      // usbmuxd not running, or refusing: fall through to the files.
      bytes = undefined;
    }
    if (bytes !== undefined && bytes.length > 0) {
      const found = tryParse(bytes, 'usbmuxd', 'usbmuxd');
      if (found) return found;
    }
  }
  const dirs: Array<[PairRecordSource, string]> = [];
  const systemDir = opts.systemDir === undefined ? systemLockdownDir() : opts.systemDir;
  if (systemDir !== null) dirs.push(['system', systemDir]);
  if (opts.storeDir !== undefined) dirs.push(['store', opts.storeDir]);
  for (const [source, dir] of dirs) {
    const file = path.join(dir, `${udid}.plist`);
    const bytes = await readBoundedFile(file);
    if (bytes === undefined) continue;
    const found = tryParse(bytes, source, file);
    if (found) return found;
  }
  if (firstFailure) throw firstFailure;
  return undefined;
}

export interface SavePairRecordOptions {
  usbmuxd?: PairRecordWriter;
  /** usbmuxd's DeviceID, so it can emit Paired for the device. */
  deviceId?: number;
  storeDir?: string;
}

export interface SavedPairRecord {
  /** True when usbmuxd accepted the record. */
  usbmuxd: boolean;
  /** Why usbmuxd did not take it, if it was asked. */
  usbmuxdError?: Error;
  /** The file written in Mooring's store. */
  storePath?: string;
}

/** Writes the record to usbmuxd (if given) and to the store (if given; mode 0600, atomically). */
export async function savePairRecord(
  udid: string,
  record: PairRecord,
  opts: SavePairRecordOptions,
): Promise<SavedPairRecord> {
  assertSafeUdid(udid);
  if (!opts.usbmuxd && opts.storeDir === undefined)
    throw new MooringError('USAGE', 'nowhere to save the pair record');
  const bytes = serializePairRecord(record);
  const result: SavedPairRecord = { usbmuxd: false };
  if (opts.usbmuxd) {
    try {
      await opts.usbmuxd.savePairRecord(udid, bytes, opts.deviceId);
      result.usbmuxd = true;
    } catch (e) {
      result.usbmuxdError = e instanceof Error ? e : new Error(String(e));
    }
  }
  if (opts.storeDir !== undefined) {
    await fs.mkdir(opts.storeDir, { recursive: true, mode: 0o700 });
    const file = path.join(opts.storeDir, `${udid}.plist`);
    const tmp = `${file}.${process.pid}.tmp`;
    try {
      await fs.writeFile(tmp, bytes, { mode: 0o600 });
      await fs.chmod(tmp, 0o600); // umask may have loosened it
      await fs.rename(tmp, file);
    } catch (e) {
      await fs.rm(tmp, { force: true });
      throw new MooringError(
        'IO',
        `cannot save the pair record to ${file}: ${(e as Error).message}`,
        { cause: e },
      );
    }
    result.storePath = file;
  } else if (!result.usbmuxd && result.usbmuxdError) {
    throw new MooringError(
      'USBMUXD',
      `usbmuxd did not save the pair record: ${result.usbmuxdError.message}`,
      {
        cause: result.usbmuxdError,
      },
    );
  }
  return result;
}

/** Forgets the record in usbmuxd (if given) and in the store (if given). Missing records are fine. */
export async function deletePairRecord(
  udid: string,
  opts: { usbmuxd?: PairRecordDeleter; storeDir?: string },
): Promise<void> {
  assertSafeUdid(udid);
  if (opts.usbmuxd) {
    try {
      await opts.usbmuxd.deletePairRecord(udid);
    } catch {
      // usbmuxd may never have had it.
    }
  }
  if (opts.storeDir !== undefined)
    await fs.rm(path.join(opts.storeDir, `${udid}.plist`), { force: true });
}
