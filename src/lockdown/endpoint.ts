/**
 * How to reach a device's ports. USB (through usbmuxd) and Wi-Fi (direct TCP) differ only here,
 * so lockdown, sessions and every service share one code path (reference §8.5).
 */
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { MooringError } from '../util/errors';
import { LOCKDOWN_PORT } from './constants';

export type DeviceTransport = 'usb' | 'wifi';

export interface DeviceEndpoint {
  readonly udid: string;
  readonly transport: DeviceTransport;
  /** A raw byte pipe to `port` on the device (62078 = lockdownd). */
  connect(port: number): Promise<Duplex>;
}

/** What UsbmuxEndpoint needs from a usbmuxd client (UsbmuxdClient satisfies it). */
export interface MuxConnector {
  connect(deviceId: number, port: number): Promise<Duplex>;
}

/** A device behind usbmuxd: every port is reached with a usbmuxd Connect. */
export class UsbmuxEndpoint implements DeviceEndpoint {
  constructor(
    readonly mux: MuxConnector,
    readonly deviceId: number,
    readonly udid: string,
    /** usbmuxd also lists Wi-Fi devices (macOS, usbmuxd2) as connection type "Network". */
    readonly transport: DeviceTransport = 'usb',
  ) {}

  connect(port: number): Promise<Duplex> {
    return this.mux.connect(this.deviceId, port);
  }
}

/** Default deadline for a TCP connect to a device on the network. */
export const DEFAULT_TCP_CONNECT_TIMEOUT_MS = 10_000;

export interface TcpEndpointOptions {
  udid: string;
  /** The device's IP address (or host name). */
  host: string;
  /** Where lockdownd listens; 62078 on a real device, something else for a test simulator. */
  lockdownPort?: number;
  connectTimeoutMs?: number;
}

/** A device on the network: direct TCP to its address, lockdownd on 62078 (or lockdownPort). */
export class TcpEndpoint implements DeviceEndpoint {
  readonly transport = 'wifi' as const;
  readonly udid: string;
  readonly host: string;
  readonly lockdownPort: number;
  readonly connectTimeoutMs: number;

  constructor(opts: TcpEndpointOptions) {
    this.udid = opts.udid;
    this.host = opts.host;
    this.lockdownPort = opts.lockdownPort ?? LOCKDOWN_PORT;
    this.connectTimeoutMs = opts.connectTimeoutMs ?? DEFAULT_TCP_CONNECT_TIMEOUT_MS;
  }

  connect(port: number): Promise<Duplex> {
    const target = port === LOCKDOWN_PORT ? this.lockdownPort : port;
    if (!Number.isInteger(target) || target < 1 || target > 65535) {
      return Promise.reject(new MooringError('USAGE', `invalid device port ${target}`));
    }
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: this.host, port: target });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(
          new MooringError(
            'TIMEOUT',
            `no answer from the device at ${this.host}:${target} within ${this.connectTimeoutMs} ms`,
          ),
        );
      }, this.connectTimeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.off('error', onError);
        socket.setNoDelay(true);
        socket.setKeepAlive(true, 10_000);
        resolve(socket);
      });
      const onError = (err: Error): void => {
        clearTimeout(timer);
        reject(
          new MooringError(
            'CLOSED',
            `cannot reach the device at ${this.host}:${target} over the network: ${err.message}`,
            {
              cause: err,
            },
          ),
        );
      };
      socket.once('error', onError);
    });
  }
}
