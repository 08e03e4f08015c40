/**
 * com.apple.afc, device side: the subset of reference §6.3 backup hosts use, rooted at the
 * device's media directory. Every path is confined to that root (".." collapses at the root,
 * symlinks may not lead out). File locks follow flock(2): one exclusive holder, or any number of
 * shared holders; others get OP_WOULD_BLOCK; locks go away on unlock, close or disconnect.
 */
import { constants as fsc, promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import {
  AfcOp,
  AfcStatus,
  decodeAfcPath,
  decodeU64,
  encodeAfcPacket,
  encodeKeyValueList,
  encodeU64s,
  readAfcPacket,
  type AfcPacket,
} from '../../protocol/afc';
import { isMooringError } from '../../util/errors';
import { StreamReader } from '../../util/stream-reader';
import type { ServiceHandler, SimDeviceApi } from '../contracts';

/** AFC connections idle through a whole backup while holding the sync lock: wait long. */
export const AFC_IDLE_TIMEOUT_MS = 12 * 60 * 60 * 1000;
/** Largest request packet accepted (writes arrive in far smaller pieces). */
export const AFC_MAX_PACKET_BYTES = 8 * 1024 * 1024;
/** Largest read answered at once; a host asking for more gets a short read. */
export const AFC_MAX_READ_BYTES = 4 * 1024 * 1024;
/** Open files per connection. */
export const AFC_MAX_OPEN_FILES = 256;
/** Symlink hops followed while confining a path. */
const MAX_SYMLINK_HOPS = 16;

const LOCK_NB = 4;
const LOCK_SH = 1;
const LOCK_EX = 2;
const LOCK_UN = 8;

/** Device-wide lock table: lock holders are open handles, across every AFC connection. */
interface LockState {
  exclusive?: object;
  shared: Set<object>;
}
const lockTables = new WeakMap<SimDeviceApi, Map<string, LockState>>();

function lockTable(device: SimDeviceApi): Map<string, LockState> {
  let t = lockTables.get(device);
  if (!t) lockTables.set(device, (t = new Map()));
  return t;
}

/** Whether any AFC handle holds a lock on `afcPath` (e.g. the sync lock file) right now. */
export async function afcLockHeld(device: SimDeviceApi, afcPath: string): Promise<boolean> {
  const real = await (await AfcRoot.open(device.mediaDir)).resolve(afcPath, true);
  const s = lockTable(device).get(real);
  return s !== undefined && (s.exclusive !== undefined || s.shared.size > 0);
}

/** Default folders a phone's media partition has. */
export async function prepareMediaDir(mediaDir: string): Promise<void> {
  for (const d of ['iTunes_Control/iTunes', 'Books', 'DCIM', 'Downloads', 'PublicStaging']) {
    await fsp.mkdir(path.join(mediaDir, d), { recursive: true });
  }
}

class AfcError extends Error {
  constructor(readonly status: number) {
    super(`AFC status ${status}`);
  }
}

function statusForErrno(e: unknown): number {
  if (e instanceof AfcError) return e.status;
  switch ((e as NodeJS.ErrnoException).code) {
    case 'ENOENT':
    case 'ENOTDIR':
      return AfcStatus.OBJECT_NOT_FOUND;
    case 'EISDIR':
      return AfcStatus.OBJECT_IS_DIR;
    case 'EACCES':
    case 'EPERM':
    case 'ELOOP':
      return AfcStatus.PERM_DENIED;
    case 'EEXIST':
      return AfcStatus.OBJECT_EXISTS;
    case 'ENOSPC':
      return AfcStatus.NO_SPACE_LEFT;
    case 'ENOTEMPTY':
      return AfcStatus.UNKNOWN_ERROR;
    default:
      return AfcStatus.IO_ERROR;
  }
}

function isInside(root: string, p: string): boolean {
  return p === root || p.startsWith(root.endsWith(path.sep) ? root : root + path.sep);
}

/** Maps AFC paths to real paths below the media root, refusing anything that would leave it. */
export class AfcRoot {
  private constructor(readonly root: string) {}

  static async open(mediaDir: string): Promise<AfcRoot> {
    await fsp.mkdir(mediaDir, { recursive: true });
    return new AfcRoot(await fsp.realpath(mediaDir));
  }

  /**
   * The real path for `afcPath`. With `followFinal`, a final symlink is followed (its target
   * must stay inside); without, the link itself is meant (GetFileInfo, RemovePath).
   */
  async resolve(afcPath: string, followFinal: boolean): Promise<string> {
    // Lexically: "/.." is "/", as on any Unix; a relative AFC path is relative to the root.
    let rel = path.posix.normalize('/' + afcPath);
    if (rel.length > 1 && rel.endsWith('/')) rel = rel.slice(0, -1);
    let candidate = rel === '/' ? this.root : path.join(this.root, rel);
    for (let hop = 0; hop <= MAX_SYMLINK_HOPS; hop++) {
      if (candidate === this.root) return this.root;
      const parent = await this.realExisting(path.dirname(candidate));
      if (!isInside(this.root, parent)) throw new AfcError(AfcStatus.PERM_DENIED);
      candidate = path.join(parent, path.basename(candidate));
      if (!followFinal) return candidate;
      let st;
      try {
        st = await fsp.lstat(candidate);
      } catch {
        return candidate; // does not exist (yet): its parent is confined
      }
      if (!st.isSymbolicLink()) return candidate;
      const target = await fsp.readlink(candidate);
      candidate = path.resolve(path.dirname(candidate), target);
      if (!isInside(this.root, candidate)) throw new AfcError(AfcStatus.PERM_DENIED);
    }
    throw new AfcError(AfcStatus.PERM_DENIED);
  }

  /** realpath of the deepest existing ancestor, with the missing tail appended. */
  private async realExisting(p: string): Promise<string> {
    const tail: string[] = [];
    let cur = p;
    for (;;) {
      try {
        const real = await fsp.realpath(cur);
        return tail.length ? path.join(real, ...tail.reverse()) : real;
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code !== 'ENOENT' && code !== 'ENOTDIR') throw e;
        const up = path.dirname(cur);
        if (up === cur) throw e;
        tail.push(path.basename(cur));
        cur = up;
      }
    }
  }
}

