/**
 * The tray icon's state and tooltip from the agent's state. The icon says the one thing that
 * matters most: a passcode prompt waiting for the person beats a running backup (which resolves
 * itself), which beats other trouble, which beats a pause. The tooltip lists every device.
 */
import { clip, summarizeDevices, type TrayFacts } from './device-summary';

export type TrayIconState = 'idle' | 'backing-up' | 'attention' | 'paused';
export const TRAY_ICON_STATES: readonly TrayIconState[] = [
  'idle',
  'backing-up',
  'attention',
  'paused',
];

/** Windows cuts tray tooltips at 127 characters. */
export const MAX_TOOLTIP_CHARS = 127;

export interface TrayState {
  icon: TrayIconState;
  tooltip: string;
  /** Text beside the icon in the macOS menu bar: the progress of a running backup, else ''. */
  title: string;
}

export function trayState(f: TrayFacts): TrayState {
  const devices = summarizeDevices(f);
  const running = devices.filter((d) => d.condition === 'running');
  const icon: TrayIconState = devices.some((d) => d.condition === 'passcode')
    ? 'attention'
    : running.length > 0
      ? 'backing-up'
      : devices.some((d) => d.attention)
        ? 'attention'
        : f.status.paused
          ? 'paused'
          : 'idle';
  const head = f.status.paused ? 'Mooring (paused)' : 'Mooring';
  const lines =
    devices.length === 0 ? ['No devices yet'] : devices.map((d) => `${d.name}: ${d.line}`);
  const pct = running.map((d) => d.percent).find((p) => p !== null);
  return {
    icon,
    tooltip: clip([head, ...lines].join('\n'), MAX_TOOLTIP_CHARS),
    title: pct === undefined || pct === null ? '' : `${pct}%`,
  };
}

/**
 * The icon file for a state, relative to assets/: macOS takes the template image (Electron picks
 * the @2x file beside it), Windows an .ico with every size, Linux a PNG.
 */
export function trayIconFile(state: TrayIconState, platform: NodeJS.Platform): string {
  if (platform === 'darwin') return `tray/mac/tray-${state}Template.png`;
  if (platform === 'win32') return `tray/win/tray-${state}.ico`;
  return `tray/linux/tray-${state}-32.png`;
}
