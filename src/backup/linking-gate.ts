/**
 * Which device messages wait while the store still links the previous backup into the target
 * (StagingOptions.linkInBackground, D32).
 *
 * The store makes the target's top level first: every top-level file of the previous backup
 * (Status.plist, Manifest.plist, Manifest.db) linked, every top-level folder made, empty. From
 * then on only the insides of those folders are still being filled. A device's incremental
 * begins by reading the previous backup's top-level files, then works in `Snapshot/`, a folder
 * of its own: all of that may go ahead while the links are made. A path inside a folder being
 * filled waits until the copy is complete, and so does anything that would move, remove or copy
 * the backup folder itself. A listing of the backup folder itself goes ahead: its names and kinds
 * are final; only a folder's own size and date change as it fills, as they would as soon as the
 * device wrote into it.
 */
import { devicePathSegments } from './confine';
import type { DeviceDlMessage } from '../protocol/device-link/messages';
import type { TargetLinking } from './target';

/** Names compared as a case-insensitive, normalising file system would (never too few waits). */
function folderKey(name: string): string {
  return name.normalize('NFC').toLowerCase();
}

export class LinkingGate {
  private readonly filling: ReadonlySet<string>;
  private complete = false;

  constructor(
    private readonly udid: string,
    /** The folders of the target's top level the links are still filling. */
    filling: ReadonlySet<string>,
    /** Settles when the copy is complete (rejects when it failed). */
    readonly done: Promise<void>,
  ) {
    this.filling = new Set([...filling].map(folderKey));
    done.then(
      () => (this.complete = true),
      () => undefined, // the one waiting on `done` learns it
    );
  }

  /** The gate for a target whose top level is in place (TargetLinking.topLevel). */
  static async open(udid: string, linking: TargetLinking): Promise<LinkingGate> {
    return new LinkingGate(udid, await linking.topLevel, linking.done);
  }

  /**
   * Whether a message or an uploaded file on `devicePath` must wait for the copy; `change`: it
   * writes, moves, removes or copies what is there.
   */
  blocks(devicePath: string, change = true): boolean {
    if (this.complete) return false;
    let segments: string[];
    try {
      segments = devicePathSegments(this.udid, devicePath);
    } catch {
      return false; // refused without touching the disk
    }
    if (segments.length === 1) return change;
    return this.filling.has(folderKey(segments[1]!));
  }

  /** Whether the message must wait for the copy before it is handled (an upload: per file). */
  holds(m: DeviceDlMessage): boolean {
    if (this.complete) return false;
    switch (m.type) {
      case 'DownloadFiles':
        return m.paths.some((p) => this.blocks(p, false));
      case 'ContentsOfDirectory':
      case 'CreateDirectory':
        return this.blocks(m.path, false);
      case 'MoveItems':
        for (const [from, to] of m.moves) if (this.blocks(from) || this.blocks(to)) return true;
        return false;
      case 'RemoveItems':
        return m.paths.some((p) => this.blocks(p));
      case 'CopyItem':
        return this.blocks(m.source) || this.blocks(m.destination);
      default:
        return false;
    }
  }
}
