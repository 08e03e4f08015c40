/**
 * Retention applied by the agent: after each committed backup, the device's older snapshots that
 * its retention policy (keep-all, keep-daily, keep-weekly) no longer keeps are removed. The
 * latest and pinned snapshots are never removed (src/store/retention.ts). A failure here never
 * touches the backup just made: it is recorded as a PRUNE_FAILED warning and tried again after
 * the next backup.
 */
import { pruneFailed } from '../history';
import type { PruneResult } from '../store';
import { errText, type AgentContext } from './agent-context';
import { readRetention } from './config';
import { usingAgentStore } from './store-findings';

/** Prunes the device's snapshots by its policy; undefined when it failed (and was recorded). */
export async function pruneByRetention(
  ctx: AgentContext,
  udid: string,
  attemptId?: number,
): Promise<PruneResult | undefined> {
  try {
    const policy = readRetention(ctx.db, udid, (problem) => ctx.log(`settings: ${problem}`));
    // The store's own clock: snapshot ids are taken from it too.
    const result = await usingAgentStore(ctx, udid, attemptId, (store) => store.prune(policy));
    if (result.pruned.length > 0) {
      ctx.log(
        `retention: removed ${result.pruned.length} older snapshot(s) of ${udid}: ${result.pruned.map((d) => d.id).join(', ')}`,
      );
    }
    return result;
  } catch (e) {
    ctx.log(`retention: pruning the snapshots of ${udid} failed: ${errText(e)}`);
    ctx.record({
      ...pruneFailed({ detail: errText(e) }),
      udid,
      ...(attemptId === undefined ? {} : { attemptId }),
    });
    return undefined;
  }
}
