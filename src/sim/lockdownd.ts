/**
 * Device-side lockdownd: one instance per connection to port 62078 (through usbmuxd or over
 * Wi-Fi). Speaks the length-prefixed plist protocol of reference §3: QueryType, GetValue,
 * SetValue, Pair/ValidatePair/Unpair with the scripted trust dialog, StartSession (then TLS with
 * the host-minted DeviceCertificate), StopSession (then plaintext or close), StartService.
 * Every reply echoes `Request`; successes carry `Result: "Success"`, failures an `Error` string.
 */
import { randomUUID } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { certificateDer, normaliseDevicePublicKey } from '../pairing/certificates';
import { readCertificate } from '../protocol/der';
import { isPlistDict, type PlistDict, type PlistValue } from '../protocol/plist';
import { PlistConnection } from '../transport/plist-connection';
import { isMooringError } from '../util/errors';
import type { SimServiceSpec } from './contracts';
import type { SimDevice } from './device';
import { isValidHostId, type HostPairing } from './host-pairings';
import { acceptTls, type PortTable, type TlsServerMaterial, type Transport } from './service-ports';

/** A lockdownd connection idle this long is closed. */
export const LOCKDOWN_IDLE_TIMEOUT_MS = 60_000;
/** lockdownd requests are small; anything bigger is hostile. */
export const LOCKDOWN_MAX_FRAME_BYTES = 1024 * 1024;

/** Answered without a session (what LIMD/PMD3 read before StartSession and for pairing). */
export const SESSIONLESS_KEYS = [
  'ProductVersion',
  'DeviceClass',
  'UniqueDeviceID',
  'DevicePublicKey',
  'WiFiAddress',
  'BuildVersion',
  'ProductType',
  'DeviceName',
] as const;

/** Services that need the device unlocked (data protection), answered PasswordProtected while locked. */
const NEEDS_UNLOCK = new Set(['com.apple.mobilebackup2']);

export interface LockdownDeps {
  device: SimDevice;
  ports: PortTable;
  services: ReadonlyMap<string, SimServiceSpec>;
  /** Host to open service ports on for Wi-Fi clients (undefined: USB-only ports). */
  serviceHost: () => string | undefined;
}

interface Session {
  id: string;
  pairing: HostPairing;
}

type Reply = PlistDict;

/** Serves one lockdownd connection until the peer leaves, misbehaves or idles out. */
export async function serveLockdown(
  raw: Duplex,
  transport: Transport,
  deps: LockdownDeps,
): Promise<void> {
  const conn = new PlistConnection(raw, {
    maxFrameBytes: LOCKDOWN_MAX_FRAME_BYTES,
    readTimeoutMs: LOCKDOWN_IDLE_TIMEOUT_MS,
    format: 'xml',
  });
  const ld = new LockdownConnection(conn, transport, deps);
  try {
    await ld.run();
  } catch (e) {
    if (!isMooringError(e, 'CLOSED')) {
      deps.device.log('lockdown-connection-ended', { transport, reason: (e as Error).message });
    }
  } finally {
    conn.close();
  }
}

class LockdownConnection {
  private session: Session | undefined;
  private tls = false;
  private done = false;

  constructor(
    private readonly conn: PlistConnection,
    private readonly transport: Transport,
    private readonly deps: LockdownDeps,
  ) {}

  private get device(): SimDevice {
    return this.deps.device;
  }

  async run(): Promise<void> {
    while (!this.done) {
      const req = await this.conn.receiveDict(LOCKDOWN_IDLE_TIMEOUT_MS);
      const name = typeof req.Request === 'string' ? req.Request : undefined;
      this.device.log('lockdown-request', {
        request: name,
        key: req.Key,
        domain: req.Domain,
        service: req.Service,
        ...(req.EscrowBag === undefined ? {} : { escrowBag: Buffer.isBuffer(req.EscrowBag) }),
        transport: this.transport,
      });
      if (name === undefined) {
        await this.conn.send({ Error: 'MissingValue' });
        continue;
      }
      const reply = await this.handle(name, req);
      if (typeof reply.Error === 'string') {
        this.device.log('lockdown-refused', { request: name, error: reply.Error });
      }
      await this.conn.send({ Request: name, ...reply });
      await this.afterReply(name, reply);
    }
  }

  private async handle(name: string, req: PlistDict): Promise<Reply> {
    switch (name) {
      case 'QueryType':
        return ok({ Type: 'com.apple.mobile.lockdown' });
      case 'GetValue':
        return this.getValue(req);
      case 'SetValue':
        return this.setValue(req);
      case 'RemoveValue':
        return fail('RemoveProhibited');
      case 'Pair':
        return this.pair(req);
      case 'ValidatePair':
        return this.validatePair(req);
      case 'Unpair':
        return this.unpair(req);
      case 'StartSession':
        return this.startSession(req);
      case 'StopSession':
        return this.stopSession(req);
      case 'StartService':
        return this.startService(req);
      case 'Goodbye':
        this.done = true;
        return ok({});
      default:
        return fail('InvalidRequest');
    }
  }