interface OpenFile {
  fh: FileHandle;
  realPath: string;
  position: number;
  append: boolean;
  token: object;
}

const OPEN_FLAGS: Record<number, number> = {
  1: fsc.O_RDONLY,
  2: fsc.O_RDWR | fsc.O_CREAT,
  3: fsc.O_WRONLY | fsc.O_CREAT | fsc.O_TRUNC,
  4: fsc.O_RDWR | fsc.O_CREAT | fsc.O_TRUNC,
  5: fsc.O_WRONLY | fsc.O_CREAT | fsc.O_APPEND,
  6: fsc.O_RDWR | fsc.O_CREAT | fsc.O_APPEND,
};

class AfcSession {
  private readonly files = new Map<number, OpenFile>();
  private nextHandle = 1;

  constructor(
    private readonly afcRoot: AfcRoot,
    private readonly locks: Map<string, LockState>,
  ) {}

  /** Handles one request; returns the reply's operation and bytes. */
  async handle(p: AfcPacket): Promise<{ op: number; headerData?: Buffer; payload?: Buffer }> {
    try {
      switch (p.operation) {
        case AfcOp.GET_DEVINFO:
          return data(
            encodeKeyValueList({
              Model: 'iPhone15,2',
              FSTotalBytes: '128000000000',
              FSFreeBytes: '64000000000',
              FSBlockSize: '4096',
            }),
          );
        case AfcOp.GET_FILE_INFO:
          return data(await this.fileInfo(decodeAfcPath(p.data).path));
        case AfcOp.READ_DIR:
          return data(await this.readDir(decodeAfcPath(p.data).path));
        case AfcOp.MAKE_DIR:
          await fsp.mkdir(await this.afcRoot.resolve(decodeAfcPath(p.data).path, true), {
            recursive: true,
          });
          return status(AfcStatus.SUCCESS);
        case AfcOp.REMOVE_PATH:
          await this.remove(decodeAfcPath(p.data).path, false);
          return status(AfcStatus.SUCCESS);
        case AfcOp.REMOVE_PATH_AND_CONTENTS:
          await this.remove(decodeAfcPath(p.data).path, true);
          return status(AfcStatus.SUCCESS);
        case AfcOp.RENAME_PATH: {
          const from = decodeAfcPath(p.data);
          const to = decodeAfcPath(p.data, from.end);
          const src = await this.afcRoot.resolve(from.path, false);
          const dst = await this.afcRoot.resolve(to.path, false);
          if (src === this.afcRoot.root || dst === this.afcRoot.root)
            throw new AfcError(AfcStatus.PERM_DENIED);
          await fsp.rename(src, dst);
          return status(AfcStatus.SUCCESS);
        }
        case AfcOp.FILE_OPEN:
          return await this.open(p.data);
        case AfcOp.FILE_READ:
          return data(await this.read(p.data));
        case AfcOp.FILE_WRITE:
          await this.write(p.data);
          return status(AfcStatus.SUCCESS);
        case AfcOp.FILE_SEEK:
          this.seek(p.data);
          return status(AfcStatus.SUCCESS);
        case AfcOp.FILE_TELL:
          return { op: AfcOp.FILE_TELL_RES, headerData: encodeU64s(this.file(p.data).position) };
        case AfcOp.FILE_SET_SIZE: {
          const f = this.file(p.data);
          await f.fh.truncate(decodeU64(p.data, 8, 'FileRefSetFileSize size'));
          return status(AfcStatus.SUCCESS);
        }
        case AfcOp.FILE_CLOSE:
          await this.close(decodeU64(p.data, 0, 'FileRefClose handle'));
          return status(AfcStatus.SUCCESS);
        case AfcOp.FILE_LOCK:
          return status(this.lock(p.data));
        default:
          return status(
            p.operation <= 0x28 ? AfcStatus.OP_NOT_SUPPORTED : AfcStatus.UNKNOWN_PACKET_TYPE,
          );
      }
    } catch (e) {
      if (isMooringError(e, 'MALFORMED') || isMooringError(e, 'LIMIT'))
        return status(AfcStatus.INVALID_ARG);
      return status(statusForErrno(e));
    }
  }

