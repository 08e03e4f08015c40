/**
 * Host-side usbmuxd client.
 *
 * ListDevices, ReadBUID, ReadPairRecord and Connect go through appium-ios-device's `Usbmux`
 * (its framing and plist codec); Listen, SavePairRecord and DeletePairRecord, which it lacks, use
 * our own codec (src/protocol/usbmux). Like libusbmuxd, every command uses a fresh socket that is
 * closed afterwards, except Listen (long-lived) and a successful Connect (the socket becomes the
 * pipe to the device).
 *
 * Every failure is a MooringError with code 'USBMUXD' (bad arguments: 'USAGE'); `detail` carries
 * the mux result or errno number, or the socket error code when usbmuxd is unreachable; `cause`
 * the underlying error.
 */
import { EventEmitter } from 'node:events';
import net from 'node:net';
import type { Transform } from 'node:stream';
import type { Usbmux } from 'appium-ios-device/build/lib/usbmux';
import { isPlistDict, type PlistDict, type PlistValue } from '../protocol/plist/types';
import {
  DEFAULT_CLIENT_INFO,
  USBMUX_HEADER_BYTES,
  USBMUX_PLIST_LIMITS,
  UsbmuxErrno,
  UsbmuxMessageType,
  UsbmuxResult,
  buildRequest,
  encodePlistMessage,
  decodePlistMessage,
  decodeUsbmuxHeader,
  parseDeviceList,
  parseMuxEvent,
  readUsbmuxFrame,
  resultNumber,
  udidsMatch,
  usbSerialForUdid,
  type MuxDevice,
  type MuxEvent,
  type UsbmuxClientInfo,
} from '../protocol/usbmux';
import { MooringError, isMooringError } from '../util/errors';
import { StreamReader } from '../util/stream-reader';
import { loadAppiumUsbmux } from './appium-loader';
import {
  USBMUXD_SOCKET_ADDRESS_ENV,
  describeUsbmuxdAddress,
  resolveUsbmuxdAddress,
  type UsbmuxdAddress,
} from './usbmuxd-address';

export type { MuxDevice } from '../protocol/usbmux';

/** Deadline for usbmuxd to accept a connection and to answer one command (libusbmuxd uses 5 s). */
export const DEFAULT_USBMUXD_TIMEOUT_MS = 5_000;

/** A Listen socket may be silent for hours; we wake this often only to re-arm the read. */
const LISTEN_IDLE_WAIT_MS = 60_000;

const RESULT_NAMES: Record<number, string> = {
  [UsbmuxResult.OK]: 'OK',
  [UsbmuxResult.BADCOMMAND]: 'BADCOMMAND',
  [UsbmuxResult.BADDEV]: 'BADDEV',
  [UsbmuxResult.CONNREFUSED]: 'CONNREFUSED',
  [UsbmuxResult.NOSUCHSERVICE]: 'NOSUCHSERVICE',
  [UsbmuxResult.BADVERSION]: 'BADVERSION',
};

const ERRNO_NAMES: Record<number, string> = {
  [UsbmuxErrno.ENOENT]: 'ENOENT, no such record',
  [UsbmuxErrno.EIO]: 'EIO, input/output error',
  [UsbmuxErrno.EACCES]: 'EACCES, permission denied',
  [UsbmuxErrno.EEXIST]: 'EEXIST',
  [UsbmuxErrno.EINVAL]: 'EINVAL, not a valid pair record',
  [UsbmuxErrno.ENOSPC]: 'ENOSPC, disk full',
};

export interface UsbmuxdClientOptions {
  /** Where usbmuxd listens; default: `resolveUsbmuxdAddress()` (USBMUXD_SOCKET_ADDRESS or the platform default). */
  address?: UsbmuxdAddress;
  /** Connect and per-command deadline. */
  timeoutMs?: number;
  /** ProgName / ClientVersionString sent with our own requests. */
  clientInfo?: UsbmuxClientInfo;
}

export interface MuxListenerEvents {
  attached: [MuxDevice];
  detached: [{ deviceId: number }];
  paired: [{ deviceId: number }];
  /** The Listen connection ended: no error when `close()` was called, else why. */
  close: [MooringError | undefined];
}

export class UsbmuxdClient {
  readonly address: UsbmuxdAddress;
  readonly timeoutMs: number;
  private readonly clientInfo: UsbmuxClientInfo;
  private tag = 1;

