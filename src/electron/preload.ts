/**
 * The preload of Mooring's window: exposes `window.mooring` (MooringBridge) and nothing else.
 *
 * It runs sandboxed, where `require` knows only a few Electron modules, so it imports nothing of
 * ours at run time (types only) and repeats the channel names of ipc.ts; a test checks they
 * agree. Listeners get the AgentEvent alone, never the IpcRendererEvent (which would hand the page
 * ipcRenderer itself).
 *
 * Electron cannot run on our build machines: this file is type-checked against Electron's bundled
 * .d.ts and its compiled form is inspected by test/electron/preload.test.ts, but not executed there.
 */
import { contextBridge, ipcRenderer, type IpcRendererEvent } from 'electron';
import type { AgentEvent, DesktopBridge, SaveFileResult } from '../agent/types';

/** = ipc.ts CALL_CHANNEL */
const CALL_CHANNEL = 'mooring:call';
/** = ipc.ts EVENT_CHANNEL */
const EVENT_CHANNEL = 'mooring:event';
/** = ipc.ts SAVE_FILE_CHANNEL */
const SAVE_FILE_CHANNEL = 'mooring:save-file';

type CallResult =
  { ok: true; value: unknown } | { ok: false; error: { code: string; message: string } };

function unwrap(r: CallResult): unknown {
  if (r.ok) return r.value;
  // contextBridge copies an Error's message only, so the code leads it: "USAGE: interval: …".
  throw new Error(`${r.error.code}: ${r.error.message}`);
}

const bridge: DesktopBridge = {
  async call(method, ...args) {
    return unwrap((await ipcRenderer.invoke(CALL_CHANNEL, method, args)) as CallResult) as never;
  },
  async saveFile(udid, snapshotId, domain, relativePath) {
    const r = (await ipcRenderer.invoke(SAVE_FILE_CHANNEL, [
      udid,
      snapshotId,
      domain,
      relativePath,
    ])) as CallResult;
    return unwrap(r) as SaveFileResult;
  },
  onEvent(listener) {
    if (typeof listener !== 'function') throw new TypeError('onEvent expects a function');
    const handler = (_e: IpcRendererEvent, event: AgentEvent): void => listener(event);
    ipcRenderer.on(EVENT_CHANNEL, handler);
    return () => {
      ipcRenderer.removeListener(EVENT_CHANNEL, handler);
    };
  },
};

contextBridge.exposeInMainWorld('mooring', bridge);
