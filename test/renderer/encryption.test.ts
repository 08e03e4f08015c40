/**
 * H8c: backup encryption in the UI. The wording (pure, encryption-logic.ts), then the real thing
 * in Debian's Chromium against a real `mooring agent` child process and an encrypting simulator
 * (keybag rounds lowered): the Overview's Encryption row, turning encryption on from Settings
 * with a chosen password, the backup that follows opening with it, a wrong password refused by
 * "Store password", the recovery sheet downloaded with the password in it, turning encryption
 * off, and no CSP violation or page error throughout.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { applyConfig } from '../../src/agent/config';
import type { EncryptionStatus } from '../../src/agent/types';
import { openHistory } from '../../src/history';
import { encryptionText, newPasswordOf } from '../../src/renderer/encryption-logic';
import { Scenario } from '../helpers/agent-harness';
import { CHROMIUM, openBrowser, type UiBrowser } from './browser';

const UI_WAIT = 60_000;
const status = (o: Partial<EncryptionStatus>): EncryptionStatus => ({
  on: true,
  passwordStored: true,
  latestOpens: true,
  storeKind: 'file',
  ...o,
});

describe('encryption wording', () => {
  it('says what is known and what to do', () => {
    assert.equal(encryptionText(status({ on: null })).state, 'Not known yet');
    assert.equal(encryptionText(status({ on: false })).state, 'Off');
    assert.equal(encryptionText(status({ passwordStored: false })).tone, 'warn');
    assert.match(encryptionText(status({ passwordStored: false })).detail, /store it below/);
    assert.equal(encryptionText(status({ latestOpens: false })).tone, 'bad');
    assert.match(encryptionText(status({})).detail, /latest backup opens/);
    assert.match(
      encryptionText(status({ storeKind: 'electron-safe-storage', latestOpens: null })).detail,
      /system keychain/,
    );
  });

  it('generates when both new-password fields are empty, and wants them equal otherwise', () => {
    assert.deepEqual(newPasswordOf('', ''), {});
    assert.deepEqual(newPasswordOf('a b c', 'a b c'), { password: 'a b c' });
    assert.ok('error' in newPasswordOf('abc', 'abd'));
    assert.ok('error' in newPasswordOf('abc', ''));
  });
});

describe(
  'the Encryption section against a real agent',
  { skip: !existsSync(CHROMIUM) && `${CHROMIUM} missing` },
  () => {
    let s: Scenario;
    let ui: UiBrowser;
    let page: Page;
    let usb: string;
    const PW = 'ui chosen password 7';

    before(async () => {
      s = await Scenario.start({
        sims: [
          {
            name: 'usb',
            transport: 'usb',
            files: 10,
            bytes: 200_000,
            seed: 813,
            keyBagRounds: { dpic: 10, iter: 10 },
          },
        ],
        startAgent: false,
      });
      usb = s.udid('usb');
      const h = openHistory(path.join(s.dataDir, 'history.db'));
      applyConfig(h, { paused: 'true' }); // only the backup the test starts
      h.close();
      await s.startAgent();
      ui = await openBrowser();
      page = ui.page;
      await page.goto(s.agent!.loginUrl);
      await page.locator('body[data-ready="true"]').waitFor({ timeout: UI_WAIT });
    });
    after(async () => {
      await ui?.close();
      await s?.close();
    });

    it('shows the state on the Overview once the agent has talked to the device', async () => {
      await s.waitFor('first contact', async () => (await s.device(usb)).encryption.on === false);
      await page.goto(`${s.agent!.url}/#/device/${usb}/overview`);
      await page
        .getByTestId('overview-encryption')
        .filter({ hasText: 'Off' })
        .waitFor({ timeout: UI_WAIT });
    });

    it('turns encryption on from Settings; the next backup opens with the password', async () => {
      await page.getByRole('tab', { name: 'Settings' }).click();
      const section = page.getByTestId('encryption');
      await section.getByTestId('encryption-state').filter({ hasText: 'Off' }).waitFor();
      // Different passwords in the two fields: refused in the page, nothing sent.
      await section.getByLabel('New backup password', { exact: true }).fill(PW);
      await section.getByLabel('New password again').fill(`${PW}x`);
      await section.getByRole('button', { name: 'Turn on encryption' }).click();
      await section.getByTestId('encryption-error').filter({ hasText: 'differ' }).waitFor();
      assert.equal((await s.device(usb)).encryption.on, false);

      await section.getByLabel('New backup password', { exact: true }).fill(PW);
      await section.getByLabel('New password again').fill(PW);
      await section.getByRole('button', { name: 'Turn on encryption' }).click();
      await section
        .getByTestId('encryption-result')
        .filter({ hasText: 'Backup encryption is on' })
        .waitFor({ timeout: UI_WAIT });
      await section.getByTestId('encryption-state').filter({ hasText: 'On' }).waitFor();
      assert.equal(
        await section.getByLabel('New backup password', { exact: true }).inputValue(),
        '',
      );
      assert.equal(await section.getByTestId('generated-password').isVisible(), false);
      const d = await s.device(usb);
      assert.deepEqual(d.encryption, {
        on: true,
        passwordStored: true,
        latestOpens: null,
        storeKind: 'file',
      });

      await s.api('POST', `/api/devices/${usb}/backup`, {});
      const a = await s.waitForAttempt(usb, 'the encrypted backup', (x) => x.outcome !== 'running');
      assert.equal(a.outcome, 'success', a.message ?? '');
      await section
        .getByTestId('encryption-detail')
        .filter({ hasText: 'latest backup opens' })
        .waitFor({ timeout: UI_WAIT });
    });

    it('refuses to store a password that does not open the latest backup', async () => {
      const section = page.getByTestId('encryption');
      await section.getByLabel('Backup password to keep').fill('not the one');
      await section.getByRole('button', { name: 'Store password' }).click();
      await section
        .getByTestId('encryption-error')
        .filter({ hasText: 'does not open the latest backup' })
        .waitFor({ timeout: UI_WAIT });
      assert.equal(await section.getByLabel('Backup password to keep').inputValue(), '');
    });

    it('downloads the recovery sheet with the password in it', async () => {
      const section = page.getByTestId('encryption');
      const [download] = await Promise.all([
        page.waitForEvent('download', { timeout: UI_WAIT }),
        section.getByRole('button', { name: 'Recovery sheet', exact: true }).click(),
      ]);
      assert.equal(download.suggestedFilename(), `mooring-recovery-${usb}.html`);
      const file = await download.path();
      const html = readFileSync(file, 'utf8');
      assert.ok(html.includes(PW), 'the sheet holds the password');
      assert.ok(html.includes(usb));
    });

    it('turns encryption off with the stored password', async () => {
      const section = page.getByTestId('encryption');
      await section.getByRole('button', { name: 'Turn off encryption' }).click();
      await section
        .getByTestId('encryption-result')
        .filter({ hasText: 'Backup encryption is off' })
        .waitFor({ timeout: UI_WAIT });
      await section.getByTestId('encryption-state').filter({ hasText: 'Off' }).waitFor();
      assert.equal((await s.device(usb)).encryption.on, false);
      // Chromium reports every non-2xx answer on the console; the expected 409 (the refused
      // password above) is not a problem, anything else is.
      const refusal = /status of 409 \(Conflict\).*\/encryption\/password\)$/;
      assert.deepEqual(
        ui.problems.filter((p) => !refusal.test(p)),
        [],
      );
      // The agent's log never carries the password.
      assert.ok(!s.agent!.stderr.join('').includes(PW));
    });
  },
);
