import net from 'node:net';
import { MooringError } from '../../util/errors';
import { NETWORK_ADDRESS_BYTES } from './constants';

/**
 * The `NetworkAddress` property of a Network device: a raw C sockaddr as laid out on the machine
 * running the mux (reference §1.5). BSD/macOS has a length byte before a one-byte family; Linux
 * and Windows have a little-endian u16 family. The address bytes sit at the same offsets in all.
 */
export interface NetworkAddress {
  family: 4 | 6;
  /** Dotted quad, or RFC 5952 compressed IPv6 (lower case). */
  address: string;
  /** IPv6 scope id (interface index) when non-zero. */
  scopeId?: number;
}

export type SockaddrLayout = 'linux' | 'darwin' | 'windows';

const AF_INET = 2;
/** AF_INET6 is 10 on Linux, 30 on BSD/macOS, 23 on Windows. */
const AF_INET6_VALUES = new Set([0x0a, 0x1e, 0x17]);
const AF_INET6_BY_LAYOUT: Record<SockaddrLayout, number> = {
  linux: 0x0a,
  darwin: 0x1e,
  windows: 0x17,
};
/** BSD `sa_len` values: sizeof(sockaddr_in) and sizeof(sockaddr_in6). */
const BSD_SA_LEN = new Set([0x10, 0x1c]);

const SOCKADDR_IN_BYTES = 16;
const SOCKADDR_IN6_BYTES = 28;

/** Accepts all three layouts (reference §1.5's robust rule). Throws MALFORMED otherwise. */
export function parseNetworkAddress(buf: Buffer): NetworkAddress {
  if (buf.length < 2) {
    throw new MooringError(
      'MALFORMED',
      `NetworkAddress of ${buf.length} bytes is too short for a sockaddr`,
    );
  }
  const family = BSD_SA_LEN.has(buf[0]!) ? buf[1]! : buf.readUInt16LE(0);
  if (family === AF_INET) {
    if (buf.length < 8) {
      throw new MooringError(
        'MALFORMED',
        `IPv4 NetworkAddress of ${buf.length} bytes is truncated`,
      );
    }
    return { family: 4, address: `${buf[4]}.${buf[5]}.${buf[6]}.${buf[7]}` };
  }
  if (AF_INET6_VALUES.has(family)) {
    if (buf.length < 24) {
      throw new MooringError(
        'MALFORMED',
        `IPv6 NetworkAddress of ${buf.length} bytes is truncated`,
      );
    }
    const address = formatIpv6(buf.subarray(8, 24));
    const scopeId = buf.length >= SOCKADDR_IN6_BYTES ? buf.readUInt32LE(24) : 0;
    return scopeId ? { family: 6, address, scopeId } : { family: 6, address };
  }
  throw new MooringError('MALFORMED', `NetworkAddress has unknown address family ${family}`, {
    detail: family,
  });
}

/**
 * Builds the sockaddr a mux on `layout` would send, zero-padded to `padTo` bytes (usbmuxd2 and
 * netmuxd send 128). The port bytes stay zero, as they do in real muxes.
 */
export function encodeNetworkAddress(
  addr: NetworkAddress,
  layout: SockaddrLayout = 'linux',
  padTo = NETWORK_ADDRESS_BYTES,
): Buffer {
  const size = addr.family === 4 ? SOCKADDR_IN_BYTES : SOCKADDR_IN6_BYTES;
  const out = Buffer.alloc(Math.max(size, padTo));
  const family = addr.family === 4 ? AF_INET : AF_INET6_BY_LAYOUT[layout];
  if (layout === 'darwin') {
    out[0] = size;
    out[1] = family;
  } else {
    out.writeUInt16LE(family, 0);
  }
  if (addr.family === 4) {
    if (net.isIPv4(addr.address) === false) {
      throw new MooringError('USAGE', `not an IPv4 address: ${addr.address}`);
    }
    addr.address.split('.').forEach((octet, i) => (out[4 + i] = Number(octet)));
  } else {
    ipv6ToBytes(addr.address).copy(out, 8);
    out.writeUInt32LE((addr.scopeId ?? 0) >>> 0, 24);
  }
  return out;
}

function formatIpv6(bytes: Buffer): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i).toString(16));
  // The WHATWG URL serializer implements RFC 5952 compression.
  return new URL(`http://[${groups.join(':')}]/`).hostname.slice(1, -1);
}

function ipv6ToBytes(address: string): Buffer {
  if (!net.isIPv6(address)) throw new MooringError('USAGE', `not an IPv6 address: ${address}`);
  // Normalise first: folds an embedded dotted quad into hex groups.
  const canonical = new URL(`http://[${address}]/`).hostname.slice(1, -1);
  const [head, tail] = canonical.includes('::') ? canonical.split('::') : [canonical, undefined];
  const headGroups = head ? head.split(':') : [];
  const tailGroups = tail ? tail.split(':') : [];
  const zeros =
    tail === undefined ? [] : Array<string>(8 - headGroups.length - tailGroups.length).fill('0');
  const out = Buffer.alloc(16);
  [...headGroups, ...zeros, ...tailGroups].forEach((g, i) =>
    out.writeUInt16BE(parseInt(g, 16), i * 2),
  );
  return out;
}
