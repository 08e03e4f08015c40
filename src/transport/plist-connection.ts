/**
 * A "property list service" connection: frames of `[u32 BE length][plist]` over a byte stream,
 * with TLS switched on (and, best effort, off again) in the middle of the conversation, as
 * lockdownd's StartSession/StopSession and `EnableServiceSSL` services require.
 *
 * TLS runs over a small pass-through Duplex (`SocketTap`) instead of handing the raw socket to
 * node:tls, so that TLS can later be detached again and the raw socket keeps going in plaintext.
 * Each reply is read exactly once from exactly one reader: the plaintext reader is detached
 * before TLS starts and its unread bytes are replayed into TLS (no double delivery).
 */
import { Duplex, PassThrough, type Readable } from 'node:stream';
import net from 'node:net';
import tls from 'node:tls';
import { MooringError } from '../util/errors';
import { DEFAULT_READ_TIMEOUT_MS, StreamReader } from '../util/stream-reader';
import { readWithin } from '../util/read-within';
import {
  decodePlist,
  encodeBinaryPlist,
  encodeXmlPlist,
  isPlistDict,
  type PlistDict,
  type PlistLimits,
  type PlistValue,
} from '../protocol/plist';

/** Largest plist frame accepted from a peer (lockdownd replies and DeviceLink messages are far smaller). */
export const MAX_PLIST_FRAME_BYTES = 32 * 1024 * 1024;
/** Frames up to this size are copied into one buffer with their header and written at once. */
const COALESCE_LIMIT = 256 * 1024;
/** How long `downgradeFromTls` waits for the peer's close_notify before carrying on regardless. */
export const TLS_SHUTDOWN_GRACE_MS = 2_000;

/**
 * Device certificates have empty subject/issuer names and old devices use SHA-1: OpenSSL's
 * security level 0 accepts them, as libimobiledevice and pymobiledevice3 configure.
 */
const TLS_CIPHERS = 'ALL:@SECLEVEL=0';
const TLS_MIN_VERSION = 'TLSv1.2';

export type PlistFormat = 'xml' | 'binary';

export interface PlistConnectionOptions {
  /** Frames longer than this are refused with FRAME_TOO_LARGE before their body is read. */
  maxFrameBytes?: number;
  /** Deadline for each read (and for the TLS handshake). */
  readTimeoutMs?: number;
  /** Format used by `send` when none is given (default XML, like lockdownd clients). */
  format?: PlistFormat;
  /** Bounds applied when decoding received plists. */
  limits?: Partial<PlistLimits>;
}

export interface TlsClientOptions {
  cert: Buffer | string;
  key: Buffer | string;
}

export interface TlsServerOptions {
  cert: Buffer | string;
  key: Buffer | string;
  requestCert: true;
  /** Decides on the client's certificate (DER; empty when none was sent) after the handshake. */
  verifyClient?: (peerCertDer: Buffer) => boolean;
}

/** Largest TLS record: 2^14 bytes of payload plus the 2048 bytes of expansion RFC 5246 allows. */
const MAX_TLS_RECORD = 5 + 16_384 + 2_048;
/** While shutting TLS down, stop reading the raw socket once this much is held back. */
const MAX_HELD_BYTES = 1 << 20;

/**
 * Length of the TLS record at the start of `b`: its total size once the 5-byte header is
 * complete, 0 if more bytes are needed to tell, -1 if these bytes cannot be a TLS record
 * (i.e. the peer is talking plaintext).
 */
function tlsRecordLength(b: Buffer): number {
  if (b.length === 0) return 0;
  if (b[0]! < 20 || b[0]! > 24) return -1; // content types change_cipher_spec … heartbeat
  if (b.length < 2) return 0;
  if (b[1] !== 3) return -1; // protocol major version
  if (b.length < 5) return 0;
  const total = 5 + b.readUInt16BE(3);
  return total > MAX_TLS_RECORD ? -1 : total;
}

/**
 * Pass-through Duplex over the raw socket, given to node:tls as its transport. It never ends the
 * raw socket (TLS shutdown must leave it open for plaintext) and can be unplugged.
 *
 * During shutdown it forwards whole TLS records one at a time and stops at the peer's
 * close_notify (or at the first bytes that are not TLS), so plaintext the peer sends right
 * behind its close_notify — in the same TCP segment, as libimobiledevice may — is kept for the
 * plaintext reader instead of being swallowed by TLS.
 */
