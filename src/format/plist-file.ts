/**
 * Reading a backup's property-list files from disk. A backup folder may be damaged or hostile (it
 * came from a device, or from whatever else wrote into the folder), so the read is bounded, a
 * symlink or a non-regular file is refused, and every error names the file.
 */
import { constants as fsc, promises as fsp } from 'node:fs';
import { MooringError } from '../util/errors';
import { decodePlist, isPlistDict, type PlistDict } from '../protocol/plist';

/** Bounds for a backup's plists: Info.plist carries app icons and iTunes files, so it can be MBs. */
export const MAX_BACKUP_PLIST_BYTES = 64 * 1024 * 1024;
export const BACKUP_PLIST_LIMITS = { maxDepth: 32, maxObjects: 1_000_000 };

/**
 * Reads `file` (at most `maxBytes`). IO with detail 'ENOENT' when it does not exist; MALFORMED
 * when it is not a regular file or is too large.
 */
export async function readBoundedFile(
  file: string,
  maxBytes: number,
  what: string,
): Promise<Buffer> {
  let fh: fsp.FileHandle;
  try {
    fh = await fsp.open(file, fsc.O_RDONLY | fsc.O_NOFOLLOW);
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    if (code === 'ENOENT')
      throw new MooringError('IO', `${what} is missing (${file})`, { detail: 'ENOENT', cause });
    if (code === 'ELOOP')
      throw new MooringError('MALFORMED', `${what} is a symbolic link (${file})`, { cause });
    throw new MooringError(
      'IO',
      `${what} cannot be opened (${file}): ${(cause as Error).message}`,
      {
        detail: code ?? 'EIO',
        cause,
      },
    );
  }
  try {
    const st = await fh.stat();
    if (!st.isFile())
      throw new MooringError('MALFORMED', `${what} is not a regular file (${file})`);
    if (st.size > maxBytes) {
      throw new MooringError(
        'MALFORMED',
        `${what} is ${st.size} bytes, more than the ${maxBytes} accepted (${file})`,
      );
    }
    // Read one byte past the size seen: a file that grows meanwhile is still cut at the bound.
    const buf = Buffer.alloc(st.size + 1);
    let off = 0;
    while (off < buf.length) {
      const { bytesRead } = await fh.read(buf, off, buf.length - off, off);
      if (bytesRead === 0) break;
      off += bytesRead;
    }
    if (off > maxBytes)
      throw new MooringError('MALFORMED', `${what} grew past ${maxBytes} bytes (${file})`);
    return buf.subarray(0, off);
  } finally {
    await fh.close();
  }
}

/** Reads and decodes a plist file whose top level must be a dict. */
export async function readPlistDictFile(
  file: string,
  what: string,
  maxBytes = MAX_BACKUP_PLIST_BYTES,
): Promise<PlistDict> {
  const buf = await readBoundedFile(file, maxBytes, what);
  return decodePlistDict(buf, what, file);
}

export function decodePlistDict(buf: Buffer, what: string, file?: string): PlistDict {
  const where = file === undefined ? '' : ` (${file})`;
  let v;
  try {
    v = decodePlist(buf, BACKUP_PLIST_LIMITS);
  } catch (cause) {
    throw new MooringError(
      'MALFORMED',
      `${what} is not a readable plist${where}: ${(cause as Error).message}`,
      { cause },
    );
  }
  if (!isPlistDict(v)) throw new MooringError('MALFORMED', `${what} is not a plist dict${where}`);
  return v;
}

/** Typed field access for decoded dicts: undefined when absent, MALFORMED when of the wrong type. */
export class FieldReader {
  constructor(
    private readonly dict: PlistDict,
    private readonly what: string,
    private readonly file?: string,
  ) {}

  private wrong(key: string, expected: string): MooringError {
    const where = this.file === undefined ? '' : ` (${this.file})`;
    return new MooringError('MALFORMED', `${this.what}: ${key} is not ${expected}${where}`);
  }

  string(key: string): string | undefined {
    const v = this.dict[key];
    if (v === undefined) return undefined;
    if (typeof v !== 'string') throw this.wrong(key, 'a string');
    return v;
  }

  requiredString(key: string): string {
    const v = this.string(key);
    if (v === undefined) {
      const where = this.file === undefined ? '' : ` (${this.file})`;
      throw new MooringError('MALFORMED', `${this.what} has no ${key}${where}`);
    }
    return v;
  }

  boolean(key: string): boolean | undefined {
    const v = this.dict[key];
    if (v === undefined) return undefined;
    if (typeof v !== 'boolean') throw this.wrong(key, 'a boolean');
    return v;
  }

  date(key: string): Date | undefined {
    const v = this.dict[key];
    if (v === undefined) return undefined;
    if (!(v instanceof Date) || Number.isNaN(v.getTime())) throw this.wrong(key, 'a date');
    return v;
  }

  subDict(key: string): PlistDict | undefined {
    const v = this.dict[key];
    if (v === undefined) return undefined;
    if (!isPlistDict(v)) throw this.wrong(key, 'a dict');
    return v;
  }
}
