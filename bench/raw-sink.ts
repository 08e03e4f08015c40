/**
 * The ceiling for the throughput bench: a minimal backup host that drives mobilebackup2 through
 * our own protocol layers (lockdown session + TLS, Device Link, the file-stream decoder) but keeps
 * nothing. Every uploaded byte is decoded and dropped; folder requests are answered "done"; the
 * previous-backup files the device asks for are answered "not found", so it always runs a full
 * backup. No notification proxy, no sync lock, no Info.plist, no disk: what is left is the
 * transport, the crypto and the framing, which every real host pays too.
 *
 * With `--previous DIR` (a backup folder: its Status.plist, Manifest.plist and Manifest.db) it
 * sends those files when the device asks for them and does not ask for a full backup, so the
 * device runs an incremental against that backup: the floor of an incremental for any host, the
 * device's and the protocol's part of it (bench/incremental.ts). DIR is only read.
 *
 * Run as its own process (so its CPU and memory are its own):
 *   node --import tsx bench/raw-sink.ts --udid U (--usbmuxd ADDR | --host H:PORT --usbmuxd ADDR)
 *     [--previous DIR]
 * The pair record comes from the usbmuxd (as `mooring backup` finds it). Prints one JSON line.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import {
  DL_EMPTY_PARAMETER,
  DL_MULTI_STATUS_CODE,
  DL_MULTI_STATUS_TEXT,
  DlFileCode,
  DlFileStreamDecoder,
  dlMultiStatusPayload,
  NOT_BUFFERED,
  encodeDlErrorBlock,
  encodeDlDataBlocks,
  encodeDlPath,
  encodeDlSuccessBlock,
  encodeDlStreamEnd,
  normalizeDlStatusCode,
  type DlFileError,
} from '../src/protocol/device-link';
import { DeviceSession, TcpEndpoint, UsbmuxEndpoint, type DeviceEndpoint } from '../src/lockdown';
import { findPairRecord } from '../src/lockdown/pair-records';
import { MobileBackup2Client } from '../src/services/mobilebackup2/client';
import { UsbmuxdClient } from '../src/transport/usbmuxd-client';
import { parseUsbmuxdAddress } from '../src/transport/usbmuxd-address';

const ENOENT_CODE = -6; // what hosts answer for a missing file (errno-mapped)

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function endpointFor(mux: UsbmuxdClient, udid: string): Promise<DeviceEndpoint> {
  const host = arg('host');
  if (host) {
    const i = host.lastIndexOf(':');
    return new TcpEndpoint({
      udid,
      host: host.slice(0, i),
      lockdownPort: Number(host.slice(i + 1)),
    });
  }
  const d = (await mux.listDevices()).find((x) => x.udid === udid);
  if (!d) throw new Error(`usbmuxd does not list ${udid}`);
  return new UsbmuxEndpoint(mux, d.deviceId, d.udid, 'usb');
}

/**
 * The file of `previous` the device asks for as `<udid>/<name>`, or undefined: only a plain name
 * under the device's own folder is looked up (the device's paths are not trusted, even here).
 */
async function previousFile(
  previous: string | undefined,
  udid: string,
  devicePath: string,
): Promise<Buffer | undefined> {
  if (previous === undefined) return undefined;
  const [folder, name, ...rest] = devicePath.split('/');
  if (folder !== udid || name === undefined || rest.length > 0 || !/^[\w.-]+$/.test(name)) {
    return undefined;
  }
  if (name === '.' || name === '..') return undefined;
  return fsp.readFile(path.join(previous, name)).catch(() => undefined);
}

