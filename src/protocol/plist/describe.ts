/**
 * A short, never-throwing description of a plist value for error messages. `String(v)` and
 * template literals are not safe on decoded dicts: a peer that sends `{toString: ""}` makes them
 * throw a TypeError instead of the MooringError the caller meant to raise (found by fuzzing).
 */
import { PlistReal, PlistUid, type PlistValue } from './types';

const MAX_SHOWN_CHARS = 80;

export function describePlistValue(v: PlistValue | undefined): string {
  if (v === undefined) return 'nothing';
  switch (typeof v) {
    case 'string':
      return JSON.stringify(v.length > MAX_SHOWN_CHARS ? `${v.slice(0, MAX_SHOWN_CHARS)}…` : v);
    case 'number':
    case 'bigint':
    case 'boolean':
      return `${v}`; // primitives: ToString cannot be hijacked
  }
  if (Buffer.isBuffer(v)) return `data (${v.length} bytes)`;
  if (v instanceof Date) return 'a date';
  if (v instanceof PlistUid) return 'a UID';
  if (v instanceof PlistReal) return `${v.value}`;
  if (Array.isArray(v)) return `an array of ${v.length}`;
  return 'a dict';
}
