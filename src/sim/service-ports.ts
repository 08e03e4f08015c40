/**
 * The device's TCP port space. A real iPhone listens on 62078 (lockdownd) and opens a fresh port
 * for every StartService; usbmuxd's Connect reaches those ports over USB, and over Wi-Fi hosts
 * dial them directly. Here a "USB" connection is an in-memory socket pair handed to the port's
 * acceptor, and a Wi-Fi connection is a real TCP socket accepted on the Wi-Fi host address.
 */
import net from 'node:net';
import tls from 'node:tls';
import { Duplex } from 'node:stream';
import { MooringError } from '../util/errors';

export const LOCKDOWN_PORT = 62078;
/** A service port that nobody connects to within this time is closed again (as lockdownd does). */
export const SERVICE_ACCEPT_TIMEOUT_MS = 30_000;
/** Bound on the TLS handshake of a service connection. */
export const TLS_HANDSHAKE_TIMEOUT_MS = 10_000;
/** Virtual (USB-only) service ports are handed out from the dynamic range. */
const FIRST_VIRTUAL_PORT = 49152;
const LAST_VIRTUAL_PORT = 65535;

export type Transport = 'usb' | 'wifi';
export type Acceptor = (stream: Duplex, transport: Transport) => void;

/**
 * One end of an in-memory, socket-like pair: what one side writes the other reads, `end()`
 * reaches the other side as end-of-stream and `destroy()` tears down both ends (like a reset).
 */
class PairEnd extends Duplex {
  peer!: PairEnd;
  /** Our write waiting for the peer's reader to drain (backpressure). */
  private blockedWrite: (() => void) | undefined;

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.peer.destroyed) {
      cb(); // the peer is gone: bytes are lost, as on a reset socket
      return;
    }
    if (this.peer.push(chunk)) cb();
    else this.blockedWrite = cb;
  }

  override _read(): void {
    this.peer.releaseWrite();
  }

  releaseWrite(): void {
    const cb = this.blockedWrite;
    this.blockedWrite = undefined;
    cb?.();
  }

  override _final(cb: (err?: Error | null) => void): void {
    if (!this.peer.destroyed) this.peer.push(null);
    cb();
  }

  override _destroy(err: Error | null, cb: (err: Error | null) => void): void {
    this.releaseWrite();
    if (!this.peer.destroyed) this.peer.destroy();
    cb(err);
  }
}

/** Two connected in-memory stream ends. */
export function socketPair(): [Duplex, Duplex] {
  const a = new PairEnd();
  const b = new PairEnd();
  a.peer = b;
  b.peer = a;
  return [a, b];
}

/** What a service's TLS needs: the certificate the host minted for us, our key, and who may connect. */
export interface TlsServerMaterial {
  certPem: string | Buffer;
  keyPem: string | Buffer;
  /** Accepts the client's certificate (DER): the pairing's HostCertificate or RootCertificate. */
  acceptClient: (der: Buffer) => boolean;
}

/** TLS options both sides of the simulator use: TLS 1.2+, permissive ciphers (lockdownd's peers are old). */
export function tlsServerOptions(m: TlsServerMaterial): tls.TLSSocketOptions {
  return {
    isServer: true,
    cert: m.certPem,
    key: m.keyPem,
    requestCert: true,
    rejectUnauthorized: false,
    minVersion: 'TLSv1.2',
    ciphers: 'ALL:@SECLEVEL=0',
  };
}

/** Runs the server side of a TLS handshake on `raw` and checks the client's certificate. */
export function acceptTls(raw: Duplex, m: TlsServerMaterial): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const sock = new tls.TLSSocket(raw, tlsServerOptions(m));
    const timer = setTimeout(() => {
      fail(
        new MooringError(
          'TIMEOUT',
          `TLS handshake not finished within ${TLS_HANDSHAKE_TIMEOUT_MS} ms`,
        ),
      );
    }, TLS_HANDSHAKE_TIMEOUT_MS);
    const fail = (err: Error): void => {
      clearTimeout(timer);
      sock.destroy();
      raw.destroy();
      reject(
        err instanceof MooringError
          ? err
          : new MooringError('TLS', `TLS handshake failed: ${err.message}`, { cause: err }),
      );
    };
    sock.once('error', fail);
    sock.once('close', () =>
      fail(new MooringError('CLOSED', 'connection closed during the TLS handshake')),
    );
    sock.once('secure', () => {
      clearTimeout(timer);
      sock.off('error', fail);
      sock.removeAllListeners('close');
      const peer = sock.getPeerCertificate();
      const der = peer && 'raw' in peer ? peer.raw : undefined;
      if (!der || !m.acceptClient(der)) {
        sock.destroy();
        raw.destroy();
        reject(
          new MooringError('TLS', 'client presented no certificate, or one from no known pairing'),
        );
        return;
      }
      resolve(sock);
    });
  });
}

