/**
 * Issue 8, Mooring's side, end to end: the real `mooring` CLI (child processes) against a
 * simulated iPhone that encrypts like a real one (H8a). Encryption switched on with a generated
 * password (stored 0600, printed once, recovery sheet), an encrypted backup verified by opening it,
 * browsed/extracted/compared with the password and refused with a wrong one, switched off and on
 * again with another password while older snapshots stay readable with THEIR password, a wrong old
 * password refused by the device, and Debian's idevicebackup2 restoring Mooring's encrypted backup
 * into a wiped device (same `ctl listing`). Keybag rounds are lowered (the real 10 M rounds are
 * tested by H8a once): these tests are about the flow, not the cost.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { promises as fsp, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { realTool } from '../helpers/real-tools';
import { runMooring, startCliSim, type CliSim } from './backup-fixture';

let cs: CliSim;
let dest: string;
let data: string;

before(async () => {
  cs = await startCliSim({
    seed: 801,
    files: 40,
    bytes: 600_000,
    keyBagRounds: { dpic: 1000, iter: 10 },
  });
  dest = path.join(cs.tmp, 'dest');
  data = path.join(cs.tmp, 'data');
  tmpDir = path.join(cs.tmp, 'tmp');
  await fsp.mkdir(tmpDir);
});

after(async () => {
  await cs?.close();
});

async function ok(args: string[]): Promise<{ out: string; err: string }> {
  const r = await cs.mooring(args);
  assert.equal(r.code, 0, `mooring ${args.join(' ')}\n${r.err}\n${r.out}`);
  return r;
}

/** The CLI's temp folder (TMPDIR), to see what it leaves there. */
let tmpDir: string;

async function backup(): Promise<Record<string, unknown>> {
  const r = await cs.mooring(['backup', '--dest', dest, '--json'], { env: { TMPDIR: tmpDir } });
  assert.equal(r.code, 0, r.err + r.out);
  assert.equal(r.result?.ok, true, String(r.result?.message));
  // The decrypted Manifest.db names every file in clear: nothing of it outlives the backup.
  assert.deepEqual(decryptedLeft(), []);
  return r.result!;
}

function decryptedLeft(): string[] {
  return readdirSync(tmpDir).filter((n) => n.startsWith('mooring-decrypted-'));
}

async function writeSecret(name: string, value: string): Promise<string> {
  const f = path.join(cs.tmp, name);
  await fsp.writeFile(f, value + '\n', { mode: 0o600 });
  return f;
}

/** `mooring files` lines for the files (not folders) of a snapshot. */
async function fileLines(extra: string[] = []): Promise<string[]> {
  const r = await ok(['files', '--dest', dest, '--json', ...extra]);
  return r.out
    .trim()
    .split('\n')
    .map(
      (l) => JSON.parse(l) as { type: string; domain: string; relativePath: string; size: number },
    )
    .filter((e) => e.type === 'file')
    .map((e) => `${e.domain}/${e.relativePath}:${e.size}`)
    .sort();
}

async function listingFiles(): Promise<string[]> {
  const l = await cs.listing();
  return l.entries
    .filter((e) => e.type === 'file')
    .map((e) => `${e.domain}/${e.relativePath}:${e.size}`)
    .sort();
}

let firstSnapshot = '';
let secondPassword = '';

