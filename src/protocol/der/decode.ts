/**
 * A small, bounded ASN.1 DER decoder. It turns bytes into a tree of TLV nodes (constructed
 * nodes are decoded recursively, primitive ones keep their content) and offers typed readers
 * for the handful of universal types certificates and RSA keys use.
 *
 * The input may come from a device (DevicePublicKey) or from a pair-record file, so it is
 * untrusted: lengths must fit in the buffer, length fields are at most 4 octets, nesting and
 * node count are capped, and only DER (definite, minimal lengths) is accepted. Every failure is
 * a MooringError: MALFORMED for bad encodings, LIMIT for exceeded bounds.
 */
import { MooringError } from '../../util/errors';
import { DerTag } from './encode';

/** A length field longer than this (4 GiB) cannot describe anything we would accept. */
export const DER_MAX_LENGTH_OCTETS = 4;
/** Largest INTEGER read as a bigint: an 8192-bit RSA modulus plus its sign byte, with slack. */
export const DER_MAX_INTEGER_BYTES = 1040;
/** Longest single OID arc accepted, in base-128 digits (enough for any 64-bit arc). */
export const DER_MAX_OID_ARC_BYTES = 10;

/** Ceiling on any requested depth: the decoder recurses once per level. */
export const DER_DEPTH_CEILING = 256;

export interface DerLimits {
  /** Deepest nesting of constructed values (a certificate needs about 6). */
  maxDepth: number;
  /** Total TLVs in one document. */
  maxNodes: number;
  /** Largest input accepted at all. */
  maxInputBytes: number;
}

export const DEFAULT_DER_LIMITS: DerLimits = {
  maxDepth: 32,
  maxNodes: 10_000,
  maxInputBytes: 1 << 20,
};

export type DerTagClass = 'universal' | 'application' | 'context' | 'private';

export interface DerNode {
  /** The identifier octet as it appears on the wire (e.g. 0x30 for SEQUENCE, 0xa3 for [3]). */
  tag: number;
  tagClass: DerTagClass;
  constructed: boolean;
  tagNumber: number;
  /** Offset of the identifier octet within the decoded buffer. */
  offset: number;
  /** The value bytes (a view into the input). */
  content: Buffer;
  /** The whole TLV (a view into the input): what a signature covers, for a tbsCertificate. */
  raw: Buffer;
  /** Decoded elements of a constructed value; empty for primitive values. */
  children: DerNode[];
}

const CLASSES: readonly DerTagClass[] = ['universal', 'application', 'context', 'private'];

/** Decodes exactly one TLV spanning the whole buffer (trailing bytes are an error). */
export function decodeDer(buf: Buffer, limits: Partial<DerLimits> = {}): DerNode {
  const lim: DerLimits = { ...DEFAULT_DER_LIMITS, ...limits };
  lim.maxDepth = Math.min(lim.maxDepth, DER_DEPTH_CEILING);
  if (buf.length > lim.maxInputBytes) {
    throw new MooringError(
      'LIMIT',
      `DER input of ${buf.length} bytes exceeds the ${lim.maxInputBytes}-byte limit`,
    );
  }
  const state = { nodes: 0 };
  const node = decodeAt(buf, 0, buf.length, 0, lim, state);
  const end = node.offset + node.raw.length;
  if (end !== buf.length) {
    throw new MooringError('MALFORMED', `DER: ${buf.length - end} trailing bytes after the value`);
  }
  return node;
}

