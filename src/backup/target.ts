/**
 * Where a backup is written. The engine only ever sees this: a directory (`root`) that contains the
 * device's folder `<udid>/`. The store hands the engine a staging directory shaped like this, so the
 * engine never knows about snapshots, and the device's relative paths resolve the same way as in a
 * plain Finder/iTunes backup folder.
 */
export interface BackupTarget {
  readonly udid: string;
  /** Directory the device's relative paths resolve against; it contains `<udid>/`. Only `<udid>/...` paths are allowed. */
  readonly root: string;
  /**
   * A target that keeps account of what the engine changes in it (the store's staging, whose
   * verify then re-checks only that) hands out a recorder. Every PathConfiner on the target asks
   * for it and calls it with a confined device path (`<udid>/…`) BEFORE anything there is
   * written, removed, moved away or onto, copied onto or created: that path and all below it.
   */
  trackChanges?(): (devicePath: string) => void;
  /**
   * The device's new Manifest.db is complete at `file` (`<udid>/Snapshot/Manifest.db` until the
   * device moves it into place): the store's staging begins its verify's read of it (D34).
   */
  manifestReceived?(file: string): void;
}

/**
 * A target the store is still filling with the previous backup's links (D32): the device's
 * messages that stay out of the folders being filled may be handled meanwhile
 * (backup/linking-gate).
 */
export interface TargetLinking {
  /**
   * Settles once the target's top level is in place (the previous backup's top-level files
   * linked, its folders made), with the names of the folders still being filled; rejects when
   * the copy failed before.
   */
  topLevel: Promise<ReadonlySet<string>>;
  /** Settles when the copy is complete; rejects when it failed. */
  done: Promise<void>;
}