  constructor(opts: UsbmuxdClientOptions = {}) {
    this.address = opts.address ?? resolveUsbmuxdAddress();
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_USBMUXD_TIMEOUT_MS;
    this.clientInfo = opts.clientInfo ?? DEFAULT_CLIENT_INFO;
  }

  /** Devices usbmuxd knows now. Entries it describes in a way we cannot parse are left out. */
  async listDevices(): Promise<MuxDevice[]> {
    const list = fromAppium(
      await this.viaAppium('ListDevices', (mux) => mux.listDevices(this.timeoutMs)),
    );
    if (!Array.isArray(list)) throw this.error('usbmuxd answered ListDevices without a DeviceList');
    return parseDeviceList({ DeviceList: list }).devices;
  }

  /** The device with this UDID (either spelling), preferring a USB attachment over Network. */
  async findDevice(udid: string): Promise<MuxDevice | undefined> {
    const matches = (await this.listDevices()).filter((d) => udidsMatch(d.udid, udid));
    return matches.find((d) => d.connectionType === 'USB') ?? matches[0];
  }

  /** The host-wide SystemBUID usbmuxd keeps (reference §1.8). */
  async readBuid(): Promise<string> {
    const buid: unknown = await this.viaAppium('ReadBUID', (mux) => mux.readBUID(this.timeoutMs));
    if (typeof buid !== 'string' || buid === '')
      throw this.error('usbmuxd answered ReadBUID without a BUID');
    return buid;
  }

  /**
   * The stored pair record's raw plist bytes, or undefined when usbmuxd has none. Tries the UDID
   * as given, then its other spelling (with/without the dash), since hosts disagree on file names.
   */
  async readPairRecord(udid: string): Promise<Buffer | undefined> {
    checkUdid(udid);
    const spellings = [udid];
    const alt = udid.includes('-') ? usbSerialForUdid(udid) : dashed(udid);
    if (alt !== udid) spellings.push(alt);
    for (const id of spellings) {
      const record = await this.readPairRecordAs(id);
      if (record) return record;
    }
    return undefined;
  }

  /**
   * Stores a pair record (XML or binary plist bytes). With `deviceId`, usbmuxd also tells Listen
   * clients the device is now paired.
   */
  async savePairRecord(udid: string, data: Buffer, deviceId?: number): Promise<void> {
    checkUdid(udid);
    if (!Buffer.isBuffer(data) || data.length === 0) {
      throw new MooringError('USAGE', 'savePairRecord needs the record as a non-empty Buffer');
    }
    const extra: PlistDict = { PairRecordID: udid, PairRecordData: data };
    if (deviceId !== undefined) extra.DeviceID = deviceId;
    const reply = await this.ownRequest('SavePairRecord', extra);
    const n = resultNumber(reply);
    if (n === UsbmuxResult.OK) return;
    throw this.errnoError(`save the pair record for ${udid}`, n, reply);
  }

  /** Deletes a pair record. Resolves false when there was none (ENOENT), true when deleted. */
  async deletePairRecord(udid: string): Promise<boolean> {
    checkUdid(udid);
    const reply = await this.ownRequest('DeletePairRecord', { PairRecordID: udid });
    const n = resultNumber(reply);
    if (n === UsbmuxResult.OK) return true;
    if (n === UsbmuxErrno.ENOENT) return false;
    throw this.errnoError(`delete the pair record for ${udid}`, n, reply);
  }

