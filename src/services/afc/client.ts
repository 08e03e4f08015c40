/**
 * AFC client (reference §6.3): file access to the device's media area, used for the sync lock
 * (/com.apple.itunes.lock_sync) and the few Info.plist extras. One request at a time; every reply
 * must carry the request's packet number; every reply is bounded.
 */
import type { Duplex } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { MooringError, isMooringError } from '../../util/errors';
import { DEFAULT_READ_TIMEOUT_MS, StreamReader } from '../../util/stream-reader';
import {
  AfcFileMode,
  AfcLockOp,
  AfcOp,
  AfcStatus,
  afcOpName,
  afcStatusMessage,
  decodeKeyValueList,
  decodeU64,
  encodeAfcPacket,
  encodeAfcPath,
  encodeU64s,
  MAX_AFC_PACKET_BYTES,
  readAfcPacket,
  type AfcFileModeCode,
  type AfcPacket,
} from '../../protocol/afc';

export const AFC_SERVICE_NAME = 'com.apple.afc';

/** Largest single FileRefRead we ask for. */
export const AFC_READ_CHUNK_BYTES = 1024 * 1024;
/** Largest single FileRefWrite payload we send. */
export const AFC_WRITE_CHUNK_BYTES = 64 * 1024;
/** Default bound for readFile(). */
export const DEFAULT_AFC_MAX_FILE_BYTES = 64 * 1024 * 1024;

/** libimobiledevice's sync-lock policy: 50 tries, 200 ms apart, while the lock is held elsewhere. */
export const AFC_LOCK_ATTEMPTS = 50;
export const AFC_LOCK_INTERVAL_MS = 200;

/** The byte pipe AFC runs on: a PlistConnection (after TLS, if any) fits, or AfcClient.fromStream. */
export interface AfcChannel {
  readonly reader: StreamReader;
  writeRaw(buf: Buffer): Promise<void>;
  close(): void;
}

export type AfcOpenMode = AfcFileModeCode | 'r' | 'r+' | 'w' | 'w+' | 'a' | 'a+';
const MODE_BY_NAME: Record<string, AfcFileModeCode> = {
  r: AfcFileMode.RDONLY,
  'r+': AfcFileMode.RW,
  w: AfcFileMode.WRONLY,
  'w+': AfcFileMode.WR,
  a: AfcFileMode.APPEND,
  'a+': AfcFileMode.RDAPPEND,
};

export type AfcLockKind = 'shared' | 'exclusive' | 'unlock';

export interface AfcFileInfo {
  size: number;
  blocks: number | undefined;
  nlink: number | undefined;
  /** From st_ifmt. */
  type: 'file' | 'directory' | 'symlink' | 'other';
  mtime: Date | undefined;
  birthtime: Date | undefined;
  linkTarget: string | undefined;
  /** Every key the device sent. */
  raw: Record<string, string>;
}

export interface AfcClientOptions {
  timeoutMs?: number;
  maxPacketBytes?: number;
}

/** An AFC error status as a MooringError: code DEVICE_ERROR, detail = the AFC status number. */
export function afcError(status: number, op: number, path?: string): MooringError {
  const where = path === undefined ? afcOpName(op) : `${afcOpName(op)} ${JSON.stringify(path)}`;
  return new MooringError('DEVICE_ERROR', `AFC ${where} failed: ${afcStatusMessage(status)}`, {
    detail: status,
  });
}

/** True when `e` is an AFC failure with this status. */
export function isAfcStatus(e: unknown, status: number): boolean {
  return isMooringError(e, 'DEVICE_ERROR') && e.detail === status;
}

function nsToDate(v: string | undefined): Date | undefined {
  if (v === undefined || !/^\d{1,30}$/.test(v)) return undefined;
  const ms = Number(BigInt(v) / 1_000_000n);
  return Number.isSafeInteger(ms) ? new Date(ms) : undefined;
}

function optionalInt(v: string | undefined): number | undefined {
  if (v === undefined || !/^\d{1,16}$/.test(v)) return undefined;
  return Number(v);
}

export class AfcClient {
  private packetNum = 0;
  private queue: Promise<unknown> = Promise.resolve();
  private broken: Error | undefined;
  private readonly timeoutMs: number;
  private readonly maxPacketBytes: number;

  constructor(
    readonly channel: AfcChannel,
    opts: AfcClientOptions = {},
  ) {
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_READ_TIMEOUT_MS;
    this.maxPacketBytes = opts.maxPacketBytes ?? MAX_AFC_PACKET_BYTES;
  }

  /** AFC over a bare byte stream (e.g. a usbmuxd/TCP connection without TLS). */
  static fromStream(stream: Duplex, opts: AfcClientOptions = {}): AfcClient {
    const reader = new StreamReader(stream);
    const channel: AfcChannel = {
      reader,
      writeRaw: (buf) =>
        new Promise<void>((resolve, reject) => {
          stream.write(buf, (err) =>
            err
              ? reject(
                  new MooringError('CLOSED', `AFC write failed: ${err.message}`, { cause: err }),
                )
              : resolve(),
          );
        }),
      close: () => stream.destroy(),
    };
    return new AfcClient(channel, opts);
  }

