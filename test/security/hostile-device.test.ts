/**
 * Issue 7, hostile devices: every evil mode of the simulator against the real backup engine
 * (runBackup over real usbmuxd-style sockets and TLS). Each must end in a clean failure with a clear
 * message, in bounded time (short deadlines here: a hang would show as a test timeout), leave a
 * canary tree beside the backup folder untouched and hand no byte of it to the device, and be
 * classified by the agent as a security notification (DEVICE_MISBEHAVED) where it is one.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, promises as fsp } from 'node:fs';
import path from 'node:path';
import { runBackup, type BackupEvent, type BackupResult } from '../../src/backup';
import { classifyOutcome } from '../../src/agent/outcome-notice';
import type { JobOutcome } from '../../src/job';
import { EVIL_MODES, EVIL_SYMLINK_NAME } from '../../src/sim/backup/evil';
import type { EvilMode } from '../../src/sim/contracts';
import { FaultReport } from '../reliability/report';
import {
  makeTarget,
  startBackupFixture,
  walk,
  withSession,
  type BackupFixture,
} from '../backup/fixture';

/** Short deadlines: a device that trickles or goes quiet must be given up within seconds. */
const TIMEOUTS = {
  setupMs: 3000,
  firstMessageMs: 4000,
  messageMs: 3000,
  blockReadMs: 2000,
  stallNoticeMs: 1000,
};
/** Longest a hostile run may take with those deadlines (generous: 2 loaded cores). */
const MAX_RUN_MS = 15_000;

let f: BackupFixture;
/** The tally docs/RELIABILITY.md quotes (test/reliability/report.ts format). */
const report = new FaultReport('hostile-device');
const CATEGORY = 'hostile device (engine)';

before(async () => {
  f = await startBackupFixture({ seed: 71, files: 12, bytes: 120_000 });
});

after(async () => {
  report.write();
  await f?.close();
  for (const p of strayPaths()) await fsp.rm(p, { recursive: true, force: true });
});

/** Absolute places a hostile device aims at outside any temp folder. */
function strayPaths(): string[] {
  const udid = f?.sim.udid ?? 'none';
  return [`/tmp/mooring-escape-${udid}.txt`, `/tmp/mooring-evil-dir-${udid}`];
}

/** Every entry under `dir` (links not followed) → its content hash, link target or 'dir'. */
async function fingerprint(
  dir: string,
  rel = '',
  out = new Map<string, string>(),
): Promise<Map<string, string>> {
  for (const e of await fsp.readdir(path.join(dir, rel), { withFileTypes: true })) {
    const r = rel === '' ? e.name : `${rel}/${e.name}`;
    const abs = path.join(dir, r);
    if (e.isSymbolicLink()) out.set(r, `link:${await fsp.readlink(abs)}`);
    else if (e.isDirectory()) {
      out.set(r, 'dir');
      await fingerprint(dir, r, out);
    } else
      out.set(
        r,
        createHash('sha256')
          .update(await fsp.readFile(abs))
          .digest('hex'),
      );
  }
  return out;
}

interface Run {
  mode: EvilMode;
  result: BackupResult;
  events: BackupEvent[];
  ms: number;
  logs: Array<Record<string, unknown>>;
}

const SECRET = 'canary: not for the device\n';