class SocketTap extends Duplex {
  private unplugged = false;
  private gated = false;
  private held: Buffer = Buffer.alloc(0);
  private pumping = false;
  private rawEnded = false;
  /** Set by the owner once TLS has seen the peer's close_notify. */
  tlsEnded = false;

  private readonly onData = (chunk: Buffer): void => {
    if (this.gated) {
      this.held = this.held.length === 0 ? chunk : Buffer.concat([this.held, chunk]);
      if (this.held.length > MAX_HELD_BYTES) this.raw.pause();
      this.pump();
    } else if (!this.push(chunk)) {
      this.raw.pause();
    }
  };
  private readonly onEnd = (): void => {
    this.rawEnded = true;
    if (this.gated) this.pump();
    else this.push(null);
  };
  private readonly onClose = (): void => {
    this.destroy();
  };
  private readonly onError = (err: Error): void => {
    this.destroy(err);
  };

  constructor(
    private readonly raw: Duplex,
    leftover: Buffer,
  ) {
    super({ allowHalfOpen: true });
    if (leftover.length > 0) this.push(leftover);
    raw.on('data', this.onData);
    raw.on('end', this.onEnd);
    raw.on('close', this.onClose);
    raw.on('error', this.onError);
    if (raw.readableEnded) this.onEnd();
    if (raw.destroyed) process.nextTick(this.onClose);
  }

  override _read(): void {
    if (!this.unplugged) this.raw.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.unplugged) {
      cb();
      return;
    }
    this.raw.write(chunk, (err) => cb(err));
  }

  override _final(cb: (err?: Error | null) => void): void {
    cb(); // TLS shutdown: close_notify was written; the raw socket stays open.
  }

  override _destroy(err: Error | null, cb: (err: Error | null) => void): void {
    this.unplug();
    cb(err);
  }

  /** From now on, forward record by record (see the class comment). */
  beginShutdown(): void {
    this.gated = true;
  }

  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    void (async () => {
      try {
        while (!this.unplugged && !this.tlsEnded) {
          const len = tlsRecordLength(this.held);
          if (len < 0) {
            this.emit('plaintext');
            return;
          }
          if (len === 0 || this.held.length < len) {
            if (this.rawEnded) this.push(null);
            return;
          }
          this.push(this.held.subarray(0, len));
          this.held = this.held.subarray(len);
          // Let TLS digest the record (and report close_notify) before deciding on the next bytes.
          await new Promise((r) => setImmediate(r));
        }
      } finally {
        this.pumping = false;
      }
    })();
  }

  /** Stops forwarding in both directions; returns bytes held back. The raw socket is left paused. */
  unplug(): Buffer {
    const rest = this.held;
    this.held = Buffer.alloc(0);
    if (this.unplugged) return rest;
    this.unplugged = true;
    this.raw.off('data', this.onData);
    this.raw.off('end', this.onEnd);
    this.raw.off('close', this.onClose);
    this.raw.off('error', this.onError);
    this.raw.pause();
    return rest;
  }
}

export class PlistConnection {
  private readonly raw: Duplex;
  private current: Duplex;
  private currentReader: StreamReader;
  private tap: SocketTap | undefined;
  /** TLS runs natively on the raw socket (see upgradeToTlsClient); no way back to plaintext. */
  private direct = false;
  private readonly maxFrameBytes: number;
  private readonly readTimeoutMs: number;
  private readonly format: PlistFormat;
  private readonly limits: Partial<PlistLimits> | undefined;
  private drainWait: { stream: Duplex; promise: Promise<void> } | undefined;
  /** Receives run one at a time (StreamReader serves a single waiter). */
  private receiving: Promise<unknown> = Promise.resolve();

  constructor(stream: Duplex, opts: PlistConnectionOptions = {}) {
    this.raw = stream;
    // Errors reach callers through the reader and write callbacks; this listener only keeps a late
    // error (e.g. ECONNRESET while no reader is attached during a TLS switch) from crashing the process.
    stream.on('error', ignoreError);
    this.current = stream;
    this.currentReader = new StreamReader(stream);
    this.maxFrameBytes = opts.maxFrameBytes ?? MAX_PLIST_FRAME_BYTES;
    this.readTimeoutMs = opts.readTimeoutMs ?? DEFAULT_READ_TIMEOUT_MS;
    this.format = opts.format ?? 'xml';
    this.limits = opts.limits;
  }

