/**
 * The device's half of a Device Link conversation (reference §4.1–§4.5): version exchange as the
 * device, requests to the host with validated status replies, and the raw file streams in both
 * directions. The host is untrusted here too: every reply is parsed by D's DL codecs, every read
 * has a deadline, every length is bounded.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { Socket } from 'node:net';
import { MooringError } from '../../util/errors';
import {
  DL_VERSIONS_OK,
  DlFileCode,
  DlFileStreamDecoder,
  dlDeviceReady,
  dlDownloadFiles,
  dlProcessMessage,
  dlUploadFiles,
  dlVersionExchange,
  encodeDlErrorBlock,
  encodeDlStreamEnd,
  encodeDlSuccessBlock,
  parseDlMultiStatus,
  parseHostDlMessage,
  type DlArray,
  type HostDlMessage,
} from '../../protocol/device-link';
import type { PlistDict, PlistValue } from '../../protocol/plist';
import type { PlistConnection } from '../../transport/plist-connection';
import { ConnectionDropped } from './errors';
import {
  DL_BLOCK_HEADER_BYTES,
  SlabWriter,
  UPLOAD_BLOCK_BYTES,
  writeDataBlockHeader,
} from './slab-writer';

export { UPLOAD_BLOCK_BYTES } from './slab-writer';

/** The DL version the device announces: what LIMD's own device constant and SDM's docs say. */
export const DEVICE_DL_VERSION: [major: number, minor: number] = [300, 0];
/** Ends every uploaded file that was read whole (copied into the stream, never written to). */
const SUCCESS_BLOCK = encodeDlSuccessBlock();
/** How long the device waits for one host reply; hosts may be slow writing to disk. */
export const DEFAULT_REPLY_TIMEOUT_MS = 120_000;
/** How long the device waits for the host's next request before hanging up. */
export const DEFAULT_IDLE_TIMEOUT_MS = 10 * 60_000;
/** Keep-alive pings tolerated while waiting for one status reply. */
export const MAX_PINGS_PER_REPLY = 1_000;
/** Largest block accepted in a download (hosts send 32 KiB). */
export const MAX_DOWNLOAD_BLOCK_BYTES = 4 * 1024 * 1024;

export interface DlPeerOptions {
  replyTimeoutMs?: number;
  idleTimeoutMs?: number;
}

export interface StatusReply {
  code: number;
  text: string | undefined;
  payload: PlistValue | undefined;
}

/** Where one downloaded file's bytes go. */
export interface DownloadSink {
  /** Bytes accepted for this file before the download counts as hostile. */
  readonly maxBytes: number;
  write(chunk: Buffer): Promise<void>;
  /** The host sent the whole file. */
  done(): Promise<void>;
  /** The host reported an error for this file (or the stream broke). */
  fail(reason: string): Promise<void>;
}

export interface DownloadOutcome {
  received: Set<string>;
  /** Paths the host answered with an error (stream error block or multi-status entry). */
  failed: Map<string, string>;
  /** Paths the host never answered (LIMD skips the rest after the first error). */
  skipped: string[];
  status: StatusReply;
}

export type UploadSource = { kind: 'buffer'; data: Buffer } | { kind: 'file'; path: string };

export interface UploadItem {
  /** Informational device-side path (real devices send e.g. /var/tmp/… or /.ba/mobile/…). */
  devicePath: string;
  /** Path relative to the host's backup root. */
  hostPath: string;
  source: UploadSource;
}

export interface UploadHooks {
  /** Checked between files: true ends the stream early (the caller then reports the cancel). */
  cancelled?: () => boolean;
  /** Called after each data block with the payload bytes sent so far on this connection. */
  onBytes?: (total: number) => void;
}

export class DeviceLinkPeer {
  readonly replyTimeoutMs: number;
  readonly idleTimeoutMs: number;
  /** Payload bytes sent in upload streams on this connection (for dropAfterBytes). */
  uploadedBytes = 0;
  /** Close the connection once this many payload bytes were sent (fault injection). */
  dropAfterBytes: number | undefined;
  /** Upload streams are packed into large writes (slab-writer.ts); one per connection. */
  private slabs: SlabWriter | undefined;

  constructor(
    readonly conn: PlistConnection,
    opts: DlPeerOptions = {},
  ) {
    this.replyTimeoutMs = opts.replyTimeoutMs ?? DEFAULT_REPLY_TIMEOUT_MS;
    this.idleTimeoutMs = opts.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
  }

