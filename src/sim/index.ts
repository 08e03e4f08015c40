/**
 * `mooring-sim` as a library: `startSim` brings up one simulated iPhone — its identity and
 * content from the state directory, a usbmuxd that lists it as a USB device, lockdownd on 62078
 * (through usbmuxd, and over Wi-Fi as a real TCP listener), the services a backup needs, an
 * optional Bonjour advert, and a control socket for `mooring-sim ctl`.
 */
import { promises as fsp } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import {
  describeUsbmuxdAddress,
  formatUsbmuxdAddress,
  parseUsbmuxdAddress,
  type UsbmuxdAddress,
} from '../transport/usbmuxd-address';
import { MooringError } from '../util/errors';
import { mobilebackup2Service } from './backup/mobilebackup2';
import { manifestRowsFor } from './backup/backup-session';
import { ManifestCache } from './backup/manifest-cache';
import { SimBackupEncryption } from './backup/encryption';
import { IOS_DPIC, IOS_ITER, keyBagRounds } from '../format/encryption';
import { BonjourAdvert, bonjourIdentifier, bonjourInstanceName, hostLabel } from './bonjour';
import { ContentStore } from './content/store';
import type { PasscodeMode, SimFaults, SimServiceSpec, TrustMode } from './contracts';
import {
  controlSocketPath,
  dispatchControl,
  startControlServer,
  type ControlServer,
  type SimControlTarget,
} from './control';
import { SimDevice, type LogFn } from './device';
import { HostPairings } from './host-pairings';
import { loadOrCreateIdentity, normaliseUdid } from './identity';
import { serveLockdown, type LockdownDeps } from './lockdownd';
import { LOCKDOWN_PORT, PortTable, type Transport } from './service-ports';
import { afcService, prepareMediaDir } from './services/afc';
import { diagnosticsRelayService } from './services/diagnostics-relay';
import { heartbeatService } from './services/heartbeat';
import { installationProxyService, type AppRecord } from './services/installation-proxy';
import { notificationProxyService } from './services/notification-proxy';
import { springboardService } from './services/springboard';
import { UsbmuxdServer } from './usbmuxd-server';

export type { PasscodeMode, SimFaults, TrustMode } from './contracts';
export { SimDevice } from './device';

export interface SimOptions {
  stateDir: string;
  /** 'UNIX:/path' | '/path' | 'host:port'; default UNIX:<stateDir>/usbmuxd.sock. */
  usbmuxd?: string;
  /** Wi-Fi host address, e.g. 127.0.0.2: lockdownd on host:62078 (or wifiPort). */
  wifi?: string;
  /** Port for the Wi-Fi lockdownd listener (tests: 0 picks a free one). Default 62078. */
  wifiPort?: number;
  /** Interface address to advertise `_apple-mobdev2._tcp` on (needs `wifi`). */
  bonjour?: string;
  /** Advert TXT `identifier` + one `authTag` per paired host (iOS 26.4+). Default false. */
  bonjourTxt?: boolean;
  /** A random MAC in the advert's instance name, so only the TXT tags identify it (implies bonjourTxt). */
  bonjourMacHidden?: boolean;
  udid?: string;
  name?: string;
  ios?: string;
  files?: number;
  bytes?: number;
  seed?: number;
  trust?: TrustMode;
  passcode?: PasscodeMode;
  faults?: SimFaults;
  /**
   * Initial com.apple.mobile.wireless_lockdown/EnableWifiConnections. Default: the persisted
   * value, or true for a new device. While false the Wi-Fi listener and Bonjour advert are down.
   */
  wifiConnections?: boolean;
  /**
   * PBKDF2 rounds of the backup keybag a ChangePassword creates (default IOS_DPIC / IOS_ITER, as
   * iOS ≥ 10.2); tests lower them because the real cost is seconds per password.
   */
  keyBagRounds?: { dpic?: number; iter?: number };
  /** Seconds between heartbeat Marcos (default 10). */
  heartbeatIntervalSeconds?: number;
  /**
   * Start mobilebackup2 and afc with TLS through usbmuxd too. Real devices start them plain
   * there, TLS only over Wi-Fi (D40); this keeps a host's TLS path over usbmuxd exercised.
   */
  serviceTlsOverUsb?: boolean;
  /** true: JSON log lines on stderr; a function receives each line. Default: MOORING_SIM_LOG=1 → stderr. */
  log?: boolean | ((line: string) => void);
}

