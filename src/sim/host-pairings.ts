/**
 * The device's memory of trusted hosts: for each HostID, the certificates the host sent in its
 * Pair request. lockdownd serves the host-minted DeviceCertificate on that host's sessions and
 * accepts only that host's HostCertificate or RootCertificate as the TLS client certificate.
 * One XML plist per host under `<stateDir>/lockdown/pairings/`, so pairings survive a restart.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { certificateDer } from '../pairing/certificates';
import { decodePlist, encodeXmlPlist, isPlistDict, type PlistDict } from '../protocol/plist';
import { MooringError } from '../util/errors';

export interface HostPairing {
  hostId: string;
  systemBuid: string;
  hostCertificate: Buffer; // PEM bytes, as sent
  rootCertificate: Buffer;
  deviceCertificate: Buffer;
  pairedAt: Date;
}

/** HostIDs are UUIDs; anything else is refused before it can become a file name. */
const HOST_ID = /^[0-9A-Fa-f-]{1,64}$/;
/** A device remembers a bounded number of hosts. */
export const MAX_HOST_PAIRINGS = 64;

export function isValidHostId(id: string): boolean {
  return HOST_ID.test(id);
}

export class HostPairings {
  private readonly byId = new Map<string, HostPairing>();
  private readonly clientDers = new Map<string, Buffer[]>();

  private constructor(private readonly dir: string) {}

  static async load(dir: string): Promise<HostPairings> {
    await fsp.mkdir(dir, { recursive: true });
    const store = new HostPairings(dir);
    for (const name of await fsp.readdir(dir)) {
      if (!name.endsWith('.plist')) continue;
      const file = path.join(dir, name);
      try {
        const v = decodePlist(await fsp.readFile(file));
        const p = isPlistDict(v) ? fromPlist(v) : undefined;
        if (p) store.remember(p);
      } catch {
        // A damaged record is a forgotten host: it will have to pair again.
      }
    }
    return store;
  }

  get(hostId: string): HostPairing | undefined {
    return this.byId.get(hostId.toUpperCase());
  }

  list(): HostPairing[] {
    return [...this.byId.values()];
  }

  /** True when `der` is the HostCertificate or RootCertificate of `hostId`'s pairing. */
  acceptsClientCertificate(hostId: string, der: Buffer): boolean {
    return (this.clientDers.get(hostId.toUpperCase()) ?? []).some((c) => c.equals(der));
  }

  async add(p: HostPairing): Promise<void> {
    if (!isValidHostId(p.hostId))
      throw new MooringError('MALFORMED', `HostID "${p.hostId}" is not a UUID`);
    if (!this.byId.has(p.hostId.toUpperCase()) && this.byId.size >= MAX_HOST_PAIRINGS) {
      // Forget the oldest host, as a device with many pairings would.
      const oldest = this.list().sort((a, b) => a.pairedAt.getTime() - b.pairedAt.getTime())[0];
      if (oldest) await this.remove(oldest.hostId);
    }
    this.remember(p);
    const file = this.fileFor(p.hostId);
    await fsp.writeFile(`${file}.tmp`, encodeXmlPlist(toPlist(p)), { mode: 0o600 });
    await fsp.rename(`${file}.tmp`, file);
  }

  async remove(hostId: string): Promise<boolean> {
    const key = hostId.toUpperCase();
    const had = this.byId.delete(key);
    this.clientDers.delete(key);
    if (isValidHostId(hostId)) await fsp.rm(this.fileFor(hostId), { force: true });
    return had;
  }

  async clear(): Promise<number> {
    const n = this.byId.size;
    for (const id of [...this.byId.keys()]) await this.remove(id);
    return n;
  }

  private remember(p: HostPairing): void {
    const key = p.hostId.toUpperCase();
    this.byId.set(key, p);
    const ders: Buffer[] = [];
    for (const pem of [p.hostCertificate, p.rootCertificate]) {
      try {
        ders.push(certificateDer(pem));
      } catch {
        // unreadable certificate: it simply never matches
      }
    }
    this.clientDers.set(key, ders);
  }

  private fileFor(hostId: string): string {
    return path.join(this.dir, `${hostId.toUpperCase()}.plist`);
  }
}

function toPlist(p: HostPairing): PlistDict {
  return {
    HostID: p.hostId,
    SystemBUID: p.systemBuid,
    HostCertificate: p.hostCertificate,
    RootCertificate: p.rootCertificate,
    DeviceCertificate: p.deviceCertificate,
    PairedAt: p.pairedAt,
  };
}

function fromPlist(d: PlistDict): HostPairing | undefined {
  const { HostID, SystemBUID, HostCertificate, RootCertificate, DeviceCertificate, PairedAt } = d;
  if (
    typeof HostID !== 'string' ||
    !isValidHostId(HostID) ||
    !Buffer.isBuffer(HostCertificate) ||
    !Buffer.isBuffer(RootCertificate) ||
    !Buffer.isBuffer(DeviceCertificate)
  ) {
    return undefined;
  }
  return {
    hostId: HostID,
    systemBuid: typeof SystemBUID === 'string' ? SystemBUID : '',
    hostCertificate: HostCertificate,
    rootCertificate: RootCertificate,
    deviceCertificate: DeviceCertificate,
    pairedAt: PairedAt instanceof Date ? PairedAt : new Date(0),
  };
}
