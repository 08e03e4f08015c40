/**
 * Writes one file's bytes to disk while hashing them, into a temporary name that is renamed into
 * place only when complete, so a crash never leaves a half-written file under its real name.
 */
import { createHash, type Hash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { MooringError } from '../../util/errors';

export interface BlobDigest {
  size: number;
  sha256: string;
  sha1: string;
}

export class BlobWriter {
  private readonly h256: Hash = createHash('sha256');
  private readonly h1: Hash = createHash('sha1');
  private size = 0;
  private closed = false;
  private digest: BlobDigest | undefined;

  private constructor(
    readonly tmpPath: string,
    private readonly fh: fsp.FileHandle,
  ) {}

  /** Opens a writer whose bytes go to `tmpPath` (created, or truncated if present). */
  static async create(tmpPath: string): Promise<BlobWriter> {
    await fsp.mkdir(path.dirname(tmpPath), { recursive: true });
    const fh = await fsp.open(tmpPath, 'w', 0o644);
    return new BlobWriter(tmpPath, fh);
  }

  get bytesWritten(): number {
    return this.size;
  }

  async write(chunk: Buffer): Promise<void> {
    if (this.closed) throw new MooringError('IO', `write after close on ${this.tmpPath}`);
    this.h256.update(chunk);
    this.h1.update(chunk);
    this.size += chunk.length;
    let off = 0;
    while (off < chunk.length) {
      const { bytesWritten } = await this.fh.write(chunk, off, chunk.length - off);
      off += bytesWritten;
    }
  }

  /** Closes and renames into `finalPath` (its folder is created). */
  async commit(finalPath: string): Promise<BlobDigest> {
    const digest = await this.close();
    await fsp.mkdir(path.dirname(finalPath), { recursive: true });
    await fsp.rename(this.tmpPath, finalPath);
    return digest;
  }

  /** Closes, keeping the bytes at `tmpPath` (for staged restores that commit later). */
  async close(): Promise<BlobDigest> {
    if (!this.closed) {
      this.closed = true;
      await this.fh.close();
    }
    this.digest ??= {
      size: this.size,
      sha256: this.h256.digest('hex'),
      sha1: this.h1.digest('hex'),
    };
    return this.digest;
  }

  async abort(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      await this.fh.close().catch(() => undefined);
    }
    await fsp.rm(this.tmpPath, { force: true });
  }
}

/** Hashes a file on disk in bounded reads. */
export async function digestFile(file: string): Promise<BlobDigest> {
  const h256 = createHash('sha256');
  const h1 = createHash('sha1');
  let size = 0;
  const fh = await fsp.open(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(1 << 20);
    while (true) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      const part = buf.subarray(0, bytesRead);
      h256.update(part);
      h1.update(part);
      size += bytesRead;
    }
  } finally {
    await fh.close();
  }
  return { size, sha256: h256.digest('hex'), sha1: h1.digest('hex') };
}
