/**
 * After each committed backup the agent makes the next backup's copy of the latest (the store's
 * `prepareNext`, D42), so that the next backup, scheduled or "Back Up Now", starts with its folder
 * complete instead of waiting for its hard links while the person holds the phone. Only speed
 * depends on it: a failure is logged, and the next backup links its folder as before.
 */
import type { PreparedNext } from '../store';
import { errText, type AgentContext } from './agent-context';
import { usingAgentStore } from './store-findings';

/** The store's prepareNext for the device; undefined when it failed (and was logged) or stopped. */
export async function prepareNextBackup(
  ctx: AgentContext,
  udid: string,
  signal: AbortSignal,
): Promise<PreparedNext | undefined> {
  try {
    const made = await usingAgentStore(ctx, udid, undefined, (store) =>
      store.prepareNext({ signal }),
    );
    if (made && !made.reused) {
      ctx.log(
        `prepared the next backup of ${udid}: ${made.files} files linked in ${made.seconds.toFixed(2)} s`,
      );
    }
    return made;
  } catch (e) {
    if (!signal.aborted) ctx.log(`preparing the next backup of ${udid} failed: ${errText(e)}`);
    return undefined;
  }
}
