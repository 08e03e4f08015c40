/**
 * Issue 4 acceptance, the schedule: three simulated iPhones — two on Wi-Fi found through Bonjour on
 * the loopback interface, one on USB through its simulated usbmuxd — come into reach of a running
 * `mooring agent` (started while they were away) and are backed up automatically, each into a
 * complete snapshot, and the next look records NOT_DUE with the time it will be due (a day later,
 * the default interval). With the interval shortened to 12 s each device is backed up again once
 * due (and NOT_DUE names the new time); one device whose window was moved away from now gets
 * OUTSIDE_WINDOW instead. Finally `mooring history --json`, GET /api/history and the sqlite3 tool
 * reading history.db show the same records.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { AttemptRow, NotificationRow, Page } from '../../src/history';
import { exists, Scenario, windowExcludingNow } from '../helpers/agent-harness';

const INTERVAL_MS = 12_000;
const DAY_MS = 24 * 3600_000;

describe('mooring agent: three devices backed up on schedule', () => {
  let s: Scenario;
  const first = new Map<string, AttemptRow>();
  const names = ['wifiA', 'wifiB', 'usb'] as const;

  before(async () => {
    s = await Scenario.start({
      sims: [
        { name: 'wifiA', transport: 'wifi', wifiHost: '127.0.0.2', seed: 411 },
        { name: 'wifiB', transport: 'wifi', wifiHost: '127.0.0.3', seed: 412 },
        { name: 'usb', transport: 'usb', seed: 413 },
      ],
      startAgent: false,
    });
    // Away while the agent starts: they come into reach while it runs.
    await s.sim('wifiA').ctl('offline');
    await s.sim('wifiB').ctl('offline');
    await s.sim('usb').ctl('detach');
    await s.startAgent();
  });
  after(async () => {
    await s?.close();
  });

  it('backs up each device once it comes into reach: two over Wi-Fi (Bonjour), one over USB', async () => {
    await s.sim('wifiA').ctl('online');
    await s.sim('wifiB').ctl('online');
    await s.sim('usb').ctl('attach');

    for (const name of names) {
      const udid = s.udid(name);
      const ok = await s.waitForAttempt(udid, 'the first backup', (a) => a.outcome === 'success');
      first.set(name, ok);
      assert.equal(ok.trigger, 'schedule');
      assert.equal(ok.transport, name === 'usb' ? 'usb' : 'wifi');
      assert.ok(ok.bytes > 500_000, `the content came over (${ok.bytes} bytes)`);
      assert.ok(ok.snapshotId, 'a snapshot was committed');
      assert.equal(ok.reasonCode, 'BACKUP_SUCCEEDED');

      // A complete Finder-format backup on disk, listed as the latest snapshot.
      const dir = s.latestDir(udid);
      for (const f of ['Status.plist', 'Manifest.plist', 'Manifest.db', 'Info.plist']) {
        assert.ok(await exists(path.join(dir, f)), `${name}: ${f}`);
      }
      const snaps = await s.snapshots(udid);
      assert.equal(snaps.length, 1, JSON.stringify(snaps));
      assert.equal(snaps[0]!.isLatest, true);
      assert.equal(snaps[0]!.id, ok.snapshotId);

      const notes = await s.notifications(udid);
      const success = notes.find(
        (n) => n.attemptId === ok.id && n.reasonCode === 'BACKUP_SUCCEEDED',
      );
      assert.ok(success, `${name}: a success notification for attempt ${ok.id}`);
      assert.equal(success.severity, 'info');
      assert.match(
        success.message,
        /^(Full backup|Backup) finished: .+ in .+, \d+ files? changed$/,
      );

      const dev = await s.device(udid);
      assert.equal(dev.paired, true);
      assert.equal(
        name === 'usb' ? dev.reachable.usb : dev.reachable.wifi,
        true,
        JSON.stringify(dev.reachable),
      );
      assert.equal(dev.latestSnapshot?.id, ok.snapshotId);
      assert.ok(dev.lastSuccess !== null && dev.lastSuccess >= ok.startedAt);

      // The next look: not due, and when it will be (the default interval, a day).
      const notDue = await s.waitForNotification(
        `${name}: NOT_DUE`,
        (n) => n.reasonCode === 'NOT_DUE' && n.at >= ok.startedAt,
        udid,
      );
      assert.equal(notDue.kind, 'skip');
      assert.match(
        notDue.message,
        /^Not due yet: last backup .+; next backup tomorrow at \d\d:\d\d$/,
      );
      assert.equal(notDue.params?.nextDueAt, ok.startedAt + DAY_MS);
      const next = (await s.device(udid)).next;
      assert.equal(next.code, 'NOT_DUE');
      assert.equal(next.at, ok.startedAt + DAY_MS);
    }
    // The Wi-Fi ones were dialled at the address their advert gave.
    for (const name of ['wifiA', 'wifiB'] as const) {
      const dev = await s.device(s.udid(name));
      assert.ok(
        dev.address?.startsWith(name === 'wifiA' ? '127.0.0.2' : '127.0.0.3'),
        String(dev.address),
      );
    }
  });

  it('with a 12 s interval: backs up again when due, NOT_DUE with the new time; OUTSIDE_WINDOW for a device whose window is closed', async () => {
    const bUdid = s.udid('wifiB');
    const window = windowExcludingNow();
    const windowSetAt = Date.now();
    const w = await s.cli('config', 'set', 'window', window, '--udid', bUdid);
    assert.equal(w.code, 0, w.err);
    assert.equal(
      (await s.api<Record<string, string>>('GET', `/api/config?udid=${bUdid}`)).window,
      window,
    );
    const set = await s.cli('config', 'set', 'interval', '12s');
    assert.equal(set.code, 0, set.err);
    assert.equal((await s.api<Record<string, string>>('GET', '/api/config')).interval, '12s');

    for (const name of ['wifiA', 'usb'] as const) {
      const udid = s.udid(name);
      const prev = first.get(name)!;
      const second = await s.waitForAttempt(
        udid,
        'the second scheduled backup',
        (a) => a.id > prev.id && a.outcome === 'success',
      );
      assert.equal(second.trigger, 'schedule');
      assert.ok(
        second.startedAt >= prev.startedAt + INTERVAL_MS,
        'not before the interval had passed',
      );
      assert.ok((await s.snapshots(udid)).length >= 2);
      // …and the look after it names the new due time.
      const notDue = await s.waitForNotification(
        `${name}: NOT_DUE after the second backup`,
        (n) =>
          n.reasonCode === 'NOT_DUE' &&
          n.at >= second.startedAt &&
          n.at < second.startedAt + INTERVAL_MS,
        udid,
      );
      assert.equal(notDue.params?.nextDueAt, second.startedAt + INTERVAL_MS);
    }

    const outside = await s.waitForNotification(
      'wifiB: OUTSIDE_WINDOW',
      (n) => n.reasonCode === 'OUTSIDE_WINDOW' && n.at >= windowSetAt,
      bUdid,
    );
    assert.equal(outside.kind, 'skip');
    const [start, end] = window.split('-');
    assert.match(outside.message, new RegExp(`^Outside the backup window \\(${start}–${end}\\)`));
    const dev = await s.device(bUdid);
    assert.equal(dev.next.code, 'OUTSIDE_WINDOW');
    assert.ok(dev.next.at !== null && dev.next.at > Date.now(), 'it says when it will look again');
    const bAttempts = await s.attempts(bUdid);
    assert.deepEqual(
      bAttempts.filter((a) => a.startedAt >= windowSetAt),
      [],
      'no backup of wifiB outside its window',
    );
  });

  it('`mooring history --json`, GET /api/history and history.db (sqlite3) hold the same records', async () => {
    const api = await s.api<Page<NotificationRow>>('GET', '/api/history?limit=500');
    assert.ok(api.items.length >= 8, `${api.items.length} notifications`);
    const cli = await s.cli('history', '--limit', '500', '--json');
    assert.equal(cli.code, 0, cli.err);
    const cliJson = JSON.parse(cli.out) as Page<NotificationRow> | NotificationRow[];
    const cliItems = Array.isArray(cliJson) ? cliJson : cliJson.items;

    const db = path.join(s.dataDir, 'history.db');
    const sql = (q: string): Array<Record<string, unknown>> => {
      const out = execFileSync('sqlite3', ['-readonly', '-json', db, q], { encoding: 'utf8' });
      return out.trim() === '' ? [] : (JSON.parse(out) as Array<Record<string, unknown>>);
    };
    const rows = sql(
      'SELECT id, at, udid, kind, severity, reason_code, message, fix_hint, attempt_id FROM notifications ORDER BY id DESC',
    );
    // The agent may record more while we read: compare what all three had at the oldest reading.
    const upTo = Math.min(api.items[0]!.id, cliItems[0]!.id);
    const shape = (n: {
      id: unknown;
      at: unknown;
      udid: unknown;
      kind: unknown;
      severity: unknown;
      reason: unknown;
      message: unknown;
      fix: unknown;
      attempt: unknown;
    }) => JSON.stringify(n);
    const fromRow = (r: NotificationRow): string =>
      shape({
        id: r.id,
        at: r.at,
        udid: r.udid,
        kind: r.kind,
        severity: r.severity,
        reason: r.reasonCode,
        message: r.message,
        fix: r.fixHint,
        attempt: r.attemptId,
      });
    const fromDb = rows
      .filter((r) => Number(r.id) <= upTo)
      .map((r) =>
        shape({
          id: r.id,
          at: r.at,
          udid: r.udid,
          kind: r.kind,
          severity: r.severity,
          reason: r.reason_code,
          message: r.message,
          fix: r.fix_hint,
          attempt: r.attempt_id,
        }),
      );
    const fromApi = api.items.filter((r) => r.id <= upTo).map(fromRow);
    const fromCli = cliItems.filter((r) => r.id <= upTo).map(fromRow);
    assert.deepEqual(fromApi, fromDb, 'the API shows what the database holds');
    assert.deepEqual(fromCli, fromDb, '`mooring history --json` shows what the database holds');
    // Every reason this scenario produced is in all three.
    const reasons = new Set(rows.map((r) => r.reason_code));
    for (const r of ['BACKUP_SUCCEEDED', 'NOT_DUE', 'OUTSIDE_WINDOW']) assert.ok(reasons.has(r), r);

    // One device's rows, through the filter, the same way.
    const aUdid = s.udid('wifiA');
    const apiA = await s.api<Page<NotificationRow>>('GET', `/api/history?udid=${aUdid}&limit=500`);
    const cliA = await s.cli('history', '--udid', aUdid, '--limit', '500', '--json');
    assert.equal(cliA.code, 0, cliA.err);
    const cliAJson = JSON.parse(cliA.out) as Page<NotificationRow> | NotificationRow[];
    const dbA = sql(`SELECT id FROM notifications WHERE udid = '${aUdid}' ORDER BY id DESC`).map(
      (r) => Number(r.id),
    );
    const upToA = Math.min(
      apiA.items[0]!.id,
      (Array.isArray(cliAJson) ? cliAJson : cliAJson.items)[0]!.id,
    );
    assert.deepEqual(
      apiA.items.filter((r) => r.id <= upToA).map((r) => r.id),
      dbA.filter((id) => id <= upToA),
    );
    assert.deepEqual(
      (Array.isArray(cliAJson) ? cliAJson : cliAJson.items)
        .filter((r) => r.id <= upToA)
        .map((r) => r.id),
      dbA.filter((id) => id <= upToA),
    );

    // The human listing names the same reasons.
    const text = await s.cli('history', '--udid', aUdid);
    assert.equal(text.code, 0, text.err);
    assert.match(text.out, /Not due yet/);
    assert.match(text.out, /finished/);

    // Attempts: the API and the database agree too.
    const attempts = await s.attempts();
    const dbAttempts = sql(
      'SELECT id, udid, outcome, reason_code, snapshot_id FROM attempts ORDER BY id DESC',
    );
    const done = attempts.filter((a) => a.outcome !== 'running');
    assert.deepEqual(
      done.map((a) => [a.id, a.udid, a.outcome, a.reasonCode, a.snapshotId]),
      dbAttempts
        .filter((r) => done.some((a) => a.id === r.id))
        .map((r) => [r.id, r.udid, r.outcome, r.reason_code, r.snapshot_id]),
    );
  });
});
