/**
 * A device's "Back up over Wi-Fi" switch: the device's own EnableWifiConnections as the agent
 * last read it. It acts at once (no Save): the agent sets it on the device and reads it back;
 * on a refusal the box returns to what the device has and the agent's message says why.
 * Disabled until the agent has talked to the device (the value is unknown before).
 */
import type { DeviceStatus } from '../../agent/types';
import { announce, h, setText } from '../dom.js';
import { deviceTitle } from '../format.js';
import type { AppState } from '../state.js';
import { errorMessage } from '../transport.js';

export interface WifiSwitch {
  root: HTMLElement;
  update(d: DeviceStatus): void;
}

/** `idPrefix` keeps ids unique where two views of the switch could share a page. */
export function wifiSwitch(state: AppState, udid: string, idPrefix = 'wifi'): WifiSwitch {
  const id = `${idPrefix}-${udid}`;
  const input = h('input', {
    id,
    type: 'checkbox',
    'data-setting': 'wifi',
    'aria-describedby': `${id}-hint ${id}-error`,
  });
  const label = h('label', { for: id }, 'Back up over Wi-Fi');
  const hint = h('p', { id: `${id}-hint`, class: 'hint' });
  const error = h('p', { id: `${id}-error`, class: 'field-error', role: 'alert', hidden: true });
  const root = h('div', { class: 'field checkbox wifi-switch' }, input, label, hint, error);
  let busy = false;
  let known: boolean | null = null;

  const update = (d: DeviceStatus): void => {
    known = d.wifiBackups;
    if (!busy) input.checked = d.wifiBackups === true;
    input.disabled = busy || d.wifiBackups === null || !d.paired;
    setText(
      hint,
      !d.paired
        ? 'Pair the device first.'
        : d.wifiBackups === null
          ? 'Mooring reads this switch when it next talks to the device: connect it by USB.'
          : 'On: the device can be backed up without the cable when it is on the same network as this computer.',
    );
  };

  input.addEventListener('change', () => {
    const want = input.checked;
    busy = true;
    input.disabled = true;
    error.hidden = true;
    const d = state.devices.get(udid);
    state.bridge
      .call('setWifi', udid, want)
      .then((r) => {
        input.checked = r.on;
        announce(`Wi-Fi backups of ${d ? deviceTitle(d) : udid} ${r.on ? 'on' : 'off'}`);
      })
      .catch((e: unknown) => {
        input.checked = known === true;
        error.hidden = false;
        setText(error, errorMessage(e));
      })
      .finally(() => {
        busy = false;
        const now = state.devices.get(udid);
        if (now) update(now);
        else input.disabled = false;
      });
  });

  const d = state.devices.get(udid);
  if (d) update(d);
  return { root, update };
}