  /** Protocol state changes that happen only after the reply went out (TLS up/down). */
  private async afterReply(name: string, reply: Reply): Promise<void> {
    if (reply.Error !== undefined) return;
    if (name === 'StartSession' && this.session && !this.tls) {
      const pairing = this.session.pairing;
      await this.conn.upgradeToTlsServer({
        cert: pairing.deviceCertificate,
        key: this.device.identity.devicePrivateKeyPem,
        requestCert: true,
        verifyClient: (der) => this.device.pairings.acceptsClientCertificate(pairing.hostId, der),
      });
      this.tls = true;
      this.device.log('session-tls-up', { hostId: pairing.hostId });
    } else if (name === 'StopSession' && this.tls) {
      this.tls = false;
      // LIMD sends close_notify and carries on in plaintext; others just hang up.
      await this.conn.downgradeFromTls();
    }
  }

  private getValue(req: PlistDict): Reply {
    const domain = typeof req.Domain === 'string' ? req.Domain : undefined;
    const key = typeof req.Key === 'string' ? req.Key : undefined;
    const echo: Reply = {};
    if (domain !== undefined) echo.Domain = domain;
    if (key !== undefined) echo.Key = key;
    if (!this.session) {
      if (domain !== undefined) return { ...echo, Error: 'GetProhibited' };
      const all = this.device.values();
      if (key === undefined) {
        const reduced: PlistDict = {};
        for (const k of SESSIONLESS_KEYS) reduced[k] = all[k] as PlistValue;
        return ok({ ...echo, Value: reduced });
      }
      if (!(SESSIONLESS_KEYS as readonly string[]).includes(key))
        return { ...echo, Error: 'GetProhibited' };
      return ok({ ...echo, Value: all[key] as PlistValue });
    }
    let dict: Record<string, unknown>;
    if (domain === undefined) dict = this.device.values();
    else if (this.device.hasDomain(domain)) dict = this.device.domain(domain);
    else return { ...echo, Error: 'MissingValue' };
    if (key === undefined) return ok({ ...echo, Value: dict as PlistDict });
    const v = dict[key];
    if (v === undefined) return { ...echo, Error: 'MissingValue' };
    return ok({ ...echo, Value: v as PlistValue });
  }

  private async setValue(req: PlistDict): Promise<Reply> {
    const domain = typeof req.Domain === 'string' ? req.Domain : undefined;
    const key = typeof req.Key === 'string' ? req.Key : undefined;
    const echo: Reply = {};
    if (domain !== undefined) echo.Domain = domain;
    if (key !== undefined) echo.Key = key;
    if (!this.session) return { ...echo, Error: 'SetProhibited' };
    if (key === undefined) return { ...echo, Error: 'MissingKey' };
    if (req.Value === undefined) return { ...echo, Error: 'MissingValue' };
    const err = await this.device.setValue(domain, key, req.Value);
    return err ? { ...echo, Error: err } : ok(echo);
  }

  private async pair(req: PlistDict): Promise<Reply> {
    if (this.transport === 'wifi') return fail('PairingProhibitedOverThisConnection');
    const rec = this.readPairRecord(req);
    if ('error' in rec) return fail(rec.error);
    if (this.device.locked) return fail('PasswordProtected');
    const known = this.device.pairings.get(rec.hostId);
    if (!known) {
      const answer = this.device.pairDialog();
      if (answer === 'pending') return fail('PairingDialogResponsePending');
      if (answer === 'denied') return fail('UserDeniedPairing');
    }
    await this.device.pairings.add({ ...rec, pairedAt: new Date() });
    this.device.emit('pairings-changed');
    this.device.log('paired', { hostId: rec.hostId });
    return ok({ EscrowBag: Buffer.from(this.device.identity.escrowBag, 'base64') });
  }

  private validatePair(req: PlistDict): Reply {
    const hostId = hostIdOf(req);
    if (hostId === undefined) return fail('InvalidPairRecord');
    return this.device.pairings.get(hostId) ? ok({}) : fail('InvalidHostID');
  }

  private async unpair(req: PlistDict): Promise<Reply> {
    const hostId = hostIdOf(req);
    if (hostId === undefined) return fail('InvalidPairRecord');
    if (!(await this.device.pairings.remove(hostId))) return fail('InvalidHostID');
    this.device.emit('pairings-changed');
    this.device.log('unpaired', { hostId });
    return ok({});
  }

