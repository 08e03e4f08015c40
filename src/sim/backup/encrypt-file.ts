/** Streams a file through the payload cipher (encrypt or decrypt) into another file. */
import { createReadStream, createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { createPayloadCipher, createPayloadDecipher } from '../../format/encryption';

export async function encryptFileTo(src: string, dest: string, key: Buffer): Promise<void> {
  await pipeline(
    createReadStream(src),
    createPayloadCipher(key),
    createWriteStream(dest, { mode: 0o600 }),
  );
}

export async function decryptFileTo(src: string, dest: string, key: Buffer): Promise<void> {
  await pipeline(
    createReadStream(src),
    createPayloadDecipher(key),
    createWriteStream(dest, { mode: 0o600 }),
  );
}
