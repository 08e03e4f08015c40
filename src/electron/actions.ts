/**
 * What a click in the tray menu or on a desktop notification asks for, as plain data. The pure
 * builders attach these to menu items and notices; main.ts maps each to an agent call or a window.
 */
export type TrayAction =
  | { kind: 'backup-now'; udid: string }
  | { kind: 'cancel'; udid: string }
  | { kind: 'open-window' }
  | { kind: 'open-notifications'; udid: string }
  | { kind: 'open-settings'; udid?: string }
  | { kind: 'open-backups-folder' }
  | { kind: 'toggle-pause' }
  | { kind: 'toggle-launch-at-login' }
  | { kind: 'quit' };

/**
 * The renderer route (location hash) a window action opens, as src/renderer/main.ts reads it
 * (on load and on hashchange): `#/device/<udid>/<tab>`, anything else the device list.
 */
export function routeOf(action: TrayAction): string | undefined {
  switch (action.kind) {
    case 'open-window':
      return '#/';
    case 'open-notifications':
      return `#/device/${encodeURIComponent(action.udid)}/notifications`;
    case 'open-settings':
      // Without a device: the setup guide (pair, Wi-Fi, backup folder), the global choices.
      return action.udid === undefined
        ? '#/welcome'
        : `#/device/${encodeURIComponent(action.udid)}/settings`;
    default:
      return undefined;
  }
}