interface OpenPort {
  acceptor: Acceptor;
  server?: net.Server;
  timer?: NodeJS.Timeout;
  oneShot: boolean;
}

/**
 * Logical port → acceptor. `connectUsb` is what usbmuxd's Connect calls; `openServicePort`
 * allocates a fresh port for one service connection (one-shot, like lockdownd's).
 */
export class PortTable {
  private readonly ports = new Map<number, OpenPort>();
  private nextVirtual = FIRST_VIRTUAL_PORT;

  /** Registers a long-lived acceptor (lockdownd on 62078). */
  listen(port: number, acceptor: Acceptor): void {
    this.ports.set(port, { acceptor, oneShot: false });
  }

  unlisten(port: number): void {
    this.closePort(port);
  }

  /** usbmuxd Connect: the host's side of a fresh connection, or undefined (connection refused). */
  connectUsb(port: number): Duplex | undefined {
    const take = this.claimUsb(port);
    if (!take) return undefined;
    const [hostSide, deviceSide] = socketPair();
    take(deviceSide);
    return hostSide;
  }

  /**
   * usbmuxd Connect without a relay: claims `port` (a one-shot port closes) and returns what hands
   * the connection's device-side stream to its acceptor, or undefined (connection refused).
   */
  claimUsb(port: number): ((stream: Duplex) => void) | undefined {
    const entry = this.ports.get(port);
    if (!entry) return undefined;
    if (entry.oneShot) this.closePort(port);
    return (stream) => entry.acceptor(stream, 'usb');
  }

  /**
   * Opens a fresh one-shot port. With `wifiHost`, the port is a real TCP listener there (so Wi-Fi
   * hosts can dial it) and the same number also works through usbmuxd; otherwise it is virtual.
   */
  async openServicePort(acceptor: Acceptor, wifiHost?: string): Promise<number> {
    const entry: OpenPort = { acceptor, oneShot: true };
    let port: number;
    if (wifiHost !== undefined) {
      port = await this.listenTcpOnce(entry, wifiHost);
    } else {
      port = this.allocateVirtual();
    }
    this.ports.set(port, entry);
    entry.timer = setTimeout(() => this.closePort(port), SERVICE_ACCEPT_TIMEOUT_MS);
    entry.timer.unref();
    return port;
  }

  /** Closes every service port (reboot). Long-lived acceptors stay. */
  closeServicePorts(): void {
    for (const [port, e] of [...this.ports]) if (e.oneShot) this.closePort(port);
  }

  closeAll(): void {
    for (const port of [...this.ports.keys()]) this.closePort(port);
  }

  get openPorts(): number[] {
    return [...this.ports.keys()];
  }

  private closePort(port: number): void {
    const e = this.ports.get(port);
    if (!e) return;
    this.ports.delete(port);
    if (e.timer) clearTimeout(e.timer);
    e.server?.close();
  }

  private allocateVirtual(): number {
    for (let i = 0; i <= LAST_VIRTUAL_PORT - FIRST_VIRTUAL_PORT; i++) {
      const p = this.nextVirtual;
      this.nextVirtual = p >= LAST_VIRTUAL_PORT ? FIRST_VIRTUAL_PORT : p + 1;
      if (!this.ports.has(p) && p !== LOCKDOWN_PORT) return p;
    }
    throw new MooringError('LIMIT', 'no free service port left');
  }

  private async listenTcpOnce(entry: OpenPort, host: string): Promise<number> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const server = net.createServer();
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, host, () => {
          server.off('error', reject);
          resolve();
        });
      });
      const port = (server.address() as net.AddressInfo).port;
      if (this.ports.has(port)) {
        server.close(); // collides with a virtual port: pick another
        continue;
      }
      server.on('error', () => this.closePort(port));
      server.once('connection', (sock) => {
        // No Nagle: a service's small writes (a TLS record's tail, a DL message) would wait for the
        // host's ACK, and over Wi-Fi the simulator, not the host, became what the bench measured
        // (50,000 files: the raw sink's session 2.7 s, 1.4–1.6 s without; thirty-second pass).
        sock.setNoDelay(true);
        this.closePort(port);
        entry.acceptor(sock, 'wifi');
      });
      entry.server = server;
      return port;
    }
    throw new MooringError('IO', `could not open a service port on ${host}`);
  }
}
