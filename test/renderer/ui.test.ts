/**
 * The UI in Debian's Chromium, served by a real `mooring agent` (child process) with two
 * simulated iPhones (one on USB, one on Wi-Fi): the device list, Back Up Now with live progress
 * ending as a success entry in Notifications without a reload, Settings stored through the API
 * with the next-run time moving, a revoked pairing shown with its reason and fix, keyboard
 * access, keyset paging over thousands of notifications, and no CSP violation anywhere. Writes
 * docs/screenshots/{devices,notifications,settings,files}.png (light theme, 1280×800).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { applyConfig } from '../../src/agent/config';
import {
  deviceError,
  notDue,
  openHistory,
  wifiUnreachable,
  type NotificationRow,
  type Page as HistoryPage,
} from '../../src/history';
import { ROOT, Scenario } from '../helpers/agent-harness';
import { CHROMIUM, MASK_COLOR, openBrowser, type UiBrowser } from './browser';

const SHOTS = path.join(ROOT, 'docs', 'screenshots');
/** Old notifications seeded for the Wi-Fi device: enough that loading them all would show. */
const SEEDED = 3000;
const UI_WAIT = 60_000;

function cardOf(page: Page, udid: string) {
  return page.locator(`.device-card[data-udid="${udid}"]`);
}

