/**
 * What the running agent offers its front ends: the HTTP API (and through it the CLI and the
 * browser UI) and, later, the Electron main process. Plain JSON-able data only; every time is
 * epoch milliseconds (UTC), absent values are null.
 */
import type { Readable } from 'node:stream';
import type {
  AttemptQuery,
  AttemptRow,
  HistoryQuery,
  HistorySummary,
  MarkReadOptions,
  NotificationRow,
  Page,
  Transport,
} from '../history';

export type PairingHealth = 'ok' | 'expiring' | 'invalid' | 'unknown';

/** The backup running for a device right now. */
export interface RunningBackup {
  attemptId: number;
  trigger: 'schedule' | 'retry' | 'manual';
  transport: Transport;
  startedAt: number;
  /** BackupPhase of the engine ('connecting' … 'finishing'). */
  phase: string;
  bytes: number;
  files: number;
  /** The device's own percentage of the backup (0–100), null until it reports one. */
  percent: number | null;
  /**
   * Since when the device has sent nothing while its connection is alive (it may be preparing:
   * minutes for a large phone), once that has lasted the stall notice's time; null while it talks.
   */
  quietSince: number | null;
  /** The device shows its passcode prompt and waits for someone to type it. */
  passcodeWaiting: boolean;
}

export interface DeviceStatus {
  udid: string;
  name: string | null;
  productType: string | null;
  iosVersion: string | null;
  /** We hold a pair record for it. */
  paired: boolean;
  reachable: { usb: boolean; wifi: boolean };
  /** Wi-Fi address we would dial, when on Wi-Fi. */
  address: string | null;
  lastSeen: number | null;
  /** Last successful lockdown session (the pairing worked then). */
  lastContact: number | null;
  /**
   * The last successful backup: the end of the agent's last success, or the start of a newer sound
   * snapshot in the backup folder (one made by `mooring backup` beside the agent).
   */
  lastSuccess: number | null;
  /** Last sign of the device being unlocked or used (springboard lock-state notifications). */
  lastUnlocked: number | null;
  running: RunningBackup | null;
  /**
   * The scheduler's latest word on this device: a skip reason (history ReasonCode when one maps,
   * else the scheduler's code), its human message, and when it will look again; or 'DUE' while a
   * start is imminent, 'RUNNING' while a backup runs.
   */
  next: { code: string; message: string; at: number | null };
  pairing: { health: PairingHealth; expiresAt: number | null; message: string | null };
  /** The newest complete snapshot in the store, if any. */
  latestSnapshot: { id: string; at: number } | null;
  /** The effective per-device settings (global defaults merged with the device's own). */
  settings: ConfigValues;
  /**
   * The device's "connect over Wi-Fi" switch (lockdown EnableWifiConnections), as read at the
   * last contact or set through setWifi; null until Mooring has talked to the device.
   */
  wifiBackups: boolean | null;
  /** H8c: backup encryption as Mooring knows it (see EncryptionStatus). */
  encryption: EncryptionStatus;
}

// ---- H8c: backup encryption (src/agent/encryption.ts) ----------------------------------------

export interface EncryptionStatus {
  /** The device's WillEncrypt at the last contact or change; null before Mooring asked. */
  on: boolean | null;
  /** Mooring's secret store holds the device's current backup password. */
  passwordStored: boolean;
  /** Whether the last check of the latest backup opened it with the stored password; null: not checked. */
  latestOpens: boolean | null;
  /** Where passwords are kept: a 0600 file, the OS keychain (desktop app), or nowhere. */
  storeKind: 'file' | 'electron-safe-storage' | null;
}

export type EncryptionAction = 'enable' | 'change' | 'disable';

/** setEncryption's request: passwords travel in bodies / IPC arguments only, never in URLs. */
export interface EncryptionRequest {
  action: EncryptionAction;
  /** enable/change: the new password; left out, Mooring generates a strong one. */
  password?: string;
  /** change/disable: the current password; left out, the stored one is used. */
  oldPassword?: string;
}

export interface EncryptionChangeResult {
  ok: boolean;
  action: EncryptionAction;
  /** WillEncrypt as the device now has it. */
  on: boolean;
  /** Why not: already-on, already-off, wrong-password, passcode, cancelled, device-error, busy. */
  failure: string | null;
  message: string;
  /** The new password was kept in the secret store. */
  stored: boolean;
  /** A password Mooring generated: shown once, here. */
  generatedPassword: string | null;
  /** The printable recovery sheet (self-contained HTML) for a new password, once. */
  recoverySheet: string | null;
}

