/**
 * What every `mooring` command needs: where usbmuxd is, where our own files live, and how to
 * reach one device over USB or Wi-Fi with its pair record. USB and Wi-Fi differ only in the
 * endpoint; everything after it is the same code path.
 */
import net from 'node:net';
import { MooringError, isMooringError } from '../util/errors';
import {
  parseUsbmuxdAddress,
  resolveUsbmuxdAddress,
  type UsbmuxdAddress,
} from '../transport/usbmuxd-address';
import { UsbmuxdClient, type MuxDevice } from '../transport/usbmuxd-client';
import {
  TcpEndpoint,
  UsbmuxEndpoint,
  findPairRecord,
  type DeviceEndpoint,
  type FoundPairRecord,
} from '../lockdown';
import { LOCKDOWN_PORT } from '../lockdown/constants';
import { pairRecordStoreDir } from '../util/paths';

export type Via = 'usb' | 'wifi' | 'auto';

export interface CliContext {
  dataDir: string;
  usbmuxdAddress: UsbmuxdAddress;
  /** Wi-Fi address of a device, `host` or `host:port`, when discovery is not in play. */
  wifiHost?: string;
  out: (line: string) => void;
  err: (line: string) => void;
}

export function makeContext(
  dataDir: string,
  usbmuxd: string | undefined,
  out: (line: string) => void,
  err: (line: string) => void,
): CliContext {
  let usbmuxdAddress = resolveUsbmuxdAddress();
  if (usbmuxd !== undefined) {
    const parsed = parseUsbmuxdAddress(usbmuxd);
    if (!parsed) {
      throw new MooringError(
        'USAGE',
        `--usbmuxd: "${usbmuxd}" is not UNIX:/path, /path, host:port or [v6]:port`,
      );
    }
    usbmuxdAddress = parsed;
  }
  return { dataDir, usbmuxdAddress, out, err };
}

export function usbmuxd(ctx: CliContext): UsbmuxdClient {
  return new UsbmuxdClient({ address: ctx.usbmuxdAddress });
}

/** Splits `host`, `host:port` or `[v6]:port`; the port defaults to lockdownd's. */
export function parseHostPort(value: string): { host: string; port: number } {
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(value);
  let host = value;
  let port: string | undefined;
  if (bracketed) {
    host = bracketed[1]!;
    port = bracketed[2];
  } else if (net.isIPv6(value)) {
    host = value;
  } else {
    const i = value.lastIndexOf(':');
    if (i >= 0) {
      host = value.slice(0, i);
      port = value.slice(i + 1);
    }
  }
  const n = port === undefined ? LOCKDOWN_PORT : Number(port);
  if (host === '' || !Number.isInteger(n) || n < 1 || n > 65535 || (port && !/^\d+$/.test(port))) {
    throw new MooringError('USAGE', `--host: "${value}" is not host, host:port or [v6]:port`);
  }
  return { host, port: n };
}

async function listMuxDevices(ctx: CliContext, required: boolean): Promise<MuxDevice[]> {
  try {
    return await usbmuxd(ctx).listDevices();
  } catch (e) {
    if (required || !isMooringError(e, 'USBMUXD')) throw e;
    return [];
  }
}

function describe(devices: MuxDevice[]): string {
  return devices.map((d) => `${d.udid} (${d.connectionType})`).join(', ');
}

/** Picks the device a command acts on and how to reach it. */
export async function resolveEndpoint(
  ctx: CliContext,
  udid: string | undefined,
  via: Via,
): Promise<DeviceEndpoint> {
  const devices = await listMuxDevices(ctx, via === 'usb' || ctx.wifiHost === undefined);
  const same = (d: MuxDevice): boolean =>
    udid === undefined || d.udid.replace(/-/g, '') === udid.replace(/-/g, '');
  const candidates = devices.filter(same);
  const usb = candidates.filter((d) => d.connectionType === 'USB');
  const network = candidates.filter((d) => d.connectionType === 'Network' && d.networkAddress);

  const pickOne = (list: MuxDevice[], what: string): MuxDevice | undefined => {
    if (list.length <= 1 || udid !== undefined) return list[0];
    throw new MooringError(
      'USAGE',
      `${list.length} devices are connected ${what}: pass --udid (one of ${describe(list)})`,
    );
  };

  if (via !== 'wifi') {
    const d = pickOne(usb, 'by USB');
    if (d) return new UsbmuxEndpoint(usbmuxd(ctx), d.deviceId, d.udid, 'usb');
    if (via === 'usb') {
      throw new MooringError(
        'USAGE',
        udid
          ? `device ${udid} is not connected by USB: connect it with a cable and unlock it`
          : 'no device is connected by USB: connect one with a cable and unlock it',
      );
    }
  }
  if (ctx.wifiHost !== undefined) {
    const target = udid ?? pickOne(candidates, '')?.udid;
    if (!target) throw new MooringError('USAGE', 'pass --udid to reach a device over Wi-Fi');
    const { host, port } = parseHostPort(ctx.wifiHost);
    return new TcpEndpoint({ udid: target, host, lockdownPort: port });
  }
  const d = pickOne(network, 'over Wi-Fi');
  if (d?.networkAddress) {
    // Like libimobiledevice: a Network device is reached by direct TCP, not through usbmuxd.
    return new TcpEndpoint({ udid: d.udid, host: d.networkAddress.address });
  }
  throw new MooringError(
    'USAGE',
    udid
      ? `device ${udid} is not reachable${via === 'wifi' ? ' over Wi-Fi' : ''}: connect it by USB, or pass --host ADDRESS for Wi-Fi`
      : 'no device found: connect one by USB (and unlock it), or pass --udid and --host for Wi-Fi',
  );
}

/** The pair record for a device, from usbmuxd, the OS lockdown folder, or our own store. */
export async function requirePairRecord(ctx: CliContext, udid: string): Promise<FoundPairRecord> {
  const found = await findPairRecord(udid, {
    usbmuxd: usbmuxd(ctx),
    storeDir: pairRecordStoreDir(ctx.dataDir),
  });
  if (!found) {
    throw new MooringError(
      'PAIRING',
      `this computer is not paired with ${udid}: connect it by USB, unlock it and run "mooring pair --udid ${udid}"`,
    );
  }
  return found;
}
