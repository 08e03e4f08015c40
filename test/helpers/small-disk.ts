/**
 * A REAL small filesystem for the tests of a disk without room: a tmpfs mounted on a folder (root
 * only), with hard links and a real ENOSPC, resized at will, always unmounted at the end. And what
 * the simulated device will want free for its next backup, as it computes it.
 */
import { execFileSync } from 'node:child_process';
import { statfsSync } from 'node:fs';
import type { RunningSim } from '../../src/sim/index';
import { FREE_SPACE_MARGIN_BYTES } from '../../src/sim/backup/backup-session';

/** What the simulated device (like a real one) wants free beyond the backup itself. */
export const DEVICE_MARGIN = FREE_SPACE_MARGIN_BYTES;

/** Mounting needs root; tests that need it are skipped with this reason otherwise. */
export const SMALL_DISK_SKIP =
  process.getuid?.() === 0 ? false : 'needs root to mount a small tmpfs';

const pages = (n: number): number => Math.ceil(n / 4096) * 4096;

export class SmallDisk {
  private mounted = false;

  constructor(readonly dir: string) {}

  /** Mounts a tmpfs of `bytes` (rounded up to whole pages) on the folder, which must exist. */
  mount(bytes: number): void {
    execFileSync('mount', [
      '-t',
      'tmpfs',
      '-o',
      `size=${pages(bytes)},mode=0755`,
      'tmpfs',
      this.dir,
    ]);
    this.mounted = true;
  }

  resize(bytes: number): void {
    execFileSync('mount', ['-o', `remount,size=${pages(bytes)}`, this.dir]);
  }

  usage(): { used: number; free: number } {
    const s = statfsSync(this.dir);
    return { used: (s.blocks - s.bfree) * s.bsize, free: s.bavail * s.bsize };
  }

  /** Unmounts it (lazily if busy); nothing when it was never mounted. */
  unmount(): void {
    if (!this.mounted) return;
    this.mounted = false;
    try {
      execFileSync('umount', [this.dir]);
    } catch {
      execFileSync('umount', ['-l', this.dir]);
    }
  }
}

/**
 * What the simulated device will want free for its next backup, its margin left out: the bytes of
 * the files `changed` (domain/path, as `ctl mutate` names them) and 512 bytes per entry for its
 * Manifest.db (sim/backup/backup-session, step 3).
 */
export async function deviceNeeds(sim: RunningSim, changed: ReadonlySet<string>): Promise<number> {
  const l = (await sim.ctl('listing')) as {
    entries: Array<{ type: string; domain: string; relativePath: string; size: number }>;
  };
  const bytes = l.entries
    .filter((e) => e.type === 'file' && changed.has(`${e.domain}/${e.relativePath}`))
    .reduce((a, e) => a + e.size, 0);
  return bytes + l.entries.length * 512;
}

/** `ctl mutate` on the simulator; the files it added or changed, as domain/path. */
export async function mutated(
  sim: RunningSim,
  req: { add?: number; modify?: number },
): Promise<Set<string>> {
  const m = (await sim.ctl('mutate', req)) as { added: string[]; modified: string[] };
  return new Set([...m.added, ...m.modified]);
}