test('on: generated password printed once, stored 0600, recovery sheet 0600; on again refused', async () => {
  const st0 = await ok(['encryption', 'status', '--udid', cs.sim.udid, '--json']);
  assert.equal(JSON.parse(st0.out).encrypted, false);

  const r = await ok(['encryption', 'on', '--udid', cs.sim.udid, '--dest', dest]);
  const m = /New backup password: (\S+)/.exec(r.out);
  assert.ok(m, r.out);
  const password = m[1]!;
  assert.match(password, /^([2-9A-Z]{5}-){5}[2-9A-Z]{5}$/);
  assert.equal(r.out.split(password).length - 1, 1, 'printed exactly once');
  assert.ok(!r.err.includes(password), 'never on stderr (logs)');

  const secret = path.join(data, 'secrets', `${cs.sim.udid.toUpperCase()}.json`);
  assert.equal(statSync(secret).mode & 0o777, 0o600);
  assert.equal(statSync(path.dirname(secret)).mode & 0o777, 0o700);
  assert.equal(JSON.parse(await fsp.readFile(secret, 'utf8')).current.password, password);

  const sheet = /Recovery sheet \(print it, keep it safe\): (.+)/.exec(r.out)![1]!;
  assert.equal(statSync(sheet).mode & 0o777, 0o600);
  const html = await fsp.readFile(sheet, 'utf8');
  assert.ok(html.includes(password) && html.includes(cs.sim.udid));
  assert.ok(!/<script|https?:\/\//i.test(html), 'self-contained, no scripts or links');

  const st1 = await ok(['encryption', 'status', '--udid', cs.sim.udid, '--json']);
  assert.deepEqual(JSON.parse(st1.out), {
    udid: cs.sim.udid,
    encrypted: true,
    passwordKnown: true,
    eras: 0,
  });
  const again = await cs.mooring(['encryption', 'on', '--udid', cs.sim.udid]);
  assert.equal(again.code, 1);
  assert.match(again.err, /already on/);
});

test('an encrypted backup is opened after verify, then browsed and extracted with the stored password', async () => {
  // What a process killed before it could clean up left: removed by the next one.
  const gone = spawnSync(process.execPath, ['-e', '0']).pid!;
  const left = path.join(tmpDir, `mooring-decrypted-${gone}-abc123`);
  await fsp.mkdir(left);
  await fsp.writeFile(path.join(left, 'x.db'), 'decrypted');
  const result = await backup();
  const enc = result.encryption as { opened: boolean; decrypted: number; files: number };
  assert.equal(enc.opened, true, JSON.stringify(result));
  assert.ok(enc.decrypted > 0 && enc.decrypted <= enc.files);
  firstSnapshot = (result.snapshot as { id: string }).id;
  // The backup really is encrypted on disk.
  const db = await fsp.readFile(path.join(dest, cs.sim.udid, 'Manifest.db'));
  assert.notEqual(db.subarray(0, 15).toString(), 'SQLite format 3');

  assert.deepEqual(await fileLines(), await listingFiles());
  const to = path.join(cs.tmp, 'extract-1');
  await ok(['extract', '--dest', dest, '--to', to]);
  const l = await cs.listing();
  for (const e of l.entries.filter((x) => x.type === 'file')) {
    const bytes = await fsp.readFile(path.join(to, e.domain, e.relativePath));
    assert.equal(createHash('sha256').update(bytes).digest('hex'), e.sha256, e.relativePath);
  }
});

test('a wrong password is refused with a clear message; the right one from a file works', async () => {
  // Another data folder: a computer that knows no password for this device.
  const elsewhere = (args: string[]): ReturnType<typeof runMooring> =>
    runMooring([...args, '--usbmuxd', cs.gate.address, '--data-dir', path.join(cs.tmp, 'other')]);
  const wrong = await writeSecret('wrong.txt', 'not-the-password');
  const r = await elsewhere(['files', '--dest', dest, '--password-file', wrong]);
  assert.equal(r.code, 1);
  assert.match(r.err, /Mooring cannot open this backup: the password does not match/);
  assert.match(r.err, /mooring encryption password --udid/);
  const none = await elsewhere(['files', '--dest', dest]);
  assert.equal(none.code, 1);
  assert.match(none.err, /no password is known/);
  const stored = JSON.parse(
    await fsp.readFile(path.join(data, 'secrets', `${cs.sim.udid.toUpperCase()}.json`), 'utf8'),
  ) as { current: { password: string } };
  const right = await writeSecret('right.txt', stored.current.password);
  const good = await elsewhere(['files', '--dest', dest, '--password-file', right]);
  assert.equal(good.code, 0, good.err);
});

test('the device refuses a wrong old password; nothing changes', async () => {
  const wrong = await writeSecret('wrong-old.txt', 'wrong old');
  const next = await writeSecret('next.txt', 'never used');
  const r = await cs.mooring([
    'encryption',
    'change',
    '--udid',
    cs.sim.udid,
    '--old-password-file',
    wrong,
    '--password-file',
    next,
  ]);
  assert.equal(r.code, 1);
  assert.match(r.err, /refused the current backup password/);
  const stored = JSON.parse(
    await fsp.readFile(path.join(data, 'secrets', `${cs.sim.udid.toUpperCase()}.json`), 'utf8'),
  ) as { current: { password: string } };
  assert.notEqual(stored.current.password, 'never used', 'the store was put back');
});

test('off, then on with another password: older snapshots keep opening with THEIR password', async () => {
  await ok(['encryption', 'off', '--udid', cs.sim.udid, '--dest', dest]);
  const off = await cs.mooring(['encryption', 'off', '--udid', cs.sim.udid]);
  assert.equal(off.code, 1);
  assert.match(off.err, /encryption is off/);
  secondPassword = 'second password, chosen';
  const p2 = await writeSecret('p2.txt', secondPassword);
  await ok(['encryption', 'on', '--udid', cs.sim.udid, '--password-file', p2]);
  await cs.sim.ctl('mutate', { modify: 3, add: 2, delete: 1 });
  const second = await backup();
  assert.equal((second.encryption as { opened: boolean }).opened, true);
  // Both snapshots open: the latest with the new password, the first with its own.
  assert.deepEqual(await fileLines(), await listingFiles());
  const first = await fileLines(['--snapshot', firstSnapshot]);
  assert.ok(first.length > 0);
  const d = await ok(['diff', firstSnapshot, 'latest', '--dest', dest, '--json']);
  const diff = JSON.parse(d.out) as { added: number; removed: number; changed: number };
  assert.ok(diff.added >= 2 && diff.removed >= 1 && diff.changed >= 1, d.out);
  const st = JSON.parse(
    (await ok(['encryption', 'status', '--udid', cs.sim.udid, '--json'])).out,
  ) as { eras: number };
  assert.equal(st.eras, 2, 'one password per keybag era');
});

test('a stored password that does not match: the backup is still committed, the outcome says so', async () => {
  // A computer whose store holds a wrong password and no earlier ones (another data folder).
  const other = path.join(cs.tmp, 'mismatch-data');
  const run = (args: string[]): ReturnType<typeof runMooring> =>
    runMooring([...args, '--usbmuxd', cs.gate.address, '--data-dir', other]);
  const wrong = await writeSecret('mismatch.txt', 'a wrong password');
  const set = await run([
    'encryption',
    'password',
    '--udid',
    cs.sim.udid,
    '--dest',
    dest,
    '--password-file',
    wrong,
  ]);
  assert.equal(set.code, 1, 'stored, but said not to open the latest backup');
  assert.match(set.err, /does not open the latest backup/);
  const before = (await run(['snapshots', '--dest', dest, '--json'])).out;
  const r = await run(['backup', '--dest', dest, '--json']);
  assert.equal(r.code, 0, r.err + r.out);
  assert.equal(r.result?.ok, true);
  assert.deepEqual(r.result?.encryption, { opened: false, problem: 'MISMATCH' });
  assert.match(
    String(r.result?.message),
    /Mooring cannot open this backup: the stored password does not match; run "mooring encryption password --udid/,
  );
  const after = (await run(['snapshots', '--dest', dest, '--json'])).out;
  assert.equal(
    (JSON.parse(after) as unknown[]).length,
    (JSON.parse(before) as unknown[]).length + 1,
    'committed: the device produced a complete, restorable backup',
  );
});

test("idevicebackup2 restores Mooring's encrypted backup into a wiped device", async () => {
  const before = await cs.listing();
  await cs.sim.ctl('wipe');
  assert.notDeepEqual(await cs.listing(), before);
  const out = await realTool(cs.sim.usbmuxdAddress, 'idevicebackup2', [
    '-u',
    cs.sim.udid,
    'restore',
    '--system',
    '--settings',
    '--no-reboot',
    '--password',
    secondPassword,
    dest,
  ]);
  assert.match(out, /Restore Successful\./);
  assert.deepEqual(await cs.listing(), before);
});

test('change: the old password from the store, the new one stored; the old one kept for its era', async () => {
  const p3 = await writeSecret('p3.txt', 'third password');
  const r = await ok([
    'encryption',
    'change',
    '--udid',
    cs.sim.udid,
    '--password-file',
    p3,
    '--dest',
    dest,
  ]);
  assert.match(r.out, /backup password is changed/);
  const secret = JSON.parse(
    await fsp.readFile(path.join(data, 'secrets', `${cs.sim.udid.toUpperCase()}.json`), 'utf8'),
  ) as { current: { password: string }; eras: Array<{ password: string }> };
  assert.equal(secret.current.password, 'third password');
  assert.ok(
    secret.eras.some((e) => e.password === secondPassword),
    'the era of the old password',
  );
  // The device now encrypts with the new password: the next backup opens with it.
  const next = await backup();
  assert.equal((next.encryption as { opened: boolean }).opened, true);
});
