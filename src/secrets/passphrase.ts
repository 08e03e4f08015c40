/**
 * A strong backup password for people who did not choose one: 6 groups of 5 characters from 30
 * symbols without look-alikes (digits 2-9, capitals without I, L, O, U), about 147 bits from the
 * OS's CSPRNG: easy to read aloud, to write on paper and to type on a phone.
 */
import crypto from 'node:crypto';

export const PASSPHRASE_SYMBOLS = '23456789ABCDEFGHJKMNPQRSTVWXYZ';
export const PASSPHRASE_GROUPS = 6;
export const PASSPHRASE_GROUP_CHARS = 5;

export function generatePassphrase(): string {
  const groups: string[] = [];
  for (let g = 0; g < PASSPHRASE_GROUPS; g++) {
    let s = '';
    for (let i = 0; i < PASSPHRASE_GROUP_CHARS; i++) {
      s += PASSPHRASE_SYMBOLS[crypto.randomInt(PASSPHRASE_SYMBOLS.length)];
    }
    groups.push(s);
  }
  return groups.join('-');
}

/** Bits of entropy of a generated passphrase (for the recovery sheet and the tests). */
export function passphraseBits(): number {
  return PASSPHRASE_GROUPS * PASSPHRASE_GROUP_CHARS * Math.log2(PASSPHRASE_SYMBOLS.length);
}
