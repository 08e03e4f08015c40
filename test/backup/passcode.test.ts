/**
 * The iOS 16.1+ passcode prompt after Backup, as the simulator plays it through
 * notification_proxy: entered after a second → events, then success; never entered → a clear
 * failure once our passcode deadline passes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runBackup, type BackupEvent } from '../../src/backup';
import {
  assertBackupMatches,
  listing,
  makeTarget,
  startBackupFixture,
  withSession,
} from './fixture';

test('passcode entered after a second: requested, dismissed, then the backup succeeds', async () => {
  const f = await startBackupFixture({ seed: 21, passcode: { kind: 'auto', seconds: 1 } });
  try {
    const target = await makeTarget(f);
    const events: BackupEvent[] = [];
    const result = await withSession(f, 'wifi', (session) =>
      runBackup({ session, target, onEvent: (e) => events.push(e) }),
    );
    assert.equal(result.ok, true, result.message);
    await assertBackupMatches(target, await listing(f));
    const kinds = events
      .map((e) => (e.type === 'phase' ? `phase:${e.phase}` : e.type))
      .filter((k) => k.startsWith('passcode') || k.startsWith('phase:'));
    assert.deepEqual(kinds, [
      'phase:connecting',
      'phase:locking',
      'phase:preparing',
      'passcode-requested',
      'phase:waiting-for-passcode',
      'passcode-dismissed',
      'phase:preparing',
      'phase:transferring',
      'phase:finishing',
    ]);
  } finally {
    await f.close();
  }
});

test('passcode never entered: a clear failure, not a hang', async () => {
  const f = await startBackupFixture({ seed: 22, passcode: { kind: 'never' } });
  try {
    const target = await makeTarget(f);
    const events: BackupEvent[] = [];
    const result = await withSession(f, 'usb', (session) =>
      runBackup({
        session,
        target,
        timeouts: { passcodeMs: 1000, stallNoticeMs: 200 },
        onEvent: (e) => events.push(e),
      }),
    );
    assert.equal(result.ok, false);
    assert.equal(result.failure, 'passcode');
    assert.equal(
      result.message,
      'The backup needs the passcode entered on the device: unlock it and try again',
    );
    assert.ok(events.some((e) => e.type === 'passcode-requested'));
    // The stall watchdog stays quiet while the user is being asked.
    assert.equal(events.filter((e) => e.type === 'stalled').length, 0);
  } finally {
    await f.sim.ctl('enter-passcode'); // release the simulator's pending prompt
    await f.close();
  }
});
