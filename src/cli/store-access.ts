/** Opening the snapshot store for a command: which destination, which device. */
import { promises as fsp } from 'node:fs';
import { MooringError } from '../util/errors';
import { openStore, type SnapshotStore } from '../store';

const UDID_DIR = /^[0-9A-Fa-f]{8}-?[0-9A-Fa-f]{16}$|^[0-9a-f]{40}$/;

/** The device folders in a destination (backups made by Mooring, Finder or idevicebackup2). */
export async function devicesIn(dest: string): Promise<string[]> {
  let names: string[];
  try {
    names = await fsp.readdir(dest);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new MooringError('IO', `cannot read ${dest}: ${(e as Error).message}`, { cause: e });
  }
  return names.filter((n) => UDID_DIR.test(n)).sort();
}

/**
 * The store of `udid` in `dest`; without --udid, the only device there. What its open found
 * changed outside a backup is said on `warn`: this open brings the records in line, so the agent
 * will not find it again to tell.
 */
export async function openDeviceStore(
  dest: string,
  udid: string | undefined,
  warn: (line: string) => void,
): Promise<SnapshotStore> {
  if (udid === undefined) {
    const found = await devicesIn(dest);
    if (found.length !== 1) {
      throw new MooringError(
        'USAGE',
        found.length === 0
          ? `no device backups in ${dest}: pass --dest (the folder given to "mooring backup") or back up first`
          : `${dest} holds backups of ${found.length} devices: pass --udid (one of ${found.join(', ')})`,
      );
    }
    udid = found[0]!;
  }
  const store = await openStore(dest, udid);
  for (const found of store.recovery.found) warn(`mooring: ${found}`);
  return store;
}