export interface RunningSim {
  udid: string;
  /** The USBMUXD_SOCKET_ADDRESS value that reaches this simulator's usbmuxd. */
  usbmuxdAddress: string;
  /** host:port of the Wi-Fi lockdownd, when --wifi is given (even while offline). */
  wifiAddress?: string;
  stateDir: string;
  /** Directory of host pair records the simulator's usbmuxd keeps (like /var/lib/lockdown). */
  pairRecordDir: string;
  device: SimDevice;
  content: ContentStore;
  ctl(command: string, args?: Record<string, unknown>): Promise<unknown>;
  stop(): Promise<void>;
}

export const USBMUXD_SOCKET_NAME = 'usbmuxd.sock';
export const PAIR_RECORD_DIR = 'usbmuxd';
export const MEDIA_DIR = 'media';

function makeLogger(opt: SimOptions['log']): LogFn {
  const sink =
    typeof opt === 'function'
      ? opt
      : opt === true || (opt === undefined && process.env.MOORING_SIM_LOG === '1')
        ? (line: string) => process.stderr.write(line + '\n')
        : undefined;
  if (!sink) return () => undefined;
  return (event, fields) => {
    try {
      sink(JSON.stringify({ t: new Date().toISOString(), event, ...fields }));
    } catch {
      // a value that cannot be serialised must not break the device
    }
  };
}

function checkOptions(o: SimOptions): void {
  if (!o.stateDir) throw new MooringError('USAGE', '--state: a state directory is required');
  if (o.udid !== undefined) normaliseUdid(o.udid);
  if (
    o.wifiPort !== undefined &&
    (!Number.isInteger(o.wifiPort) || o.wifiPort < 0 || o.wifiPort > 65535)
  ) {
    throw new MooringError('USAGE', `wifiPort: ${o.wifiPort} is not a port number`);
  }
  if (o.wifi !== undefined && net.isIP(o.wifi) === 0) {
    throw new MooringError('USAGE', `--wifi: "${o.wifi}" is not an IP address`);
  }
  if (o.bonjour !== undefined) {
    if (o.wifi === undefined)
      throw new MooringError(
        'USAGE',
        '--bonjour needs --wifi (the advert points at the Wi-Fi listener)',
      );
    if (net.isIP(o.bonjour) === 0) {
      throw new MooringError(
        'USAGE',
        `--bonjour: "${o.bonjour}" is not an interface address (e.g. 127.0.0.1)`,
      );
    }
  }
  if ((o.bonjourTxt || o.bonjourMacHidden) && o.bonjour === undefined) {
    throw new MooringError('USAGE', '--bonjour-txt and --bonjour-mac-hidden need --bonjour');
  }
  if (o.trust !== undefined && !['auto', 'prompt', 'deny'].includes(o.trust)) {
    throw new MooringError('USAGE', `--trust: "${String(o.trust)}" is not auto, prompt or deny`);
  }
}

/** The Wi-Fi side: lockdownd listener plus advert, up while online and EnableWifiConnections. */
class WifiSide {
  private server: net.Server | undefined;
  private boundPort: number | undefined;
  online = true;

  constructor(
    readonly host: string,
    private readonly port: number,
    private readonly device: SimDevice,
    private readonly accept: (sock: Duplex, transport: Transport) => void,
    /** Makes the advert once the listening port is known (a wifiPort of 0 picks one). */
    private readonly makeAdvert: ((port: number) => BonjourAdvert) | undefined,
  ) {}

  private advert: BonjourAdvert | undefined;

  get up(): boolean {
    return this.server !== undefined;
  }

  /** host:port, with the port actually bound (a wifiPort of 0 picks one). */
  get address(): string {
    const p = this.boundPort ?? this.port;
    return net.isIPv6(this.host) ? `[${this.host}]:${p}` : `${this.host}:${p}`;
  }

  get listeningPort(): number {
    return this.boundPort ?? this.port;
  }

