/**
 * lockdownd client (reference §3): one request/reply at a time over a PlistConnection, every
 * reply's echoed `Request` checked, every `Error` mapped through lockdownError().
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { MooringError, isMooringError } from '../util/errors';
import { DEFAULT_READ_TIMEOUT_MS } from '../util/stream-reader';
import { describePlistValue } from '../protocol/plist/describe';
import type { PlistDict, PlistValue } from '../protocol/plist/types';
import type { PlistConnection } from '../transport/plist-connection';
import { generatePairingCertificates } from '../pairing/certificates';
import {
  newHostId,
  pairRecordForDevice,
  pairRequestRecord,
  type PairRecord,
} from '../pairing/pair-record';
import { isLockdownError, lockdownError, notUnlockedSinceBoot } from './errors';
import { DEFAULT_LOCKDOWN_LABEL, LOCKDOWN_TYPE, WIRELESS_LOCKDOWN_DOMAIN } from './constants';

/** How long the user gets to answer "Trust This Computer?" by default. */
export const DEFAULT_PAIRING_TIMEOUT_MS = 120_000;
/** Pair is re-sent this often while the dialog is up (PMD3 polls once a second). */
export const PAIRING_POLL_INTERVAL_MS = 1_000;

const REPAIR_HINT = 'connect it by USB, unlock it and pair again (mooring pair)';

export interface LockdownClientOptions {
  /** `Label` sent with every request. */
  label?: string;
  /** Deadline for each reply. */
  timeoutMs?: number;
}

export interface StartSessionOptions {
  /**
   * Present RootCertificate/RootPrivateKey as the TLS client certificate (what libimobiledevice
   * with OpenSSL does) instead of HostCertificate/HostPrivateKey (pymobiledevice3, go-ios).
   * Devices accept either.
   */
  presentRootCertificate?: boolean;
}

export interface SessionInfo {
  sessionId: string;
  tls: boolean;
}

export interface ServiceInfo {
  service: string;
  port: number;
  ssl: boolean;
}

export interface PairOptions {
  /** usbmuxd's SystemBUID (UsbmuxdClient.readBuid()). */
  systemBuid: string;
  /** HostID to register; a fresh upper-case UUID by default. */
  hostId?: string;
  /** Reuse this host key (PEM) instead of generating one. */
  hostKeyPem?: string | Buffer;
  /** Give up after this long if nobody answers the Trust dialog. */
  timeoutMs?: number;
  /** Re-send interval while the dialog is pending. */
  pollIntervalMs?: number;
  /** Called once when the device starts showing the Trust dialog. */
  onDialog?: () => void;
  /** Cancels the wait for the Trust dialog. */
  signal?: AbortSignal;
}

/** The TLS client identity for a record: host pair by default, root pair on request. */
export function tlsClientIdentity(
  record: PairRecord,
  presentRootCertificate = false,
): { cert: Buffer; key: Buffer } {
  return presentRootCertificate
    ? { cert: record.RootCertificate, key: record.RootPrivateKey }
    : { cert: record.HostCertificate, key: record.HostPrivateKey };
}

export class LockdownClient {
  private readonly label: string;
  private readonly timeoutMs: number;
  private queue: Promise<unknown> = Promise.resolve();
  private session: SessionInfo | undefined;
  private closed = false;
  private broken: Error | undefined;

  constructor(
    readonly connection: PlistConnection,
    opts: LockdownClientOptions = {},
  ) {
    this.label = opts.label ?? DEFAULT_LOCKDOWN_LABEL;
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_READ_TIMEOUT_MS;
  }

  /** The active session, if StartSession succeeded and StopSession was not sent. */
  get sessionInfo(): SessionInfo | undefined {
    return this.session;
  }

  /**
   * Sends `{Label, Request: name, ...body}` and returns the reply after checking it echoes
   * `name` (unless `checkEcho` is false) and carries no `Error`. Requests are serialised.
   */
  request(
    name: string,
    body: PlistDict = {},
    opts: { checkEcho?: boolean; service?: string; timeoutMs?: number } = {},
  ): Promise<PlistDict> {
    const run = async (): Promise<PlistDict> => {
      if (this.closed) {
        throw new MooringError('CLOSED', `lockdown connection is closed; cannot send ${name}`);
      }
      if (this.broken) {
        throw new MooringError(
          'PROTOCOL',
          `lockdown connection is unusable after an earlier failure (${this.broken.message}); reconnect`,
        );
      }
      let reply: PlistDict;
      try {
        await this.connection.send({ Label: this.label, Request: name, ...body }, 'xml');
        reply = await this.connection.receiveDict(opts.timeoutMs ?? this.timeoutMs);
      } catch (e) {
        // A late or half-read reply would be taken for the next request's answer: stop here.
        this.broken = e instanceof Error ? e : new Error(String(e));
        throw e;
      }
      return checkReply(name, reply, opts);
    };
    const p = this.queue.then(run, run);
    this.queue = p.catch(() => undefined);
    return p;
  }

