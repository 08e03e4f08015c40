/** The pure parts: failure messages, errno statuses, the transfer meter, Info.plist's shape. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MooringError } from '../../src/util/errors';
import {
  deviceErrorMessage,
  formatGb,
  notEnoughSpaceMessage,
  PASSCODE_MESSAGE,
} from '../../src/backup/outcome-messages';
import { deviceError } from '../../src/history/reasons';
import { dlStatusForError } from '../../src/backup/dl-status';
import { TransferMeter } from '../../src/backup/transfer-meter';
import { buildInfoPlist } from '../../src/backup/info-plist';

const noSpace = { freeBytes: undefined, purgeRequestedBytes: undefined };

test('105 names what was needed and what was free', () => {
  assert.equal(
    // The request carries the device's 2 GiB margin on top of the 1.85 GB it lacks.
    notEnoughSpaceMessage({ freeBytes: 12_300_000_000, purgeRequestedBytes: 4_000_000_000 }),
    'Not enough free space on this computer: 14.2 GB needed, 12.3 GB free',
  );
  // D48: room made after the request raised the free space, not what the backup needs.
  assert.equal(
    notEnoughSpaceMessage({
      freeBytes: 13_000_000_000,
      purgeRequestedBytes: 4_000_000_000,
      freeBytesBeforePurge: 12_300_000_000,
    }),
    'Not enough free space on this computer: 14.2 GB needed, 13.0 GB free',
  );
  assert.equal(
    notEnoughSpaceMessage({ freeBytes: 5_000_000_000, purgeRequestedBytes: 2 * 1024 ** 3 }),
    'Not enough free space on this computer: the device needs more than the 5.0 GB free',
  );
  assert.equal(
    deviceErrorMessage(105, 'Insufficient free disk space', {
      freeBytes: 5e8,
      purgeRequestedBytes: undefined,
    }),
    'Not enough free space on this computer: 0.5 GB free, and the device needs more',
  );
  assert.equal(formatGb(512e9), '512 GB');
});

test('passcode, cancel and known MBErrorDomain codes read as a human line', () => {
  assert.equal(deviceErrorMessage(208, undefined, noSpace), PASSCODE_MESSAGE);
  assert.equal(deviceErrorMessage(99, 'Passcode required', noSpace), PASSCODE_MESSAGE);
  assert.equal(
    deviceErrorMessage(202, undefined, noSpace),
    'The backup was cancelled on the device',
  );
  assert.equal(
    deviceErrorMessage(205, 'Error reading backup', noSpace),
    'The device stopped the backup: the device could not use the previous backup in this folder (damaged or incomplete); restart the device and back up again; Mooring already asked it for a full backup instead (MBErrorDomain 205: Error reading backup)',
  );
  // The engine and the history explain a code with the same words.
  assert.match(deviceErrorMessage(1, undefined, noSpace), /keychain.*\(MBErrorDomain 1\)$/);
  assert.ok(
    deviceErrorMessage(104, undefined, noSpace).includes(
      deviceError({ code: 104 })
        .message.replace(/^The device stopped the backup: /, '')
        .replace(/ \(MBErrorDomain 104\)$/, ''),
    ),
  );
  assert.equal(
    deviceErrorMessage(7, 'Something odd', noSpace),
    'The device stopped the backup with error 7: Something odd',
  );
});

test('errno → DL status as LIMD maps it, with generic text', () => {
  const e = (code: string): Error => Object.assign(new Error(`${code}: /home/someone/x`), { code });
  assert.deepEqual(dlStatusForError(e('ENOENT')), { code: -6, text: 'No such file or directory' });
  assert.deepEqual(dlStatusForError(e('ENOSPC')), { code: -15, text: 'No space left on device' });
  assert.deepEqual(dlStatusForError(e('EDQUOT')), { code: -15, text: 'Disk quota exceeded' });
  assert.deepEqual(dlStatusForError(e('EACCES')), { code: -1, text: 'Permission denied' });
  assert.deepEqual(dlStatusForError(new MooringError('UNSAFE_PATH', 'no')), {
    code: -1,
    text: 'Operation not permitted',
  });
  assert.deepEqual(dlStatusForError(new Error('weird')), { code: -1, text: 'Operation failed' });
});

test('the transfer meter throttles reports, and measures the recent rate', () => {
  let now = 1000;
  const m = new TransferMeter(() => now);
  m.setPercent(10);
  m.addBytes(1000);
  assert.deepEqual(m.take(false), {
    percent: 10,
    bytesReceived: 1000,
    filesReceived: 0,
    rateBytesPerSec: 0,
  });
  now += 100;
  m.addBytes(1000);
  assert.equal(m.take(false), undefined, 'throttled');
  m.addFile();
  const forced = m.take(true);
  assert.equal(forced?.filesReceived, 1);
  assert.equal(forced?.rateBytesPerSec, 10_000);
  assert.equal(m.take(true), undefined, 'nothing changed');
  now += 10_000;
  m.addBytes(5000);
  now += 1000;
  m.addBytes(5000);
  assert.equal(m.take(false)?.rateBytesPerSec, 5000, 'old samples leave the window');
});

test('progress meter: a block every millisecond (samples merged) still gives the true rate', () => {
  let now = 0;
  const m = new TransferMeter(() => now);
  for (let i = 0; i < 20_000; i++) {
    m.addBytes(32_768);
    now += 1;
  }
  now -= 1;
  // 32 KiB per ms over the last 5 s window = 32,768,000 B/s, whatever samples were merged.
  const rate = m.take(true)?.rateBytesPerSec ?? 0;
  assert.ok(Math.abs(rate - 32_768_000) / 32_768_000 < 0.03, `rate ${rate}`);
  assert.equal(m.bytesReceived, 20_000 * 32_768);
});

test('Info.plist: apps with SINF and metadata, identity keys, optional keys only when present', () => {
  const sinf = Buffer.from('sinf');
  const meta = Buffer.from('meta');
  const info = buildInfoPlist({
    udid: 'abcdef0123456789abcdef0123456789abcdef01',
    values: {
      DeviceName: 'Phone',
      ProductType: 'iPhone15,2',
      ProductVersion: '17.5',
      BuildVersion: '21F79',
      SerialNumber: 'S',
    },
    itunesSettings: {},
    itunesVersion: '10.0.1',
    apps: [
      { CFBundleIdentifier: 'a.b', ApplicationSINF: sinf, iTunesMetadata: meta },
      { CFBundleIdentifier: 'c.d' },
      { nope: 1 },
    ],
    itunesFiles: {},
    ibooksData: undefined,
    now: new Date(0),
    guid: 'G',
  });
  assert.deepEqual(info.Applications, { 'a.b': { ApplicationSINF: sinf, iTunesMetadata: meta } });
  assert.deepEqual(info['Installed Applications'], ['a.b', 'c.d']);
  assert.equal(info['Unique Identifier'], 'ABCDEF0123456789ABCDEF0123456789ABCDEF01');
  assert.equal(info['Display Name'], 'Phone');
  assert.equal('ICCID' in info, false);
  assert.equal('iBooks Data 2' in info, false);
});
