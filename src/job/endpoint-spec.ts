/**
 * A device endpoint as data, so a job on another thread can reach the device itself: a socket
 * cannot be handed to a worker thread, but where to connect can. Endpoints that are not one of
 * ours (the tests' in-memory pipes) have no spec and run their job in-process.
 */
import {
  TcpEndpoint,
  UsbmuxEndpoint,
  type DeviceEndpoint,
  type DeviceTransport,
} from '../lockdown';
import { UsbmuxdClient } from '../transport/usbmuxd-client';
import type { UsbmuxdAddress } from '../transport/usbmuxd-address';

export type EndpointSpec =
  | {
      kind: 'usbmux';
      udid: string;
      transport: DeviceTransport;
      deviceId: number;
      address: UsbmuxdAddress;
      timeoutMs: number;
    }
  | { kind: 'tcp'; udid: string; host: string; lockdownPort: number; connectTimeoutMs: number };

export function describeEndpoint(e: DeviceEndpoint): EndpointSpec | undefined {
  if (e instanceof UsbmuxEndpoint && e.mux instanceof UsbmuxdClient) {
    return {
      kind: 'usbmux',
      udid: e.udid,
      transport: e.transport,
      deviceId: e.deviceId,
      address: e.mux.address,
      timeoutMs: e.mux.timeoutMs,
    };
  }
  if (e instanceof TcpEndpoint) {
    return {
      kind: 'tcp',
      udid: e.udid,
      host: e.host,
      lockdownPort: e.lockdownPort,
      connectTimeoutMs: e.connectTimeoutMs,
    };
  }
  return undefined;
}

export function endpointFromSpec(s: EndpointSpec): DeviceEndpoint {
  if (s.kind === 'tcp') {
    return new TcpEndpoint({
      udid: s.udid,
      host: s.host,
      lockdownPort: s.lockdownPort,
      connectTimeoutMs: s.connectTimeoutMs,
    });
  }
  const mux = new UsbmuxdClient({ address: s.address, timeoutMs: s.timeoutMs });
  return new UsbmuxEndpoint(mux, s.deviceId, s.udid, s.transport);
}
