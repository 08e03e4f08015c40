/**
 * Host side of a Device Link connection (reference §4.1): version exchange, validated DL arrays
 * in both directions, status responses and disconnect. Messages are sent as binary plists, as
 * libimobiledevice does for DL services; the raw file stream uses `reader`/`writeRaw`.
 *
 * Version policy: we echo the device's major in DLVersionsOk (pymobiledevice3, go-ios and
 * Netimobiledevice do; devices accept it). libimobiledevice instead refuses majors above 400 and
 * answers 400; we do not copy that cap, because it is a host constant from 2010, not a device
 * requirement, and refusing would only turn a future iOS into a failure.
 */
import { MooringError } from '../../util/errors';
import { DEFAULT_READ_TIMEOUT_MS, type StreamReader } from '../../util/stream-reader';
import type { PlistDict, PlistValue } from '../../protocol/plist/types';
import type { PlistConnection } from '../../transport/plist-connection';
import {
  dlDisconnect,
  dlProcessMessage,
  dlStatusResponse,
  dlVersionsOk,
  parseDeviceDlFrame,
  validateDlArray,
  type DeviceDlMessage,
  type DlArray,
  type KeptFrame,
} from '../../protocol/device-link';

export interface DlVersion {
  major: number;
  minor: number;
}

/** MoveItems frames up to this size are kept in the connection's one buffer while they are read. */
const KEPT_FRAME_MAX_BYTES = 4 << 20;

/**
 * The buffer a MoveItems frame is copied into while its moves are read (D51), one per connection
 * and reused: the frame read from the stream then dies young, where a frame held through the
 * message's handling would be promoted and its memory freed only by a full collection. A frame
 * larger than KEPT_FRAME_MAX_BYTES (a device's are ~1 MB) is read where it came.
 */
class MoveFrameBuffer {
  private buf = Buffer.alloc(0);
  private frames = 0;

  /** Another frame has arrived: a frame kept before may be overwritten from now on. */
  arrived(): void {
    this.frames++;
  }

  keep(frame: Buffer): KeptFrame {
    if (frame.length > KEPT_FRAME_MAX_BYTES) return { buf: frame, current: () => true }; // its own
    const at = this.frames;
    const current = (): boolean => this.frames === at;
    if (this.buf.length < frame.length)
      this.buf = Buffer.allocUnsafe(frame.length + (frame.length >> 2));
    frame.copy(this.buf);
    return { buf: this.buf.subarray(0, frame.length), current };
  }
}

export class DeviceLinkConnection {
  private readonly timeoutMs: number;
  private readonly moveFrames = new MoveFrameBuffer();
  private disconnected = false;
  /** Set by versionExchange(). */
  version: DlVersion | undefined;

  constructor(
    readonly connection: PlistConnection,
    opts: { timeoutMs?: number } = {},
  ) {
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_READ_TIMEOUT_MS;
  }

  /** Raw reads for the file stream that follows Download/UploadFiles. */
  get reader(): StreamReader {
    return this.connection.reader;
  }

  writeRaw(buf: Buffer): Promise<void> {
    return this.connection.writeRaw(buf);
  }

  /** device VersionExchange → host DLVersionsOk(major) → device DeviceReady. */
  async versionExchange(timeoutMs = this.timeoutMs): Promise<DlVersion> {
    const first = await this.receive(timeoutMs);
    if (first.type !== 'VersionExchange') {
      throw new MooringError(
        'PROTOCOL',
        `expected DLMessageVersionExchange from the device, got ${describe(first)}`,
      );
    }
    await this.send(dlVersionsOk(first.major));
    const ready = await this.receive(timeoutMs);
    if (ready.type !== 'DeviceReady') {
      throw new MooringError(
        'PROTOCOL',
        `expected DLMessageDeviceReady after the version exchange, got ${describe(ready)}`,
      );
    }
    this.version = { major: first.major, minor: first.minor };
    return this.version;
  }

  async send(message: DlArray): Promise<void> {
    validateDlArray(message);
    await this.connection.send(message, 'binary');
  }

  /** The next message as a validated DL array. */
  async receiveArray(timeoutMs = this.timeoutMs): Promise<DlArray> {
    return validateDlArray(await this.connection.receive(timeoutMs));
  }

  /** The next message, parsed into the typed union (paths bounded, lengths checked). */
  async receive(timeoutMs = this.timeoutMs): Promise<DeviceDlMessage> {
    return this.connection.receiveAs((frame, limits) => {
      this.moveFrames.arrived();
      return parseDeviceDlFrame(frame, limits, (f) => this.moveFrames.keep(f));
    }, timeoutMs);
  }

  async sendProcessMessage(message: PlistDict): Promise<void> {
    await this.send(dlProcessMessage(message));
  }

  /** The next message, which must be a ProcessMessage; a device Disconnect is reported as CLOSED. */
  async receiveProcessMessage(timeoutMs = this.timeoutMs): Promise<PlistDict> {
    const msg = await this.receive(timeoutMs);
    if (msg.type === 'ProcessMessage') return msg.message;
    if (msg.type === 'Disconnect') {
      throw new MooringError(
        'CLOSED',
        `the device ended the Device Link connection${msg.reason ? `: ${msg.reason}` : ''}`,
      );
    }
    throw new MooringError('PROTOCOL', `expected DLMessageProcessMessage, got ${describe(msg)}`);
  }

  /** `["DLMessageStatusResponse", code, text, payload]` (payload defaults to {}). */
  async sendStatusResponse(code: number, text?: string, payload?: PlistValue): Promise<void> {
    await this.send(dlStatusResponse(code, text, payload));
  }

  /** Sends DLMessageDisconnect (best effort) and closes the connection. */
  async disconnect(reason?: string): Promise<void> {
    if (this.disconnected) return;
    this.disconnected = true;
    try {
      await this.send(dlDisconnect(reason));
    } catch {
      // The device may already be gone; closing is all that is left.
    } finally {
      this.connection.close();
    }
  }
}

function describe(m: DeviceDlMessage): string {
  return m.type === 'Unknown' ? m.name : `DL ${m.type}`;
}
