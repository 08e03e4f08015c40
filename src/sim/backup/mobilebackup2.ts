/**
 * com.apple.mobilebackup2, device side: Device Link version exchange as the device, `Hello`
 * protocol negotiation, then requests (Backup, Restore, Info, List; the rest are refused clearly)
 * until the host disconnects. Each request ends with one DLMessageProcessMessage carrying ErrorCode.
 */
import { randomUUID } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { isMooringError } from '../../util/errors';
import { PlistReal, type PlistDict, type PlistValue } from '../../protocol/plist';
import { PlistConnection } from '../../transport/plist-connection';
import type { ContentStore } from '../content/store';
import type { ServiceHandler, SimDeviceApi } from '../contracts';
import { runBackup } from './backup-session';
import { isHandshakeEvil, runEvilHandshake } from './evil';
import { DeviceLinkPeer } from './dl-peer';
import { BackupFailure, ConnectionDropped, MbError } from './errors';
import { runInfo, runList } from './info-session';
import { runRestore } from './restore-session';
import { runChangePassword } from './change-password';
import { SimBackupEncryption } from './encryption';
import type { SessionContext } from './session';

export const MOBILEBACKUP2_SERVICE = 'com.apple.mobilebackup2';
/** Posted on the device when the user taps "cancel sync"; hosts and the backup agent observe it. */
export const SYNC_CANCEL_NOTIFICATION = 'com.apple.itunes-client.syncCancelRequest';
/** How long the passcode sheet waits for the user. */
export const DEFAULT_PASSCODE_TIMEOUT_MS = 120_000;
/** mobilebackup2 protocol versions this device speaks. */
export const DEVICE_PROTOCOL_VERSIONS = [2.0, 2.1];
/** Largest plist frame accepted from the host. */
export const MAX_HOST_FRAME_BYTES = 32 * 1024 * 1024;

export interface Mobilebackup2Options {
  passcodeTimeoutMs?: number;
  replyTimeoutMs?: number;
  idleTimeoutMs?: number;
  /** Backup encryption state; default: in the device's state dir, iOS keybag rounds. */
  encryption?: SimBackupEncryption;
}

/** Chooses the highest version both sides support, or undefined (→ ErrorCode 1). */
export function negotiateProtocolVersion(hostVersions: PlistValue | undefined): number | undefined {
  if (!Array.isArray(hostVersions)) return undefined;
  const host = hostVersions
    .map((v) => (v instanceof PlistReal ? v.value : v))
    .filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
  const common = DEVICE_PROTOCOL_VERSIONS.filter((d) => host.some((h) => Math.abs(h - d) < 1e-9));
  return common.length > 0 ? Math.max(...common) : undefined;
}

function response(errorCode: number, extra: PlistDict = {}): PlistDict {
  return { MessageName: 'Response', ErrorCode: errorCode, ...extra };
}

function failure(code: number, description: string): PlistDict {
  return response(code, { ErrorDescription: `${description} (MBErrorDomain/${code})` });
}

type RequestRunner = (ctx: SessionContext, req: PlistDict) => Promise<string | undefined>;

const RUNNERS: Record<string, RequestRunner> = {
  Backup: async (ctx, req) => {
    await runBackup(ctx, req);
    return undefined;
  },
  Restore: async (ctx, req) => {
    await runRestore(ctx, req);
    return undefined;
  },
  Info: runInfo,
  List: runList,
  ChangePassword: async (ctx, req) => {
    await runChangePassword(ctx, req);
    return undefined;
  },
};

