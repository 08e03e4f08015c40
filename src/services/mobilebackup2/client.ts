/**
 * mobilebackup2 host side, first step only: start the service (with the escrow bag), Device Link
 * version exchange and the Hello that agrees on protocol 2.x (reference §4.2). The backup loop
 * itself builds on `deviceLink`.
 */
import { MooringError } from '../../util/errors';
import { describePlistValue } from '../../protocol/plist/describe';
import { PlistReal, type PlistValue } from '../../protocol/plist/types';
import { DeviceLinkConnection } from '../device-link/connection';
import type { ServiceProvider } from '../../lockdown/session';

export const MOBILEBACKUP2_SERVICE_NAME = 'com.apple.mobilebackup2';
/** What libimobiledevice and pymobiledevice3 offer; sent as plist reals. */
export const MB2_SUPPORTED_PROTOCOL_VERSIONS: readonly number[] = [2.0, 2.1];
/** Hello's ErrorCode for "no common protocol version". */
export const MB2_NO_COMMON_VERSION = 1;

export interface MobileBackup2Options {
  timeoutMs?: number;
  versions?: readonly number[];
}

export class MobileBackup2Client {
  /** Agreed in hello(). */
  protocolVersion: number | undefined;

  constructor(readonly deviceLink: DeviceLinkConnection) {}

  /** StartService (with EscrowBag) → DL version exchange → Hello. Closes the connection on failure. */
  static async start(
    provider: ServiceProvider,
    opts: MobileBackup2Options = {},
  ): Promise<MobileBackup2Client> {
    const conn = await provider.startService(MOBILEBACKUP2_SERVICE_NAME, {
      escrowBag: true,
      ...(opts.timeoutMs === undefined ? {} : { readTimeoutMs: opts.timeoutMs }),
    });
    const client = new MobileBackup2Client(
      new DeviceLinkConnection(
        conn,
        opts.timeoutMs === undefined ? {} : { timeoutMs: opts.timeoutMs },
      ),
    );
    try {
      await client.deviceLink.versionExchange();
      await client.hello(opts.versions);
    } catch (e) {
      conn.close();
      throw e;
    }
    return client;
  }

  /**
   * `Hello {SupportedProtocolVersions: [2.0, 2.1]}` (reals) → `Response {ErrorCode: 0, ProtocolVersion}`.
   * Returns the agreed version, which must be one we offered.
   */
  async hello(versions: readonly number[] = MB2_SUPPORTED_PROTOCOL_VERSIONS): Promise<number> {
    await this.deviceLink.sendProcessMessage({
      MessageName: 'Hello',
      SupportedProtocolVersions: versions.map((v) => new PlistReal(v)),
    });
    const reply = await this.deviceLink.receiveProcessMessage();
    if (reply.MessageName !== undefined && reply.MessageName !== 'Response') {
      throw new MooringError(
        'PROTOCOL',
        `mobilebackup2 answered Hello with ${describePlistValue(reply.MessageName)}`,
      );
    }
    const errorCode = numberOf(reply.ErrorCode);
    if (errorCode === undefined)
      throw new MooringError(
        'MALFORMED',
        reply.ErrorCode === undefined
          ? 'mobilebackup2 Hello response has no ErrorCode'
          : `mobilebackup2 Hello response has a non-numeric ErrorCode (${describePlistValue(reply.ErrorCode)})`,
      );
    if (errorCode === MB2_NO_COMMON_VERSION) {
      throw new MooringError(
        'PROTOCOL',
        `the device supports none of the backup protocol versions ${versions.join(', ')}`,
        {
          detail: errorCode,
        },
      );
    }
    if (errorCode !== 0) {
      const description =
        typeof reply.ErrorDescription === 'string' ? `: ${reply.ErrorDescription}` : '';
      throw new MooringError(
        'DEVICE_ERROR',
        `mobilebackup2 refused Hello with error ${errorCode}${description}`,
        { detail: errorCode },
      );
    }
    const version = numberOf(reply.ProtocolVersion);
    if (version === undefined || !versions.some((v) => Math.abs(v - version) < 1e-9)) {
      throw new MooringError(
        'PROTOCOL',
        `mobilebackup2 chose protocol version ${describePlistValue(reply.ProtocolVersion)}, which was not offered`,
      );
    }
    this.protocolVersion = version;
    return version;
  }

  /** DLMessageDisconnect and close. */
  disconnect(reason?: string): Promise<void> {
    return this.deviceLink.disconnect(reason);
  }
}

function numberOf(v: PlistValue | undefined): number | undefined {
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (v instanceof PlistReal) return v.value;
  if (
    typeof v === 'bigint' &&
    v <= BigInt(Number.MAX_SAFE_INTEGER) &&
    v >= BigInt(Number.MIN_SAFE_INTEGER)
  )
    return Number(v);
  return undefined;
}
