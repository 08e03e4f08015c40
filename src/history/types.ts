/**
 * What the history database holds, as the agent, the HTTP API and the CLI see it. Every time is
 * epoch milliseconds (UTC); absent values are `null` so rows serialise to JSON as they are.
 */
import type { JsonObject, Notice, NotificationKind, ReasonCode, Severity } from './reasons';

export type Transport = 'usb' | 'wifi';
export type AttemptTrigger = 'schedule' | 'manual' | 'retry';
export type AttemptOutcome = 'running' | 'success' | 'failure' | 'cancelled' | 'interrupted';
export type FinishedOutcome = Exclude<AttemptOutcome, 'running'>;

export const ATTEMPT_OUTCOMES: readonly AttemptOutcome[] = [
  'running',
  'success',
  'failure',
  'cancelled',
  'interrupted',
];

export interface DeviceRow {
  udid: string;
  name: string | null;
  productType: string | null;
  iosVersion: string | null;
  wifiMac: string | null;
  pairedAt: number | null;
  firstSeen: number;
  /** Last time discovery saw it (usbmuxd attach, Bonjour advertisement). */
  lastSeen: number | null;
  lastTransport: Transport | null;
  /** Last successful lockdown session: the pairing worked then. */
  lastContact: number | null;
  /** End of the last successful backup. */
  lastSuccess: number | null;
}

/** Facts about a device; fields left out keep their stored value. */
export interface DeviceInfo {
  udid: string;
  name?: string;
  productType?: string;
  iosVersion?: string;
  wifiMac?: string;
  pairedAt?: number;
}

export interface AttemptRow {
  id: number;
  udid: string;
  startedAt: number;
  endedAt: number | null;
  trigger: AttemptTrigger;
  transport: Transport;
  outcome: AttemptOutcome;
  reasonCode: ReasonCode | null;
  bytes: number;
  files: number;
  durationMs: number | null;
  snapshotId: string | null;
  deviceErrorCode: number | null;
  message: string | null;
}

export interface StartAttemptInput {
  udid: string;
  trigger: AttemptTrigger;
  transport: Transport;
  /** Default: the history's clock. */
  startedAt?: number;
}

export interface FinishAttemptInput {
  outcome: FinishedOutcome;
  /** Default: `notice.reasonCode`. */
  reasonCode?: ReasonCode;
  bytes?: number;
  files?: number;
  snapshotId?: string;
  /** The device's MBErrorDomain ErrorCode, when it sent one. */
  deviceErrorCode?: number;
  /** Default: `notice.message`. */
  message?: string;
  /** Default: the history's clock. */
  endedAt?: number;
  /** Recorded in the same transaction, linked to the attempt and its device. */
  notice?: Notice;
}

export interface NotificationRow {
  id: number;
  at: number;
  udid: string | null;
  kind: NotificationKind;
  severity: Severity;
  reasonCode: ReasonCode;
  message: string;
  fixHint: string | null;
  params: JsonObject | null;
  attemptId: number | null;
  read: boolean;
}

export type NotificationInput = Notice & {
  udid?: string;
  attemptId?: number;
  /** Default: the history's clock. */
  at?: number;
};

/** Filters for History.listHistory; every combination is one index range read, newest first. */
export interface HistoryQuery {
  udid?: string;
  severity?: Severity;
  kind?: NotificationKind;
  /** The `nextCursor` of the previous page: only rows older than it. */
  before?: number;
  /** Default DEFAULT_PAGE_SIZE, at most MAX_PAGE_SIZE. */
  limit?: number;
}

/**
 * Which notifications markRead marks: one device's (`udid`), Mooring's own (`udid: null`, those
 * about no device), or all (left out); of those, the ones up to `upTo`, and only `ids` when given
 * (what a filtered list showed; at most MAX_PAGE_SIZE).
 */
export interface MarkReadOptions {
  udid?: string | null;
  upTo?: number;
  ids?: number[];
}

export interface AttemptQuery {
  udid?: string;
  outcome?: AttemptOutcome;
  before?: number;
  limit?: number;
}

export interface Page<T> {
  /** Newest first (most recently recorded first: immune to clock changes). */
  items: T[];
  /** Pass as `before` for the next page; null when this page is the last. */
  nextCursor: number | null;
}

export interface HistorySummary {
  devices: number;
  attempts: Record<AttemptOutcome, number>;
  notifications: number;
  unread: Record<Severity, number> & { total: number };
}

/** 'global', or a device's UDID for that device's own settings. */
export type SettingScope = string;
export const GLOBAL_SCOPE = 'global';
