/**
 * A device's "Pair" button and what pairing said: the wait for "Trust This Computer?" while it
 * runs, then the agent's answer. The state lives in AppState, so the device list, the device
 * page and the setup guide show the same pairing; the device's next `device` event shows it
 * paired (and the button goes), without a reload.
 */
import type { DeviceStatus } from '../../agent/types';
import { announce, h, setText } from '../dom.js';
import { deviceTitle } from '../format.js';
import { pairAction } from '../pairing.js';
import type { AppState } from '../state.js';

export interface PairControl {
  root: HTMLElement;
  update(d: DeviceStatus): void;
  dispose(): void;
}

export function pairControl(state: AppState, udid: string): PairControl {
  const button = h('button', { type: 'button', class: 'primary', 'data-action': 'pair' }, 'Pair');
  const message = h('p', { class: 'action-message pair-message', role: 'status' });
  const root = h('div', { class: 'pair-control', hidden: true }, button, message);

  button.addEventListener('click', () => {
    void state.pair(udid).then((r) => announce(r.message));
  });

  const update = (d: DeviceStatus): void => {
    const action = pairAction(d);
    const p = state.pairing.get(udid);
    // The button while pairing is needed (or under way); the answer stays after it paired.
    button.hidden = action === null && !p?.busy;
    setText(button, action ?? 'Pair');
    button.disabled = p?.busy === true;
    button.setAttribute('aria-label', `${action ?? 'Pair'} ${deviceTitle(d)}`);
    setText(message, p?.message ?? '');
    message.classList.toggle('error', p !== undefined && !p.busy && !p.ok);
    root.hidden = button.hidden && !p;
  };
  const sync = (): void => {
    const d = state.devices.get(udid);
    if (d) update(d);
  };
  sync();
  // Pairing changes arrive here directly; device changes come through the owner's update().
  const unsubscribe = state.subscribe((c) => {
    if (c.type === 'pairing' && c.udid === udid) sync();
  });
  return { root, update, dispose: unsubscribe };
}
