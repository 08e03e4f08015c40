/**
 * Room for a backup that the device says will not fit (its PurgeDiskSpace request, D48): which
 * older snapshots to remove, and how many bytes removing them frees.
 *
 * Snapshots share files by hard links, so removing one frees only what no other name holds. A file
 * is counted once every one of its links lies in a snapshot being removed — its link count says how
 * many there are — and never while the latest, a kept snapshot, a staged backup or anything outside
 * the store still holds it; it counts for the blocks it takes on the disk, which is what the free
 * space the device asks for again will show. Snapshots are walked one by one in the order they
 * would go, and the walk stops as soon as enough would be freed.
 */
import { walkFiles } from './fs-util';
import type { RetentionPolicy } from './retention';

/** What may go to make room: what `retention` no longer keeps, and with `beyondRetention` more. */
export interface RoomPolicy {
  retention: RetentionPolicy;
  beyondRetention: boolean;
}

export interface RoomCandidate {
  id: string;
  /** Its backup folder. */
  dir: string;
}

export interface RoomPlan {
  /** Bytes asked for. */
  neededBytes: number;
  /** Removed because the retention policy no longer keeps them (always, oldest first). */
  byRetention: string[];
  /** Removed beyond the policy, oldest first, to make the room. */
  beyondRetention: string[];
  /** Bytes of disk that removing all of them frees. */
  freesBytes: number;
  /** Snapshots "make room" could remove beyond the policy (unpinned, not the latest), walked or not. */
  beyondPossible: number;
  /** Removing them failed part-way (the ids above are those that did go). */
  failed?: string;
  /**
   * Going beyond the policy was allowed, but removing every snapshot it could remove would free
   * only `possibleBytes`: then none is removed beyond the policy (history is not given up for a
   * backup that still would not fit).
   */
  outOfReach?: { possibleBytes: number };
}

/** Bytes freed as whole snapshot folders are removed, one after another. */
export class FreedByRemoval {
  /** Multiply-linked files seen so far: inode → [links seen, link count, disk bytes]. */
  private readonly shared = new Map<string, [number, number, number]>();
  total = 0;

  /** Counts one more folder as removed; returns the bytes freed by all removed so far. */
  async remove(dir: string): Promise<number> {
    try {
      await walkFiles(dir, (f) => {
        if (f.nlink <= 1) {
          this.total += f.diskBytes;
          return;
        }
        const s = this.shared.get(f.inode) ?? [0, f.nlink, f.diskBytes];
        s[0]++;
        if (s[0] === s[1]) {
          this.total += s[2];
          this.shared.delete(f.inode);
        } else this.shared.set(f.inode, s);
      });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    return this.total;
  }
}

/**
 * The snapshots to remove for `neededBytes`: all of `byRetention`, then as few of `candidates`
 * (oldest first; empty when the person did not allow going beyond the policy) as free more than
 * it (the device goes on only with more free than it needs), or none of them when even all would
 * not. `beyondPossible`: how many "make room" could remove, for a notice when it is off.
 */
export async function planRoom(p: {
  neededBytes: number;
  byRetention: readonly RoomCandidate[];
  candidates: readonly RoomCandidate[];
  beyondPossible: number;
}): Promise<RoomPlan> {
  const freed = new FreedByRemoval();
  for (const c of p.byRetention) await freed.remove(c.dir);
  const plan: RoomPlan = {
    neededBytes: p.neededBytes,
    byRetention: p.byRetention.map((c) => c.id),
    beyondRetention: [],
    freesBytes: freed.total,
    beyondPossible: p.beyondPossible,
  };
  if (freed.total > p.neededBytes || p.candidates.length === 0) return plan;
  for (const [i, c] of p.candidates.entries()) {
    if ((await freed.remove(c.dir)) > p.neededBytes) {
      plan.beyondRetention = p.candidates.slice(0, i + 1).map((x) => x.id);
      plan.freesBytes = freed.total;
      return plan;
    }
  }
  plan.outOfReach = { possibleBytes: freed.total };
  return plan;
}

/** Several requests of one backup as one: everything removed, the last request's need and reach. */
export function combineRoomPlans(plans: readonly RoomPlan[]): RoomPlan | undefined {
  const last = plans.at(-1);
  if (last === undefined) return undefined;
  const failed = plans.find((p) => p.failed !== undefined)?.failed;
  return {
    ...last,
    byRetention: plans.flatMap((p) => p.byRetention),
    beyondRetention: plans.flatMap((p) => p.beyondRetention),
    freesBytes: plans.reduce((a, p) => a + p.freesBytes, 0),
    ...(failed === undefined ? {} : { failed }),
  };
}