  private async fileInfo(afcPath: string): Promise<Buffer> {
    const real = await this.afcRoot.resolve(afcPath, false);
    const st = await fsp.lstat(real, { bigint: true });
    const ifmt = st.isDirectory()
      ? 'S_IFDIR'
      : st.isSymbolicLink()
        ? 'S_IFLNK'
        : st.isFile()
          ? 'S_IFREG'
          : 'S_IFIFO';
    const info: Record<string, string> = {
      st_size: st.size.toString(),
      st_blocks: st.blocks.toString(),
      st_nlink: st.nlink.toString(),
      st_ifmt: ifmt,
      st_mtime: st.mtimeNs.toString(),
      st_birthtime: (st.birthtimeNs > 0n ? st.birthtimeNs : st.ctimeNs).toString(),
    };
    if (st.isSymbolicLink()) info.LinkTarget = await fsp.readlink(real);
    return encodeKeyValueList(info);
  }

  private async readDir(afcPath: string): Promise<Buffer> {
    const real = await this.afcRoot.resolve(afcPath, true);
    const names = ['.', '..', ...(await fsp.readdir(real)).sort()];
    return Buffer.from(names.map((n) => `${n}\0`).join(''), 'utf8');
  }

  private async remove(afcPath: string, recursive: boolean): Promise<void> {
    const real = await this.afcRoot.resolve(afcPath, false);
    if (real === this.afcRoot.root) throw new AfcError(AfcStatus.PERM_DENIED);
    const st = await fsp.lstat(real);
    if (recursive) await fsp.rm(real, { recursive: true });
    else if (st.isDirectory()) await fsp.rmdir(real);
    else await fsp.unlink(real);
  }

