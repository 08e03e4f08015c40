/**
 * H8c: backup encryption driven through the Agent against a real simulator (its keybag rounds
 * lowered so unlocking takes milliseconds): the state at first contact, turning encryption on
 * with a generated password (stored 0600, recovery sheet), every encrypted backup opened with
 * the stored password after it is made, browsing it, storing a password only when it opens the
 * latest backup, a wrong old password refused with the store untouched, a change that keeps the
 * older snapshot readable with ITS password, a backup Mooring cannot open recorded as a notice
 * (still committed), and turning encryption off.
 */
import assert from 'node:assert/strict';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Agent } from '../../src/agent/agent';
import type { DeviceStatus } from '../../src/agent/types';
import { FileSecretStore, secretsDir } from '../../src/secrets';
import { clearUnlockedKeyBags } from '../../src/store/encrypted';
import {
  backUpNow,
  nextAttempt,
  notificationsOf,
  simFixture,
  untilOnUsb,
  waitForEvent,
  type SimFixture,
} from './agent-helpers';

const ROUNDS = { dpic: 10, iter: 10 };

describe('backup encryption through the agent', () => {
  let f: SimFixture;
  let agent: Agent;
  let udid: string;
  let secrets: FileSecretStore;

  const status = (): DeviceStatus => agent.device(udid)!;

  async function backUp(): Promise<void> {
    await backUpNow(agent, udid);
  }

  before(async () => {
    f = await simFixture('mooring-agent-enc-', {
      files: 12,
      bytes: 200_000,
      seed: 811,
      name: 'Enc Phone',
      keyBagRounds: ROUNDS,
    });
    udid = f.udid;
    secrets = new FileSecretStore(secretsDir(f.dataDir));
    agent = await Agent.open(f.agentOptions());
    agent.setConfig({ paused: 'true' }); // only the backups the test starts
    const contacted = waitForEvent(agent, 'first contact', (e) =>
      e.type === 'device' && e.device.udid === udid && e.device.encryption.on !== null
        ? true
        : undefined,
    );
    await agent.start();
    await untilOnUsb(agent, udid);
    await contacted;
  });
  after(async () => {
    await agent?.stop();
    await f?.close();
  });

  it('reads WillEncrypt at first contact and names the password store', () => {
    assert.deepEqual(status().encryption, {
      on: false,
      passwordStored: false,
      latestOpens: null,
      storeKind: 'file',
    });
  });

  let firstPassword = '';
  let firstSnapshot = '';

  it('turns encryption on with a generated password, kept 0600, with a recovery sheet', async () => {
    const r = await agent.setEncryption(udid, { action: 'enable' });
    assert.equal(r.ok, true, r.message);
    assert.equal(r.on, true);
    assert.equal(r.stored, true);
    assert.match(r.generatedPassword ?? '', /^[2-9A-Z]{5}(-[2-9A-Z]{5}){5}$/);
    firstPassword = r.generatedPassword!;
    assert.ok(r.recoverySheet?.includes(firstPassword), 'the sheet holds the password');
    assert.ok(r.recoverySheet?.includes(udid));
    assert.equal(await secrets.get(udid), firstPassword);
    const file = secrets.fileOf(udid);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal(statSync(path.dirname(file)).mode & 0o777, 0o700);
    assert.equal(
      ((await f.sim.ctl('status')) as { encryption: { willEncrypt: boolean } }).encryption
        .willEncrypt,
      true,
    );
    assert.equal(status().encryption.on, true);
    assert.equal(status().encryption.passwordStored, true);
    // Turning it on twice is a refusal with the device's state, not an error.
    const again = await agent.setEncryption(udid, { action: 'enable', password: 'other one' });
    assert.equal(again.ok, false);
    assert.equal(again.failure, 'already-on');
    assert.equal(await secrets.get(udid), firstPassword, 'the store is as it was');
  });

  it('opens every encrypted backup with the stored password after it is made, and browses it', async () => {
    await backUp();
    assert.equal(status().encryption.latestOpens, true);
    const snaps = await agent.snapshots(udid);
    const latest = snaps.find((s) => s.isLatest)!;
    assert.equal(latest.encrypted, true);
    firstSnapshot = latest.id;
    const page = await agent.files(udid, latest.id, { limit: 1000 });
    assert.ok(page.items.filter((i) => i.type === 'file').length >= 5, 'files listed');
    const file = page.items.find((i) => i.type === 'file' && i.size > 0)!;
    const opened = await agent.openFile(udid, latest.id, file.domain, file.relativePath);
    let n = 0;
    for await (const c of opened.stream) n += (c as Buffer).length;
    assert.equal(n, file.size, 'the decrypted file has its recorded size');
    const eras = await secrets.eras(udid);
    assert.equal(eras.length, 1, 'the keybag era is remembered');
    assert.equal(eras[0]!.password, firstPassword);
    assert.ok(!notificationsOf(agent, udid).some((x) => x.reasonCode === 'ENCRYPTED_NOT_OPENED'));
  });

  it('stores a password only when it opens the latest backup', async () => {
    clearUnlockedKeyBags();
    const wrong = await agent.storeBackupPassword(udid, 'not the password');
    assert.equal(wrong.stored, false);
    assert.equal(wrong.checked, true);
    assert.match(wrong.message, /does not open the latest backup/);
    assert.doesNotMatch(wrong.message, /not the password/, 'never echoes the password');
    assert.equal(await secrets.get(udid), firstPassword);
    const right = await agent.storeBackupPassword(udid, firstPassword);
    assert.equal(right.stored, true);
    assert.equal(status().encryption.latestOpens, true);
  });

  it('refuses a wrong current password and leaves the store as it was', async () => {
    const r = await agent.setEncryption(udid, {
      action: 'change',
      oldPassword: 'wrong old password',
      password: 'new password 1',
    });
    assert.equal(r.ok, false);
    assert.equal(r.failure, 'wrong-password');
    assert.doesNotMatch(r.message, /wrong old password|new password 1/);
    assert.equal(await secrets.get(udid), firstPassword);
  });

  it('changes the password; the older snapshot still opens with its own', async () => {
    const r = await agent.setEncryption(udid, { action: 'change', password: 'second password 2' });
    assert.equal(r.ok, true, r.message);
    assert.equal(r.generatedPassword, null, 'a chosen password is not shown back');
    assert.ok(r.recoverySheet?.includes('second password 2'));
    assert.equal(await secrets.get(udid), 'second password 2');
    await backUp();
    assert.equal(status().encryption.latestOpens, true);
    const eras = await secrets.eras(udid);
    assert.equal(eras.length, 2, 'one era per keybag');
    clearUnlockedKeyBags();
    const old = await agent.files(udid, firstSnapshot, { limit: 5 });
    assert.ok(old.items.length > 0, 'the first snapshot opens with the first password');
    const sheet = await agent.recoverySheet(udid);
    assert.ok(sheet.html.includes('second password 2'));
    assert.equal(sheet.fileName, `mooring-recovery-${udid}.html`);
  });

  it('records a notice, and still commits, when the stored password does not open a backup', async () => {
    await secrets.forgetDevice(udid);
    await secrets.set(udid, 'a password the device does not use');
    clearUnlockedKeyBags();
    const before = (await agent.snapshots(udid)).length;
    const notice = waitForEvent(agent, 'the ENCRYPTED_NOT_OPENED notice', (e) =>
      e.type === 'notification' &&
      e.notification.udid === udid &&
      e.notification.reasonCode === 'ENCRYPTED_NOT_OPENED'
        ? e.notification
        : undefined,
    );
    await backUp();
    const n = await notice;
    assert.equal(n.severity, 'warning');
    assert.match(n.message, /stored password does not open it/);
    assert.match(n.fixHint ?? '', /Store the backup password/);
    assert.equal((await agent.snapshots(udid)).length, before + 1, 'the backup is committed');
    assert.equal(status().encryption.latestOpens, false);
    const refused = await agent.files(udid, 'latest', {}).then(
      () => undefined,
      (e: Error) => e,
    );
    assert.match(refused?.message ?? '', /stored password does not open it/);
    await secrets.set(udid, 'second password 2');
  });

  it('turns encryption off with the stored password and forgets the current one', async () => {
    const r = await agent.setEncryption(udid, { action: 'disable' });
    assert.equal(r.ok, true, r.message);
    assert.equal(r.on, false);
    assert.equal(r.recoverySheet, null);
    assert.equal(await secrets.get(udid), undefined);
    assert.equal(status().encryption.on, false);
    assert.equal(status().encryption.passwordStored, false);
    assert.ok(
      (await secrets.eras(udid)).length >= 1,
      'earlier passwords are kept for old snapshots',
    );
    await assert.rejects(agent.recoverySheet(udid), /does not keep a backup password/);
    // No secret in the files' names or anywhere but the 0600 record.
    for (const name of readdirSync(secretsDir(f.dataDir))) assert.doesNotMatch(name, /password/);
  });
});

