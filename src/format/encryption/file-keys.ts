/**
 * Per-file keys (MBFile `EncryptionKey`) and Manifest.plist `ManifestKey`: a 4-byte little-endian
 * protection class followed by the file key RFC 3394-wrapped by that class's key (reference §7).
 */
import { MooringError } from '../../util/errors';
import { aesKeyUnwrap, aesKeyWrap } from './aes-key-wrap';
import type { UnlockedKeyBag } from './backup-keybag';

/** 4 (class) + 40 (a wrapped 32-byte key). */
export const WRAPPED_FILE_KEY_BYTES = 44;

function classKey(bag: UnlockedKeyBag, protectionClass: number): Buffer {
  const k = bag.classKeys.get(protectionClass);
  if (k === undefined)
    throw new MooringError(
      'MALFORMED',
      `a file key names protection class ${protectionClass}, which this backup's keybag does not hold`,
    );
  return k;
}

export function wrapClassKey(bag: UnlockedKeyBag, protectionClass: number, key: Buffer): Buffer {
  const head = Buffer.alloc(4);
  head.writeUInt32LE(protectionClass >>> 0, 0);
  return Buffer.concat([head, aesKeyWrap(classKey(bag, protectionClass), key)]);
}

/** The class a wrapped key names, without unwrapping it. */
export function wrappedKeyClass(blob: Buffer): number {
  if (blob.length !== WRAPPED_FILE_KEY_BYTES)
    throw new MooringError(
      'MALFORMED',
      `a wrapped file key of ${blob.length} bytes (${WRAPPED_FILE_KEY_BYTES} expected)`,
    );
  return blob.readUInt32LE(0);
}

/** MALFORMED for a bad blob or an unknown class; WRONG_PASSWORD when the key is not this keybag's. */
export function unwrapClassKey(bag: UnlockedKeyBag, blob: Buffer): Buffer {
  const clas = wrappedKeyClass(blob);
  const key = aesKeyUnwrap(classKey(bag, clas), blob.subarray(4));
  if (key === null)
    throw new MooringError(
      'WRONG_PASSWORD',
      `a file key (protection class ${clas}) does not unwrap with this keybag: the file belongs to a backup made with another password`,
    );
  return key;
}
