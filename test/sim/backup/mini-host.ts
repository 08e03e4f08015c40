/**
 * A small mobilebackup2 host for exercising the simulated device in-process: it plays the host
 * side of the Device Link loop the way idevicebackup2 1.3.0 does (reference §4.4, §10) over a real
 * socket, against a real backup folder, with knobs for hostile or unusual replies. Test-only.
 */
import { promises as fsp, createReadStream } from 'node:fs';
import path from 'node:path';
import {
  DL_EMPTY_PARAMETER,
  DL_MULTI_STATUS_CODE,
  DL_MULTI_STATUS_TEXT,
  DlFileCode,
  DlFileStreamDecoder,
  dlMultiStatusPayload,
  dlProcessMessage,
  dlStatusResponse,
  dlVersionsOk,
  encodeDlDataBlock,
  encodeDlErrorBlock,
  encodeDlPath,
  encodeDlStreamEnd,
  encodeDlSuccessBlock,
  parseDeviceDlMessage,
  type DlFileError,
} from '../../../src/protocol/device-link';
import { PlistReal, type PlistDict, type PlistValue } from '../../../src/protocol/plist';
import type { PlistConnection } from '../../../src/transport/plist-connection';

export interface MiniHostOptions {
  root: string;
  freeSpace?: number;
  /** Replace the reply to one device message type (hostile host). */
  tamper?: (type: string) => PlistValue | Buffer | undefined;
  /** Raw bytes to send instead of the DownloadFiles stream + status (hostile host). */
  downloadOverride?: (paths: string[]) => Buffer | undefined;
  /** Called for every device message (before it is answered). */
  onMessage?: (type: string, msg: unknown) => void;
}

export interface RequestResult {
  result: PlistDict;
  messages: string[];
  uploaded: string[];
  purges: number;
}

export class MiniHost {
  messages: string[] = [];
  uploaded: string[] = [];
  purges = 0;

  constructor(
    readonly conn: PlistConnection,
    readonly opts: MiniHostOptions,
  ) {}

  async handshake(versions: number[] = [2.0, 2.1]): Promise<PlistDict> {
    const vx = parseDeviceDlMessage(await this.conn.receive(5000));
    if (vx.type !== 'VersionExchange') throw new Error(`expected version exchange, got ${vx.type}`);
    await this.conn.send(dlVersionsOk(400), 'binary');
    const ready = parseDeviceDlMessage(await this.conn.receive(5000));
    if (ready.type !== 'DeviceReady') throw new Error(`expected DeviceReady, got ${ready.type}`);
    await this.conn.send(
      dlProcessMessage({
        MessageName: 'Hello',
        SupportedProtocolVersions: versions.map((v) => new PlistReal(v)),
      }),
      'binary',
    );
    return this.readFinal();
  }

  async request(name: string, extra: PlistDict = {}): Promise<RequestResult> {
    this.messages = [];
    this.uploaded = [];
    this.purges = 0;
    await this.conn.send(dlProcessMessage({ MessageName: name, ...extra }), 'binary');
    const result = await this.loop();
    return { result, messages: this.messages, uploaded: this.uploaded, purges: this.purges };
  }

  async disconnect(): Promise<void> {
    await this.conn.send(['DLMessageDisconnect', DL_EMPTY_PARAMETER], 'binary');
  }

  private async readFinal(): Promise<PlistDict> {
    const m = parseDeviceDlMessage(await this.conn.receive(5000));
    if (m.type !== 'ProcessMessage') throw new Error(`expected ProcessMessage, got ${m.type}`);
    return m.message;
  }

  /** Confines a device path to the backup root (what every host must do). */
  private local(p: string): string {
    const full = path.resolve(this.opts.root, p);
    if (path.isAbsolute(p) || !full.startsWith(this.opts.root + path.sep)) {
      throw new Error(`device path escapes the backup root: ${p}`);
    }
    return full;
  }

  private async status(
    type: string,
    code: number,
    text?: string,
    payload?: PlistValue,
  ): Promise<void> {
    const t = this.opts.tamper?.(type);
    if (Buffer.isBuffer(t)) return this.conn.writeRaw(t);
    await this.conn.send(t !== undefined ? t : dlStatusResponse(code, text, payload), 'binary');
  }

