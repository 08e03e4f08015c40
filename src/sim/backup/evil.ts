/**
 * Hostile-device behaviours (SimFaults.evil), injected where a backup uploads its first payload
 * batch. They exist to prove hosts refuse what a compromised or buggy phone could send; a host that
 * survives them must neither write outside its backup folder nor hang nor crash.
 */
import { dlUploadFiles, encodeDlPath, DlFileCode } from '../../protocol/device-link';
import { isMooringError } from '../../util/errors';
import type { SimFaults } from '../contracts';
import { BackupFailure, ConnectionDropped, MbError } from './errors';
import type { SessionContext } from './session';

/** How long the device lingers for the host to hang up after a hostile frame. */
export const EVIL_LINGER_MS = 30_000;

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0, 0);
  return b;
}

/** Reads and discards until the host closes (or the linger time is over), then drops the link. */
async function lingerThenDrop(ctx: SessionContext, what: string): Promise<never> {
  const deadline = Date.now() + EVIL_LINGER_MS;
  try {
    while (Date.now() < deadline)
      await ctx.dl.conn.reader.readSome(1 << 16, deadline - Date.now(), 'host reaction');
  } catch (err) {
    if (!isMooringError(err)) throw err;
  }
  ctx.dl.conn.stream.destroy();
  throw new ConnectionDropped(`fault injection (${what}) finished`);
}

export async function runEvilUpload(
  ctx: SessionContext,
  mode: NonNullable<SimFaults['evil']>,
): Promise<void> {
  const { udid } = ctx.device;
  const conn = ctx.dl.conn;
  ctx.device.log('mobilebackup2.evil', { mode });
  switch (mode) {
    case 'path-escape': {
      const data = Buffer.from('written by an evil device\n');
      const r = await ctx.dl.uploadFiles(
        [
          {
            devicePath: '/var/tmp/evil.1',
            hostPath: `${udid}/../../mooring-escape-${udid}.txt`,
            source: { kind: 'buffer', data },
          },
          {
            devicePath: '/var/tmp/evil.2',
            hostPath: `/tmp/mooring-escape-${udid}.txt`,
            source: { kind: 'buffer', data },
          },
        ],
        0,
        data.length * 2,
      );
      if (r.code !== 0) {
        throw new BackupFailure(
          MbError.UPLOAD_FAILED,
          `Multiple errors uploading files (host refused: ${r.text ?? r.code})`,
        );
      }
      ctx.device.log('mobilebackup2.evil-accepted', { mode });
      return;
    }
    case 'oversized-frame':
      // A plist frame header announcing almost 4 GiB.
      await conn.writeRaw(
        Buffer.concat([u32(0xffff_fff0), Buffer.from('bplist00'), Buffer.alloc(24)]),
      );
      return lingerThenDrop(ctx, mode);
    case 'bad-plist': {
      const body = Buffer.concat([
        Buffer.from('bplist00'),
        Buffer.from([0xd1, 0x01, 0x02]),
        Buffer.alloc(29, 0xff),
      ]);
      await conn.writeRaw(Buffer.concat([u32(body.length), body]));
      return lingerThenDrop(ctx, mode);
    }
    case 'truncated-stream': {
      await ctx.dl.send(dlUploadFiles(0, 65_536));
      await conn.writeRaw(
        Buffer.concat([
          encodeDlPath('/var/tmp/evil.3'),
          encodeDlPath(`${udid}/Snapshot/truncated-by-evil-device`),
          u32(65_537),
          Buffer.from([DlFileCode.FILE_DATA]),
          Buffer.alloc(1000, 0x41),
        ]),
      );
      conn.stream.end(); // the block promised 64 KiB; the stream ends after 1000 bytes
      return lingerThenDrop(ctx, mode);
    }
    case 'huge-filename':
      await ctx.dl.send(dlUploadFiles(0, 0));
      await conn.writeRaw(Buffer.concat([u32(0xffff_ff00), Buffer.from('/var/tmp/evil')]));
      return lingerThenDrop(ctx, mode);
  }
}
