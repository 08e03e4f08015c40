/**
 * The worker thread of OffThreadSha1 (sha1-off-thread.ts): takes the SHA-1 of many files' bytes,
 * in the order they were written, so the main thread only copies them. Imports nothing but Node's
 * own modules (util/worker-file.ts says why).
 *
 * In: a batch `{ buf, ops }`: `ops` holds triples (stream id, offset in buf, length); a length of
 * END asks for the stream's digest, DROP forgets the stream.
 * Out: `{ buf, digests }`: the batch's buffer back for reuse, and the digests of the files ended
 * in it, 20 bytes each, in the order they were ended.
 */
import { createHash, type Hash } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';

export const END = -1;
export const DROP = -2;
export const SHA1_BYTES = 20;

export interface Sha1Batch {
  buf: ArrayBuffer;
  ops: Float64Array;
}

export interface Sha1Results {
  buf: ArrayBuffer;
  digests: ArrayBuffer;
}

function serve(port: NonNullable<typeof parentPort>): void {
  const open = new Map<number, Hash>();
  port.on('message', ({ buf, ops }: Sha1Batch) => {
    const data = Buffer.from(buf);
    const digests: Buffer[] = [];
    for (let i = 0; i < ops.length; i += 3) {
      const id = ops[i]!;
      const len = ops[i + 2]!;
      if (len === DROP) {
        open.delete(id);
        continue;
      }
      let h = open.get(id);
      if (h === undefined) {
        h = createHash('sha1');
        open.set(id, h);
      }
      if (len === END) {
        open.delete(id);
        digests.push(h.digest());
      } else {
        const off = ops[i + 1]!;
        h.update(data.subarray(off, off + len));
      }
    }
    const out = new Uint8Array(new ArrayBuffer(digests.length * SHA1_BYTES));
    digests.forEach((d, i) => out.set(d, i * SHA1_BYTES));
    const results: Sha1Results = { buf, digests: out.buffer };
    port.postMessage(results, [buf, out.buffer]);
  });
}

/** Passed as workerData by OffThreadSha1: the main thread imports this module for its constants. */
export const SERVE = 'mooring-sha1';

if (parentPort !== null && workerData === SERVE) serve(parentPort);
