/**
 * A backup job on its own thread (started by job-thread, or earlier by thread-start). It waits
 * for its job (a `start` message), connects to the device itself (from the endpoint's spec), runs
 * backupToStore and posts back what the caller's callbacks would have been told. Unlike the
 * other workers it loads the whole backup stack.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { readAnswers } from '../lockdown/values';
import { loadAppiumUsbmux } from '../transport/appium-loader';
import { fromWireError, toWireError } from '../util/error-wire';
import {
  backupToStore,
  type JobEncryption,
  type JobEvent,
  type JobOptions,
} from './backup-to-store';
import { useDecryptedTempRoot } from '../store/encrypted';
import { crashTestStoreOptions } from './crash-test';
import { endpointFromSpec } from './endpoint-spec';
import { countGarbageCollections, GC_STATS_ENV } from './gc-count';
import {
  reviveRecord,
  type FromJob,
  type JobSpec,
  type JobThreadData,
  type ToJob,
} from './job-messages';

const port = parentPort;
if (!port) throw new Error('job.worker runs only as a worker thread');
const data = (workerData ?? {}) as JobThreadData;

// Events emitted together (a passcode request and the phase it puts the backup in) cross as one
// message, so the caller applies them together, as it would in-process: a message a time would
// let its other work see the first without the second.
let events: JobEvent[] = [];
const flush = (): void => {
  if (events.length === 0) return;
  port.postMessage({ t: 'events', list: events } satisfies FromJob);
  events = [];
};
const emit = (e: JobEvent): void => {
  if (events.length === 0) queueMicrotask(flush);
  events.push(e);
};
const post = (m: FromJob): void => {
  flush();
  port.postMessage(m);
};

const abort = new AbortController();
const pending = new Map<number, { resolve: (v: string[]) => void; reject: (e: Error) => void }>();
let nextId = 1;

let started = false;
port.on('message', (m: ToJob) => {
  if (m.t === 'start') {
    if (started) return;
    started = true;
    post({ t: 'ready' });
    void main(m.spec);
    return;
  }
  if (m.t === 'abort') {
    abort.abort();
    return;
  }
  const p = pending.get(m.id);
  if (!p) return;
  pending.delete(m.id);
  if (m.error) p.reject(fromWireError(m.error));
  else p.resolve(m.passwords ?? []);
});

function ask(
  call:
    { fn: 'passwords'; keyBagId: string } | { fn: 'opened'; keyBagId: string; password: string },
): Promise<string[]> {
  const id = nextId++;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    post({ t: 'call', id, ...call });
  });
}

function encryption(spec: JobSpec): JobEncryption | undefined {
  const e = spec.encryption;
  if (!e) return undefined;
  return {
    passwords:
      e.passwords === 'ask' ? (keyBagId) => ask({ fn: 'passwords', keyBagId }) : e.passwords,
    ...(e.sample === undefined ? {} : { sample: e.sample }),
    ...(e.onOpened
      ? {
          onOpened: async (keyBagId: string, password: string) => {
            await ask({ fn: 'opened', keyBagId, password });
          },
        }
      : {}),
  };
}

async function main(spec: JobSpec): Promise<void> {
  if (spec.decryptedDir !== undefined) useDecryptedTempRoot(spec.decryptedDir);
  const gcCount = process.env[GC_STATS_ENV] === '1' ? countGarbageCollections() : undefined;
  const reads = spec.sessionReads;
  const enc = encryption(spec);
  const o: JobOptions = {
    endpoint: endpointFromSpec(spec.endpoint),
    record: reviveRecord(spec.record),
    dest: spec.dest,
    signal: abort.signal,
    storeOptions: crashTestStoreOptions(),
    onEvent: emit,
    ...(spec.full === undefined ? {} : { full: spec.full }),
    ...(spec.timeouts ? { timeouts: spec.timeouts } : {}),
    ...(spec.label === undefined ? {} : { label: spec.label }),
    ...(spec.makeRoom ? { makeRoom: spec.makeRoom } : {}),
    ...(reads
      ? {
          onSession: async (session) => {
            post({ t: 'session', answers: await readAnswers(session, reads) });
          },
        }
      : {}),
    ...(enc ? { encryption: enc } : {}),
  };
  const { error, ...rest } = await backupToStore(o);
  if (gcCount) post({ t: 'gc', count: await gcCount() });
  post({ t: 'outcome', outcome: error ? { ...rest, error: toWireError(error) } : rest });
}

// While it waits for its job (a thread started early): the usbmuxd client's modules, which the
// job would otherwise load as it connects. A failure here is the job's to meet, with its context.
if (data.preloadUsbmuxd) {
  try {
    loadAppiumUsbmux();
  } catch {
    // the job's own connection reports it
  }
}
