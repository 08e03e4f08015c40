import { test } from 'node:test';
import assert from 'node:assert/strict';
import { recoverySheetHtml } from '../../src/secrets';
import { escapeHtml } from '../../src/util/html';

test('the recovery sheet holds device, UDID, date, password, where it is kept and how to restore', () => {
  const html = recoverySheetHtml({
    deviceName: 'Ann’s iPhone',
    udid: '00008030-001A35E2116B802E',
    password: 'ABCDE-FGHJK-23456-789AB-CDEFG-HJKMN',
    date: new Date('2026-11-22T08:00:00Z'),
    storedAt: 'a file readable only by you: /home/ann/.local/share/mooring/secrets/X.json',
    backupDir: '/backups',
  });
  for (const needle of [
    'Ann’s iPhone',
    '00008030-001A35E2116B802E',
    '2026-11-22',
    'ABCDE-FGHJK-23456-789AB-CDEFG-HJKMN',
    'readable only by you',
    'Restore Backup',
    'idevicebackup2 -u 00008030-001A35E2116B802E -i restore',
    'Health',
  ]) {
    assert.ok(html.includes(needle), needle);
  }
  assert.ok(
    !/<script|<link|<img|src=|https?:/i.test(html),
    'self-contained: nothing loaded, nothing run',
  );
  const notKept = recoverySheetHtml({
    deviceName: 'x',
    udid: 'u',
    password: 'p',
    date: new Date(),
  });
  assert.match(notKept, /this sheet may be the only copy/);
});

test('everything a device or a user typed is escaped', () => {
  const html = recoverySheetHtml({
    deviceName: '<script>alert(1)</script>',
    udid: 'u',
    password: 'a<b>&"c\'',
    date: new Date(),
  });
  assert.ok(!html.includes('<script>alert'));
  assert.ok(html.includes('&lt;script&gt;alert(1)&lt;/script&gt;'));
  assert.ok(html.includes('a&lt;b&gt;&amp;&quot;c&#39;'));
  assert.equal(escapeHtml(`&<>"'`), '&amp;&lt;&gt;&quot;&#39;');
});