  /**
   * Sends one request and returns the reply. A STATUS reply with a non-zero code throws
   * afcError; a reply of another type than `expect` (besides STATUS 0) is a PROTOCOL error.
   * Any framing/transport failure marks the client unusable: the stream is out of step.
   */
  private request(
    op: number,
    args: {
      headerData?: Buffer;
      payload?: Buffer;
      path?: string;
      expect?: number;
      allowStatusOk?: boolean;
    },
  ): Promise<AfcPacket> {
    const run = async (): Promise<AfcPacket> => {
      if (this.broken)
        throw new MooringError(
          'PROTOCOL',
          `AFC connection is unusable after an earlier failure: ${this.broken.message}`,
        );
      const num = this.packetNum++;
      let reply: AfcPacket;
      try {
        await this.channel.writeRaw(
          encodeAfcPacket({
            packetNum: num,
            operation: op,
            ...(args.headerData ? { headerData: args.headerData } : {}),
            ...(args.payload ? { payload: args.payload } : {}),
          }),
        );
        reply = await readAfcPacket(this.channel.reader, {
          timeoutMs: this.timeoutMs,
          maxPacketBytes: this.maxPacketBytes,
        });
        if (reply.packetNum !== num) {
          throw new MooringError(
            'PROTOCOL',
            `AFC reply carries packet number ${reply.packetNum}, expected ${num}`,
          );
        }
      } catch (e) {
        this.broken = e instanceof Error ? e : new Error(String(e));
        throw e;
      }
      if (reply.operation === AfcOp.STATUS) {
        const status = decodeU64(reply.data, 0, 'status code');
        if (status !== AfcStatus.SUCCESS) throw afcError(status, op, args.path);
        if (
          args.expect !== undefined &&
          args.expect !== AfcOp.STATUS &&
          args.allowStatusOk !== true
        ) {
          throw new MooringError(
            'PROTOCOL',
            `AFC ${afcOpName(op)} answered STATUS 0 where ${afcOpName(args.expect)} was due`,
          );
        }
        return reply;
      }
      if (args.expect !== undefined && reply.operation !== args.expect) {
        throw new MooringError(
          'PROTOCOL',
          `AFC ${afcOpName(op)} answered ${afcOpName(reply.operation)}, expected ${afcOpName(args.expect)}`,
        );
      }
      return reply;
    };
    const p = this.queue.then(run, run);
    this.queue = p.catch(() => undefined);
    return p;
  }

  /** File metadata, or undefined when the path does not exist. */
  async getFileInfo(path: string): Promise<AfcFileInfo | undefined> {
    let reply: AfcPacket;
    try {
      reply = await this.request(AfcOp.GET_FILE_INFO, {
        headerData: encodeAfcPath(path),
        path,
        expect: AfcOp.DATA,
      });
    } catch (e) {
      // Devices answer OBJECT_NOT_FOUND, and for this op sometimes READ_ERROR (pymobiledevice3), for a missing path.
      if (isAfcStatus(e, AfcStatus.OBJECT_NOT_FOUND) || isAfcStatus(e, AfcStatus.READ_ERROR))
        return undefined;
      throw e;
    }
    const raw = decodeKeyValueList(reply.data);
    const size = optionalInt(raw.st_size);
    if (size === undefined)
      throw new MooringError(
        'MALFORMED',
        `AFC file info for ${JSON.stringify(path)} has no valid st_size`,
      );
    const ifmt = raw.st_ifmt;
    return {
      size,
      blocks: optionalInt(raw.st_blocks),
      nlink: optionalInt(raw.st_nlink),
      type:
        ifmt === 'S_IFREG'
          ? 'file'
          : ifmt === 'S_IFDIR'
            ? 'directory'
            : ifmt === 'S_IFLNK'
              ? 'symlink'
              : 'other',
      mtime: nsToDate(raw.st_mtime),
      birthtime: nsToDate(raw.st_birthtime),
      linkTarget: raw.LinkTarget,
      raw: { ...raw },
    };
  }

  /** FileRefOpen → handle. */
  async fileOpen(path: string, mode: AfcOpenMode): Promise<number> {
    const code = typeof mode === 'number' ? mode : MODE_BY_NAME[mode];
    if (code === undefined)
      throw new MooringError('USAGE', `unknown AFC open mode ${String(mode)}`);
    const reply = await this.request(AfcOp.FILE_OPEN, {
      headerData: Buffer.concat([encodeU64s(code), encodeAfcPath(path)]),
      path,
      expect: AfcOp.FILE_OPEN_RES,
    });
    return decodeU64(reply.data, 0, 'file handle');
  }

