/**
 * A device's "Back Up Now" button, its live progress bar and the line that says what happened.
 * While a backup runs the same button reads "Cancel Backup" (one control, so keyboard focus stays
 * put when the state flips). Updated in place from the app state.
 */
import type { DeviceStatus } from '../../agent/types';
import { announce, h, setText } from '../dom.js';
import { deviceTitle, progressPercent, progressText } from '../format.js';
import type { AppState } from '../state.js';
import { errorMessage } from '../transport.js';

export interface BackupControls {
  root: HTMLElement;
  update(d: DeviceStatus): void;
}

export function backupControls(state: AppState, udid: string): BackupControls {
  const button = h('button', { type: 'button', class: 'primary', 'data-action': 'backup' });
  const bar = h('progress', { max: 100, class: 'progress' });
  const progressLine = h('span', { class: 'progress-text' });
  const progress = h('div', { class: 'progress-row', hidden: true }, bar, progressLine);
  const message = h('p', { class: 'action-message', role: 'status' });
  const root = h('div', { class: 'backup-controls' }, button, progress, message);
  let running = false;
  let busy = false;

  button.addEventListener('click', () => {
    if (busy) return;
    busy = true;
    const d = state.devices.get(udid);
    const name = d ? deviceTitle(d) : udid;
    const act = running
      ? state.bridge.call('cancel', udid).then((cancelled) => {
          setText(message, cancelled ? 'Cancelling the backup…' : 'No backup was running.');
        })
      : state.bridge.call('backupNow', udid).then((r) => {
          setText(message, r.started ? `Backup of ${name} started.` : r.message);
          message.classList.toggle('error', !r.started);
          announce(r.started ? `Backup of ${name} started` : r.message);
        });
    act
      .catch((e: unknown) => {
        setText(message, errorMessage(e));
        message.classList.add('error');
      })
      .finally(() => (busy = false));
  });

  const update = (d: DeviceStatus): void => {
    const wasRunning = running;
    running = d.running !== null;
    setText(button, running ? 'Cancel Backup' : 'Back Up Now');
    // Nothing to back up with until it is paired (the Pair button beside it says how).
    button.disabled = !running && !d.paired;
    button.classList.toggle('primary', !running);
    progress.hidden = !running;
    if (d.running) {
      const pct = progressPercent(d.running);
      // No value attribute = indeterminate bar, until the device reports its percentage.
      if (pct === null) bar.removeAttribute('value');
      else bar.value = pct;
      setText(progressLine, progressText(d.running, Date.now()));
      bar.setAttribute('aria-label', `Backup progress of ${deviceTitle(d)}`);
      if (!wasRunning) message.classList.remove('error');
    } else if (wasRunning) {
      setText(message, '');
    }
  };
  const d = state.devices.get(udid);
  if (d) update(d);
  return { root, update };
}
