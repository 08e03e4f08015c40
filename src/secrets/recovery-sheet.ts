/**
 * The recovery sheet: one printable, self-contained HTML page (no scripts, no external resources)
 * with what a person needs to open an encrypted backup years later without Mooring: the device,
 * the password, what it unlocks, where Mooring keeps it, and how to restore with Finder, iTunes
 * or idevicebackup2. Written 0600 by the caller; it holds the password.
 */
import { escapeHtml } from '../util/html';

export interface RecoverySheet {
  deviceName: string;
  udid: string;
  password: string;
  /** When the password was set (or the sheet made). */
  date: Date;
  /** Where Mooring keeps the password ("a 0600 file at …", "the macOS Keychain …"), if it does. */
  storedAt?: string;
  /** The backup folder, if known. */
  backupDir?: string;
}

export function recoverySheetHtml(s: RecoverySheet): string {
  const e = escapeHtml;
  const date = s.date.toISOString().slice(0, 10);
  const where = s.storedAt
    ? `Mooring keeps this password in ${e(s.storedAt)}. Keep this sheet somewhere else: if this computer is lost, the sheet is what remains.`
    : 'Mooring does not keep this password: this sheet may be the only copy.';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>Backup password: ${e(s.deviceName)}</title>
<style>
  body { font: 12pt/1.5 system-ui, sans-serif; max-width: 44em; margin: 2em auto; color: #000; background: #fff; }
  h1 { font-size: 18pt; margin-bottom: 0.2em; }
  .password { font: bold 20pt/1.4 ui-monospace, monospace; letter-spacing: 0.08em; border: 2px solid #000;
              padding: 0.5em 0.8em; margin: 1em 0; word-break: break-all; }
  dt { font-weight: bold; } dd { margin: 0 0 0.6em 0; }
  code { font-family: ui-monospace, monospace; }
  .note { border-left: 4px solid #000; padding-left: 0.8em; }
  @media print { body { margin: 0; } }
</style>
</head>
<body>
<h1>iPhone backup password</h1>
<p>Recovery sheet made by Mooring on ${e(date)}. Print it or save it, and keep it safe: anyone who has it can read this device's backups.</p>
<dl>
  <dt>Device</dt><dd>${e(s.deviceName)}</dd>
  <dt>UDID</dt><dd><code>${e(s.udid)}</code></dd>
  <dt>Password set</dt><dd>${e(date)}</dd>
  ${s.backupDir ? `<dt>Backups</dt><dd><code>${e(s.backupDir)}</code></dd>` : ''}
</dl>
<div class="password" aria-label="backup password">${e(s.password)}</div>
<h2>What it unlocks</h2>
<p>Every encrypted backup this device makes from now on, until the password is changed or encryption is turned off.
Encrypted backups hold what unencrypted ones leave out: saved passwords (keychain), Health and Activity data, Wi-Fi settings, call and website history.
Without this password those backups cannot be opened or restored by anyone, including Apple and Mooring.</p>
<p class="note">${where}</p>
<h2>How to restore</h2>
<ul>
  <li><b>Finder (macOS 10.15+) or iTunes (Windows):</b> connect the iPhone, choose it, click <i>Restore Backup…</i>, pick the backup, and type this password when asked.</li>
  <li><b>idevicebackup2 (Linux):</b> <code>idevicebackup2 -u ${e(s.udid)} -i restore --system --settings FOLDER</code>,
      where FOLDER holds the <code>${e(s.udid)}</code> backup folder; <code>-i</code> asks for this password
      (<code>--password PASSWORD</code> also works, but leaves it in the shell history).</li>
  <li><b>Mooring:</b> <code>mooring files --udid ${e(s.udid)}</code> lists, <code>mooring extract</code> copies files out of an encrypted backup with this password.</li>
</ul>
<p>Older backups made before a password change still need the password they were made with.</p>
</body>
</html>
`;
}
