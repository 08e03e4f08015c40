/**
 * A second process for store tests: holds the device lock, or dies by SIGKILL in the middle of
 * staging, a commit, a prune or the next backup's copy made ahead, exactly where a real crash would
 * leave things.
 * Usage: node --import tsx child.ts '<json {dest, mode, step?, dateMs?}>'
 */
import { openStore } from '../../src/store';
import { sampleEntries, UDID, writeBackup } from './fixture';

interface Args {
  dest: string;
  mode: 'hold' | 'stage-and-die' | 'commit-and-die' | 'prune-and-die' | 'prepare-and-die';
  step?: string;
  policy?: { keepAllDays: number; dailyDays: number; weeklyDays: number };
}

async function main(): Promise<void> {
  const a = JSON.parse(process.argv[2]!) as Args;
  const die = (op: string, s: string): void => {
    if (a.step === `${op}:${s}`) process.kill(process.pid, 'SIGKILL');
  };
  const store = await openStore(a.dest, UDID, { hooks: { afterStep: die } });
  if (a.mode === 'prune-and-die') {
    await store.prune(a.policy);
    process.stdout.write('pruned\n');
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