  /** Must be "com.apple.mobile.lockdown" for a normally booted device. */
  async queryType(): Promise<string> {
    const reply = await this.request('QueryType');
    if (typeof reply.Type !== 'string')
      throw new MooringError('MALFORMED', 'QueryType reply has no Type string');
    return reply.Type;
  }

  /** A value (no key: the whole domain dict; no domain: the default domain). Undefined if absent. */
  async getValue(domain?: string, key?: string): Promise<PlistValue | undefined> {
    const body: PlistDict = {};
    if (domain !== undefined) body.Domain = domain;
    if (key !== undefined) body.Key = key;
    const reply = await this.request('GetValue', body);
    return reply.Value;
  }

  /** A string value; MALFORMED if present with another type. */
  async getString(domain: string | undefined, key: string): Promise<string | undefined> {
    const v = await this.getValue(domain, key);
    if (v === undefined || typeof v === 'string') return v;
    throw new MooringError(
      'MALFORMED',
      `lockdown value ${domain ? `${domain}/` : ''}${key} is not a string`,
    );
  }

  async setValue(domain: string | undefined, key: string, value: PlistValue): Promise<void> {
    const body: PlistDict = { Key: key, Value: value };
    if (domain !== undefined) body.Domain = domain;
    await this.request('SetValue', body);
  }

  async removeValue(domain: string | undefined, key?: string): Promise<void> {
    const body: PlistDict = {};
    if (domain !== undefined) body.Domain = domain;
    if (key !== undefined) body.Key = key;
    await this.request('RemoveValue', body);
  }

  /** "Show this iPhone when on Wi-Fi" (must be switched on once, over USB, inside a session). */
  async enableWifiConnections(enabled: boolean): Promise<void> {
    await this.setValue(WIRELESS_LOCKDOWN_DOMAIN, 'EnableWifiConnections', enabled);
  }

  /**
   * StartSession with the record's HostID/SystemBUID; switches to TLS when the device asks.
   * A TLS failure right here is how a removed pairing usually shows (§2.5), hence PAIRING.
   */
  async startSession(record: PairRecord, opts: StartSessionOptions = {}): Promise<SessionInfo> {
    if (this.session)
      throw new MooringError('USAGE', 'a lockdown session is already active on this connection');
    const reply = await this.request('StartSession', {
      HostID: record.HostID,
      SystemBUID: record.SystemBUID,
    });
    if (typeof reply.SessionID !== 'string' || reply.SessionID.length === 0) {
      throw new MooringError('MALFORMED', 'StartSession reply has no SessionID');
    }
    const tls = reply.EnableSessionSSL === true;
    if (tls) {
      try {
        await this.connection.upgradeToTlsClient(
          tlsClientIdentity(record, opts.presentRootCertificate),
        );
      } catch (cause) {
        throw new MooringError(
          'PAIRING',
          `The device refused the secure session; it most likely no longer trusts this computer: ${REPAIR_HINT}`,
          { cause, detail: isMooringError(cause) ? cause.code : undefined },
        );
      }
    }
    this.session = { sessionId: reply.SessionID, tls };
    return this.session;
  }

  /**
   * StopSession, then back to plaintext like libimobiledevice, so the connection can go on
   * (`downgrade: false` skips that when the caller closes the connection next).
   */
  async stopSession(opts: { downgrade?: boolean } = {}): Promise<void> {
    const s = this.session;
    if (!s) return;
    this.session = undefined;
    const reply = await this.request('StopSession', { SessionID: s.sessionId });
    if (reply.Result !== undefined && reply.Result !== 'Success') {
      throw new MooringError(
        'DEVICE_ERROR',
        `StopSession failed: Result ${describePlistValue(reply.Result)}`,
      );
    }
    if (s.tls && opts.downgrade !== false) await this.connection.downgradeFromTls();
  }

