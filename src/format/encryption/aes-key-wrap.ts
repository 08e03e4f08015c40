/**
 * RFC 3394 AES key wrap, as iOS uses it for class keys (wrapped by the password key) and for
 * per-file keys (wrapped by a class key). OpenSSL's `id-aesNNN-wrap` ciphers implement the RFC
 * exactly (default IV 0xA6A6A6A6A6A6A6A6); the integrity check is what tells a wrong password.
 */
import crypto from 'node:crypto';

const DEFAULT_IV = Buffer.from('a6a6a6a6a6a6a6a6', 'hex');

function cipherName(kek: Buffer): string {
  if (kek.length === 16) return 'id-aes128-wrap';
  if (kek.length === 24) return 'id-aes192-wrap';
  if (kek.length === 32) return 'id-aes256-wrap';
  throw new RangeError(`AES key wrap: a KEK of ${kek.length} bytes (16, 24 or 32 expected)`);
}

/** Wraps `key` (a multiple of 8 bytes, at least 16) under `kek`: the result is 8 bytes longer. */
export function aesKeyWrap(kek: Buffer, key: Buffer): Buffer {
  if (key.length < 16 || key.length % 8 !== 0)
    throw new RangeError(`AES key wrap: a key of ${key.length} bytes (multiple of 8, ≥ 16)`);
  const c = crypto.createCipheriv(cipherName(kek), kek, DEFAULT_IV);
  return Buffer.concat([c.update(key), c.final()]);
}

/** Unwraps; null when the integrity check fails (wrong KEK, or damaged bytes). */
export function aesKeyUnwrap(kek: Buffer, wrapped: Buffer): Buffer | null {
  const name = cipherName(kek);
  if (wrapped.length < 24 || wrapped.length % 8 !== 0) return null;
  try {
    const d = crypto.createDecipheriv(name, kek, DEFAULT_IV);
    return Buffer.concat([d.update(wrapped), d.final()]);
  } catch {
    return null;
  }
}
