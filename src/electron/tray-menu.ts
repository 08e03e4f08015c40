/**
 * The tray menu as plain data, built from the agent's state: per device its name, a status line
 * and its actions (Back Up Now or Cancel, Notifications…, Settings…), then the app's own items
 * (Open Backups Folder, Pause Automatic Backups, Launch at Login, Quit). main.ts turns the items
 * into an Electron Menu and each item's `action` into an agent call; nothing here touches Electron.
 */
import type { TrayAction } from './actions';
import { summarizeDevice, type TrayFacts } from './device-summary';

/** Devices listed in the menu itself; the rest are one click away in the window. */
export const MAX_MENU_DEVICES = 8;

export interface MenuItemSpec {
  /** Stable per item (tests and Electron's menu item ids). */
  id: string;
  type: 'normal' | 'separator' | 'checkbox';
  label: string;
  enabled: boolean;
  /** checkbox items only */
  checked?: boolean;
  action?: TrayAction;
}

export interface TrayMenuInput extends TrayFacts {
  /** Launch at Login as the OS reports it; null where Electron cannot set it (Linux). */
  launchAtLogin: boolean | null;
}

const separator = (id: string): MenuItemSpec => ({
  id,
  type: 'separator',
  label: '',
  enabled: true,
});
const text = (id: string, label: string): MenuItemSpec => ({
  id,
  type: 'normal',
  label,
  enabled: false,
});
const item = (id: string, label: string, action: TrayAction, enabled = true): MenuItemSpec => ({
  id,
  type: 'normal',
  label,
  enabled,
  action,
});

export function buildTrayMenu(input: TrayMenuInput): MenuItemSpec[] {
  const { status } = input;
  const items: MenuItemSpec[] = [];
  if (status.paused) {
    items.push(text('paused-note', 'Automatic backups paused'), separator('sep-paused'));
  }
  if (status.devices.length === 0) {
    items.push(
      text('no-devices', 'No devices yet'),
      text('no-devices-hint', 'Connect your iPhone by USB and tap Trust'),
      item('set-up', 'Set Up Mooring…', { kind: 'open-window' }),
      separator('sep-devices'),
    );
  }
  for (const d of status.devices.slice(0, MAX_MENU_DEVICES)) {
    const s = summarizeDevice(d, input);
    const id = (what: string): string => `device:${d.udid}:${what}`;
    items.push(text(id('name'), s.name), text(id('status'), s.line));
    if (d.running) {
      items.push(item(id('cancel'), 'Cancel Backup', { kind: 'cancel', udid: d.udid }));
    } else {
      const canStart = d.paired && (d.reachable.usb || d.reachable.wifi);
      items.push(
        item(id('backup-now'), 'Back Up Now', { kind: 'backup-now', udid: d.udid }, canStart),
      );
    }
    items.push(
      item(id('notifications'), 'Notifications…', { kind: 'open-notifications', udid: d.udid }),
      item(id('settings'), 'Settings…', { kind: 'open-settings', udid: d.udid }),
      separator(id('sep')),
    );
  }
  const hidden = status.devices.length - MAX_MENU_DEVICES;
  if (hidden > 0) {
    items.push(
      item('more-devices', `${hidden} more ${hidden === 1 ? 'device' : 'devices'}…`, {
        kind: 'open-window',
      }),
      separator('sep-more'),
    );
  }
  items.push(
    item('open-window', 'Open Mooring…', { kind: 'open-window' }),
    item('open-backups-folder', 'Open Backups Folder', { kind: 'open-backups-folder' }),
    {
      id: 'pause',
      type: 'checkbox',
      label: 'Pause Automatic Backups',
      enabled: true,
      checked: status.paused,
      action: { kind: 'toggle-pause' },
    },
  );
  if (input.launchAtLogin !== null) {
    items.push({
      id: 'launch-at-login',
      type: 'checkbox',
      label: 'Launch at Login',
      enabled: true,
      checked: input.launchAtLogin,
      action: { kind: 'toggle-launch-at-login' },
    });
  }
  items.push(separator('sep-quit'), item('quit', 'Quit Mooring', { kind: 'quit' }));
  return items;
}