  /** The stream currently carrying the conversation (the TLS socket while TLS is on). */
  get stream(): Duplex {
    return this.current;
  }

  /** Raw reads (e.g. DeviceLink file streams), through TLS when it is on. */
  get reader(): StreamReader {
    return this.currentReader;
  }

  /** True while TLS is on. */
  get secure(): boolean {
    return this.tap !== undefined || this.direct;
  }

  async send(v: PlistValue, format: PlistFormat = this.format): Promise<void> {
    const body = format === 'binary' ? encodeBinaryPlist(v) : encodeXmlPlist(v);
    if (body.length > 0xffff_ffff) {
      throw new MooringError('LIMIT', `a ${body.length}-byte plist does not fit a frame`);
    }
    const header = Buffer.allocUnsafe(4);
    header.writeUInt32BE(body.length, 0);
    // One write for small frames: two tiny writes would meet Nagle + delayed ACK (40 ms stalls).
    await this.writeChunks(
      body.length <= COALESCE_LIMIT ? [Buffer.concat([header, body])] : [header, body],
    );
  }

  receive(timeoutMs = this.readTimeoutMs): Promise<PlistValue> {
    return this.receiveAs(decodePlist, timeoutMs);
  }

  /**
   * The next frame's body as `decode` reads it, with this connection's bounds: for a caller that
   * reads some frames in place (device-link/frame.ts). `decode` runs before the next frame is read.
   * `room`, given the body's length, may give a buffer to read it into (its own, reused): when it
   * holds that many bytes, the body is a view of its start.
   */
  receiveAs<T>(
    decode: (body: Buffer, limits: Partial<PlistLimits> | undefined) => T,
    timeoutMs = this.readTimeoutMs,
    room?: (length: number) => Buffer | undefined,
  ): Promise<T> {
    const next = this.receiving.then(async () =>
      decode(await this.receiveFrame(timeoutMs, room), this.limits),
    );
    this.receiving = next.catch(() => undefined);
    return next;
  }

  async receiveDict(timeoutMs = this.readTimeoutMs): Promise<PlistDict> {
    const v = await this.receive(timeoutMs);
    if (!isPlistDict(v)) {
      throw new MooringError('MALFORMED', `expected a dictionary message, got ${describe(v)}`);
    }
    return v;
  }

  /** Why the stream was abandoned mid-frame; bytes still buffered must never be parsed as frames. */
  private outOfStep: string | undefined;

  private giveUp(why: string): void {
    this.outOfStep = why;
    this.close();
  }

  private async receiveFrame(
    timeoutMs: number,
    room?: (length: number) => Buffer | undefined,
  ): Promise<Buffer> {
    if (this.outOfStep !== undefined) {
      throw new MooringError('CLOSED', `connection was given up earlier: ${this.outOfStep}`);
    }
    const header = await this.currentReader.read(4, timeoutMs, 'plist frame length');
    const length = header.readUInt32BE(0);
    if (length > this.maxFrameBytes) {
      // The stream cannot be resynchronised without reading the body: give the connection up.
      this.giveUp('an oversized frame');
      throw new MooringError(
        'FRAME_TOO_LARGE',
        `peer announced a ${length}-byte plist frame (limit ${this.maxFrameBytes})`,
        { detail: length },
      );
    }
    if (length === 0) throw new MooringError('MALFORMED', 'peer sent an empty plist frame');
    let body: Buffer;
    try {
      // H7h: the whole body within the deadline (a trickling peer must not hold us forever).
      const into = room?.(length);
      body = await readWithin(this.currentReader, length, timeoutMs, 'plist frame body', into);
    } catch (e) {
      // Half a frame was consumed: the next read would start mid-body, so nothing can follow.
      this.giveUp('a frame body did not arrive in time');
      throw e;
    }
    return body;
  }

  /** Writes raw bytes (through TLS when on); resolves once the stream accepts more (backpressure). */
  writeRaw(buf: Buffer): Promise<void> {
    return this.writeChunks([buf]);
  }

