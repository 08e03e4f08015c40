/**
 * Confinement of device-sent paths. Every path in a DeviceLink message or file stream is chosen by
 * the device, which is untrusted: a compromised or buggy phone must not be able to make us write,
 * move, list or delete anything outside its own folder `<root>/<udid>/`.
 *
 * Lexical rules first (relative, starts with the device's UDID, no `..`, no NUL or backslash,
 * bounded length and depth), then the filesystem: no component of the existing prefix may be a
 * symlink, and the deepest existing component must really lie under the root (realpath). Paths that
 * do not exist yet are fine: mkdir/rename create real directories and files, never links.
 */
import { lstatSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { MooringError } from '../util/errors';
import { MAX_DL_PATH_BYTES } from '../protocol/device-link';
import type { BackupTarget } from './target';

/** Longest device path accepted (UTF-8 bytes), as LIMD's file-name bound. */
export const MAX_CONFINED_PATH_BYTES = MAX_DL_PATH_BYTES;
/** Deepest device path accepted (segments, the UDID included); real ones have at most 4. */
export const MAX_CONFINED_PATH_DEPTH = 32;

function unsafe(devicePath: string, why: string): MooringError {
  const shown = devicePath.length > 200 ? `${devicePath.slice(0, 200)}…` : devicePath;
  return new MooringError('UNSAFE_PATH', `refused device path ${JSON.stringify(shown)}: ${why}`, {
    detail: shown,
  });
}

/**
 * The lexical checks: returns the path's segments (empty and "." segments dropped), the first
 * being the UDID. Throws UNSAFE_PATH.
 */
export function devicePathSegments(udid: string, devicePath: string): string[] {
  if (typeof devicePath !== 'string' || devicePath.length === 0) {
    throw unsafe(String(devicePath), 'it is empty');
  }
  if (devicePath.includes('\0')) throw unsafe(devicePath, 'it contains a NUL character');
  if (Buffer.byteLength(devicePath, 'utf8') > MAX_CONFINED_PATH_BYTES) {
    throw unsafe(devicePath, `it is longer than ${MAX_CONFINED_PATH_BYTES} bytes`);
  }
  // A backslash is a separator on Windows; no real device path contains one.
  if (devicePath.includes('\\')) throw unsafe(devicePath, 'it contains a backslash');
  if (
    path.posix.isAbsolute(devicePath) ||
    path.win32.isAbsolute(devicePath) ||
    /^[A-Za-z]:/.test(devicePath)
  ) {
    throw unsafe(devicePath, 'it is absolute');
  }
  const segments = devicePath.split('/').filter((s) => s !== '' && s !== '.');
  if (segments.includes('..')) throw unsafe(devicePath, 'it contains a ".." segment');
  if (segments.length > MAX_CONFINED_PATH_DEPTH) {
    throw unsafe(devicePath, `it is deeper than ${MAX_CONFINED_PATH_DEPTH} levels`);
  }
  if (segments[0] !== udid)
    throw unsafe(devicePath, `it is not inside the device's folder ${udid}/`);
  if (process.platform === 'win32' && segments.some((s) => s.includes(':'))) {
    throw unsafe(devicePath, 'it contains ":" (an alternate data stream on Windows)');
  }
  return segments;
}

/**
 * Resolves device paths for one target; remembers the root's real path. The checks use
 * synchronous calls (an lstat per segment and one realpath): this runs for every file a device
 * sends, and an awaited fs call costs several times the syscall in thread-pool hand-offs.
 */
export class PathConfiner {
  private realRoot: string | undefined;

  constructor(readonly target: BackupTarget) {}

  /** The host path for `devicePath`, or UNSAFE_PATH (detail: the device path). */
  async resolve(devicePath: string): Promise<string> {
    return this.resolveSync(devicePath);
  }

  /** resolve(), synchronously (throws instead of rejecting). */
  resolveSync(devicePath: string): string {
    const segments = devicePathSegments(this.target.udid, devicePath);
    this.realRoot ??= realpathSync.native(this.target.root);
    const realRoot = this.realRoot;
    let current = this.target.root;
    let deepestExisting = this.target.root;
    for (const segment of segments) {
      current = path.join(current, segment);
      let st;
      try {
        st = lstatSync(current);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        // The rest does not exist (yet): nothing below can be a link. ENOTDIR: the operation itself
        // will fail with ENOTDIR, which the device is told.
        if (code === 'ENOENT' || code === 'ENOTDIR') break;
        throw e;
      }
      if (st.isSymbolicLink()) throw unsafe(devicePath, `${segment} on this computer is a symlink`);
      deepestExisting = current;
    }
    const real = realpathSync.native(deepestExisting);
    const rel = path.relative(realRoot, real);
    if (rel === '..' || rel.startsWith(`..${path.sep}`) || path.isAbsolute(rel)) {
      throw unsafe(devicePath, 'it resolves outside the backup folder');
    }
    return path.join(this.target.root, ...segments);
  }
}
