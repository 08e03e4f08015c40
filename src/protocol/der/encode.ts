/**
 * A minimal ASN.1 DER encoder: just the types an X.509 v3 certificate and an RSA public key
 * need. Every function returns one complete TLV (tag, length, value) as a Buffer, so structures
 * are built by nesting calls: `derSequence(derInteger(1n), derNull())`.
 */
import { MooringError } from '../../util/errors';

/** Universal tags used by certificates (X.690 §8). */
export const DerTag = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30, // constructed
  SET: 0x31, // constructed
} as const;

/** Encodes a definite length in the shortest form DER allows. */
export function derLength(n: number): Buffer {
  if (!Number.isSafeInteger(n) || n < 0 || n > 0xffff_ffff) {
    throw new MooringError('LIMIT', `DER length ${n} is out of range`);
  }
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** One TLV with a single-byte tag (all tags a certificate uses fit in one byte). */
export function derTlv(tag: number, content: Buffer): Buffer {
  if (!Number.isInteger(tag) || tag < 0 || tag > 0xff || (tag & 0x1f) === 0x1f) {
    throw new MooringError('PROTOCOL', `DER tag ${tag} is not a single-byte tag`);
  }
  return Buffer.concat([Buffer.from([tag]), derLength(content.length), content]);
}

export function derSequence(...children: Buffer[]): Buffer {
  return derTlv(DerTag.SEQUENCE, Buffer.concat(children));
}

/** A SET whose elements are sorted by their encodings, as DER requires for SET OF. */
export function derSetOf(...children: Buffer[]): Buffer {
  return derTlv(DerTag.SET, Buffer.concat([...children].sort(Buffer.compare)));
}

export function derBoolean(v: boolean): Buffer {
  return derTlv(DerTag.BOOLEAN, Buffer.from([v ? 0xff : 0x00]));
}

export function derNull(): Buffer {
  return Buffer.from([DerTag.NULL, 0x00]);
}

/**
 * INTEGER from a bigint/number (two's complement, minimal) or from an unsigned big-endian
 * magnitude (e.g. an RSA modulus): leading zeros are stripped and a 0x00 is added when the top
 * bit is set, so the value stays positive.
 */
export function derInteger(v: bigint | number | Buffer): Buffer {
  if (Buffer.isBuffer(v)) return derTlv(DerTag.INTEGER, unsignedMagnitude(v));
  if (typeof v === 'number' && !Number.isSafeInteger(v)) {
    throw new MooringError('PROTOCOL', `DER INTEGER ${v} is not a safe integer`);
  }
  return derTlv(DerTag.INTEGER, twosComplement(BigInt(v)));
}

function unsignedMagnitude(b: Buffer): Buffer {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  const trimmed = b.subarray(i);
  if (trimmed.length === 0) return Buffer.from([0]);
  return (trimmed[0] as number) & 0x80 ? Buffer.concat([Buffer.from([0]), trimmed]) : trimmed;
}

function twosComplement(v: bigint): Buffer {
  const bytes: number[] = [];
  let x = v;
  // Emit little-endian bytes until the remaining value is pure sign extension of the last byte.
  for (;;) {
    const byte = Number(x & 0xffn);
    bytes.unshift(byte);
    x >>= 8n;
    if ((x === 0n && (byte & 0x80) === 0) || (x === -1n && (byte & 0x80) !== 0)) break;
  }
  return Buffer.from(bytes);
}

/** OBJECT IDENTIFIER from dotted form, e.g. '2.5.29.19'. */
export function derOid(dotted: string): Buffer {
  const parts = dotted.split('.');
  if (parts.length < 2 || parts.some((p) => !/^(0|[1-9][0-9]*)$/.test(p))) {
    throw new MooringError('PROTOCOL', `"${dotted}" is not a dotted object identifier`);
  }
  const arcs = parts.map((p) => BigInt(p));
  const [first, second] = arcs as [bigint, bigint];
  if (first > 2n || (first < 2n && second > 39n)) {
    throw new MooringError('PROTOCOL', `"${dotted}" is not a valid object identifier`);
  }
  const out: number[] = [];
  for (const arc of [first * 40n + second, ...arcs.slice(2)]) {
    const groups: number[] = [Number(arc & 0x7fn)];
    for (let x = arc >> 7n; x > 0n; x >>= 7n) groups.unshift(Number(x & 0x7fn) | 0x80);
    out.push(...groups);
  }
  return derTlv(DerTag.OID, Buffer.from(out));
}

/** BIT STRING: `unusedBits` (0–7) low bits of the last byte are padding. */
export function derBitString(bytes: Buffer, unusedBits = 0): Buffer {
  if (!Number.isInteger(unusedBits) || unusedBits < 0 || unusedBits > 7) {
    throw new MooringError('PROTOCOL', `BIT STRING unused-bit count ${unusedBits} is not 0-7`);
  }
  if (bytes.length === 0 && unusedBits !== 0) {
    throw new MooringError('PROTOCOL', 'an empty BIT STRING cannot have unused bits');
  }
  return derTlv(DerTag.BIT_STRING, Buffer.concat([Buffer.from([unusedBits]), bytes]));
}

/**
 * A named-bit-list BIT STRING (e.g. KeyUsage) from bit numbers, bit 0 being the most significant
 * bit of the first byte. DER drops trailing zero bits (X.690 §11.2.2).
 */
export function derNamedBits(bits: number[]): Buffer {
  if (bits.length === 0) return derBitString(Buffer.alloc(0));
  const highest = Math.max(...bits);
  if (bits.some((b) => !Number.isInteger(b) || b < 0) || highest > 255) {
    throw new MooringError('PROTOCOL', `named bits ${bits.join(',')} are out of range`);
  }
  const bytes = Buffer.alloc(Math.floor(highest / 8) + 1);
  for (const b of bits) bytes[b >> 3] = (bytes[b >> 3] as number) | (0x80 >> (b & 7));
  return derBitString(bytes, 7 - (highest & 7));
}

export function derOctetString(bytes: Buffer): Buffer {
  return derTlv(DerTag.OCTET_STRING, bytes);
}

/** Context-specific constructed tag [n] EXPLICIT wrapping one complete TLV. */
export function derExplicit(n: number, inner: Buffer): Buffer {
  if (!Number.isInteger(n) || n < 0 || n > 30) {
    throw new MooringError('PROTOCOL', `context tag [${n}] is not a low tag number`);
  }
  return derTlv(0xa0 | n, inner);
}

/**
 * An X.509 Time: UTCTime for years 1950–2049, GeneralizedTime otherwise (RFC 5280 §4.1.2.5),
 * always in UTC with whole seconds ("Z" form, no fractions), as DER requires.
 */
export function derTime(d: Date): Buffer {
  const ms = d.getTime();
  if (!Number.isFinite(ms)) throw new MooringError('PROTOCOL', 'cannot encode an invalid Date');
  const y = d.getUTCFullYear();
  if (y < 0 || y > 9999) throw new MooringError('PROTOCOL', `year ${y} cannot be encoded`);
  const p2 = (n: number): string => String(n).padStart(2, '0');
  const rest =
    p2(d.getUTCMonth() + 1) +
    p2(d.getUTCDate()) +
    p2(d.getUTCHours()) +
    p2(d.getUTCMinutes()) +
    p2(d.getUTCSeconds()) +
    'Z';
  if (y >= 1950 && y < 2050) return derTlv(DerTag.UTC_TIME, Buffer.from(p2(y % 100) + rest));
  return derTlv(DerTag.GENERALIZED_TIME, Buffer.from(String(y).padStart(4, '0') + rest));
}
