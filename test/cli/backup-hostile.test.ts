/**
 * Issue 3 acceptance, hostile paths: a device that uploads to `<udid>/../../…` and to an absolute
 * path (the simulator's evil `path-escape` fault) gets an error reply, `mooring backup` fails with a
 * clear message, nothing appears anywhere outside the staging area (a sentinel tree sits beside the
 * destination), the latest backup is untouched, and the attempt with its refused paths is recorded.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, promises as fsp } from 'node:fs';
import path from 'node:path';
import {
  fingerprint,
  readAttemptLines,
  snapshots,
  startCliSim,
  storePaths,
  treeNames,
  verifyOk,
  type CliSim,
} from './backup-fixture';

let cs: CliSim;

before(async () => {
  cs = await startCliSim({ seed: 305, files: 40, bytes: 800_000 });
});

after(async () => {
  await cs?.close();
  await fsp.rm(`/tmp/mooring-escape-${cs?.sim.udid}.txt`, { force: true });
});

test('path-escape: refused with an error reply, written nowhere, recorded', async () => {
  const udid = cs.sim.udid;
  const outer = path.join(cs.tmp, 'outer');
  const dest = path.join(outer, 'dest');
  const p = storePaths(dest, udid);
  // A sentinel tree beside the destination: the first place a "../.." path would land.
  await fsp.mkdir(path.join(outer, 'sentinel', 'deeper'), { recursive: true });
  await fsp.writeFile(path.join(outer, 'sentinel', 'a.txt'), 'sentinel a\n');
  await fsp.writeFile(path.join(outer, 'sentinel', 'deeper', 'b.txt'), 'sentinel b\n');
  const escapes = [
    `/tmp/mooring-escape-${udid}.txt`,
    path.join(outer, `mooring-escape-${udid}.txt`),
  ];
  for (const e of escapes) await fsp.rm(e, { force: true });

  const good = await cs.mooring(['backup', '--dest', dest, '--json']);
  assert.equal(good.code, 0, good.err);
  const before = await snapshots(cs, dest);
  const latestBefore = await fingerprint(p.latest);
  // Everything outside the staging area, with content, except the two files a run must touch.
  const mutable = new Set(['attempts.jsonl', 'lock']);
  const outside = async (): Promise<Map<string, string>> => {
    const all = await fingerprint(outer);
    const stagingRel = path.relative(outer, p.staging) + '/';
    for (const k of [...all.keys()]) {
      if (k.startsWith(stagingRel)) all.delete(k);
      else if (path.dirname(k) === path.relative(outer, p.state) && mutable.has(path.basename(k)))
        all.delete(k);
    }
    return all;
  };
  const outsideBefore = await outside();
  const namesBefore = (await treeNames(outer)).filter(
    (n) => !n.startsWith(path.relative(outer, p.staging)),
  );
  const attemptsBefore = (await readAttemptLines(dest, udid)).length;

  await cs.sim.ctl('mutate', { add: 1, modify: 2 });
  await cs.sim.ctl('fault', { name: 'evil', value: 'path-escape' });
  let r;
  try {
    r = await cs.mooring(['backup', '--dest', dest, '--json']);
  } finally {
    await cs.sim.ctl('fault', { name: 'evil', value: 'off' });
  }
  const refused = [`${udid}/../../mooring-escape-${udid}.txt`, `/tmp/mooring-escape-${udid}.txt`];

  // Failed clearly, with the refusals reported as they happened.
  assert.equal(r.code, 1, r.out + r.err);
  assert.ok(r.result);
  assert.equal(r.result.ok, false);
  assert.equal(r.result.errorCode, 104, 'the device gave up after our error reply');
  assert.deepEqual(r.result.refusedPaths, refused);
  assert.match(String(r.result.message), /outside/i, String(r.result.message));
  assert.deepEqual(
    r.events.filter((e) => e.type === 'refused-path').map((e) => e.path),
    refused,
  );
  // The device was answered with an error: it never logged an accepted escape.
  assert.ok(cs.logs.some((l) => l.event === 'mobilebackup2.evil'));
  assert.equal(
    cs.logs.some((l) => l.event === 'mobilebackup2.evil-accepted'),
    false,
  );

  // Nothing written outside: no escape file anywhere, the staging area gone entirely, every
  // other file beside and inside the destination exactly as it was.
  for (const e of escapes) assert.equal(existsSync(e), false, e);
  assert.deepEqual(await treeNames(p.staging), [], 'no leftover in the staging area');
  assert.deepEqual(
    (await treeNames(outer)).filter((n) => !n.startsWith(path.relative(outer, p.staging))),
    namesBefore.filter((n) => !n.endsWith('/lock')),
  );
  assert.deepEqual(await outside(), outsideBefore);

  // Latest intact and verified; the snapshot list unchanged.
  assert.deepEqual(await fingerprint(p.latest), latestBefore);
  await verifyOk(cs, dest);
  assert.deepEqual(await snapshots(cs, dest), before);

  // The attempt is on record, with what was refused.
  const attempts = await readAttemptLines(dest, udid);
  assert.equal(attempts.length, attemptsBefore + 1);
  const last = attempts[attempts.length - 1]!;
  assert.equal(last.ok, false);
  assert.deepEqual(last.refusedPaths, refused);
  assert.equal(last.errorCode, 104);

  // And the device, its fault gone, backs up fine.
  const next = await cs.mooring(['backup', '--dest', dest, '--json']);
  assert.equal(next.code, 0, next.err);
  assert.equal(next.result?.ok, true);
});
