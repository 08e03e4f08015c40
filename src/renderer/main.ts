/**
 * The UI's entry point: picks the transport (Electron's preload bridge when present, else the
 * agent's HTTP API on this origin), loads the agent's state, keeps it live from the event
 * stream, and shows the page the address names: #/ (devices), #/welcome (the setup guide) or
 * #/device/UDID/TAB.
 */
import { h, setText } from './dom.js';
import { HttpBridge } from './http-transport.js';
import { IpcBridge, ipcAvailable } from './ipc-transport.js';
import type { SnapshotSource } from './snapshot-source.js';
import { AppState } from './state.js';
import { errorMessage, type MooringBridge } from './transport.js';
import { deviceListView } from './views/device-list.js';
import { deviceView, isTab } from './views/device-view.js';
import { welcomeView } from './views/onboarding.js';
import type { View } from './views/view.js';

function pickBridge(): { bridge: MooringBridge; snapshots: SnapshotSource; http?: HttpBridge } {
  if (ipcAvailable(window)) {
    const ipc = new IpcBridge(window.mooring!);
    return { bridge: ipc, snapshots: ipc };
  }
  const http = new HttpBridge();
  return { bridge: http, snapshots: http, http };
}

function header(state: AppState): { el: HTMLElement; update(): void } {
  const pausedNote = h(
    'span',
    { class: 'badge tone-attention', hidden: true },
    'Automatic backups paused',
  );
  const toggle = h('button', { type: 'button', class: 'secondary', 'data-action': 'pause' });
  const offline = h(
    'p',
    { class: 'offline', role: 'alert', hidden: true },
    'Lost the connection to the Mooring agent; reconnecting…',
  );
  // Without usbmuxd no device appears on USB and none can be paired: say why, and what to do.
  const usb = h('p', { class: 'usb-problem', role: 'status', hidden: true });
  toggle.addEventListener('click', () => {
    const call = state.paused ? state.bridge.call('resume') : state.bridge.call('pause');
    call.catch((e: unknown) => {
      offline.hidden = false;
      setText(offline, errorMessage(e));
    });
  });
  const el = h(
    'header',
    { class: 'app-header' },
    h('a', { href: '#/', class: 'brand' }, 'Mooring'),
    h('div', { class: 'header-actions' }, pausedNote, toggle),
    offline,
    usb,
  );
  const update = (): void => {
    pausedNote.hidden = !state.paused;
    setText(toggle, state.paused ? 'Resume Automatic Backups' : 'Pause Automatic Backups');
    offline.hidden = !state.offline;
    usb.hidden = state.usbProblem === null;
    setText(
      usb,
      state.usbProblem === null
        ? ''
        : `USB is not available, so devices cannot be paired or backed up by cable: ${state.usbProblem}. Wi-Fi backups of paired devices go on.`,
    );
  };
  update();
  return { el, update };
}

async function start(): Promise<void> {
  const app = document.getElementById('app');
  if (!app) return;
  const { bridge, snapshots, http } = pickBridge();
  const state = new AppState(bridge, snapshots);
  const top = header(state);
  const main = h('main', { id: 'main', tabindex: -1 });
  app.replaceChildren(top.el, main);
  state.subscribe((c) => {
    if (['agent', 'usbmuxd', 'connection', 'reloaded'].includes(c.type)) top.update();
  });
  http?.onConnection(
    () => {
      state.setOffline(false);
      void state.load().catch(() => undefined);
    },
    () => state.setOffline(true),
  );

  let view: View | undefined;
  /** The address `view` was built for: a link to another hash fires popstate, then hashchange. */
  let shown: string | undefined;
  const route = (): void => {
    // Built once per address: a second build would throw away the first, and with it the focus.
    if (view !== undefined && location.hash === shown) return;
    shown = location.hash;
    const parts = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
    const previous = view;
    if (parts[0] === 'device' && parts[1]) {
      const tab = isTab(parts[2]) ? parts[2] : 'overview';
      view = deviceView(state, parts[1], tab, navigate);
    } else if (parts[0] === 'welcome') {
      view = welcomeView(state, navigate);
    } else {
      view = deviceListView(state);
    }
    previous?.dispose();
    main.replaceChildren(view.root);
    document.title = `${view.title} — Mooring`;
  };
  const navigate = (hash: string): void => {
    if (location.hash === hash) return;
    history.pushState(null, '', hash);
    route();
  };
  // The skip link moves focus without touching the address (which names the page).
  document.querySelector('.skip-link')?.addEventListener('click', (ev) => {
    ev.preventDefault();
    main.focus();
  });
  window.addEventListener('hashchange', route);
  window.addEventListener('popstate', route);

  try {
    await state.load();
  } catch (e) {
    main.replaceChildren(
      h(
        'p',
        { class: 'error', role: 'alert' },
        `The Mooring agent did not answer: ${errorMessage(e)}`,
      ),
    );
    return;
  }
  route();
  document.body.dataset.ready = 'true';
}

void start();
