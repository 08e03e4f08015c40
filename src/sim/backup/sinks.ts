/** Download sinks: where bytes the host sends during DLMessageDownloadFiles end up. */
import crypto from 'node:crypto';
import {
  closeSync,
  fstatSync,
  openSync,
  promises as fsp,
  readSync,
  writeSync,
  writevSync,
} from 'node:fs';
import { encryptedPayloadSize } from '../../format/encryption';
import { MooringError } from '../../util/errors';
import type { BlobWriter } from '../content/blob';
import type { DownloadSink } from './dl-peer';

/** Collects a small file (a plist) in memory, bounded by `maxBytes`. */
export class MemorySink implements DownloadSink {
  private chunks: Buffer[] = [];
  private length = 0;
  result: Buffer | undefined;
  error: string | undefined;

  constructor(readonly maxBytes: number) {}

  async write(chunk: Buffer): Promise<void> {
    this.length += chunk.length;
    if (this.length > this.maxBytes)
      throw new MooringError('LIMIT', `download exceeds ${this.maxBytes} bytes`);
    this.chunks.push(chunk);
  }

  async done(): Promise<void> {
    this.result = Buffer.concat(this.chunks, this.length);
    this.chunks = [];
  }

  async fail(reason: string): Promise<void> {
    this.error = reason;
    this.chunks = [];
  }
}

/** Bytes a FileSink gathers before writing them (one system call per MiB, not per 32 KiB block). */
const FILE_SINK_WRITE_BYTES = 1024 * 1024;
/** …or blocks (a host may send tiny ones: what is held stays bounded). */
const FILE_SINK_WRITE_PIECES = 256;

/**
 * Streams a download to a file on disk (Manifest.db can be large). Synchronous writes of about a
 * MiB: the host sends small blocks, and a thread-pool hop per block cost the device more than the
 * write. With a `reference` file, the bytes are also compared with it as they arrive
 * (`sameAsReference` once complete): the device learns whether the host sent back the file it
 * last built while the host is still sending, instead of reading both files again afterwards.
 */
export class FileSink implements DownloadSink {
  private fd: number | undefined;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private written = 0;
  private ref: { fd: number; buf: Buffer } | undefined;
  complete = false;
  error: string | undefined;
  size = 0;
  /** With a reference: whether the file received is the reference byte for byte (once complete). */
  sameAsReference: boolean | undefined;

  constructor(
    readonly file: string,
    readonly maxBytes: number,
    private readonly reference?: string,
  ) {}

  async write(chunk: Buffer): Promise<void> {
    this.open();
    this.size += chunk.length;
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    if (this.pendingBytes >= FILE_SINK_WRITE_BYTES || this.pending.length >= FILE_SINK_WRITE_PIECES)
      this.flush();
  }

  async done(): Promise<void> {
    this.open();
    try {
      this.flush();
      if (this.ref !== undefined && this.sameAsReference === true)
        this.sameAsReference = fstatSync(this.ref.fd).size === this.size;
    } finally {
      this.closeFiles();
    }
    this.complete = true;
  }

  async fail(reason: string): Promise<void> {
    this.error = reason;
    this.pending = [];
    this.sameAsReference = undefined;
    try {
      this.closeFiles();
    } catch {
      // already unusable: nothing to keep
    }
    await fsp.rm(this.file, { force: true });
  }

  private open(): void {
    if (this.fd !== undefined) return;
    this.fd = openSync(this.file, 'w', 0o600);
    if (this.reference === undefined) return;
    try {
      this.ref = { fd: openSync(this.reference, 'r'), buf: Buffer.allocUnsafe(0) };
      this.sameAsReference = true;
    } catch {
      this.sameAsReference = false; // no reference to be equal to
    }
  }

  /** Writes what was gathered, and compares it with the reference at the same offset. */
  private flush(): void {
    if (this.pendingBytes === 0 || this.fd === undefined) return;
    const pieces = this.pending;
    const n = this.pendingBytes;
    this.pending = [];
    this.pendingBytes = 0;
    let done = writevSync(this.fd, pieces);
    if (done < n) {
      const rest = Buffer.concat(pieces, n).subarray(done);
      for (let off = 0; off < rest.length;) off += writeSync(this.fd, rest, off);
      done = n;
    }
    if (this.ref !== undefined && this.sameAsReference === true) {
      if (this.ref.buf.length < n) this.ref.buf = Buffer.allocUnsafe(n);
      const got = readSync(this.ref.fd, this.ref.buf, 0, n, this.written);
      let at = 0;
      for (const p of pieces) {
        if (got < at + p.length || p.compare(this.ref.buf, at, at + p.length) !== 0) {
          this.sameAsReference = false;
          break;
        }
        at += p.length;
      }
    }
    this.written += n;
  }

  private closeFiles(): void {
    const { fd, ref } = this;
    this.fd = undefined;
    this.ref = undefined;
    if (ref !== undefined) closeSync(ref.fd);
    if (fd !== undefined) closeSync(fd);
  }
}

/** Streams a payload into the content store's staging area, hashing as it goes. */
export class StagingSink implements DownloadSink {
  complete = false;
  error: string | undefined;
  digest: { size: number; sha256: string; sha1: string } | undefined;

  constructor(
    private readonly writer: BlobWriter,
    readonly maxBytes: number,
  ) {}

  get path(): string {
    return this.writer.tmpPath;
  }

  async write(chunk: Buffer): Promise<void> {
    await this.writer.write(chunk);
  }

  async done(): Promise<void> {
    this.digest = await this.writer.close();
    this.complete = true;
  }

  async fail(reason: string): Promise<void> {
    this.error = reason;
    await this.writer.abort();
  }
}

/**
 * H8a: a payload of an encrypted backup: decrypted (AES-256-CBC, the file's own key) on its way
 * into the staging area; ciphertext is bounded by the plaintext size plus one padding block.
 */
export class DecryptingSink implements DownloadSink {
  private readonly decipher: crypto.Decipher;
  readonly maxBytes: number;
  error: string | undefined;

  constructor(
    readonly inner: StagingSink,
    key: Buffer,
  ) {
    this.decipher = crypto.createDecipheriv('aes-256-cbc', key, Buffer.alloc(16));
    this.maxBytes = encryptedPayloadSize(inner.maxBytes);
  }

  async write(chunk: Buffer): Promise<void> {
    const out = this.decipher.update(chunk);
    if (out.length > 0) await this.inner.write(out);
  }

  async done(): Promise<void> {
    let last: Buffer;
    try {
      last = this.decipher.final();
    } catch {
      this.error = 'does not decrypt with its file key (bad padding)';
      await this.inner.fail(this.error);
      return;
    }
    if (last.length > 0) await this.inner.write(last);
    await this.inner.done();
  }

  async fail(reason: string): Promise<void> {
    this.error = reason;
    await this.inner.fail(reason);
  }
}