function decodeAt(
  buf: Buffer,
  start: number,
  limit: number,
  depth: number,
  lim: DerLimits,
  state: { nodes: number },
): DerNode {
  if (++state.nodes > lim.maxNodes) {
    throw new MooringError('LIMIT', `DER: more than ${lim.maxNodes} values`);
  }
  if (start + 2 > limit) {
    throw new MooringError('MALFORMED', `DER: truncated header at offset ${start}`);
  }
  const tag = buf[start] as number;
  if ((tag & 0x1f) === 0x1f) {
    throw new MooringError('MALFORMED', `DER: multi-byte tag at offset ${start} is not supported`);
  }
  const first = buf[start + 1] as number;
  let pos = start + 2;
  let length: number;
  if (first < 0x80) {
    length = first;
  } else {
    const n = first & 0x7f;
    if (n === 0) {
      throw new MooringError('MALFORMED', `DER: indefinite length at offset ${start}`);
    }
    if (n > DER_MAX_LENGTH_OCTETS) {
      throw new MooringError(
        'MALFORMED',
        `DER: ${n}-octet length field at offset ${start} (at most ${DER_MAX_LENGTH_OCTETS})`,
      );
    }
    if (pos + n > limit) {
      throw new MooringError('MALFORMED', `DER: truncated length at offset ${start}`);
    }
    if (buf[pos] === 0) {
      throw new MooringError('MALFORMED', `DER: non-minimal length at offset ${start}`);
    }
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + (buf[pos + i] as number);
    if (length < 0x80) {
      throw new MooringError('MALFORMED', `DER: non-minimal length at offset ${start}`);
    }
    pos += n;
  }
  if (length > limit - pos) {
    throw new MooringError(
      'MALFORMED',
      `DER: value at offset ${start} claims ${length} bytes but only ${limit - pos} remain`,
    );
  }
  const end = pos + length;
  const constructed = (tag & 0x20) !== 0;
  const node: DerNode = {
    tag,
    tagClass: CLASSES[tag >> 6] as DerTagClass,
    constructed,
    tagNumber: tag & 0x1f,
    offset: start,
    content: buf.subarray(pos, end),
    raw: buf.subarray(start, end),
    children: [],
  };
  if (constructed) {
    if (depth + 1 > lim.maxDepth) {
      throw new MooringError('LIMIT', `DER: nesting deeper than ${lim.maxDepth}`);
    }
    let p = pos;
    while (p < end) {
      const child = decodeAt(buf, p, end, depth + 1, lim, state);
      node.children.push(child);
      p = child.offset + child.raw.length;
    }
  }
  return node;
}

// ---- typed readers -----------------------------------------------------------------------

function tagName(tag: number): string {
  const known = Object.entries(DerTag).find(([, v]) => v === tag);
  return known ? known[0] : `tag 0x${tag.toString(16).padStart(2, '0')}`;
}

/** Asserts the node's identifier octet; `what` names the field for the error message. */
export function expectTag(node: DerNode | undefined, tag: number, what: string): DerNode {
  if (node === undefined) {
    throw new MooringError('MALFORMED', `${what}: missing (expected ${tagName(tag)})`);
  }
  if (node.tag !== tag) {
    throw new MooringError(
      'MALFORMED',
      `${what}: expected ${tagName(tag)}, found ${tagName(node.tag)}`,
    );
  }
  return node;
}

/** Asserts a SEQUENCE with at least `min` and at most `max` elements, returning them. */
export function expectSequence(
  node: DerNode | undefined,
  what: string,
  min = 0,
  max = Infinity,
): DerNode[] {
  const seq = expectTag(node, DerTag.SEQUENCE, what);
  const n = seq.children.length;
  if (n < min || n > max) {
    throw new MooringError('MALFORMED', `${what}: SEQUENCE has ${n} elements`);
  }
  return seq.children;
}

export function readInteger(node: DerNode | undefined, what: string): bigint {
  const c = checkedInteger(node, what);
  if (c.length > DER_MAX_INTEGER_BYTES) {
    throw new MooringError('LIMIT', `${what}: INTEGER of ${c.length} bytes is too large`);
  }
  let v = 0n;
  for (const b of c) v = (v << 8n) | BigInt(b);
  if ((c[0] as number) & 0x80) v -= 1n << BigInt(c.length * 8);
  return v;
}

/** A non-negative INTEGER as its big-endian magnitude without sign padding (e.g. a modulus). */
export function readUnsignedIntegerBytes(node: DerNode | undefined, what: string): Buffer {
  const c = checkedInteger(node, what);
  if ((c[0] as number) & 0x80) {
    throw new MooringError('MALFORMED', `${what}: INTEGER is negative`);
  }
  return c[0] === 0 && c.length > 1 ? c.subarray(1) : c;
}

function checkedInteger(node: DerNode | undefined, what: string): Buffer {
  const c = expectTag(node, DerTag.INTEGER, what).content;
  if (c.length === 0) throw new MooringError('MALFORMED', `${what}: empty INTEGER`);
  if (c.length > 1) {
    const a = c[0] as number;
    const b = c[1] as number;
    if ((a === 0x00 && (b & 0x80) === 0) || (a === 0xff && (b & 0x80) !== 0)) {
      throw new MooringError('MALFORMED', `${what}: INTEGER is not minimally encoded`);
    }
  }
  return c;
}

export function readBoolean(node: DerNode | undefined, what: string): boolean {
  const c = expectTag(node, DerTag.BOOLEAN, what).content;
  if (c.length !== 1 || (c[0] !== 0x00 && c[0] !== 0xff)) {
    throw new MooringError('MALFORMED', `${what}: BOOLEAN is not DER (one byte, 00 or FF)`);
  }
  return c[0] === 0xff;
}

export function readNull(node: DerNode | undefined, what: string): null {
  if (expectTag(node, DerTag.NULL, what).content.length !== 0) {
    throw new MooringError('MALFORMED', `${what}: NULL has content`);
  }
  return null;
}

