/**
 * The in-memory shape of a property list.
 *
 * Decoding maps: string → string, integer → number (bigint beyond ±2^53), real → number,
 * boolean → boolean, date → Date, data → Buffer, array → array, dict → plain object,
 * UID (binary only, NSKeyedArchiver) → PlistUid.
 * Encoding maps numbers back: an integral number is written as <integer>, any other as <real>.
 * Where the protocol needs a real that happens to be integral (mobilebackup2's
 * SupportedProtocolVersions [2.0, 2.1]), wrap it: `new PlistReal(2)`.
 */
export type PlistValue =
  | string
  | number
  | bigint
  | boolean
  | Date
  | Buffer
  | PlistUid
  | PlistReal
  | PlistValue[]
  | PlistDict;

export interface PlistDict {
  [key: string]: PlistValue;
}

/** A keyed-archiver object reference (binary plist type 0x8). */
export class PlistUid {
  constructor(readonly value: number) {}
}

/** Forces real encoding of an integral number. Decoders never produce it. */
export class PlistReal {
  constructor(readonly value: number) {}
}

/** Bounds applied to every decode: a device is untrusted input. */
export interface PlistLimits {
  /** Deepest nesting of arrays/dicts accepted. */
  maxDepth: number;
  /** Total objects (binary) / elements (XML) accepted in one document. */
  maxObjects: number;
}

export const DEFAULT_PLIST_LIMITS: PlistLimits = { maxDepth: 64, maxObjects: 1_000_000 };

export function isPlistDict(v: PlistValue | undefined): v is PlistDict {
  return (
    typeof v === 'object' &&
    v !== null &&
    !Array.isArray(v) &&
    !Buffer.isBuffer(v) &&
    !(v instanceof Date) &&
    !(v instanceof PlistUid) &&
    !(v instanceof PlistReal)
  );
}
