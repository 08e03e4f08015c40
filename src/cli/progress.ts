/**
 * How `mooring backup` shows a running backup: one live status line on a terminal, one line per
 * notable event otherwise, or one JSON object per line with --json (for scripts and the tests).
 */
import type { BackupEvent, BackupPhase } from '../backup/events';
import { formatBytes } from '../util/bytes';

/** Re-exported: the commands that list sizes print them as the progress line does. */
export { formatBytes };

const PHASE_TEXT: Record<BackupPhase, string> = {
  connecting: 'Connecting',
  locking: 'Waiting for the device to start syncing',
  preparing: 'Device is preparing the backup',
  'waiting-for-passcode': 'Enter the passcode on the device to start the backup',
  transferring: 'Backing up',
  finishing: 'Finishing',
};

export interface ProgressSink {
  event(e: BackupEvent | { type: 'store'; message: string }): void;
  /** Ends the live line, if any, before the final message. */
  done(): void;
}

export function jsonProgress(write: (line: string) => void): ProgressSink {
  return {
    event: (e) => write(JSON.stringify({ t: new Date().toISOString(), ...e })),
    done: () => undefined,
  };
}

/** `live`: rewrite one status line in place (a TTY); otherwise print a line per phase/notice. */
export function humanProgress(write: (text: string) => void, live: boolean): ProgressSink {
  let phase: BackupPhase = 'connecting';
  let lineOpen = false;
  const line = (text: string): void => {
    if (live) {
      write(`\r\x1b[2K${text}`);
      lineOpen = true;
    } else write(text + '\n');
  };
  const notice = (text: string): void => {
    if (lineOpen) write('\n');
    lineOpen = false;
    write(text + '\n');
  };
  return {
    event(e) {
      switch (e.type) {
        case 'phase':
          phase = e.phase;
          if (live) line(PHASE_TEXT[e.phase] + '…');
          else notice(PHASE_TEXT[e.phase] + '…');
          break;
        case 'progress':
          if (!live) break; // a log gets phases, not hundreds of percentages
          line(
            `${PHASE_TEXT[phase]}: ${e.percent.toFixed(0)}%  ${formatBytes(e.bytesReceived)}  ` +
              `${e.filesReceived} files  ${formatBytes(e.rateBytesPerSec)}/s`,
          );
          break;
        case 'passcode-requested':
          notice('The device asks for its passcode: enter it on the device to start the backup.');
          break;
        case 'passcode-dismissed':
          notice('The passcode prompt was dismissed on the device.');
          break;
        case 'device-cancelled':
          notice('The backup was cancelled on the device.');
          break;
        case 'refused-path':
          notice(`Refused a path outside the backup folder: ${e.path} (${e.reason})`);
          break;
        case 'stalled':
          line(
            `${PHASE_TEXT[e.phase]}: no data for ${Math.round(e.waitingMs / 1000)} s (the device may still be preparing)…`,
          );
          break;
        case 'resumed':
          break;
        case 'warning':
          notice(`Warning: ${e.message}`);
          break;
        case 'store':
          notice(e.message);
          break;
      }
    },
    done() {
      if (lineOpen) write('\n');
      lineOpen = false;
    },
  };
}
