/** `mooring snapshots | pin | unpin | prune`: the versioned history of one device's backups. */
import {
  DEFAULT_RETENTION,
  describePolicy,
  RETENTION_FLAGS,
  retentionFromFlags,
  type RetentionPolicy,
} from '../../store';
import { MooringError } from '../../util/errors';
import { agentRetention } from '../agent-settings';
import type { CliContext } from '../context';
import { formatBytes } from '../progress';
import { openDeviceStore } from '../store-access';

export interface StoreArgs {
  dest: string;
  udid?: string;
  json: boolean;
}

export async function snapshotsCommand(ctx: CliContext, a: StoreArgs): Promise<number> {
  const store = await openDeviceStore(a.dest, a.udid, ctx.err);
  const list = await store.list();
  if (a.json) {
    ctx.out(JSON.stringify(list, null, 2));
    return 0;
  }
  if (list.length === 0) {
    ctx.out(`No backups of ${store.udid} in ${a.dest} yet.`);
    return 0;
  }
  ctx.out('SNAPSHOT           DATE (UTC)           FILES       SIZE   ONLY HERE  ');
  for (const s of list) {
    const flags = [
      s.isLatest ? 'latest' : '',
      s.pinned ? 'pinned' : '',
      s.adopted ? 'adopted' : '',
      s.damaged
        ? `DAMAGED (${s.damaged.problems} problem(s), found ${s.damaged.at.slice(0, 10)})`
        : '',
    ]
      .filter(Boolean)
      .join(', ');
    ctx.out(
      `${s.id.padEnd(18)} ${s.date.toISOString().slice(0, 19).replace('T', ' ')}  ` +
        `${String(s.files).padStart(8)} ${formatBytes(s.size).padStart(10)} ` +
        `${formatBytes(s.exclusiveBytes).padStart(10)}  ${flags}`,
    );
  }
  return 0;
}

export async function pinCommand(
  ctx: CliContext,
  a: StoreArgs,
  snapshot: string,
  pinned: boolean,
): Promise<number> {
  const store = await openDeviceStore(a.dest, a.udid, ctx.err);
  if (pinned) await store.pin(snapshot);
  else await store.unpin(snapshot);
  ctx.out(
    pinned
      ? `Snapshot ${snapshot} is pinned: pruning will never remove it.`
      : `Snapshot ${snapshot} is no longer pinned.`,
  );
  return 0;
}

/**
 * The device's keep-* settings, as the agent prunes after each backup, with the periods the
 * retention flags give in their place; the defaults only where there is no agent history. A
 * history that cannot be read is refused unless every period is given: pruning by defaults could
 * remove what the person's settings keep.
 */
export async function pruneCommand(
  ctx: CliContext,
  a: StoreArgs,
  flags: Map<string, string>,
  dryRun: boolean,
): Promise<number> {
  const store = await openDeviceStore(a.dest, a.udid, ctx.err);
  const given = RETENTION_FLAGS.filter((f) => flags.has(f));
  let settings: RetentionPolicy | undefined;
  if (given.length < RETENTION_FLAGS.length) {
    try {
      settings = agentRetention(ctx.dataDir, store.udid, (l) => ctx.err(`mooring: ${l}`));
    } catch (e) {
      throw new MooringError(
        'USAGE',
        `cannot read the agent's retention settings (${(e as Error).message}); give all three periods (--keep-all, --daily, --weekly) to prune without them`,
        { cause: e },
      );
    }
  }
  const policy = retentionFromFlags(flags, settings ?? DEFAULT_RETENTION);
  const base =
    settings !== undefined
      ? `the keep-* settings of ${store.udid}`
      : 'the defaults (no agent history: --keep-all, --daily, --weekly choose)';
  const source =
    given.length === RETENTION_FLAGS.length
      ? 'the flags given'
      : given.length > 0
        ? `${given.map((f) => `--${f}`).join(', ')}, the rest from ${base}`
        : base;
  const removed = (dryRun ? await store.planPrune(policy) : await store.prune(policy)).pruned;
  if (a.json) {
    ctx.out(
      JSON.stringify({ dryRun, policy: describePolicy(policy), from: source, removed }, null, 2),
    );
    return 0;
  }
  ctx.out(`Retention (${source}): ${describePolicy(policy)}.`);
  if (removed.length === 0) ctx.out('Nothing to prune.');
  for (const d of removed) {
    ctx.out(`${dryRun ? 'would remove' : 'removed'} ${d.id} (${d.reason})`);
  }
  return 0;
}
