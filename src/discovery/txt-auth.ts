/**
 * The two rules that tie a `_apple-mobdev2._tcp` advert to a pair record (reference §8.2).
 *
 * - Legacy (iOS < 26.4): the instance name is `<wifi-mac>@…`; the MAC equals the pair record's
 *   WiFiMACAddress.
 * - iOS 26.4+: the instance name carries a private MAC, and the TXT record carries `identifier`
 *   plus one `authTag` per paired host: base64 of HMAC-SHA256(K, identifier)[0..8] with
 *   K = HKDF-SHA512(IKM = HostID as UTF-8, no salt, no info, 32 bytes). A tag names a HOST, not a
 *   device: two records sharing a HostID both match (see advert-match.ts).
 *
 * Everything here is pure and treats the advert as hostile: bounded entry counts and sizes,
 * strict base64, constant-time tag comparison, never a throw on bad input.
 */
import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';

/** Bytes of an authTag once base64-decoded. */
export const AUTH_TAG_BYTES = 8;
/** DNS limits one TXT string to 255 bytes; anything longer did not come off the wire. */
export const MAX_TXT_ENTRY_BYTES = 255;
/** TXT strings looked at per advert (a real advert has a handful). */
export const MAX_TXT_ENTRIES = 64;
/** authTag values tried per advert (one per paired host; devices remember few hosts). */
export const MAX_AUTH_TAGS = 32;
/** Longest identifier accepted (it has to fit one TXT string anyway). */
export const MAX_IDENTIFIER_BYTES = 255;
/** HostIDs are UUIDs; anything far longer is not one. */
export const MAX_HOST_ID_BYTES = 128;
/** Longest base64 text of an 8-byte tag, padded (12), with room for nothing else. */
const MAX_AUTH_TAG_TEXT = 16;

/** TXT keys (lower-cased: DNS-SD keys are case-insensitive) → raw values. */
export type TxtEntries = ReadonlyMap<string, Buffer>;

/**
 * Parses raw TXT strings (as multicast-dns delivers them: one Buffer per string) into keys and
 * raw values, RFC 6763 §6: key before the first '=', case-insensitive, first occurrence wins, a
 * string without '=' is a boolean attribute (empty value here). Non-Buffer items, empty strings,
 * over-long strings and keys that are not printable ASCII are skipped; at most MAX_TXT_ENTRIES
 * strings are read.
 */
export function parseTxtEntries(raw: unknown): TxtEntries {
  const out = new Map<string, Buffer>();
  if (!Array.isArray(raw)) return out;
  const n = Math.min(raw.length, MAX_TXT_ENTRIES);
  for (let i = 0; i < n; i++) {
    const item: unknown = raw[i];
    if (!Buffer.isBuffer(item) || item.length === 0 || item.length > MAX_TXT_ENTRY_BYTES) continue;
    const eq = item.indexOf(0x3d); // '='
    const keyBytes = eq === -1 ? item : item.subarray(0, eq);
    if (keyBytes.length === 0 || !keyBytes.every((b) => b >= 0x20 && b <= 0x7e)) continue;
    const key = keyBytes.toString('latin1').toLowerCase();
    if (out.has(key)) continue;
    out.set(key, eq === -1 ? Buffer.alloc(0) : Buffer.from(item.subarray(eq + 1)));
  }
  return out;
}

/**
 * The same, from a decoded `{key: value}` object (bonjour-service's `txt`, when the raw strings
 * are unavailable). Values become their UTF-8 bytes.
 */
export function txtEntriesFromObject(txt: unknown): TxtEntries {
  if (typeof txt !== 'object' || txt === null || Array.isArray(txt)) return new Map();
  const raw: Buffer[] = [];
  for (const [k, v] of Object.entries(txt as Record<string, unknown>).slice(0, MAX_TXT_ENTRIES)) {
    if (typeof v === 'string') raw.push(Buffer.from(`${k}=${v}`));
    else if (Buffer.isBuffer(v)) raw.push(Buffer.concat([Buffer.from(`${k}=`), v]));
    else if (v === true) raw.push(Buffer.from(k));
  }
  return parseTxtEntries(raw);
}

/** What the TXT record says for the iOS 26.4+ rule. */
export interface Mobdev2Txt {
  /** Raw `identifier` bytes, when present, non-empty and within MAX_IDENTIFIER_BYTES. */
  identifier?: Buffer;
  /** Decoded 8-byte tags from `authTag`, `authTag#0`, `authTag#1`… (malformed ones dropped). */
  authTags: Buffer[];
  /** True when any authTag key was present, even if no value decoded. */
  hasAuthTagKeys: boolean;
}

