/**
 * The simulated iPhone's state: identity, lockdown values and domains, lock/passcode state,
 * the scripted "Trust This Computer?" dialog, the notification bus shared by every
 * notification_proxy connection, remembered host pairings, and the set of live connections
 * (so reboot/detach/offline can drop them).
 */
import { EventEmitter } from 'node:events';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import { MooringError } from '../util/errors';
import type { PasscodeMode, SimDeviceApi, SimFaults, TrustMode } from './contracts';
import { HostPairings } from './host-pairings';
import type { DeviceIdentity } from './identity';
import type { Transport } from './service-ports';

export const NOTIFY_PASSCODE_PRESENTED = 'com.apple.LocalAuthentication.ui.presented';
export const NOTIFY_PASSCODE_DISMISSED = 'com.apple.LocalAuthentication.ui.dismissed';
/** SpringBoard posts this whenever the screen locks or unlocks (hosts watch it to see use). */
export const NOTIFY_LOCKSTATE = 'com.apple.springboard.lockstate';
/** --trust auto / deny: how long the scripted user takes to tap a button. */
export const TRUST_DIALOG_DELAY_MS = 200;
/** An answered dialog is forgotten if no Pair request collects the answer in this time. */
export const TRUST_ANSWER_TTL_MS = 60_000;

export const DOMAIN_BACKUP = 'com.apple.mobile.backup';
export const DOMAIN_WIRELESS = 'com.apple.mobile.wireless_lockdown';

/** Values a host may change with SetValue (domain '' is the default domain). */
const SETTABLE: Record<string, Record<string, 'boolean' | 'string'>> = {
  '': { DeviceName: 'string' },
  [DOMAIN_WIRELESS]: { EnableWifiConnections: 'boolean', EnableWifiDebugging: 'boolean' },
};

export type LogFn = (event: string, fields?: Record<string, unknown>) => void;

export interface SimDeviceOptions {
  stateDir: string;
  identity: DeviceIdentity;
  pairings: HostPairings;
  mediaDir: string;
  passcode: PasscodeMode;
  trust: TrustMode;
  faults: SimFaults;
  /** Initial EnableWifiConnections when given; otherwise the persisted value (default true). */
  wifiConnections?: boolean;
  log: LogFn;
}

type DialogState = 'idle' | 'showing' | 'accepted' | 'denied';

interface TrackedConnection {
  stream: Duplex;
  transport: Transport;
}

interface PendingPasscode {
  resolve: (entered: boolean) => void;
  timer: NodeJS.Timeout;
  autoTimer?: NodeJS.Timeout;
}

/**
 * Events: 'wifi-connections' (enabled: boolean) when EnableWifiConnections changes;
 * 'pairings-changed' after Pair/Unpair/revoke; 'trust-answered' ('accept' | 'deny') when the
 * scripted user answers the trust dialog.
 */
export class SimDevice extends EventEmitter implements SimDeviceApi {
  readonly udid: string;
  readonly stateDir: string;
  readonly mediaDir: string;
  readonly identity: DeviceIdentity;
  readonly pairings: HostPairings;
  readonly faults: SimFaults;
  readonly passcode: PasscodeMode;
  readonly trust: TrustMode;
  /** Where Bonjour says the device is ("<mac>@<address>"), set once the Wi-Fi side knows it. */
  bonjourInstance: string | undefined;

  private lockedFlag = false;
  /** See SimDeviceApi.snapshotLeft. */
  snapshotLeft = false;
  /** Cleared by a reboot of a device with a passcode; set by the first unlock after it. */
  private unlockedSinceBootFlag = true;
  private dialog: DialogState = 'idle';
  private dialogTimer: NodeJS.Timeout | undefined;
  private readonly observers = new Map<string, Set<() => void>>();
  private readonly pendingPasscodes = new Set<PendingPasscode>();
  private readonly connections = new Set<TrackedConnection>();
  private readonly settings: Record<string, Record<string, string | boolean>>;
  private readonly settingsFile: string;
  private readonly logFn: LogFn;

  private constructor(
    o: SimDeviceOptions,
    settings: Record<string, Record<string, string | boolean>>,
  ) {
    super();
    this.identity = o.identity;
    this.udid = o.identity.udid;
    this.stateDir = o.stateDir;
    this.mediaDir = o.mediaDir;
    this.pairings = o.pairings;
    this.passcode = o.passcode;
    this.trust = o.trust;
    this.faults = o.faults;
    this.logFn = o.log;
    this.settings = settings;
    this.settingsFile = settingsPath(o.stateDir);
  }