  /** Brings the listener and advert to where the flags say they should be. */
  async sync(): Promise<void> {
    const want = this.online && this.device.wifiConnectionsEnabled;
    if (want && !this.server) {
      const server = net.createServer((sock) => {
        sock.on('error', () => undefined);
        sock.setNoDelay(true); // as every service port (service-ports.ts)
        this.accept(sock, 'wifi');
      });
      // Keep the same port across offline/online, so hosts can reconnect where they were.
      const port = this.boundPort ?? this.port;
      await new Promise<void>((resolve, reject) => {
        server.once('error', (e: NodeJS.ErrnoException) =>
          reject(
            new MooringError(
              'IO',
              `cannot listen for Wi-Fi lockdownd on ${this.host}:${port}: ${e.message}`,
              { cause: e },
            ),
          ),
        );
        server.listen(port, this.host, () => resolve());
      });
      server.on('error', (e) => this.device.log('wifi-listener-error', { error: e.message }));
      this.server = server;
      this.boundPort = (server.address() as net.AddressInfo).port;
      this.device.log('wifi-up', { address: this.address });
      this.advert ??= this.makeAdvert?.(this.boundPort);
      this.advert?.start();
    } else if (!want && this.server) {
      const server = this.server;
      this.server = undefined;
      await this.advert?.stop();
      this.device.dropConnections('wifi');
      await new Promise<void>((resolve) => server.close(() => resolve()));
      this.device.log('wifi-down');
    }
  }

  async close(): Promise<void> {
    this.online = false;
    await this.sync();
  }
}

function services(
  store: ContentStore,
  encryption: SimBackupEncryption,
  o: SimOptions,
): Map<string, SimServiceSpec> {
  const backupTls = o.serviceTlsOverUsb === true ? 'always' : 'network';
  const list: SimServiceSpec[] = [
    {
      name: 'com.apple.mobilebackup2',
      tls: backupTls,
      handler: mobilebackup2Service(store, { encryption }),
    },
    { name: 'com.apple.afc', tls: backupTls, handler: afcService },
    {
      name: 'com.apple.mobile.notification_proxy',
      tls: 'always',
      handler: notificationProxyService,
    },
    {
      name: 'com.apple.mobile.insecure_notification_proxy',
      tls: 'never',
      handler: notificationProxyService,
    },
    {
      name: 'com.apple.mobile.installation_proxy',
      tls: 'always',
      handler: installationProxyService(() => store.apps() as unknown as AppRecord[]),
    },
    { name: 'com.apple.springboardservices', tls: 'always', handler: springboardService },
    {
      name: 'com.apple.mobile.heartbeat',
      tls: 'always',
      handler: heartbeatService(o.heartbeatIntervalSeconds),
    },
    { name: 'com.apple.mobile.diagnostics_relay', tls: 'always', handler: diagnosticsRelayService },
  ];
  return new Map(list.map((s) => [s.name, s]));
}

export async function startSim(o: SimOptions): Promise<RunningSim> {
  checkOptions(o);
  const stateDir = path.resolve(o.stateDir);
  await fsp.mkdir(stateDir, { recursive: true });
  const log = makeLogger(o.log);

  const usbmuxdAddress: UsbmuxdAddress =
    o.usbmuxd !== undefined
      ? (parseUsbmuxdAddress(o.usbmuxd) ??
        (() => {
          throw new MooringError(
            'USAGE',
            `--usbmuxd: "${o.usbmuxd}" is not UNIX:/path, /path or host:port`,
          );
        })())
      : { kind: 'unix', path: path.join(stateDir, USBMUXD_SOCKET_NAME) };

  // The control socket first: it refuses a second simulator on the same state directory
  // before anything touches that directory's files.
  let sim: Sim | undefined;
  const control = await startControlServer(
    controlSocketPath(stateDir),
    (command, args) => {
      if (!sim) return Promise.reject(new MooringError('USAGE', 'the simulator is still starting'));
      return dispatchControl(sim, command, args);
    },
    log,
  );
  try {
    sim = await Sim.create(o, stateDir, usbmuxdAddress, control, log);
  } catch (e) {
    await control.close();
    throw e;
  }
  const s = sim;
  return {
    udid: s.device.udid,
    usbmuxdAddress: formatUsbmuxdAddress(s.usbmuxd.address),
    wifiAddress: s.wifi?.address,
    stateDir,
    pairRecordDir: s.pairRecordDir,
    device: s.device,
    content: s.content,
    ctl: (command, args = {}) => dispatchControl(s, command, args),
    stop: () => s.stop(),
  };
}