export interface StorePasswordResult {
  stored: boolean;
  /** It was checked against the latest encrypted backup (false: there is none to check with). */
  checked: boolean;
  message: string;
}

export interface RecoverySheetResult {
  /** Suggested file name, e.g. mooring-recovery-<UDID>.html. */
  fileName: string;
  html: string;
}

/** H8c: backup encryption of a device, from the front ends. */
export interface EncryptionControl {
  /**
   * Turns encryption on, changes the password or turns it off (mobilebackup2 ChangePassword while
   * holding the device's backup slot; the device shows its own passcode prompt). A refusal is a
   * result with ok false; USAGE for a device that is not known, paired or reachable.
   */
  setEncryption(udid: string, req: EncryptionRequest): Promise<EncryptionChangeResult>;
  /** Keeps a password after checking it opens the latest encrypted backup (refused otherwise). */
  storeBackupPassword(udid: string, password: string): Promise<StorePasswordResult>;
  /** The recovery sheet with the stored password; USAGE when none is stored. */
  recoverySheet(udid: string): Promise<RecoverySheetResult>;
}

export interface AgentStatus {
  version: string;
  pid: number;
  startedAt: number;
  timeZone: string;
  dataDir: string;
  backupDir: string;
  paused: boolean;
  running: number;
  concurrency: number;
  /** The stale-after setting: a device not backed up for this long needs attention. */
  staleAfterMs: number;
  usbmuxd: 'listening' | 'lost' | 'unavailable' | 'off';
  /** Why USB is not available ('lost', 'unavailable'), saying what to do; null otherwise. */
  usbmuxdProblem: string | null;
  bonjour: 'browsing' | 'off';
  devices: DeviceStatus[];
  summary: HistorySummary;
}

/**
 * Settings as the user reads and writes them: strings in the user's units ("24h", "01:00-06:00",
 * "any", "true"), validated and stored canonically in the history's settings table.
 * Global keys: interval, window, enabled, paused, concurrency, retries-per-day, passcode-wait,
 * webhook, stale-after, keep-all, keep-daily, keep-weekly, backup-dir. Device keys: interval,
 * window, enabled, keep-all, keep-daily, keep-weekly.
 */
export type ConfigValues = Record<string, string>;

export interface BackupNowResult {
  started: boolean;
  attemptId: number | null;
  /** When not started: ALREADY_RUNNING, NOT_REACHABLE, CONCURRENCY_LIMIT, UNKNOWN_DEVICE, NOT_PAIRED. */
  code: string | null;
  message: string;
}

/** What pair() did. */
export interface PairResult {
  /** True once the device trusts this computer and the pair record is saved. */
  paired: boolean;
  /** For a person: what happened, and what to do when it did not work. */
  message: string;
}

/** What setWifi() did: the switch as the device now has it. */
export interface WifiResult {
  on: boolean;
}

export type AgentEvent =
  | { type: 'device'; device: DeviceStatus }
  | { type: 'device-removed'; udid: string }
  | { type: 'notification'; notification: NotificationRow }
  | { type: 'attempt'; attempt: AttemptRow }
  | {
      type: 'progress';
      udid: string;
      attemptId: number;
      phase: string;
      bytes: number;
      files: number;
      /** The device's own percentage of the backup, null until it reports one. */
      percent: number | null;
    }
  /** Paused or not, backups running, and the stale-after setting (it colours the devices). */
  | { type: 'agent'; paused: boolean; running: number; staleAfterMs: number }
  /** USB (usbmuxd) became available, or stopped being: the same two fields as AgentStatus. */
  | { type: 'usbmuxd'; usbmuxd: AgentStatus['usbmuxd']; usbmuxdProblem: string | null };

