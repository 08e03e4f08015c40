/**
 * The cipher of encrypted backup payloads and of Manifest.db (reference §7): AES-256-CBC with an
 * all-zero IV and PKCS#7 padding, one key per file. Streaming variants for large files.
 */
import crypto from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { MooringError } from '../../util/errors';

const ALGORITHM = 'aes-256-cbc';
const ZERO_IV = Buffer.alloc(16);
export const PAYLOAD_BLOCK_BYTES = 16;

function checkKey(key: Buffer): void {
  if (key.length !== 32)
    throw new MooringError('MALFORMED', `a backup file key of ${key.length} bytes (32 expected)`);
}

function badPadding(cause?: unknown): MooringError {
  return new MooringError(
    'MALFORMED',
    'an encrypted backup file does not decrypt (bad length or padding): wrong key or damaged file',
    { cause },
  );
}

/** Ciphertext = plaintext padded to the next multiple of 16 (always at least one padding byte). */
export function encryptPayload(key: Buffer, plain: Buffer): Buffer {
  checkKey(key);
  const c = crypto.createCipheriv(ALGORITHM, key, ZERO_IV);
  return Buffer.concat([c.update(plain), c.final()]);
}

export function decryptPayload(key: Buffer, cipher: Buffer): Buffer {
  checkKey(key);
  if (cipher.length === 0 || cipher.length % PAYLOAD_BLOCK_BYTES !== 0) throw badPadding();
  try {
    const d = crypto.createDecipheriv(ALGORITHM, key, ZERO_IV);
    return Buffer.concat([d.update(cipher), d.final()]);
  } catch (e) {
    throw badPadding(e);
  }
}

/** Wraps a node Cipher/Decipher so padding failures surface as MooringError MALFORMED. */
class CbcTransform extends Transform {
  private seen = 0;
  constructor(
    private readonly inner: crypto.Cipher | crypto.Decipher,
    private readonly decrypting: boolean,
  ) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.seen += chunk.length;
    try {
      const out = this.inner.update(chunk);
      if (out.length > 0) this.push(out);
      cb();
    } catch (e) {
      cb(this.decrypting ? badPadding(e) : (e as Error));
    }
  }
  override _flush(cb: TransformCallback): void {
    if (this.decrypting && (this.seen === 0 || this.seen % PAYLOAD_BLOCK_BYTES !== 0)) {
      cb(badPadding());
      return;
    }
    try {
      const out = this.inner.final();
      if (out.length > 0) this.push(out);
      cb();
    } catch (e) {
      cb(this.decrypting ? badPadding(e) : (e as Error));
    }
  }
}

export function createPayloadDecipher(key: Buffer): Transform {
  checkKey(key);
  return new CbcTransform(crypto.createDecipheriv(ALGORITHM, key, ZERO_IV), true);
}

export function createPayloadCipher(key: Buffer): Transform {
  checkKey(key);
  return new CbcTransform(crypto.createCipheriv(ALGORITHM, key, ZERO_IV), false);
}

/** Size of the ciphertext of `plainSize` bytes (PKCS#7 always adds 1..16 bytes). */
export function encryptedPayloadSize(plainSize: number): number {
  return (Math.floor(plainSize / PAYLOAD_BLOCK_BYTES) + 1) * PAYLOAD_BLOCK_BYTES;
}
