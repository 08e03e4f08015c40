import { isMainThread } from 'node:worker_threads';
import type { StoreOptions } from '../store';

/**
 * TEST FAULT HOOK, used only by the crash-safety tests (test/cli/backup-crash*.test.ts,
 * test/job/job-thread.test.ts). `MOORING_CRASH_AT=commit:<step>` (a CommitStep, e.g.
 * `commit:moved-latest`; or `prune:<step>`, `open:locked|recovered`, `staging:created|linked`:
 * the fault matrix, test/reliability) makes this process SIGKILL itself right after that durable
 * step of the store (StoreHooks.afterStep, also during the recovery of an earlier interrupted
 * commit). `thread-exit:<op>:<step>` ends only the backup job's own thread there (job-thread);
 * `thread-oom:<op>:<step>` makes that thread run out of memory there, its heap limited to
 * CRASH_TEST_HEAP_MB so that this takes a moment (crashTestResourceLimits). Those steps emit no
 * events, so an outside kill cannot be aimed at them. Unset (always, in normal use) it changes
 * nothing.
 */
export const CRASH_AT_ENV = 'MOORING_CRASH_AT';

/** The job thread's old generation under a `thread-oom:` hook, in MiB. */
export const CRASH_TEST_HEAP_MB = 64;

/** The job thread's heap limits the hook asks for (none unless it is `thread-oom:`). */
export function crashTestResourceLimits(env: NodeJS.ProcessEnv = process.env): {
  maxOldGenerationSizeMb?: number;
} {
  return env[CRASH_AT_ENV]?.startsWith('thread-oom:') === true
    ? { maxOldGenerationSizeMb: CRASH_TEST_HEAP_MB }
    : {};
}

/** Keeps allocating until V8 ends this thread for want of memory (never returns). */
function exhaustHeap(): never {
  const kept: number[][] = [];
  for (;;) kept.push(new Array<number>(1 << 16).fill(kept.length));
}

export function crashTestStoreOptions(env: NodeJS.ProcessEnv = process.env): StoreOptions {
  const at = env[CRASH_AT_ENV];
  if (!at) return {};
  return {
    hooks: {
      afterStep: (op, step) => {
        const here = `${op}:${step}`;
        if (here === at) process.kill(process.pid, 'SIGKILL');
        // In a worker, process.exit ends that thread only.
        else if (at === `thread-exit:${here}` && !isMainThread) process.exit(70);
        else if (at === `thread-oom:${here}` && !isMainThread) exhaustHeap();
      },
    },
  };
}