export function mobilebackup2Service(
  store: ContentStore,
  opts: Mobilebackup2Options = {},
): ServiceHandler {
  let encryption: SimBackupEncryption | undefined;
  return async (stream, device) => {
    const conn = new PlistConnection(stream, {
      format: 'binary',
      maxFrameBytes: MAX_HOST_FRAME_BYTES,
    });
    const dl = new DeviceLinkPeer(conn, opts);
    const log = (event: string, fields: Record<string, unknown> = {}): void =>
      device.log(`mobilebackup2.${event}`, fields);
    try {
      // H7h: hostile handshakes take the connection over before the version exchange.
      if (isHandshakeEvil(device.faults.evil))
        return await runEvilHandshake(dl, device, device.faults.evil);
      await dl.versionExchange();
      while (true) {
        const m = await dl.nextMessage();
        if (m.type === 'Disconnect') break;
        if (m.type === 'Ping') continue;
        if (m.type !== 'ProcessMessage') {
          log('unexpected-message', { type: m.type });
          break;
        }
        await handleRequest(m.message);
      }
    } catch (err) {
      if (err instanceof ConnectionDropped) log('dropped', { reason: err.message });
      else if (isMooringError(err, 'CLOSED')) log('host-closed', { reason: err.message });
      else
        log('connection-error', {
          error: (err as Error).message,
          code: (err as { code?: string }).code,
        });
    } finally {
      conn.close();
    }

    async function handleRequest(msg: PlistDict): Promise<void> {
      const name = typeof msg.MessageName === 'string' ? msg.MessageName : '';
      log('request', { name });
      if (name === 'Hello') {
        const v = negotiateProtocolVersion(msg.SupportedProtocolVersions);
        await dl.processMessage(
          v === undefined
            ? failure(MbError.NO_COMMON_VERSION, 'No common mobilebackup2 protocol version')
            : response(0, { ProtocolVersion: new PlistReal(v) }),
        );
        return;
      }
      const runner = RUNNERS[name];
      if (!runner) {
        await dl.processMessage(
          failure(
            MbError.NOT_SUPPORTED,
            `${name || 'A request without MessageName'} is not supported by this simulated device`,
          ),
        );
        return;
      }
      await runRequest(name, runner, msg, device);
    }

    async function runRequest(
      name: string,
      runner: RequestRunner,
      req: PlistDict,
      dev: SimDeviceApi,
    ): Promise<void> {
      const workDir = path.join(dev.stateDir, 'backup-work', randomUUID());
      await fsp.mkdir(workDir, { recursive: true });
      let cancelled = false;
      const unobserve = dev.observeNotification(SYNC_CANCEL_NOTIFICATION, () => {
        cancelled = true;
        log('cancel-requested', { name });
      });
      dl.dropAfterBytes = dev.faults.dropAfterBytes;
      const ctx: SessionContext = {
        dl,
        device: dev,
        store,
        workDir,
        passcodeTimeoutMs: opts.passcodeTimeoutMs ?? DEFAULT_PASSCODE_TIMEOUT_MS,
        cancelled: () => cancelled,
        encryption: (encryption ??= opts.encryption ?? new SimBackupEncryption(dev.stateDir)),
      };
      try {
        if (name === 'Backup' && dev.faults.staleSnapshot === true && dev.snapshotLeft) {
          throw new BackupFailure(
            MbError.SNAPSHOT_EXISTS,
            'Failed to create snapshot: File exists (17) at path "/private/var"',
          );
        }
        const content = await runner(ctx, req);
        await dl.processMessage(response(0, content !== undefined ? { Content: content } : {}));
        log('done', { name });
      } catch (err) {
        if (err instanceof BackupFailure) {
          log('failed', { name, errorCode: err.errorCode, description: err.message });
          await dl.processMessage(failure(err.errorCode, err.message));
          return;
        }
        if (
          err instanceof ConnectionDropped ||
          isMooringError(err, 'CLOSED') ||
          isMooringError(err, 'TIMEOUT')
        ) {
          if (name === 'Backup' && dev.faults.staleSnapshot === true) {
            dev.snapshotLeft = true;
            log('snapshot-left', { reason: (err as Error).message });
          }
          throw err;
        }
        // The host broke the protocol (malformed reply, oversized stream…): say so, then hang up.
        log('failed', { name, error: (err as Error).message });
        await dl
          .processMessage(
            failure(MbError.BAD_BACKUP, `The operation failed: ${(err as Error).message}`),
          )
          .catch(() => undefined);
        throw err;
      } finally {
        unobserve();
        await fsp.rm(workDir, { recursive: true, force: true });
      }
    }
  };
}