  /** Checks the PairRecord of a Pair request: the host's certificates, and one for *our* key. */
  private readPairRecord(req: PlistDict): { error: string } | Omit<HostPairing, 'pairedAt'> {
    const r = req.PairRecord;
    if (!isPlistDict(r)) return { error: 'MissingPairRecord' };
    const { HostID, HostCertificate, RootCertificate, DeviceCertificate, SystemBUID } = r;
    if (typeof HostID !== 'string' || !isValidHostId(HostID)) return { error: 'InvalidPairRecord' };
    if (
      !Buffer.isBuffer(HostCertificate) ||
      !Buffer.isBuffer(RootCertificate) ||
      !Buffer.isBuffer(DeviceCertificate)
    ) {
      return { error: 'InvalidPairRecord' };
    }
    try {
      certificateDer(HostCertificate);
      certificateDer(RootCertificate);
      const spki = readCertificate(certificateDer(DeviceCertificate)).spki;
      const ours = normaliseDevicePublicKey(this.device.identity.devicePublicKeyPem).spki;
      if (!spki.equals(ours)) return { error: 'InvalidPairRecord' };
    } catch {
      return { error: 'InvalidPairRecord' };
    }
    return {
      hostId: HostID.toUpperCase(),
      systemBuid: typeof SystemBUID === 'string' ? SystemBUID : '',
      hostCertificate: HostCertificate,
      rootCertificate: RootCertificate,
      deviceCertificate: DeviceCertificate,
    };
  }

  private startSession(req: PlistDict): Reply {
    const hostId = req.HostID;
    if (typeof hostId !== 'string' || hostId === '') return fail('MissingHostID');
    if (this.session) return fail('SessionActive');
    const pairing = this.device.pairings.get(hostId);
    if (!pairing) return fail('InvalidHostID');
    this.session = { id: randomUUID().toUpperCase(), pairing };
    return ok({ SessionID: this.session.id, EnableSessionSSL: true });
  }

  private stopSession(req: PlistDict): Reply {
    if (!this.session) return fail('SessionInactive');
    if (typeof req.SessionID !== 'string') return fail('MissingSessionID');
    if (req.SessionID !== this.session.id) return fail('InvalidSessionID');
    this.session = undefined;
    return ok({});
  }

  private async startService(req: PlistDict): Promise<Reply> {
    const name = req.Service;
    if (typeof name !== 'string' || name === '') return fail('MissingService');
    const echo: Reply = { Service: name };
    if (!this.session) return { ...echo, Error: 'SessionInactive' };
    const spec = this.deps.services.get(name);
    if (!spec) return { ...echo, Error: 'InvalidService' };
    // A phone not unlocked since it booted cannot open its escrow bag, and says MissingValue
    // (its log: "Escrow unlock unavailable because user has not unlocked device since boot";
    // libimobiledevice/libimobiledevice#1078).
    if (NEEDS_UNLOCK.has(name) && Buffer.isBuffer(req.EscrowBag) && !this.device.unlockedSinceBoot)
      return { ...echo, Error: 'MissingValue' };
    if (this.device.locked && NEEDS_UNLOCK.has(name))
      return { ...echo, Error: 'PasswordProtected' };
    const pairing = this.session.pairing;
    const material: TlsServerMaterial = {
      certPem: pairing.deviceCertificate,
      keyPem: this.device.identity.devicePrivateKeyPem,
      acceptClient: (der) => this.device.pairings.acceptsClientCertificate(pairing.hostId, der),
    };
    const device = this.device;
    const tls = spec.tls === 'always' || (spec.tls === 'network' && this.transport === 'wifi');
    const port = await this.deps.ports.openServicePort((stream, transport) => {
      device.track(stream, transport);
      void runService(spec, stream, tls ? material : undefined, device);
    }, this.deps.serviceHost());
    this.device.log('service-started', { service: name, port, tls });
    // A device leaves the key out for a plain service (D40).
    return ok({ ...echo, Port: port, ...(tls ? { EnableServiceSSL: true } : {}) });
  }
}

/** Runs one service connection: TLS first when the service uses it, then the handler. */
async function runService(
  spec: SimServiceSpec,
  raw: Duplex,
  material: TlsServerMaterial | undefined,
  device: SimDevice,
): Promise<void> {
  let stream: Duplex = raw;
  try {
    if (material) stream = await acceptTls(raw, material);
    await spec.handler(stream, device);
  } catch (e) {
    if (!isMooringError(e, 'CLOSED')) {
      device.log('service-ended', { service: spec.name, reason: (e as Error).message });
    }
  } finally {
    stream.destroy();
    raw.destroy();
  }
}

function ok(fields: Reply): Reply {
  return { ...fields, Result: 'Success' };
}

function fail(error: string): Reply {
  return { Error: error };
}

function hostIdOf(req: PlistDict): string | undefined {
  const rec = req.PairRecord;
  const id = isPlistDict(rec) ? rec.HostID : req.HostID;
  return typeof id === 'string' && isValidHostId(id) ? id : undefined;
}
