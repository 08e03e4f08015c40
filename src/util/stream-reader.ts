import type { Readable } from 'node:stream';
import { MooringError } from './errors';

/** Default deadline for one read from a device: generous, because phones pause while they work. */
export const DEFAULT_READ_TIMEOUT_MS = 30_000;

/**
 * Pull-style reader over a Readable: `read(n)` resolves with exactly n bytes, or rejects with
 * TIMEOUT (no bytes for `timeoutMs`) or CLOSED (the stream ended first, i.e. truncated input).
 *
 * Why not `stream.read(n)`: we need per-read deadlines, exact-length reads across chunk
 * boundaries, and the ability to hand the socket over (TLS upgrade) without losing bytes.
 * Backpressure: the source is paused whenever more than `highWaterMark` bytes are buffered.
 */
export class StreamReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private ended = false;
  private failure: Error | undefined;
  private waiter: (() => void) | undefined;
  private detached = false;
  private readonly onData = (chunk: Buffer | string): void => {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    this.chunks.push(buf);
    this.buffered += buf.length;
    if (this.buffered > this.highWaterMark) this.source.pause();
    this.wake();
  };
  private readonly onEnd = (): void => {
    this.ended = true;
    this.wake();
  };
  private readonly onError = (err: Error): void => {
    this.failure = err;
    this.wake();
  };

  constructor(
    readonly source: Readable,
    private readonly highWaterMark = 1 << 20,
  ) {
    source.on('data', this.onData);
    source.on('end', this.onEnd);
    source.on('close', this.onEnd);
    source.on('error', this.onError);
    // A stream that ended or was destroyed before we listened emits neither again: without this,
    // a read would wait for its whole deadline (a simulated service's is 12 hours).
    if (source.readableEnded || source.destroyed) this.ended = true;
  }

  /** Bytes received and not yet read. */
  get available(): number {
    return this.buffered;
  }

  /** True once the stream has ended and every buffered byte was read. */
  get exhausted(): boolean {
    return this.ended && this.buffered === 0;
  }

  /** Reads exactly `n` bytes. `what` names the field in error messages. */
  async read(n: number, timeoutMs = DEFAULT_READ_TIMEOUT_MS, what = 'data'): Promise<Buffer> {
    if (this.detached)
      throw new MooringError('PROTOCOL', `reader was detached; cannot read ${what}`);
    while (this.buffered < n) {
      if (this.failure) {
        throw new MooringError(
          'CLOSED',
          `connection failed while reading ${what}: ${this.failure.message}`,
          {
            cause: this.failure,
          },
        );
      }
      if (this.ended) {
        throw new MooringError(
          'CLOSED',
          `connection closed while reading ${what} (${this.buffered} of ${n} bytes received)`,
        );
      }
      this.source.resume();
      await this.waitForData(timeoutMs, what);
    }
    return this.take(n);
  }

  /**
   * Exactly `n` bytes if they have all arrived (consumed), else undefined and nothing consumed:
   * no await, no timer. For decoders that take whole elements when they can (DlFileStreamDecoder).
   */
  readNow(n: number): Buffer | undefined {
    if (this.detached || this.buffered < n) return undefined;
    return this.take(n);
  }

  /** The big-endian u32 at the read position if 4 bytes have arrived; nothing is consumed. */
  peekUInt32BE(): number | undefined {
    if (this.detached || this.buffered < 4) return undefined;
    const first = this.chunks[0]!;
    if (first.length >= 4) return first.readUInt32BE(0);
    let v = 0;
    let got = 0;
    for (const c of this.chunks) {
      for (let i = 0; i < c.length && got < 4; i++, got++) v = v * 256 + c[i]!;
      if (got === 4) break;
    }
    return v;
  }

  /**
   * Up to `max` bytes of what has arrived, as a view of one received chunk (never a copy), consumed;
   * undefined when nothing is buffered. For a body taken in the pieces it arrived in (BodyWithin).
   */
  takeSomeNow(max: number): Buffer | undefined {
    if (this.detached) throw new MooringError('PROTOCOL', 'reader was detached; cannot read');
    if (this.buffered === 0 || max <= 0) return undefined;
    const first = this.chunks[0]!;
    return this.take(Math.min(max, first.length));
  }

  /**
   * Waits, with no deadline of its own, until a byte is buffered, `interruptWait` is called, or
   * the stream ends or fails (CLOSED, at once if it already has and nothing is buffered). For a
   * caller that keeps one deadline over many waits, instead of a timer for each (BodyWithin).
   */
  async waitReadable(what = 'data'): Promise<void> {
    if (this.detached)
      throw new MooringError('PROTOCOL', `reader was detached; cannot read ${what}`);
    if (this.buffered > 0) return;
    this.throwIfClosed(what);
    this.source.resume();
    await new Promise<void>((resolve) => {
      this.waiter = () => {
        this.waiter = undefined;
        resolve();
      };
    });
  }

  /** Ends the current wait early (waitReadable's caller's own deadline has passed). */
  interruptWait(): void {
    this.wake();
  }

  /** The byte `at` bytes past the read position if it has arrived; nothing is consumed. */
  peekByte(at: number): number | undefined {
    if (this.detached || this.buffered <= at) return undefined;
    let off = at;
    for (const c of this.chunks) {
      if (off < c.length) return c[off];
      off -= c.length;
    }
    return undefined;
  }

  /** Reads whatever is buffered, up to `max` bytes, waiting for at least one byte. */
  async readSome(max: number, timeoutMs = DEFAULT_READ_TIMEOUT_MS, what = 'data'): Promise<Buffer> {
    if (this.detached)
      throw new MooringError('PROTOCOL', `reader was detached; cannot read ${what}`);
    await this.waitAny(timeoutMs, what);
    return this.take(Math.min(max, this.buffered));
  }

  /**
   * Stops reading from the source and returns any bytes received but not consumed, so the
   * caller can push them back (`source.unshift`) before wrapping the socket in TLS.
   */
  detach(): Buffer {
    this.detached = true;
    this.source.off('data', this.onData);
    this.source.off('end', this.onEnd);
    this.source.off('close', this.onEnd);
    this.source.off('error', this.onError);
    this.source.pause();
    const rest = Buffer.concat(this.chunks);
    this.chunks = [];
    this.buffered = 0;
    this.wake();
    return rest;
  }

  private async waitAny(timeoutMs: number, what: string): Promise<void> {
    while (this.buffered === 0) {
      this.throwIfClosed(what);
      this.source.resume();
      await this.waitForData(timeoutMs, what);
    }
  }

  /** CLOSED when the stream has failed or ended (for a wait with nothing buffered). */
  throwIfClosed(what: string): void {
    if (this.failure) {
      throw new MooringError(
        'CLOSED',
        `connection failed while reading ${what}: ${this.failure.message}`,
        { cause: this.failure },
      );
    }
    if (this.ended) throw new MooringError('CLOSED', `connection closed while reading ${what}`);
  }

  private take(n: number): Buffer {
    if (n === 0) return Buffer.alloc(0);
    let out: Buffer;
    const first = this.chunks[0]!;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      out = Buffer.allocUnsafe(n);
      let off = 0;
      while (off < n) {
        const c = this.chunks[0]!;
        const k = Math.min(c.length, n - off);
        c.copy(out, off, 0, k);
        off += k;
        if (k === c.length) this.chunks.shift();
        else this.chunks[0] = c.subarray(k);
      }
    }
    this.buffered -= n;
    if (this.buffered <= this.highWaterMark && !this.detached) this.source.resume();
    return out;
  }

  private waitForData(timeoutMs: number, what: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        reject(new MooringError('TIMEOUT', `no ${what} from the peer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiter = () => {
        clearTimeout(timer);
        this.waiter = undefined;
        resolve();
      };
    });
  }

  private wake(): void {
    this.waiter?.();
  }
}