  async send(msg: DlArray): Promise<void> {
    await this.conn.send(msg, 'binary');
  }

  /** Device side of the handshake: announce, expect DLVersionsOk, then DeviceReady. */
  async versionExchange(): Promise<void> {
    await this.send(dlVersionExchange(...DEVICE_DL_VERSION));
    const reply = parseHostDlMessage(await this.conn.receive(this.replyTimeoutMs));
    if (reply.type !== 'VersionExchange' || reply.status !== DL_VERSIONS_OK) {
      throw new MooringError(
        'PROTOCOL',
        `host did not accept the Device Link version (got ${describeHost(reply)})`,
      );
    }
    await this.send(dlDeviceReady());
  }

  /** The host's next message (a request, Ping or Disconnect), waiting up to the idle timeout. */
  async nextMessage(): Promise<HostDlMessage> {
    return parseHostDlMessage(await this.conn.receive(this.idleTimeoutMs));
  }

  async processMessage(payload: PlistDict): Promise<void> {
    await this.send(dlProcessMessage(payload));
  }

  /** Waits for the DLMessageStatusResponse that answers the last device message. */
  async readStatus(what: string): Promise<StatusReply> {
    for (let pings = 0; ; pings++) {
      const m = parseHostDlMessage(await this.conn.receive(this.replyTimeoutMs));
      if (m.type === 'StatusResponse') return { code: m.code, text: m.text, payload: m.payload };
      if (m.type === 'Ping' && pings < MAX_PINGS_PER_REPLY) continue;
      if (m.type === 'Disconnect')
        throw new MooringError('CLOSED', `host disconnected while the device waited for ${what}`);
      throw new MooringError(
        'PROTOCOL',
        `host sent ${describeHost(m)} where the status of ${what} was due`,
      );
    }
  }

  /** Sends a DL request and returns the host's status reply. */
  async call(msg: DlArray): Promise<StatusReply> {
    await this.send(msg);
    return this.readStatus(msg[0]);
  }

  /**
   * DLMessageDownloadFiles: asks the host for `paths` and receives the stream (§4.5). Files must
   * arrive in the order asked; the host may stop early (the rest count as skipped).
   */
  async downloadFiles(
    paths: string[],
    progress: number,
    open: (path: string) => Promise<DownloadSink>,
  ): Promise<DownloadOutcome> {
    await this.send(dlDownloadFiles(paths, progress));
    const dec = new DlFileStreamDecoder(this.conn.reader, {
      timeoutMs: this.replyTimeoutMs,
      maxBlockBytes: MAX_DOWNLOAD_BLOCK_BYTES,
    });
    const received = new Set<string>();
    const failed = new Map<string, string>();
    let next = 0;
    while (true) {
      const p = await dec.readPath('downloaded file name', this.replyTimeoutMs);
      if (p === null) break;
      // LIMD answers in order and may skip the rest after an error, so look ahead only.
      const at = paths.indexOf(p, next);
      if (at < 0)
        throw new MooringError(
          'PROTOCOL',
          `host sent ${JSON.stringify(p.slice(0, 200))}, which was not asked for (or out of order)`,
        );
      next = at + 1;
      const sink = await open(p);
      let bytes = 0;
      try {
        while (true) {
          const b = await dec.readBlock();
          if (b.kind === 'data') {
            bytes += b.data.length;
            if (bytes > sink.maxBytes) {
              throw new MooringError(
                'LIMIT',
                `host sent more than ${sink.maxBytes} bytes for ${p}`,
              );
            }
            await sink.write(b.data);
          } else if (b.kind === 'success') {
            await sink.done();
            received.add(p);
            break;
          } else {
            await sink.fail(b.message);
            failed.set(p, b.message || 'the host could not send the file');
            break;
          }
        }
      } catch (err) {
        await sink.fail((err as Error).message);
        throw err;
      }
    }
    const status = await this.readStatus('DLMessageDownloadFiles');
    if (status.code === -13) {
      for (const [p, e] of parseDlMultiStatus(status.payload)) {
        if (!failed.has(p)) failed.set(p, `${e.text} (${e.code})`);
        received.delete(p);
      }
    } else if (status.code !== 0) {
      for (const p of paths)
        if (!failed.has(p)) failed.set(p, `${status.text ?? 'error'} (${status.code})`);
      received.clear();
    }
    const skipped = paths.filter((p) => !received.has(p) && !failed.has(p));
    return { received, failed, skipped, status };
  }

