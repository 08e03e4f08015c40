import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, stat, writeFile, chmod, mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { isMooringError } from '../../src/util/errors';
import {
  ElectronSafeStorageStore,
  FileSecretStore,
  generatePassphrase,
  MAX_PASSWORD_ERAS,
  passphraseBits,
  PASSPHRASE_SYMBOLS,
  secretsDir,
  type SafeStorageLike,
  type SecretStore,
} from '../../src/secrets';

const UDID = '00008030-001A35E2116B802E';
const OTHER = '00008030-001A35E2116B802F';

/**
 * The one named stand-in for Electron's safeStorage (Electron cannot run here): real AES-256-GCM
 * with a key held in memory, as the OS keychain holds it; `available` models a locked keyring.
 */
class AesGcmSafeStorageStandIn implements SafeStorageLike {
  available = true;
  readonly key = crypto.randomBytes(32);
  isEncryptionAvailable(): boolean {
    return this.available;
  }
  encryptString(plain: string): Buffer {
    const iv = crypto.randomBytes(12);
    const c = crypto.createCipheriv('aes-256-gcm', this.key, iv);
    const body = Buffer.concat([c.update(plain, 'utf8'), c.final()]);
    return Buffer.concat([Buffer.from('v10'), iv, c.getAuthTag(), body]);
  }
  decryptString(buf: Buffer): string {
    if (buf.subarray(0, 3).toString() !== 'v10') throw new Error('not sealed by us');
    const d = crypto.createDecipheriv('aes-256-gcm', this.key, buf.subarray(3, 15));
    d.setAuthTag(buf.subarray(15, 31));
    return Buffer.concat([d.update(buf.subarray(31)), d.final()]).toString('utf8');
  }
}

async function tmpDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const d = await mkdtemp(path.join(os.tmpdir(), 'mooring-secrets-'));
  t.after(() => rm(d, { recursive: true, force: true }));
  return d;
}

const kinds: Array<[string, (dir: string) => SecretStore]> = [
  ['file', (dir) => new FileSecretStore(dir)],
  ['safeStorage', (dir) => new ElectronSafeStorageStore(dir, new AesGcmSafeStorageStandIn())],
];

for (const [name, make] of kinds) {
  test(`${name} store: set/get/delete, eras survive delete, 0700 folder and 0600 file`, async (t) => {
    const data = await tmpDir(t);
    const store = make(secretsDir(data));
    assert.equal(await store.get(UDID), undefined);
    await store.set(UDID, 'correct horse');
    assert.equal(await store.get(UDID), 'correct horse');
    assert.equal(await store.get(UDID.toLowerCase()), 'correct horse', 'UDID case does not matter');
    assert.equal(await store.get(OTHER), undefined, 'one record per device');
    await store.rememberEra(UDID, 'aa'.repeat(16), 'correct horse', new Date(1000));
    await store.set(UDID, 'battery staple');
    await store.rememberEra(UDID, 'bb'.repeat(16), 'battery staple', new Date(2000));
    await store.delete(UDID);
    assert.equal(await store.get(UDID), undefined, 'delete forgets the current password');
    const eras = await store.eras(UDID);
    assert.deepEqual(
      eras.map((e) => [e.keyBagId.slice(0, 2), e.password]),
      [
        ['bb', 'battery staple'],
        ['aa', 'correct horse'],
      ],
      'older passwords stay, newest first',
    );
    const dirMode = (await stat(secretsDir(data))).mode & 0o777;
    assert.equal(dirMode, 0o700);
    const files = await readdir(secretsDir(data));
    assert.equal(files.length, 1, `one file, no temp files left: ${files.join(', ')}`);
    const file = path.join(secretsDir(data), files[0]!);
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    const raw = await readFile(file);
    if (name === 'safeStorage') {
      assert.ok(!raw.includes('battery staple'), 'sealed: the password is not on disk in clear');
      assert.ok(!raw.includes('correct horse'));
    } else {
      assert.ok(raw.includes('battery staple'), 'the file store keeps JSON (0600)');
    }
    await store.forgetDevice(UDID);
    assert.deepEqual(await store.eras(UDID), []);
    assert.deepEqual(await readdir(secretsDir(data)), []);
  });
}

test('a loosened folder is tightened again on the next write', async (t) => {
  const data = await tmpDir(t);
  await mkdir(secretsDir(data), { mode: 0o755 });
  await chmod(secretsDir(data), 0o755);
  const store = new FileSecretStore(secretsDir(data));
  await store.set(UDID, 'pw');
  assert.equal((await stat(secretsDir(data))).mode & 0o777, 0o700);
});

