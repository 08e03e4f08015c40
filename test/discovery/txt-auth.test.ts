/**
 * The advert rules of reference §8.2, checked against tag values published with two
 * independent implementations (a Rust host library and a Python one), plus hostile TXT input.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  AUTH_TAG_BYTES,
  MAX_AUTH_TAGS,
  MAX_TXT_ENTRIES,
  authTagKey,
  computeAuthTag,
  decodeAuthTag,
  encodeAuthTag,
  macFromInstanceName,
  macMatches,
  parseTxtEntries,
  readMobdev2Txt,
  txtEntriesFromObject,
  txtMatchesHost,
} from '../../src/discovery/txt-auth';
import { authTxtStrings, bonjourIdentifier } from '../../src/sim/bonjour';

const txt = (...entries: string[]): Buffer[] => entries.map((e) => Buffer.from(e, 'latin1'));

describe('authTag derivation', () => {
  it('matches published vectors (HKDF-SHA512 → HMAC-SHA256, first 8 bytes)', () => {
    assert.equal(
      encodeAuthTag(
        computeAuthTag(
          '11111111-2222-3333-4444-555555555555',
          '2BE6E510-0325-4365-923E-B14C6F57DB3A',
        ),
      ),
      'DNKInlok1wk=',
    );
    assert.equal(
      encodeAuthTag(
        computeAuthTag('00112233-4455-6677-8899-AABBCCDDEEFF', 'unit-test-bonjour-identifier'),
      ),
      'xdSd/bWDo4g=',
    );
  });

  it('derives a 32-byte key and accepts a cached key in place of the HostID', () => {
    const key = authTagKey('HOST');
    assert.equal(key.length, 32);
    assert.deepEqual(computeAuthTag(key, 'id'), computeAuthTag('HOST', 'id'));
    assert.equal(computeAuthTag(key, 'id').length, AUTH_TAG_BYTES);
  });
});

describe('TXT parsing', () => {
  it('splits at the first "=", lower-cases keys, keeps the first duplicate and raw value bytes', () => {
    const binary = Buffer.concat([Buffer.from('identifier='), Buffer.from([0, 0xff, 0x3d, 0x80])]);
    const e = parseTxtEntries([binary, ...txt('AuthTag=a=b', 'authtag=second', 'flag')]);
    assert.deepEqual(e.get('identifier'), Buffer.from([0, 0xff, 0x3d, 0x80]));
    assert.equal(e.get('authtag')!.toString(), 'a=b');
    assert.equal(e.get('flag')!.length, 0);
  });

  it('skips hostile strings and reads a bounded number of them', () => {
    const e = parseTxtEntries([
      'not a buffer',
      42,
      null,
      Buffer.alloc(0),
      Buffer.from('=novalue'),
      Buffer.concat([Buffer.from([0x01, 0x02]), Buffer.from('=x')]),
      Buffer.from(`big=${'x'.repeat(300)}`),
      Buffer.from('ok=1'),
    ]);
    assert.deepEqual([...e.keys()], ['ok']);
    const many = Array.from({ length: 10_000 }, (_, i) => Buffer.from(`k${i}=v`));
    assert.equal(parseTxtEntries(many).size, MAX_TXT_ENTRIES);
    assert.equal(parseTxtEntries('string').size, 0);
    assert.equal(parseTxtEntries(undefined).size, 0);
  });

  it('reads a decoded object when the raw strings are missing', () => {
    const e = txtEntriesFromObject({ identifier: 'abc', authTag: 'DNKInlok1wk=', n: 5 });
    assert.equal(e.get('identifier')!.toString(), 'abc');
    assert.equal(e.get('authtag')!.toString(), 'DNKInlok1wk=');
    assert.equal(e.has('n'), false);
    assert.equal(txtEntriesFromObject(null).size, 0);
    assert.equal(txtEntriesFromObject(['x']).size, 0);
  });
});

describe('authTag values', () => {
  it('decodes canonical base64 of 8 bytes, trimming ASCII whitespace', () => {
    assert.equal(decodeAuthTag(' \tDNKInlok1wk=\r\n')?.toString('base64'), 'DNKInlok1wk=');
    assert.equal(decodeAuthTag('DNKInlok1wk')?.toString('base64'), 'DNKInlok1wk=');
  });

  it('refuses everything else', () => {
    for (const bad of [
      '',
      '   ',
      '!!!',
      'AA==', // 1 byte
      'xdSd/bWDow==', // 7 bytes
      'xdSd/bWDo4gA', // 9 bytes
      'xdSd/bWDo4g=garbage',
      'xdSd/bWDo4g=!',
      'DNKInlok1wl=', // non-canonical trailing bits
      'DNKI nlok1wk=',
      'x'.repeat(256),
      '☃☃☃☃',
      'DNKInlok1wk=\u00a0',
    ]) {
      assert.equal(decodeAuthTag(bad), undefined, JSON.stringify(bad));
    }
  });
});

describe('matching a TXT record to a host', () => {
  const HOST = '11111111-2222-3333-4444-555555555555';
  const ID = '2BE6E510-0325-4365-923E-B14C6F57DB3A';

  it('finds our tag among several, under authTag, authTag#N and any key case', () => {
    const t = readMobdev2Txt(
      parseTxtEntries(
        txt(
          `identifier=${ID}`,
          'authTag=AAAAAAAAAAA=',
          'AUTHTAG#1=junk',
          'authTag#2= DNKInlok1wk= ',
        ),
      ),
    );
    assert.equal(t.hasAuthTagKeys, true);
    assert.equal(t.authTags.length, 2, 'the malformed tag is dropped');
    assert.equal(txtMatchesHost(t, HOST), true);
    assert.equal(txtMatchesHost(t, 'ANOTHER-HOST'), false);
  });

  it('values are case-sensitive: another identifier does not match', () => {
    const t = readMobdev2Txt(
      parseTxtEntries(txt(`identifier=${ID.toLowerCase()}`, 'authTag=DNKInlok1wk=')),
    );
    assert.equal(txtMatchesHost(t, HOST), false);
  });

  it('needs an identifier, a tag, and a usable HostID', () => {
    const noId = readMobdev2Txt(parseTxtEntries(txt('authTag=DNKInlok1wk=')));
    assert.equal(noId.identifier, undefined);
    assert.equal(txtMatchesHost(noId, HOST), false);
    const noTag = readMobdev2Txt(parseTxtEntries(txt(`identifier=${ID}`)));
    assert.equal(noTag.hasAuthTagKeys, false);
    assert.equal(txtMatchesHost(noTag, HOST), false);
    const ok = readMobdev2Txt(parseTxtEntries(txt(`identifier=${ID}`, 'authTag=DNKInlok1wk=')));
    assert.equal(txtMatchesHost(ok, ''), false);
    assert.equal(txtMatchesHost(ok, 'x'.repeat(129)), false);
    assert.equal(txtMatchesHost(ok, HOST), true);
  });

  it('ignores keys that only look like authTag, and bounds the tags tried', () => {
    const t = readMobdev2Txt(
      parseTxtEntries(txt(`identifier=${ID}`, 'authTag#x=DNKInlok1wk=', 'authTagX=DNKInlok1wk=')),
    );
    assert.equal(t.hasAuthTagKeys, false);
    assert.equal(txtMatchesHost(t, HOST), false);
    const flood = readMobdev2Txt(
      parseTxtEntries([
        Buffer.from(`identifier=${ID}`),
        ...Array.from({ length: 60 }, (_, i) => Buffer.from(`authTag#${i}=AAAAAAAAAAA=`)),
        Buffer.from('authTag#99=DNKInlok1wk='),
      ]),
    );
    assert.equal(flood.authTags.length, MAX_AUTH_TAGS);
    assert.equal(txtMatchesHost(flood, HOST), false, 'a tag past the bounds is never read');
  });

  it('the simulator advertises tags that this rule accepts, one per host', () => {
    const id = bonjourIdentifier('00008120-001A2B3C4D5E6F70');
    assert.match(id, /^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$/);
    const strings = authTxtStrings(id, ['HOST-A', 'HOST-B']);
    assert.deepEqual(
      strings.map((s) => s.toString().split('=')[0]),
      ['identifier', 'authTag', 'authTag#1'],
    );
    const t = readMobdev2Txt(parseTxtEntries(strings));
    assert.equal(txtMatchesHost(t, 'HOST-A'), true);
    assert.equal(txtMatchesHost(t, 'HOST-B'), true);
    assert.equal(txtMatchesHost(t, 'HOST-C'), false);
  });
});

describe('the MAC rule', () => {
  it('reads the MAC before the "@" and compares case-insensitively', () => {
    assert.equal(macFromInstanceName('DD:1C:79:33:2D:1C@fe80::1'), 'dd:1c:79:33:2d:1c');
    assert.equal(macMatches('dd:1c:79:33:2d:1c@fe80::ec5d', 'DD:1C:79:33:2D:1C'), true);
    assert.equal(macMatches('dd:1c:79:33:2d:1d@x', 'dd:1c:79:33:2d:1c'), false);
  });

  it('refuses names without a well-formed MAC before an "@", and records without one', () => {
    for (const name of [
      'dd:1c:79:33:2d:1c',
      '@dd:1c:79:33:2d:1c',
      '1:2:3:4:5:6@x',
      'not-a-mac@x',
      'dd-1c-79-33-2d-1c@x',
      'dd:1c:79:33:2d:1c:00@x',
      `${'a'.repeat(5000)}@x`,
    ]) {
      assert.equal(macFromInstanceName(name), undefined, name);
    }
    assert.equal(macMatches('dd:1c:79:33:2d:1c@x', undefined), false);
    assert.equal(macMatches('dd:1c:79:33:2d:1c@x', 42), false);
  });
});
