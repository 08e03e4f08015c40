/**
 * AFC packet framing: a 40-byte little-endian header followed by "header data" and a payload.
 *
 *   magic "CFA6LPAA" | entire_length u64 | this_length u64 | packet_num u64 | operation u64
 *
 * entire_length = 40 + header data + payload, this_length = 40 + header data. Hosts disagree on
 * where small replies put their bytes (a STATUS code may sit in header data or payload), so a
 * reader usually wants `data`: everything after the 40-byte header, in order.
 */
import { MooringError } from '../../util/errors';
import { DEFAULT_READ_TIMEOUT_MS, type StreamReader } from '../../util/stream-reader';
import { AFC_HEADER_BYTES, AFC_MAGIC, afcOpName } from './constants';

/** Default bound on one received packet (header included). File reads are requested in far smaller pieces. */
export const MAX_AFC_PACKET_BYTES = 16 * 1024 * 1024;

export interface AfcPacketHeader {
  entireLength: number;
  thisLength: number;
  packetNum: number;
  operation: number;
}

export interface AfcPacket {
  packetNum: number;
  operation: number;
  /** The bytes between the header and this_length (request arguments). */
  headerData: Buffer;
  /** The bytes after this_length (e.g. file data of a write). */
  payload: Buffer;
  /** headerData followed by payload: what a reply parser should read. */
  data: Buffer;
}

export interface AfcPacketToEncode {
  packetNum: number;
  operation: number;
  headerData?: Buffer;
  payload?: Buffer;
}

export function encodeAfcPacket(p: AfcPacketToEncode): Buffer {
  const headerData = p.headerData ?? Buffer.alloc(0);
  const payload = p.payload ?? Buffer.alloc(0);
  if (!Number.isSafeInteger(p.packetNum) || p.packetNum < 0) {
    throw new MooringError(
      'USAGE',
      `AFC packet number must be a non-negative integer, got ${p.packetNum}`,
    );
  }
  if (!Number.isSafeInteger(p.operation) || p.operation < 0) {
    throw new MooringError(
      'USAGE',
      `AFC operation must be a non-negative integer, got ${p.operation}`,
    );
  }
  const header = Buffer.alloc(AFC_HEADER_BYTES);
  AFC_MAGIC.copy(header, 0);
  const thisLength = AFC_HEADER_BYTES + headerData.length;
  header.writeBigUInt64LE(BigInt(thisLength + payload.length), 8);
  header.writeBigUInt64LE(BigInt(thisLength), 16);
  header.writeBigUInt64LE(BigInt(p.packetNum), 24);
  header.writeBigUInt64LE(BigInt(p.operation), 32);
  return Buffer.concat([header, headerData, payload]);
}

function u64Field(
  buf: Buffer,
  offset: number,
  name: string,
  limit: number,
  tooBig: 'FRAME_TOO_LARGE' | 'MALFORMED',
): number {
  const v = buf.readBigUInt64LE(offset);
  if (v > BigInt(limit)) {
    throw new MooringError(tooBig, `AFC ${name} ${v} exceeds the limit of ${limit}`, {
      detail: name,
    });
  }
  return Number(v);
}

/** Parses and checks the 40-byte header; lengths are bounded by `maxPacketBytes`. */
export function decodeAfcHeader(
  buf: Buffer,
  maxPacketBytes = MAX_AFC_PACKET_BYTES,
): AfcPacketHeader {
  if (buf.length < AFC_HEADER_BYTES) {
    throw new MooringError(
      'MALFORMED',
      `AFC header needs ${AFC_HEADER_BYTES} bytes, got ${buf.length}`,
    );
  }
  if (!buf.subarray(0, 8).equals(AFC_MAGIC)) {
    throw new MooringError(
      'MALFORMED',
      `AFC packet has a bad magic ${JSON.stringify(buf.subarray(0, 8).toString('latin1'))}`,
    );
  }
  const entireLength = u64Field(buf, 8, 'entire_length', maxPacketBytes, 'FRAME_TOO_LARGE');
  const thisLength = u64Field(buf, 16, 'this_length', maxPacketBytes, 'FRAME_TOO_LARGE');
  const packetNum = u64Field(buf, 24, 'packet_num', Number.MAX_SAFE_INTEGER, 'MALFORMED');
  const operation = u64Field(buf, 32, 'operation', Number.MAX_SAFE_INTEGER, 'MALFORMED');
  if (thisLength < AFC_HEADER_BYTES) {
    throw new MooringError(
      'MALFORMED',
      `AFC this_length ${thisLength} is shorter than the ${AFC_HEADER_BYTES}-byte header`,
    );
  }
  if (entireLength < thisLength) {
    throw new MooringError(
      'MALFORMED',
      `AFC entire_length ${entireLength} is shorter than this_length ${thisLength}`,
    );
  }
  return { entireLength, thisLength, packetNum, operation };
}

function assemble(h: AfcPacketHeader, data: Buffer): AfcPacket {
  const split = h.thisLength - AFC_HEADER_BYTES;
  return {
    packetNum: h.packetNum,
    operation: h.operation,
    headerData: data.subarray(0, split),
    payload: data.subarray(split),
    data,
  };
}

/** Decodes one complete packet held in `buf` (no trailing bytes allowed). */
export function decodeAfcPacket(buf: Buffer, maxPacketBytes = MAX_AFC_PACKET_BYTES): AfcPacket {
  const h = decodeAfcHeader(buf, maxPacketBytes);
  if (buf.length !== h.entireLength) {
    throw new MooringError(
      buf.length < h.entireLength ? 'CLOSED' : 'MALFORMED',
      `AFC packet declares ${h.entireLength} bytes but ${buf.length} were given`,
    );
  }
  return assemble(h, buf.subarray(AFC_HEADER_BYTES));
}

/** Reads one packet from the stream; every read has a deadline and every length a bound. */
export async function readAfcPacket(
  reader: StreamReader,
  opts: { timeoutMs?: number; maxPacketBytes?: number } = {},
): Promise<AfcPacket> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_READ_TIMEOUT_MS;
  const header = decodeAfcHeader(
    await reader.read(AFC_HEADER_BYTES, timeoutMs, 'AFC packet header'),
    opts.maxPacketBytes,
  );
  const data = await reader.read(
    header.entireLength - AFC_HEADER_BYTES,
    timeoutMs,
    `AFC ${afcOpName(header.operation)} body`,
  );
  return assemble(header, data);
}