test('eras are bounded, one per keybag, refreshed when seen again', async (t) => {
  const store = new FileSecretStore(secretsDir(await tmpDir(t)));
  for (let i = 0; i < MAX_PASSWORD_ERAS + 5; i++) {
    await store.rememberEra(UDID, i.toString(16).padStart(32, '0'), `pw${i}`, new Date(i * 1000));
  }
  let eras = await store.eras(UDID);
  assert.equal(eras.length, MAX_PASSWORD_ERAS);
  assert.equal(eras[0]!.password, `pw${MAX_PASSWORD_ERAS + 4}`);
  const oldest = eras[eras.length - 1]!;
  await store.rememberEra(UDID, oldest.keyBagId, oldest.password, new Date(99_000_000));
  eras = await store.eras(UDID);
  assert.equal(eras.length, MAX_PASSWORD_ERAS);
  assert.equal(eras[0]!.keyBagId, oldest.keyBagId, 'seen again: moved to the front');
  assert.equal(eras[0]!.firstSeen, oldest.firstSeen, 'first-seen kept');
  await assert.rejects(store.rememberEra(UDID, 'not hex', 'x'), (e) => isMooringError(e, 'USAGE'));
});

test('concurrent writes to one store are serialised (no lost update)', async (t) => {
  const store = new FileSecretStore(secretsDir(await tmpDir(t)));
  await Promise.all(
    Array.from({ length: 10 }, (_, i) =>
      store.rememberEra(UDID, i.toString(16).padStart(32, 'c'), `p${i}`),
    ),
  );
  assert.equal((await store.eras(UDID)).length, 10);
});

test('input checks: UDID shape, empty/oversized/NUL passwords; messages never echo a password', async (t) => {
  const store = new FileSecretStore(secretsDir(await tmpDir(t)));
  await assert.rejects(store.set('../../etc/passwd', 'x'), (e) => isMooringError(e, 'USAGE'));
  await assert.rejects(store.set(UDID, ''), (e) => isMooringError(e, 'USAGE'));
  await assert.rejects(store.set(UDID, 'x'.repeat(2000)), (e) => isMooringError(e, 'USAGE'));
  await assert.rejects(
    store.set(UDID, 'secret\u0000tail'),
    (e) => isMooringError(e, 'USAGE') && !(e as Error).message.includes('secret'),
  );
});

test('damaged or foreign records are refused with MALFORMED, naming the device only', async (t) => {
  const dir = secretsDir(await tmpDir(t));
  const store = new FileSecretStore(dir);
  await store.set(UDID, 'hunter2');
  const file = path.join(dir, `${UDID}.json`);
  await writeFile(
    file,
    '{"v":1,"udid":"' + OTHER + '","eras":[],"current":{"password":"hunter2","setAt":"x"}}',
  );
  await assert.rejects(
    store.get(UDID),
    (e) => isMooringError(e, 'MALFORMED') && !(e as Error).message.includes('hunter2'),
  );
  await writeFile(file, 'garbage');
  await assert.rejects(store.get(UDID), (e) => isMooringError(e, 'MALFORMED'));
  await writeFile(file, Buffer.alloc(300 * 1024, 0x20));
  await assert.rejects(store.get(UDID), (e) => isMooringError(e, 'MALFORMED'));
});

test('safeStorage: keychain unavailable → a clear IO error; another keychain cannot open it', async (t) => {
  const dir = secretsDir(await tmpDir(t));
  const keychain = new AesGcmSafeStorageStandIn();
  const store = new ElectronSafeStorageStore(dir, keychain);
  await store.set(UDID, 'pw-1');
  keychain.available = false;
  await assert.rejects(
    store.set(UDID, 'pw-2'),
    (e) => isMooringError(e, 'IO') && /keychain/.test((e as Error).message),
  );
  keychain.available = true;
  assert.equal(await store.get(UDID), 'pw-1', 'the failed write left the old record');
  const stranger = new ElectronSafeStorageStore(dir, new AesGcmSafeStorageStandIn());
  await assert.rejects(stranger.get(UDID), (e) => isMooringError(e, 'MALFORMED'));
  // The file store never reads the sealed files (different suffix).
  assert.equal(await new FileSecretStore(dir).get(UDID), undefined);
});

test('generated passphrases: 6 groups of 5 from the unambiguous alphabet, ~147 bits, all different', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 200; i++) {
    const p = generatePassphrase();
    assert.match(p, new RegExp(`^([${PASSPHRASE_SYMBOLS}]{5}-){5}[${PASSPHRASE_SYMBOLS}]{5}$`));
    assert.ok(!/[01ILOU]/.test(p));
    seen.add(p);
  }
  assert.equal(seen.size, 200);
  assert.ok(passphraseBits() > 140);
});
