// Fuzzing the Bonjour TXT record readers (src/discovery/txt-auth.ts). The module promises never
// to throw on bad input at all (an advert is hostile and comes from anyone on the LAN), so the
// property here is stricter than elsewhere: no exception of any kind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  AUTH_TAG_BYTES,
  computeAuthTag,
  decodeAuthTag,
  encodeAuthTag,
  macFromInstanceName,
  macMatches,
  MAX_AUTH_TAGS,
  MAX_TXT_ENTRIES,
  MAX_TXT_ENTRY_BYTES,
  normaliseMac,
  parseTxtEntries,
  readMobdev2Txt,
  txtEntriesFromObject,
  txtMatchesHost,
} from '../../src/discovery/txt-auth';
import { fuzzParams, testTimeoutMs } from './harness';

const T = { timeout: testTimeoutMs() };
const bytes = (max: number): fc.Arbitrary<Buffer> =>
  fc.uint8Array({ maxLength: max }).map((u) => Buffer.from(u));

/** TXT strings as multicast-dns hands them over, plus the junk a hostile advert can carry. */
const txtString = fc.oneof(
  bytes(300),
  fc
    .tuple(
      fc.constantFrom(
        'identifier',
        'authTag',
        'AUTHTAG#1',
        'authtag#999',
        'authTag#1000',
        'x',
        '',
        '\u00e9',
      ),
      fc.constantFrom('=', ''),
      fc.oneof(
        bytes(20),
        fc.string({ maxLength: 20 }).map((s) => Buffer.from(s)),
      ),
    )
    .map(([k, eq, v]) => Buffer.concat([Buffer.from(k + eq), v])),
);
const rawTxt = fc.oneof(
  fc.array(txtString, { maxLength: 80 }),
  fc.anything(),
  fc.array(fc.oneof(txtString, fc.anything()), { maxLength: 10 }),
);

test('TXT parsing never throws and keeps every bound', T, () => {
  fc.assert(
    fc.property(rawTxt, fc.anything(), fc.string({ maxLength: 200 }), (raw, obj, hostId) => {
      for (const entries of [parseTxtEntries(raw), txtEntriesFromObject(obj)]) {
        assert.ok(entries.size <= MAX_TXT_ENTRIES);
        for (const [k, v] of entries) {
          assert.equal(k, k.toLowerCase());
          assert.ok(k.length > 0 && v.length < MAX_TXT_ENTRY_BYTES);
        }
        const txt = readMobdev2Txt(entries);
        assert.ok(txt.authTags.length <= MAX_AUTH_TAGS);
        for (const tag of txt.authTags) assert.equal(tag.length, AUTH_TAG_BYTES);
        assert.equal(typeof txtMatchesHost(txt, hostId), 'boolean');
      }
    }),
    fuzzParams(),
  );
});

test(
  'authTag: decode(encode(tag)) is the tag; anything else decodes to 8 bytes or nothing',
  T,
  () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 8, maxLength: 8 }).map((u) => Buffer.from(u)),
        fc.oneof(bytes(40), fc.string({ unit: 'binary', maxLength: 40 })),
        (tag, junk) => {
          assert.deepEqual(decodeAuthTag(encodeAuthTag(tag)), tag);
          assert.deepEqual(decodeAuthTag(` ${encodeAuthTag(tag).replace(/=+$/, '')}\n`), tag);
          const d = decodeAuthTag(junk);
          if (d !== undefined) {
            assert.equal(d.length, AUTH_TAG_BYTES);
            // Only the canonical text of those bytes is accepted (no stray bits, no odd padding).
            const text = (Buffer.isBuffer(junk) ? junk.toString('latin1') : junk).trim();
            assert.ok(text === encodeAuthTag(d) || text === encodeAuthTag(d).replace(/=+$/, ''));
          }
        },
      ),
      fuzzParams(),
    );
  },
);

test('an advert made for a host matches that host only', T, () => {
  fc.assert(
    fc.property(
      fc.uuid(),
      fc.uuid(),
      fc.uint8Array({ minLength: 1, maxLength: 64 }).map((u) => Buffer.from(u)),
      fc.array(fc.uint8Array({ minLength: 8, maxLength: 8 }), { maxLength: 5 }),
      (ours, other, identifier, decoys) => {
        fc.pre(ours !== other);
        const raw = [
          Buffer.concat([Buffer.from('identifier='), identifier]),
          ...decoys.map((d, i) => Buffer.from(`authTag#${i}=${encodeAuthTag(Buffer.from(d))}`)),
          Buffer.from(
            `authTag#${decoys.length}=${encodeAuthTag(computeAuthTag(ours, identifier))}`,
          ),
        ];
        const txt = readMobdev2Txt(parseTxtEntries(raw));
        assert.equal(txtMatchesHost(txt, ours), true);
        assert.equal(txtMatchesHost(txt, other), false); // a 2^-64 chance per decoy set, in theory
      },
    ),
    fuzzParams(0.3),
  );
});

test('instance-name MACs: canonical MACs round-trip, anything else is undefined', T, () => {
  fc.assert(
    fc.property(
      fc
        .uint8Array({ minLength: 6, maxLength: 6 })
        .map((u) => [...u].map((b) => b.toString(16).padStart(2, '0')).join(':')),
      fc.string({ maxLength: 40 }),
      fc.anything(),
      (mac, junk, obj) => {
        const upper = mac.toUpperCase();
        assert.equal(macFromInstanceName(`${upper}@fe80::1%en0`), mac.toLowerCase());
        assert.ok(macMatches(`${mac}@x`, upper));
        const m = macFromInstanceName(junk);
        if (m !== undefined) assert.match(m, /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
        assert.ok(normaliseMac(obj) === undefined || typeof obj === 'string');
      },
    ),
    fuzzParams(),
  );
});