  private async loop(): Promise<PlistDict> {
    while (true) {
      const m = parseDeviceDlMessage(await this.conn.receive(30_000));
      this.messages.push(m.type);
      this.opts.onMessage?.(m.type, m);
      switch (m.type) {
        case 'ProcessMessage':
          return m.message;
        case 'Disconnect':
          throw new Error('device disconnected');
        case 'DownloadFiles':
          await this.sendFiles(m.paths);
          break;
        case 'UploadFiles':
          await this.receiveFiles();
          await this.status('UploadFiles', 0);
          break;
        case 'GetFreeDiskSpace':
          await this.status(
            'GetFreeDiskSpace',
            0,
            undefined,
            this.opts.freeSpace ?? 500 * 1024 ** 3,
          );
          break;
        case 'PurgeDiskSpace':
          this.purges++;
          await this.status('PurgeDiskSpace', -1, 'Operation not supported');
          break;
        case 'ContentsOfDirectory': {
          const out: PlistDict = {};
          const dir = this.local(m.path);
          for (const name of await fsp.readdir(dir).catch(() => [] as string[])) {
            const st = await fsp.stat(path.join(dir, name));
            out[name] = {
              DLFileType: st.isDirectory() ? 'DLFileTypeDirectory' : 'DLFileTypeRegular',
              DLFileSize: st.size,
              DLFileModificationDate: st.mtime,
            };
          }
          await this.status('ContentsOfDirectory', 0, undefined, out);
          break;
        }
        case 'CreateDirectory':
          await fsp.mkdir(this.local(m.path), { recursive: true });
          await this.status('CreateDirectory', 0, undefined, DL_EMPTY_PARAMETER);
          break;
        case 'MoveItems':
          for (const [from, to] of m.moves) {
            await fsp.rm(this.local(to), { recursive: true, force: true });
            await fsp.rename(this.local(from), this.local(to));
          }
          await this.status('MoveItems', 0);
          break;
        case 'RemoveItems':
          for (const p of m.paths) await fsp.rm(this.local(p), { recursive: true, force: true });
          await this.status('RemoveItems', 0);
          break;
        default:
          throw new Error(`unexpected device message ${m.type}`);
      }
    }
  }

  /** Like LIMD: stream each file; on the first missing one send an error block and skip the rest. */
  private async sendFiles(paths: string[]): Promise<void> {
    const raw = this.opts.downloadOverride?.(paths);
    if (raw) return this.conn.writeRaw(raw);
    const errors = new Map<string, DlFileError>();
    for (const p of paths) {
      await this.conn.writeRaw(encodeDlPath(p));
      let st;
      try {
        st = await fsp.stat(this.local(p));
      } catch {
        st = undefined;
      }
      if (!st?.isFile()) {
        await this.conn.writeRaw(
          encodeDlErrorBlock(DlFileCode.LOCAL_ERROR, 'No such file or directory'),
        );
        errors.set(p, { code: -6, text: 'No such file or directory' });
        break;
      }
      for await (const chunk of createReadStream(this.local(p), { highWaterMark: 32 * 1024 })) {
        await this.conn.writeRaw(encodeDlDataBlock(chunk as Buffer));
      }
      await this.conn.writeRaw(encodeDlSuccessBlock());
    }
    await this.conn.writeRaw(encodeDlStreamEnd());
    if (errors.size > 0) {
      await this.status(
        'DownloadFiles',
        DL_MULTI_STATUS_CODE,
        DL_MULTI_STATUS_TEXT,
        dlMultiStatusPayload(errors),
      );
    } else {
      await this.status('DownloadFiles', 0);
    }
  }

  private async receiveFiles(): Promise<void> {
    const dec = new DlFileStreamDecoder(this.conn.reader, { timeoutMs: 10_000 });
    while (true) {
      const devicePath = await dec.readPath('device path');
      if (devicePath === null) return;
      const hostPath = await dec.readRequiredPath('host path');
      const fh = await fsp.open(this.local(hostPath), 'w');
      try {
        while (true) {
          const b = await dec.readBlock();
          if (b.kind === 'data') await fh.write(b.data);
          else break;
        }
      } finally {
        await fh.close();
      }
      this.uploaded.push(hostPath);
    }
  }
}
