/**
 * Where usbmuxd listens. Parsing follows libusbmuxd's `connect_usbmuxd_socket` so that a value
 * that works for libimobiledevice's tools works for us (reference §1.1), plus pymobiledevice3's
 * bare `/path`.
 */

export type UsbmuxdAddress =
  { kind: 'unix'; path: string } | { kind: 'tcp'; host: string; port: number };

/** The environment variable libusbmuxd, pymobiledevice3 and appium honour. */
export const USBMUXD_SOCKET_ADDRESS_ENV = 'USBMUXD_SOCKET_ADDRESS';

/** macOS and Linux: usbmuxd's UNIX socket. */
export const DEFAULT_USBMUXD_SOCKET_PATH = '/var/run/usbmuxd';
/** Windows: Apple Mobile Device Service. */
export const DEFAULT_USBMUXD_TCP = { host: '127.0.0.1', port: 27015 } as const;

export function defaultUsbmuxdAddress(
  platform: NodeJS.Platform = process.platform,
): UsbmuxdAddress {
  return platform === 'win32'
    ? { kind: 'tcp', host: DEFAULT_USBMUXD_TCP.host, port: DEFAULT_USBMUXD_TCP.port }
    : { kind: 'unix', path: DEFAULT_USBMUXD_SOCKET_PATH };
}

/**
 * One `USBMUXD_SOCKET_ADDRESS` value, or undefined when libusbmuxd would fall back to the default:
 * - `UNIX:<path>` (prefix case-sensitive, as in libusbmuxd; ignored on Windows, as there)
 * - `<host>:<port>`: port after the LAST ':', all of it a decimal 1..65535 (strtol rules)
 * - `[<ipv6>]:<port>`: brackets stripped
 * - `/path` (pymobiledevice3 style; a host name never starts with '/')
 */
export function parseUsbmuxdAddress(
  value: string,
  platform: NodeJS.Platform = process.platform,
): UsbmuxdAddress | undefined {
  if (value.startsWith('UNIX:')) {
    const path = value.slice(5);
    return platform === 'win32' || path === '' ? undefined : { kind: 'unix', path };
  }
  if (value.startsWith('/'))
    return platform === 'win32' ? undefined : { kind: 'unix', path: value };
  const colon = value.lastIndexOf(':');
  if (colon < 0) return undefined;
  const port = parseStrtolPort(value.slice(colon + 1));
  if (port === undefined) return undefined;
  let host = value.slice(0, colon);
  if (value.startsWith('[')) {
    host = host.slice(1);
    const close = host.lastIndexOf(']');
    if (close >= 0) host = host.slice(0, close);
  }
  return host === '' ? undefined : { kind: 'tcp', host, port };
}

/** libusbmuxd reads the port with strtol(…, 10) and demands it consumed the whole rest. */
function parseStrtolPort(text: string): number | undefined {
  const m = /^[ \t\n\v\f\r]*([+-]?)(\d+)$/.exec(text);
  if (!m) return undefined;
  const n = Number(m[2]) * (m[1] === '-' ? -1 : 1);
  return n > 0 && n < 65536 ? n : undefined;
}

/** The address to use: `USBMUXD_SOCKET_ADDRESS` if it parses, else the platform default. */
export function resolveUsbmuxdAddress(
  env: NodeJS.ProcessEnv = process.env,
  platform: NodeJS.Platform = process.platform,
): UsbmuxdAddress {
  const value = env[USBMUXD_SOCKET_ADDRESS_ENV];
  return (
    (value ? parseUsbmuxdAddress(value, platform) : undefined) ?? defaultUsbmuxdAddress(platform)
  );
}

/** The `USBMUXD_SOCKET_ADDRESS` value that points libusbmuxd (and us) at `addr`. */
export function formatUsbmuxdAddress(addr: UsbmuxdAddress): string {
  if (addr.kind === 'unix') return `UNIX:${addr.path}`;
  return addr.host.includes(':') ? `[${addr.host}]:${addr.port}` : `${addr.host}:${addr.port}`;
}

/** For messages: a path, or host:port. */
export function describeUsbmuxdAddress(addr: UsbmuxdAddress): string {
  return addr.kind === 'unix' ? addr.path : formatUsbmuxdAddress(addr);
}