  /**
   * Opens a raw byte pipe to `port` on the device. The returned socket may be paused: read it
   * through a StreamReader (or `resume()`/`pipe()` it).
   */
  async connect(deviceId: number, port: number): Promise<net.Socket> {
    if (!Number.isInteger(deviceId) || deviceId < 0 || deviceId > 0xffffffff) {
      throw new MooringError('USAGE', `not a usbmuxd DeviceID: ${deviceId}`);
    }
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw new MooringError('USAGE', `not a TCP port: ${port}`);
    }
    return this.viaAppium(
      'Connect',
      // appium types DeviceID as string, but a string would be sent as <string>, which usbmuxd
      // rejects (BADDEV); it must travel as an integer.
      (mux) =>
        mux.connect(deviceId as unknown as string, port, this.timeoutMs) as Promise<net.Socket>,
      { keepSocket: true, connectTarget: { deviceId, port } },
    );
  }

  /**
   * Subscribes to attach/detach/paired events. usbmuxd first reports every device already
   * present as 'attached'. Events start on the next event-loop turn, so attach handlers right
   * after the await.
   */
  async listen(): Promise<MuxListener> {
    const socket = await this.openSocket();
    const reader = new StreamReader(socket);
    try {
      const tag = this.tag++;
      socket.write(encodePlistMessage(tag, buildRequest('Listen', {}, this.clientInfo)));
      const reply = await this.readReply(reader, 'Listen', tag);
      const n = resultNumber(reply);
      if (n !== UsbmuxResult.OK) throw this.resultError('Listen', n, reply);
    } catch (e) {
      socket.destroy();
      throw this.wrap(e, 'Listen');
    }
    return new MuxListener(socket, reader, this.timeoutMs, describeUsbmuxdAddress(this.address));
  }

  // ----- plumbing ---------------------------------------------------------------------------

  private async readPairRecordAs(id: string): Promise<Buffer | undefined> {
    // appium's readPairRecord() parses the record and maps every failure to null, so use its
    // request/reply primitives to keep the raw bytes and usbmuxd's errno.
    const raw = await this.viaAppium('ReadPairRecord', (mux) => {
      const { tag, receivePromise } = mux._receivePlistPromise(
        this.timeoutMs,
        (data: { payload: unknown }) => data.payload,
      );
      mux._sendPlist({
        tag,
        payload: buildRequest('ReadPairRecord', { PairRecordID: id }, this.clientInfo),
      });
      return receivePromise as Promise<unknown>;
    });
    const reply = fromAppium(raw);
    const n = isPlistDict(reply) ? resultNumber(reply) : undefined;
    if (isPlistDict(reply) && Buffer.isBuffer(reply.PairRecordData)) return reply.PairRecordData;
    if (n === UsbmuxErrno.ENOENT) return undefined;
    throw this.errnoError(`read the pair record for ${id}`, n, reply);
  }

  /**
   * Runs one appium Usbmux operation on a fresh socket. Works around two things in appium:
   * its splitter/decoder throw synchronously on an oversized frame or a bad plist (an uncaught
   * exception that would kill the process), and its errors carry no result code. We trap the
   * throws, watch the socket, and keep the last decoded reply to map result codes ourselves.
   */
  private async viaAppium<T>(
    what: string,
    op: (mux: Usbmux) => Promise<T>,
    opts: { keepSocket?: boolean; connectTarget?: { deviceId: number; port: number } } = {},
  ): Promise<T> {
    const { Usbmux: AppiumUsbmux } = loadAppiumUsbmux();
    const socket = await this.openSocket();
    const mux = new AppiumUsbmux(socket);
    refuseShortFrames(mux._splitter);
    trapSyncThrows(mux._splitter);
    trapSyncThrows(mux._decoder);
    let lastReply: PlistValue | undefined;
    const onReply = (d: { payload?: unknown }): void => {
      lastReply = fromAppium(d.payload);
    };
    mux._decoder.on('data', onReply);

    let onFailure: (e: Error) => void = () => {};
    const failed = new Promise<never>((_, reject) => {
      onFailure = reject;
    });
    const onStreamError = (e: Error): void => onFailure(e);
    const onClose = (): void =>
      onFailure(
        new MooringError('CLOSED', `usbmuxd closed the connection before answering ${what}`),
      );
    mux._splitter.on('error', onStreamError);
    mux._decoder.on('error', onStreamError);
    socket.on('error', onStreamError);
    socket.on('close', onClose);
    const detach = (): void => {
      mux._decoder.off('data', onReply);
      socket.off('error', onStreamError);
      socket.off('close', onClose);
    };

    let handedOver = false;
    try {
      const result = await Promise.race([op(mux), failed]);
      if (opts.keepSocket) {
        // appium pushes bytes that arrived with the Result back into the socket on the next
        // tick; let that happen before the caller starts reading.
        await new Promise((resolve) => setImmediate(resolve));
        detach();
        handedOver = true;
      }
      return result;
    } catch (e) {
      const n = isPlistDict(lastReply) ? resultNumber(lastReply) : undefined;
      if (n !== undefined && n !== UsbmuxResult.OK) {
        if (opts.connectTarget) throw this.connectError(opts.connectTarget, n, e);
        throw this.resultError(what, n, lastReply, e);
      }
      throw this.wrap(e, what);
    } finally {
      if (!handedOver) {
        detach();
        // Errors after this point (a reset while closing) have nobody to report to.
        socket.on('error', () => {});
        socket.destroy();
      }
    }
  }

  /** One request/reply with our own codec on a fresh socket (commands appium lacks). */
  private async ownRequest(what: string, extra: PlistDict): Promise<PlistDict> {
    const socket = await this.openSocket();
    const reader = new StreamReader(socket);
    try {
      const tag = this.tag++;
      socket.write(encodePlistMessage(tag, buildRequest(what, extra, this.clientInfo)));
      return await this.readReply(reader, what, tag);
    } catch (e) {
      throw this.wrap(e, what);
    } finally {
      socket.on('error', () => {});
      socket.destroy();
    }
  }

  private async readReply(reader: StreamReader, what: string, tag: number): Promise<PlistDict> {
    const frame = await readUsbmuxFrame(reader, this.timeoutMs, `usbmuxd reply to ${what}`);
    if (frame.header.message !== UsbmuxMessageType.PLIST) {
      throw new MooringError(
        'PROTOCOL',
        `usbmuxd answered ${what} with a binary-protocol message (type ${frame.header.message})`,
      );
    }
    if (frame.header.tag !== tag) {
      throw new MooringError(
        'PROTOCOL',
        `usbmuxd answered ${what} with tag ${frame.header.tag}, expected ${tag}`,
      );
    }
    return decodePlistMessage(frame.payload);
  }

  private openSocket(): Promise<net.Socket> {
    const addr = this.address;
    const where = describeUsbmuxdAddress(addr);
    return new Promise((resolve, reject) => {
      const socket =
        addr.kind === 'unix'
          ? net.createConnection(addr.path)
          : net.createConnection(addr.port, addr.host);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(
          this.error(`usbmuxd at ${where} did not accept a connection within ${this.timeoutMs} ms`),
        );
      }, this.timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.off('error', onError);
        resolve(socket);
      });
      const onError = (e: NodeJS.ErrnoException): void => {
        clearTimeout(timer);
        reject(this.unreachableError(e));
      };
      socket.once('error', onError);
    });
  }

  private unreachableError(e: NodeJS.ErrnoException): MooringError {
    const where = describeUsbmuxdAddress(this.address);
    const hint = `set ${USBMUXD_SOCKET_ADDRESS_ENV} if it listens elsewhere`;
    let message: string;
    if (e.code === 'ENOENT' || e.code === 'ECONNREFUSED') {
      message =
        this.address.kind === 'unix'
          ? `usbmuxd is not running at ${where}: install/start usbmuxd, or ${hint}`
          : `usbmuxd is not running at ${where}: install/start usbmuxd (on Windows: Apple Devices or iTunes, ` +
            `which run Apple Mobile Device Service), or ${hint}`;
    } else if (e.code === 'EACCES' || e.code === 'EPERM') {
      message = `no permission to open the usbmuxd socket ${where}: usbmuxd normally makes it world-accessible (0666); check its permissions, or ${hint}`;
    } else {
      message = `cannot connect to usbmuxd at ${where} (${e.code ?? e.message}): check that usbmuxd is running, or ${hint}`;
    }
    return new MooringError('USBMUXD', message, { detail: e.code, cause: e });
  }

  private connectError(
    target: { deviceId: number; port: number },
    n: number,
    cause?: unknown,
  ): MooringError {
    const { deviceId, port } = target;
    let message: string;
    if (n === UsbmuxResult.BADDEV) {
      message = `usbmuxd does not know device ${deviceId} (BADDEV): it was unplugged or re-attached; list devices again and retry`;
    } else if (n === UsbmuxResult.CONNREFUSED) {
      message = `device ${deviceId} refused a connection to port ${port} (CONNREFUSED): the service is not running there; unlock the device or retry`;
    } else {
      message = `usbmuxd refused to connect to device ${deviceId} port ${port} (${resultName(n)})`;
    }
    return new MooringError('USBMUXD', message, { detail: n, cause });
  }

  private resultError(
    what: string,
    n: number | undefined,
    reply: unknown,
    cause?: unknown,
  ): MooringError {
    if (n === undefined) {
      return new MooringError(
        'USBMUXD',
        `usbmuxd sent an unexpected answer to ${what}: ${summarise(reply)}`,
        { cause },
      );
    }
    const extra =
      n === UsbmuxResult.BADVERSION || n === UsbmuxResult.BADCOMMAND
        ? ' (usbmuxd too old or not a usbmuxd?)'
        : '';
    return new MooringError('USBMUXD', `usbmuxd refused ${what}: ${resultName(n)}${extra}`, {
      detail: n,
      cause,
    });
  }

  private errnoError(action: string, n: number | undefined, reply: unknown): MooringError {
    if (n === undefined) {
      return new MooringError(
        'USBMUXD',
        `usbmuxd sent an unexpected answer when asked to ${action}: ${summarise(reply)}`,
      );
    }
    return new MooringError(
      'USBMUXD',
      `usbmuxd could not ${action}: errno ${n} (${ERRNO_NAMES[n] ?? 'unknown'})`,
      {
        detail: n,
      },
    );
  }

  private wrap(e: unknown, what: string): MooringError {
    if (isMooringError(e, 'USBMUXD')) return e;
    const where = describeUsbmuxdAddress(this.address);
    if (
      isMooringError(e, 'TIMEOUT') ||
      (e instanceof Error && /within the timeout/.test(e.message))
    ) {
      return new MooringError(
        'USBMUXD',
        `usbmuxd at ${where} did not answer ${what} within ${this.timeoutMs} ms`,
        {
          cause: e,
        },
      );
    }
    const message = e instanceof Error ? e.message : String(e);
    return new MooringError('USBMUXD', `usbmuxd at ${where} failed ${what}: ${message}`, {
      cause: e,
    });
  }

  private error(message: string): MooringError {
    return new MooringError('USBMUXD', message);
  }
}

