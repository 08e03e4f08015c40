/**
 * The simulator's usbmuxd: serves the usbmuxd socket protocol (reference §1) on a UNIX path or
 * TCP host:port, so that libimobiledevice's tools, pymobiledevice3 and our own host see the
 * simulated device as if it were plugged in. Behaviour follows libimobiledevice's usbmuxd
 * (`src/client.c`): plist protocol for everything, the binary protocol for LISTEN/CONNECT (as
 * usbmuxd still serves it), pair records and SystemBUID in a lockdown-style directory.
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { promises as fsp } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import { decodePlist, encodeXmlPlist } from '../protocol/plist';
import { isPlistDict, type PlistDict } from '../protocol/plist/types';
import {
  MAX_USBMUX_MESSAGE_BYTES,
  USBMUX_HEADER_BYTES,
  USBMUX_PLIST_LIMITS,
  USBMUX_VERSION_BINARY,
  USBMUX_VERSION_PLIST,
  UsbmuxErrno,
  UsbmuxMessageType,
  UsbmuxResult,
  asUint32,
  buildAttached,
  buildDetached,
  buildPaired,
  buildResult,
  decodeBinaryConnectRequest,
  decodePlistMessage,
  decodeUsbmuxHeader,
  encodeBinaryDeviceAdd,
  encodeBinaryDevicePaired,
  encodeBinaryDeviceRemove,
  encodeBinaryResult,
  encodeNetworkAddress,
  encodePlistMessage,
  isValidPairRecordId,
  swapPortBytes,
  udidsMatch,
  type NetworkAddress,
} from '../protocol/usbmux';
import { describeUsbmuxdAddress, type UsbmuxdAddress } from '../transport/usbmuxd-address';
import { MooringError, isMooringError } from '../util/errors';
import { StreamReader } from '../util/stream-reader';

/** File next to the pair records holding the host-wide SystemBUID (usbmuxd's CONFIG_FILE). */
export const SYSTEM_CONFIGURATION_FILE = 'SystemConfiguration.plist';

/** How long a client may take to finish a message it has started (idle clients wait forever). */
export const DEFAULT_CLIENT_READ_TIMEOUT_MS = 30_000;

/** Checked between idle waits so a client that stalls mid-header is noticed. */
const IDLE_WAIT_MS = 60_000;

/** USB 2.0 high speed, what usbmuxd reports for an iPhone on a USB 2 port. */
const DEFAULT_CONNECTION_SPEED = 480_000_000;
/** iPhone's USB product id range starts at 0x1290; 0x12a8 is what recent iPhones report. */
const DEFAULT_PRODUCT_ID = 0x12a8;

export interface SimMuxDevice {
  /** Chosen by the server (next free, from 1) unless given. */
  deviceId?: number;
  /** What usbmuxd reports: for modern devices the UDID without its dash. */
  serialNumber: string;
  connectionType: 'USB' | 'Network';
  /** Network devices: sent as a Linux-layout sockaddr padded to 128 bytes. */
  networkAddress?: NetworkAddress;
  productId?: number;
  locationId?: number;
  /** Network devices: the Bonjour service name; default `<serialNumber>._apple-mobdev2._tcp.local.` */
  escapedFullServiceName?: string;
  /** Network devices: interface the service was seen on; default 1. */
  interfaceIndex?: number;
}

export interface UsbmuxdServerOptions {
  address: UsbmuxdAddress;
  /** Directory of `<UDID>.plist` pair records and SystemConfiguration.plist (like /var/lib/lockdown). */
  pairRecordDir: string;
  /** Opens the device side of a Connect; undefined means the port is closed (CONNREFUSED). */
  connect: (deviceId: number, port: number) => Promise<Duplex | undefined> | Duplex | undefined;
  /**
   * Preferred over `connect` when given: claims the device's port and returns what takes the
   * client's own socket as the connection (undefined: CONNREFUSED). No relay in between — a
   * JavaScript relay (socket → in-memory pair → TLS over a JS stream) made the simulator, not the
   * host, the limit of a USB backup (docs/BENCHMARKS.md, issue 6).
   */
  handOver?: (deviceId: number, port: number) => ((socket: net.Socket) => void) | undefined;
  /** Deadline for finishing a started message. */
  readTimeoutMs?: number;
  log?: (event: string, fields?: Record<string, unknown>) => void;
}

