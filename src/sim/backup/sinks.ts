/** Download sinks: where bytes the host sends during DLMessageDownloadFiles end up. */
import crypto from 'node:crypto';
import { closeSync, openSync, promises as fsp, writeSync } from 'node:fs';
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

/**
 * Streams a download to a file on disk (Manifest.db can be large). Synchronous writes: the host
 * sends small blocks, and a thread-pool hop per block cost the device more than the write.
 */
export class FileSink implements DownloadSink {
  private fd: number | undefined;
  complete = false;
  error: string | undefined;
  size = 0;

  constructor(
    readonly file: string,
    readonly maxBytes: number,
  ) {}

  async write(chunk: Buffer): Promise<void> {
    this.fd ??= openSync(this.file, 'w', 0o600);
    this.size += chunk.length;
    let off = 0;
    while (off < chunk.length) off += writeSync(this.fd, chunk, off, chunk.length - off);
  }

  async done(): Promise<void> {
    this.fd ??= openSync(this.file, 'w', 0o600);
    closeSync(this.fd);
    this.fd = undefined;
    this.complete = true;
  }

  async fail(reason: string): Promise<void> {
    this.error = reason;
    if (this.fd !== undefined) {
      try {
        closeSync(this.fd);
      } catch {
        // already unusable: nothing to keep
      }
    }
    this.fd = undefined;
    await fsp.rm(this.file, { force: true });
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