describe('backup encryption through an agent that keeps no passwords', () => {
  let f: SimFixture;
  let agent: Agent;
  let udid: string;

  before(async () => {
    f = await simFixture('mooring-agent-enc-nostore-', {
      files: 6,
      bytes: 60_000,
      seed: 814,
      keyBagRounds: ROUNDS,
    });
    udid = f.udid;
    agent = await Agent.open(f.agentOptions({ secrets: null }));
    agent.setConfig({ paused: 'true' });
    const contacted = waitForEvent(agent, 'first contact', (e) =>
      e.type === 'device' && e.device.udid === udid && e.device.encryption.on !== null
        ? true
        : undefined,
    );
    await agent.start();
    await untilOnUsb(agent, udid);
    await contacted;
  });
  after(async () => {
    await agent?.stop();
    await f?.close();
  });

  it('shows the password once, keeps nothing, and says a backup was not checked', async () => {
    assert.equal(agent.device(udid)!.encryption.storeKind, null);
    const r = await agent.setEncryption(udid, { action: 'enable' });
    assert.equal(r.ok, true, r.message);
    assert.equal(r.stored, false);
    assert.ok(r.generatedPassword);
    assert.match(r.message, /does not keep it/);
    await assert.rejects(
      agent.storeBackupPassword(udid, r.generatedPassword),
      /--no-store-passwords/,
    );
    await assert.rejects(agent.recoverySheet(udid), /does not keep a backup password/);
    const notice = waitForEvent(agent, 'the notice', (e) =>
      e.type === 'notification' && e.notification.reasonCode === 'ENCRYPTED_NOT_OPENED'
        ? e.notification
        : undefined,
    );
    const done = nextAttempt(agent, udid, (a) => a.outcome !== 'running', 'a backup');
    assert.equal((await agent.backupNow(udid)).started, true);
    assert.equal((await done).outcome, 'success');
    assert.match((await notice).message, /Mooring knows no password for it/);
    assert.equal(agent.device(udid)!.encryption.latestOpens, false);
    // A second unopened backup in a row is not told again.
    const again = nextAttempt(agent, udid, (a) => a.outcome !== 'running', 'a second backup');
    assert.equal((await agent.backupNow(udid)).started, true);
    assert.equal((await again).outcome, 'success');
    assert.equal(
      notificationsOf(agent, udid).filter((x) => x.reasonCode === 'ENCRYPTED_NOT_OPENED').length,
      1,
    );
    // Turning it off needs the password typed in.
    await assert.rejects(
      agent.setEncryption(udid, { action: 'disable' }),
      /does not know the current backup password/,
    );
    const off = await agent.setEncryption(udid, {
      action: 'disable',
      oldPassword: r.generatedPassword,
    });
    assert.equal(off.ok, true, off.message);
  });
});