export interface UsbmuxdServerEvents {
  /** A client's request (for logs and tests): MessageType or binary command name. */
  request: [{ client: number; command: string }];
}

type ClientState = 'command' | 'listen' | 'connecting' | 'connected' | 'closing';

interface MuxClient {
  number: number;
  socket: net.Socket;
  state: ClientState;
  /** 0 until the client sends a plist message (replies and events follow it). */
  protoVersion: number;
  info: PlistDict;
  /** While connected: the device-side stream and which device it belongs to. */
  pipe?: { deviceId: number; stream: Duplex };
}

interface AttachedDevice {
  deviceId: number;
  spec: SimMuxDevice;
  properties: PlistDict;
}

export class UsbmuxdServer extends EventEmitter<UsbmuxdServerEvents> {
  private readonly opts: UsbmuxdServerOptions;
  private server: net.Server | undefined;
  private boundAddress: UsbmuxdAddress;
  private readonly clients = new Set<MuxClient>();
  private readonly devices = new Map<number, AttachedDevice>();
  private nextDeviceId = 1;
  private nextClientNumber = 1;
  private buid: Promise<string> | undefined;

  constructor(opts: UsbmuxdServerOptions) {
    super();
    this.opts = opts;
    this.boundAddress = opts.address;
  }

  /** Where the server listens; for TCP port 0, the port actually bound once started. */
  get address(): UsbmuxdAddress {
    return this.boundAddress;
  }

