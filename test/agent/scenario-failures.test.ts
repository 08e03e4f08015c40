/**
 * Issue 4 acceptance, failures the user must hear about: a device that leaves the Wi-Fi network
 * in the middle of a scheduled backup (CONNECTION_LOST with the time it tries again; the last
 * backup untouched, byte for byte; once the device is back the status shows the retry scheduled,
 * and the automatic retry — `retry-after` shortened for the test — succeeds), and a device that no longer trusts this computer (PAIRING_INVALID, "Pairing
 * no longer valid" with its fix, which works: pair again and the backup succeeds).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { AttemptRow } from '../../src/history';
import { fingerprint, Scenario, treeNames } from '../helpers/agent-harness';
import { mooring } from '../cli/run-cli';

describe('mooring agent: a device leaves Wi-Fi mid-backup; a pairing is revoked', () => {
  let s: Scenario;
  const firstOk = new Map<string, AttemptRow>();

  before(async () => {
    s = await Scenario.start({
      sims: [
        { name: 'roamer', transport: 'wifi', wifiHost: '127.0.0.4', seed: 421 },
        { name: 'revoked', transport: 'usb', seed: 422 },
      ],
      startAgent: false,
    });
    // The phone forgot this computer (Settings › Reset Location & Privacy) before the agent ran.
    const r = (await s.sim('revoked').ctl('revoke-pairing')) as { revoked: number };
    assert.equal(r.revoked, 1);
    await s.startAgent();
    const ok = await s.waitForAttempt(
      s.udid('roamer'),
      'the first backup',
      (a) => a.outcome === 'success',
    );
    firstOk.set('roamer', ok);
  });
  after(async () => {
    await s?.close();
  });

  it('a device that leaves Wi-Fi mid-backup: CONNECTION_LOST, the last backup intact, then the retry succeeds', async () => {
    const udid = s.udid('roamer');
    const sim = s.sim('roamer');
    const latest = s.latestDir(udid);
    const before = await fingerprint(latest);
    const snapsBefore = await s.snapshots(udid);
    assert.equal(snapsBefore.length, 1);

    // New content, and the device holds the backup open before its first message, so it is
    // certainly in the middle of one when it walks out of the network. The backup is a
    // scheduled one (a short interval for this device), so the agent owes it a retry.
    await sim.ctl('mutate', { add: 5, modify: 3, delete: 1 });
    // Long enough to outlive the test's reaction; not longer: the simulator's timer keeps
    // this test process alive until it ends.
    await sim.ctl('fault', { name: 'delayFirstMessageMs', value: '10000' });
    s.simLogs.get('roamer')!.length = 0;
    const set = await s.cli('config', 'set', 'interval', '10s', '--udid', udid);
    assert.equal(set.code, 0, set.err);
    // The first retry after a failure, normally 15 minutes later.
    const retryAfter = await s.cli('config', 'set', 'retry-after', '20s');
    assert.equal(retryAfter.code, 0, retryAfter.err);
    const attemptId = await s.waitFor('the scheduled backup to be running', async () => {
      const d = await s.device(udid);
      return d.running !== null && s.simSaw('roamer', 'mobilebackup2.request', { name: 'Backup' })
        ? d.running.attemptId
        : undefined;
    });
    assert.ok(attemptId > firstOk.get('roamer')!.id);
    await sim.ctl('offline');

    const lost = await s.waitForAttempt(
      udid,
      'the failed attempt',
      (a) => a.id === attemptId && a.outcome !== 'running',
    );
    assert.equal(lost.outcome, 'failure', JSON.stringify(lost));
    assert.equal(lost.reasonCode, 'CONNECTION_LOST', JSON.stringify(lost));
    assert.equal(lost.transport, 'wifi');
    assert.equal(lost.trigger, 'schedule');
    assert.equal(lost.snapshotId, null);
    const note = (await s.notifications(udid)).find((n) => n.attemptId === attemptId);
    assert.ok(note, 'a notification for the failed attempt');
    assert.equal(note.reasonCode, 'CONNECTION_LOST');
    assert.equal(note.severity, 'warning');
    assert.match(
      note.message,
      /^The device left the Wi-Fi network during the backup; the last complete backup is untouched/,
    );
    assert.match(note.fixHint ?? '', /same Wi-Fi network/);

    // The last backup is exactly as it was; nothing of the failed one is left or listed.
    assert.deepEqual(await fingerprint(latest), before, 'the last complete backup is unchanged');
    assert.deepEqual(await treeNames(s.stagingDir(udid)), [], 'no staging left');
    assert.deepEqual(await s.snapshots(udid), snapsBefore);
    const v = await mooring(
      'verify',
      '--dest',
      s.backupDir,
      '--udid',
      udid,
      '--json',
      '--data-dir',
      s.dataDir,
    );
    assert.equal(v.code, 0, v.err);

    assert.match(note.message, /; Mooring tries again /);
    const retryAt = Number(note.params?.retryAt);
    assert.ok(retryAt > lost.endedAt!, 'a retry is scheduled');
    await s.waitFor('the device gone from the network', async () => {
      const d = await s.device(udid);
      return !d.reachable.wifi && d.running === null;
    });

    // Back on the network, the device is found again; the status says when the retry comes
    // (the backoff after a failure), and the retry then happens by itself and succeeds.
    await sim.ctl('fault', { name: 'delayFirstMessageMs', value: 'off' });
    await sim.ctl('online');
    const back = await s.waitFor('the device back on Wi-Fi, its retry scheduled', async () => {
      const d = await s.device(udid);
      return d.reachable.wifi && d.next.code === 'RETRY_BACKOFF' ? d : undefined;
    });
    assert.ok(
      back.next.at !== null && Math.abs(back.next.at - retryAt) < 2000,
      JSON.stringify(back.next),
    );
    const ok = await s.waitForAttempt(
      udid,
      'the automatic retry',
      (a) => a.id > attemptId && a.outcome === 'success',
    );
    assert.equal(ok.trigger, 'retry');
    assert.ok(ok.startedAt >= retryAt - 1000, 'not before the backoff was over');
    assert.equal(ok.transport, 'wifi');
    const snaps = await s.snapshots(udid);
    assert.equal(snaps.length, 2);
    assert.equal(snaps.find((x) => x.isLatest)?.id, ok.snapshotId);
  });

  it('a revoked pairing: PAIRING_INVALID "Pairing no longer valid" with its fix, and the fix works', async () => {
    const udid = s.udid('revoked');
    const note = await s.waitForNotification(
      'PAIRING_INVALID',
      (n) => n.reasonCode === 'PAIRING_INVALID',
      udid,
    );
    assert.equal(note.kind, 'pairing');
    assert.equal(note.severity, 'error');
    assert.match(
      note.message,
      /^Pairing no longer valid: the device no longer trusts this computer/,
    );
    assert.equal(
      note.fixHint,
      'Connect the device by USB, unlock it and tap "Trust" (mooring pair --udid …)',
    );
    const attempts = await s.attempts(udid);
    assert.ok(
      attempts.every((a) => a.outcome !== 'success'),
      'no backup of a device that refused us',
    );
    for (const a of attempts.filter((x) => x.outcome !== 'running')) {
      assert.equal(a.outcome, 'failure');
      assert.equal(a.reasonCode, 'PAIRING_INVALID');
    }
    const dev = await s.device(udid);
    assert.equal(dev.pairing.health, 'invalid');
    assert.match(dev.pairing.message ?? '', /[Pp]airing no longer valid|trust/);
    const status = await s.cli('status');
    assert.equal(status.code, 0, status.err);
    assert.match(status.out, /no longer valid|trust again|Trust/i);

    // The fix: pair again over USB; then a backup goes through and the pairing is healthy.
    const sim = s.sim('revoked');
    const paired = await mooring('pair', '--usbmuxd', sim.usbmuxdAddress, '--data-dir', s.dataDir);
    assert.equal(paired.code, 0, paired.err);
    const again = await s.waitFor('a backup after pairing again', async () => {
      const r = await s.cli('backup-now', '--udid', udid, '--wait', '--json');
      return r.code === 0 ? r : undefined;
    });
    assert.equal(again.code, 0);
    const ok = await s.waitForAttempt(
      udid,
      'the backup after re-pairing',
      (a) => a.outcome === 'success',
    );
    assert.ok(ok.snapshotId);
    assert.equal((await s.device(udid)).pairing.health, 'ok');
  });
});
