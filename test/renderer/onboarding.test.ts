/**
 * First run in Debian's Chromium, against a real `mooring agent` (child process) and a simulated
 * iPhone on USB that has never been paired and asks "Trust This Computer?" (`trust: 'prompt'`,
 * answered with `ctl trust accept|deny`): the setup guide opens by itself and can be hidden (kept
 * in local storage); Pair shows the wait, then "Don't Trust" shows the agent's message and leaves
 * the device unpaired; "Trust" pairs it without a reload and Back Up Now backs it up; the Wi-Fi
 * switch (guide and Settings) changes the device's own setting and shows a refusal; retention
 * values are stored (read back through the API) or refused inline; the backup folder moves (read
 * back), a bad one and one during a running backup show the agent's message as it is. Writes
 * docs/screenshots/setup.png (light theme, 1280×800, the folder path masked).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import type { Page } from 'playwright-core';
import type { AgentStatus, DeviceStatus } from '../../src/agent/types';
import { PAIR_WAIT_TEXT } from '../../src/renderer/pairing';
import { startSim, type RunningSim } from '../../src/sim/index';
import { ROOT } from '../helpers/agent-harness';
import { readAgentFile } from '../../src/api/agent-file';
import { CHROMIUM, MASK_COLOR, openBrowser, type UiBrowser } from './browser';
import { mooring } from '../cli/run-cli';

const SHOTS = path.join(ROOT, 'docs', 'screenshots');
const BIN = path.join(ROOT, 'src', 'bin', 'mooring.ts');
const URL_LINE = /^Mooring agent: ((http:\/\/127\.0\.0\.1:\d+)\/login\?code=[A-Za-z0-9_-]+)\s*$/;
/** Safety nets, not measurements. */
const UI_WAIT = 60_000;
const AGENT_START_MS = 60_000;

interface SpawnedAgent {
  child: ChildProcess;
  url: string;
  loginUrl: string;
  token: string;
  stderr: string[];
}

/**
 * `mooring agent` on the simulator's usbmuxd, no Bonjour (the shared scenario harness pairs every
 * simulator it starts, and this test needs one that is not paired).
 */
async function spawnAgent(dataDir: string, usbmuxd: string): Promise<SpawnedAgent> {
  const env: NodeJS.ProcessEnv = { ...process.env, TZ: 'UTC' };
  delete env.MOORING_TOKEN;
  delete env.USBMUXD_SOCKET_ADDRESS;
  delete env.MOORING_SIM_LOG;
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      BIN,
      'agent',
      '--data',
      dataDir,
      '--listen',
      '127.0.0.1:0',
      '--usbmuxd',
      usbmuxd,
      '--mdns-interface',
      'off',
    ],
    { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const stderr: string[] = [];
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (c: string) => stderr.push(c));
  const line = await new Promise<string>((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error('the agent printed no URL')), AGENT_START_MS);
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (c: string) => {
      buf += c;
      const nl = buf.indexOf('\n');
      if (nl >= 0) {
        clearTimeout(timer);
        resolve(buf.slice(0, nl));
      }
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      reject(new Error(`the agent exited (${code}) before printing its URL`));
    });
  }).catch((e: Error) => {
    child.kill('SIGKILL');
    throw new Error(`${e.message}\n${stderr.join('')}`);
  });
  const m = URL_LINE.exec(line);
  if (!m) {
    child.kill('SIGKILL');
    assert.fail(`unexpected first line: ${line}`);
  }
  // The token is never printed; programs read it from agent.json.
  const file = await readAgentFile(dataDir);
  assert.ok(file, 'agent.json missing');
  return { child, url: m[2]!, loginUrl: m[1]!, token: file.token, stderr };
}

