/**
 * Exact-length reads with a deadline for the WHOLE read. StreamReader's timeout restarts with every
 * chunk, which is right for "the peer went quiet" but lets a hostile peer trickle one byte just
 * inside each timeout and keep us waiting for days (slow-loris). Callers that read a body whose
 * length the peer announced use this instead: joined (`readWithin`), or in the pieces it arrived
 * in (`BodyWithin`), which a receiver that copies them on anyway takes without joining them.
 */
import { MooringError } from './errors';
import type { StreamReader } from './stream-reader';

/** Pieces that must have arrived before a late read counts as a trickle rather than a stall. */
export const TRICKLE_MIN_CHUNKS = 3;

/**
 * A body of `n` bytes the peer announced, taken in the pieces it arrives in (views of the received
 * chunks, never copied or joined), all of it within `totalMs` of the start. One timer for the whole
 * body, armed only if a piece has to be waited for: a 2 GB transfer in 128 KiB blocks arrives in
 * ~130,000 socket chunks, and a timer for each wait was ~0.4 s of CPU (docs/BENCHMARKS.md,
 * seventeenth pass).
 *
 * Errors: PROTOCOL ("too slowly") when bytes were still arriving when the time was up (a trickle),
 * TIMEOUT when the peer had gone quiet, CLOSED when the stream has ended (even if the deadline has
 * passed too by the time we look).
 */
export class BodyWithin {
  private remaining: number;
  private readonly deadline: number;
  private timer: NodeJS.Timeout | undefined;
  private expired = false;
  private pieces = 0;
  private lastPieceAt: number;

  constructor(
    private readonly reader: StreamReader,
    private readonly n: number,
    private readonly totalMs: number,
    private readonly what: string,
  ) {
    this.remaining = n;
    this.lastPieceAt = Date.now();
    this.deadline = this.lastPieceAt + totalMs;
  }

  /** Bytes of the body not yet taken. */
  get left(): number {
    return this.remaining;
  }

  /** The next piece if one has arrived (no await, no timer), else undefined. */
  takeNow(): Buffer | undefined {
    if (this.remaining === 0) return undefined;
    const piece = this.reader.takeSomeNow(this.remaining);
    if (piece === undefined) return undefined;
    this.remaining -= piece.length;
    this.pieces++;
    if (this.remaining === 0) this.stopTimer();
    return piece;
  }

  /** The next piece, waited for within the body's deadline. */
  async take(): Promise<Buffer> {
    for (;;) {
      const piece = this.takeNow();
      if (piece !== undefined) return piece;
      if (this.remaining === 0) {
        throw new MooringError('PROTOCOL', `all ${this.n} bytes of ${this.what} were read`);
      }
      if (this.expired || Date.now() >= this.deadline) {
        this.stopTimer();
        // A peer that hung up is CLOSED however late we look: on a busy machine the deadline
        // can pass before this loop runs again, and "timed out" would misname a disconnect.
        this.reader.throwIfClosed(this.what);
        throw this.expiredError();
      }
      this.timer ??= setTimeout(() => {
        this.expired = true;
        this.reader.interruptWait();
      }, this.deadline - Date.now());
      try {
        await this.reader.waitReadable(this.what);
      } catch (e) {
        this.stopTimer();
        throw e;
      }
      if (this.reader.available > 0) this.lastPieceAt = Date.now();
    }
  }

  private stopTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  // A trickle: bytes kept coming in several pieces, the last one recently. A prefix followed by
  // silence is a stall (TIMEOUT), as StreamReader reports it.
  private expiredError(): MooringError {
    const got = this.n - this.remaining;
    return this.pieces >= TRICKLE_MIN_CHUNKS && Date.now() - this.lastPieceAt < this.totalMs / 2
      ? new MooringError(
          'PROTOCOL',
          `the peer sent ${this.what} too slowly: ${got} of ${this.n} bytes in ${this.totalMs} ms`,
          { detail: got },
        )
      : new MooringError(
          'TIMEOUT',
          `no ${this.what} from the peer within ${this.totalMs} ms (${got} of ${this.n} bytes received)`,
        );
  }
}

/**
 * Reads exactly `n` bytes within `totalMs` (BodyWithin's errors), joined into one buffer: `into`'s
 * first `n` bytes when it has room, each piece copied there as it is taken (the received chunks
 * are then garbage at once, and no joined copy is made).
 */
export async function readWithin(
  reader: StreamReader,
  n: number,
  totalMs: number,
  what: string,
  into?: Buffer,
): Promise<Buffer> {
  if (into !== undefined && into.length >= n) {
    const body = new BodyWithin(reader, n, totalMs, what);
    for (let at = 0; body.left > 0;) at += (body.takeNow() ?? (await body.take())).copy(into, at);
    return into.subarray(0, n);
  }
  if (reader.available >= n) return reader.read(n, totalMs, what);
  const body = new BodyWithin(reader, n, totalMs, what);
  const parts: Buffer[] = [];
  while (body.left > 0) parts.push(body.takeNow() ?? (await body.take()));
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts, n);
}
