/**
 * H8c: the shape checks shared by the encryption routes and the Electron IPC bridge: only
 * {action, password?, oldPassword?} with passwords of 1..1024 characters without NUL, the action
 * deciding which password may come, and no message ever quoting a password.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  checkEncryptionRequest,
  checkStorePasswordBody,
  MAX_API_PASSWORD_CHARS,
} from '../../src/api/encryption-routes';
import { checkCall } from '../../src/electron/ipc';

const UDID = '00008120-001A2B3C4D5E6F70';
const SECRET = 'secret-value-never-echoed';
const fail = (m: string): Error => new Error(m);

function refused(fn: () => unknown, re: RegExp): void {
  let err: Error | undefined;
  try {
    fn();
  } catch (e) {
    err = e as Error;
  }
  assert.ok(err, `expected a refusal matching ${re}`);
  assert.match(err.message, re);
  assert.ok(!err.message.includes(SECRET), `the message quotes a password: ${err.message}`);
}

describe('encryption request checks', () => {
  it('accepts the three actions with the passwords each takes', () => {
    assert.deepEqual(checkEncryptionRequest({ action: 'enable' }, fail), { action: 'enable' });
    assert.deepEqual(checkEncryptionRequest({ action: 'enable', password: SECRET }, fail), {
      action: 'enable',
      password: SECRET,
    });
    assert.deepEqual(
      checkEncryptionRequest({ action: 'change', password: 'n', oldPassword: SECRET }, fail),
      { action: 'change', password: 'n', oldPassword: SECRET },
    );
    assert.deepEqual(checkEncryptionRequest({ action: 'disable', oldPassword: SECRET }, fail), {
      action: 'disable',
      oldPassword: SECRET,
    });
    assert.equal(checkStorePasswordBody({ password: SECRET }, fail), SECRET);
  });

  it('refuses anything else without quoting a password', () => {
    refused(() => checkEncryptionRequest(null, fail), /expected a JSON object/);
    refused(() => checkEncryptionRequest([SECRET], fail), /expected a JSON object/);
    refused(() => checkEncryptionRequest({ action: SECRET }, fail), /action: expected/);
    refused(() => checkEncryptionRequest({ action: 'enable', pw: SECRET }, fail), /"pw"/);
    refused(
      () => checkEncryptionRequest({ action: 'enable', oldPassword: SECRET }, fail),
      /new password only/,
    );
    refused(
      () => checkEncryptionRequest({ action: 'disable', password: SECRET }, fail),
      /current password only/,
    );
    refused(
      () =>
        checkEncryptionRequest(
          { action: 'enable', password: SECRET + 'x'.repeat(MAX_API_PASSWORD_CHARS) },
          fail,
        ),
      /1 to 1024/,
    );
    refused(
      () => checkEncryptionRequest({ action: 'enable', password: `${SECRET}\u0000` }, fail),
      /NUL/,
    );
    refused(
      () => checkStorePasswordBody({ password: SECRET, x: 1 }, fail),
      /expected a JSON object/,
    );
    refused(() => checkStorePasswordBody({ password: '' }, fail), /1 to 1024/);
  });

  it('checks the same over the desktop app bridge', () => {
    assert.deepEqual(checkCall('setEncryption', [UDID, { action: 'enable' }]), {
      method: 'setEncryption',
      args: [UDID, { action: 'enable' }],
    });
    assert.deepEqual(checkCall('storeBackupPassword', [UDID, SECRET]).args, [UDID, SECRET]);
    assert.deepEqual(checkCall('recoverySheet', [UDID]).args, [UDID]);
    refused(() => checkCall('setEncryption', [UDID, { action: 'enable', x: SECRET }]), /"x"/);
    refused(() => checkCall('setEncryption', [UDID]), /expected 2 argument/);
    refused(() => checkCall('storeBackupPassword', [UDID, 7]), /password/);
    refused(() => checkCall('storeBackupPassword', ['not-a-udid', SECRET]), /udid/);
    refused(() => checkCall('recoverySheet', [UDID, SECRET]), /expected 1 argument/);
  });
});
