/**
 * The bridge inside Electron: the preload's `window.mooring` (contextBridge) already is a
 * DesktopBridge; this only checks that it is there and turns its rejections into BridgeErrors,
 * so the views handle both transports alike. Snapshot browsing goes through the same calls; a
 * file is saved by the main process (saveFile), which asks where.
 */
import type {
  AgentEvent,
  AgentService,
  DesktopBridge,
  DiffSummary,
  FilePage,
  FileQuery,
  SaveFileResult,
  SnapshotSummary,
} from '../agent/types';
import type { SnapshotSource } from './snapshot-source.js';
import { BridgeError, type BridgeMethod, type MooringBridge } from './transport.js';

declare global {
  interface Window {
    /** Set by the Electron preload; absent in a browser. */
    mooring?: DesktopBridge;
  }
}

export function ipcAvailable(w: Window): boolean {
  const m = w.mooring;
  return typeof m === 'object' && m !== null && typeof m.call === 'function';
}

/** "Error invoking remote method 'x': Error: USAGE: msg" (Electron, then the preload) → code, msg. */
export function bridgeError(e: unknown): BridgeError {
  const raw = e instanceof Error ? e.message : String(e);
  const message = raw.replace(/^Error invoking remote method '[^']*': (?:\w*Error: )?/, '');
  const coded = /^([A-Z][A-Z_]{1,40}): ([\s\S]*)$/.exec(message);
  if (coded) return new BridgeError(coded[2]!, coded[1]!);
  const code = (e as { code?: unknown }).code;
  return new BridgeError(message, typeof code === 'string' ? code : 'IPC');
}

export class IpcBridge implements MooringBridge, SnapshotSource {
  constructor(private readonly inner: DesktopBridge) {}

  async call<M extends BridgeMethod>(
    method: M,
    ...args: Parameters<AgentService[M]>
  ): Promise<Awaited<ReturnType<AgentService[M]>>> {
    try {
      return await this.inner.call(method, ...args);
    } catch (e) {
      throw bridgeError(e);
    }
  }

  onEvent(listener: (e: AgentEvent) => void): () => void {
    return this.inner.onEvent(listener);
  }

  snapshots(udid: string): Promise<SnapshotSummary[]> {
    return this.call('snapshots', udid);
  }

  files(udid: string, snapshotId: string, q: FileQuery): Promise<FilePage> {
    return this.call('files', udid, snapshotId, q);
  }

  diff(udid: string, from: string, to: string): Promise<DiffSummary> {
    return this.call('diff', udid, from, to);
  }

  async saveFile(
    udid: string,
    snapshotId: string,
    domain: string,
    relativePath: string,
  ): Promise<SaveFileResult> {
    if (typeof this.inner.saveFile !== 'function') {
      throw new BridgeError('This version of Mooring cannot save files yet.', 'UNSUPPORTED');
    }
    try {
      return await this.inner.saveFile(udid, snapshotId, domain, relativePath);
    } catch (e) {
      throw bridgeError(e);
    }
  }
}