  static async create(o: SimDeviceOptions): Promise<SimDevice> {
    const settings = await readSettings(settingsPath(o.stateDir));
    const wireless = (settings[DOMAIN_WIRELESS] ??= {});
    if (o.wifiConnections !== undefined) wireless.EnableWifiConnections = o.wifiConnections;
    else if (typeof wireless.EnableWifiConnections !== 'boolean')
      wireless.EnableWifiConnections = true;
    const d = new SimDevice(o, settings);
    await d.saveSettings();
    return d;
  }

  // ---- lockdown values ------------------------------------------------------------------

  get locked(): boolean {
    return this.lockedFlag && this.passcode.kind !== 'none';
  }

  /**
   * False from a reboot until the first unlock: its data protection keys are still sealed, so
   * the escrow bag cannot release them (lockdownd then refuses StartService with MissingValue).
   */
  get unlockedSinceBoot(): boolean {
    return this.unlockedSinceBootFlag || this.passcode.kind === 'none';
  }

  get wifiConnectionsEnabled(): boolean {
    return this.settings[DOMAIN_WIRELESS]?.EnableWifiConnections === true;
  }

  get willEncrypt(): boolean {
    return this.settings[DOMAIN_BACKUP]?.WillEncrypt === true;
  }

  values(): Record<string, unknown> {
    const id = this.identity;
    const now = new Date();
    return {
      ActivationState: 'Activated',
      ActivationStateAcknowledged: true,
      BasebandStatus: 'BBInfoAvailable',
      BluetoothAddress: id.bluetoothMac,
      BrickState: false,
      BuildVersion: id.buildVersion,
      CPUArchitecture: 'arm64e',
      ChipID: id.chipID,
      DeviceClass: 'iPhone',
      DeviceColor: '1',
      DeviceName: this.deviceName,
      DevicePublicKey: Buffer.from(id.devicePublicKeyPem),
      FirmwareVersion: 'iBoot-10151.120.3',
      HardwareModel: id.hardwareModel,
      HardwarePlatform: `t${id.chipID.toString(16)}`,
      HasSiDP: true,
      HostAttached: true,
      InternationalMobileEquipmentIdentity: imeiFor(id.serialNumber),
      ModelNumber: 'MQ0T3',
      NonVolatileRAM: {},
      PasswordProtected: this.passcode.kind !== 'none',
      ProductName: 'iPhone OS',
      ProductType: id.productType,
      ProductVersion: id.productVersion,
      ProductionSOC: true,
      ProtocolVersion: '2',
      RegionInfo: 'LL/A',
      SIMStatus: 'kCTSIMSupportSIMStatusNotInserted',
      SerialNumber: id.serialNumber,
      TimeIntervalSince1970: now.getTime() / 1000,
      TimeZone: 'Etc/UTC',
      TimeZoneOffsetFromUTC: 0,
      TrustedHostAttached: true,
      UniqueChipID: id.uniqueChipID,
      UniqueDeviceID: id.udid,
      UseRaptorCerts: true,
      Uses24HourClock: true,
      WiFiAddress: id.wifiMac,
    };
  }

  domain(name: string): Record<string, unknown> {
    const stored = this.settings[name] ?? {};
    switch (name) {
      case DOMAIN_BACKUP:
        return { WillEncrypt: false, CloudBackupEnabled: false, ...stored };
      case DOMAIN_WIRELESS:
        return {
          EnableWifiDebugging: false,
          SupportsWifi: true,
          SupportsWifiSyncing: true,
          ...(this.bonjourInstance
            ? { BonjourFullServiceName: `${this.bonjourInstance}._apple-mobdev2._tcp.local.` }
            : {}),
          ...stored,
        };
      case 'com.apple.iTunes':
        return { ...stored };
      case 'com.apple.mobile.iTunes':
        return { MinITunesVersion: '12.5.1', MinMacOSVersion: '10.12.6', ...stored };
      case 'com.apple.mobile.battery':
        return {
          BatteryCurrentCapacity: 87,
          BatteryIsCharging: true,
          ExternalChargeCapable: true,
          ExternalConnected: true,
          FullyCharged: false,
          GasGaugeCapability: true,
          HasBattery: true,
        };
      case 'com.apple.disk_usage':
        return {
          TotalDiskCapacity: 128_000_000_000,
          TotalDataCapacity: 110_000_000_000,
          TotalDataAvailable: 64_000_000_000,
          AmountDataAvailable: 64_000_000_000,
          AmountDataReserved: 200_000_000,
        };
      case 'com.apple.PurpleBuddy':
        return { SetupDone: true, ...stored };
      case 'com.apple.international':
        return { Locale: 'en_US', Language: 'en', Keyboard: 'en_US', ...stored };
      default:
        return { ...stored };
    }
  }