  async start(): Promise<void> {
    if (this.server) throw new MooringError('USAGE', 'usbmuxd server already started');
    await fsp.mkdir(this.opts.pairRecordDir, { recursive: true, mode: 0o700 });
    const addr = this.opts.address;
    if (addr.kind === 'unix') await removeStaleSocket(addr.path);
    const server = net.createServer((socket) => this.accept(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e: NodeJS.ErrnoException) =>
        reject(
          new MooringError(
            'IO',
            `cannot listen as usbmuxd on ${describeUsbmuxdAddress(addr)}: ${e.message}`,
            {
              detail: e.code,
              cause: e,
            },
          ),
        ),
      );
      if (addr.kind === 'unix') server.listen(addr.path, resolve);
      else server.listen(addr.port, addr.host, resolve);
    });
    server.on('error', (e) => this.log('server-error', { error: e.message }));
    this.server = server;
    if (addr.kind === 'unix') {
      // As usbmuxd does, so unprivileged clients can connect.
      await fsp.chmod(addr.path, 0o666);
    } else {
      const bound = server.address();
      if (bound && typeof bound === 'object')
        this.boundAddress = { kind: 'tcp', host: addr.host, port: bound.port };
    }
    this.log('usbmuxd-listening', { address: describeUsbmuxdAddress(this.boundAddress) });
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    for (const c of this.clients) this.dropClient(c);
    await new Promise<void>((resolve) => server.close(() => resolve()));
    if (this.opts.address.kind === 'unix') await fsp.rm(this.opts.address.path, { force: true });
  }

  /** Plugs a device in: Listen clients get an Attached event. Returns its DeviceID. */
  attach(device: SimMuxDevice): number {
    let deviceId = device.deviceId;
    if (deviceId === undefined) {
      while (this.devices.has(this.nextDeviceId)) this.nextDeviceId++;
      deviceId = this.nextDeviceId++;
    } else if (
      this.devices.has(deviceId) ||
      !Number.isInteger(deviceId) ||
      deviceId < 1 ||
      deviceId > 0xffffffff
    ) {
      throw new MooringError('USAGE', `DeviceID ${deviceId} is invalid or already attached`);
    }
    if (device.connectionType === 'Network' && !device.networkAddress) {
      throw new MooringError('USAGE', 'a Network device needs a networkAddress');
    }
    const entry: AttachedDevice = {
      deviceId,
      spec: device,
      properties: deviceProperties(deviceId, device),
    };
    this.devices.set(deviceId, entry);
    this.log('device-attached', {
      deviceId,
      serialNumber: device.serialNumber,
      type: device.connectionType,
    });
    for (const c of this.clients) if (c.state === 'listen') this.sendAttached(c, entry);
    return deviceId;
  }

  /** Unplugs a device: Listen clients get Detached, and its open connections are cut. */
  detach(deviceId: number): boolean {
    const entry = this.devices.get(deviceId);
    if (!entry) return false;
    this.devices.delete(deviceId);
    this.log('device-detached', { deviceId });
    for (const c of this.clients) {
      if (c.state === 'listen') this.sendDetached(c, entry);
      else if (c.pipe?.deviceId === deviceId) this.dropClient(c);
    }
    return true;
  }

  /** DeviceIDs currently attached. */
  get attachedDeviceIds(): number[] {
    return [...this.devices.keys()];
  }

  /** The SystemBUID (created on first use), as ReadBUID reports it. */
  systemBuid(): Promise<string> {
    this.buid ??= this.loadOrCreateBuid().catch((e: unknown) => {
      this.buid = undefined;
      throw e;
    });
    return this.buid;
  }

  // ----- per-client protocol ----------------------------------------------------------------

  private accept(socket: net.Socket): void {
    if (!this.server) {
      socket.destroy();
      return;
    }
    const client: MuxClient = {
      number: this.nextClientNumber++,
      socket,
      state: 'command',
      protoVersion: USBMUX_VERSION_BINARY,
      info: {},
    };
    this.clients.add(client);
    socket.on('error', () => {}); // reported through the reader; never crash the simulator
    socket.on('close', () => this.dropClient(client));
    void this.serve(client).catch((e: unknown) => {
      this.log('client-error', {
        client: client.number,
        error: e instanceof Error ? e.message : String(e),
      });
      this.dropClient(client);
    });
  }

  private async serve(client: MuxClient): Promise<void> {
    const reader = new StreamReader(client.socket);
    const timeoutMs = this.opts.readTimeoutMs ?? DEFAULT_CLIENT_READ_TIMEOUT_MS;
    while (client.state === 'command' || client.state === 'listen') {
      let head: Buffer;
      try {
        head = await reader.read(USBMUX_HEADER_BYTES, IDLE_WAIT_MS, 'usbmuxd request header');
      } catch (e) {
        if (isMooringError(e, 'TIMEOUT') && reader.available === 0) continue;
        if (isMooringError(e, 'CLOSED')) return this.dropClient(client);
        throw e;
      }
      // Too long or too short: usbmuxd drops such a client without an answer.
      const header = decodeUsbmuxHeader(head, MAX_USBMUX_MESSAGE_BYTES);
      const payload = await reader.read(
        header.length - USBMUX_HEADER_BYTES,
        timeoutMs,
        'usbmuxd request payload',
      );
      if (client.state !== 'command') {
        // A Listen socket accepts no further commands (usbmuxd: BADCOMMAND, then close).
        this.sendResult(client, header.tag, UsbmuxResult.BADCOMMAND);
        client.state = 'closing'; // no longer a listener, even before the peer has hung up
        client.socket.end();
        return;
      }
      if (header.version !== USBMUX_VERSION_BINARY && header.version !== USBMUX_VERSION_PLIST) {
        this.sendResult(client, header.tag, UsbmuxResult.BADVERSION);
        continue;
      }
      switch (header.message) {
        case UsbmuxMessageType.PLIST:
          client.protoVersion = USBMUX_VERSION_PLIST;
          await this.handlePlist(client, header.tag, decodePlistMessage(payload), reader);
          break;
        case UsbmuxMessageType.LISTEN:
          this.emit('request', { client: client.number, command: 'LISTEN' });
          this.startListen(client, header.tag);
          break;
        case UsbmuxMessageType.CONNECT: {
          this.emit('request', { client: client.number, command: 'CONNECT' });
          const { deviceId, port } = decodeBinaryConnectRequest(payload);
          await this.connectClient(client, header.tag, deviceId, port, reader);
          break;
        }
        default:
          this.sendResult(client, header.tag, UsbmuxResult.BADCOMMAND);
      }
    }
  }

  private async handlePlist(
    client: MuxClient,
    tag: number,
    req: PlistDict,
    reader: StreamReader,
  ): Promise<void> {
    const type = req.MessageType;
    if (typeof type !== 'string') {
      throw new MooringError('MALFORMED', 'usbmuxd request has no MessageType');
    }
    this.emit('request', { client: client.number, command: type });
    client.info = pick(req, ['BundleID', 'ClientVersionString', 'ProgName', 'kLibUSBMuxVersion']);
    switch (type) {
      case 'Listen':
        return this.startListen(client, tag);
      case 'Connect': {
        const deviceId = asUint32(req.DeviceID);
        if (deviceId === undefined) return this.sendResult(client, tag, UsbmuxResult.BADDEV);
        const wirePort = asUint32(req.PortNumber);
        if (wirePort === undefined) return this.sendResult(client, tag, UsbmuxResult.BADCOMMAND);
        // PortNumber is htons(port) in a native integer; usbmuxd takes the low 16 bits and ntohs.
        return this.connectClient(client, tag, deviceId, swapPortBytes(wirePort & 0xffff), reader);
      }
      case 'ListDevices':
        return this.sendPlist(client, tag, {
          DeviceList: [...this.devices.values()].map((d) =>
            buildAttached(d.deviceId, d.properties),
          ),
        });
      case 'ListListeners':
        return this.sendPlist(client, tag, { ListenerList: this.listenerList() });
      case 'ReadBUID':
        return this.sendPlist(client, tag, { BUID: await this.systemBuid() });
      case 'ReadPairRecord':
        return this.readPairRecord(client, tag, req.PairRecordID);
      case 'SavePairRecord':
        return this.sendResult(client, tag, await this.savePairRecord(req));
      case 'DeletePairRecord':
        return this.sendResult(client, tag, await this.deletePairRecord(req.PairRecordID));
      default:
        return this.sendResult(client, tag, UsbmuxResult.BADCOMMAND);
    }
  }

  private startListen(client: MuxClient, tag: number): void {
    this.sendResult(client, tag, UsbmuxResult.OK);
    client.state = 'listen';
    for (const d of this.devices.values()) this.sendAttached(client, d);
  }

  private async connectClient(
    client: MuxClient,
    tag: number,
    deviceId: number,
    port: number,
    reader: StreamReader,
  ): Promise<void> {
    if (!this.devices.has(deviceId)) return this.sendResult(client, tag, UsbmuxResult.BADDEV);
    if (this.opts.handOver) return this.handOverClient(client, tag, deviceId, port, reader);
    client.state = 'connecting';
    let stream: Duplex | undefined;
    try {
      stream = await this.opts.connect(deviceId, port);
    } catch (e) {
      this.log('connect-failed', {
        deviceId,
        port,
        error: e instanceof Error ? e.message : String(e),
      });
    }
    if (!stream) {
      client.state = 'command';
      this.log('connect-refused', { deviceId, port });
      return this.sendResult(client, tag, UsbmuxResult.CONNREFUSED);
    }
    if (client.socket.destroyed || !this.devices.has(deviceId)) {
      stream.destroy();
      return this.dropClient(client);
    }
    this.sendResult(client, tag, UsbmuxResult.OK);
    // From here the socket is a raw pipe. Bytes the client sent early are handed on first.
    client.state = 'connected';
    client.pipe = { deviceId, stream };
    this.log('connected', { client: client.number, deviceId, port });
    const early = reader.detach();
    const socket = client.socket;
    stream.on('error', () => {});
    stream.on('close', () => this.dropClient(client));
    stream.on('end', () => socket.end());
    socket.on('end', () => stream.end());
    if (early.length > 0) stream.write(early);
    socket.pipe(stream, { end: false });
    stream.pipe(socket, { end: false });
    socket.resume();
  }

  /** Connect by handing the client's socket itself to the device's port (`handOver`). */
  private handOverClient(
    client: MuxClient,
    tag: number,
    deviceId: number,
    port: number,
    reader: StreamReader,
  ): void {
    const take = this.opts.handOver?.(deviceId, port);
    if (!take) {
      this.log('connect-refused', { deviceId, port });
      return this.sendResult(client, tag, UsbmuxResult.CONNREFUSED);
    }
    const socket = client.socket;
    if (socket.destroyed) return this.dropClient(client);
    this.sendResult(client, tag, UsbmuxResult.OK);
    // From here the socket is the device's connection. Bytes the client sent early go first.
    client.state = 'connected';
    client.pipe = { deviceId, stream: socket };
    this.log('connected', { client: client.number, deviceId, port });
    const early = reader.detach();
    if (early.length > 0) socket.unshift(early);
    take(socket);
  }

  // ----- pair records -----------------------------------------------------------------------

  private async readPairRecord(client: MuxClient, tag: number, id: unknown): Promise<void> {
    if (typeof id !== 'string' || !isValidPairRecordId(id)) {
      return this.sendResult(client, tag, UsbmuxErrno.EINVAL);
    }
    let data: Buffer;
    try {
      data = await fsp.readFile(this.recordPath(id));
    } catch (e) {
      return this.sendResult(client, tag, errnoOf(e));
    }
    this.sendPlist(client, tag, { PairRecordData: data });
  }

  /** Result number for SavePairRecord: 0, or an errno as usbmuxd would answer. */
  private async savePairRecord(req: PlistDict): Promise<number> {
    const id = req.PairRecordID;
    const data = req.PairRecordData;
    if (
      typeof id !== 'string' ||
      !isValidPairRecordId(id) ||
      !Buffer.isBuffer(data) ||
      data.length < 8
    ) {
      return UsbmuxErrno.EINVAL;
    }
    let record: PlistDict;
    try {
      const value = decodePlist(data, USBMUX_PLIST_LIMITS);
      if (!isPlistDict(value)) return UsbmuxErrno.EINVAL;
      record = value;
    } catch {
      return UsbmuxErrno.EINVAL;
    }
    try {
      // usbmuxd stores records as XML whatever format they came in.
      await writeFileAtomic(this.recordPath(id), encodeXmlPlist(record), 0o600);
    } catch (e) {
      return errnoOf(e);
    }
    this.log('pair-record-saved', { id });
    const deviceId = asUint32(req.DeviceID);
    const device = deviceId ? this.devices.get(deviceId) : undefined;
    // usbmuxd compares the serial verbatim; hosts save under the dashed UDID, so compare both ways.
    if (device && udidsMatch(device.spec.serialNumber, id)) {
      for (const c of this.clients) if (c.state === 'listen') this.sendPaired(c, device);
    }
    return UsbmuxResult.OK;
  }

  private async deletePairRecord(id: unknown): Promise<number> {
    if (typeof id !== 'string' || !isValidPairRecordId(id)) return UsbmuxErrno.EINVAL;
    try {
      await fsp.unlink(this.recordPath(id));
    } catch (e) {
      return errnoOf(e);
    }
    this.log('pair-record-deleted', { id });
    return UsbmuxResult.OK;
  }

  private recordPath(id: string): string {
    return path.join(this.opts.pairRecordDir, `${id}.plist`);
  }

  private async loadOrCreateBuid(): Promise<string> {
    const file = path.join(this.opts.pairRecordDir, SYSTEM_CONFIGURATION_FILE);
    let config: PlistDict = {};
    try {
      const value = decodePlist(await fsp.readFile(file), USBMUX_PLIST_LIMITS);
      if (isPlistDict(value)) config = value;
    } catch (e) {
      // Missing or unreadable: like usbmuxd, start a fresh config with a new BUID.
      if (!isMooringError(e) && (e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    if (typeof config.SystemBUID === 'string' && config.SystemBUID !== '') return config.SystemBUID;
    const buid = randomUUID().toUpperCase();
    await writeFileAtomic(file, encodeXmlPlist({ ...config, SystemBUID: buid }), 0o644);
    this.log('system-buid-created', { buid });
    return buid;
  }

  // ----- output -----------------------------------------------------------------------------

  private listenerList(): PlistDict[] {
    const out: PlistDict[] = [];
    for (const c of this.clients) {
      if (c.state !== 'listen') continue;
      const progName = typeof c.info.ProgName === 'string' ? c.info.ProgName : 'unknown';
      const entry: PlistDict = { Blacklisted: false };
      if (c.info.BundleID !== undefined) entry.BundleID = c.info.BundleID;
      entry.ConnType = 0;
      entry['ID String'] = `${c.number}-${progName}`;
      entry.ProgName = progName;
      entry.kLibUSBMuxVersion = asUint32(c.info.kLibUSBMuxVersion) ?? 0;
      out.push(entry);
    }
    return out;
  }

  private sendAttached(c: MuxClient, d: AttachedDevice): void {
    if (c.protoVersion === USBMUX_VERSION_PLIST) {
      this.sendPlist(c, 0, buildAttached(d.deviceId, d.properties));
    } else if (d.spec.connectionType === 'USB') {
      // The binary protocol has no network devices.
      this.write(
        c,
        encodeBinaryDeviceAdd({
          deviceId: d.deviceId,
          productId: asUint32(d.properties.ProductID) ?? 0,
          serialNumber: d.spec.serialNumber,
          locationId: asUint32(d.properties.LocationID) ?? 0,
        }),
      );
    }
  }

  private sendDetached(c: MuxClient, d: AttachedDevice): void {
    if (c.protoVersion === USBMUX_VERSION_PLIST) this.sendPlist(c, 0, buildDetached(d.deviceId));
    else if (d.spec.connectionType === 'USB') this.write(c, encodeBinaryDeviceRemove(d.deviceId));
  }

  private sendPaired(c: MuxClient, d: AttachedDevice): void {
    if (c.protoVersion === USBMUX_VERSION_PLIST) this.sendPlist(c, 0, buildPaired(d.deviceId));
    else if (d.spec.connectionType === 'USB') this.write(c, encodeBinaryDevicePaired(d.deviceId));
  }

  /** A Result in the client's protocol (binary until it has spoken plist, as usbmuxd does). */
  private sendResult(c: MuxClient, tag: number, n: number): void {
    if (c.protoVersion === USBMUX_VERSION_PLIST) this.sendPlist(c, tag, buildResult(n));
    else this.write(c, encodeBinaryResult(tag, n));
  }

  private sendPlist(c: MuxClient, tag: number, dict: PlistDict): void {
    this.write(c, encodePlistMessage(tag, dict));
  }

  private write(c: MuxClient, message: Buffer): void {
    if (!c.socket.destroyed && c.socket.writable) c.socket.write(message);
  }

  private dropClient(c: MuxClient): void {
    if (!this.clients.delete(c)) return;
    c.socket.destroy();
    c.pipe?.stream.destroy();
  }

  private log(event: string, fields?: Record<string, unknown>): void {
    this.opts.log?.(event, fields);
  }
}

/** The Properties dict usbmuxd (USB) or a Wi-Fi-capable mux (Network) reports for a device. */
function deviceProperties(deviceId: number, d: SimMuxDevice): PlistDict {
  if (d.connectionType === 'USB') {
    return {
      ConnectionSpeed: DEFAULT_CONNECTION_SPEED,
      ConnectionType: 'USB',
      DeviceID: deviceId,
      LocationID: d.locationId ?? (0x00100000 | deviceId) >>> 0,
      ProductID: d.productId ?? DEFAULT_PRODUCT_ID,
      SerialNumber: d.serialNumber,
    };
  }
  return {
    ConnectionType: 'Network',
    DeviceID: deviceId,
    EscapedFullServiceName:
      d.escapedFullServiceName ?? `${d.serialNumber}._apple-mobdev2._tcp.local.`,
    InterfaceIndex: d.interfaceIndex ?? 1,
    NetworkAddress: encodeNetworkAddress(d.networkAddress!, 'linux'),
    SerialNumber: d.serialNumber,
  };
}

function pick(dict: PlistDict, keys: string[]): PlistDict {
  const out: PlistDict = {};
  for (const k of keys) {
    const v = dict[k];
    if (v !== undefined) out[k] = v;
  }
  return out;
}

/** errno number for a filesystem error, as usbmuxd would put it in `Number`. */
function errnoOf(e: unknown): number {
  const code = (e as NodeJS.ErrnoException).code;
  const n = code ? (os.constants.errno as Record<string, number>)[code] : undefined;
  return n ?? UsbmuxErrno.EIO;
}

/** Write to a temp file in the same directory, then rename: readers never see half a record. */
async function writeFileAtomic(file: string, data: Buffer, mode: number): Promise<void> {
  const tmp = `${file}.${process.pid}.${randomUUID()}.tmp`;
  try {
    await fsp.writeFile(tmp, data, { mode, flag: 'wx' });
    await fsp.chmod(tmp, mode); // the umask may have narrowed or (0666) not applied
    await fsp.rename(tmp, file);
  } catch (e) {
    await fsp.rm(tmp, { force: true });
    throw e;
  }
}

/**
 * Removes a socket file left by a previous run. A live socket (something answers) or a path that
 * is not a socket is left alone and reported, so we never steal or delete someone else's file.
 */
async function removeStaleSocket(socketPath: string): Promise<void> {
  let st;
  try {
    st = await fsp.lstat(socketPath);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  if (!st.isSocket()) {
    throw new MooringError(
      'IO',
      `cannot listen as usbmuxd on ${socketPath}: a file that is not a socket is in the way`,
    );
  }
  const alive = await new Promise<boolean>((resolve) => {
    const probe = net.createConnection(socketPath);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (alive) {
    throw new MooringError(
      'IO',
      `cannot listen as usbmuxd on ${socketPath}: another usbmuxd is listening there`,
    );
  }
  await fsp.rm(socketPath, { force: true });
}