  /** DLMessageUploadFiles: streams `items` to the host (§4.5) and returns its status. */
  async uploadFiles(
    items: UploadItem[],
    progress: number,
    totalBytes: number,
    hooks: UploadHooks = {},
  ): Promise<StatusReply & { sent: number; unreadable: string[] }> {
    await this.send(dlUploadFiles(progress, totalBytes));
    const out = (this.slabs ??= new SlabWriter(
      (b) => this.conn.writeRaw(b),
      () => {
        const s = this.conn.stream;
        return s instanceof Socket && s.writableLength === 0;
      },
    ));
    out.reset(); // nothing left over from a stream that failed part-way
    let sent = 0;
    const unreadable: string[] = [];
    for (const item of items) {
      if (hooks.cancelled?.()) break;
      // Open before announcing the file, so a read failure still leaves a well-formed stream.
      // Synchronous calls: a simulated phone's flash is the page cache; a thread-pool hop per
      // open/read/close cost more than the read itself for small files.
      let fd: number | undefined;
      let openError: string | undefined;
      if (item.source.kind === 'file') {
        try {
          fd = openSync(item.source.path, 'r');
        } catch (e) {
          openError = (e as Error).message;
        }
      }
      await out.putPath(item.devicePath);
      await out.putPath(item.hostPath);
      if (openError !== undefined) {
        await out.put(encodeDlErrorBlock(DlFileCode.LOCAL_ERROR, openError));
        unreadable.push(item.hostPath);
        continue;
      }
      if (item.source.kind === 'buffer') {
        const d = item.source.data;
        for (let off = 0; off < d.length; off += UPLOAD_BLOCK_BYTES) {
          const end = Math.min(d.length, off + UPLOAD_BLOCK_BYTES);
          await this.block(out, end - off, (dst, at) => d.copy(dst, at, off, end), hooks);
        }
      } else if (fd !== undefined) {
        await this.streamFile(out, fd, hooks);
      }
      await out.put(SUCCESS_BLOCK);
      sent++;
    }
    await out.put(encodeDlStreamEnd());
    await out.flush();
    const status = await this.readStatus('DLMessageUploadFiles');
    return { ...status, sent, unreadable };
  }

  /** One file's bytes as data blocks, read straight into the slab; a short read is its end. */
  private async streamFile(out: SlabWriter, fd: number, hooks: UploadHooks): Promise<void> {
    try {
      while (true) {
        const n = await this.block(
          out,
          UPLOAD_BLOCK_BYTES,
          (dst, at) => readSync(fd, dst, at, UPLOAD_BLOCK_BYTES, null),
          hooks,
        );
        if (n < UPLOAD_BLOCK_BYTES) break;
      }
    } finally {
      closeSync(fd);
    }
  }

  /**
   * Appends one data block of at most `max` bytes, which `fill` writes into the slab at the given
   * offset (returning how many). Returns the payload length; 0 adds no block.
   */
  private async block(
    out: SlabWriter,
    max: number,
    fill: (dst: Buffer, at: number) => number,
    hooks: UploadHooks,
  ): Promise<number> {
    const { buf, at } = await out.reserve(DL_BLOCK_HEADER_BYTES + max);
    let n = fill(buf, at + DL_BLOCK_HEADER_BYTES);
    if (n === 0) return 0;
    const limit = this.dropAfterBytes;
    const drop = limit !== undefined && this.uploadedBytes + n >= limit;
    if (drop) n = Math.max(0, limit - this.uploadedBytes);
    if (n > 0) {
      writeDataBlockHeader(buf, at, n);
      out.commit(DL_BLOCK_HEADER_BYTES + n);
    }
    this.uploadedBytes += n;
    if (drop) {
      await out.flush();
      this.conn.stream.destroy();
      throw new ConnectionDropped(
        `fault injection: connection dropped after ${this.uploadedBytes} upload bytes`,
      );
    }
    hooks.onBytes?.(this.uploadedBytes);
    return n;
  }
}

function describeHost(m: HostDlMessage): string {
  switch (m.type) {
    case 'Unknown':
      return JSON.stringify(m.name.slice(0, 64));
    case 'VersionExchange':
      return `DLMessageVersionExchange ${JSON.stringify(m.status.slice(0, 64))}`;
    default:
      return `DLMessage${m.type}`;
  }
}