  /** Domains GetValue knows; others answer MissingValue. */
  hasDomain(name: string): boolean {
    return (
      [
        DOMAIN_BACKUP,
        DOMAIN_WIRELESS,
        'com.apple.iTunes',
        'com.apple.mobile.iTunes',
        'com.apple.mobile.battery',
        'com.apple.disk_usage',
        'com.apple.PurpleBuddy',
        'com.apple.international',
      ].includes(name) || this.settings[name] !== undefined
    );
  }

  private get deviceName(): string {
    const n = this.settings['']?.DeviceName;
    return typeof n === 'string' ? n : this.identity.deviceName;
  }

  /**
   * lockdown SetValue. Returns a lockdownd error string (SetProhibited, …) or undefined on success.
   */
  async setValue(
    domain: string | undefined,
    key: string,
    value: unknown,
  ): Promise<string | undefined> {
    const d = domain ?? '';
    const type = SETTABLE[d]?.[key];
    if (!type) return 'SetProhibited';
    if (typeof value !== type) return 'InvalidValue';
    if (type === 'string' && (value as string).length > 255) return 'InvalidValue';
    await this.setInternalValue(d, key, value as string | boolean);
    return undefined;
  }

  /**
   * Device-side change of a persisted value (e.g. mobilebackup2's ChangePassword flipping
   * com.apple.mobile.backup/WillEncrypt), not reachable through lockdown SetValue.
   */
  async setInternalValue(domain: string, key: string, value: string | boolean): Promise<void> {
    const before = this.wifiConnectionsEnabled;
    (this.settings[domain] ??= {})[key] = value;
    await this.saveSettings();
    this.log('value-set', { domain: domain || undefined, key, value });
    if (before !== this.wifiConnectionsEnabled)
      this.emit('wifi-connections', this.wifiConnectionsEnabled);
  }

  private async saveSettings(): Promise<void> {
    await fsp.mkdir(path.dirname(this.settingsFile), { recursive: true });
    const tmp = `${this.settingsFile}.tmp`;
    await fsp.writeFile(tmp, JSON.stringify(this.settings, null, 2) + '\n');
    await fsp.rename(tmp, this.settingsFile);
  }

  // ---- lock, passcode ---------------------------------------------------------------------

  /** The user locks the phone. Meaningless without a passcode, so refused then. */
  lock(): void {
    if (this.passcode.kind === 'none') {
      throw new MooringError(
        'USAGE',
        'the device has no passcode (--passcode none), so it cannot be locked',
      );
    }
    this.lockedFlag = true;
    this.log('locked');
    this.postNotification(NOTIFY_LOCKSTATE);
  }

  unlock(): void {
    this.lockedFlag = false;
    this.unlockedSinceBootFlag = true;
    this.log('unlocked');
    this.postNotification(NOTIFY_LOCKSTATE);
  }

  /** After a reboot a device with a passcode stays locked until the first unlock. */
  markRebooted(): void {
    this.lockedFlag = this.passcode.kind !== 'none';
    this.unlockedSinceBootFlag = !this.lockedFlag;
    this.snapshotLeft = false;
    this.resetDialog();
  }

  /** The user types the passcode: unlocks, and satisfies any pending backup prompt. */
  enterPasscode(): number {
    this.lockedFlag = false;
    this.unlockedSinceBootFlag = true;
    const n = this.pendingPasscodes.size;
    for (const p of [...this.pendingPasscodes]) this.finishPasscode(p, true);
    this.log('passcode-entered', { prompts: n });
    this.postNotification(NOTIFY_LOCKSTATE);
    return n;
  }

  requestPasscode(timeoutMs: number): Promise<boolean> {
    if (this.passcode.kind === 'none') return Promise.resolve(true);
    this.postNotification(NOTIFY_PASSCODE_PRESENTED);
    return new Promise((resolve) => {
      const p: PendingPasscode = {
        resolve,
        timer: setTimeout(() => this.finishPasscode(p, false), timeoutMs),
      };
      if (this.passcode.kind === 'auto') {
        p.autoTimer = setTimeout(() => this.finishPasscode(p, true), this.passcode.seconds * 1000);
      }
      this.pendingPasscodes.add(p);
    });
  }

  private finishPasscode(p: PendingPasscode, entered: boolean): void {
    if (!this.pendingPasscodes.delete(p)) return;
    clearTimeout(p.timer);
    if (p.autoTimer) clearTimeout(p.autoTimer);
    if (entered) this.lockedFlag = false;
    this.postNotification(NOTIFY_PASSCODE_DISMISSED);
    p.resolve(entered);
  }

  // ---- trust dialog -----------------------------------------------------------------------