  private async writeChunks(chunks: Buffer[]): Promise<void> {
    const s = this.current;
    if (s.destroyed || s.writableEnded) {
      throw new MooringError('CLOSED', 'cannot write: the connection is closed');
    }
    let ok = true;
    s.cork(); // header and body leave together
    for (const c of chunks) if (c.length > 0) ok = s.write(c);
    s.uncork();
    if (!ok) await this.whenDrained(s);
  }

  /** One shared wait per stream, so many concurrent writers do not each add listeners. */
  private whenDrained(s: Duplex): Promise<void> {
    if (this.drainWait?.stream === s) return this.drainWait.promise;
    const promise = new Promise<void>((resolve, reject) => {
      const finish = (err?: Error): void => {
        s.off('drain', onDrain);
        s.off('close', onClose);
        s.off('error', onError);
        if (this.drainWait?.stream === s) this.drainWait = undefined;
        if (err) reject(new MooringError('CLOSED', `write failed: ${err.message}`, { cause: err }));
        else resolve();
      };
      const onDrain = (): void => finish();
      const onClose = (): void => finish(new Error('connection closed'));
      const onError = (err: Error): void => finish(err);
      s.on('drain', onDrain);
      s.on('close', onClose);
      s.on('error', onError);
    });
    this.drainWait = { stream: s, promise };
    return promise;
  }

  /**
   * Host side: starts TLS as the client. The device's certificate is not verified (no host does).
   * `downgradable: false` (service connections, which never leave TLS): TLS runs directly on the
   * socket when it is a plain net.Socket with nothing read ahead, so OpenSSL reads and writes the
   * socket itself instead of every record passing through the tap's JavaScript streams.
   */
  async upgradeToTlsClient(
    opts: TlsClientOptions,
    mode: { downgradable?: boolean } = {},
  ): Promise<void> {
    const direct =
      mode.downgradable === false && this.raw instanceof net.Socket
        ? this.directTlsTransport()
        : undefined;
    const tap = direct ? undefined : this.plugTap();
    const socket = tls.connect({
      socket: direct ?? tap,
      cert: opts.cert,
      key: opts.key,
      rejectUnauthorized: false,
      minVersion: TLS_MIN_VERSION,
      ciphers: TLS_CIPHERS,
    });
    await this.handshake(socket, 'secureConnect');
    this.adopt(socket, tap);
  }

  /** Device side: starts TLS as the server, requesting (not requiring) a client certificate. */
  async upgradeToTlsServer(opts: TlsServerOptions): Promise<void> {
    const tap = this.plugTap();
    const socket = new tls.TLSSocket(tap, {
      isServer: true,
      secureContext: tls.createSecureContext({
        cert: opts.cert,
        key: opts.key,
        minVersion: TLS_MIN_VERSION,
        ciphers: TLS_CIPHERS,
      }),
      requestCert: opts.requestCert,
      rejectUnauthorized: false,
    });
    await this.handshake(socket, 'secure');
    if (opts.verifyClient) {
      const peer = socket.getPeerCertificate(true) as tls.PeerCertificate | Record<string, never>;
      const der = 'raw' in peer && Buffer.isBuffer(peer.raw) ? peer.raw : Buffer.alloc(0);
      let accepted = false;
      let failure: unknown;
      try {
        accepted = opts.verifyClient(der) === true;
      } catch (e) {
        failure = e;
      }
      if (!accepted) {
        socket.destroy();
        tap.destroy();
        this.raw.destroy();
        throw new MooringError(
          'TLS',
          failure === undefined
            ? 'client certificate rejected'
            : `client certificate check failed: ${failure instanceof Error ? failure.message : String(failure)}`,
          { cause: failure },
        );
      }
    }
    this.adopt(socket, tap);
  }

