/**
 * The seams inside the simulator (`mooring-sim`). The device core (identity, lockdownd, usbmuxd
 * side, service ports, control socket) and the content/backup side (file tree, Manifest.db,
 * mobilebackup2) meet only through these types.
 */
import type { Duplex } from 'node:stream';

/** A device-side service: handed the connection once the host connected (and TLS, if on, is up). */
export type ServiceHandler = (stream: Duplex, device: SimDeviceApi) => Promise<void>;

export interface SimServiceSpec {
  name: string; // e.g. 'com.apple.mobilebackup2'
  /**
   * When StartService replies EnableServiceSSL: true, after which the port speaks TLS first:
   * 'always'; 'network', only to a host that reached lockdownd over Wi-Fi (real devices start afc
   * and mobilebackup2 plain through usbmuxd, D40); 'never'. Otherwise the key is left out.
   */
  tls: 'always' | 'network' | 'never';
  handler: ServiceHandler;
}

/** Fault injection, settable at start (flags) and at run time (ctl). */
export interface SimFaults {
  /** Close a mobilebackup2 connection after sending this many bytes of upload payload. */
  dropAfterBytes?: number;
  /** Wait this long after the Backup request before the first DeviceLink message. */
  delayFirstMessageMs?: number;
  /** Answer DLMessageGetFreeDiskSpace / PurgeDiskSpace as a device that then fails with 105. */
  lowDisk?: boolean;
  /** Send malformed / hostile frames (oversized lengths, '..' paths, bad plists). */
  evil?: EvilMode;
  /**
   * A Backup whose connection drops leaves the device's own backup snapshot behind, and every
   * later Backup fails with MBErrorDomain 3 ("Failed to create snapshot: File exists") until a
   * reboot, as phones do after an interrupted backup (libimobiledevice#1257).
   */
  staleSnapshot?: boolean;
}

/** H7h: the hostile-device modes (src/sim/backup/evil.ts says what each does). */
export type EvilMode =
  | 'path-escape'
  | 'dl-escape'
  | 'symlink-escape'
  | 'long-names'
  | 'oversized-frame'
  | 'huge-filename'
  | 'huge-block'
  | 'bad-plist'
  | 'deep-plist'
  | 'cyclic-plist'
  | 'plist-huge-count'
  | 'truncated-stream'
  | 'slow-frame'
  | 'slow-block'
  | 'endless-messages'
  | 'dl-wrong-arity'
  | 'dl-wrong-type'
  | 'dl-not-array'
  | 'dl-empty-array'
  | 'dl-too-many-elements'
  | 'final-wrong-type'
  | 'version-wrong-shape'
  | 'version-wrong-name'
  | 'version-huge-frame'
  | 'version-slow'
  | 'version-silent'
  | 'hello-wrong-shape'
  | 'hello-wrong-type'
  | 'hello-out-of-step';

export type PasscodeMode = { kind: 'none' } | { kind: 'auto'; seconds: number } | { kind: 'never' };
export type TrustMode = 'auto' | 'prompt' | 'deny';

/** What the content/backup side needs from the device core. */
export interface SimDeviceApi {
  readonly udid: string;
  readonly stateDir: string;
  /** Lockdown default-domain values (DeviceName, ProductType, ProductVersion, …). */
  values(): Record<string, unknown>;
  /** A lockdown domain's values (e.g. 'com.apple.mobile.backup'). */
  domain(name: string): Record<string, unknown>;
  readonly faults: SimFaults;
  readonly passcode: PasscodeMode;
  /** Device is locked (passcode set and not unlocked). */
  readonly locked: boolean;
  /** A backup snapshot an interrupted Backup left (faults.staleSnapshot); a reboot clears it. */
  snapshotLeft: boolean;
  /** notification_proxy bus: a post reaches every observer on every NP connection. */
  postNotification(name: string): void;
  observeNotification(name: string, cb: () => void): () => void;
  /**
   * iOS 16.1+ passcode prompt: posts com.apple.LocalAuthentication.ui.presented, then resolves
   * true when the passcode is entered (ctl enter-passcode, or --passcode auto:S), or false when
   * nobody enters it in time (then ...ui.dismissed is posted too). Resolves true at once when
   * the device has no passcode (--passcode none).
   */
  requestPasscode(timeoutMs: number): Promise<boolean>;
  /** The AFC media root on disk (lock_sync file, /iTunes_Control, /iTunesRestore). */
  readonly mediaDir: string;
  /** Structured log line to the simulator's log (stderr, JSON). */
  log(event: string, fields?: Record<string, unknown>): void;
  /** H8a: device-side change of a persisted lockdown value (ChangePassword → WillEncrypt). */
  setInternalValue(domain: string, key: string, value: string | boolean): Promise<void>;
}