const AUTH_TAG_KEY = /^authtag(?:#\d{1,3})?$/;

/** Extracts identifier and authTags from parsed TXT entries. */
export function readMobdev2Txt(entries: TxtEntries): Mobdev2Txt {
  const id = entries.get('identifier');
  const authTags: Buffer[] = [];
  let hasAuthTagKeys = false;
  for (const [key, value] of entries) {
    if (!AUTH_TAG_KEY.test(key)) continue;
    hasAuthTagKeys = true;
    if (authTags.length >= MAX_AUTH_TAGS) continue;
    const tag = decodeAuthTag(value);
    if (tag) authTags.push(tag);
  }
  return {
    ...(id !== undefined && id.length > 0 && id.length <= MAX_IDENTIFIER_BYTES
      ? { identifier: id }
      : {}),
    authTags,
    hasAuthTagKeys,
  };
}

const ASCII_WHITESPACE = /^[\t\n\v\f\r ]+|[\t\n\v\f\r ]+$/g;
const BASE64_TEXT = /^[A-Za-z0-9+/]+={0,2}$/;

/**
 * One authTag value → its 8 bytes, or undefined. Surrounding ASCII whitespace is trimmed; the
 * rest must be canonical standard base64 (padding optional) of exactly AUTH_TAG_BYTES bytes.
 */
export function decodeAuthTag(value: Buffer | string): Buffer | undefined {
  if (value.length > MAX_AUTH_TAG_TEXT + 16) return undefined;
  const raw = Buffer.isBuffer(value) ? value : Buffer.from(value, 'utf8');
  if (!raw.every((b) => b < 0x80)) return undefined;
  const text = raw.toString('latin1').replace(ASCII_WHITESPACE, '');
  if (text.length === 0 || text.length > MAX_AUTH_TAG_TEXT || !BASE64_TEXT.test(text))
    return undefined;
  const bytes = Buffer.from(text, 'base64');
  if (bytes.length !== AUTH_TAG_BYTES) return undefined;
  // Node's decoder ignores stray bits and misplaced padding; only the canonical text counts.
  const canonical = bytes.toString('base64');
  if (text !== canonical && text !== canonical.replace(/=+$/, '')) return undefined;
  return bytes;
}

/** K = HKDF-SHA512(IKM = HostID as UTF-8, salt = empty, info = empty, L = 32). */
export function authTagKey(hostId: string): Buffer {
  return Buffer.from(hkdfSync('sha512', Buffer.from(hostId, 'utf8'), Buffer.alloc(0), '', 32));
}

/** tag = HMAC-SHA256(K, identifier)[0..8], K from authTagKey (pass a cached key to save work). */
export function computeAuthTag(hostIdOrKey: string | Buffer, identifier: Buffer | string): Buffer {
  const key = typeof hostIdOrKey === 'string' ? authTagKey(hostIdOrKey) : hostIdOrKey;
  return createHmac('sha256', key)
    .update(typeof identifier === 'string' ? Buffer.from(identifier, 'utf8') : identifier)
    .digest()
    .subarray(0, AUTH_TAG_BYTES);
}

/** The TXT value a device puts in `authTag` for a host. */
export function encodeAuthTag(tag: Buffer): string {
  return tag.toString('base64');
}

/** A HostID worth deriving a key from (non-empty, bounded). */
export function isUsableHostId(hostId: unknown): hostId is string {
  return (
    typeof hostId === 'string' &&
    hostId.length > 0 &&
    Buffer.byteLength(hostId, 'utf8') <= MAX_HOST_ID_BYTES
  );
}

/**
 * True when the advert's TXT carries a tag made for this host. `key` is authTagKey(HostID)
 * (callers with many adverts cache it per HostID).
 */
export function txtMatchesHostKey(txt: Mobdev2Txt, key: Buffer): boolean {
  if (!txt.identifier || txt.authTags.length === 0) return false;
  const expected = computeAuthTag(key, txt.identifier);
  let found = false;
  // Compare against every tag, without stopping early, in constant time per tag.
  for (const tag of txt.authTags) {
    if (tag.length === expected.length && timingSafeEqual(tag, expected)) found = true;
  }
  return found;
}

/** txtMatchesHostKey for a HostID string; false for an unusable HostID. */
export function txtMatchesHost(txt: Mobdev2Txt, hostId: string): boolean {
  if (!isUsableHostId(hostId)) return false;
  return txtMatchesHostKey(txt, authTagKey(hostId));
}

const MAC = /^[0-9a-f]{2}(?::[0-9a-f]{2}){5}$/;

/** A MAC in the canonical form lockdown uses (lower-case, colons), or undefined. */
export function normaliseMac(mac: unknown): string | undefined {
  if (typeof mac !== 'string' || mac.length > 17) return undefined;
  const m = mac.toLowerCase();
  return MAC.test(m) ? m : undefined;
}

/** The MAC before the '@' of a mobdev2 instance name (`dd:1c:79:33:2d:1c@fe80::…`), if any. */
export function macFromInstanceName(instanceName: string): string | undefined {
  const at = instanceName.indexOf('@');
  if (at <= 0 || at > 17) return undefined;
  return normaliseMac(instanceName.slice(0, at));
}

/** The legacy rule: the instance name's MAC equals the record's WiFiMACAddress (case-insensitive). */
export function macMatches(instanceName: string, recordMac: unknown): boolean {
  const advertised = macFromInstanceName(instanceName);
  const ours = normaliseMac(recordMac);
  return advertised !== undefined && ours !== undefined && advertised === ours;
}