class Sim implements SimControlTarget {
  private deviceId: number | undefined;
  encryption: SimBackupEncryption | undefined;
  private stopped = false;

  private constructor(
    readonly device: SimDevice,
    readonly content: ContentStore,
    readonly usbmuxd: UsbmuxdServer,
    readonly ports: PortTable,
    readonly wifi: WifiSide | undefined,
    readonly pairRecordDir: string,
    private readonly control: ControlServer,
  ) {}

  static async create(
    o: SimOptions,
    stateDir: string,
    usbmuxdAddress: UsbmuxdAddress,
    control: ControlServer,
    log: LogFn,
  ): Promise<Sim> {
    const identity = await loadOrCreateIdentity(stateDir, {
      udid: o.udid,
      name: o.name,
      ios: o.ios,
      seed: o.seed,
    });
    const pairings = await HostPairings.load(path.join(stateDir, 'lockdown', 'pairings'));
    const content = await ContentStore.open(stateDir, {
      files: o.files,
      bytes: o.bytes,
      seed: o.seed,
    });
    const mediaDir = path.join(stateDir, MEDIA_DIR);
    await prepareMediaDir(mediaDir);
    const device = await SimDevice.create({
      stateDir,
      identity,
      pairings,
      mediaDir,
      passcode: o.passcode ?? { kind: 'none' },
      trust: o.trust ?? 'auto',
      faults: { ...o.faults },
      wifiConnections: o.wifiConnections,
      log,
    });

    const encryption = new SimBackupEncryption(stateDir, {
      dpic: o.keyBagRounds?.dpic ?? IOS_DPIC,
      iter: o.keyBagRounds?.iter ?? IOS_ITER,
    });
    const keys = await encryption.current(); // loaded once, so status() can show it
    // The device's Manifest.db, ready before any backup asks for it (not what a bench measures).
    if (await new ManifestCache(content, keys).prepare((es) => manifestRowsFor(es, keys)))
      log('manifest-cache-built');
    const ports = new PortTable();
    let wifi: WifiSide | undefined;
    const deps: LockdownDeps = {
      device,
      ports,
      services: services(content, encryption, o),
      serviceHost: () => (wifi?.up ? wifi.host : undefined),
    };
    const acceptLockdown = (stream: Duplex, transport: Transport): void => {
      device.track(stream, transport);
      void serveLockdown(stream, transport, deps);
    };
    ports.listen(LOCKDOWN_PORT, acceptLockdown);

    if (o.wifi !== undefined) {
      const wifiHost = o.wifi;
      const iface = o.bonjour;
      const withTxt = o.bonjourTxt === true || o.bonjourMacHidden === true;
      let advert: BonjourAdvert | undefined;
      const makeAdvert =
        iface === undefined
          ? undefined
          : (port: number) => {
              advert = new BonjourAdvert({
                iface,
                wifiMac: identity.wifiMac,
                address: wifiHost,
                port,
                hostName: hostLabel(identity.deviceName),
                log,
                hideMac: o.bonjourMacHidden === true,
                ...(withTxt
                  ? {
                      txtAuth: {
                        identifier: bonjourIdentifier(identity.udid),
                        hostIds: () =>
                          device.pairings
                            .list()
                            .sort((a, b) => b.pairedAt.getTime() - a.pairedAt.getTime())
                            .map((p) => p.hostId),
                      },
                    }
                  : {}),
              });
              device.bonjourInstance = advert.instanceName;
              return advert;
            };
      if (iface !== undefined) {
        device.bonjourInstance = bonjourInstanceName(identity.wifiMac, wifiHost);
        // New or forgotten hosts change the authTags.
        if (withTxt) device.on('pairings-changed', () => advert?.refreshTxt());
      }
      wifi = new WifiSide(
        wifiHost,
        o.wifiPort ?? LOCKDOWN_PORT,
        device,
        acceptLockdown,
        makeAdvert,
      );
    }

    const pairRecordDir = path.join(stateDir, PAIR_RECORD_DIR);
    // usbmuxd's Connect asks the Sim (built below) which DeviceID is attached right now.
    const ref: { sim?: Sim } = {};
    const usbmuxd: UsbmuxdServer = new UsbmuxdServer({
      address: usbmuxdAddress,
      pairRecordDir,
      connect: (deviceId: number, port: number): Duplex | undefined =>
        ref.sim && deviceId === ref.sim.deviceId ? ports.connectUsb(port) : undefined,
      handOver: (deviceId: number, port: number) =>
        ref.sim && deviceId === ref.sim.deviceId ? ports.claimUsb(port) : undefined,
      log,
    });
    const sim: Sim = new Sim(device, content, usbmuxd, ports, wifi, pairRecordDir, control);
    ref.sim = sim;
    sim.encryption = encryption;
    try {
      await usbmuxd.start();
      sim.attach();
      if (wifi) {
        const w = wifi;
        await w.sync();
        device.on('wifi-connections', () => {
          w.sync().catch((e: unknown) =>
            device.log('wifi-sync-failed', { error: (e as Error).message }),
          );
        });
      }
    } catch (e) {
      await sim.stop();
      throw e;
    }
    log('ready', {
      udid: device.udid,
      usbmuxd: describeUsbmuxdAddress(usbmuxd.address),
      wifi: wifi?.address ?? null,
    });
    return sim;
  }

