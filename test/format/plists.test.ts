/** Reading a backup's plists: typed results, and clear errors naming the file for damage. */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, promises as fsp, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { encodeBinaryPlist, encodeXmlPlist, type PlistDict } from '../../src/protocol/plist';
import {
  encodeStatusPlist,
  readStatusPlist,
  MAX_STATUS_PLIST_BYTES,
} from '../../src/format/status-plist';
import { readInfoPlist } from '../../src/format/info-plist';
import { readManifestPlist } from '../../src/format/manifest-plist';
import { encodeKeyBagRecord, parseKeyBag } from '../../src/format/keybag';
import { isMooringError } from '../../src/util/errors';

const dir = mkdtempSync(path.join(os.tmpdir(), 'mooring-plists-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
async function file(data: Buffer | string): Promise<string> {
  const f = path.join(dir, `f${n++}.plist`);
  await fsp.writeFile(f, data);
  return f;
}

const malformed = (f: string, re?: RegExp) => (e: unknown) =>
  isMooringError(e, 'MALFORMED') &&
  e.message.includes(f) &&
  (re === undefined || re.test(e.message));

test('Status.plist: read back as written; damage is MALFORMED naming the file', async () => {
  const date = new Date(Date.UTC(2024, 0, 2, 3, 4, 5));
  const f = await file(
    encodeStatusPlist({ uuid: 'U-1', isFullBackup: true, snapshotState: 'finished', date }),
  );
  assert.deepEqual(await readStatusPlist(f), {
    snapshotState: 'finished',
    uuid: 'U-1',
    isFullBackup: true,
    date,
    backupState: 'new',
    version: '3.3',
  });
  // XML works too (LIMD-era hosts pre-create XML ones).
  const x = await file(encodeXmlPlist({ SnapshotState: 'moving' }));
  assert.deepEqual(await readStatusPlist(x), { snapshotState: 'moving' });

  const cases: Array<[Buffer | string, RegExp]> = [
    ['garbage', /not a readable plist/],
    [encodeBinaryPlist(['a']), /not a plist dict/],
    [encodeBinaryPlist({ UUID: 'x' }), /has no SnapshotState/],
    [encodeBinaryPlist({ SnapshotState: 3 }), /SnapshotState is not a string/],
    [encodeBinaryPlist({ SnapshotState: 'finished', Date: 'today' }), /Date is not a date/],
    [
      encodeBinaryPlist({ SnapshotState: 'finished', IsFullBackup: 1 }),
      /IsFullBackup is not a boolean/,
    ],
    [Buffer.alloc(MAX_STATUS_PLIST_BYTES + 1, 0x20), /more than the 65536 accepted/],
    [Buffer.alloc(0), /empty plist/],
  ];
  for (const [data, re] of cases) {
    const g = await file(data);
    await assert.rejects(readStatusPlist(g), malformed(g, re), String(re));
  }
});

test('a missing file is IO/ENOENT; a symlink or a folder is refused', async () => {
  const missing = path.join(dir, 'none.plist');
  await assert.rejects(
    readStatusPlist(missing),
    (e) => isMooringError(e, 'IO') && e.detail === 'ENOENT' && e.message.includes(missing),
  );
  const target = await file(encodeBinaryPlist({ SnapshotState: 'finished' }));
  const link = path.join(dir, 'link.plist');
  await fsp.symlink(target, link);
  await assert.rejects(readStatusPlist(link), malformed(link, /symbolic link/));
  const sub = path.join(dir, 'sub.plist');
  await fsp.mkdir(sub);
  await assert.rejects(readStatusPlist(sub), (e) => isMooringError(e) && e.message.includes(sub));
});

test('Info.plist: the identity keys; Target Identifier required', async () => {
  const f = await file(
    encodeXmlPlist({
      'Target Identifier': 'abc-123',
      'Unique Identifier': 'ABC-123',
      'Device Name': 'Phone',
      'Product Version': '17.5',
      'Last Backup Date': new Date(0),
      Applications: {},
    }),
  );
  const info = await readInfoPlist(f);
  assert.equal(info.targetIdentifier, 'abc-123');
  assert.equal(info.uniqueIdentifier, 'ABC-123');
  assert.equal(info.deviceName, 'Phone');
  assert.equal(info.productVersion, '17.5');
  assert.deepEqual(info.lastBackupDate, new Date(0));
  const bad = await file(encodeXmlPlist({ 'Device Name': 'Phone' }));
  await assert.rejects(readInfoPlist(bad), malformed(bad, /has no Target Identifier/));
  const wrong = await file(encodeXmlPlist({ 'Target Identifier': 5 }));
  await assert.rejects(readInfoPlist(wrong), malformed(wrong, /not a string/));
});

test('Manifest.plist: encryption and device; hostile nesting refused', async () => {
  const m: PlistDict = {
    IsEncrypted: true,
    ManifestKey: Buffer.alloc(44),
    Lockdown: { UniqueDeviceID: 'U', DeviceName: 'P', ProductVersion: '18.0' },
    WasPasscodeSet: true,
  };
  const info = await readManifestPlist(await file(encodeBinaryPlist(m)));
  assert.equal(info.isEncrypted, true);
  assert.equal(info.hasManifestKey, true);
  assert.equal(info.udid, 'U');
  assert.equal(info.productVersion, '18.0');
  assert.equal((await readManifestPlist(await file(encodeBinaryPlist({})))).isEncrypted, false);
  const lockdown = await file(encodeBinaryPlist({ Lockdown: 'x' }));
  await assert.rejects(readManifestPlist(lockdown), malformed(lockdown, /Lockdown is not a dict/));
  let deep: PlistDict = {};
  for (let i = 0; i < 40; i++) deep = { a: deep };
  const nested = await file(encodeXmlPlist(deep));
  await assert.rejects(
    readManifestPlist(nested),
    (e) => isMooringError(e) && e.message.includes(nested),
  );
});

test('keybag TLVs: round trip, overrun and trailing bytes refused', () => {
  const bag = Buffer.concat([
    encodeKeyBagRecord('VERS', 3),
    encodeKeyBagRecord('UUID', Buffer.alloc(16, 1)),
  ]);
  assert.deepEqual(
    parseKeyBag(bag).map((r) => [r.tag, r.value.length]),
    [
      ['VERS', 4],
      ['UUID', 16],
    ],
  );
  assert.throws(
    () => parseKeyBag(bag.subarray(0, bag.length - 1)),
    (e) => isMooringError(e, 'MALFORMED'),
  );
  assert.throws(
    () => parseKeyBag(Buffer.concat([bag, Buffer.from([1, 2])])),
    (e) => isMooringError(e, 'MALFORMED'),
  );
  assert.throws(() => encodeKeyBagRecord('bad', 1), RangeError);
});
