/**
 * Child process of bounded-memory.test.ts: feeds ONE worst-case input (named in argv) to a parser
 * and prints the outcome as JSON. The parent runs it under a small --max-old-space-size, so a
 * parser whose memory grows with something other than its bounded input dies of OOM instead.
 */
import { decodeKeyValueList, MAX_AFC_PACKET_BYTES, AFC_HEADER_BYTES } from '../../src/protocol/afc';
import { decodePlist, encodeXmlPlist } from '../../src/protocol/plist';
import { isMooringError } from '../../src/util/errors';

/** 40 levels of an array referencing the next level twice: 2^40 paths in 41 objects. */
function sharedReferenceBomb(): Buffer {
  const objs: Buffer[] = [];
  for (let i = 0; i < 40; i++) objs.push(Buffer.from([0xa2, i + 1, i + 1]));
  objs.push(Buffer.from([0x51, 0x78]));
  const offsets: number[] = [];
  let off = 8;
  for (const o of objs) {
    offsets.push(off);
    off += o.length;
  }
  const trailer = Buffer.alloc(32);
  trailer[6] = 1;
  trailer[7] = 1;
  trailer.writeBigUInt64BE(BigInt(objs.length), 8);
  trailer.writeBigUInt64BE(BigInt(off), 24);
  return Buffer.concat([Buffer.from('bplist00'), ...objs, Buffer.from(offsets), trailer]);
}

export const CASES: Record<string, () => unknown> = {
  /** The largest AFC reply body a device may send, all NULs: 8 Mi empty key/value pairs. */
  'afc-info-nuls': () => decodeKeyValueList(Buffer.alloc(MAX_AFC_PACKET_BYTES - AFC_HEADER_BYTES)),
  /** A device's lockdown values decoded, then written out the way Info.plist is. */
  'plist-shared-reference-bomb': () => encodeXmlPlist(decodePlist(sharedReferenceBomb())).length,
};

if (require.main === module) {
  const name = process.argv[2] ?? '';
  const run = CASES[name];
  if (!run) throw new Error(`unknown case ${name}`);
  let outcome: string;
  try {
    run();
    outcome = 'ok';
  } catch (e) {
    if (!isMooringError(e)) throw e;
    outcome = e.code;
  }
  process.stdout.write(
    `${JSON.stringify({ name, outcome, heapUsed: process.memoryUsage().heapUsed })}\n`,
  );
}
