/**
 * Exact-length reads with a deadline for the WHOLE read. StreamReader's timeout restarts with every
 * chunk, which is right for "the peer went quiet" but lets a hostile peer trickle one byte just
 * inside each timeout and keep us waiting for days (slow-loris). Callers that read a body whose
 * length the peer announced use this instead.
 */
import { MooringError } from './errors';
import type { StreamReader } from './stream-reader';

/** Pieces that must have arrived before a late read counts as a trickle rather than a stall. */
export const TRICKLE_MIN_CHUNKS = 3;

/**
 * Reads exactly `n` bytes within `totalMs`. Rejects with PROTOCOL ("too slowly") when bytes were
 * still arriving when the time was up (a trickle), TIMEOUT when the peer had gone quiet, CLOSED
 * when the stream ended first.
 */
export async function readWithin(
  reader: StreamReader,
  n: number,
  totalMs: number,
  what: string,
): Promise<Buffer> {
  if (reader.available >= n) return reader.read(n, totalMs, what);
  const started = Date.now();
  const deadline = started + totalMs;
  const parts: Buffer[] = [];
  let got = 0;
  let lastChunkAt = started;
  let chunks = 0;
  // A trickle: bytes kept coming in several pieces, the last one recently. A prefix followed by
  // silence is a stall (TIMEOUT), as StreamReader reports it.
  const expired = (): MooringError =>
    chunks >= TRICKLE_MIN_CHUNKS && Date.now() - lastChunkAt < totalMs / 2
      ? new MooringError(
          'PROTOCOL',
          `the peer sent ${what} too slowly: ${got} of ${n} bytes in ${totalMs} ms`,
          { detail: got },
        )
      : new MooringError(
          'TIMEOUT',
          `no ${what} from the peer within ${totalMs} ms (${got} of ${n} bytes received)`,
        );
  while (got < n) {
    const left = deadline - Date.now();
    if (left <= 0) throw expired();
    let chunk: Buffer;
    try {
      chunk = await reader.readSome(n - got, left, what);
    } catch (e) {
      if (e instanceof MooringError && e.code === 'TIMEOUT') throw expired();
      throw e;
    }
    parts.push(chunk);
    got += chunk.length;
    chunks++;
    lastChunkAt = Date.now();
  }
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts, n);
}
