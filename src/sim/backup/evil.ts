/**
 * Hostile-device behaviours (SimFaults.evil). They exist to prove hosts refuse what a compromised
 * or buggy phone could send; a host that survives them must neither write (or read) outside its
 * backup folder nor hang nor crash nor let memory grow with a length the device announces.
 *
 * Two injection points: the handshake modes (`version-*`, `hello-*`) take over a mobilebackup2
 * connection before (or right after) the Device Link version exchange; every other mode runs where
 * a backup uploads its first payload batch, once the host's DeviceLink loop is under way.
 */
import {
  dlContentsOfDirectory,
  dlCopyItem,
  dlCreateDirectory,
  dlDeviceReady,
  dlMoveItems,
  dlRemoveItems,
  dlUploadFiles,
  dlVersionExchange,
  encodeDlPath,
  DlFileCode,
  type DlArray,
} from '../../protocol/device-link';
import { encodeBinaryPlist } from '../../protocol/plist';
import { isMooringError } from '../../util/errors';
import type { EvilMode, SimDeviceApi } from '../contracts';
import type { DeviceLinkPeer } from './dl-peer';
import { DEVICE_DL_VERSION } from './dl-peer';
import { BackupFailure, ConnectionDropped, MbError } from './errors';
import type { SessionContext } from './session';

/** The modes that misbehave before any backup starts: the DL version exchange and Hello. */
const HANDSHAKE_EVIL_MODES = [
  'version-wrong-shape',
  'version-wrong-name',
  'version-huge-frame',
  'version-slow',
  'version-silent',
  'hello-wrong-shape',
  'hello-wrong-type',
  'hello-out-of-step',
] as const satisfies readonly EvilMode[];

/** Every mode, for `ctl fault evil <mode>` and the hostile-device tests. */
export const EVIL_MODES = [
  // paths
  'path-escape',
  'dl-escape',
  'symlink-escape',
  'long-names',
  // length prefixes of gigabytes
  'oversized-frame',
  'huge-filename',
  'huge-block',
  // plists
  'bad-plist',
  'deep-plist',
  'cyclic-plist',
  'plist-huge-count',
  // streams that never end
  'truncated-stream',
  'slow-frame',
  'slow-block',
  'endless-messages',
  // wrong message shapes during the DeviceLink loop
  'dl-wrong-arity',
  'dl-wrong-type',
  'dl-not-array',
  'dl-empty-array',
  'dl-too-many-elements',
  'final-wrong-type',
  // the handshake: DL version exchange and Hello
  ...HANDSHAKE_EVIL_MODES,
] as const satisfies readonly EvilMode[];

/** How long the device lingers for the host to hang up after a hostile frame. */
export const EVIL_LINGER_MS = 30_000;
/** A trickling device sends one byte this often (well inside any per-read timeout). */
export const EVIL_TRICKLE_MS = 250;
/** The folder name `symlink-escape` goes through; the test plants `<udid>/evil-link` as a symlink. */
export const EVIL_SYMLINK_NAME = 'evil-link';
/** Nesting of the `deep-plist` document (arrays inside arrays). */
export const EVIL_DEEP_LEVELS = 100_000;
/** Bytes sent after an impossible length prefix (a host that believed it would buffer them). */
export const EVIL_FLOOD_BYTES = 256 * 1024 * 1024;
/** Messages `endless-messages` sends at most (the host must give up long before). */
export const EVIL_ENDLESS_LIMIT = 1_000_000;

const HANDSHAKE_MODES: ReadonlySet<EvilMode> = new Set<EvilMode>(HANDSHAKE_EVIL_MODES);

export function isHandshakeEvil(mode: EvilMode | undefined): mode is EvilMode {
  return mode !== undefined && HANDSHAKE_MODES.has(mode);
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0, 0);
  return b;
}

