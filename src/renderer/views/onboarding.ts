/**
 * The setup guide for a first run: (1) connect by USB and trust this computer, (2) switch on
 * Wi-Fi backups, (3) choose where backups go. Each step is done right here (Pair buttons, the
 * Wi-Fi switches, the folder form) and follows the agent's events live. It opens by itself on
 * the device list while nothing is paired, and at #/welcome (where the desktop app opens on its
 * first launch). "Hide Setup Guide" is remembered in this browser's (or the app window's) local
 * storage: the agent has no setting for it.
 */
import type { DeviceStatus } from '../../agent/types';
import { h, setText } from '../dom.js';
import { deviceTitle } from '../format.js';
import { GUIDE_DISMISSED_KEY, guideSteps, pairAction, type StepState } from '../pairing.js';
import type { AppState } from '../state.js';
import { backupFolderForm } from './backup-folder.js';
import { pairControl, type PairControl } from './pair-control.js';
import type { View } from './view.js';
import { wifiSwitch, type WifiSwitch } from './wifi-switch.js';

export function guideDismissed(): boolean {
  try {
    return localStorage.getItem(GUIDE_DISMISSED_KEY) === 'true';
  } catch {
    return false; // storage unavailable: the guide simply shows again
  }
}

function rememberDismissed(): void {
  try {
    localStorage.setItem(GUIDE_DISMISSED_KEY, 'true');
  } catch {
    // Not remembered; nothing else depends on it.
  }
}

const STEP_LABEL: Record<StepState, string> = { done: 'Done', todo: 'To do', waiting: 'Waiting' };

function step(
  id: string,
  title: string,
  text: string,
  ...body: HTMLElement[]
): { el: HTMLElement; setState(s: StepState | 'optional'): void } {
  const badge = h('span', { class: 'badge step-state' });
  const el = h(
    'li',
    { class: 'step', 'data-step': id },
    h('h3', {}, title, ' ', badge),
    h('p', { class: 'step-text' }, text),
    ...body,
  );
  return {
    el,
    setState: (s) => {
      el.dataset.state = s;
      setText(badge, s === 'optional' ? 'Optional' : STEP_LABEL[s]);
      badge.className = `badge step-state tone-${s === 'done' ? 'ok' : s === 'todo' ? 'attention' : 'idle'}`;
    },
  };
}

interface Row<C> {
  el: HTMLElement;
  control: C;
}

export function setupGuide(
  state: AppState,
  o: { onDismiss(): void },
): { root: HTMLElement; dispose(): void } {
  const pairList = h('ul', { class: 'step-devices' });
  const pairEmpty = h(
    'p',
    { class: 'hint' },
    'No device is connected yet: connect your iPhone or iPad with its cable and unlock it.',
  );
  const wifiList = h('ul', { class: 'step-devices' });
  const wifiEmpty = h('p', { class: 'hint' }, 'Pair a device first.');
  const folder = backupFolderForm(state, 'guide-backup-dir');
  const s1 = step(
    'pair',
    '1. Connect by USB and trust this computer',
    'Connect the device with its cable and unlock it. Press Pair, then tap “Trust” on the device and enter its passcode.',
    pairEmpty,
    pairList,
  );
  const s2 = step(
    'wifi',
    '2. Switch on Wi-Fi backups',
    'Then Mooring can back the device up without the cable whenever it is on the same network as this computer.',
    wifiEmpty,
    wifiList,
  );
  const s3 = step(
    'folder',
    '3. Choose where backups go',
    'Any folder this computer can write to, such as one on an external disk formatted APFS, NTFS or ext4 (exFAT and FAT32 cannot keep versions).',
    folder.root,
  );
  const hide = h('button', { type: 'button', class: 'secondary' }, 'Hide Setup Guide');
  const root = h(
    'section',
    { class: 'setup-guide', 'aria-labelledby': 'guide-title' },
    h('h2', { id: 'guide-title' }, 'Set up Mooring'),
    h('ol', { class: 'steps' }, s1.el, s2.el, s3.el),
    h('div', { class: 'actions' }, hide),
  );
  hide.addEventListener('click', () => {
    rememberDismissed();
    o.onDismiss();
  });

  const pairRows = new Map<string, Row<PairControl>>();
  const wifiRows = new Map<string, Row<WifiSwitch>>();
  const sync = (): void => {
    const devices = state.list();
    const toPair = devices.filter((d) => pairAction(d) !== null || state.pairing.has(d.udid));
    const paired = devices.filter((d) => d.paired);
    syncRows(
      pairList,
      pairRows,
      toPair,
      (d) => {
        const control = pairControl(state, d.udid);
        const el = h(
          'li',
          { 'data-udid': d.udid },
          h('span', { class: 'name' }, deviceTitle(d)),
          control.root,
        );
        return { el, control };
      },
      (r, d) => {
        setText(r.el.querySelector('.name')!, deviceTitle(d));
        r.control.update(d);
      },
      (r) => r.control.dispose(),
    );
    syncRows(
      wifiList,
      wifiRows,
      paired,
      (d) => {
        const control = wifiSwitch(state, d.udid, 'guide-wifi');
        const el = h(
          'li',
          { 'data-udid': d.udid },
          h('span', { class: 'name' }, deviceTitle(d)),
          control.root,
        );
        return { el, control };
      },
      (r, d) => {
        setText(r.el.querySelector('.name')!, deviceTitle(d));
        r.control.update(d);
      },
    );
    pairEmpty.hidden = toPair.length > 0;
    wifiEmpty.hidden = paired.length > 0;
    const steps = guideSteps(devices);
    s1.setState(steps.pair);
    s2.setState(steps.wifi);
    s3.setState('optional');
  };
  sync();
  const unsubscribe = state.subscribe((c) => {
    if (
      c.type === 'device' ||
      c.type === 'device-removed' ||
      c.type === 'reloaded' ||
      c.type === 'pairing'
    ) {
      sync();
    }
  });
  return {
    root,
    dispose: () => {
      unsubscribe();
      folder.dispose();
      for (const r of pairRows.values()) r.control.dispose();
    },
  };
}

/** Keeps `list` showing one row per device in `devices`, in order, updating rows in place. */
function syncRows<C>(
  list: HTMLElement,
  rows: Map<string, Row<C>>,
  devices: DeviceStatus[],
  make: (d: DeviceStatus) => Row<C>,
  update: (r: Row<C>, d: DeviceStatus) => void,
  drop?: (r: Row<C>) => void,
): void {
  const wanted = new Set(devices.map((d) => d.udid));
  for (const [udid, r] of rows) {
    if (!wanted.has(udid)) {
      r.el.remove();
      drop?.(r);
      rows.delete(udid);
    }
  }
  devices.forEach((d, i) => {
    let r = rows.get(d.udid);
    if (!r) {
      r = make(d);
      rows.set(d.udid, r);
    }
    update(r, d);
    if (list.children[i] !== r.el) list.insertBefore(r.el, list.children[i] ?? null);
  });
}

/** #/welcome: the guide on a page of its own; hiding it goes to the device list. */
export function welcomeView(state: AppState, navigate: (hash: string) => void): View {
  const guide = setupGuide(state, {
    onDismiss: () => navigate('#/'),
  });
  const root = h(
    'section',
    { class: 'page welcome' },
    h('h1', {}, 'Welcome to Mooring'),
    h(
      'p',
      { class: 'lead' },
      'Mooring backs up your iPhone and iPad to this computer, in the format Finder and iTunes use, by itself and on a schedule.',
    ),
    guide.root,
  );
  return { root, title: 'Welcome', dispose: guide.dispose };
}
