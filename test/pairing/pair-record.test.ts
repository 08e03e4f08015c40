import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateDeviceKeyPair, generatePairingCertificates } from '../../src/pairing/certificates';
import {
  MAX_PAIR_RECORD_BYTES,
  PairRecord,
  newHostId,
  pairRecordForDevice,
  pairRecordToPlist,
  pairRequestRecord,
  parsePairRecord,
  serializePairRecord,
} from '../../src/pairing/pair-record';
import { encodeBinaryPlist, encodeXmlPlist } from '../../src/protocol/plist';
import type { PlistDict, PlistValue } from '../../src/protocol/plist';
import { MooringError, isMooringError } from '../../src/util/errors';

const UDID = '00008030-001A2D3C4E5F802E';
const dir = mkdtempSync(join(tmpdir(), 'mooring-pairrec-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const device = generateDeviceKeyPair();
const certificates = generatePairingCertificates(device.publicKeyPkcs1Pem);
const record = pairRecordForDevice({
  certificates,
  hostId: newHostId(),
  systemBuid: '3A5F1C2B-7E4D-4C8A-9B1F-0D2E3F4A5B6C',
  wifiMacAddress: 'dd:1c:79:33:2d:1c',
  escrowBag: Buffer.from('escrow-bag-bytes'),
});

/** The record's plist with `edit` applied, as XML bytes. */
function edited(edit: (d: PlistDict) => void, base: PairRecord = record): Buffer {
  const d = pairRecordToPlist(base);
  edit(d);
  return encodeXmlPlist(d);
}

const pairingError = (pattern: RegExp) => (e: unknown) => {
  assert.ok(isMooringError(e, 'PAIRING'), String(e));
  assert.match((e as Error).message, pattern);
  return true;
};

test('serialize → parse round-trips, in XML and binary', () => {
  assert.deepEqual(parsePairRecord(serializePairRecord(record), UDID), record);
  assert.deepEqual(parsePairRecord(encodeBinaryPlist(pairRecordToPlist(record))), record);
  const withUdid = { ...record, UDID };
  assert.deepEqual(parsePairRecord(serializePairRecord(withUdid)), withUdid);
});

test('XML keys come in the order libimobiledevice writes them', () => {
  const xml = serializePairRecord({ ...record, UDID }).toString('utf8');
  assert.match(xml, /^<\?xml version="1\.0" encoding="UTF-8"\?>/);
  const keys = [...xml.matchAll(/<key>([^<]+)<\/key>/g)].map((m) => m[1]);
  assert.deepEqual(keys, [
    'DeviceCertificate',
    'HostPrivateKey',
    'HostCertificate',
    'RootPrivateKey',
    'RootCertificate',
    'SystemBUID',
    'HostID',
    'EscrowBag',
    'WiFiMACAddress',
    'UDID',
  ]);
  // Certificates and keys are stored as data holding PEM text.
  assert.ok(record.HostPrivateKey.toString().startsWith('-----BEGIN PRIVATE KEY-----'));
  assert.ok(record.DeviceCertificate.toString().startsWith('-----BEGIN CERTIFICATE-----'));
});

test("libplist (libimobiledevice's and usbmuxd's codec) reads our record, and we read its output", () => {
  const xmlPath = join(dir, 'rec.plist');
  writeFileSync(xmlPath, serializePairRecord(record));
  const binPath = join(dir, 'rec.bin');
  execFileSync('plistutil', ['-i', xmlPath, '-o', binPath, '-f', 'bin']);
  assert.equal(readFileSync(binPath).subarray(0, 8).toString('latin1'), 'bplist00');
  assert.deepEqual(parsePairRecord(readFileSync(binPath)), record);
  const backPath = join(dir, 'back.plist');
  execFileSync('plistutil', ['-i', binPath, '-o', backPath, '-f', 'xml']);
  assert.deepEqual(parsePairRecord(readFileSync(backPath)), record);
});

test('optional keys are optional; unknown extra keys are tolerated', () => {
  const minimal = pairRecordForDevice({ certificates, hostId: 'H', systemBuid: 'B' });
  assert.equal('EscrowBag' in minimal || 'WiFiMACAddress' in minimal || 'UDID' in minimal, false);
  assert.deepEqual(parsePairRecord(serializePairRecord(minimal)), minimal);
  const extra = edited((d) => {
    d.HostName = 'my-mac';
    d.Nested = { a: [1, 2] };
  });
  assert.deepEqual(parsePairRecord(extra), record);
});

test('a missing key names the key, the device and the fix', () => {
  for (const key of [
    'DeviceCertificate',
    'HostCertificate',
    'HostPrivateKey',
    'RootCertificate',
    'RootPrivateKey',
    'HostID',
    'SystemBUID',
  ]) {
    const bytes = edited((d) => delete d[key]);
    assert.throws(
      () => parsePairRecord(bytes, UDID),
      (e: unknown) => {
        assert.ok(isMooringError(e, 'PAIRING'));
        assert.equal(
          (e as Error).message,
          `pair record for ${UDID} is missing ${key}: pair the device again`,
        );
        return true;
      },
    );
  }
  // Without a udid argument the record's own UDID names the device, else "this device".
  const noHost = { ...record, UDID: 'FROM-RECORD' };
  assert.throws(
    () => parsePairRecord(edited((d) => delete d.HostID, noHost)),
    pairingError(/^pair record for FROM-RECORD is missing HostID/),
  );
  assert.throws(
    () => parsePairRecord(edited((d) => delete d.HostID)),
    pairingError(/^pair record for this device is missing HostID/),
  );
});

test('ill-typed and empty values are refused', () => {
  const cases: [string, PlistValue, RegExp][] = [
    ['HostID', Buffer.from('abc'), /has HostID of type data \(expected string\)/],
    [
      'HostCertificate',
      certificates.hostCertPem,
      /has HostCertificate of type string \(expected data\)/,
    ],
    ['RootPrivateKey', 7, /has RootPrivateKey of type number \(expected data\)/],
    ['SystemBUID', ['x'], /has SystemBUID of type array/],
    ['EscrowBag', 'bag', /has EscrowBag of type string \(expected data\)/],
    ['WiFiMACAddress', { a: 1 }, /has WiFiMACAddress of type dict/],
    ['UDID', new Date(0), /has UDID of type date/],
    ['HostID', '  ', /has an empty HostID/],
  ];
  for (const [key, value, pattern] of cases) {
    assert.throws(
      () =>
        parsePairRecord(
          edited((d) => (d[key] = value)),
          UDID,
        ),
      pairingError(pattern),
      key,
    );
  }
});

test('unreadable or mismatched certificates and keys are caught at parse time', () => {
  const junkCert = Buffer.from('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
  assert.throws(
    () => parsePairRecord(edited((d) => (d.DeviceCertificate = junkCert))),
    pairingError(/has an unreadable DeviceCertificate/),
  );
  assert.throws(
    () => parsePairRecord(edited((d) => (d.RootCertificate = Buffer.from('nope')))),
    pairingError(/has an unreadable RootCertificate/),
  );
  assert.throws(
    () => parsePairRecord(edited((d) => (d.HostPrivateKey = Buffer.from('nope')))),
    pairingError(/has an unreadable HostPrivateKey/),
  );
  assert.throws(
    () => parsePairRecord(edited((d) => (d.HostPrivateKey = record.RootPrivateKey))),
    pairingError(/has a HostPrivateKey that does not match its HostCertificate/),
  );
  assert.throws(
    () => parsePairRecord(edited((d) => (d.RootPrivateKey = Buffer.from(device.privateKeyPem)))),
    pairingError(/has a RootPrivateKey that does not match its RootCertificate/),
  );
});

test('garbage, truncated, oversized and non-dict input gives a clear PAIRING error', () => {
  assert.throws(
    () => parsePairRecord(Buffer.from('definitely not a plist'), UDID),
    pairingError(
      new RegExp(
        `^pair record for ${UDID} is not a readable property list: pair the device again$`,
      ),
    ),
  );
  assert.throws(
    () => parsePairRecord(Buffer.alloc(0)),
    pairingError(/is not a readable property list/),
  );
  assert.throws(() => parsePairRecord(encodeXmlPlist(['a'])), pairingError(/is not a dictionary/));
  assert.throws(() => parsePairRecord(encodeXmlPlist('str')), pairingError(/is not a dictionary/));
  assert.throws(
    () => parsePairRecord(Buffer.alloc(MAX_PAIR_RECORD_BYTES + 1, 0x20)),
    pairingError(/more than the 1048576-byte limit/),
  );
  const xml = serializePairRecord(record);
  const bin = encodeBinaryPlist(pairRecordToPlist(record));
  for (const full of [xml, bin]) {
    for (let len = 0; len < full.length; len += 61) {
      assert.throws(
        () => parsePairRecord(full.subarray(0, len)),
        (e) => isMooringError(e, 'PAIRING'),
        `prefix ${len}`,
      );
    }
  }
  // Random bytes (seeded), some dressed up as a binary plist: always a PAIRING error, never a crash.
  let seed = 12345;
  const rnd = (): number => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) / 0x1000000;
  for (let i = 0; i < 500; i++) {
    const b = Buffer.alloc(1 + Math.floor(rnd() * 200));
    for (let j = 0; j < b.length; j++) b[j] = Math.floor(rnd() * 256);
    if (i % 2) Buffer.from('bplist00').copy(b);
    try {
      parsePairRecord(b);
      assert.fail('random bytes parsed as a pair record');
    } catch (e) {
      assert.ok(e instanceof MooringError && e.code === 'PAIRING', String(e));
    }
  }
});

test('the Pair request carries the public half only', () => {
  const req = pairRequestRecord(record);
  assert.deepEqual(Object.keys(req), [
    'DeviceCertificate',
    'HostCertificate',
    'RootCertificate',
    'SystemBUID',
    'HostID',
  ]);
  assert.equal(req.DeviceCertificate, record.DeviceCertificate);
  assert.equal(req.HostID, record.HostID);
  const text = encodeXmlPlist(req).toString();
  assert.ok(!text.includes('PrivateKey'));
  assert.ok(
    !text.includes(Buffer.from('-----BEGIN PRIVATE KEY-----').toString('base64').slice(0, 20)),
  );
});

test('newHostId is an upper-case random UUID', () => {
  const a = newHostId();
  assert.match(a, /^[0-9A-F]{8}-[0-9A-F]{4}-4[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}$/);
  assert.notEqual(a, newHostId());
});