/** The agent as its front ends see it. Errors are MooringError ('USAGE' for bad input). */
export interface AgentService extends SnapshotBrowsing, EncryptionControl {
  status(): AgentStatus;
  devices(): DeviceStatus[];
  device(udid: string): DeviceStatus | undefined;
  history(q: HistoryQuery): Page<NotificationRow>;
  attempts(q: AttemptQuery): Page<AttemptRow>;
  /** Marks notifications read (see MarkReadOptions); returns how many. */
  markRead(opts: MarkReadOptions): number;
  /** Starts a backup now (ignores window, interval, pause); resolves once started or refused. */
  backupNow(udid: string): Promise<BackupNowResult>;
  /** Cancels the device's running backup; false when none runs. */
  cancel(udid: string): boolean;
  /** Effective settings: global when udid is undefined, else the device's (defaults merged). */
  getConfig(udid?: string): ConfigValues;
  /** Sets (value string) or resets to the default (value null) some keys; returns getConfig(). */
  setConfig(changes: Record<string, string | null>, udid?: string): ConfigValues;
  pause(): void;
  resume(): void;
  /**
   * Switches the device's Wi-Fi connections on or off (lockdown SetValue EnableWifiConnections,
   * as `mooring wifi`); the device must be reachable and paired. USAGE error otherwise.
   */
  setWifi(udid: string, on: boolean): Promise<WifiResult>;
  /**
   * Pairs a USB-attached device: it shows "Trust This Computer?" and this resolves once someone
   * answers (paired: false with what to do when they tap "Don't Trust" or nobody answers in
   * time). The record is saved where `mooring pair` saves it; the device then becomes backed up.
   */
  pair(udid: string): Promise<PairResult>;
  /**
   * Pins a snapshot (retention never removes it) or unpins it, as `mooring pin`; returns the
   * device's snapshots as they are then. Refused while a backup of the device holds its store.
   */
  pinSnapshot(udid: string, snapshotId: string, pinned: boolean): Promise<SnapshotSummary[]>;
  /** The newest lines of the agent's log file, up to `maxBytes` (default 64 KiB, at most 1 MiB). */
  readLog(q: { maxBytes?: number }): Promise<AgentLogTail>;
  /** Every event from now on; returns the unsubscribe function. */
  subscribe(listener: (e: AgentEvent) => void): () => void;
}

/** The end of `<data>/logs/agent.log`: whole lines, oldest first. */
export interface AgentLogTail {
  /** Where the log is (whether or not it exists yet). */
  file: string;
  text: string;
  /** Older lines were left out. */
  truncated: boolean;
}

/**
 * The AgentService methods a front end may call across a process boundary (the Electron preload
 * bridge): every method but `subscribe`, whose events travel on their own channel. Listed at run
 * time so the main process can refuse any other name.
 */
export const BRIDGE_METHODS = [
  'status',
  'devices',
  'device',
  'history',
  'attempts',
  'markRead',
  'backupNow',
  'cancel',
  'getConfig',
  'setConfig',
  'pause',
  'resume',
  'setWifi',
  'pair',
  'readLog',
  'pinSnapshot',
  'snapshots',
  'files',
  'diff',
  // H8c: backup encryption
  'setEncryption',
  'storeBackupPassword',
  'recoverySheet',
] as const satisfies readonly Exclude<keyof AgentService, 'subscribe'>[];

export type BridgeMethod = (typeof BRIDGE_METHODS)[number];

/**
 * Never a bridge method: openFile returns a stream, which cannot cross IPC. The desktop app
 * saves a file in the main process instead (DesktopBridge.saveFile).
 */
export type NotBridged = 'openFile';

/** Fails to compile when AgentService gains a method the bridge does not list. */
type MissingBridgeMethods = Exclude<keyof AgentService, 'subscribe' | NotBridged | BridgeMethod>;
export const BRIDGE_COVERS_SERVICE: [MissingBridgeMethods] extends [never] ? true : never = true;

/** How the UI reaches the agent, over IPC (Electron preload) or HTTP (browser). */
export interface MooringBridge {
  call<M extends BridgeMethod>(
    method: M,
    ...args: Parameters<AgentService[M]>
  ): Promise<Awaited<ReturnType<AgentService[M]>>>;
  /** Every AgentEvent from now on; returns the unsubscribe function. */
  onEvent(listener: (e: AgentEvent) => void): () => void;
}

/** What DesktopBridge.saveFile did. */
export interface SaveFileResult {
  /** False when the person cancelled the save dialog (nothing written). */
  saved: boolean;
  /** Where the file was written (the path the person chose); null when not saved. */
  path: string | null;
  bytes: number;
}