  /** StartService → the port to connect to and whether that connection must speak TLS first. */
  async startService(name: string, opts: { escrowBag?: Buffer } = {}): Promise<ServiceInfo> {
    const body: PlistDict = { Service: name };
    if (opts.escrowBag !== undefined) body.EscrowBag = opts.escrowBag;
    let reply: PlistDict;
    try {
      reply = await this.request('StartService', body, { service: name });
    } catch (e) {
      if (opts.escrowBag !== undefined && isLockdownError(e, 'MissingValue')) {
        throw notUnlockedSinceBoot(name);
      }
      throw e;
    }
    const port = reply.Port;
    if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) {
      throw new MooringError('MALFORMED', `StartService ${name} reply has no valid Port`);
    }
    return { service: name, port, ssl: reply.EnableServiceSSL === true };
  }

  /**
   * The whole pairing exchange (§2.4): QueryType, DevicePublicKey, WiFiAddress, certificates,
   * Pair (re-sent every second while the Trust dialog is up), and the complete record to store.
   */
  async pair(opts: PairOptions): Promise<PairRecord> {
    const type = await this.queryType();
    if (type !== LOCKDOWN_TYPE)
      throw new MooringError('PROTOCOL', `cannot pair: the device answers as ${type}`);
    const devicePublicKey = await this.getValue(undefined, 'DevicePublicKey');
    if (!Buffer.isBuffer(devicePublicKey) && typeof devicePublicKey !== 'string') {
      throw new MooringError('MALFORMED', 'the device did not return its DevicePublicKey');
    }
    // Asked before Pair: on iOS 7 asking after a successful Pair forces a reconnect (LIMD).
    const wifiAddress = await this.getString(undefined, 'WiFiAddress');
    let udid: string | undefined;
    try {
      udid = await this.getString(undefined, 'UniqueDeviceID');
    } catch {
      udid = undefined; // optional in the record
    }
    const certificates = generatePairingCertificates(
      devicePublicKey,
      opts.hostKeyPem === undefined ? {} : { hostKeyPem: opts.hostKeyPem },
    );
    const record = pairRecordForDevice({
      certificates,
      hostId: opts.hostId ?? newHostId(),
      systemBuid: opts.systemBuid,
      ...(wifiAddress === undefined ? {} : { wifiMacAddress: wifiAddress }),
      ...(udid === undefined ? {} : { udid }),
    });
    const body: PlistDict = {
      PairRecord: pairRequestRecord(record),
      ProtocolVersion: '2',
      PairingOptions: { ExtendedPairingErrors: true },
    };
    const deadline = Date.now() + (opts.timeoutMs ?? DEFAULT_PAIRING_TIMEOUT_MS);
    let dialogShown = false;
    for (;;) {
      try {
        const reply = await this.request('Pair', body);
        if (Buffer.isBuffer(reply.EscrowBag)) record.EscrowBag = reply.EscrowBag;
        return record;
      } catch (e) {
        if (!(e instanceof MooringError) || e.detail !== 'PairingDialogResponsePending') throw e;
        if (!dialogShown) {
          dialogShown = true;
          opts.onDialog?.();
        }
        if (Date.now() >= deadline) {
          throw new MooringError(
            'TIMEOUT',
            'Nobody answered "Trust This Computer?" on the device in time: unlock it, tap "Trust" and run mooring pair again',
            { detail: 'PairingDialogResponsePending', cause: e },
          );
        }
        await sleep(
          opts.pollIntervalMs ?? PAIRING_POLL_INTERVAL_MS,
          undefined,
          opts.signal ? { signal: opts.signal } : {},
        );
      }
    }
  }

  /** ValidatePair: only iOS < 7 needs it to gain trusted-host status. */
  async validatePair(record: PairRecord): Promise<void> {
    await this.request('ValidatePair', {
      PairRecord: pairRequestRecord(record),
      ProtocolVersion: '2',
    });
  }

  /** Unpair; firmware sometimes echoes ValidatePair, so the echo is not checked (as LIMD). */
  async unpair(record: PairRecord): Promise<void> {
    await this.request(
      'Unpair',
      { PairRecord: pairRequestRecord(record), ProtocolVersion: '2' },
      { checkEcho: false },
    );
  }

  /** Closes the connection (no StopSession; use stopSession() first for a clean end). */
  close(): void {
    this.closed = true;
    this.session = undefined;
    this.connection.close();
  }
}

function checkReply(
  name: string,
  reply: PlistDict,
  opts: { checkEcho?: boolean; service?: string },
): PlistDict {
  const echoed = reply.Request;
  if (opts.checkEcho !== false && echoed !== undefined && echoed !== name) {
    throw new MooringError(
      'PROTOCOL',
      `lockdownd answered ${describePlistValue(echoed)} to a ${name} request`,
    );
  }
  if (reply.Error !== undefined) {
    const error = typeof reply.Error === 'string' ? reply.Error : describePlistValue(reply.Error);
    throw lockdownError(error, {
      request: name,
      ...(opts.service === undefined ? {} : { service: opts.service }),
    });
  }
  if (opts.checkEcho !== false && echoed === undefined) {
    throw new MooringError('PROTOCOL', `lockdownd reply to ${name} does not echo the request`);
  }
  if (reply.Result === 'Failure')
    throw new MooringError('DEVICE_ERROR', `The device refused ${name} (Result: Failure)`);
  return reply;
}
