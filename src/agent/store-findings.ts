/**
 * What a device's store found changed outside a backup when it opened (a snapshot folder deleted
 * or replaced by hand or by another tool, its records unreadable and rebuilt), told to the person
 * as a STORE_RECOVERED notice: the store puts its records in line silently, and a backup that
 * disappeared without a word is what a person must hear of. Whoever opens the store first after
 * the change finds it (the backup's job, the retention, the next backup's copy), so each does this.
 */
import { storeRecovered } from '../history';
import { openStore, type SnapshotStore } from '../store';
import type { AgentContext } from './agent-context';

export function recordStoreFindings(
  ctx: AgentContext,
  udid: string,
  found: readonly string[] | undefined,
  attemptId?: number,
): void {
  if (found === undefined || found.length === 0) return;
  ctx.log(`the store of ${udid} found: ${found.join('; ')}`);
  ctx.record({
    ...storeRecovered({ found: found.join('; ') }),
    udid,
    ...(attemptId === undefined ? {} : { attemptId }),
  });
}

/**
 * Uses the device's store in the agent's backup folder, then records what it found: at its open
 * and at every reconcile of `use` (a prune or a pin brings the records in line too), once.
 */
export async function usingAgentStore<T>(
  ctx: AgentContext,
  udid: string,
  attemptId: number | undefined,
  use: (store: SnapshotStore) => Promise<T>,
): Promise<T> {
  const store = await openStore(ctx.backupDir, udid);
  try {
    return await use(store);
  } finally {
    recordStoreFindings(ctx, udid, store.recovery.found, attemptId);
  }
}
