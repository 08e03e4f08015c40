/**
 * A second process for store tests: holds the device lock, or dies by SIGKILL in the middle of
 * staging, a commit, a prune, room made for a backup (D48) or the next backup's copy made ahead,
 * exactly where a real crash would leave things: at the `nth` (default 1st) time it reaches `step`.
 * Usage: node --import tsx child.ts '<json {dest, mode, step?, nth?, policy?, bytes?}>'
 */
import { DEFAULT_RETENTION, openStore } from '../../src/store';
import { sampleEntries, UDID, writeBackup } from './fixture';

interface Args {
  dest: string;
  mode:
    | 'hold'
    | 'stage-and-die'
    | 'commit-and-die'
    | 'prune-and-die'
    | 'room-and-die'
    | 'prepare-and-die';
  step?: string;
  nth?: number;
  policy?: { keepAllDays: number; dailyDays: number; weeklyDays: number };
  /** room-and-die: the bytes asked for, with "make room" on. */
  bytes?: number;
}

async function main(): Promise<void> {
  const a = JSON.parse(process.argv[2]!) as Args;
  let reached = 0;
  const die = (op: string, s: string): void => {
    if (a.step === `${op}:${s}` && ++reached === (a.nth ?? 1)) process.kill(process.pid, 'SIGKILL');
  };
  const store = await openStore(a.dest, UDID, { hooks: { afterStep: die } });
  if (a.mode === 'prune-and-die') {
    await store.prune(a.policy);
    process.stdout.write('pruned\n');
    return;
  }
  if (a.mode === 'room-and-die') {
    await store.makeRoom(a.bytes ?? 1, {
      retention: a.policy ?? DEFAULT_RETENTION,
      beyondRetention: true,
    });
    process.stdout.write('made room\n');
    return;
  }
  if (a.mode === 'prepare-and-die') {
    await store.prepareNext();
    process.stdout.write('prepared\n');
    return;
  }
  const staging = await store.beginStaging();
  if (a.mode === 'hold') {
    process.stdout.write(`ready ${staging.id}\n`);
    // Hold the lock until the parent closes our stdin.
    await new Promise<void>((r) => process.stdin.on('end', r).resume());
    await staging.discard();
    return;
  }
  const entries = sampleEntries(6);
  entries[2] = { ...entries[2]!, content: 'changed by the child' };
  await writeBackup(staging.backupDir, entries);
  if (a.mode === 'stage-and-die') process.kill(process.pid, 'SIGKILL');
  await staging.commit();
  process.stdout.write('committed\n');
}

main().catch((e: unknown) => {
  process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
