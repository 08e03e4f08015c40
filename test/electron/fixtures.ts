/** Plain agent data for the tray builders: a status with devices in chosen states. */
import type { AgentStatus, DeviceStatus } from '../../src/agent/types';
import type { AttemptRow } from '../../src/history/types';
import type { TrayFacts } from '../../src/electron/device-summary';

export const HOUR = 60 * 60 * 1000;
export const DAY = 24 * HOUR;
/** A fixed "now": the builders take it as data, so nothing here depends on the clock. */
export const NOW = Date.UTC(2026, 0, 15, 12, 0, 0);

export const UDID_A = '00008120-001A2B3C4D5E6F70';
export const UDID_B = '00008030-000C11223344556E';

export function device(o: Partial<DeviceStatus> = {}): DeviceStatus {
  return {
    udid: UDID_A,
    name: "Anna's iPhone",
    productType: 'iPhone15,2',
    iosVersion: '18.1',
    paired: true,
    reachable: { usb: false, wifi: true },
    address: '192.168.1.20',
    lastSeen: NOW - 60_000,
    lastContact: NOW - HOUR,
    lastSuccess: NOW - 3 * HOUR,
    lastUnlocked: NOW - 2 * HOUR,
    running: null,
    next: { code: 'NOT_DUE', message: 'Not due yet', at: NOW + 21 * HOUR },
    pairing: { health: 'ok', expiresAt: NOW + 29 * DAY, message: null },
    latestSnapshot: { id: '20260115T090000Z', at: NOW - 3 * HOUR },
    settings: { interval: '24h', window: 'any', enabled: 'true' },
    wifiBackups: true,
    encryption: { on: null, passwordStored: false, latestOpens: null, storeKind: null }, // H8c
    ...o,
  };
}

export function running(
  o: Partial<NonNullable<DeviceStatus['running']>> = {},
): DeviceStatus['running'] {
  return {
    attemptId: 7,
    trigger: 'schedule',
    transport: 'wifi',
    startedAt: NOW - 5 * 60_000,
    phase: 'receiving',
    bytes: 0,
    files: 0,
    percent: null,
    quietSince: null,
    passcodeWaiting: false,
    ...o,
  };
}

export function attempt(o: Partial<AttemptRow> = {}): AttemptRow {
  return {
    id: 6,
    udid: UDID_A,
    startedAt: NOW - 2 * HOUR - 10 * 60_000,
    endedAt: NOW - 2 * HOUR,
    trigger: 'schedule',
    transport: 'wifi',
    outcome: 'failure',
    reasonCode: 'NOT_ENOUGH_SPACE',
    bytes: 0,
    files: 0,
    durationMs: 600_000,
    snapshotId: null,
    deviceErrorCode: null,
    message: 'Not enough free space on this computer: 1.2 GB free',
    ...o,
  };
}

export function status(devices: DeviceStatus[], o: Partial<AgentStatus> = {}): AgentStatus {
  return {
    version: '0.1.0',
    pid: 1234,
    startedAt: NOW - DAY,
    timeZone: 'UTC',
    dataDir: '/home/anna/.local/share/mooring',
    backupDir: '/home/anna/.local/share/mooring/backups',
    paused: false,
    running: devices.filter((d) => d.running).length,
    concurrency: 1,
    staleAfterMs: 3 * DAY,
    usbmuxd: 'listening',
    usbmuxdProblem: null,
    bonjour: 'browsing',
    devices,
    summary: {
      devices: devices.length,
      attempts: { running: 0, success: 0, failure: 0, cancelled: 0, interrupted: 0 },
      notifications: 0,
      unread: { info: 0, warning: 0, error: 0, total: 0 },
    },
    ...o,
  };
}

export function facts(devices: DeviceStatus[], o: Partial<TrayFacts> = {}): TrayFacts {
  return {
    status: status(devices),
    progress: {},
    lastAttempt: {},
    staleAfterMs: 3 * DAY,
    now: NOW,
    ...o,
  };
}