/** A live Listen subscription (see UsbmuxdClient.listen). */
export class MuxListener extends EventEmitter<MuxListenerEvents> {
  /** Devices currently attached, as reported on this connection. */
  readonly devices = new Map<number, MuxDevice>();
  private closing = false;
  private ended = false;

  constructor(
    private readonly socket: net.Socket,
    private readonly reader: StreamReader,
    private readonly timeoutMs: number,
    private readonly where: string,
  ) {
    super();
    setImmediate(() => void this.run());
  }

  get closed(): boolean {
    return this.ended;
  }

  /** Ends the subscription; 'close' is emitted with no error. */
  close(): void {
    this.closing = true;
    this.socket.on('error', () => {});
    this.socket.destroy();
  }

  private async run(): Promise<void> {
    let failure: MooringError | undefined;
    try {
      while (!this.closing) {
        let head: Buffer;
        try {
          // Events may be hours apart: an idle timeout just re-arms the read, unless a message
          // had started arriving (a stalled peer).
          head = await this.reader.read(
            USBMUX_HEADER_BYTES,
            LISTEN_IDLE_WAIT_MS,
            'usbmuxd event header',
          );
        } catch (e) {
          if (isMooringError(e, 'TIMEOUT') && this.reader.available === 0) continue;
          throw e;
        }
        const header = decodeUsbmuxHeader(head);
        const payload = await this.reader.read(
          header.length - USBMUX_HEADER_BYTES,
          this.timeoutMs,
          'usbmuxd event payload',
        );
        if (header.message !== UsbmuxMessageType.PLIST) {
          throw new MooringError(
            'PROTOCOL',
            `unexpected binary-protocol message (type ${header.message})`,
          );
        }
        this.handle(decodePlistMessage(payload));
      }
    } catch (e) {
      if (!this.closing) failure = wrapListenError(e, this.where);
    }
    this.finish(failure);
  }