  /**
   * One Pair request meets the dialog. The first request shows it (→ 'pending'); requests while
   * it shows stay 'pending'; once the scripted user answered, the next request collects the
   * answer ('accepted' or 'denied') and the dialog is gone.
   */
  pairDialog(): 'pending' | 'accepted' | 'denied' {
    switch (this.dialog) {
      case 'idle':
        this.dialog = 'showing';
        this.log('trust-dialog-shown', { mode: this.trust });
        if (this.trust !== 'prompt') {
          const answer = this.trust === 'auto' ? 'accept' : 'deny';
          this.setDialogTimer(TRUST_DIALOG_DELAY_MS, () => this.answerTrust(answer));
        }
        return 'pending';
      case 'showing':
        return 'pending';
      case 'accepted':
      case 'denied': {
        const answer = this.dialog;
        this.resetDialog();
        return answer;
      }
    }
  }

  /** `ctl trust accept|deny`. */
  answerTrust(answer: 'accept' | 'deny'): void {
    if (answer !== 'accept' && answer !== 'deny') {
      throw new MooringError(
        'USAGE',
        `trust: expected accept or deny, got ${JSON.stringify(answer)}`,
      );
    }
    if (this.dialog !== 'showing') {
      throw new MooringError('USAGE', 'no trust dialog is showing (a host must send Pair first)');
    }
    this.dialog = answer === 'accept' ? 'accepted' : 'denied';
    this.log('trust-dialog-answered', { answer });
    this.emit('trust-answered', answer);
    this.setDialogTimer(TRUST_ANSWER_TTL_MS, () => this.resetDialog());
  }

  get trustDialogState(): DialogState {
    return this.dialog;
  }

  private setDialogTimer(ms: number, fn: () => void): void {
    if (this.dialogTimer) clearTimeout(this.dialogTimer);
    this.dialogTimer = setTimeout(fn, ms);
    this.dialogTimer.unref();
  }

  private resetDialog(): void {
    if (this.dialogTimer) clearTimeout(this.dialogTimer);
    this.dialogTimer = undefined;
    this.dialog = 'idle';
  }

  // ---- notification bus -------------------------------------------------------------------

  postNotification(name: string): void {
    this.log('notification', { name });
    for (const cb of [...(this.observers.get(name) ?? [])]) {
      try {
        cb();
      } catch (e) {
        this.log('observer-failed', { name, error: (e as Error).message });
      }
    }
  }

  observeNotification(name: string, cb: () => void): () => void {
    let set = this.observers.get(name);
    if (!set) this.observers.set(name, (set = new Set()));
    set.add(cb);
    return () => {
      set.delete(cb);
      if (set.size === 0 && this.observers.get(name) === set) this.observers.delete(name);
    };
  }

  // ---- connections ------------------------------------------------------------------------

  /** Remembers a live connection until it closes, so it can be dropped on reboot/detach/offline. */
  track(stream: Duplex, transport: Transport): void {
    const entry = { stream, transport };
    this.connections.add(entry);
    stream.once('close', () => this.connections.delete(entry));
  }

  /** Destroys live connections (all, or those over one transport). Returns how many. */
  dropConnections(transport?: Transport): number {
    let n = 0;
    for (const c of [...this.connections]) {
      if (transport && c.transport !== transport) continue;
      this.connections.delete(c);
      c.stream.destroy();
      n++;
    }
    return n;
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  /** Clears timers and pending prompts (simulator shutdown). */
  shutdown(): void {
    this.resetDialog();
    for (const p of [...this.pendingPasscodes]) this.finishPasscode(p, false);
    this.dropConnections();
  }

  log(event: string, fields?: Record<string, unknown>): void {
    this.logFn(event, fields);
  }
}

function settingsPath(stateDir: string): string {
  return path.join(stateDir, 'lockdown', 'values.json');
}

async function readSettings(
  file: string,
): Promise<Record<string, Record<string, string | boolean>>> {
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch {
    return {};
  }
  try {
    const v: unknown = JSON.parse(text);
    if (typeof v !== 'object' || v === null) return {};
    const out: Record<string, Record<string, string | boolean>> = {};
    for (const [dom, vals] of Object.entries(v as Record<string, unknown>)) {
      if (typeof vals !== 'object' || vals === null) continue;
      const clean: Record<string, string | boolean> = {};
      for (const [k, x] of Object.entries(vals as Record<string, unknown>)) {
        if (typeof x === 'string' || typeof x === 'boolean') clean[k] = x;
      }
      out[dom] = clean;
    }
    return out;
  } catch {
    return {}; // a damaged settings file resets to defaults rather than bricking the device
  }
}

/** A 15-digit IMEI with a valid Luhn check digit, derived from the serial number. */
export function imeiFor(serial: string): string {
  let digits = '35';
  for (const ch of serial) {
    if (digits.length >= 14) break;
    digits += (ch.charCodeAt(0) % 10).toString();
  }
  digits = digits.padEnd(14, '0');
  let sum = 0;
  for (let i = 0; i < 14; i++) {
    let d = Number(digits[i]);
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return digits + ((10 - (sum % 10)) % 10).toString();
}