describe(
  'the browser UI against a real agent',
  { skip: !existsSync(CHROMIUM) && `${CHROMIUM} missing` },
  () => {
    let s: Scenario;
    let ui: UiBrowser;
    let page: Page;
    let usb: string;
    let wifi: string;

    before(async () => {
      s = await Scenario.start({
        sims: [
          { name: 'usb', transport: 'usb', files: 60, bytes: 12_000_000, seed: 501 },
          { name: 'wifi', transport: 'wifi', wifiHost: '127.0.0.5', seed: 502 },
        ],
        startAgent: false,
      });
      usb = s.udid('usb');
      wifi = s.udid('wifi');
      // Paused, so the only backups are the ones the test starts; the Wi-Fi device never backs
      // up by schedule, and has years of old notifications for the paging test.
      const h = openHistory(path.join(s.dataDir, 'history.db'));
      applyConfig(h, { paused: 'true' });
      applyConfig(h, { enabled: 'false' }, wifi);
      h.upsertDevice({ udid: wifi });
      const t0 = Date.now() - SEEDED * 60_000;
      for (let i = 0; i < SEEDED; i++) {
        const at = t0 + i * 60_000;
        const notice =
          i % 10 === 0
            ? deviceError({ code: 105, description: `seeded ${i}` })
            : i % 3 === 0
              ? wifiUnreachable({ address: `10.0.0.${i % 250}` })
              : notDue({ nextDueAt: at + 3600_000, now: at });
        h.addNotification({ ...notice, udid: wifi, at });
      }
      h.close();
      await s.startAgent();
      ui = await openBrowser();
      page = ui.page;
      // The printed one-time login link becomes an HttpOnly session cookie, and the address loses it.
      await page.goto(s.agent!.loginUrl);
      assert.equal(page.url(), `${s.agent!.url}/`);
      await page.locator('body[data-ready="true"]').waitFor({ timeout: UI_WAIT });
      mkdirSync(SHOTS, { recursive: true });
    });

    after(async () => {
      await ui?.close();
      await s?.close();
    });

    it('serves the page and its files with the strict CSP, and nothing outside ui/', async () => {
      const base = s.agent!.url;
      const cookie = { cookie: `mooring_token=${s.agent!.token}` };
      const index = await fetch(`${base}/`, { headers: cookie });
      assert.equal(index.status, 200);
      assert.match(index.headers.get('content-type') ?? '', /^text\/html/);
      const csp = index.headers.get('content-security-policy') ?? '';
      for (const d of [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "frame-ancestors 'none'",
      ]) {
        assert.ok(csp.includes(d), `${d} in ${csp}`);
      }
      assert.equal(index.headers.get('x-content-type-options'), 'nosniff');
      assert.match(await index.text(), /<script type="module" src="ui\/main\.js">/);
      const js = await fetch(`${base}/ui/main.js`);
      assert.equal(js.status, 200);
      assert.match(js.headers.get('content-type') ?? '', /^text\/javascript/);
      // Without a session: the sign-in page, not the UI.
      const anonymous = await fetch(`${base}/`, { redirect: 'manual' });
      assert.equal(anonymous.status, 303);
      assert.equal(anonymous.headers.get('location'), '/login');
      assert.match(await (await fetch(`${base}/login`)).text(), /Sign in/);
      for (const bad of [
        '/ui/',
        '/ui/views',
        '/ui/../index.html',
        '/ui/%2e%2e/index.html',
        '/ui/.built',
        '/ui/x.ts',
        '/ui/..%2F..%2Fpackage.json',
      ]) {
        assert.equal((await fetch(`${base}${bad}`)).status, 404, bad);
      }
    });

    it('lists both simulated devices with their state', async () => {
      await cardOf(page, usb).waitFor({ timeout: UI_WAIT });
      await cardOf(page, wifi).waitFor({ timeout: UI_WAIT });
      assert.equal(await page.locator('.device-card').count(), 2);
      const usbCard = cardOf(page, usb);
      assert.equal(await usbCard.getByRole('heading').textContent(), 'Scenario usb');
      assert.match((await usbCard.locator('.facts').textContent()) ?? '', /Connection\s*USB/);
      await usbCard.locator('.badge', { hasText: 'Never backed up' }).waitFor();
      assert.match((await cardOf(page, wifi).locator('.facts').textContent()) ?? '', /Wi-Fi/);
      assert.equal(await page.getByRole('button', { name: 'Resume Automatic Backups' }).count(), 1);
    });

    it('Back Up Now shows live progress, then a success entry in Notifications without a reload', async () => {
      // The device holds the backup for a moment before it sends anything: progress is visible.
      await s.sim('usb').ctl('fault', { name: 'delayFirstMessageMs', value: '2500' });
      // Everything the progress line says, recorded in the page as it changes.
      await page.evaluate(`(() => {
      window.__mooringMarker = 'same page';
      window.__progressSeen = [];
      new MutationObserver(() => {
        for (const el of document.querySelectorAll('.progress-text')) {
          const t = el.textContent;
          if (t && window.__progressSeen[window.__progressSeen.length - 1] !== t) window.__progressSeen.push(t);
        }
      }).observe(document.body, { subtree: true, childList: true, characterData: true });
    })()`);
      // A second tab has the device's Notifications open before the backup starts: whatever
      // appears there later came through the event stream.
      const other = await ui.context.newPage();
      try {
        await other.goto(`${s.agent!.url}/#/device/${usb}/notifications`);
        await other.locator('.notice').first().waitFor({ timeout: UI_WAIT });
        const success = other.locator('.notice[data-reason="BACKUP_SUCCEEDED"]');
        assert.equal(await success.count(), 0);
        await other.evaluate(`window.__mooringMarker = 'same page'`);

        const card = cardOf(page, usb);
        await card.getByRole('button', { name: 'Back Up Now' }).click();
        await card.locator('.progress-row').waitFor({ state: 'visible', timeout: UI_WAIT });
        await card.getByRole('button', { name: 'Cancel Backup' }).waitFor();
        await card
          .getByRole('status')
          .filter({ hasText: 'Backup of Scenario usb started.' })
          .waitFor();

        await success.first().waitFor({ timeout: UI_WAIT });
        assert.match((await success.first().textContent()) ?? '', /Info.*backup finished/i);
        const order = (await other.evaluate(
          `[...document.querySelectorAll('.notice')].map((e) => Number(e.dataset.id))`,
        )) as number[];
        assert.ok(
          order.every((id, i) => i === 0 || id < order[i - 1]!),
          `newest first: ${order}`,
        );
        assert.equal(
          await other.evaluate('window.__mooringMarker'),
          'same page',
          'no reload happened',
        );
        await other.locator('.device-head .badge', { hasText: /Backed up/ }).waitFor();
      } finally {
        await other.close();
      }
      // The list's card went through the phases and the copying, then back to its resting state.
      await cardOf(page, usb).locator('.badge', { hasText: 'Backed up just now' }).waitFor();
      assert.equal(await cardOf(page, usb).locator('.progress-row').isVisible(), false);
      assert.equal(
        await page.evaluate('window.__mooringMarker'),
        'same page',
        'no reload happened',
      );
      const seen = (await page.evaluate('window.__progressSeen')) as string[];
      assert.ok(
        seen.length >= 2,
        `the progress line changed while it ran: ${JSON.stringify(seen)}`,
      );
      assert.ok(
        seen.some((t) => /^(Connecting|Preparing)…$/.test(t)),
        JSON.stringify(seen),
      );
      assert.ok(
        seen.some((t) => /^Backing up… .*\d+(\.\d)? (KB|MB)\)$/.test(t)),
        JSON.stringify(seen),
      );
      const attempt = (await s.attempts(usb))[0]!;
      assert.equal(attempt.outcome, 'success');
      await s.sim('usb').ctl('fault', { name: 'delayFirstMessageMs', value: '0' });

      // The Overview's timeline shows the new snapshot.
      await cardOf(page, usb).getByRole('link', { name: 'Scenario usb' }).click();
      await page.locator('svg.timeline rect.bar').first().waitFor();
      assert.equal(await page.locator('svg.timeline rect.bar').count(), 1);
      assert.equal(
        await page.locator('svg.timeline rect.bar').getAttribute('data-snapshot'),
        attempt.snapshotId,
      );
    });

    it('Files: a snapshot’s files by domain, a download, and the diff of two snapshots', async (t) => {
      const probe = await fetch(`${s.agent!.url}/api/devices/${usb}/snapshots`, {
        headers: { authorization: `Bearer ${s.agent!.token}` },
      });
      if (probe.status === 404 && /no API route/.test(await probe.text())) {
        t.skip('the agent has no snapshot routes yet');
        return;
      }
      // A second snapshot with some changes, so there is something to compare.
      await s.sim('usb').ctl('mutate', { add: 3, modify: 2, delete: 1 });
      const started = await s.api<{ started: boolean }>('POST', `/api/devices/${usb}/backup`);
      assert.equal(started.started, true);
      await s.waitFor('the second snapshot', async () => {
        const a = await s.attempts(usb);
        return a.filter((x) => x.outcome === 'success').length === 2;
      });
      type Snap = { id: string; at: number; isLatest: boolean; addedBytes: number };
      const snaps = await s.api<Snap[]>('GET', `/api/devices/${usb}/snapshots`);
      assert.equal(snaps.length, 2);
      const [older, latest] = [...snaps].sort((a, b) => a.at - b.at) as [Snap, Snap];

      await page.goto(`${s.agent!.url}/#/device/${usb}/overview`);
      await page.locator('svg.timeline rect.bar').nth(1).waitFor();
      assert.deepEqual(
        await page.evaluate(
          `[...document.querySelectorAll('svg.timeline rect.bar')].map((e) => e.dataset.snapshot)`,
        ),
        [older.id, latest.id],
      );

      await page.getByRole('tab', { name: 'Files' }).click();
      const snapshot = page.getByLabel('Snapshot', { exact: true });
      await page.locator('.files-table tbody tr').first().waitFor({ timeout: UI_WAIT });
      assert.equal(await snapshot.inputValue(), latest.id);
      assert.equal(await snapshot.locator('option').count(), 2);
      await page.getByLabel('Domain', { exact: true }).fill('HomeDomain');
      await page.getByLabel('Path', { exact: true }).fill('*.plist');
      await page.getByRole('button', { name: 'Show Files' }).click();
      type Files = {
        items: Array<{ domain: string; relativePath: string; size: number; type: string }>;
      };
      const api = await s.api<Files>(
        'GET',
        `/api/devices/${usb}/snapshots/${latest.id}/files?domain=HomeDomain&pattern=${encodeURIComponent('*.plist')}`,
      );
      assert.ok(api.items.length > 0);
      await page.locator('.list-status', { hasText: `${api.items.length} entr` }).waitFor();
      assert.deepEqual(
        await page.evaluate(
          `[...document.querySelectorAll('.files-table tbody tr')].map((e) => e.dataset.path)`,
        ),
        api.items.map((f) => f.relativePath),
      );
      const file = api.items.find((f) => f.type === 'file')!;
      const [download] = await Promise.all([
        page.waitForEvent('download'),
        page.getByRole('link', { name: `Download HomeDomain ${file.relativePath}` }).click(),
      ]);
      const saved = await download.path();
      const { readFile } = await import('node:fs/promises');
      const got = await readFile(saved);
      assert.equal(got.length, file.size);
      const expected = Buffer.from(
        await (
          await fetch(
            `${s.agent!.url}/api/devices/${usb}/snapshots/${latest.id}/file?domain=HomeDomain&path=${encodeURIComponent(file.relativePath)}`,
            { headers: { authorization: `Bearer ${s.agent!.token}` } },
          )
        ).arrayBuffer(),
      );
      assert.ok(got.equals(expected), 'the downloaded bytes are the snapshot’s');

      type Diff = { added: number; removed: number; changed: number; entries: unknown[] };
      const diff = await s.api<Diff>(
        'GET',
        `/api/devices/${usb}/diff?from=${older.id}&to=${latest.id}`,
      );
      assert.ok(diff.added + diff.removed + diff.changed > 0, JSON.stringify(diff));
      assert.equal(await page.getByLabel('From', { exact: true }).inputValue(), older.id);
      assert.equal(await page.getByLabel('To', { exact: true }).inputValue(), latest.id);
      await page.getByRole('button', { name: 'Compare' }).click();
      await page
        .locator('.diff-summary', {
          hasText: `${diff.added} added, ${diff.removed} removed, ${diff.changed} changed.`,
        })
        .waitFor();
      assert.equal(await page.locator('.diff-entries li').count(), diff.entries.length);

      // Pin the older snapshot from the picker (retention then never removes it), then unpin it.
      type Pins = Array<{ id: string; pinned: boolean }>;
      const pinnedNow = async (): Promise<boolean | undefined> =>
        (await s.api<Pins>('GET', `/api/devices/${usb}/snapshots`)).find((x) => x.id === older.id)
          ?.pinned;
      await snapshot.selectOption(older.id);
      await page.getByRole('button', { name: 'Pin', exact: true }).click();
      await page
        .getByRole('status')
        .filter({ hasText: `Snapshot ${older.id} is pinned` })
        .waitFor();
      await page.getByRole('button', { name: 'Unpin', exact: true }).waitFor();
      assert.match(
        (await snapshot.locator(`option[value="${older.id}"]`).textContent()) ?? '',
        / · pinned$/,
      );
      assert.equal(await snapshot.inputValue(), older.id, 'the choice is kept');
      assert.equal(await pinnedNow(), true);
      await page.getByRole('button', { name: 'Unpin', exact: true }).click();
      await page.getByRole('button', { name: 'Pin', exact: true }).waitFor();
      assert.equal(await pinnedNow(), false);
      await snapshot.selectOption(latest.id);
      await page.getByRole('status').filter({ hasText: 'is no longer pinned' }).waitFor();
      await page.screenshot({ path: path.join(SHOTS, 'files.png') });
    });

    it('Settings: a bad value shows the agent’s message inline; a good one is stored and moves the next run', async () => {
      await page.goto(`${s.agent!.url}/#/device/${usb}/settings`);
      const form = page.locator('form.settings');
      const interval = form.getByLabel('Back up every');
      await page.locator('form.settings[data-loaded="true"]').waitFor();
      assert.equal(await interval.inputValue(), '24h');
      // Unpause first: the agent then plans the next backup a day after the last one.
      await form.getByLabel('Pause automatic backups (all devices)').uncheck();
      await form.getByRole('button', { name: 'Save' }).click();
      await form
        .getByRole('status')
        .filter({ hasText: /^Saved\./ })
        .waitFor();
      const next = form.locator('.next-run');
      await next.filter({ hasText: /in 2\d h/ }).waitFor();
      const before = await next.textContent();

      await interval.fill('1s');
      await form.getByRole('button', { name: 'Save' }).click();
      const error = form.locator('.field-error:not([hidden])');
      await error.waitFor();
      assert.match((await error.textContent()) ?? '', /^interval: "1s" is out of range/);
      assert.equal(await interval.getAttribute('aria-invalid'), 'true');
      assert.equal(
        await page.evaluate(`document.activeElement?.id`),
        await interval.getAttribute('id'),
      );
      assert.equal(
        (await s.api<Record<string, string>>('GET', `/api/config?udid=${usb}`)).interval,
        '24h',
      );

      await interval.fill('12h');
      await form.getByRole('button', { name: 'Save' }).click();
      await form
        .getByRole('status')
        .filter({ hasText: /^Saved\./ })
        .waitFor();
      assert.equal(await error.count(), 0);
      const stored = await s.api<Record<string, string>>('GET', `/api/config?udid=${usb}`);
      assert.equal(stored.interval, '12h');
      assert.equal((await s.api<Record<string, string>>('GET', '/api/config')).paused, 'false');
      const d = await s.device(usb);
      assert.ok(d.next.at !== null && d.lastSuccess !== null, JSON.stringify(d.next));
      assert.ok(Math.abs(d.next.at - (d.lastSuccess + 12 * 3600_000)) < 120_000, JSON.stringify(d));
      const after = await next.textContent();
      assert.notEqual(after, before);
      const hhmm = new Date(d.next.at).toISOString().slice(11, 16);
      assert.match(
        after ?? '',
        new RegExp(`Next backup: today at ${hhmm}|Next backup: tomorrow at ${hhmm}`),
      );
      assert.match(after ?? '', /in 1[12] h/);
      await page.evaluate('window.scrollTo(0, 0)');
      // The backup folder is a temporary path: painted over, so the image stays the same.
      await page.screenshot({
        path: path.join(SHOTS, 'settings.png'),
        mask: [page.locator('[data-mask="path"]')],
        maskColor: MASK_COLOR,
      });

      // The device list now says when each device backs up next (unpaused).
      await page.goto(`${s.agent!.url}/#/`);
      await cardOf(page, usb).locator('.badge', { hasText: 'Backed up just now' }).waitFor();
      await cardOf(page, usb)
        .locator('.facts', { hasText: /in 1[12] h/ })
        .waitFor();
      await page.screenshot({ path: path.join(SHOTS, 'devices.png') });

      // The header's switch follows the agent (unpaused by the form above) and drives it:
      // pause, then resume again, read back each time. Nothing is due, so nothing starts.
      await page.getByRole('button', { name: 'Pause Automatic Backups' }).click();
      await page.getByRole('button', { name: 'Resume Automatic Backups' }).waitFor();
      assert.equal((await s.status()).paused, true);
      await page.getByRole('button', { name: 'Resume Automatic Backups' }).click();
      await page.getByRole('button', { name: 'Pause Automatic Backups' }).waitFor();
      assert.equal((await s.status()).paused, false);
    });

    it('Settings: the agent’s log, shown on request, is the end of its log file', async () => {
      await page.goto(`${s.agent!.url}/#/device/${usb}/settings`);
      const section = page.getByRole('region', { name: 'Agent log' });
      await section.getByRole('button', { name: 'Show Log' }).click();
      const shown = section.locator('pre.agent-log');
      await shown.waitFor();
      const file = path.join(s.dataDir, 'logs', 'agent.log');
      await section.getByText(`In ${file}`).waitFor();
      const text = (await shown.textContent()) ?? '';
      const onDisk = readFileSync(file, 'utf8');
      assert.ok(
        text.length > 0 && onDisk.endsWith(text),
        `${text.slice(-300)}\n---\n${onDisk.slice(-300)}`,
      );
      assert.match(text, /^\d{4}-\d\d-\d\dT[\d:.]+Z /m);
      await section.getByRole('button', { name: 'Refresh' }).waitFor();
    });

    it('a revoked pairing: Back Up Now fails and Notifications shows the reason and the fix', async () => {
      const r = (await s.sim('usb').ctl('revoke-pairing')) as { revoked: number };
      assert.equal(r.revoked, 1);
      await page.goto(`${s.agent!.url}/#/device/${usb}/notifications`);
      await page.locator('.notice').first().waitFor();
      await page.getByRole('tab', { name: 'Overview' }).click();
      await page.getByRole('button', { name: 'Back Up Now' }).click();
      await page.getByRole('tab', { name: 'Notifications' }).click();
      const invalid = page.locator('.notice[data-reason="PAIRING_INVALID"]').first();
      await invalid.waitFor({ timeout: UI_WAIT });
      assert.match((await invalid.locator('.badge').textContent()) ?? '', /Error/);
      assert.match(
        (await invalid.locator('.message').textContent()) ?? '',
        /^Pairing no longer valid: the device no longer trusts this computer/,
      );
      assert.equal(
        await invalid.locator('.fix').textContent(),
        'What to do: Connect the device by USB, unlock it and tap "Trust" (mooring pair --udid …)',
      );
      await page.locator('.device-head .badge', { hasText: 'Not trusted any more' }).waitFor();
      // Only errors.
      await page.getByLabel('Severity').selectOption('error');
      await page.locator('.notice.severity-error').first().waitFor();
      assert.equal(await page.locator('.notice:not(.severity-error)').count(), 0);
      await page.getByLabel('Severity').selectOption('');
      await page.locator('.notice[data-reason="BACKUP_SUCCEEDED"]').first().waitFor();
      await page.screenshot({ path: path.join(SHOTS, 'notifications.png') });
    });

    it('the keyboard reaches Back Up Now, and arrow keys move between the tabs', async () => {
      await page.goto(`${s.agent!.url}/#/`);
      await page.locator('body[data-ready="true"]').waitFor();
      await cardOf(page, usb).waitFor();
      const path_: string[] = [];
      for (let i = 0; i < 20; i++) {
        await page.keyboard.press('Tab');
        const focused = (await page.evaluate(
          `(() => { const e = document.activeElement; return e ? (e.tagName + ':' + (e.textContent || '').trim() + ':' + (e.closest('.device-card')?.dataset.udid || '')) : '' })()`,
        )) as string;
        path_.push(focused);
        if (focused === `BUTTON:Back Up Now:${usb}`) break;
      }
      assert.equal(path_[path_.length - 1], `BUTTON:Back Up Now:${usb}`, path_.join(' → '));
      // Enter on the focused device link opens it; arrows then walk the tabs.
      await cardOf(page, usb).getByRole('link').focus();
      await page.keyboard.press('Enter');
      const overview = page.getByRole('tab', { name: 'Overview' });
      await overview.waitFor();
      await overview.focus();
      await page.keyboard.press('ArrowRight');
      const notifications = page.getByRole('tab', { name: 'Notifications' });
      assert.equal(await notifications.getAttribute('aria-selected'), 'true');
      assert.equal(await page.evaluate(`document.activeElement?.id`), 'tab-notifications');
      await page.keyboard.press('End');
      const last = page.getByRole('tab').last();
      assert.equal(await last.getAttribute('aria-selected'), 'true');
      assert.equal(await page.evaluate(`document.activeElement?.getAttribute('role')`), 'tab');
      assert.ok(page.url().endsWith(`#/device/${usb}/${await last.getAttribute('data-tab')}`));
      await page.keyboard.press('Home');
      assert.equal(await overview.getAttribute('aria-selected'), 'true');
    });

    it('a link to a device builds its page once, though the browser fires popstate and hashchange', async () => {
      await page.goto(`${s.agent!.url}/#/`);
      await page.locator('body[data-ready="true"]').waitFor();
      await cardOf(page, usb).waitFor();
      // Count the views put into <main>, and note both events, from before the link is followed.
      await page.evaluate(`(() => {
        window.__builds = 0;
        window.__events = [];
        new MutationObserver((records) => { window.__builds += records.length; })
          .observe(document.getElementById('main'), { childList: true });
        addEventListener('popstate', () => window.__events.push('popstate'));
        addEventListener('hashchange', () => window.__events.push('hashchange'));
      })()`);
      await cardOf(page, usb).getByRole('link').focus();
      await page.keyboard.press('Enter');
      // Until hashchange has been handled (the page's own listener runs before this one).
      await page.evaluate(`new Promise((resolve) => {
        if (window.__events.includes('hashchange')) resolve(undefined);
        else addEventListener('hashchange', () => setTimeout(resolve, 0), { once: true });
      })`);
      assert.deepEqual(await page.evaluate(`window.__events`), ['popstate', 'hashchange']);
      assert.equal(await page.evaluate(`window.__builds`), 1);
      await page.getByRole('tab', { name: 'Overview' }).waitFor();
    });

    it('opening Notifications marks the device’s notifications read; those not read before say "New"', async () => {
      const unread = async (udid: string): Promise<number> =>
        (await s.notifications(udid)).filter((n) => !n.read).length;
      const usbUnread = await unread(usb);
      const wifiUnread = await unread(wifi);
      assert.ok(wifiUnread >= SEEDED, `the seeded notifications are unread (${wifiUnread})`);
      assert.ok((await s.status()).summary.unread.total >= SEEDED);
      await page.goto(`${s.agent!.url}/#/device/${wifi}/notifications`);
      const first = page.locator('.notice').first();
      await first.waitFor();
      assert.equal(await first.locator('.new').textContent(), 'New');
      assert.match((await first.getAttribute('class')) ?? '', /\bunread\b/);
      // All of the device's notifications, not only the page shown; the other device's stay.
      await s.waitFor(
        'the Wi-Fi device’s notifications read',
        async () => (await unread(wifi)) === 0,
      );
      assert.equal(await unread(usb), usbUnread);
      // Seen once: opened again, nothing is new.
      await page.reload();
      await page.locator('.notice').first().waitFor();
      assert.equal(await page.locator('.notice .new').count(), 0);
      assert.equal(await page.locator('.notice.unread').count(), 0);
    });

    it('a filtered Notifications tab marks read the rows it shows, not the ones the filter hides', async () => {
      // Two errors and two infos of the USB device, unread, written as another process would.
      const h = openHistory(path.join(s.dataDir, 'history.db'));
      const added: NotificationRow[] = [];
      try {
        for (const code of [104, 212])
          added.push(h.addNotification({ ...deviceError({ code }), udid: usb }));
        for (const k of [1, 2]) {
          added.push(
            h.addNotification({
              ...notDue({ nextDueAt: Date.now() + k * 3600_000, now: Date.now() }),
              udid: usb,
            }),
          );
        }
      } finally {
        h.close();
      }
      const errors = added.filter((n) => n.severity === 'error').map((n) => n.id);
      const infos = added.filter((n) => n.severity === 'info').map((n) => n.id);
      // A page that starts hidden (behind another window): nothing it loads is seen yet.
      const hidden = await ui.context.newPage();
      try {
        await hidden.addInitScript(`(() => {
          let state = 'hidden';
          Object.defineProperty(Document.prototype, 'visibilityState', { configurable: true, get: () => state });
          window.__show = () => { state = 'visible'; document.dispatchEvent(new Event('visibilitychange')); };
        })()`);
        await hidden.goto(`${s.agent!.url}/#/device/${usb}/notifications`);
        await hidden.locator(`.notice[data-id="${infos[1]}"]`).waitFor({ timeout: UI_WAIT });
        await hidden.selectOption(`#severity-${usb}`, 'error');
        await hidden.locator(`.notice[data-id="${errors[1]}"]`).waitFor({ timeout: UI_WAIT });
        assert.equal(await hidden.locator(`.notice[data-id="${infos[1]}"]`).count(), 0);
        const readOf = async (): Promise<Map<number, boolean>> =>
          new Map((await s.notifications(usb)).map((n) => [n.id, n.read]));
        const before = await readOf();
        assert.deepEqual(
          [...errors, ...infos].map((id) => before.get(id)),
          [false, false, false, false],
          'not seen while hidden',
        );
        await hidden.evaluate('window.__show()');
        await s.waitFor('the errors shown read', async () => {
          const r = await readOf();
          return errors.every((id) => r.get(id) === true) ? true : undefined;
        });
        const after = await readOf();
        assert.deepEqual(
          infos.map((id) => after.get(id)),
          [false, false],
          'the rows the filter hid stay unread',
        );
      } finally {
        await hidden.close();
      }
    });

    it('Mooring’s own notices (a webhook that fails) are on the device list until marked read', async () => {
      // A webhook nothing listens at, then a warning to send: the send fails, and says so here.
      await s.api('PATCH', '/api/config', { webhook: 'http://127.0.0.1:9/mooring' });
      try {
        await page.goto(`${s.agent!.url}/#/`);
        await page.locator('body[data-ready="true"]').waitFor();
        assert.equal(await page.locator('section.agent-notices').isHidden(), true);
        const usbUnread = async (): Promise<number> =>
          (await s.notifications(usb)).filter((n) => !n.read).length;
        await s.api('POST', `/api/devices/${usb}/backup`, {}).catch(() => undefined);
        const notice = page.locator('section.agent-notices .notice[data-reason="WEBHOOK_FAILED"]');
        await notice.waitFor({ timeout: UI_WAIT });
        assert.match(
          (await notice.locator('.message').textContent()) ?? '',
          /^Mooring could not send its notices to the webhook: .*127\.0\.0\.1:9/,
        );
        assert.match((await notice.locator('.fix').textContent()) ?? '', /Check the webhook URL/);
        const before = await usbUnread();
        await page
          .locator('section.agent-notices')
          .getByRole('button', { name: 'Mark as Read' })
          .click();
        await page.locator('section.agent-notices').waitFor({ state: 'hidden' });
        // Only Mooring's own were marked: the device's stay as they were.
        const own = (await s.notifications()).filter((n) => n.udid === null);
        assert.ok(own.some((n) => n.reasonCode === 'WEBHOOK_FAILED'));
        assert.ok(own.every((n) => n.read));
        assert.equal(await usbUnread(), before);
        await page.reload();
        await page.locator('body[data-ready="true"]').waitFor();
        assert.equal(await page.locator('section.agent-notices').isHidden(), true);
      } finally {
        await s.api('PATCH', '/api/config', { webhook: 'off' });
      }
    });

    it('pages thousands of notifications by keyset: one page at first, more on scroll and on "Load more"', async () => {
      await page.goto(`${s.agent!.url}/#/device/${wifi}/notifications`);
      const items = page.locator('.notice');
      await items.first().waitFor();
      const apiFirst = await s.api<HistoryPage<NotificationRow>>(
        'GET',
        `/api/history?udid=${wifi}&limit=100`,
      );
      await page.locator('.count', { hasText: '100+ shown' }).waitFor();
      assert.equal(await items.count(), 100);
      const ids = async (): Promise<number[]> =>
        (await page.evaluate(
          `[...document.querySelectorAll('.notice')].map((e) => Number(e.dataset.id))`,
        )) as number[];
      assert.deepEqual(
        await ids(),
        apiFirst.items.map((n) => n.id),
      );
      // Scrolling to the end loads the next page (and only that).
      await items.last().scrollIntoViewIfNeeded();
      await page.locator('.count', { hasText: '200+ shown' }).waitFor();
      await page.getByRole('button', { name: 'Load more' }).click();
      await page.locator('.count', { hasText: /^[3-9]00\+ shown/ }).waitFor();
      const all = await ids();
      assert.ok(all.length >= 300 && all.length < SEEDED, String(all.length));
      assert.ok(
        all.every((id, i) => i === 0 || id < all[i - 1]!),
        'newest first, no repeats',
      );
      // The severity filter pages too: only errors, newest first.
      await page.getByLabel('Severity').selectOption('error');
      await page.locator('.count', { hasText: '100+ shown' }).waitFor();
      assert.equal(await page.locator('.notice:not(.severity-error)').count(), 0);
      assert.equal(await page.locator('.notice.severity-error').count(), 100);
    });

    it('uses window.mooring (the Electron preload bridge) when it is there, and no HTTP transport', async () => {
      // A stand-in for Electron's preload (Electron cannot run here): the same MooringBridge
      // shape, forwarding to the real agent. The UI must route every call through it.
      const ipc = await ui.context.newPage();
      try {
        await ipc.addInitScript(`(() => {
          const calls = [];
          window.__bridgeCalls = calls;
          const routes = {
            status: () => ['GET', '/api/status'],
            devices: () => ['GET', '/api/devices'],
            device: (u) => ['GET', '/api/devices/' + encodeURIComponent(u)],
            history: (q) => ['GET', '/api/history?' + new URLSearchParams(q)],
            attempts: (q) => ['GET', '/api/attempts?' + new URLSearchParams(q)],
            getConfig: (u) => ['GET', '/api/config' + (u ? '?udid=' + encodeURIComponent(u) : '')],
            snapshots: (u) => ['GET', '/api/devices/' + encodeURIComponent(u) + '/snapshots'],
            files: (u, snap, q) => ['GET', '/api/devices/' + encodeURIComponent(u) + '/snapshots/' +
              encodeURIComponent(snap) + '/files?' + new URLSearchParams(q)],
            diff: (u, from, to) => ['GET', '/api/devices/' + encodeURIComponent(u) + '/diff?' +
              new URLSearchParams({ from, to })],
          };
          window.__saved = [];
          const listeners = new Set();
          const events = new EventSource('/api/events');
          for (const t of ['device', 'device-removed', 'notification', 'attempt', 'progress', 'agent']) {
            events.addEventListener(t, (m) => { for (const l of listeners) l(JSON.parse(m.data)); });
          }
          window.mooring = Object.freeze({
            call: async (method, ...args) => {
              calls.push(method);
              const r = routes[method];
              if (!r) throw new Error("Error invoking remote method 'mooring:call': Error: not in this stand-in: " + method);
              const [verb, url] = r(...args);
              const res = await fetch(url, { method: verb });
              return res.json();
            },
            onEvent: (l) => { listeners.add(l); return () => listeners.delete(l); },
            // Electron's main process asks where and writes the file; here: fetch and keep it.
            saveFile: async (udid, snapshotId, domain, relativePath) => {
              calls.push('saveFile');
              const res = await fetch('/api/devices/' + encodeURIComponent(udid) + '/snapshots/' +
                encodeURIComponent(snapshotId) + '/file?' + new URLSearchParams({ domain, path: relativePath }));
              const bytes = new Uint8Array(await res.arrayBuffer());
              window.__saved.push({ udid, snapshotId, domain, relativePath, bytes: [...bytes] });
              return { saved: true, path: '/stand-in/' + relativePath.split('/').pop(), bytes: bytes.length };
            },
          });
        })()`);
        await ipc.goto(`${s.agent!.url}/#/device/${usb}/notifications`);
        await ipc.locator('body[data-ready="true"]').waitFor({ timeout: UI_WAIT });
        await ipc.locator('.notice[data-reason="PAIRING_INVALID"]').first().waitFor();
        const calls = (await ipc.evaluate('window.__bridgeCalls')) as string[];
        assert.ok(calls.includes('status') && calls.includes('history'), calls.join(','));
        assert.equal(await ipc.getByRole('tab').count(), 4);

        // The Files tab works through the bridge too: the snapshots, a page of files, a file
        // saved by the bridge's saveFile (a button, not a download link), and the diff.
        type Snap = { id: string; at: number };
        const snaps = (await s.api<Snap[]>('GET', `/api/devices/${usb}/snapshots`)).sort(
          (a, b) => a.at - b.at,
        );
        // Two snapshots: the Files test above made the second.
        assert.ok(snaps.length >= 2, JSON.stringify(snaps));
        const latest = snaps[snaps.length - 1]!;
        await ipc.getByRole('tab', { name: 'Files' }).click();
        await ipc.locator('.files-table tbody tr').first().waitFor({ timeout: UI_WAIT });
        assert.equal(await ipc.getByLabel('Snapshot', { exact: true }).inputValue(), latest.id);
        await ipc.getByLabel('Domain', { exact: true }).fill('HomeDomain');
        await ipc.getByLabel('Path', { exact: true }).fill('*.plist');
        await ipc.getByRole('button', { name: 'Show Files' }).click();
        type Files = { items: Array<{ relativePath: string; size: number; type: string }> };
        const api = await s.api<Files>(
          'GET',
          `/api/devices/${usb}/snapshots/${latest.id}/files?domain=HomeDomain&pattern=${encodeURIComponent('*.plist')}`,
        );
        await ipc.locator('.list-status', { hasText: `${api.items.length} entr` }).waitFor();
        assert.deepEqual(
          await ipc.evaluate(
            `[...document.querySelectorAll('.files-table tbody tr')].map((e) => e.dataset.path)`,
          ),
          api.items.map((f) => f.relativePath),
        );
        assert.equal(await ipc.locator('.files-table a[download]').count(), 0, 'no plain links');
        const file = api.items.find((f) => f.type === 'file' && f.size > 0)!;
        const name = file.relativePath.split('/').pop()!;
        await ipc.getByRole('button', { name: `Save HomeDomain ${file.relativePath}` }).click();
        await ipc
          .locator('.list-status', { hasText: `Saved ${name} (` })
          .filter({ hasText: `to /stand-in/${name}.` })
          .waitFor();
        const saved = (await ipc.evaluate('window.__saved')) as Array<{
          udid: string;
          snapshotId: string;
          domain: string;
          relativePath: string;
          bytes: number[];
        }>;
        assert.equal(saved.length, 1);
        assert.deepEqual(
          { ...saved[0]!, bytes: saved[0]!.bytes.length },
          {
            udid: usb,
            snapshotId: latest.id,
            domain: 'HomeDomain',
            relativePath: file.relativePath,
            bytes: file.size,
          },
        );
        type Diff = { added: number; removed: number; changed: number };
        const diff = await s.api<Diff>(
          'GET',
          `/api/devices/${usb}/diff?from=${snaps[snaps.length - 2]!.id}&to=${latest.id}`,
        );
        await ipc.getByRole('button', { name: 'Compare' }).click();
        await ipc
          .locator('.diff-summary', {
            hasText: `${diff.added} added, ${diff.removed} removed, ${diff.changed} changed.`,
          })
          .waitFor();
        const after = (await ipc.evaluate('window.__bridgeCalls')) as string[];
        for (const m of ['snapshots', 'files', 'saveFile', 'diff']) {
          assert.ok(after.includes(m), `${m} went through the bridge: ${after.join(',')}`);
        }
      } finally {
        await ipc.close();
      }
    });

    it('no page error and no Content-Security-Policy violation happened', () => {
      // The one expected failed request: the deliberately bad setting (HTTP 400).
      const expected = /status of 400 .*\/api\/config\?udid=/;
      assert.deepEqual(
        ui.problems.filter((p) => !expected.test(p)),
        [],
      );
      assert.equal(ui.problems.length, 1, ui.problems.join('\n'));
    });
  },
);