describe(
  'first run: pairing, Wi-Fi, retention and the backup folder in the browser UI',
  { skip: !existsSync(CHROMIUM) && `${CHROMIUM} missing` },
  () => {
    let tmp: string;
    let dataDir: string;
    let sim: RunningSim;
    let agent: SpawnedAgent;
    let ui: UiBrowser;
    let page: Page;
    let udid: string;

    async function api<T>(method: string, route: string, body?: unknown): Promise<T> {
      const res = await fetch(`${agent.url}${route}`, {
        method,
        headers: {
          authorization: `Bearer ${agent.token}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const text = await res.text();
      assert.ok(res.ok, `${method} ${route}: HTTP ${res.status} ${text}`);
      return JSON.parse(text) as T;
    }
    const device = (): Promise<DeviceStatus> => api('GET', `/api/devices/${udid}`);
    const simStatus = async () =>
      (await sim.ctl('status')) as { trustDialog: string; wifiConnections: boolean };

    /** Polls until `probe` holds (bounded; the agent's log comes with a timeout). */
    async function until(what: string, probe: () => Promise<boolean>): Promise<void> {
      for (let i = 0; i < 600; i++) {
        if (await probe()) return;
        await delay(100);
      }
      throw new Error(`timed out waiting for ${what}\n${agent.stderr.join('').slice(-4000)}`);
    }
    const dialogShown = () =>
      until('the Trust dialog', async () => (await simStatus()).trustDialog === 'showing');

    /** Waits until the control `selector` names exists and is enabled (it may be re-rendered). */
    const enabled = (selector: string) =>
      page.waitForFunction(
        `(() => { const e = document.querySelector(${JSON.stringify(selector)}); return e !== null && !e.disabled; })()`,
        undefined,
        { timeout: UI_WAIT },
      );
    const card = () => page.locator(`.device-card[data-udid="${udid}"]`);
    const guide = () => page.locator('section.setup-guide');

    before(async () => {
      tmp = await mkdtemp(path.join(os.tmpdir(), 'mooring-ui-setup-'));
      dataDir = path.join(tmp, 'data');
      sim = await startSim({
        stateDir: path.join(tmp, 'sim'),
        usbmuxd: `UNIX:${path.join(tmp, 'usbmuxd.sock')}`,
        files: 12,
        bytes: 200_000,
        seed: 611,
        name: 'Guide iPhone',
        trust: 'prompt',
      });
      udid = sim.udid;
      agent = await spawnAgent(dataDir, sim.usbmuxdAddress);
      ui = await openBrowser();
      page = ui.page;
      await page.goto(agent.loginUrl);
      await page.locator('body[data-ready="true"]').waitFor({ timeout: UI_WAIT });
      mkdirSync(SHOTS, { recursive: true });
    });

    after(async () => {
      await ui?.close();
      if (agent) {
        const exited = new Promise((r) => agent.child.once('close', r));
        agent.child.kill('SIGTERM');
        await Promise.race([exited, delay(10_000)]);
        agent.child.kill('SIGKILL');
      }
      await sim?.stop();
      if (tmp) await rm(tmp, { recursive: true, force: true });
    });

    it('opens the setup guide while nothing is paired; the device offers Pair, not a backup', async () => {
      await card().waitFor({ timeout: UI_WAIT });
      await guide().waitFor();
      assert.equal(await guide().locator('[data-step="pair"] .step-state').textContent(), 'To do');
      await guide().locator(`[data-step="pair"] li[data-udid="${udid}"]`).waitFor();
      assert.equal(await card().locator('.badge').first().textContent(), 'Not paired yet');
      assert.equal(await card().getByRole('button', { name: 'Back Up Now' }).isDisabled(), true);
      assert.equal(
        await card()
          .getByRole('button', { name: `Pair ${udid}` })
          .isEnabled(),
        true,
      );
      // Step 2 waits for a paired device; step 3 shows where backups go now.
      assert.match(
        (await guide().locator('[data-step="wifi"]').textContent()) ?? '',
        /Pair a device first/,
      );
      await guide().locator('form.backup-folder[data-loaded="true"]').waitFor();
      const status = await api<AgentStatus>('GET', '/api/status');
      assert.equal(
        await guide().getByLabel('Back up to this folder').inputValue(),
        status.backupDir,
      );
      await page.screenshot({
        path: path.join(SHOTS, 'setup.png'),
        mask: [page.locator('[data-mask="path"]')],
        maskColor: MASK_COLOR,
      });
      // From now on only the backups the test starts (a newly paired device is otherwise
      // backed up at once).
      await api('PATCH', '/api/config', { paused: 'true' });
      await page.getByRole('button', { name: 'Resume Automatic Backups' }).waitFor();
    });

    it('hiding the guide is remembered; #/welcome still shows it', async () => {
      const other = await ui.context.newPage();
      try {
        await other.goto(`${agent.url}/#/`);
        await other.locator('section.setup-guide').waitFor({ timeout: UI_WAIT });
        await other.getByRole('button', { name: 'Hide Setup Guide' }).click();
        assert.equal(await other.locator('section.setup-guide').count(), 0);
        await other.reload();
        await other.locator('body[data-ready="true"]').waitFor();
        await other.locator(`.device-card[data-udid="${udid}"]`).waitFor();
        assert.equal(await other.locator('section.setup-guide').count(), 0, 'still hidden');
        await other.getByRole('link', { name: 'Setup guide' }).click();
        await other.locator('section.setup-guide').waitFor();
        assert.ok(other.url().endsWith('#/welcome'));
        // Hidden from the welcome page: back to the device list.
        await other.getByRole('button', { name: 'Hide Setup Guide' }).click();
        await other.locator('#devices-title').waitFor();
        await other.evaluate(`localStorage.clear()`);
      } finally {
        await other.close();
      }
    });

    it('Pair, then "Don\'t Trust": the wait is shown, then the agent\'s message; still unpaired', async () => {
      await card()
        .getByRole('button', { name: `Pair ${udid}` })
        .click();
      // The same wait shows in the card and in the guide (one pairing, shared state).
      await card().getByRole('status').filter({ hasText: PAIR_WAIT_TEXT }).waitFor();
      await guide().locator('.pair-message', { hasText: PAIR_WAIT_TEXT }).waitFor();
      assert.equal(
        await card()
          .getByRole('button', { name: `Pair ${udid}` })
          .isDisabled(),
        true,
      );
      await dialogShown();
      await sim.ctl('trust', { answer: 'deny' });
      const message = card().locator('.pair-message');
      await message.filter({ hasText: /tapped "Don't Trust"/ }).waitFor({ timeout: UI_WAIT });
      assert.match((await message.getAttribute('class')) ?? '', /\berror\b/);
      assert.match((await message.textContent()) ?? '', /pair again and tap "Trust"/);
      assert.equal(
        await card()
          .getByRole('button', { name: `Pair ${udid}` })
          .isEnabled(),
        true,
      );
      assert.equal((await device()).paired, false);
    });

    it('Pair from the guide, then "Trust": paired without a reload, and Back Up Now backs it up', async () => {
      await page.evaluate(`window.__sameDocument = true`);
      await guide()
        .getByRole('button', { name: `Pair ${udid}` })
        .click();
      await guide().locator('.pair-message', { hasText: PAIR_WAIT_TEXT }).waitFor();
      await dialogShown();
      await sim.ctl('trust', { answer: 'accept' });
      await card()
        .locator('.pair-message', { hasText: /^Paired with Guide iPhone/ })
        .waitFor({ timeout: UI_WAIT });
      // The first contact's device event names it and enables the backup.
      await card().getByRole('heading', { name: 'Guide iPhone' }).waitFor({ timeout: UI_WAIT });
      const backUp = card().getByRole('button', { name: 'Back Up Now' });
      await enabled(`.device-card[data-udid="${udid}"] [data-action="backup"]`);
      assert.equal(await card().locator('[data-action="pair"]').isVisible(), false);
      assert.equal(await card().locator('.badge').first().textContent(), 'Never backed up');
      assert.equal(await guide().locator('[data-step="pair"] .step-state').textContent(), 'Done');
      assert.equal((await device()).paired, true);
      await backUp.click();
      await card()
        .locator('.badge', { hasText: 'Backed up just now' })
        .waitFor({ timeout: UI_WAIT });
      assert.equal(await page.evaluate('window.__sameDocument'), true, 'no reload happened');
      const attempts = await api<{ items: Array<{ outcome: string }> }>(
        'GET',
        `/api/attempts?udid=${udid}`,
      );
      assert.equal(attempts.items[0]?.outcome, 'success');
    });

    it('the Wi-Fi switch changes the device (guide and Settings) and shows a refusal', async () => {
      const guideSwitch = guide().getByLabel('Back up over Wi-Fi');
      await enabled('.setup-guide [data-setting="wifi"]');
      assert.equal(await guideSwitch.isChecked(), (await simStatus()).wifiConnections);
      assert.equal(await guideSwitch.isChecked(), true);
      await guideSwitch.uncheck();
      await until('Wi-Fi off on the device', async () => !(await simStatus()).wifiConnections);
      await until('Wi-Fi off in the status', async () => (await device()).wifiBackups === false);
      await guide().locator('[data-step="wifi"] .step-state', { hasText: 'To do' }).waitFor();

      await page.goto(`${agent.url}/#/device/${udid}/settings`);
      const box = page.locator('.settings-page [data-setting="wifi"]');
      await box.waitFor();
      assert.equal(await box.isChecked(), false);
      await box.check();
      await until('Wi-Fi on again', async () => (await simStatus()).wifiConnections);
      // The device takes the value before the agent has recorded its answer: wait for both, as above.
      await until('Wi-Fi on in the status', async () => (await device()).wifiBackups === true);
      await enabled('.settings-page [data-setting="wifi"]');

      // Unplugged: the agent refuses; the box returns to what the device has, with the reason.
      await sim.ctl('detach');
      await until('the device unplugged', async () => !(await device()).reachable.usb);
      // A click, not uncheck(): the refusal may put the tick back before uncheck() looks.
      await box.click();
      const error = page.locator('.wifi-switch .field-error');
      await error.filter({ hasText: /is not reachable: connect it by USB/ }).waitFor();
      await enabled('.settings-page [data-setting="wifi"]');
      assert.equal(await box.isChecked(), true);
      assert.equal((await simStatus()).wifiConnections, true);
      await sim.ctl('attach');
      await until('the device back on USB', async () => (await device()).reachable.usb);
    });

    it("retention: values are stored (read back), a bad one shows the agent's message inline", async () => {
      await page.goto(`${agent.url}/#/device/${udid}/settings`);
      const form = page.locator('form.settings');
      await page.locator('form.settings[data-loaded="true"]').waitFor();
      const own = (k: string) => page.locator(`#set-device-${k}-${udid}`);
      const all = (k: string) => page.locator(`#set-global-${k}-${udid}`);
      const save = form.getByRole('button', { name: 'Save' });
      const saved = form.getByRole('status').filter({ hasText: /^Saved\./ });
      assert.equal(await own('keep-all').inputValue(), '14d');
      assert.equal(
        await all('keep-weekly').inputValue(),
        (await api<Record<string, string>>('GET', '/api/config'))['keep-weekly'],
      );

      await own('keep-all').fill('30d');
      await all('keep-weekly').fill('forever');
      await save.click();
      await saved.waitFor();
      const mine = await api<Record<string, string>>('GET', `/api/config?udid=${udid}`);
      assert.equal(mine['keep-all'], '30d');
      const global = await api<Record<string, string>>('GET', '/api/config');
      assert.equal(global['keep-weekly'], 'forever');
      assert.equal(global['keep-all'], '14d', 'the device’s own value stays its own');

      // Shorter daily than "keep all": the agent's message under that field, nothing stored.
      await own('keep-daily').fill('7d');
      await save.click();
      const dailyError = page.locator(`#set-device-keep-daily-${udid}-error`);
      await dailyError.waitFor({ state: 'visible' });
      assert.match(
        (await dailyError.textContent()) ?? '',
        /^keep-daily \(7d\) must be at least keep-all \(30d\)/,
      );
      assert.equal(await own('keep-daily').getAttribute('aria-invalid'), 'true');
      assert.notEqual(
        (await api<Record<string, string>>('GET', `/api/config?udid=${udid}`))['keep-daily'],
        '7d',
      );
      await own('keep-daily').fill('60d');
      // D48: "make room" is the device's own choice, off until chosen.
      const room = own('make-room');
      assert.equal(await room.isChecked(), false);
      assert.equal(await room.getAttribute('type'), 'checkbox');
      await room.check();
      await save.click();
      await saved.waitFor();
      assert.equal(
        (await api<Record<string, string>>('GET', `/api/config?udid=${udid}`))['make-room'],
        'true',
      );
      assert.equal((await api<Record<string, string>>('GET', '/api/config'))['make-room'], 'false');
      await all('keep-all').fill('soon');
      await save.click();
      const allError = page.locator(`#set-global-keep-all-${udid}-error`);
      await allError.waitFor({ state: 'visible' });
      assert.match((await allError.textContent()) ?? '', /^keep-all: .*"forever"/);
      await all('keep-all').fill('14d');

      // Emptied, the device's own value goes: it follows all devices again.
      await own('keep-all').fill('');
      await save.click();
      await saved.waitFor();
      await page.waitForFunction(
        `document.querySelector(${JSON.stringify(`#set-device-keep-all-${udid}`)})?.value === '14d'`,
      );
      assert.equal(
        (await api<Record<string, string>>('GET', `/api/config?udid=${udid}`))['keep-all'],
        '14d',
      );
    });

    it('the backup folder: moved (read back), a bad one and one during a backup refused as the agent says', async () => {
      await page.goto(`${agent.url}/#/device/${udid}/settings`);
      const folderForm = page.locator('.settings-page form.backup-folder');
      await page.locator('.settings-page form.backup-folder[data-loaded="true"]').waitFor();
      const input = folderForm.getByLabel('Back up to this folder');
      const use = folderForm.getByRole('button', { name: 'Use This Folder' });
      const error = folderForm.locator('.field-error');
      const result = folderForm.getByRole('status');
      const before = (await api<AgentStatus>('GET', '/api/status')).backupDir;
      assert.equal(await input.inputValue(), before);

      const moved = path.join(tmp, 'elsewhere', 'backups');
      await input.fill(moved);
      await use.click();
      await result
        .filter({
          hasText: `New backups go to ${moved}. The backups already in ${before} are left there as they are.`,
        })
        .waitFor();
      assert.equal((await api<Record<string, string>>('GET', '/api/config'))['backup-dir'], moved);
      assert.equal((await api<AgentStatus>('GET', '/api/status')).backupDir, moved);

      const file = path.join(tmp, 'a-file');
      await writeFile(file, 'not a folder');
      await input.fill(file);
      await use.click();
      await error.filter({ hasText: `backup-dir: cannot use ${JSON.stringify(file)}: ` }).waitFor();
      assert.match((await error.textContent()) ?? '', /Choose a folder this user may write to$/);
      await input.fill('relative/folder');
      await use.click();
      await error.filter({ hasText: /^backup-dir: .*absolute/ }).waitFor();
      assert.equal((await api<Record<string, string>>('GET', '/api/config'))['backup-dir'], moved);

      // While a backup writes into the current folder the agent refuses, and says so.
      await until('the device on USB', async () => (await device()).reachable.usb);
      await sim.ctl('fault', { name: 'delayFirstMessageMs', value: '8000' });
      await api('POST', `/api/devices/${udid}/backup`, {});
      await until('the backup running', async () => (await device()).running !== null);
      await input.fill(path.join(tmp, 'third'));
      await use.click();
      await error.filter({ hasText: 'backup-dir: a backup is running;' }).waitFor();
      await api('POST', `/api/devices/${udid}/cancel`, {});
      await until('the backup over', async () => (await device()).running === null);
      await sim.ctl('fault', { name: 'delayFirstMessageMs', value: '0' });
      assert.equal((await api<AgentStatus>('GET', '/api/status')).backupDir, moved);

      // "Use Default": the agent's own folder again.
      await folderForm.getByRole('button', { name: 'Use Default' }).click();
      await result.filter({ hasText: `New backups go to ${before}.` }).waitFor();
      assert.equal(await input.inputValue(), before);
      assert.equal((await api<AgentStatus>('GET', '/api/status')).backupDir, before);
    });

    it('no page error and no Content-Security-Policy violation happened', () => {
      // Expected failed requests: "Don't Trust" (409), refused settings and Wi-Fi (400).
      const expected = /status of (409|400) .*\/api\/(devices\/[^/]+\/(pair|wifi)|config)/;
      assert.deepEqual(
        ui.problems.filter((p) => !expected.test(p)),
        [],
      );
    });
  },
);

describe(
  'no usbmuxd yet: the page says why USB is unavailable, until it comes',
  { skip: !existsSync(CHROMIUM) && `${CHROMIUM} missing` },
  () => {
    let tmp: string;
    let agent: SpawnedAgent | undefined;
    let ui: UiBrowser | undefined;
    let sim: RunningSim | undefined;

    before(async () => {
      tmp = await mkdtemp(path.join(os.tmpdir(), 'mooring-ui-no-usbmuxd-'));
    });
    after(async () => {
      await ui?.close();
      if (agent) {
        const exited = new Promise((r) => agent!.child.once('close', r));
        agent.child.kill('SIGTERM');
        await Promise.race([exited, delay(10_000)]);
        agent.child.kill('SIGKILL');
      }
      await sim?.stop();
      await rm(tmp, { recursive: true, force: true });
    });

    it('shows usbmuxd’s problem in the header and in `mooring status`, and hides it once USB works', async () => {
      const socket = path.join(tmp, 'usbmuxd.sock');
      const dataDir = path.join(tmp, 'data');
      agent = await spawnAgent(dataDir, `UNIX:${socket}`);
      ui = await openBrowser();
      const page = ui.page;
      await page.goto(agent.loginUrl);
      await page.locator('body[data-ready="true"]').waitFor({ timeout: UI_WAIT });
      const note = page.locator('header .usb-problem');
      await note.waitFor({ timeout: UI_WAIT });
      assert.match(
        (await note.textContent()) ?? '',
        /^USB is not available, so devices cannot be paired or backed up by cable: usbmuxd is not running at .*usbmuxd\.sock.*: install\/start usbmuxd/,
      );
      const status = await mooring('status', '--data', dataDir);
      assert.equal(status.code, 0, status.err);
      assert.match(status.out, /^USB \(usbmuxd\): unavailable;.*\n {2}usbmuxd is not running at /m);

      // usbmuxd starts (the simulator's, at that address): the agent's next Listen finds it.
      sim = await startSim({
        stateDir: path.join(tmp, 'sim'),
        usbmuxd: `UNIX:${socket}`,
        seed: 612,
      });
      await note.waitFor({ state: 'hidden', timeout: UI_WAIT });
      await page.locator(`.device-card[data-udid="${sim.udid}"]`).waitFor({ timeout: UI_WAIT });
      assert.doesNotMatch(
        (await mooring('status', '--data', dataDir)).out,
        /usbmuxd is not running/,
      );
      assert.deepEqual(ui.problems, []);
    });
  },
);