  attach(): number {
    if (this.deviceId !== undefined) return this.deviceId;
    this.deviceId = this.usbmuxd.attach({
      serialNumber: this.device.identity.usbSerial,
      connectionType: 'USB',
    });
    return this.deviceId;
  }

  detach(): boolean {
    const id = this.deviceId;
    if (id === undefined) return false;
    this.deviceId = undefined;
    this.usbmuxd.detach(id);
    this.device.dropConnections('usb');
    return true;
  }

  async reboot(): Promise<void> {
    const wasAttached = this.deviceId !== undefined;
    this.detach();
    this.ports.closeServicePorts();
    this.device.dropConnections();
    this.device.markRebooted();
    this.device.log('rebooted', { locked: this.device.locked });
    if (wasAttached) this.attach();
  }

  async offline(): Promise<void> {
    if (!this.wifi)
      throw new MooringError(
        'USAGE',
        'offline: the simulator has no Wi-Fi side (start it with --wifi HOST)',
      );
    this.wifi.online = false;
    await this.wifi.sync();
  }

  async online(): Promise<void> {
    if (!this.wifi)
      throw new MooringError(
        'USAGE',
        'online: the simulator has no Wi-Fi side (start it with --wifi HOST)',
      );
    this.wifi.online = true;
    await this.wifi.sync();
  }

  status(): Record<string, unknown> {
    const d = this.device;
    return {
      udid: d.udid,
      attached: this.deviceId !== undefined,
      deviceId: this.deviceId ?? null,
      locked: d.locked,
      passcode: d.passcode.kind,
      trust: d.trust,
      trustDialog: d.trustDialogState,
      pairedHosts: d.pairings.list().map((p) => p.hostId),
      wifi: this.wifi
        ? { address: this.wifi.address, up: this.wifi.up, online: this.wifi.online }
        : null,
      wifiConnections: d.wifiConnectionsEnabled,
      connections: d.connectionCount,
      faults: { ...d.faults },
      encryption: this.encryptionStatus(),
    };
  }

  /** What ctl status shows of backup encryption (never a key). */
  private encryptionStatus(): Record<string, unknown> {
    const keys = this.encryption?.loaded;
    if (!keys) return { willEncrypt: this.device.willEncrypt, keyBag: null };
    const rounds = keyBagRounds(keys.keyBag);
    return {
      willEncrypt: this.device.willEncrypt,
      keyBag: { uuid: keys.unlocked.uuid.toString('hex'), dpic: rounds.dpic, iter: rounds.iter },
    };
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.device.shutdown();
    this.ports.closeAll();
    await this.wifi?.close();
    await this.usbmuxd.stop();
    await this.control.close();
    this.device.log('stopped');
  }
}