function frame(body: Buffer): Buffer {
  return Buffer.concat([u32(body.length), body]);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A binary plist from raw object bytes: offsets computed, 32-byte trailer (Apple's layout). */
function rawBplist(
  objects: Buffer[],
  refSize: number,
  trailer: { numObjects?: bigint } = {},
): Buffer {
  const header = Buffer.from('bplist00');
  const offsets: number[] = [];
  let at = header.length;
  for (const o of objects) {
    offsets.push(at);
    at += o.length;
  }
  const offsetSize = at < 256 ? 1 : at < 65_536 ? 2 : 4;
  const table = Buffer.alloc(offsets.length * offsetSize);
  offsets.forEach((o, i) => table.writeUIntBE(o, i * offsetSize, offsetSize));
  const t = Buffer.alloc(32);
  t[6] = offsetSize;
  t[7] = refSize;
  t.writeBigUInt64BE(trailer.numObjects ?? BigInt(objects.length), 8);
  t.writeBigUInt64BE(0n, 16); // top object
  t.writeBigUInt64BE(BigInt(at), 24);
  return Buffer.concat([header, ...objects, table, t]);
}

/** `[[[[…]]]]` EVIL_DEEP_LEVELS deep: each array holds a reference to the next. */
function deepPlist(): Buffer {
  const objects: Buffer[] = [];
  for (let i = 0; i < EVIL_DEEP_LEVELS; i++) {
    const o = Buffer.alloc(5);
    o[0] = 0xa1; // array of one
    o.writeUInt32BE(i + 1, 1);
    objects.push(o);
  }
  objects.push(Buffer.from([0x08])); // false, at the bottom
  return rawBplist(objects, 4);
}

/** An array whose only element is itself, and a dict whose value points back to the array. */
function cyclicPlist(): Buffer {
  return rawBplist(
    [
      Buffer.from([0xa2, 0x00, 0x01]), // [ <self>, <dict> ]
      Buffer.from([0xd1, 0x02, 0x00]), // { "k": <the array> }
      Buffer.from([0x51, 0x6b]), // "k"
    ],
    1,
  );
}

/** Three real objects, but a trailer claiming 2^40 of them (an offset table of terabytes). */
function hugeCountPlist(): Buffer {
  return rawBplist([Buffer.from([0xa0])], 1, { numObjects: 1n << 40n });
}

/** Reads and discards until the host closes (or the linger time is over), then drops the link. */
async function lingerThenDrop(dl: DeviceLinkPeer, what: string): Promise<never> {
  const deadline = Date.now() + EVIL_LINGER_MS;
  try {
    while (Date.now() < deadline)
      await dl.conn.reader.readSome(1 << 16, deadline - Date.now(), 'host reaction');
  } catch (err) {
    if (!isMooringError(err)) throw err;
  }
  dl.conn.stream.destroy();
  throw new ConnectionDropped(`fault injection (${what}) finished`);
}

/**
 * After an impossible length prefix: a flood of bytes as fast as the host takes them (up to
 * EVIL_FLOOD_BYTES), so a host that believed the prefix and kept reading would show it in memory.
 */
async function floodThenDrop(dl: DeviceLinkPeer, what: string): Promise<never> {
  const chunk = Buffer.alloc(1 << 20, 0x41);
  const deadline = Date.now() + EVIL_LINGER_MS;
  let timer: NodeJS.Timeout | undefined;
  const timeUp = new Promise<'time'>((r) => (timer = setTimeout(() => r('time'), EVIL_LINGER_MS)));
  let sent = 0;
  try {
    while (sent < EVIL_FLOOD_BYTES && Date.now() < deadline) {
      const r = await Promise.race([dl.conn.writeRaw(chunk), timeUp]);
      if (r === 'time') break;
      sent += chunk.length;
    }
  } catch (err) {
    if (!isMooringError(err)) throw err; // the host hung up: what we want
  } finally {
    clearTimeout(timer);
  }
  return lingerThenDrop(dl, what);
}

/** Sends `bytes` one at a time, EVIL_TRICKLE_MS apart, until the host hangs up or the linger ends. */
async function trickle(dl: DeviceLinkPeer, bytes: Buffer, what: string): Promise<never> {
  const stream = dl.conn.stream;
  let closed = false;
  stream.once('close', () => (closed = true));
  stream.once('error', () => (closed = true));
  dl.conn.reader.readSome(1, EVIL_LINGER_MS, 'host reaction').then(
    () => undefined,
    () => (closed = true),
  );
  const deadline = Date.now() + EVIL_LINGER_MS;
  for (let i = 0; !closed && Date.now() < deadline; i++) {
    const b = bytes[i % bytes.length]!;
    await dl.conn.writeRaw(Buffer.from([b])).catch(() => (closed = true));
    await sleep(EVIL_TRICKLE_MS);
  }
  stream.destroy();
  throw new ConnectionDropped(`fault injection (${what}) finished`);
}

/** Sends DL requests the host must refuse; logs each reply; gives up the way a device does. */
async function refusedCalls(
  ctx: SessionContext,
  mode: EvilMode,
  calls: Array<[what: string, msg: DlArray]>,
): Promise<never> {
  const accepted: string[] = [];
  for (const [what, msg] of calls) {
    const r = await ctx.dl.call(msg);
    ctx.device.log('mobilebackup2.evil-reply', { mode, what, code: r.code });
    if (r.code === 0) accepted.push(what);
  }
  if (accepted.length > 0) ctx.device.log('mobilebackup2.evil-accepted', { mode, accepted });
  throw new BackupFailure(
    MbError.UPLOAD_FAILED,
    `Multiple errors uploading files (host refused ${calls.length - accepted.length} of ${calls.length})`,
  );
}

/** Asks the host for files it must not hand out; logs what (if anything) came back. */
async function exfiltrate(ctx: SessionContext, mode: EvilMode, paths: string[]): Promise<void> {
  const got: string[] = [];
  const out = await ctx.dl.downloadFiles(paths, 0, async (p) => ({
    maxBytes: 1 << 20,
    write: async () => {
      got.push(p);
    },
    done: async () => undefined,
    fail: async () => undefined,
  }));
  ctx.device.log('mobilebackup2.evil-download', {
    mode,
    received: [...out.received],
    dataFor: [...new Set(got)],
  });
  if (out.received.size > 0 || got.length > 0)
    ctx.device.log('mobilebackup2.evil-accepted', { mode, read: [...new Set(got)] });
}

/** Uploads one small file per host path; returns the host's status code. */
async function uploadTo(ctx: SessionContext, hostPaths: string[]): Promise<number> {
  const data = Buffer.from('written by an evil device\n');
  const r = await ctx.dl.uploadFiles(
    hostPaths.map((hostPath, i) => ({
      devicePath: `/var/tmp/evil.${i}`,
      hostPath,
      source: { kind: 'buffer' as const, data },
    })),
    0,
    data.length * hostPaths.length,
  );
  return r.code;
}

export async function runEvilUpload(ctx: SessionContext, mode: EvilMode): Promise<void> {
  const { udid } = ctx.device;
  const dl = ctx.dl;
  const conn = dl.conn;
  ctx.device.log('mobilebackup2.evil', { mode });
  switch (mode) {
    case 'path-escape': {
      const code = await uploadTo(ctx, [
        `${udid}/../../mooring-escape-${udid}.txt`,
        `/tmp/mooring-escape-${udid}.txt`,
      ]);
      if (code !== 0) {
        throw new BackupFailure(
          MbError.UPLOAD_FAILED,
          `Multiple errors uploading files (host refused: ${code})`,
        );
      }
      ctx.device.log('mobilebackup2.evil-accepted', { mode });
      return;
    }
    case 'dl-escape':
      await exfiltrate(ctx, mode, [
        `${udid}/../../canary/secret.txt`,
        '/etc/passwd',
        `${udid}/../${udid}/../../canary/secret.txt`,
      ]);
      return refusedCalls(ctx, mode, [
        ['CreateDirectory ..', dlCreateDirectory(`${udid}/../../mooring-evil-dir`)],
        ['CreateDirectory absolute', dlCreateDirectory(`/tmp/mooring-evil-dir-${udid}`)],
        ['ContentsOfDirectory ..', dlContentsOfDirectory(`${udid}/../..`)],
        ['MoveItems out', dlMoveItems({ [`${udid}/Status.plist`]: `${udid}/../../moved.plist` })],
        ['MoveItems in', dlMoveItems({ [`${udid}/../../canary/secret.txt`]: `${udid}/stolen` })],
        ['RemoveItems ..', dlRemoveItems([`${udid}/../../canary`])],
        ['RemoveItems absolute', dlRemoveItems(['/tmp'])],
        ['CopyItem in', dlCopyItem('/etc/passwd', `${udid}/passwd`)],
        ['CopyItem out', dlCopyItem(`${udid}/Status.plist`, `${udid}/../../copied.plist`)],
      ]);
    case 'symlink-escape': {
      const link = `${udid}/${EVIL_SYMLINK_NAME}`;
      await exfiltrate(ctx, mode, [`${link}/secret.txt`]);
      const code = await uploadTo(ctx, [`${link}/planted.txt`]);
      ctx.device.log('mobilebackup2.evil-reply', { mode, what: 'UploadFiles', code });
      return refusedCalls(ctx, mode, [
        ['CreateDirectory', dlCreateDirectory(`${link}/made-by-evil`)],
        ['ContentsOfDirectory', dlContentsOfDirectory(link)],
        ['MoveItems into', dlMoveItems({ [`${udid}/Status.plist`]: `${link}/moved.plist` })],
        ['MoveItems out of', dlMoveItems({ [`${link}/secret.txt`]: `${udid}/stolen.txt` })],
        ['CopyItem out of', dlCopyItem(`${link}/secret.txt`, `${udid}/copied.txt`)],
        ['CopyItem the link', dlCopyItem(link, `${udid}/copied-dir`)],
        ['RemoveItems inside', dlRemoveItems([`${link}/secret.txt`])],
      ]);
    }
    case 'long-names': {
      const code = await uploadTo(ctx, [
        `${udid}/Snapshot/${'n'.repeat(300)}`, // longer than NAME_MAX
        `${udid}/${Array.from({ length: 40 }, (_, i) => `d${i}`).join('/')}`, // too deep
      ]);
      ctx.device.log('mobilebackup2.evil-reply', { mode, what: 'UploadFiles', code });
      // A path past every bound, in a DL message: the host stops reading us.
      await dl.send([
        'DLMessageCreateDirectory',
        `${udid}/${'x/'.repeat(3000)}`,
      ] as unknown as DlArray);
      return lingerThenDrop(dl, mode);
    }
    case 'oversized-frame':
      // A plist frame header announcing almost 4 GiB.
      await conn.writeRaw(
        Buffer.concat([u32(0xffff_fff0), Buffer.from('bplist00'), Buffer.alloc(24)]),
      );
      return floodThenDrop(dl, mode);
    case 'huge-filename':
      await dl.send(dlUploadFiles(0, 0));
      await conn.writeRaw(Buffer.concat([u32(0xffff_ff00), Buffer.from('/var/tmp/evil')]));
      return floodThenDrop(dl, mode);
    case 'huge-block':
      await dl.send(dlUploadFiles(0, 0));
      await conn.writeRaw(
        Buffer.concat([
          encodeDlPath('/var/tmp/evil.4'),
          encodeDlPath(`${udid}/Snapshot/huge-block-by-evil-device`),
          u32(0xffff_fff0),
          Buffer.from([DlFileCode.FILE_DATA]),
          Buffer.alloc(4096, 0x41),
        ]),
      );
      return floodThenDrop(dl, mode);
    case 'bad-plist': {
      const body = Buffer.concat([
        Buffer.from('bplist00'),
        Buffer.from([0xd1, 0x01, 0x02]),
        Buffer.alloc(29, 0xff),
      ]);
      await conn.writeRaw(frame(body));
      return lingerThenDrop(dl, mode);
    }
    case 'deep-plist':
      await conn.writeRaw(frame(deepPlist()));
      return lingerThenDrop(dl, mode);
    case 'cyclic-plist':
      await conn.writeRaw(frame(cyclicPlist()));
      return lingerThenDrop(dl, mode);
    case 'plist-huge-count':
      await conn.writeRaw(frame(hugeCountPlist()));
      return lingerThenDrop(dl, mode);
    case 'truncated-stream': {
      await dl.send(dlUploadFiles(0, 65_536));
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
      return lingerThenDrop(dl, mode);
    }
    case 'slow-frame':
      // A 1 KiB frame announced, then its body one byte at a time, never finishing in time.
      await conn.writeRaw(u32(1024));
      return trickle(dl, Buffer.from('bplist00'), mode);
    case 'slow-block':
      await dl.send(dlUploadFiles(0, 65_536));
      await conn.writeRaw(
        Buffer.concat([
          encodeDlPath('/var/tmp/evil.5'),
          encodeDlPath(`${udid}/Snapshot/slow-block-by-evil-device`),
          u32(65_537),
          Buffer.from([DlFileCode.FILE_DATA]),
        ]),
      );
      return trickle(dl, Buffer.from('A'), mode);
    case 'endless-messages':
      // Well-formed but unknown messages, each answered by the host, for ever.
      for (let i = 0; i < EVIL_ENDLESS_LIMIT; i++) {
        const r = await dl.call(['DLMessageFrobnicate', `round ${i}`] as unknown as DlArray);
        if (i === 0) ctx.device.log('mobilebackup2.evil-reply', { mode, code: r.code });
      }
      ctx.device.log('mobilebackup2.evil-accepted', { mode });
      return;
    case 'dl-wrong-arity':
      await dl.send(['DLMessageCreateDirectory'] as unknown as DlArray);
      return lingerThenDrop(dl, mode);
    case 'dl-wrong-type':
      await dl.send(['DLMessageCreateDirectory', 42] as unknown as DlArray);
      return lingerThenDrop(dl, mode);
    case 'dl-not-array':
      await conn.send({ MessageName: 'UploadFiles', Files: 'all of them' }, 'binary');
      return lingerThenDrop(dl, mode);
    case 'dl-empty-array':
      await conn.send([], 'binary');
      return lingerThenDrop(dl, mode);
    case 'dl-too-many-elements':
      await dl.send([
        'DLMessageRemoveItems',
        ...Array.from({ length: 40 }, (_, i) => `${udid}/${i}`),
      ] as unknown as DlArray);
      return lingerThenDrop(dl, mode);
    case 'final-wrong-type':
      await dl.send(['DLMessageProcessMessage', 'ErrorCode 0, trust me'] as unknown as DlArray);
      return lingerThenDrop(dl, mode);
    default:
      throw new Error(`evil mode ${mode} runs at the handshake, not during the upload`);
  }
}

/**
 * The handshake modes: run instead of the normal mobilebackup2 session on this connection.
 * Resolves when the host gave up (or the linger time is over).
 */
export async function runEvilHandshake(
  dl: DeviceLinkPeer,
  device: SimDeviceApi,
  mode: EvilMode,
): Promise<void> {
  device.log('mobilebackup2.evil', { mode });
  const conn = dl.conn;
  try {
    switch (mode) {
      case 'version-wrong-shape':
        await dl.send(['DLMessageVersionExchange', 'three hundred', -1] as unknown as DlArray);
        return await lingerThenDrop(dl, mode);
      case 'version-wrong-name':
        await dl.send(['DLMessageFrobnicate', ...DEVICE_DL_VERSION] as unknown as DlArray);
        return await lingerThenDrop(dl, mode);
      case 'version-huge-frame':
        await conn.writeRaw(Buffer.concat([u32(0xffff_fff0), Buffer.from('bplist00')]));
        return await floodThenDrop(dl, mode);
      case 'version-slow': {
        const body = encodeBinaryPlist(dlVersionExchange(...DEVICE_DL_VERSION));
        await conn.writeRaw(u32(body.length));
        return await trickle(dl, body, mode);
      }
      case 'version-silent':
        return await lingerThenDrop(dl, mode);
      default:
        break;
    }
    // The Hello modes: a correct version exchange first.
    await dl.send(dlVersionExchange(...DEVICE_DL_VERSION));
    await conn.receive(dl.replyTimeoutMs);
    await dl.send(dlDeviceReady());
    await conn.receive(dl.replyTimeoutMs); // the host's Hello
    switch (mode) {
      case 'hello-wrong-shape':
        await dl.send(['DLMessageProcessMessage', 'Response'] as unknown as DlArray);
        break;
      case 'hello-wrong-type':
        await dl.processMessage({
          MessageName: 'Response',
          ErrorCode: 'zero',
          ProtocolVersion: 'two point one',
        });
        break;
      case 'hello-out-of-step':
        await dl.send(dlUploadFiles(0, 0));
        break;
      default:
        throw new Error(`evil mode ${mode} is not a handshake mode`);
    }
    return await lingerThenDrop(dl, mode);
  } catch (err) {
    if (err instanceof ConnectionDropped || isMooringError(err)) {
      device.log('mobilebackup2.evil-done', { mode });
      return;
    }
    throw err;
  }
}
