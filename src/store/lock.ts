/**
 * One process at a time per device: a lock file created with O_EXCL holding the owner's pid, host
 * and boot time. A lock whose owner is gone (the pid is dead, or the machine rebooted since) is
 * stale and is broken; a live owner's lock is never taken over.
 */
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import { isMainThread, threadId } from 'node:worker_threads';
import { MooringError } from '../util/errors';
import { tempName } from './fs-util';

interface LockContent {
  pid: number;
  host: string;
  /** ms since the epoch when the machine booted (± a few ms between readings). */
  boot: number;
  token: string;
  /** The thread that holds it (a backup job runs on a worker thread: job/job-thread). */
  thread?: number;
  since: string;
  purpose: string;
}

/** A boot time further off than this means another boot (os.uptime() jitters by milliseconds). */
const BOOT_TOLERANCE_MS = 120_000;
/** A lock file that is still empty or unreadable after this long was left by a crash mid-write. */
const UNREADABLE_STALE_MS = 30_000;
const MAX_LOCK_BYTES = 4096;

function bootTime(): number {
  return Date.now() - os.uptime() * 1000;
}

/** Whether a process with this id runs on this machine (ours or another user's). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it exists but belongs to someone else.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function readLock(
  file: string,
): Promise<{ content?: LockContent; mtimeMs: number } | undefined> {
  let raw: string;
  let mtimeMs: number;
  try {
    const st = await fsp.stat(file);
    mtimeMs = st.mtimeMs;
    if (st.size > MAX_LOCK_BYTES) return { mtimeMs };
    raw = await fsp.readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  try {
    const v = JSON.parse(raw) as Partial<LockContent>;
    if (
      typeof v.pid === 'number' &&
      typeof v.host === 'string' &&
      typeof v.boot === 'number' &&
      typeof v.token === 'string'
    ) {
      return { content: v as LockContent, mtimeMs };
    }
  } catch {
    // fall through: unreadable
  }
  return { mtimeMs };
}

/**
 * Tokens of the locks this process holds now. A lock file with our own pid but a token not in
 * here was left by a release that failed (the disk went read-only or full): a long-running agent
 * must not stay locked out of the device until it restarts.
 */
const heldTokens = new Set<string>();

/**
 * The backup job threads of this process that are running now, kept on the main thread by
 * job/job-thread (noteJobThread): the main thread tells another thread's live lock from one a
 * thread that has ended left behind.
 */
const liveThreads = new Set<number>();

export function noteJobThread(thread: number, running: boolean): void {
  if (running) liveThreads.add(thread);
  else liveThreads.delete(thread);
}

/** Why the lock's owner is gone, or undefined when it may still be running. */
function staleReason(l: { content?: LockContent; mtimeMs: number }): string | undefined {
  const c = l.content;
  if (!c) return Date.now() - l.mtimeMs > UNREADABLE_STALE_MS ? 'unreadable and old' : undefined;
  if (c.host !== os.hostname()) return undefined; // another machine (a shared drive): cannot tell
  if (Math.abs(c.boot - bootTime()) > BOOT_TOLERANCE_MS) return 'left from before a reboot';
  if (c.pid === process.pid) {
    if (heldTokens.has(c.token)) return undefined;
    const owner = c.thread ?? threadId;
    if (owner === threadId) return 'left by this process (a failed release)';
    // Another thread's: only the main thread knows which of them run (a job thread meeting one
    // waits for its host, which clears such locks before each job: breakOwnStaleLock).
    if (!isMainThread || liveThreads.has(owner)) return undefined;
    return `left by thread ${owner} of this process, which has ended`;
  }
  return pidAlive(c.pid) ? undefined : `process ${c.pid} is gone`;
}

export class DeviceLock {
  private released = false;

  private constructor(
    readonly file: string,
    readonly token: string,
    /** Set when a stale lock was broken to get this one. */
    readonly brokeStale: string | undefined,
  ) {}

