/**
 * A paired lockdown session on one device, and the ServiceProvider seam services depend on:
 * `startService(name)` hands back a ready PlistConnection (TLS applied when the device asks),
 * whatever the transport. Several services can be started in one session.
 */
import { MooringError } from '../util/errors';
import type { PlistDict, PlistValue } from '../protocol/plist/types';
import { PlistConnection } from '../transport/plist-connection';
import type { PairRecord } from '../pairing/pair-record';
import { LockdownClient, tlsClientIdentity, type SessionInfo } from './client';
import { LOCKDOWN_PORT, LOCKDOWN_TYPE } from './constants';
import type { DeviceEndpoint, DeviceTransport } from './endpoint';
import { asDomain, type ValueReader } from './values';

export interface StartServiceOptions {
  /** Send the pair record's EscrowBag (true) or this bag; mobilebackup2 needs it. */
  escrowBag?: boolean | Buffer;
  /** Read deadline for the returned connection. */
  readTimeoutMs?: number;
  /** Frame bound for the returned connection. */
  maxFrameBytes?: number;
}

/** What every service client needs: a way to get a connection to a named service. */
export interface ServiceProvider {
  readonly udid: string;
  readonly transport: DeviceTransport;
  startService(name: string, opts?: StartServiceOptions): Promise<PlistConnection>;
}

export interface OpenLockdownOptions {
  label?: string;
  /** Per-reply deadline. */
  timeoutMs?: number;
}

/** Connects to lockdownd on the endpoint and checks it answers as a normally booted device. */
export async function openLockdown(
  endpoint: DeviceEndpoint,
  opts: OpenLockdownOptions = {},
): Promise<LockdownClient> {
  const stream = await endpoint.connect(LOCKDOWN_PORT);
  const conn = new PlistConnection(stream, {
    format: 'xml',
    ...(opts.timeoutMs === undefined ? {} : { readTimeoutMs: opts.timeoutMs }),
  });
  const client = new LockdownClient(conn, opts);
  try {
    const type = await client.queryType();
    if (type !== LOCKDOWN_TYPE) {
      throw new MooringError(
        'PROTOCOL',
        `the device is not in normal mode (lockdownd answers as ${type})`,
        { detail: type },
      );
    }
  } catch (e) {
    client.close();
    throw e;
  }
  return client;
}

export interface DeviceSessionOptions extends OpenLockdownOptions {
  /** Present the root instead of the host certificate on session and service TLS. */
  presentRootCertificate?: boolean;
}

export class DeviceSession implements ServiceProvider, ValueReader {
  private constructor(
    readonly endpoint: DeviceEndpoint,
    readonly lockdown: LockdownClient,
    readonly pairRecord: PairRecord,
    readonly session: SessionInfo,
    private readonly opts: DeviceSessionOptions,
  ) {}

  /** openLockdown + StartSession (+ TLS). Closes the connection again if any step fails. */
  static async open(
    endpoint: DeviceEndpoint,
    pairRecord: PairRecord,
    opts: DeviceSessionOptions = {},
  ): Promise<DeviceSession> {
    const lockdown = await openLockdown(endpoint, opts);
    try {
      const session = await lockdown.startSession(pairRecord, {
        presentRootCertificate: opts.presentRootCertificate === true,
      });
      return new DeviceSession(endpoint, lockdown, pairRecord, session, opts);
    } catch (e) {
      lockdown.close();
      throw e;
    }
  }

  get udid(): string {
    return this.endpoint.udid;
  }

  get transport(): DeviceTransport {
    return this.endpoint.transport;
  }

  getValue(domain?: string, key?: string): Promise<PlistValue | undefined> {
    return this.lockdown.getValue(domain, key);
  }

  setValue(domain: string | undefined, key: string, value: PlistValue): Promise<void> {
    return this.lockdown.setValue(domain, key, value);
  }

  /** The whole default domain (or `domain`) as a dict. */
  async getDomain(domain?: string): Promise<PlistDict> {
    return asDomain(domain, await this.lockdown.getValue(domain));
  }

  async startService(name: string, opts: StartServiceOptions = {}): Promise<PlistConnection> {
    const escrowBag =
      opts.escrowBag === true
        ? this.pairRecord.EscrowBag
        : opts.escrowBag === false
          ? undefined
          : opts.escrowBag;
    const info = await this.lockdown.startService(
      name,
      escrowBag === undefined ? {} : { escrowBag },
    );
    const stream = await this.endpoint.connect(info.port);
    const conn = new PlistConnection(stream, {
      ...(opts.readTimeoutMs === undefined ? {} : { readTimeoutMs: opts.readTimeoutMs }),
      ...(opts.maxFrameBytes === undefined ? {} : { maxFrameBytes: opts.maxFrameBytes }),
    });
    if (info.ssl) {
      try {
        // Services stay in TLS until they close: no way back to plaintext is needed.
        await conn.upgradeToTlsClient(
          tlsClientIdentity(this.pairRecord, this.opts.presentRootCertificate),
          { downgradable: false },
        );
      } catch (cause) {
        conn.close();
        const why = cause instanceof Error ? cause.message : String(cause);
        throw new MooringError('TLS', `TLS handshake with ${name} failed: ${why}`, { cause });
      }
    }
    return conn;
  }

  /** StopSession (best effort) and close the lockdown connection. Service connections stay open. */
  async close(): Promise<void> {
    try {
      // No TLS teardown: the connection is closed right after, so waiting for close_notify is moot.
      await this.lockdown.stopSession({ downgrade: false });
    } catch {
      // The device may already have dropped the connection; closing is all that is left to do.
    } finally {
      this.lockdown.close();
    }
  }
}