async function evilRun(mode: EvilMode, via: 'usb' | 'wifi' = 'usb'): Promise<Run> {
  const target = await makeTarget(f);
  // The canary tree beside the backup folder (where "../.." lands), and a symlink into it.
  const canary = path.join(target.outer, 'canary');
  await fsp.mkdir(path.join(canary, 'deeper'), { recursive: true });
  await fsp.writeFile(path.join(canary, 'secret.txt'), SECRET);
  await fsp.writeFile(path.join(canary, 'deeper', 'b.txt'), 'canary b\n');
  await fsp.symlink(canary, path.join(target.root, f.sim.udid, EVIL_SYMLINK_NAME));
  const before = await fingerprint(target.outer);
  const logStart = f.logs.length;
  const events: BackupEvent[] = [];
  await f.sim.ctl('fault', { name: 'evil', value: mode });
  const t0 = Date.now();
  let result: BackupResult;
  try {
    result = await withSession(f, via, (session) =>
      runBackup({ session, target, timeouts: TIMEOUTS, onEvent: (e) => events.push(e) }),
    );
  } finally {
    await f.sim.ctl('fault', { name: 'evil', value: 'off' });
  }
  const ms = Date.now() - t0;

  // Nothing outside the device's folder changed: the canary tree and the sentinel folder.
  const afterRun = await fingerprint(target.outer);
  for (const [rel, fp] of afterRun) {
    if (
      rel.startsWith(`root/${f.sim.udid}/`) &&
      !rel.startsWith(`root/${f.sim.udid}/${EVIL_SYMLINK_NAME}`)
    )
      continue; // the device's own folder
    if (rel === `root/${f.sim.udid}`) continue;
    assert.equal(
      fp,
      before.get(rel),
      `${mode}: ${rel} appeared or changed outside the device folder`,
    );
  }
  for (const rel of before.keys()) assert.ok(afterRun.has(rel), `${mode}: ${rel} was removed`);
  assert.deepEqual(
    (await walk(target.root)).filter((p) => p.includes('.mooring-tmp-')),
    [],
    `${mode}: a temp file was left behind`,
  );
  for (const p of strayPaths()) assert.equal(existsSync(p), false, `${mode}: ${p} exists`);
  const logs = f.logs.slice(logStart);
  // The device never got a byte of anything outside its folder, nor an accepted escape.
  assert.equal(
    logs.some((l) => l.event === 'mobilebackup2.evil-accepted'),
    false,
    `${mode}: the host accepted something hostile: ${JSON.stringify(logs.filter((l) => String(l.event).startsWith('mobilebackup2.evil')))}`,
  );
  assert.equal(
    logs.some((l) => l.event === 'mobilebackup2.evil'),
    true,
    `${mode}: the simulator never ran the mode`,
  );
  return { mode, result, events, ms, logs };
}

function jobOf(r: BackupResult): JobOutcome {
  return {
    udid: f.sim.udid,
    ok: r.ok,
    result: r,
    stage: 'backup',
    message: r.message,
  } as unknown as JobOutcome;
}

function noticeOf(r: BackupResult): ReturnType<typeof classifyOutcome>['notice'] {
  return classifyOutcome({
    job: jobOf(r),
    transport: 'usb',
    startedAt: Date.now() - r.durationMs,
    now: Date.now(),
    stopping: false,
    folder: '/backups',
  }).notice;
}

/** What each mode must end in: the failure kind, a word of the message, and the notice. */
const EXPECTED: Record<
  EvilMode,
  { failure: BackupResult['failure']; text: RegExp; security: boolean }
