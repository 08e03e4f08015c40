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
}
