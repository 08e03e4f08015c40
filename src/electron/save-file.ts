/**
 * The desktop app's download: the renderer names a file of a snapshot (SAVE_FILE_CHANNEL), main
 * checks the sender and the arguments like any bridge call, opens the file through the agent
 * (so it is refused before any dialog when it is not there), asks where to save it, and copies
 * the stream there. Written to a temporary file beside the destination and renamed at the end: a
 * failed or cut-short copy never leaves half a file, nor spoils the file it would replace.
 * Free of Electron: the dialog comes in as a function.
 */
import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { SaveFileResult, SnapshotBrowsing } from '../agent/types';
import {
  checkSaveFile,
  checkSender,
  errorResult,
  type CallResult,
  type ExpectedSender,
  type SenderFacts,
} from './ipc';

/**
 * A file name for the save dialog's suggestion: the last path component, without control
 * characters or separators any platform treats specially; "file" when nothing is left.
 */
export function suggestedFileName(name: string): string {
  const base = name.slice(name.lastIndexOf('/') + 1);
  // eslint-disable-next-line no-control-regex
  const clean = base.replace(/[\u0000-\u001f\u007f<>:"/\\|?*]/g, '_').slice(0, 200);
  return clean === '' || /^\.+$/.test(clean) ? 'file' : clean;
}

/**
 * Asks where to save (the suggested name given); resolves to an absolute path, or undefined when
 * the person cancelled.
 */
export type ChooseDestination = (suggestedName: string) => Promise<string | undefined>;

/** One SAVE_FILE_CHANNEL message, end to end. Never throws; `onInternal` sees unexpected errors. */
export async function handleSaveFile(
  service: SnapshotBrowsing,
  sender: SenderFacts,
  expected: ExpectedSender | undefined,
  args: unknown,
  choose: ChooseDestination,
  onInternal?: (e: unknown) => void,
): Promise<CallResult> {
  try {
    checkSender(sender, expected);
    const r = checkSaveFile(args);
    const file = await service.openFile(r.udid, r.snapshotId, r.domain, r.relativePath);
    let dest: string | undefined;
    try {
      dest = await choose(suggestedFileName(file.name));
    } catch (e) {
      file.stream.destroy();
      throw e;
    }
    if (dest === undefined) {
      file.stream.destroy();
      const value: SaveFileResult = { saved: false, path: null, bytes: 0 };
      return { ok: true, value };
    }
    if (!path.isAbsolute(dest)) {
      file.stream.destroy();
      throw new Error(`the save dialog returned a relative path: ${dest}`);
    }
    // A leftover of an earlier failed save under this name is ours to overwrite.
    const tmp = path.join(path.dirname(dest), `.${path.basename(dest)}.mooring-part`);
    const out = createWriteStream(tmp, { flags: 'w', mode: 0o644 });
    let created = false;
    out.once('open', () => (created = true));
    try {
      await pipeline(file.stream, out);
      if (out.bytesWritten !== file.size) {
        throw new Error(`copied ${out.bytesWritten} of ${file.size} bytes`);
      }
      await rename(tmp, dest);
    } catch (e) {
      file.stream.destroy();
      // Only a file this call created (never whatever else has that name).
      if (created) await rm(tmp, { force: true }).catch(() => undefined);
      const why = e instanceof Error ? e.message : String(e);
      return {
        ok: false,
        error: { code: 'IO', message: `Could not save ${path.basename(dest)}: ${why}` },
      };
    }
    const value: SaveFileResult = { saved: true, path: dest, bytes: file.size };
    return { ok: true, value };
  } catch (e) {
    const r = errorResult(e);
    if (!r.ok && r.error.code === 'INTERNAL') onInternal?.(e);
    return r;
  }
}