  /**
   * Takes the lock or throws MooringError USAGE (detail 'LOCKED') naming the owner. `purpose`
   * is shown to whoever finds the lock taken ("backup", "prune", …).
   */
  static async acquire(file: string, purpose: string): Promise<DeviceLock> {
    let broke: string | undefined;
    for (let attempt = 0; attempt < 3; attempt++) {
      const token = randomBytes(8).toString('hex');
      const content: LockContent = {
        pid: process.pid,
        host: os.hostname(),
        boot: bootTime(),
        token,
        thread: threadId,
        since: new Date().toISOString(),
        purpose,
      };
      try {
        const fh = await fsp.open(file, 'wx', 0o644);
        try {
          try {
            await fh.writeFile(JSON.stringify(content));
            await fh.sync();
          } finally {
            await fh.close();
          }
        } catch (e) {
          // e.g. ENOSPC: an empty lock we created would block everyone until it looks stale.
          await fsp.rm(file, { force: true });
          throw e;
        }
        heldTokens.add(token);
        return new DeviceLock(file, token, broke);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      const held = await readLock(file);
      if (!held) continue; // released meanwhile
      const why = staleReason(held);
      if (why === undefined) throw busy(file, held.content);
      // Break it by renaming (atomic), then check we moved the stale one and not a fresh lock
      // taken by another process that broke it first; a fresh one is put back.
      const aside = tempName(`${file}.stale`);
      try {
        await fsp.rename(file, aside);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw err;
      }
      const moved = await readLock(aside);
      if (moved?.content && moved.content.token !== held.content?.token) {
        await fsp.link(aside, file).catch(() => undefined);
        await fsp.rm(aside, { force: true });
        throw busy(file, moved.content);
      }
      await fsp.rm(aside, { force: true });
      broke = why;
    }
    throw busy(file, undefined);
  }

  /** Whether the lock file is still ours (nobody broke it). */
  async stillHeld(): Promise<boolean> {
    if (this.released) return false;
    const l = await readLock(this.file);
    return l?.content?.token === this.token;
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    heldTokens.delete(this.token);
    if (await this.stillHeldRaw()) await fsp.rm(this.file, { force: true });
  }

  private async stillHeldRaw(): Promise<boolean> {
    const l = await readLock(this.file);
    return l?.content?.token === this.token;
  }
}

/**
 * Removes the lock at `file` if thread `thread` of this process holds it: called when that
 * thread has ended, whatever way (a worker that died mid-backup never released it). Returns
 * whether a lock was removed.
 */
export async function releaseLockOfThread(file: string, thread: number): Promise<boolean> {
  const l = await readLock(file);
  const c = l?.content;
  if (!c || c.pid !== process.pid || c.host !== os.hostname() || c.thread !== thread) return false;
  return removeIfToken(file, c.token);
}

/**
 * Removes a stale lock this process left (a failed release, or a thread that has ended), as
 * acquire would break it; a live one, or another process's, is left alone. Returns why it was
 * stale, or undefined. Called on the main thread before each backup job starts its thread.
 */
export async function breakOwnStaleLock(file: string): Promise<string | undefined> {
  const l = await readLock(file);
  const c = l?.content;
  if (!l || !c || c.pid !== process.pid || c.host !== os.hostname()) return undefined;
  const why = staleReason(l);
  if (why === undefined) return undefined;
  return (await removeIfToken(file, c.token)) ? why : undefined;
}

/** Removes the lock at `file` if it is still the one with `token`. */
async function removeIfToken(file: string, token: string): Promise<boolean> {
  // Moved aside first, so a lock another thread takes meanwhile is not the one removed.
  const aside = tempName(`${file}.ended`);
  try {
    await fsp.rename(file, aside);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
  const moved = await readLock(aside);
  if (moved?.content?.token !== token) {
    await fsp.link(aside, file).catch(() => undefined);
    await fsp.rm(aside, { force: true });
    return false;
  }
  await fsp.rm(aside, { force: true });
  return true;
}

function busy(file: string, c: LockContent | undefined): MooringError {
  const who = c
    ? `process ${c.pid} on ${c.host} (${c.purpose}, since ${c.since})`
    : 'another process';
  return new MooringError(
    'USAGE',
    `This device's backups are in use by ${who}. Wait for it to finish; if it is not running any more, remove ${file}.`,
    { detail: 'LOCKED' },
  );
}
