/**
 * "Back up now" from a person: starts the backup at once, or says why it cannot start now and
 * what to do about it. Unlike the schedule it ignores the interval, the window and pausing.
 */
import { decideManual } from '../scheduler';
import type { AgentContext } from './agent-context';
import type { BackupRunner } from './backup-runner';
import type { BackupNowResult } from './types';

export function manualBackup(
  ctx: AgentContext,
  runner: Pick<BackupRunner, 'start'>,
  udid: string,
): BackupNowResult {
  const view = ctx.view;
  const u = view.canonicalUdid(udid);
  if (u === undefined) {
    return refused(
      'UNKNOWN_DEVICE',
      `No device ${udid} is known to Mooring: connect it by USB, unlock it and pair it (mooring pair --udid ${udid})`,
    );
  }
  if (ctx.stopping) return refused('STOPPING', 'Mooring is stopping; try again after it restarts');
  if (!view.isPaired(u)) {
    return refused(
      'NOT_PAIRED',
      `${view.label(u)} is not paired with this computer: connect it by USB, unlock it and run mooring pair --udid ${u}`,
    );
  }
  const now = ctx.now();
  const d = decideManual(ctx.stateOf(u, now, ctx.policyOf(u)), ctx.coordinator.load());
  if (d.action === 'skip') {
    switch (d.reasonCode) {
      case 'ALREADY_RUNNING':
        return refused(
          'ALREADY_RUNNING',
          `A backup of ${view.label(u)} is already running${d.params.passcodeWaiting ? ' and waiting for the passcode on the device' : ''}`,
        );
      case 'NOT_REACHABLE': {
        const seen = view.lastSeen(u);
        return refused(
          'NOT_REACHABLE',
          `${view.label(u)} is not reachable${seen === null ? '' : ` (last seen ${new Date(seen).toISOString()})`}: connect it by USB, or bring it onto this computer's Wi-Fi network with "Sync with this iPhone over Wi-Fi" on, then try again`,
        );
      }
      case 'CONCURRENCY_LIMIT':
        return refused(
          'CONCURRENCY_LIMIT',
          `${d.params.running} backup(s) already running (at most ${d.params.concurrency} at a time): try again when it finishes, or raise the limit (mooring config set concurrency N)`,
        );
      default:
        return refused(d.reasonCode, 'The backup cannot start now');
    }
  }
  const started = runner.start(u, 'manual', d.transport);
  if ('code' in started) return refused(started.code, started.message);
  return {
    started: true,
    attemptId: started.attemptId,
    code: null,
    message: `Backup of ${view.label(u)} started over ${d.transport === 'usb' ? 'USB' : 'Wi-Fi'}`,
  };
}

function refused(code: string, message: string): BackupNowResult {
  return { started: false, attemptId: null, code, message };
}