/** What the Electron preload exposes to the renderer as `window.mooring`, nothing more. */
export interface DesktopBridge extends MooringBridge {
  /**
   * Saves one regular file of a snapshot where the person chooses (the main process asks with
   * a save dialog and writes it): the desktop app's download.
   */
  saveFile(
    udid: string,
    snapshotId: string,
    domain: string,
    relativePath: string,
  ): Promise<SaveFileResult>;
}

// ---- snapshot browsing ------------------------------------------------------------------

/** Read-only browsing of a device's snapshots (src/agent/snapshot-browser.ts). */
export interface SnapshotBrowsing {
  /** The device's snapshots in the backup folder, oldest first ([] when it has none). */
  snapshots(udid: string): Promise<SnapshotSummary[]>;
  /** One page of a snapshot's files (snapshotId: an id or 'latest'), by domain and path. */
  files(udid: string, snapshotId: string, q: FileQuery): Promise<FilePage>;
  /** What changed from snapshot `from` to `to`: exact counts, the first entries. */
  diff(udid: string, from: string, to: string): Promise<DiffSummary>;
  /** A regular file of a snapshot, as a stream (for download or extract); never crosses IPC. */
  openFile(
    udid: string,
    snapshotId: string,
    domain: string,
    relativePath: string,
  ): Promise<OpenedFile>;
}

/** One complete (or adopted) backup of a device in the store. */
export interface SnapshotSummary {
  /** `YYYYMMDDTHHMMSSZ[-N]`: when the backup started (UTC). */
  id: string;
  at: number;
  isLatest: boolean;
  pinned: boolean;
  /** Its Status.plist said finished when it was taken (adopted folders may not). */
  complete: boolean;
  /** The device sent everything (null when not recorded). */
  isFull: boolean | null;
  /** Made by another tool (Finder, idevicebackup2) and taken over as it was. */
  adopted: boolean;
  /** Encrypted backups are listed but cannot be browsed yet. */
  encrypted: boolean;
  /** Payload files and logical bytes of the whole snapshot. */
  files: number;
  size: number;
  /** Bytes only this snapshot holds (what it added; what deleting it would free). */
  addedBytes: number;
  /** A verification found it damaged on disk (fault matrix); absent when it is not known to be. */
  damaged?: { at: number; problems: number; example: string };
}

/** Largest page of files one call returns. */
export const MAX_FILE_PAGE = 1000;

export interface FileQuery {
  /** Exact domain, or a glob (`AppDomain-*`). */
  domain?: string;
  /** Case-insensitive: a glob (`*.jpg`, `Library/**.db`) or else a substring of the path. */
  pattern?: string;
  /** Entries per page (default 200, at most 1000). */
  limit?: number;
  /** The `nextCursor` of the previous page. */
  after?: string;
}

export interface FileEntry {
  domain: string;
  relativePath: string;
  type: 'file' | 'dir' | 'symlink';
  size: number;
  /** Modification time on the device. */
  mtime: number;
  mode: number;
  /** Symlinks: where they point. */
  target: string | null;
  /** SHA-1 hex of the content when the backup records it. */
  digest: string | null;
}

export interface FilePage {
  items: FileEntry[];
  /** Pass as `after` for the next page; null when the listing is complete. A page may be short
   * (even empty) with a cursor when a rare pattern needed more rows than one call examines. */
  nextCursor: string | null;
  /** Matching rows of Manifest.db that failed validation and are left out. */
  invalidRows: number;
}

export interface DiffEntry {
  domain: string;
  relativePath: string;
  change: 'added' | 'removed' | 'changed';
  type: 'file' | 'dir' | 'symlink';
  size: number;
  /** Changed entries: the size before. */
  sizeBefore: number | null;
  /** Changed entries: what differs ('content', 'size', 'type', 'target', 'mtime'). */
  changes: string[];
}

export interface DiffSummary {
  from: string;
  to: string;
  /** Exact totals. */
  added: number;
  removed: number;
  changed: number;
  invalidRows: number;
  /** Exact counts per domain, sorted by domain. */
  domains: Array<{ domain: string; added: number; removed: number; changed: number }>;
  /** The first entries (by domain, then added/removed/changed, then path); bounded. */
  entries: DiffEntry[];
  /** Some entries were left out of `entries` (the counts are still exact). */
  truncated: boolean;
}

export interface OpenedFile {
  /** Bytes the stream will deliver. */
  size: number;
  /** The file's own name (last path component), for a download. */
  name: string;
  stream: Readable;
}