  private async open(args: Buffer): Promise<{ op: number; headerData: Buffer }> {
    const mode = decodeU64(args, 0, 'FileRefOpen mode');
    const afcPath = decodeAfcPath(args, 8).path;
    const flags = OPEN_FLAGS[mode];
    if (flags === undefined) throw new AfcError(AfcStatus.INVALID_ARG);
    if (this.files.size >= AFC_MAX_OPEN_FILES) throw new AfcError(AfcStatus.NO_RESOURCES);
    const real = await this.afcRoot.resolve(afcPath, true);
    if (real === this.afcRoot.root) throw new AfcError(AfcStatus.OBJECT_IS_DIR);
    // O_NOFOLLOW: the path was confined above; a link swapped in since then is refused.
    const fh = await fsp.open(real, flags | fsc.O_NOFOLLOW, 0o644);
    if ((await fh.stat()).isDirectory()) {
      await fh.close();
      throw new AfcError(AfcStatus.OBJECT_IS_DIR);
    }
    const handle = this.nextHandle++;
    this.files.set(handle, { fh, realPath: real, position: 0, append: mode >= 5, token: {} });
    return { op: AfcOp.FILE_OPEN_RES, headerData: encodeU64s(handle) };
  }

  private file(args: Buffer): OpenFile {
    const f = this.files.get(decodeU64(args, 0, 'file handle'));
    if (!f) throw new AfcError(AfcStatus.INVALID_ARG);
    return f;
  }

  private async read(args: Buffer): Promise<Buffer> {
    const f = this.file(args);
    const want = Math.min(decodeU64(args, 8, 'FileRefRead length'), AFC_MAX_READ_BYTES);
    const buf = Buffer.alloc(want);
    const { bytesRead } = await f.fh.read(buf, 0, want, f.position);
    f.position += bytesRead;
    return buf.subarray(0, bytesRead);
  }

  private async write(args: Buffer): Promise<void> {
    const f = this.file(args);
    const bytes = args.subarray(8);
    if (f.append) {
      await f.fh.appendFile(bytes);
      f.position = (await f.fh.stat()).size;
      return;
    }
    let off = 0;
    while (off < bytes.length) {
      const { bytesWritten } = await f.fh.write(bytes, off, bytes.length - off, f.position);
      off += bytesWritten;
      f.position += bytesWritten;
    }
  }

  private seek(args: Buffer): void {
    const f = this.file(args);
    const whence = decodeU64(args, 8, 'FileRefSeek whence');
    if (args.length < 24) throw new AfcError(AfcStatus.INVALID_ARG);
    const offset = Number(args.readBigInt64LE(16));
    const base = whence === 0 ? 0 : whence === 1 ? f.position : undefined;
    if (base === undefined) {
      // SEEK_END needs the size; a synchronous answer keeps the packet order simple.
      throw new AfcError(AfcStatus.OP_NOT_SUPPORTED);
    }
    const next = base + offset;
    if (!Number.isSafeInteger(next) || next < 0) throw new AfcError(AfcStatus.INVALID_ARG);
    f.position = next;
  }