  private handle(dict: PlistDict): void {
    let event: MuxEvent | undefined;
    try {
      event = parseMuxEvent(dict);
    } catch (e) {
      // A device described in a way we cannot use is skipped, like in listDevices().
      if (isMooringError(e, 'MALFORMED')) return;
      throw e;
    }
    if (!event) return;
    if (event.type === 'attached') {
      this.devices.set(event.device.deviceId, event.device);
      this.emit('attached', event.device);
    } else if (event.type === 'detached') {
      this.devices.delete(event.deviceId);
      this.emit('detached', { deviceId: event.deviceId });
    } else {
      this.emit('paired', { deviceId: event.deviceId });
    }
  }

  private finish(failure: MooringError | undefined): void {
    if (this.ended) return;
    this.ended = true;
    this.socket.on('error', () => {});
    this.socket.destroy();
    if (failure) {
      // As libusbmuxd does when the mux goes away: every known device is gone too.
      for (const deviceId of [...this.devices.keys()]) {
        this.devices.delete(deviceId);
        this.emit('detached', { deviceId });
      }
    }
    this.emit('close', failure);
  }
}

function wrapListenError(e: unknown, where: string): MooringError {
  if (isMooringError(e, 'CLOSED')) {
    return new MooringError(
      'USBMUXD',
      `usbmuxd at ${where} closed the Listen connection (did it stop?)`,
      { cause: e },
    );
  }
  const message = e instanceof Error ? e.message : String(e);
  return new MooringError('USBMUXD', `usbmuxd Listen connection at ${where} failed: ${message}`, {
    cause: e,
  });
}

