import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  isValidPairRecordId,
  normaliseUdid,
  udidsMatch,
  usbSerialForUdid,
} from '../../../src/protocol/usbmux';

test('24-character serials get the lockdownd dash after the 8th character', () => {
  assert.equal(normaliseUdid('00008030001D29E20E62802E'), '00008030-001D29E20E62802E');
  assert.equal(usbSerialForUdid('00008030-001D29E20E62802E'), '00008030001D29E20E62802E');
});

test('40-character legacy UDIDs are unchanged; the all-f placeholder takes the DeviceID', () => {
  const legacy = 'a1b2c3d4e5f60718293a4b5c6d7e8f9012345678';
  assert.equal(normaliseUdid(legacy, 5), legacy);
  assert.equal(usbSerialForUdid(legacy), legacy);
  assert.equal(normaliseUdid('f'.repeat(40), 0x1234), 'f'.repeat(32) + '00001234');
  assert.equal(normaliseUdid('F'.repeat(40), 7), 'F'.repeat(32) + '00000007');
  assert.equal(normaliseUdid('f'.repeat(40)), 'f'.repeat(40));
});

test('udidsMatch ignores dashes and case', () => {
  assert.ok(udidsMatch('00008030-001D29E20E62802E', '00008030001d29e20e62802e'));
  assert.ok(!udidsMatch('00008030-001D29E20E62802E', '00008030-001D29E20E62802F'));
});

test('pair record ids that could leave the directory are refused', () => {
  assert.ok(isValidPairRecordId('00008030-001D29E20E62802E'));
  assert.ok(isValidPairRecordId('a1b2c3d4e5f60718293a4b5c6d7e8f9012345678'));
  for (const bad of [
    '',
    '../etc/passwd',
    'a/b',
    '..',
    '.hidden',
    'a\\b',
    'x\0y',
    'a'.repeat(129),
    'a..b',
  ]) {
    assert.equal(isValidPairRecordId(bad), false, JSON.stringify(bad));
  }
});