  /** FileRefRead: at most `length` bytes (fewer at end of file, none past it). */
  async fileRead(handle: number, length: number): Promise<Buffer> {
    if (!Number.isSafeInteger(length) || length < 0 || length > AFC_READ_CHUNK_BYTES) {
      throw new MooringError(
        'USAGE',
        `AFC read length must be 0..${AFC_READ_CHUNK_BYTES}, got ${length}`,
      );
    }
    const reply = await this.request(AfcOp.FILE_READ, {
      headerData: encodeU64s(handle, length),
      expect: AfcOp.DATA,
      allowStatusOk: true, // STATUS 0 instead of DATA means "no bytes" (end of file), as LIMD reads it
    });
    if (reply.operation === AfcOp.STATUS) return Buffer.alloc(0);
    if (reply.data.length > length) {
      throw new MooringError(
        'MALFORMED',
        `AFC read returned ${reply.data.length} bytes for a ${length}-byte request`,
      );
    }
    return reply.data;
  }

  /** FileRefWrite, in chunks. */
  async fileWrite(handle: number, data: Buffer): Promise<void> {
    const header = encodeU64s(handle);
    for (let off = 0; off < data.length; off += AFC_WRITE_CHUNK_BYTES) {
      await this.request(AfcOp.FILE_WRITE, {
        headerData: header,
        payload: data.subarray(off, Math.min(data.length, off + AFC_WRITE_CHUNK_BYTES)),
        expect: AfcOp.STATUS,
      });
    }
  }

  async fileClose(handle: number): Promise<void> {
    await this.request(AfcOp.FILE_CLOSE, { headerData: encodeU64s(handle), expect: AfcOp.STATUS });
  }

  /**
   * FileRefLock, always non-blocking. Shared/exclusive locks are retried while the device answers
   * OP_WOULD_BLOCK (default: 50 tries 200 ms apart, libimobiledevice's sync-lock policy); any
   * other status fails at once. Unlock is tried once.
   */
  async fileLock(
    handle: number,
    kind: AfcLockKind,
    opts: { attempts?: number; intervalMs?: number } = {},
  ): Promise<void> {
    const op =
      kind === 'shared'
        ? AfcLockOp.SHARED
        : kind === 'exclusive'
          ? AfcLockOp.EXCLUSIVE
          : AfcLockOp.UNLOCK;
    const attempts = kind === 'unlock' ? 1 : Math.max(1, opts.attempts ?? AFC_LOCK_ATTEMPTS);
    const intervalMs = opts.intervalMs ?? AFC_LOCK_INTERVAL_MS;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.request(AfcOp.FILE_LOCK, {
          headerData: encodeU64s(handle, op),
          expect: AfcOp.STATUS,
        });
        return;
      } catch (e) {
        if (!isAfcStatus(e, AfcStatus.OP_WOULD_BLOCK) || attempt >= attempts) {
          if (isAfcStatus(e, AfcStatus.OP_WOULD_BLOCK)) {
            throw new MooringError(
              'DEVICE_ERROR',
              `The device's sync lock stayed busy after ${attempts} tries: another program (Finder, iTunes, a backup tool) is syncing with it. Let it finish and try again`,
              { detail: AfcStatus.OP_WOULD_BLOCK, cause: e },
            );
          }
          throw e;
        }
        await sleep(intervalMs);
      }
    }
  }

  async makeDirectory(path: string): Promise<void> {
    await this.request(AfcOp.MAKE_DIR, {
      headerData: encodeAfcPath(path),
      path,
      expect: AfcOp.STATUS,
    });
  }

  async removePath(path: string): Promise<void> {
    await this.request(AfcOp.REMOVE_PATH, {
      headerData: encodeAfcPath(path),
      path,
      expect: AfcOp.STATUS,
    });
  }

  /** Whole file, bounded by `maxBytes` (LIMIT beyond it). */
  async readFile(path: string, opts: { maxBytes?: number } = {}): Promise<Buffer> {
    const maxBytes = opts.maxBytes ?? DEFAULT_AFC_MAX_FILE_BYTES;
    const handle = await this.fileOpen(path, 'r');
    try {
      const parts: Buffer[] = [];
      let total = 0;
      for (;;) {
        const chunk = await this.fileRead(handle, AFC_READ_CHUNK_BYTES);
        if (chunk.length === 0) break;
        total += chunk.length;
        if (total > maxBytes)
          throw new MooringError('LIMIT', `${path} on the device is larger than ${maxBytes} bytes`);
        parts.push(chunk);
      }
      await this.fileClose(handle);
      return Buffer.concat(parts);
    } catch (e) {
      await this.fileClose(handle).catch(() => undefined);
      throw e;
    }
  }

  /** Creates or truncates `path` and writes `data`. */
  async writeFile(path: string, data: Buffer): Promise<void> {
    const handle = await this.fileOpen(path, 'w');
    try {
      await this.fileWrite(handle, data);
    } catch (e) {
      await this.fileClose(handle).catch(() => undefined);
      throw e;
    }
    await this.fileClose(handle);
  }

  close(): void {
    this.broken ??= new Error('closed');
    this.channel.close();
  }
}