> = {
  'path-escape': { failure: 'device-error', text: /outside its backup folder/, security: true },
  'dl-escape': { failure: 'device-error', text: /outside its backup folder/, security: true },
  // Only a symlink on this computer makes these paths unsafe: the folder's problem, not the device's.
  'symlink-escape': { failure: 'device-error', text: /outside its backup folder/, security: false },
  'long-names': {
    failure: 'protocol',
    text: /sent something invalid.*longer than/,
    security: true,
  },
  'oversized-frame': {
    failure: 'protocol',
    text: /sent something invalid.*plist frame/,
    security: true,
  },
  'huge-filename': {
    failure: 'protocol',
    text: /sent something invalid.*file name/,
    security: true,
  },
  'huge-block': { failure: 'protocol', text: /sent something invalid.*block/, security: true },
  'bad-plist': { failure: 'protocol', text: /sent something invalid/, security: true },
  'deep-plist': {
    failure: 'protocol',
    text: /sent something invalid.*(deep|nest)/i,
    security: true,
  },
  'cyclic-plist': {
    failure: 'protocol',
    text: /sent something invalid.*(cycl|itself|deep)/i,
    security: true,
  },
  'plist-huge-count': { failure: 'protocol', text: /sent something invalid/, security: true },
  'truncated-stream': {
    failure: 'connection-lost',
    text: /connection to the device was lost/,
    security: false,
  },
  'slow-frame': { failure: 'protocol', text: /too slowly/, security: true },
  'slow-block': { failure: 'protocol', text: /too slowly/, security: true },
  'endless-messages': { failure: 'protocol', text: /more than 1000 messages/, security: true },
  'dl-wrong-arity': { failure: 'protocol', text: /sent something invalid/, security: true },
  'dl-wrong-type': { failure: 'protocol', text: /sent something invalid/, security: true },
  'dl-not-array': { failure: 'protocol', text: /sent something invalid/, security: true },
  'dl-empty-array': { failure: 'protocol', text: /sent something invalid/, security: true },
  'dl-too-many-elements': { failure: 'protocol', text: /sent something invalid/, security: true },
  'final-wrong-type': { failure: 'protocol', text: /sent something invalid/, security: true },
  'version-wrong-shape': { failure: 'protocol', text: /sent something invalid/, security: true },
  'version-wrong-name': { failure: 'protocol', text: /sent something invalid/, security: true },
  'version-huge-frame': {
    failure: 'protocol',
    text: /sent something invalid.*plist frame/,
    security: true,
  },
  'version-slow': { failure: 'protocol', text: /too slowly/, security: true },
  'version-silent': { failure: 'timeout', text: /stopped responding/, security: false },
  'hello-wrong-shape': { failure: 'protocol', text: /sent something invalid/, security: true },
  'hello-wrong-type': { failure: 'protocol', text: /sent something invalid/, security: true },
  'hello-out-of-step': { failure: 'protocol', text: /sent something invalid/, security: true },
};

for (const mode of EVIL_MODES) {
  test(`${mode}: refused with a clear error, in bounded time, nothing outside touched`, () =>
    report.trial(CATEGORY, mode, async () => {
      const { result, ms } = await evilRun(mode);
      const want = EXPECTED[mode];
      assert.equal(result.ok, false);
      assert.equal(result.failure, want.failure, `${mode}: ${result.message}`);
      assert.match(result.message, want.text, `${mode}`);
      assert.ok(ms < MAX_RUN_MS, `${mode} took ${ms} ms`);
      const n = noticeOf(result);
      if (want.security) {
        assert.equal(n.reasonCode, 'DEVICE_MISBEHAVED', `${mode}: ${n.reasonCode} ${n.message}`);
        assert.equal(n.severity, 'error');
        assert.equal(n.params.security, true);
      } else {
        assert.notEqual(n.reasonCode, 'DEVICE_MISBEHAVED', `${mode}: ${n.message}`);
      }
      report.note(
        CATEGORY,
        mode,
        `${result.failure} in ${ms} ms, ${n.reasonCode}: ${result.message.slice(0, 160)}`,
      );
    }));
}

// The same engine over the Wi-Fi transport (lockdownd on 127.0.0.2): one of each family.
for (const mode of ['dl-escape', 'oversized-frame', 'slow-block', 'hello-wrong-type'] as const) {
  test(`${mode} over Wi-Fi: refused the same way`, () =>
    report.trial('hostile device (engine, Wi-Fi)', mode, async () => {
      const { result, ms } = await evilRun(mode, 'wifi');
      assert.equal(result.failure, EXPECTED[mode].failure, result.message);
      assert.match(result.message, EXPECTED[mode].text);
      assert.ok(ms < MAX_RUN_MS, `${mode} took ${ms} ms`);
      assert.equal(noticeOf(result).reasonCode, 'DEVICE_MISBEHAVED');
    }));
}

test('the device, its fault gone, backs up into the same kind of folder', async () => {
  const target = await makeTarget(f);
  const result = await withSession(f, 'usb', (session) =>
    runBackup({ session, target, timeouts: TIMEOUTS }),
  );
  assert.equal(result.ok, true, result.message);
  assert.equal(noticeOf(result).reasonCode, 'BACKUP_SUCCEEDED');
});
