/**
 * `mooring encryption on` against a device with a passcode: the device shows its own prompt
 * (notification_proxy: LocalAuthentication presented), Mooring tells the user and waits, and the
 * change happens only once the passcode is entered on the device. Plus the wording of every
 * refusal a device can give (backup/change-password.ts `refusal`).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { refusal } from '../../src/backup/change-password';
import { startCliSim, type CliSim } from './backup-fixture';

let cs: CliSim;

before(async () => {
  cs = await startCliSim({
    seed: 802,
    files: 5,
    bytes: 50_000,
    passcode: { kind: 'never' },
    keyBagRounds: { dpic: 1000, iter: 10 },
  });
});

after(async () => {
  await cs?.close();
});

test('the device asks for its passcode; nothing changes until it is entered', async () => {
  let entered = 0;
  let polling = true;
  const poller = (async () => {
    while (polling && entered === 0) {
      const r = (await cs.sim.ctl('enter-passcode')) as { prompts: number };
      entered += r.prompts;
      const st = (await cs.sim.ctl('status')) as { encryption: { willEncrypt: boolean } };
      // Before the passcode is entered, the device has changed nothing.
      if (entered === 0) assert.equal(st.encryption.willEncrypt, false);
      await new Promise((r) => setTimeout(r, 200));
    }
  })();
  const r = await cs.mooring(['encryption', 'on', '--udid', cs.sim.udid, '--json']);
  polling = false;
  await poller;
  assert.equal(r.code, 0, r.err + r.out);
  assert.equal(entered, 1, 'one prompt was shown and answered on the device');
  assert.match(r.err, /asking for its passcode: enter it on the device/);
  assert.equal(JSON.parse(r.out.trim().split('\n')[0]!).ok, true);
  const st = await cs.mooring(['encryption', 'status', '--udid', cs.sim.udid, '--json']);
  assert.equal(JSON.parse(st.out).encrypted, true);
});

test('every refusal says what happened and what to do', () => {
  const wrong = refusal('change', 207, 'whatever');
  assert.equal(wrong.failure, 'wrong-password');
  assert.match(wrong.message, /refused the current backup password: nothing was changed/);
  assert.equal(refusal('disable', 1, 'The password is incorrect').failure, 'wrong-password');
  const passcode = refusal('enable', 208, undefined);
  assert.equal(passcode.failure, 'passcode');
  assert.match(passcode.message, /unlock the device/);
  assert.equal(
    refusal('enable', 211, 'Backup encryption is already enabled').failure,
    'already-on',
  );
  assert.equal(refusal('disable', 211, 'Backup encryption is not enabled').failure, 'already-off');
  const other = refusal('enable', 99, 'x'.repeat(1000));
  assert.equal(other.failure, 'device-error');
  assert.ok(other.message.length < 300, 'a hostile description is cut short');
});
