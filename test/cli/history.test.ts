/**
 * The history commands over two real backups of the embedded simulator: snapshots, pin, prune
 * (dry run), verify (also of a damaged copy), files, extract, diff.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, truncate, readdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { mooring } from './run-cli';
import { startSim, type RunningSim } from '../../src/sim';

describe('mooring snapshots / pin / prune / verify / files / extract / diff', () => {
  let tmp: string;
  let sim: RunningSim;
  let dest: string;
  let common: string[];
  let ids: string[] = [];
  let mutated: { added: string[]; modified: string[]; deleted: string[] };

  before(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'mooring-history-'));
    dest = path.join(tmp, 'backups');
    sim = await startSim({ stateDir: path.join(tmp, 'sim'), files: 40, bytes: 1_000_000, seed: 7 });
    common = ['--usbmuxd', sim.usbmuxdAddress, '--data-dir', path.join(tmp, 'data')];
    const paired = await mooring('pair', ...common);
    assert.equal(paired.code, 0, paired.err);
    const first = await mooring('backup', '--dest', dest, ...common);
    assert.equal(first.code, 0, first.err);
    mutated = (await sim.ctl('mutate', { add: 2, modify: 2, delete: 1 })) as typeof mutated;
    const second = await mooring('backup', '--dest', dest, ...common);
    assert.equal(second.code, 0, second.err);
    const listed = await mooring('snapshots', '--dest', dest, '--json');
    ids = (JSON.parse(listed.out) as Array<{ id: string }>).map((s) => s.id);
  });
  after(async () => {
    await sim.stop();
    await rm(tmp, { recursive: true, force: true });
  });

  it('lists both snapshots, the latest last, each holding only its own changed bytes', async () => {
    const r = await mooring('snapshots', '--dest', dest, '--json');
    const list = JSON.parse(r.out) as Array<{
      id: string;
      isLatest: boolean;
      size: number;
      exclusiveBytes: number;
    }>;
    assert.equal(list.length, 2);
    assert.equal(list[1]!.isLatest, true);
    for (const s of list) assert.ok(s.exclusiveBytes < s.size / 2, JSON.stringify(s));
    const text = await mooring('snapshots', '--dest', dest);
    assert.match(text.out, /latest/);
  });

  it('pins, and a dry-run prune with a zero-day policy keeps the pinned and the latest', async () => {
    const none = await mooring(
      'prune',
      '--dest',
      dest,
      '--keep-all',
      '0d',
      '--daily',
      '0d',
      '--weekly',
      '0d',
      '--dry-run',
      '--json',
    );
    assert.equal(none.code, 0, none.err);
    const plan = JSON.parse(none.out) as { removed: Array<{ id: string }> };
    assert.deepEqual(
      plan.removed.map((d) => d.id),
      [ids[0]],
    );

    assert.equal((await mooring('pin', ids[0]!, '--dest', dest)).code, 0);
    const pinned = await mooring(
      'prune',
      '--dest',
      dest,
      '--keep-all',
      '0d',
      '--daily',
      '0d',
      '--weekly',
      '0d',
      '--dry-run',
      '--json',
    );
    assert.deepEqual((JSON.parse(pinned.out) as { removed: unknown[] }).removed, []);
    assert.equal((await mooring('unpin', ids[0]!, '--dest', dest)).code, 0);
  });

  it('diff shows exactly the mutation; files and extract bring back a deleted file', async () => {
    const d = await mooring('diff', ids[0]!, ids[1]!, '--dest', dest, '--json');
    assert.equal(d.code, 0, d.err);
    const diff = JSON.parse(d.out) as { added: number; removed: number; changed: number };
    assert.equal(diff.added, mutated.added.length);
    assert.equal(diff.removed, mutated.deleted.length);
    assert.equal(diff.changed, mutated.modified.length);

    const gone = mutated.deleted[0]!; // "domain/relativePath"
    const slash = gone.indexOf('/');
    const domain = gone.slice(0, slash);
    const rel = gone.slice(slash + 1);
    const inOld = await mooring(
      'files',
      '--dest',
      dest,
      '--snapshot',
      ids[0]!,
      '--domain',
      domain,
      rel,
      '--json',
    );
    assert.equal(inOld.out.split('\n').filter(Boolean).length >= 1, true, inOld.out);
    const inNew = await mooring('files', '--dest', dest, '--domain', domain, rel, '--json');
    assert.equal(inNew.out.trim(), '');

    const to = path.join(tmp, 'restored');
    const ex = await mooring(
      'extract',
      '--dest',
      dest,
      '--snapshot',
      ids[0]!,
      '--domain',
      domain,
      rel,
      '--to',
      to,
    );
    assert.equal(ex.code, 0, ex.err);
    const got = await readFile(path.join(to, domain, rel));
    const entry = JSON.parse(inOld.out.split('\n')[0]!) as { size: number; digest?: string };
    assert.equal(got.length, entry.size);
    if (entry.digest) assert.equal(createHash('sha1').update(got).digest('hex'), entry.digest);
  });

  it('verify passes on both snapshots and names the damaged file after a truncation', async () => {
    for (const id of ids) {
      const v = await mooring('verify', '--dest', dest, '--snapshot', id);
      assert.equal(v.code, 0, v.out + v.err);
      assert.match(v.out, /^OK: /);
    }
    // Simulate disk damage: truncate one payload of the latest in place (last test: the inode may
    // be shared with the older snapshot, which is fine here).
    const latest = path.join(dest, sim.udid);
    const bucket = (await readdir(latest)).find((n) => /^[0-9a-f]{2}$/.test(n))!;
    const victim = (await readdir(path.join(latest, bucket)))[0]!;
    await truncate(path.join(latest, bucket, victim), 0);
    const bad = await mooring('verify', '--dest', dest, '--json');
    assert.equal(bad.code, 1);
    const report = JSON.parse(bad.out) as { ok: boolean; problems: Array<{ fileId?: string }> };
    assert.equal(report.ok, false);
    assert.ok(
      report.problems.some((p) => p.fileId === victim),
      bad.out,
    );
  });

  it('says what to do when the destination has no backups', async () => {
    const r = await mooring('snapshots', '--dest', path.join(tmp, 'empty'));
    assert.equal(r.code, 2);
    assert.match(r.err, /no device backups in .*pass --dest/);
  });

  it('says what the store found changed outside a backup (its records rebuilt, all pinned)', async () => {
    await writeFile(path.join(dest, '.mooring', sim.udid, 'snapshots.json'), '{"version":1,');
    const r = await mooring('snapshots', '--dest', dest, '--json');
    assert.equal(r.code, 0, r.err);
    assert.match(r.err, /^mooring: .*rebuilt from the folders, with every snapshot pinned/);
    const list = JSON.parse(r.out) as Array<{ pinned: boolean }>;
    assert.equal(list.length, 2);
    assert.ok(list.every((s) => s.pinned));
    // Said once: the records agree with the folders now.
    assert.equal((await mooring('snapshots', '--dest', dest)).err, '');
  });
});
