/**
 * The pair records this computer holds, indexed for advert matching (HostID, WiFiMACAddress).
 *
 * usbmuxd has no "list pair records", so the index is built from what can be listed — Mooring's
 * store folder and the OS lockdown folder (when readable) — plus the records of devices usbmuxd
 * reports attached (ReadPairRecord). Each UDID is then read through `findPairRecord`, in the
 * same order a connection uses (usbmuxd → OS folder → store), so the HostID matched is the
 * one the session will present.
 */
import { promises as fsp } from 'node:fs';
import {
  assertSafeUdid,
  findPairRecord,
  systemLockdownDir,
  type PairRecordReader,
  type PairRecordSource,
} from '../lockdown/pair-records';
import { normaliseUdid, usbSerialForUdid } from '../protocol/usbmux/udid';
import {
  matchAdvert,
  type AdvertIdentity,
  type AdvertMatch,
  type PairingKey,
} from './advert-match';
import { authTagKey, isUsableHostId, normaliseMac } from './txt-auth';

/** Records indexed at most (a computer paired with more devices than this is not a case). */
export const MAX_INDEXED_RECORDS = 1000;
/** Directory entries looked at per folder. */
export const MAX_DIR_ENTRIES = 10_000;

const RECORD_FILE = /^([A-Za-z0-9][A-Za-z0-9-]{0,63})\.plist$/;
const NOT_A_DEVICE = new Set(['SystemConfiguration']);

export interface IndexedPairRecord {
  udid: string;
  hostId: string;
  /** Lower-case, when the record has a valid WiFiMACAddress. */
  wifiMac?: string;
  source: PairRecordSource;
  /** "usbmuxd" or the file path. */
  location: string;
}

export interface PairRecordIndexOptions {
  /** Mooring's own store folder of `<UDID>.plist` records. */
  storeDir?: string;
  /** The OS lockdown folder; default systemLockdownDir(), null to skip it. */
  systemDir?: string | null;
  /** usbmuxd, asked first for each UDID (ReadPairRecord); absent or null: files only. */
  usbmuxd?: PairRecordReader | null;
}

/** One problem met while indexing (an unreadable record); indexing carries on. */
export interface IndexProblem {
  udid: string;
  error: Error;
}

export class PairRecordIndex {
  private readonly byUdid = new Map<string, IndexedPairRecord>();
  private readonly keys = new Map<string, Buffer>();
  private readonly systemDir: string | null;
  private queue: Promise<unknown> = Promise.resolve();
  /** When the last full refresh finished (ms since epoch), 0 before the first. */
  lastRefresh = 0;

  constructor(private readonly opts: PairRecordIndexOptions = {}) {
    this.systemDir = opts.systemDir === undefined ? systemLockdownDir() : opts.systemDir;
  }

  list(): IndexedPairRecord[] {
    return [...this.byUdid.values()];
  }

  get(udid: string): IndexedPairRecord | undefined {
    return this.byUdid.get(normaliseUdid(udid));
  }

  get size(): number {
    return this.byUdid.size;
  }

  /**
   * Rescans the folders (and re-reads every UDID already known, e.g. from usbmuxd). Records that
   * are gone everywhere leave the index. Resolves with the problems met.
   */
  refresh(): Promise<IndexProblem[]> {
    return this.serialise(async () => {
      const udids = new Set<string>(this.byUdid.keys());
      for (const dir of [this.systemDir, this.opts.storeDir]) {
        if (dir === null || dir === undefined) continue;
        for (const udid of await listRecordUdids(dir)) {
          if (udids.size >= MAX_INDEXED_RECORDS) break;
          udids.add(normaliseUdid(udid));
        }
      }
      const problems: IndexProblem[] = [];
      for (const udid of udids) {
        const p = await this.load(udid);
        if (p) problems.push(p);
      }
      this.lastRefresh = Date.now();
      return problems;
    });
  }

  /**
   * (Re)reads one UDID's record — a device usbmuxd just reported, or one just paired. Resolves
   * with the entry, or undefined when no source has a usable record (the problem is thrown only
   * for a record that exists but cannot be used).
   */
  loadUdid(udid: string): Promise<IndexedPairRecord | undefined> {
    const key = normaliseUdid(udid);
    return this.serialise(async () => {
      const problem = await this.load(key);
      if (problem) throw problem.error;
      return this.byUdid.get(key);
    });
  }

  /** Forgets a UDID (its record was deleted). */
  forget(udid: string): boolean {
    return this.byUdid.delete(normaliseUdid(udid));
  }

  /** Which indexed device an advert is (see advert-match.ts). */
  match(advert: AdvertIdentity): AdvertMatch {
    const records: PairingKey[] = this.list();
    return matchAdvert(advert, records, (hostId) => this.keyFor(hostId));
  }

  /** HKDF keys are cached per HostID: one derivation per host, not per advert. */
  private keyFor(hostId: string): Buffer {
    let k = this.keys.get(hostId);
    if (!k) {
      k = authTagKey(hostId);
      if (this.keys.size >= MAX_INDEXED_RECORDS) this.keys.clear();
      this.keys.set(hostId, k);
    }
    return k;
  }

  /** `udid` is in the canonical (lockdownd, dashed) form; files may use the USB spelling. */
  private async load(udid: string): Promise<IndexProblem | undefined> {
    try {
      assertSafeUdid(udid);
      const files = {
        systemDir: this.systemDir,
        ...(this.opts.storeDir === undefined ? {} : { storeDir: this.opts.storeDir }),
      };
      const lookup = { ...files, ...(this.opts.usbmuxd ? { usbmuxd: this.opts.usbmuxd } : {}) };
      // usbmuxd already tries both spellings; the folders may hold the dash-less one.
      const alt = usbSerialForUdid(udid);
      const found =
        (await findPairRecord(udid, lookup)) ??
        (alt === udid ? undefined : await findPairRecord(alt, files));
      if (!found || !isUsableHostId(found.record.HostID)) {
        this.byUdid.delete(udid);
        return undefined;
      }
      if (!this.byUdid.has(udid) && this.byUdid.size >= MAX_INDEXED_RECORDS) return undefined;
      const wifiMac = normaliseMac(found.record.WiFiMACAddress);
      this.byUdid.set(udid, {
        udid,
        hostId: found.record.HostID,
        ...(wifiMac === undefined ? {} : { wifiMac }),
        source: found.source,
        location: found.location,
      });
      return undefined;
    } catch (e) {
      this.byUdid.delete(udid);
      return { udid, error: e instanceof Error ? e : new Error(String(e)) };
    }
  }

  private serialise<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }
}

/** UDIDs of the `<UDID>.plist` files in a folder; a missing or unreadable folder has none. */
async function listRecordUdids(dir: string): Promise<string[]> {
  let handle: import('node:fs').Dir;
  try {
    handle = await fsp.opendir(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'EACCES' || code === 'EPERM' || code === 'ENOTDIR') return [];
    throw e;
  }
  const out: string[] = [];
  let seen = 0;
  try {
    // Leaving the loop early closes the directory handle too.
    for await (const entry of handle) {
      if (++seen > MAX_DIR_ENTRIES || out.length >= MAX_INDEXED_RECORDS) break;
      if (!entry.isFile() && !entry.isSymbolicLink()) continue;
      const m = RECORD_FILE.exec(entry.name);
      if (m && !NOT_A_DEVICE.has(m[1]!)) out.push(m[1]!);
    }
  } catch {
    // A folder that fails mid-listing: what was listed still counts.
  }
  return out;
}