export function readOctetString(node: DerNode | undefined, what: string): Buffer {
  return expectTag(node, DerTag.OCTET_STRING, what).content;
}

export interface BitString {
  unusedBits: number;
  bytes: Buffer;
}

export function readBitString(node: DerNode | undefined, what: string): BitString {
  const c = expectTag(node, DerTag.BIT_STRING, what).content;
  if (c.length === 0) throw new MooringError('MALFORMED', `${what}: BIT STRING has no header`);
  const unusedBits = c[0] as number;
  if (unusedBits > 7 || (c.length === 1 && unusedBits !== 0)) {
    throw new MooringError('MALFORMED', `${what}: BIT STRING has ${unusedBits} unused bits`);
  }
  const bytes = c.subarray(1);
  const last = bytes[bytes.length - 1];
  if (last !== undefined && (last & ((1 << unusedBits) - 1)) !== 0) {
    throw new MooringError('MALFORMED', `${what}: BIT STRING padding bits are not zero`);
  }
  return { unusedBits, bytes };
}

/** The numbers of the bits set in a named-bit-list BIT STRING (bit 0 = MSB of first byte). */
export function readNamedBits(node: DerNode | undefined, what: string): number[] {
  const { bytes, unusedBits } = readBitString(node, what);
  const out: number[] = [];
  const total = bytes.length * 8 - unusedBits;
  for (let i = 0; i < total; i++) {
    if (((bytes[i >> 3] as number) >> (7 - (i & 7))) & 1) out.push(i);
  }
  return out;
}

export function readOid(node: DerNode | undefined, what: string): string {
  const c = expectTag(node, DerTag.OID, what).content;
  if (c.length === 0) throw new MooringError('MALFORMED', `${what}: empty OBJECT IDENTIFIER`);
  const arcs: bigint[] = [];
  let v = 0n;
  let digits = 0;
  for (let i = 0; i < c.length; i++) {
    const b = c[i] as number;
    if (digits === 0 && b === 0x80) {
      throw new MooringError('MALFORMED', `${what}: OBJECT IDENTIFIER arc has a leading zero`);
    }
    if (++digits > DER_MAX_OID_ARC_BYTES) {
      throw new MooringError('LIMIT', `${what}: OBJECT IDENTIFIER arc is too long`);
    }
    v = (v << 7n) | BigInt(b & 0x7f);
    if ((b & 0x80) === 0) {
      arcs.push(v);
      v = 0n;
      digits = 0;
    }
  }
  if (digits !== 0) throw new MooringError('MALFORMED', `${what}: OBJECT IDENTIFIER is truncated`);
  const firstArc = arcs[0] as bigint;
  const head = firstArc < 80n ? [firstArc / 40n, firstArc % 40n] : [2n, firstArc - 80n];
  return [...head, ...arcs.slice(1)].join('.');
}

/** UTCTime or GeneralizedTime in the DER "Z" form certificates use (seconds, no fraction). */
export function readTime(node: DerNode | undefined, what: string): Date {
  if (node === undefined) throw new MooringError('MALFORMED', `${what}: missing time`);
  const s = node.content.toString('latin1');
  let m: RegExpExecArray | null;
  let year: number;
  if (
    node.tag === DerTag.UTC_TIME &&
    (m = /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s))
  ) {
    const yy = Number(m[1]);
    year = yy >= 50 ? 1900 + yy : 2000 + yy; // RFC 5280 §4.1.2.5.1
  } else if (
    node.tag === DerTag.GENERALIZED_TIME &&
    (m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s))
  ) {
    year = Number(m[1]);
  } else {
    throw new MooringError('MALFORMED', `${what}: not a DER UTCTime/GeneralizedTime`);
  }
  const [mo, d, h, mi, se] = [m[2], m[3], m[4], m[5], m[6]].map(Number) as [
    number,
    number,
    number,
    number,
    number,
  ];
  // setUTCFullYear, unlike Date.UTC, does not map years 0-99 to 1900-1999.
  const date = new Date(0);
  date.setUTCFullYear(year, mo - 1, d);
  date.setUTCHours(h, mi, se, 0);
  // Dates silently roll over (month 13, second 61): reject anything that did.
  if (
    date.getUTCFullYear() !== year ||
    date.getUTCMonth() !== mo - 1 ||
    date.getUTCDate() !== d ||
    date.getUTCHours() !== h ||
    date.getUTCMinutes() !== mi ||
    date.getUTCSeconds() !== se
  ) {
    throw new MooringError('MALFORMED', `${what}: "${s}" is not a valid date`);
  }
  return date;
}
