/**
 * The simulated device's mobilebackup2 service, driven in-process over a real UNIX socket by a
 * small host (mini-host.ts) against a real backup folder. The real-tool test (idevicebackup2
 * through the full simulator) lives in idevicebackup2.test.ts.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { promises as fsp, readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { decodePlist, isPlistDict, type PlistDict } from '../../../src/protocol/plist';
import { PlistConnection } from '../../../src/transport/plist-connection';
import {
  mobilebackup2Service,
  SYNC_CANCEL_NOTIFICATION,
} from '../../../src/sim/backup/mobilebackup2';
import { readManifestDb } from '../../../src/format/manifest-db';
import { MbError } from '../../../src/sim/backup/errors';
import { ContentStore } from '../../../src/sim/content/store';
import { fileIdFor } from '../../../src/format/file-id';
import type { ListingJson } from '../../../src/sim/content/model';
import type { PasscodeMode, SimFaults } from '../../../src/sim/contracts';
import { SimDevice } from '../../../src/sim/device';
import { HostPairings } from '../../../src/sim/host-pairings';
import { IDENTITY_FILE, loadOrCreateIdentity } from '../../../src/sim/identity';
import { encodeDlPath, encodeDlStreamEnd } from '../../../src/protocol/device-link';
import { isMooringError } from '../../../src/util/errors';
import { MiniHost, type MiniHostOptions } from './mini-host';
import { tempDirs } from '../../helpers/temp-dirs';

const { tmp, cleanup } = tempDirs('mooring-mb2-');
after(cleanup);

let identityTemplate: Promise<Buffer> | undefined;

interface Rig {
  device: SimDevice;
  store: ContentStore;
  host: MiniHost;
  root: string;
  udid: string;
  logs: Array<{ event: string; fields?: Record<string, unknown> }>;
  /** Resolves when the device's handler returned. */
  served: Promise<void>;
  close(): Promise<void>;
}

