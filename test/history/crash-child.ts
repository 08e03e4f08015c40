/**
 * A process that writes to the history database as fast as it can until it is killed (SIGKILL).
 * It prints a line after each commit returns, so the parent knows which rows must survive.
 * Usage: node --import tsx crash-child.ts <file> <udid>
 */
import { backupSucceeded, GLOBAL_SCOPE, openHistory } from '../../src/history';

const [file, udid] = process.argv.slice(2) as [string, string];
const h = openHistory(file);
// Stdout to a pipe is synchronous on Linux: a line printed is a commit that returned.
process.stdout.write(`interrupted ${h.markRunningAttemptsInterrupted().length}\n`);
h.upsertDevice({ udid, name: 'Crash test' });
for (let i = 0; ; i++) {
  const id = h.startAttempt({ udid, trigger: 'schedule', transport: 'usb' });
  process.stdout.write(`started ${id}\n`);
  h.markSeen(udid, 'usb'); // a synchronous = NORMAL write between the durable ones
  h.finishAttempt(id, {
    outcome: 'success',
    bytes: i,
    files: 1,
    notice: backupSucceeded({ bytes: i, durationMs: 1, filesChanged: 1 }),
  });
  process.stdout.write(`finished ${id}\n`);
  if (i % 7 === 0) {
    h.setSetting(GLOBAL_SCOPE, 'counter', { i });
    process.stdout.write(`setting ${i}\n`);
  }
}
