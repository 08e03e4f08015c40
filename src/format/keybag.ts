/**
 * The BackupKeyBag of Manifest.plist (reference §7): TLV records, a 4-byte ASCII tag, a u32 BE
 * length and the value. Unencrypted backups carry one too.
 */
import { MooringError } from '../util/errors';

export interface KeyBagRecord {
  tag: string;
  value: Buffer;
}

/** One TLV record; a number value is written as a u32 BE. */
export function encodeKeyBagRecord(tag: string, value: Buffer | number): Buffer {
  if (!/^[A-Z0-9]{4}$/.test(tag)) throw new RangeError(`keybag tag ${JSON.stringify(tag)}`);
  let v: Buffer;
  if (typeof value === 'number') {
    v = Buffer.alloc(4);
    v.writeUInt32BE(value >>> 0, 0);
  } else v = value;
  const head = Buffer.alloc(8);
  head.write(tag, 0, 4, 'latin1');
  head.writeUInt32BE(v.length, 4);
  return Buffer.concat([head, v]);
}

/** Parses keybag TLVs. Bounded by the input; MALFORMED on an overrun or trailing bytes. */
export function parseKeyBag(buf: Buffer): KeyBagRecord[] {
  const out: KeyBagRecord[] = [];
  let off = 0;
  while (off + 8 <= buf.length) {
    const tag = buf.toString('latin1', off, off + 4);
    const len = buf.readUInt32BE(off + 4);
    if (off + 8 + len > buf.length)
      throw new MooringError(
        'MALFORMED',
        `keybag record ${JSON.stringify(tag)} overruns the buffer`,
      );
    out.push({ tag, value: buf.subarray(off + 8, off + 8 + len) });
    off += 8 + len;
  }
  if (off !== buf.length) throw new MooringError('MALFORMED', 'keybag has trailing bytes');
  return out;
}