async function main(): Promise<void> {
  const udid = arg('udid');
  const muxAddr = arg('usbmuxd');
  const previous = arg('previous');
  if (!udid || !muxAddr)
    throw new Error('usage: raw-sink --udid U --usbmuxd ADDR [--host H:P] [--previous DIR]');
  const address = parseUsbmuxdAddress(muxAddr);
  if (!address) throw new Error(`--usbmuxd: "${muxAddr}" is not an address`);
  const mux = new UsbmuxdClient({ address });
  const found = await findPairRecord(udid, { usbmuxd: mux });
  if (!found) throw new Error(`no pair record for ${udid}`);
  const t0 = process.hrtime.bigint();
  const session = await DeviceSession.open(await endpointFor(mux, udid), found.record, {
    label: 'raw-sink',
  });
  const mb2 = await MobileBackup2Client.start(session, { timeoutMs: 60_000 });
  const dl = mb2.deviceLink;
  await dl.sendProcessMessage({
    MessageName: 'Backup',
    TargetIdentifier: udid,
    SourceIdentifier: udid,
    Options: previous === undefined ? { ForceFullBackup: true } : {},
  });
  let bytes = 0;
  let files = 0;
  let errorCode: number | undefined;
  loop: for (;;) {
    const m = await dl.receive(600_000);
    switch (m.type) {
      case 'DownloadFiles': {
        const failed = new Map<string, DlFileError>();
        for (const p of m.paths) {
          const data = await previousFile(previous, udid, p);
          if (data !== undefined) {
            // As `mooring backup` sends a file (backup/file-streams): a write per MiB.
            await dl.writeRaw(encodeDlPath(p));
            for (let off = 0; off < data.length; off += 1 << 20) {
              await dl.writeRaw(encodeDlDataBlocks(data.subarray(off, off + (1 << 20))));
            }
            await dl.writeRaw(encodeDlSuccessBlock());
            continue;
          }
          await dl.writeRaw(encodeDlPath(p));
          await dl.writeRaw(
            encodeDlErrorBlock(DlFileCode.LOCAL_ERROR, 'No such file or directory'),
          );
          failed.set(p, { code: ENOENT_CODE, text: 'No such file or directory' });
        }
        await dl.writeRaw(encodeDlStreamEnd());
        if (failed.size === 0) await dl.sendStatusResponse(0, undefined, {});
        else {
          await dl.sendStatusResponse(
            DL_MULTI_STATUS_CODE,
            DL_MULTI_STATUS_TEXT,
            dlMultiStatusPayload(failed),
          );
        }
        break;
      }
      case 'UploadFiles': {
        // Read as `mooring backup` reads (backup/file-streams): whole elements already received
        // without an await, a data block's payload in the pieces it arrived in.
        const dec = new DlFileStreamDecoder(dl.reader, { timeoutMs: 60_000 });
        for (;;) {
          const first = dec.readPathNow();
          if ((first === NOT_BUFFERED ? await dec.readPath() : first) === null) break;
          if (dec.readRequiredPathNow() === NOT_BUFFERED) await dec.readRequiredPath();
          for (;;) {
            const now = dec.readBlockHeadNow();
            const b = now === NOT_BUFFERED ? await dec.readBlockHead() : now;
            if (b.kind !== 'data') break;
            while (dec.dataLeft > 0) bytes += (dec.readDataNow() ?? (await dec.readData())).length;
          }
          files++;
        }
        await dl.sendStatusResponse(0, undefined, {});
        break;
      }
      case 'GetFreeDiskSpace':
        await dl.sendStatusResponse(0, undefined, 1e12);
        break;
      case 'ContentsOfDirectory':
        await dl.sendStatusResponse(0, undefined, {});
        break;
      case 'CreateDirectory':
        await dl.sendStatusResponse(0, undefined, DL_EMPTY_PARAMETER);
        break;
      case 'MoveItems':
      case 'RemoveItems':
      case 'CopyItem':
        await dl.sendStatusResponse(0, undefined, {});
        break;
      case 'ProcessMessage':
        errorCode = normalizeDlStatusCode(m.message.ErrorCode ?? 0);
        break loop;
      case 'Disconnect':
        break loop;
      default:
        await dl.sendStatusResponse(-1, 'Operation not supported', {});
    }
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  await mb2.deviceLink.disconnect();
  await session.close();
  console.log(JSON.stringify({ ok: errorCode === 0, errorCode, bytes, files, seconds }));
  if (errorCode !== 0) process.exitCode = 1;
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
