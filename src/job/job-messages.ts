/**
 * What the agent (or the CLI) and a backup job on its own thread say to each other. The job
 * gets everything it needs as data (`JobSpec`, in its start message); the caller's callbacks
 * become messages: events and the session's values one way, an abort the other, and two calls
 * the job waits on (the passwords for a keybag, and "this password opened it").
 */
import type { BackupTimeouts } from '../backup';
import type { ValueAnswer, ValueQuery } from '../lockdown/values';
import type { PairRecord } from '../pairing/pair-record';
import type { RoomPolicy } from '../store/make-room';
import type { WireError } from '../util/error-wire';
import type { JobEvent, JobOutcome } from './backup-to-store';
import type { EndpointSpec } from './endpoint-spec';
import type { GcCount } from './gc-count';

export interface JobSpec {
  endpoint: EndpointSpec;
  /** Its Buffers arrive as Uint8Arrays (a structured clone): see reviveRecord. */
  record: PairRecord;
  dest: string;
  full?: boolean;
  timeouts?: Partial<BackupTimeouts>;
  label?: string;
  /** Present when the caller has an onSession: the values to read for it. */
  sessionReads?: ValueQuery[];
  encryption?: {
    /** The candidates themselves, or 'ask' when the caller looks them up per keybag. */
    passwords: string[] | 'ask';
    sample?: number;
    /** Whether the caller wants to hear which password opened the backup. */
    onOpened: boolean;
  };
  /** The private folder for decrypted files, which the caller removes once the thread has ended. */
  decryptedDir?: string;
  makeRoom?: RoomPolicy;
}

/** A job thread's workerData: what it may load while it waits for its job (job/thread-start). */
export interface JobThreadData {
  preloadUsbmuxd?: boolean;
}

export type WireOutcome = Omit<JobOutcome, 'error'> & { error?: WireError };

export type FromJob =
  /** The job has come, its modules loaded: from here on, a thread that fails is a failed backup. */
  | { t: 'ready' }
  /** Every event the job emitted in one turn of its loop, in order. */
  | { t: 'events'; list: JobEvent[] }
  | { t: 'session'; answers: ValueAnswer[] }
  | { t: 'call'; id: number; fn: 'passwords'; keyBagId: string }
  | { t: 'call'; id: number; fn: 'opened'; keyBagId: string; password: string }
  /** Just before the outcome, when `MOORING_GC_STATS=1`: the thread's garbage collections. */
  | { t: 'gc'; count: GcCount }
  | { t: 'outcome'; outcome: WireOutcome };

export type ToJob =
  /** The job, once per thread (a thread may have started before its job was known). */
  | { t: 'start'; spec: JobSpec }
  | { t: 'abort' }
  | { t: 'reply'; id: number; passwords?: string[]; error?: WireError };

/** A pair record after a structured clone: its data fields back as Buffers. */
export function reviveRecord(r: PairRecord): PairRecord {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(r)) {
    out[k] =
      v instanceof Uint8Array && !Buffer.isBuffer(v)
        ? Buffer.from(v.buffer, v.byteOffset, v.byteLength)
        : v;
  }
  return out as unknown as PairRecord;
}
