import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LOCKDOWN_ERRORS, isLockdownError, lockdownError } from '../../src/lockdown/errors';

test('InvalidHostID becomes a PAIRING error telling the user to pair again', () => {
  const e = lockdownError('InvalidHostID', { request: 'StartSession' });
  assert.equal(e.code, 'PAIRING');
  assert.equal(e.detail, 'InvalidHostID');
  assert.match(
    e.message,
    /no longer trusted by the device: connect it by USB, unlock it and pair again \(mooring pair\)/,
  );
  assert.match(e.message, /lockdownd StartSession: InvalidHostID/);
  assert.ok(isLockdownError(e, 'InvalidHostID'));
  assert.ok(!isLockdownError(e, 'PasswordProtected'));
});

test('each known error has a code and an actionable message', () => {
  const cases: Array<[string, string, RegExp]> = [
    ['PasswordProtected', 'DEVICE_ERROR', /Unlock the device and try again/],
    ['UserDeniedPairing', 'PAIRING', /Don't Trust/],
    ['PairingDialogResponsePending', 'PAIRING', /Trust This Computer/],
    ['SessionInactive', 'PROTOCOL', /reconnect and try again/],
    ['PairingProhibitedOverThisConnection', 'PAIRING', /by USB/],
    ['MissingPairRecord', 'PAIRING', /pair again/],
    ['EscrowLocked', 'DEVICE_ERROR', /unlock the device/],
  ];
  for (const [error, code, re] of cases) {
    const e = lockdownError(error, { request: 'Pair' });
    assert.equal(e.code, code, error);
    assert.match(e.message, re, error);
  }
  for (const [name, info] of Object.entries(LOCKDOWN_ERRORS)) {
    assert.ok(info.message.length > 20, `${name} has a real message`);
  }
});

test('service errors name the service', () => {
  const e = lockdownError('InvalidService', { request: 'StartService', service: 'com.apple.nope' });
  assert.equal(e.code, 'DEVICE_ERROR');
  assert.match(e.message, /does not offer the service com\.apple\.nope/);
});

test('unknown errors keep the raw string', () => {
  const e = lockdownError('SomethingNew', { request: 'GetValue' });
  assert.equal(e.code, 'DEVICE_ERROR');
  assert.equal(e.detail, 'SomethingNew');
  assert.match(e.message, /GetValue: SomethingNew/);
});
