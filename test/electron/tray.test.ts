/**
 * The tray's pure builders for every device state: the status line of each device, the menu
 * (items, enabled/checked, the action each click asks for) and the icon state + tooltip.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { DeviceStatus } from '../../src/agent/types';
import { summarizeDevice, MAX_LINE_CHARS } from '../../src/electron/device-summary';
import { buildTrayMenu, MAX_MENU_DEVICES, type MenuItemSpec } from '../../src/electron/tray-menu';
import {
  MAX_TOOLTIP_CHARS,
  TRAY_ICON_STATES,
  trayIconFile,
  trayState,
} from '../../src/electron/tray-state';
import { routeOf } from '../../src/electron/actions';
import {
  attempt,
  DAY,
  device,
  facts,
  HOUR,
  NOW,
  running,
  status,
  UDID_A,
  UDID_B,
} from './fixtures';

const line = (d: DeviceStatus, extra: Parameters<typeof facts>[1] = {}): string =>
  summarizeDevice(d, facts([d], extra)).line;

const byId = (items: MenuItemSpec[], id: string): MenuItemSpec => {
  const it = items.find((i) => i.id === id);
  assert.ok(it, `menu item ${id} in ${items.map((i) => i.id).join(', ')}`);
  return it;
};
const menu = (
  devices: DeviceStatus[],
  o: Parameters<typeof facts>[1] = {},
  login: boolean | null = false,
) => buildTrayMenu({ ...facts(devices, o), launchAtLogin: login });

describe('device status line', () => {
  it('backed up N hours ago', () => {
    assert.equal(line(device()), 'Backed up 3 h ago');
    assert.equal(line(device({ lastSuccess: NOW - 20_000 })), 'Backed up just now');
    assert.equal(line(device({ lastSuccess: NOW - 2 * DAY })), 'Backed up 2 days ago');
  });

  it('never backed up', () => {
    const s = summarizeDevice(device({ lastSuccess: null, latestSnapshot: null }), facts([]));
    assert.equal(s.line, 'Not backed up yet');
    assert.equal(s.condition, 'never');
    assert.equal(s.attention, false);
  });

  it('running with a percentage from the progress events of this attempt', () => {
    const d = device({ running: running({ attemptId: 7, bytes: 100 }) });
    const progress = { [UDID_A]: { attemptId: 7, bytes: 4_200, percent: 42.7 } };
    const s = summarizeDevice(d, facts([d], { progress }));
    assert.equal(s.line, 'Backing up… 42%');
    assert.equal(s.percent, 42);
    assert.equal(s.condition, 'running');
  });

  it('running: bytes before the device reports a percentage, and stale progress of an older attempt ignored', () => {
    const d = device({ running: running({ attemptId: 8, bytes: 12_000_000 }) });
    const old = { [UDID_A]: { attemptId: 7, bytes: 9_000, percent: 90 } };
    assert.equal(line(d, { progress: old }), 'Backing up… 12.0 MB');
    const unknown = { [UDID_A]: { attemptId: 8, bytes: 3_400_000, percent: null } };
    assert.equal(line(d, { progress: unknown }), 'Backing up… 3.4 MB');
    assert.equal(line(device({ running: running() })), 'Backing up…');
  });

  it('waiting for the passcode needs the person', () => {
    const s = summarizeDevice(device({ running: running({ passcodeWaiting: true }) }), facts([]));
    assert.equal(s.line, 'Waiting for passcode');
    assert.equal(s.attention, true);
  });

  it('not seen for N days, and never seen', () => {
    const away = device({ reachable: { usb: false, wifi: false }, lastSeen: NOW - 2 * DAY - HOUR });
    assert.equal(line(away), 'Not seen for 2 days');
    const oneDay = device({ reachable: { usb: false, wifi: false }, lastSeen: NOW - 25 * HOUR });
    assert.equal(line(oneDay), 'Not seen for 1 day');
    // Away for a few hours is normal: the line stays about the backup.
    const briefly = device({ reachable: { usb: false, wifi: false }, lastSeen: NOW - 5 * HOUR });
    assert.equal(line(briefly), 'Backed up 3 h ago');
    const never = device({
      reachable: { usb: false, wifi: false },
      lastSeen: null,
      lastSuccess: null,
    });
    assert.equal(line(never), 'Not seen yet');
  });

  it('pairing invalid and expiring', () => {
    const invalid = summarizeDevice(
      device({
        pairing: { health: 'invalid', expiresAt: null, message: 'Pairing no longer valid' },
      }),
      facts([]),
    );
    assert.equal(invalid.line, 'Not paired: connect by USB and tap Trust');
    assert.equal(invalid.attention, true);
    const expiring = summarizeDevice(
      device({ pairing: { health: 'expiring', expiresAt: NOW + 3 * DAY + HOUR, message: null } }),
      facts([]),
    );
    assert.equal(expiring.line, 'Pairing expires in 3 days');
    assert.equal(expiring.attention, true);
    const expired = device({
      pairing: { health: 'expiring', expiresAt: NOW - HOUR, message: null },
    });
    assert.equal(line(expired), 'Pairing may have expired');
  });

  it('failed last time, with the reason, until a later success', () => {
    const d = device({ lastSuccess: NOW - 30 * HOUR });
    const s = summarizeDevice(d, facts([d], { lastAttempt: { [UDID_A]: attempt() } }));
    assert.equal(s.condition, 'failed');
    assert.match(s.line, /^Backup failed 2 h ago: Not enough free space/);
    assert.ok(s.line.length <= MAX_LINE_CHARS);
    assert.equal(s.attention, true);
    const later = device({ lastSuccess: NOW - HOUR });
    assert.equal(line(later, { lastAttempt: { [UDID_A]: attempt() } }), 'Backed up 1 h ago');
    const cancelled = attempt({ outcome: 'cancelled' });
    assert.equal(line(d, { lastAttempt: { [UDID_A]: cancelled } }), 'Backed up 30 h ago');
  });

  it('no backup for longer than stale-after', () => {
    const d = device({ lastSuccess: NOW - 4 * DAY - HOUR });
    const s = summarizeDevice(d, facts([d]));
    assert.equal(s.line, 'No backup for 4 days');
    assert.equal(s.attention, true);
    assert.equal(line(d, { staleAfterMs: 7 * DAY }), 'Backed up 4 days ago');
  });

  it('device names are made safe: control characters, length, missing', () => {
    const s = summarizeDevice(
      device({ name: 'Evil\u0000\nName\u202e' + 'x'.repeat(100) }),
      facts([]),
    );
    // eslint-disable-next-line no-control-regex
    assert.ok(!/[\u0000-\u001f\u202e]/.test(s.name), s.name);
    assert.ok(s.name.startsWith('Evil Name'), s.name);
    assert.ok(s.name.length <= 40);
    assert.equal(summarizeDevice(device({ name: null }), facts([])).name, 'Device 5E6F70');
    assert.equal(summarizeDevice(device({ name: '  \t ' }), facts([])).name, 'Device 5E6F70');
  });
});

describe('tray menu', () => {
  it('lists each device with its status line and actions, then the app items', () => {
    const items = menu([device(), device({ udid: UDID_B, name: "Ben's iPad" })]);
    assert.deepEqual(
      items.map((i) => i.id),
      [
        `device:${UDID_A}:name`,
        `device:${UDID_A}:status`,
        `device:${UDID_A}:backup-now`,
        `device:${UDID_A}:notifications`,
        `device:${UDID_A}:settings`,
        `device:${UDID_A}:sep`,
        `device:${UDID_B}:name`,
        `device:${UDID_B}:status`,
        `device:${UDID_B}:backup-now`,
        `device:${UDID_B}:notifications`,
        `device:${UDID_B}:settings`,
        `device:${UDID_B}:sep`,
        'open-window',
        'open-backups-folder',
        'pause',
        'launch-at-login',
        'sep-quit',
        'quit',
      ],
    );
    assert.equal(byId(items, `device:${UDID_B}:name`).label, "Ben's iPad");
    assert.equal(byId(items, `device:${UDID_A}:status`).label, 'Backed up 3 h ago');
    assert.equal(byId(items, `device:${UDID_A}:status`).enabled, false);
    assert.deepEqual(byId(items, `device:${UDID_A}:backup-now`), {
      id: `device:${UDID_A}:backup-now`,
      type: 'normal',
      label: 'Back Up Now',
      enabled: true,
      action: { kind: 'backup-now', udid: UDID_A },
    });
    assert.deepEqual(byId(items, `device:${UDID_B}:notifications`).action, {
      kind: 'open-notifications',
      udid: UDID_B,
    });
    assert.deepEqual(byId(items, `device:${UDID_B}:settings`).action, {
      kind: 'open-settings',
      udid: UDID_B,
    });
    assert.equal(byId(items, 'open-backups-folder').label, 'Open Backups Folder');
    assert.deepEqual(byId(items, 'quit').action, { kind: 'quit' });
  });

  it('a running backup offers Cancel instead of Back Up Now', () => {
    const d = device({ running: running() });
    const items = menu([d], {
      progress: { [UDID_A]: { attemptId: 7, bytes: 50, percent: 25 } },
    });
    assert.equal(byId(items, `device:${UDID_A}:status`).label, 'Backing up… 25%');
    assert.deepEqual(byId(items, `device:${UDID_A}:cancel`).action, {
      kind: 'cancel',
      udid: UDID_A,
    });
    assert.equal(
      items.some((i) => i.id.endsWith(':backup-now')),
      false,
    );
    const waiting = menu([device({ running: running({ passcodeWaiting: true }) })]);
    assert.equal(byId(waiting, `device:${UDID_A}:status`).label, 'Waiting for passcode');
    assert.equal(byId(waiting, `device:${UDID_A}:cancel`).enabled, true);
  });

  it('Back Up Now is disabled for a device out of reach or not paired', () => {
    const away = device({ reachable: { usb: false, wifi: false }, lastSeen: NOW - 3 * DAY });
    const items = menu([away]);
    assert.equal(byId(items, `device:${UDID_A}:backup-now`).enabled, false);
    assert.equal(byId(items, `device:${UDID_A}:status`).label, 'Not seen for 3 days');
    const unpaired = device({
      paired: false,
      pairing: { health: 'invalid', expiresAt: null, message: null },
    });
    assert.equal(byId(menu([unpaired]), `device:${UDID_A}:backup-now`).enabled, false);
    const usb = device({ reachable: { usb: true, wifi: false } });
    assert.equal(byId(menu([usb]), `device:${UDID_A}:backup-now`).enabled, true);
  });

  it('paused: a note on top and the pause item checked', () => {
    const f = facts([device()]);
    const items = buildTrayMenu({
      ...f,
      status: { ...f.status, paused: true },
      launchAtLogin: true,
    });
    assert.equal(items[0]?.label, 'Automatic backups paused');
    assert.equal(items[0]?.enabled, false);
    assert.equal(byId(items, 'pause').checked, true);
    assert.deepEqual(byId(items, 'pause').action, { kind: 'toggle-pause' });
    assert.equal(byId(items, 'launch-at-login').checked, true);
    assert.equal(byId(menu([device()]), 'pause').checked, false);
  });

  it('no devices: says so and offers setting up', () => {
    const items = menu([]);
    assert.equal(byId(items, 'no-devices').label, 'No devices yet');
    assert.equal(byId(items, 'no-devices-hint').label, 'Connect your iPhone by USB and tap Trust');
    assert.deepEqual(byId(items, 'set-up').action, { kind: 'open-window' });
    assert.equal(
      items.some((i) => i.id.startsWith('device:')),
      false,
    );
  });

  it('Launch at Login is left out where the OS cannot set it', () => {
    assert.equal(
      menu([device()], {}, null).some((i) => i.id === 'launch-at-login'),
      false,
    );
    assert.deepEqual(byId(menu([device()], {}, false), 'launch-at-login').action, {
      kind: 'toggle-launch-at-login',
    });
  });

  it('lists at most MAX_MENU_DEVICES devices and points to the window for the rest', () => {
    const many = Array.from({ length: MAX_MENU_DEVICES + 3 }, (_, i) =>
      device({ udid: `00008120-${String(i).padStart(16, '0')}`, name: `Phone ${i}` }),
    );
    const items = menu(many);
    assert.equal(items.filter((i) => i.id.endsWith(':name')).length, MAX_MENU_DEVICES);
    assert.equal(byId(items, 'more-devices').label, '3 more devices…');
  });

  it('window actions map to renderer routes', () => {
    assert.equal(
      routeOf({ kind: 'open-notifications', udid: UDID_A }),
      `#/device/${UDID_A}/notifications`,
    );
    assert.equal(routeOf({ kind: 'open-settings', udid: UDID_B }), `#/device/${UDID_B}/settings`);
    assert.equal(routeOf({ kind: 'open-settings' }), '#/welcome');
    assert.equal(routeOf({ kind: 'open-window' }), '#/');
    assert.equal(routeOf({ kind: 'quit' }), undefined);
  });
});

describe('tray icon state and tooltip', () => {
  it('idle when all is well; the tooltip lists each device', () => {
    const s = trayState(
      facts([device(), device({ udid: UDID_B, name: "Ben's iPad", lastSuccess: null })]),
    );
    assert.equal(s.icon, 'idle');
    assert.equal(
      s.tooltip,
      "Mooring\nAnna's iPhone: Backed up 3 h ago\nBen's iPad: Not backed up yet",
    );
    assert.equal(s.title, '');
  });

  it('backing up, with the percentage as the menu-bar title', () => {
    const d = device({ running: running() });
    const s = trayState(
      facts([d], { progress: { [UDID_A]: { attemptId: 7, bytes: 1, percent: 33.3 } } }),
    );
    assert.equal(s.icon, 'backing-up');
    assert.equal(s.title, '33%');
    assert.match(s.tooltip, /Backing up… 33%/);
  });

  it('a passcode prompt beats a running backup; a running backup beats other trouble', () => {
    const waiting = device({ running: running({ passcodeWaiting: true }) });
    const other = device({ udid: UDID_B, running: running({ attemptId: 9 }) });
    assert.equal(trayState(facts([waiting, other])).icon, 'attention');
    const failedB = device({ udid: UDID_B });
    const f = facts([device({ running: running() }), failedB], {
      lastAttempt: { [UDID_B]: attempt({ udid: UDID_B }) },
    });
    assert.equal(trayState(f).icon, 'backing-up');
  });

  it('needs attention for a failure, invalid pairing or a stale device', () => {
    assert.equal(
      trayState(facts([device()], { lastAttempt: { [UDID_A]: attempt({ endedAt: NOW }) } })).icon,
      'attention',
    );
    assert.equal(
      trayState(facts([device({ pairing: { health: 'invalid', expiresAt: null, message: null } })]))
        .icon,
      'attention',
    );
    assert.equal(trayState(facts([device({ lastSuccess: NOW - 5 * DAY })])).icon, 'attention');
  });

  it('paused when paused and nothing else matters', () => {
    const f = facts([device()]);
    const s = trayState({ ...f, status: { ...f.status, paused: true } });
    assert.equal(s.icon, 'paused');
    assert.match(s.tooltip, /^Mooring \(paused\)\n/);
    const failing = {
      ...f,
      status: { ...f.status, paused: true },
      lastAttempt: { [UDID_A]: attempt({ endedAt: NOW }) },
    };
    assert.equal(trayState(failing).icon, 'attention');
  });

  it('no devices', () => {
    const s = trayState(facts([]));
    assert.equal(s.icon, 'idle');
    assert.equal(s.tooltip, 'Mooring\nNo devices yet');
  });

  it('the tooltip is bounded for Windows', () => {
    const many = Array.from({ length: 10 }, (_, i) =>
      device({
        udid: `00008120-${String(i).padStart(16, '0')}`,
        name: `A rather long device name ${i}`,
      }),
    );
    const s = trayState({ ...facts(many), status: status(many) });
    assert.ok(s.tooltip.length <= MAX_TOOLTIP_CHARS);
    assert.ok(s.tooltip.endsWith('…'));
  });

  it('every state has its icon file in assets/ on every platform', () => {
    for (const state of TRAY_ICON_STATES) {
      for (const platform of ['darwin', 'win32', 'linux'] as const) {
        const rel = trayIconFile(state, platform);
        assert.ok(existsSync(path.join(__dirname, '..', '..', 'assets', rel)), rel);
      }
      // macOS picks the @2x file from beside the 1x one.
      const mac = trayIconFile(state, 'darwin').replace(/\.png$/, '@2x.png');
      assert.ok(existsSync(path.join(__dirname, '..', '..', 'assets', mac)), mac);
    }
  });
});