  private lock(args: Buffer): number {
    const f = this.file(args);
    const op = decodeU64(args, 8, 'FileRefLock operation') & ~LOCK_NB;
    let s = this.locks.get(f.realPath);
    if (op === LOCK_UN) {
      this.release(f);
      return AfcStatus.SUCCESS;
    }
    if (op !== LOCK_SH && op !== LOCK_EX) return AfcStatus.INVALID_ARG;
    if (!s) this.locks.set(f.realPath, (s = { shared: new Set() }));
    const othersShared = [...s.shared].some((t) => t !== f.token);
    const otherExclusive = s.exclusive !== undefined && s.exclusive !== f.token;
    // Blocking requests (no LOCK_NB) are answered like non-blocking ones: hosts always set it.
    if (otherExclusive || (op === LOCK_EX && othersShared)) return AfcStatus.OP_WOULD_BLOCK;
    if (op === LOCK_EX) {
      s.shared.delete(f.token);
      s.exclusive = f.token;
    } else {
      if (s.exclusive === f.token) s.exclusive = undefined;
      s.shared.add(f.token);
    }
    return AfcStatus.SUCCESS;
  }

  private release(f: OpenFile): void {
    const s = this.locks.get(f.realPath);
    if (!s) return;
    if (s.exclusive === f.token) s.exclusive = undefined;
    s.shared.delete(f.token);
    if (!s.exclusive && s.shared.size === 0) this.locks.delete(f.realPath);
  }

  private async close(handle: number): Promise<void> {
    const f = this.files.get(handle);
    if (!f) throw new AfcError(AfcStatus.INVALID_ARG);
    this.files.delete(handle);
    this.release(f);
    await f.fh.close();
  }

  /** Disconnect: every handle closes, every lock goes. */
  async closeAll(): Promise<void> {
    for (const h of [...this.files.keys()]) await this.close(h).catch(() => undefined);
  }
}

function status(code: number): { op: number; headerData: Buffer } {
  return { op: AfcOp.STATUS, headerData: encodeU64s(code) };
}

function data(bytes: Buffer): { op: number; payload: Buffer } {
  return { op: AfcOp.DATA, payload: bytes };
}

export const afcService: ServiceHandler = async (
  stream: Duplex,
  device: SimDeviceApi,
): Promise<void> => {
  const afcRoot = await AfcRoot.open(device.mediaDir);
  const session = new AfcSession(afcRoot, lockTable(device));
  const reader = new StreamReader(stream);
  try {
    while (true) {
      let packet: AfcPacket;
      try {
        packet = await readAfcPacket(reader, {
          timeoutMs: AFC_IDLE_TIMEOUT_MS,
          maxPacketBytes: AFC_MAX_PACKET_BYTES,
        });
      } catch (e) {
        // A framing error leaves no way to find the next packet: hang up.
        if (!isMooringError(e, 'CLOSED'))
          device.log('afc-bad-packet', { reason: (e as Error).message });
        stream.destroy();
        return;
      }
      const reply = await session.handle(packet);
      const bytes = encodeAfcPacket({ packetNum: packet.packetNum, operation: reply.op, ...reply });
      await writeAll(stream, bytes);
      if (lockOpFailed(packet, reply)) device.log('afc-lock-refused', { packet: packet.packetNum });
    }
  } finally {
    await session.closeAll();
  }
};

function lockOpFailed(p: AfcPacket, reply: { op: number; headerData?: Buffer }): boolean {
  return (
    p.operation === AfcOp.FILE_LOCK &&
    reply.op === AfcOp.STATUS &&
    reply.headerData !== undefined &&
    reply.headerData.readBigUInt64LE(0) === BigInt(AfcStatus.OP_WOULD_BLOCK)
  );
}

/** Writes and waits for drain (or the end of the connection), so a slow host gets backpressure. */
function writeAll(stream: Duplex, bytes: Buffer): Promise<void> {
  // A connection already gone emits no more 'close': waiting would hold its locks forever.
  if (stream.destroyed || stream.write(bytes)) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      stream.off('drain', done);
      stream.off('close', done);
      resolve();
    };
    stream.once('drain', done);
    stream.once('close', done);
  });
}
