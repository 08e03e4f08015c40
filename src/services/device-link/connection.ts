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

/** Frames up to this size are read into the connection's one buffer. */
const FRAME_BUFFER_MAX_BYTES = 4 << 20;

/**
 * The buffer each frame is read into, one per connection and reused (D51, D52). A message decoded
 * whole keeps nothing of it (a plist's data are copies); a MoveItems frame's moves are read from
 * it until the next frame comes. A frame joined from the chunks it came in was ~800 KB of memory
 * outside the heap per 5,000 moves, which only a collection gave back, and the job thread's heap
 * grows too slowly in the Move phase for its young collections to come first. A frame larger
 * than FRAME_BUFFER_MAX_BYTES (a device's are ~1 MB) is read into one of its own.
 */
class FrameBuffer {
  private buf = Buffer.alloc(0);
  private frames = 0;

  /** Where the next frame, of `length` bytes, is read: a frame kept before is overwritten then. */
  room(length: number): Buffer | undefined {
    this.frames++;
    if (length > FRAME_BUFFER_MAX_BYTES) return undefined;
    // Its own memory (not the pool's): keep tells its frames by it.
    if (this.buf.length < length) this.buf = Buffer.allocUnsafeSlow(length + (length >> 2));
    return this.buf;
  }

  keep(frame: Buffer): KeptFrame {
    if (frame.buffer !== this.buf.buffer) return { buf: frame, current: () => true }; // its own
    const at = this.frames;
    return { buf: frame, current: () => this.frames === at };
  }
}

export class DeviceLinkConnection {
  private readonly timeoutMs: number;
  private readonly frames = new FrameBuffer();
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
    return this.connection.receiveAs(
      (frame, limits) => parseDeviceDlFrame(frame, limits, (f) => this.frames.keep(f)),
      timeoutMs,
      (length) => this.frames.room(length),
    );
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