/**
 * appium's frame splitter trusts the length at the head of each usbmuxd message, which counts the
 * whole message, its 16-byte header included. A length under 4 (less than the length field itself)
 * sends it into an endless loop of empty messages that blocks the process; any length under the
 * header is no message. Refused here, as a throw that trapSyncThrows makes a stream error.
 */
function refuseShortFrames(splitter: Transform): void {
  const s = splitter as Transform & {
    _readLength(data: Buffer, index: number, littleEndian: boolean): number;
  };
  const read = s._readLength.bind(s);
  s._readLength = (data, index, littleEndian) => {
    const length = read(data, index, littleEndian);
    if (length < USBMUX_HEADER_BYTES) {
      throw new MooringError(
        'USBMUXD',
        `usbmuxd sent a message ${length} bytes long, shorter than its own ${USBMUX_HEADER_BYTES}-byte header`,
      );
    }
    return length;
  };
}

/** Turns a synchronous throw inside a Transform into a stream 'error' instead of a process crash. */
function trapSyncThrows(t: Transform): void {
  const original = t._transform.bind(t);
  t._transform = (chunk, encoding, callback) => {
    try {
      original(chunk, encoding, callback);
    } catch (e) {
      callback(e instanceof Error ? e : new Error(String(e)));
    }
  };
}

/**
 * appium's XML plist parser yields Uint8Array for <data>; our model (and every caller) expects
 * Buffer. Returns undefined for values that are not plist-shaped.
 */
function fromAppium(v: unknown, depth = 0): PlistValue | undefined {
  if (depth > USBMUX_PLIST_LIMITS.maxDepth) return undefined;
  if (Buffer.isBuffer(v)) return v;
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  if (
    typeof v === 'string' ||
    typeof v === 'number' ||
    typeof v === 'bigint' ||
    typeof v === 'boolean'
  )
    return v;
  if (v instanceof Date) return v;
  if (Array.isArray(v))
    return v.map((x) => fromAppium(x, depth + 1)).filter((x) => x !== undefined);
  if (typeof v === 'object' && v !== null) {
    const out: PlistDict = {};
    for (const [k, x] of Object.entries(v)) {
      const y = fromAppium(x, depth + 1);
      if (y !== undefined) out[k] = y;
    }
    return out;
  }
  return undefined;
}

function checkUdid(udid: string): void {
  if (typeof udid !== 'string' || udid.length === 0)
    throw new MooringError('USAGE', 'a device UDID is required');
}

function dashed(udid: string): string {
  return udid.length === 24 ? `${udid.slice(0, 8)}-${udid.slice(8)}` : udid;
}

function resultName(n: number): string {
  return `${RESULT_NAMES[n] ?? 'result'} ${n}`;
}

function summarise(v: unknown): string {
  let s: string;
  try {
    s =
      JSON.stringify(v, (_k, x: unknown) => (Buffer.isBuffer(x) ? `<${x.length} bytes>` : x)) ??
      typeof v;
  } catch {
    // A hostile dict can make JSON.stringify (and String) throw: describe it by its type only.
    s = Array.isArray(v) ? 'an array' : typeof v;
  }
  return s.length > 200 ? `${s.slice(0, 200)}…` : s;
}