  /**
   * Ends TLS and continues in plaintext on the raw stream (after StopSession). Sends close_notify
   * and waits (at most `graceMs`) for the peer's close_notify or its first plaintext bytes; bytes
   * behind the peer's close_notify are kept for the next plaintext read. Best effort: a peer that
   * keeps talking TLS will be misread as plaintext, which the next receive reports as MALFORMED.
   */
  async downgradeFromTls(graceMs = TLS_SHUTDOWN_GRACE_MS): Promise<void> {
    const tap = this.tap;
    const socket = this.current;
    if (this.direct) {
      throw new MooringError(
        'PROTOCOL',
        'this connection was upgraded for good (not downgradable)',
      );
    }
    if (tap === undefined) return;
    this.currentReader.detach(); // unread application data from before StopSession is dropped
    tap.beginShutdown();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(finish, graceMs);
      function finish(): void {
        clearTimeout(timer);
        socket.off('end', onEnd);
        socket.off('close', finish);
        socket.off('error', finish);
        tap!.off('plaintext', finish);
        resolve();
      }
      function onEnd(): void {
        tap!.tlsEnded = true;
        finish();
      }
      socket.on('end', onEnd);
      socket.on('close', finish);
      socket.on('error', finish);
      tap.on('plaintext', finish);
      socket.end(); // our close_notify
      socket.resume(); // let the peer's close_notify be read
    });
    const leftover = tap.unplug();
    socket.destroy();
    this.tap = undefined;
    this.current = this.raw;
    this.currentReader = new StreamReader(this.plaintextSource(leftover));
  }

  /**
   * The readable side for plaintext after TLS: the raw stream with held-back bytes put in front,
   * or, when the raw stream already ended (its 'end' will not fire again), a finished copy.
   */
  private plaintextSource(leftover: Buffer): Readable {
    const raw = this.raw;
    if (raw.readableEnded || raw.destroyed) {
      const done = new PassThrough();
      done.end(leftover);
      return done;
    }
    if (leftover.length > 0) raw.unshift(leftover);
    return raw;
  }

  /** Closes the connection (and TLS, if on) immediately. */
  close(): void {
    this.current.destroy();
    this.tap?.destroy();
    this.raw.destroy();
  }

  /**
   * The raw socket, plaintext reader detached, when TLS can take it over natively: nothing was
   * read ahead (the peer waits for our ClientHello), else undefined and the tap is used.
   */
  private directTlsTransport(): net.Socket | undefined {
    if (this.secure) throw new MooringError('PROTOCOL', 'TLS is already on');
    const raw = this.raw as net.Socket;
    if (raw.destroyed || raw.readableLength > 0 || this.currentReader.available > 0)
      return undefined;
    this.currentReader.detach();
    return raw;
  }

  /** Detaches the plaintext reader and builds the tap, replaying unread bytes first. */
  private plugTap(): SocketTap {
    if (this.secure) throw new MooringError('PROTOCOL', 'TLS is already on');
    const leftover = this.currentReader.detach();
    const tap = new SocketTap(this.raw, leftover);
    tap.on('error', ignoreError); // surfaces through the TLS socket
    return tap;
  }

  /** `tap` undefined: TLS runs directly on the raw socket and cannot be switched off. */
  private adopt(socket: tls.TLSSocket, tap: SocketTap | undefined): void {
    socket.on('error', ignoreError);
    this.tap = tap;
    this.direct = tap === undefined;
    this.current = socket;
    this.currentReader = new StreamReader(socket);
  }

  private handshake(socket: tls.TLSSocket, event: 'secure' | 'secureConnect'): Promise<void> {
    const timeoutMs = this.readTimeoutMs;
    return new Promise((resolve, reject) => {
      const cleanup = (): void => {
        clearTimeout(timer);
        socket.off(event, onSecure);
        socket.off('error', onError);
        socket.off('close', onClose);
      };
      const fail = (err: MooringError): void => {
        cleanup();
        socket.destroy();
        this.raw.destroy();
        reject(err);
      };
      const timer = setTimeout(
        () =>
          fail(new MooringError('TIMEOUT', `TLS handshake did not finish within ${timeoutMs} ms`)),
        timeoutMs,
      );
      const onSecure = (): void => {
        cleanup();
        resolve();
      };
      const onError = (err: Error): void =>
        fail(new MooringError('TLS', `TLS handshake failed: ${err.message}`, { cause: err }));
      const onClose = (): void =>
        fail(new MooringError('TLS', 'connection closed during the TLS handshake'));
      socket.once(event, onSecure);
      socket.on('error', onError);
      socket.once('close', onClose);
    });
  }
}

function ignoreError(): void {}

function describe(v: PlistValue): string {
  if (Array.isArray(v)) return 'an array';
  if (Buffer.isBuffer(v)) return 'data';
  if (v instanceof Date) return 'a date';
  return typeof v === 'object' ? 'a non-dictionary object' : `a ${typeof v}`;
}
