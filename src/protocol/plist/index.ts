/**
 * Property lists: the value model plus XML and binary codecs. `decodePlist` sniffs the format the
 * way every iOS peer does (a body starting with `bplist00` is binary, anything else is XML).
 */
import { MooringError } from '../../util/errors';
import { decodeBinaryPlist, isBinaryPlist } from './binary';
import type { PlistLimits, PlistValue } from './types';
import { decodeXmlPlist } from './xml';

export * from './types';
export { decodeBinaryPlist, encodeBinaryPlist } from './binary';
export { decodeXmlPlist, encodeXmlPlist, setDictEntry } from './xml';
export { describePlistValue } from './describe'; // H7z: safe value text for error messages

/** Decodes a binary or XML plist. Throws MooringError MALFORMED (bad bytes) or LIMIT (bounds). */
export function decodePlist(buf: Buffer, limits?: Partial<PlistLimits>): PlistValue {
  if (buf.length === 0) throw new MooringError('MALFORMED', 'empty plist');
  if (isBinaryPlist(buf)) return decodeBinaryPlist(buf, limits);
  if (buf.length >= 6 && buf.toString('latin1', 0, 6) === 'bplist') {
    throw new MooringError(
      'MALFORMED',
      `unsupported binary plist version '${buf.toString('latin1', 6, 8)}'`,
    );
  }
  return decodeXmlPlist(buf, limits);
}
