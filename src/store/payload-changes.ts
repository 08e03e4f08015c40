/**
 * What the engine changed in a staged backup folder since the store linked it from the latest
 * snapshot, as far as payloads (`<udid>/<xx>/<fileID>`) are concerned: the staging's verify
 * re-checks those and trusts every other payload to still be the base's verified file (D26).
 *
 * The engine reports each device path before it writes, removes, moves or creates anything there
 * (backup/confine.ts); a path stands for its whole subtree. Only the folder itself, a bucket and a
 * payload name matter: a deeper path lies inside a payload only if that payload's own name was
 * changed first (the base's payloads are files). A name is compared as a filesystem that ignores
 * case or trailing dots and spaces would see it; a name with `~` (a Windows short name could
 * stand for any payload) counts as its whole bucket, or as the whole folder above a bucket.
 */

/** Payload names remembered before the record gives up (the verify then checks everything). */
export const MAX_CHANGED_PAYLOADS = 50_000;

export interface PayloadChanges {
  /** The record cannot tell (the whole folder changed, too many names): check every payload. */
  readonly overflowed: boolean;
  /** Changed payloads, by fileID (lower case). */
  readonly fileIds: ReadonlySet<string>;
  /** Buckets (`xx`) changed as a whole. */
  readonly buckets: ReadonlySet<string>;
}

const BUCKET = /^[0-9a-f]{2}$/;
const FILE_ID = /^[0-9a-f]{40}$/;

/** A name as a case-insensitive filesystem that drops trailing dots and spaces would see it. */
function comparable(name: string): string {
  return name.toLowerCase().replace(/[. ]+$/, '');
}

export class PayloadChangeRecord implements PayloadChanges {
  overflowed = false;
  readonly fileIds = new Set<string>();
  readonly buckets = new Set<string>();

  constructor(readonly udid: string) {}

  /** `devicePath` (`<udid>/…`, confined) and everything below it are about to change. */
  note(devicePath: string): void {
    if (this.overflowed) return;
    const segments = devicePath.split('/').filter((s) => s !== '' && s !== '.');
    if (segments[0] !== this.udid || segments.length < 2) return this.overflow();
    const first = comparable(segments[1]!);
    if (first.includes('~')) return this.overflow();
    if (!BUCKET.test(first)) return; // Manifest.db, the plists, Snapshot/…: not a payload
    if (segments.length === 2) {
      this.buckets.add(first);
      return;
    }
    const second = comparable(segments[2]!);
    if (second.includes('~')) this.buckets.add(first);
    else if (FILE_ID.test(second) && second.startsWith(first)) {
      this.fileIds.add(second);
      if (this.fileIds.size > MAX_CHANGED_PAYLOADS) this.overflow();
    }
    // Any other name in a bucket is no payload path (payloadRelPath puts `<id>` under `<id[0..2]>`).
  }

  private overflow(): void {
    this.overflowed = true;
    this.fileIds.clear();
    this.buckets.clear();
  }
}
