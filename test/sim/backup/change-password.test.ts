/**
 * mobilebackup2 ChangePassword and encrypted backups on the simulated device, driven in-process by
 * the mini host over a real UNIX socket: every refusal with its ErrorCode, the passcode sheet,
 * the domain_changed notification, keys kept across a restart (0600 state file), an incremental
 * backup under the same keybag, and a Restore refused without / with a wrong password.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { decodePlist, isPlistDict } from '../../../src/protocol/plist';
import { PlistConnection } from '../../../src/transport/plist-connection';
import { mobilebackup2Service } from '../../../src/sim/backup/mobilebackup2';
import { MbError } from '../../../src/sim/backup/errors';
import {
  MAX_BACKUP_PASSWORD_CHARS,
  SimBackupEncryption,
  encryptionStatePath,
} from '../../../src/sim/backup/encryption';
import { BACKUP_DOMAIN_CHANGED } from '../../../src/sim/backup/change-password';
import { ContentStore } from '../../../src/sim/content/store';
import type { PasscodeMode } from '../../../src/sim/contracts';
import { SimDevice } from '../../../src/sim/device';
import { HostPairings } from '../../../src/sim/host-pairings';
import { IDENTITY_FILE, loadOrCreateIdentity } from '../../../src/sim/identity';
import {
  IOS_DPIC,
  keyBagRounds,
  keyBagUuid,
  unlockBackupKeyBag,
} from '../../../src/format/encryption';
import { MiniHost } from './mini-host';
import { tempDirs } from '../../helpers/temp-dirs';

const { tmp, cleanup } = tempDirs('mooring-chpw-');
after(cleanup);

const ROUNDS = { dpic: 20, iter: 5 };
let identityTemplate: Buffer | undefined;

async function rig(
  o: { passcode?: PasscodeMode; stateDir?: string; root?: string; realRounds?: boolean } = {},
) {
  const stateDir = o.stateDir ?? tmp();
  const root = o.root ?? tmp();
  if (!identityTemplate) {
    const d = tmp();
    await loadOrCreateIdentity(d, { seed: 12 });
    identityTemplate = readFileSync(path.join(d, IDENTITY_FILE));
  }
  await import('node:fs/promises').then((f) =>
    f.writeFile(path.join(stateDir, IDENTITY_FILE), identityTemplate!),
  );
  const identity = await loadOrCreateIdentity(stateDir, { ios: '17.5' });
  const logs: string[] = [];
  const device = await SimDevice.create({
    stateDir,
    identity,
    pairings: await HostPairings.load(path.join(stateDir, 'pairings')),
    mediaDir: path.join(stateDir, 'media'),
    passcode: o.passcode ?? { kind: 'none' },
    trust: 'auto',
    faults: {},
    log: (event) => logs.push(event),
  });
  const store = await ContentStore.open(stateDir, { files: 20, bytes: 200_000, seed: 4 });
  const encryption = o.realRounds
    ? new SimBackupEncryption(stateDir)
    : new SimBackupEncryption(stateDir, ROUNDS);
  const handler = mobilebackup2Service(store, {
    passcodeTimeoutMs: 300,
    replyTimeoutMs: 5_000,
    idleTimeoutMs: 20_000,
    encryption,
  });
  const sockPath = path.join(stateDir, 'mb2.sock');
  let served: Promise<void> | undefined;
  const server = net.createServer((sock) => {
    served = handler(sock, device);
  });
  await new Promise<void>((r) => server.listen(sockPath, r));
  const client = net.connect(sockPath);
  await new Promise<void>((r, j) => client.once('connect', r).once('error', j));
  const host = new MiniHost(new PlistConnection(client, { format: 'binary' }), { root });
  assert.equal((await host.handshake()).ErrorCode, 0);
  const udid = device.udid;
  return {
    device,
    host,
    root,
    stateDir,
    udid,
    logs,
    encryption,
    change: (p: { OldPassword?: unknown; NewPassword?: unknown }) =>
      host.request('ChangePassword', { TargetIdentifier: udid, ...(p as Record<string, never>) }),
    async close() {
      client.destroy();
      await served;
      device.shutdown();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

test('ChangePassword: enable, refusals with their codes, change, disable; domain_changed posted', async () => {
  const r = await rig();
  try {
    let changed = 0;
    r.device.observeNotification(BACKUP_DOMAIN_CHANGED, () => changed++);
    const code = async (p: Parameters<typeof r.change>[0]) => (await r.change(p)).result.ErrorCode;

    assert.equal(await code({}), MbError.BAD_REQUEST);
    assert.equal(await code({ OldPassword: 'x' }), MbError.ENCRYPTION_STATE, 'disable while off');
    assert.equal(await code({ OldPassword: 'x', NewPassword: 'y' }), MbError.ENCRYPTION_STATE);
    assert.equal(await code({ NewPassword: 42 }), MbError.BAD_REQUEST);
    assert.equal(await code({ NewPassword: '' }), MbError.BAD_REQUEST);
    assert.equal(
      await code({ NewPassword: 'x'.repeat(MAX_BACKUP_PASSWORD_CHARS + 1) }),
      MbError.BAD_REQUEST,
    );
    assert.equal(changed, 0);
    assert.equal(r.device.willEncrypt, false);

    assert.equal(await code({ NewPassword: 'one' }), 0);
    assert.equal(r.device.willEncrypt, true);
    assert.equal(r.device.domain('com.apple.mobile.backup').WillEncrypt, true);
    assert.equal(changed, 1);
    const k1 = (await r.encryption.current())!;
    assert.deepEqual(unlockBackupKeyBag(k1.keyBag, 'one').uuid, k1.unlocked.uuid);
    // The device keeps its keys (never the password) in a 0600 file.
    const st = statSync(encryptionStatePath(r.stateDir));
    assert.equal(st.mode & 0o777, 0o600);
    assert.doesNotMatch(readFileSync(encryptionStatePath(r.stateDir), 'utf8'), /"one"|one"/);

    assert.equal(await code({ NewPassword: 'again' }), MbError.ENCRYPTION_STATE, 'enable while on');
    const wrong = await r.change({ OldPassword: 'uno', NewPassword: 'two' });
    assert.equal(wrong.result.ErrorCode, MbError.WRONG_PASSWORD);
    assert.match(String(wrong.result.ErrorDescription), /password is incorrect/);
    assert.deepEqual((await r.encryption.current())!.unlocked.uuid, k1.unlocked.uuid);

    assert.equal(await code({ OldPassword: 'one', NewPassword: 'two' }), 0);
    const k2 = (await r.encryption.current())!;
    assert.notDeepEqual(k2.unlocked.uuid, k1.unlocked.uuid);
    assert.notDeepEqual(k2.unlocked.classKeys.get(3), k1.unlocked.classKeys.get(3));
    assert.equal(changed, 2);

    assert.equal(await code({ OldPassword: 'one' }), MbError.WRONG_PASSWORD);
    assert.equal(await code({ OldPassword: 'two' }), 0);
    assert.equal(r.device.willEncrypt, false);
    assert.equal(await r.encryption.current(), undefined);
    assert.throws(() => statSync(encryptionStatePath(r.stateDir)), /ENOENT/);
    assert.equal(changed, 3);
  } finally {
    await r.close();
  }
});

test('ChangePassword on a device with a passcode waits for it; unanswered → 208, nothing changed', async () => {
  const never = await rig({ passcode: { kind: 'never' } });
  try {
    const res = await never.change({ NewPassword: 'pw' });
    assert.equal(res.result.ErrorCode, MbError.PASSCODE_NOT_ENTERED);
    assert.equal(never.device.willEncrypt, false);
    assert.equal(await never.encryption.current(), undefined);
  } finally {
    await never.close();
  }
  const auto = await rig({ passcode: { kind: 'auto', seconds: 0 } });
  try {
    let sheets = 0;
    auto.device.observeNotification('com.apple.LocalAuthentication.ui.presented', () => sheets++);
    assert.equal((await auto.change({ NewPassword: 'pw' })).result.ErrorCode, 0);
    assert.equal(sheets, 1, 'the device showed its passcode sheet');
    assert.equal(auto.device.willEncrypt, true);
  } finally {
    await auto.close();
  }
});

test('encrypted backups: keys survive a restart, same keybag → incremental, restore needs the password', async () => {
  const r = await rig();
  const backup = async (h: MiniHost, udid: string) =>
    h.request('Backup', { TargetIdentifier: udid, SourceIdentifier: udid });
  let uuid: Buffer;
  try {
    assert.equal((await r.change({ NewPassword: 'pw' })).result.ErrorCode, 0);
    const full = await backup(r.host, r.udid);
    assert.equal(full.result.ErrorCode, 0, String(full.result.ErrorDescription));
    assert.ok(r.logs.includes('mobilebackup2.finished'));
    const m = decodePlist(readFileSync(path.join(r.root, r.udid, 'Manifest.plist')));
    assert.ok(isPlistDict(m) && m.IsEncrypted === true && Buffer.isBuffer(m.BackupKeyBag));
    uuid = keyBagUuid(m.BackupKeyBag);
  } finally {
    await r.close();
  }
  // A restarted device (same state dir) still encrypts with the same keybag, incrementally.
  const again = await rig({ stateDir: r.stateDir, root: r.root });
  try {
    const inc = await backup(again.host, again.udid);
    assert.equal(inc.result.ErrorCode, 0, String(inc.result.ErrorDescription));
    assert.equal(
      inc.uploaded.filter((p) => /\/Snapshot\/[0-9a-f]{2}\//.test(p)).length,
      0,
      'nothing changed: no payload re-sent',
    );
    const m = decodePlist(readFileSync(path.join(again.root, again.udid, 'Manifest.plist')));
    assert.ok(isPlistDict(m) && Buffer.isBuffer(m.BackupKeyBag));
    assert.deepEqual(keyBagUuid(m.BackupKeyBag), uuid);

    const restore = (extra: Record<string, unknown>) =>
      again.host.request('Restore', {
        TargetIdentifier: again.udid,
        SourceIdentifier: again.udid,
        Options: { RestoreSystemFiles: true, RestoreShouldReboot: false, ...extra } as never,
      });
    const none = await restore({});
    assert.equal(none.result.ErrorCode, MbError.WRONG_PASSWORD);
    assert.match(String(none.result.ErrorDescription), /password is required/);
    const bad = await restore({ Password: 'PW' });
    assert.equal(bad.result.ErrorCode, MbError.WRONG_PASSWORD);
    const ok = await restore({ Password: 'pw' });
    assert.equal(ok.result.ErrorCode, 0, String(ok.result.ErrorDescription));
  } finally {
    await again.close();
  }
});

test('by default the device derives its keybag with the real iOS rounds (IOS_DPIC)', async () => {
  const r = await rig({ realRounds: true });
  try {
    assert.equal((await r.change({ NewPassword: 'real' })).result.ErrorCode, 0);
    const keys = (await r.encryption.current())!;
    assert.deepEqual(keyBagRounds(keys.keyBag), { dpic: IOS_DPIC, iter: 10_000 });
  } finally {
    await r.close();
  }
});