async function rig(
  o: {
    passcode?: PasscodeMode;
    faults?: SimFaults;
    ios?: string;
    host?: Partial<MiniHostOptions>;
  } = {},
): Promise<Rig> {
  const stateDir = tmp();
  const root = tmp();
  // Reuse one identity (RSA key generation is the slow part of making a device).
  identityTemplate ??= (async () => {
    const d = tmp();
    await loadOrCreateIdentity(d, { seed: 11 });
    return readFileSync(path.join(d, IDENTITY_FILE));
  })();
  await fsp.writeFile(path.join(stateDir, IDENTITY_FILE), await identityTemplate);
  const identity = await loadOrCreateIdentity(stateDir, { ios: o.ios ?? '17.5' });
  const logs: Rig['logs'] = [];
  const device = await SimDevice.create({
    stateDir,
    identity,
    pairings: await HostPairings.load(path.join(stateDir, 'pairings')),
    mediaDir: path.join(stateDir, 'media'),
    passcode: o.passcode ?? { kind: 'none' },
    trust: 'auto',
    faults: o.faults ?? {},
    log: (event, fields) => logs.push({ event, fields }),
  });
  const store = await ContentStore.open(stateDir, { files: 40, bytes: 600_000, seed: 5 });
  const handler = mobilebackup2Service(store, {
    passcodeTimeoutMs: 300,
    replyTimeoutMs: 5_000,
    idleTimeoutMs: 20_000,
  });
  const sockPath = path.join(stateDir, 'mb2.sock');
  let served!: Promise<void>;
  const server = net.createServer((sock) => {
    served = handler(sock, device);
  });
  await new Promise<void>((r) => server.listen(sockPath, r));
  const client = net.connect(sockPath);
  await new Promise<void>((r, j) => client.once('connect', r).once('error', j));
  while (served === undefined) await new Promise((r) => setImmediate(r));
  const host = new MiniHost(new PlistConnection(client, { format: 'binary' }), { root, ...o.host });
  return {
    device,
    store,
    host,
    root,
    udid: device.udid,
    logs,
    get served() {
      return served;
    },
    async close() {
      client.destroy();
      await served;
      device.shutdown();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

function sha256(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

function readStatus(root: string, udid: string): PlistDict {
  const v = decodePlist(readFileSync(path.join(root, udid, 'Status.plist')));
  assert.ok(isPlistDict(v));
  return v;
}

/** The backup folder holds exactly the listing's files, byte for byte, and a matching Manifest.db. */
async function assertFolderMatches(
  root: string,
  udid: string,
  listing: ListingJson,
): Promise<void> {
  const dir = path.join(root, udid);
  const rows = readManifestDb(path.join(dir, 'Manifest.db'));
  assert.equal(rows.length, listing.entries.length);
  const expected = new Set<string>();
  for (const e of listing.entries) {
    const id = fileIdFor(e.domain, e.relativePath);
    const row = rows.find((r) => r.fileId === id);
    assert.ok(row, `Manifest.db lacks ${e.domain}/${e.relativePath}`);
    if (e.type !== 'file') continue;
    expected.add(id);
    assert.equal(
      sha256(path.join(dir, id.slice(0, 2), id)),
      e.sha256,
      `payload of ${e.relativePath}`,
    );
  }
  const present = new Set<string>();
  for (const b of await fsp.readdir(dir)) {
    if (!/^[0-9a-f]{2}$/.test(b)) continue;
    for (const f of await fsp.readdir(path.join(dir, b))) present.add(f);
  }
  assert.deepEqual([...present].sort(), [...expected].sort());
  await assert.rejects(fsp.stat(path.join(dir, 'Snapshot')), /ENOENT/);
}

const payloads = (uploaded: string[]): string[] =>
  uploaded.filter((p) => /\/Snapshot\/[0-9a-f]{2}\//.test(p));

test('full backup, incremental after mutate, forced full, restore after wipe', async () => {
  const r = await rig();
  try {
    const hello = await r.host.handshake();
    assert.equal(hello.ErrorCode, 0);
    assert.equal(hello.ProtocolVersion, 2.1);

    const full = await r.host.request('Backup', {
      TargetIdentifier: r.udid,
      SourceIdentifier: r.udid,
      Options: { ForceFullBackup: true },
    });
    assert.equal(full.result.ErrorCode, 0, String(full.result.ErrorDescription));
    assert.deepEqual(full.messages.slice(0, 5), [
      'DownloadFiles',
      'ContentsOfDirectory',
      'ContentsOfDirectory',
      'GetFreeDiskSpace',
      'CreateDirectory',
    ]);
    const listing1 = await r.store.listing();
    assert.equal(payloads(full.uploaded).length, listing1.files);
    assert.equal(readStatus(r.root, r.udid).SnapshotState, 'finished');
    assert.equal(readStatus(r.root, r.udid).IsFullBackup, true);
    await assertFolderMatches(r.root, r.udid, listing1);
    const manifest = decodePlist(readFileSync(path.join(r.root, r.udid, 'Manifest.plist')));
    assert.ok(isPlistDict(manifest) && manifest.IsEncrypted === false);
    assert.ok(isPlistDict(manifest.Lockdown) && manifest.Lockdown.UniqueDeviceID === r.udid);

    const m = await r.store.mutate({ add: 2, modify: 3, delete: 2 });
    const inc = await r.host.request('Backup', {
      TargetIdentifier: r.udid,
      SourceIdentifier: r.udid,
    });
    assert.equal(inc.result.ErrorCode, 0, String(inc.result.ErrorDescription));
    assert.equal(payloads(inc.uploaded).length, m.added.length + m.modified.length);
    const changed = [...m.added, ...m.modified].map((p) => {
      const i = p.indexOf('/');
      return fileIdFor(p.slice(0, i), p.slice(i + 1));
    });
    assert.deepEqual(
      payloads(inc.uploaded)
        .map((p) => path.basename(p))
        .sort(),
      changed.sort(),
    );
    assert.equal(readStatus(r.root, r.udid).IsFullBackup, false);
    const listing2 = await r.store.listing();
    await assertFolderMatches(r.root, r.udid, listing2);

    const forced = await r.host.request('Backup', {
      TargetIdentifier: r.udid,
      Options: { ForceFullBackup: true },
    });
    assert.equal(forced.result.ErrorCode, 0);
    assert.equal(payloads(forced.uploaded).length, listing2.files);

    await r.store.wipe();
    const restore = await r.host.request('Restore', {
      TargetIdentifier: r.udid,
      SourceIdentifier: r.udid,
      Options: {
        RestoreSystemFiles: true,
        RestorePreserveSettings: false,
        RestoreShouldReboot: false,
      },
    });
    assert.equal(restore.result.ErrorCode, 0, String(restore.result.ErrorDescription));
    assert.deepEqual(await r.store.listing(), listing2);
    assert.deepEqual(await r.store.verifyBlobs(), []);

    const info = await r.host.request('Info', {
      TargetIdentifier: r.udid,
      SourceIdentifier: r.udid,
    });
    assert.equal(info.result.ErrorCode, 0);
    assert.match(String(info.result.Content), /Snapshot State: finished/);
    const list = await r.host.request('List', {
      TargetIdentifier: r.udid,
      SourceIdentifier: r.udid,
    });
    assert.equal(list.result.ErrorCode, 0);
    assert.ok(String(list.result.Content).includes('HomeDomain,Library/SMS/sms.db,1,'));
    // ChangePassword is implemented now (change-password.test.ts); Unback is not. (H8a)
    const pw = await r.host.request('Unback', {
      TargetIdentifier: r.udid,
      Options: { Password: 'x' },
    });
    assert.equal(pw.result.ErrorCode, MbError.NOT_SUPPORTED);
    assert.match(String(pw.result.ErrorDescription), /not supported/);
    await r.host.disconnect();
    await r.served;
  } finally {
    await r.close();
  }
});

test('restore without --system only touches app domains', async () => {
  const r = await rig();
  try {
    await r.host.handshake();
    assert.equal(
      (await r.host.request('Backup', { TargetIdentifier: r.udid })).result.ErrorCode,
      0,
    );
    const before = await r.store.listing();
    await r.store.wipe();
    const res = await r.host.request('Restore', {
      TargetIdentifier: r.udid,
      Options: { RestoreSystemFiles: false },
    });
    assert.equal(res.result.ErrorCode, 0);
    const after = await r.store.listing();
    assert.ok(after.entries.length > 0);
    assert.ok(after.entries.every((e) => e.domain.startsWith('AppDomain')));
    assert.deepEqual(
      after.entries,
      before.entries.filter((e) => e.domain.startsWith('AppDomain')),
    );
  } finally {
    await r.close();
  }
});

test('restore refuses a backup whose payload is missing or altered', async () => {
  const r = await rig();
  try {
    await r.host.handshake();
    await r.host.request('Backup', { TargetIdentifier: r.udid });
    const sms = fileIdFor('HomeDomain', 'Library/SMS/sms.db');
    const smsFile = path.join(r.root, r.udid, sms.slice(0, 2), sms);
    const bytes = readFileSync(smsFile);
    bytes[100] = bytes[100]! ^ 0xff;
    await fsp.writeFile(smsFile, bytes);
    const before = await r.store.listing();
    const bad = await r.host.request('Restore', {
      TargetIdentifier: r.udid,
      Options: { RestoreSystemFiles: true },
    });
    assert.equal(bad.result.ErrorCode, MbError.BAD_BACKUP);
    assert.match(String(bad.result.ErrorDescription), /digest/);
    await fsp.rm(smsFile);
    const missing = await r.host.request('Restore', {
      TargetIdentifier: r.udid,
      Options: { RestoreSystemFiles: true },
    });
    assert.equal(missing.result.ErrorCode, MbError.BAD_BACKUP);
    assert.match(
      String(missing.result.ErrorDescription),
      /Manifest references files not in backup/,
    );
    assert.deepEqual(await r.store.listing(), before, 'a failed restore changes nothing');
  } finally {
    await r.close();
  }
});

test('low disk: the device asks for a purge, then fails with 105', async () => {
  const r = await rig({ faults: { lowDisk: true } });
  try {
    await r.host.handshake();
    const res = await r.host.request('Backup', { TargetIdentifier: r.udid });
    assert.equal(res.result.ErrorCode, MbError.INSUFFICIENT_SPACE);
    assert.match(
      String(res.result.ErrorDescription),
      /Insufficient free disk space on drive to back up/,
    );
    assert.equal(res.purges, 1);
    assert.deepEqual(res.uploaded, []);
  } finally {
    await r.close();
  }
});

test('a host reporting too little space gets the same answer without the fault', async () => {
  const r = await rig({ host: { freeSpace: 1024 } });
  try {
    await r.host.handshake();
    const res = await r.host.request('Backup', { TargetIdentifier: r.udid });
    assert.equal(res.result.ErrorCode, MbError.INSUFFICIENT_SPACE);
    assert.ok(res.messages.includes('PurgeDiskSpace'));
  } finally {
    await r.close();
  }
});

test('iOS 17 with a passcode nobody enters: the backup is refused', async () => {
  const r = await rig({ passcode: { kind: 'never' } });
  try {
    await r.host.handshake();
    const res = await r.host.request('Backup', { TargetIdentifier: r.udid });
    assert.equal(res.result.ErrorCode, MbError.PASSCODE_NOT_ENTERED);
    assert.match(String(res.result.ErrorDescription), /passcode was not entered/);
    assert.deepEqual(res.messages, ['ProcessMessage']);
    assert.ok(
      r.logs.some(
        (l) =>
          l.event === 'notification' &&
          l.fields?.name === 'com.apple.LocalAuthentication.ui.presented',
      ),
    );
  } finally {
    await r.close();
  }
});

test('iOS 16.0 never prompts for the passcode', async () => {
  const r = await rig({ passcode: { kind: 'never' }, ios: '16.0' });
  try {
    await r.host.handshake();
    assert.equal(
      (await r.host.request('Backup', { TargetIdentifier: r.udid })).result.ErrorCode,
      0,
    );
  } finally {
    await r.close();
  }
});

test('syncCancelRequest stops the backup with the cancel code', async () => {
  let uploads = 0;
  const holder: { rig?: Rig } = {};
  const r = await rig({
    host: {
      onMessage: (type) => {
        if (type === 'UploadFiles' && ++uploads === 1)
          holder.rig!.device.postNotification(SYNC_CANCEL_NOTIFICATION);
      },
    },
  });
  holder.rig = r;
  try {
    await r.host.handshake();
    const res = await r.host.request('Backup', { TargetIdentifier: r.udid });
    assert.equal(res.result.ErrorCode, MbError.CANCELLED);
    assert.equal(payloads(res.uploaded).length, 0);
    assert.equal(readStatus(r.root, r.udid).SnapshotState, 'uploading');
  } finally {
    await r.close();
  }
});

test('dropAfterBytes closes the connection mid-upload', async () => {
  const r = await rig({ faults: { dropAfterBytes: 100_000 } });
  try {
    await r.host.handshake();
    await assert.rejects(r.host.request('Backup', { TargetIdentifier: r.udid }), (e) =>
      isMooringError(e, 'CLOSED'),
    );
    await r.served;
    assert.ok(r.logs.some((l) => l.event === 'mobilebackup2.dropped'));
  } finally {
    await r.close();
  }
});

test('a zero-byte Manifest.plist on the host fails with 205; a garbage Manifest.db means full', async () => {
  const r = await rig();
  try {
    await r.host.handshake();
    assert.equal(
      (await r.host.request('Backup', { TargetIdentifier: r.udid })).result.ErrorCode,
      0,
    );
    await fsp.writeFile(path.join(r.root, r.udid, 'Manifest.db'), 'not a database');
    const res = await r.host.request('Backup', { TargetIdentifier: r.udid });
    assert.equal(res.result.ErrorCode, 0);
    assert.equal(readStatus(r.root, r.udid).IsFullBackup, true);
    assert.equal(payloads(res.uploaded).length, (await r.store.listing()).files);
    await fsp.writeFile(path.join(r.root, r.udid, 'Manifest.plist'), '');
    const empty = await r.host.request('Backup', { TargetIdentifier: r.udid });
    assert.equal(empty.result.ErrorCode, MbError.BAD_BACKUP);
  } finally {
    await r.close();
  }
});

test('Hello without a common version gets ErrorCode 1; a wrong target is refused', async () => {
  const r = await rig();
  try {
    const hello = await r.host.handshake([1.0, 3.0]);
    assert.equal(hello.ErrorCode, MbError.NO_COMMON_VERSION);
    const wrong = await r.host.request('Backup', { TargetIdentifier: '00000000-0000000000000000' });
    assert.equal(wrong.result.ErrorCode, MbError.BAD_REQUEST);
    const weird = await r.host.request('Backup', { TargetIdentifier: '../../etc' });
    assert.equal(weird.result.ErrorCode, MbError.BAD_REQUEST);
  } finally {
    await r.close();
  }
});

test('hostile host replies end the session cleanly', async (t) => {
  const cases: Array<[string, Partial<MiniHostOptions>]> = [
    [
      'status is not an array',
      { tamper: (type) => (type === 'GetFreeDiskSpace' ? { not: 'dl' } : undefined) },
    ],
    [
      'status has a bogus code',
      {
        tamper: (type) =>
          type === 'ContentsOfDirectory' ? ['DLMessageStatusResponse', 'x'] : undefined,
      },
    ],
    [
      'oversized frame',
      {
        tamper: (type) =>
          type === 'CreateDirectory' ? Buffer.from([0x7f, 0xff, 0xff, 0xff, 0]) : undefined,
      },
    ],
    [
      'unrequested file in a download',
      {
        downloadOverride: () =>
          Buffer.concat([encodeDlPath('../../etc/passwd'), encodeDlStreamEnd()]),
      },
    ],
    [
      'oversized block in a download',
      {
        downloadOverride: (paths) =>
          Buffer.concat([encodeDlPath(paths[0]!), Buffer.from([0x10, 0, 0, 0, 0x0c])]),
      },
    ],
  ];
  for (const [name, host] of cases) {
    await t.test(name, async () => {
      const r = await rig({ host });
      try {
        await r.host.handshake();
        // The device either says why it stopped (non-zero ErrorCode) or just hangs up.
        const outcome = await r.host.request('Backup', { TargetIdentifier: r.udid }).then(
          (v) => v.result.ErrorCode,
          () => 'hung up',
        );
        assert.notEqual(outcome, 0);
        await r.served; // the device's handler returns (no hang, no crash)
        assert.ok(
          r.logs.some((l) => l.event === 'mobilebackup2.connection-error'),
          name,
        );
      } finally {
        await r.close();
      }
    });
  }
});

test('evil faults send what they promise', async (t) => {
  const expectations: Array<[NonNullable<SimFaults['evil']>, (e: unknown) => boolean]> = [
    ['path-escape', (e) => /escapes the backup root/.test((e as Error).message)],
    ['oversized-frame', (e) => isMooringError(e, 'FRAME_TOO_LARGE')],
    ['bad-plist', (e) => isMooringError(e, 'MALFORMED')],
    ['huge-filename', (e) => isMooringError(e, 'LIMIT')],
    ['truncated-stream', (e) => isMooringError(e, 'CLOSED')],
  ];
  for (const [mode, check] of expectations) {
    await t.test(mode, async () => {
      const r = await rig({ faults: { evil: mode } });
      try {
        await r.host.handshake();
        await assert.rejects(r.host.request('Backup', { TargetIdentifier: r.udid }), check);
        r.host.conn.close();
        await r.served;
      } finally {
        await r.close();
      }
    });
  }
});

test('a payload the device cannot read is reported in-stream and fails the backup with 104', async () => {
  const r = await rig();
  try {
    const victim = r.store
      .snapshot()
      .find((e) => e.type === 'file' && e.relativePath.endsWith('.HEIC'))!;
    await fsp.rm(r.store.blobPath(victim));
    await r.host.handshake();
    const res = await r.host.request('Backup', { TargetIdentifier: r.udid });
    assert.equal(res.result.ErrorCode, MbError.UPLOAD_FAILED);
    assert.match(String(res.result.ErrorDescription), /could not read 1/);
    // The stream stayed well-formed: the session goes on.
    const info = await r.host.request('Info', { TargetIdentifier: r.udid });
    assert.equal(typeof info.result.ErrorCode, 'number');
  } finally {
    await r.close();
  }
});
