/**
 * The start page: one card per device with its state at a glance (status line, connection, last
 * and next backup, live progress), Back Up Now, and Pair for a device not paired yet. While
 * nothing is paired the setup guide leads (unless it was dismissed). Cards are updated in place
 * on events.
 */
import type { DeviceStatus } from '../../agent/types';
import { h, setText } from '../dom.js';
import {
  deviceStatusLine,
  deviceTitle,
  formatRelative,
  formatTimestamp,
  nextRunText,
  reachableText,
} from '../format.js';
import { showGuide } from '../pairing.js';
import type { AppState } from '../state.js';
import { agentNotices } from './agent-notices.js';
import { backupControls } from './backup-controls.js';
import { guideDismissed, setupGuide } from './onboarding.js';
import { pairControl } from './pair-control.js';
import type { View } from './view.js';

interface Card {
  el: HTMLElement;
  update(d: DeviceStatus, now: number): void;
  dispose(): void;
}

function fact(label: string): [HTMLElement, HTMLElement] {
  const dd = h('dd');
  return [h('div', { class: 'fact' }, h('dt', {}, label), dd), dd];
}

function card(state: AppState, d: DeviceStatus): Card {
  const link = h('a', { href: `#/device/${encodeURIComponent(d.udid)}/overview` });
  const headingId = `device-${d.udid}`;
  const title = h('h2', { id: headingId }, link);
  const model = h('p', { class: 'model' });
  const badge = h('span', { class: 'badge' });
  const [connRow, conn] = fact('Connection');
  const [lastRow, last] = fact('Last backup');
  const [nextRow, nextCell] = fact('Next backup');
  const next = h('span');
  const nextWhy = h('span', { class: 'why' });
  nextCell.append(next, nextWhy);
  const controls = backupControls(state, d.udid);
  const pairing = pairControl(state, d.udid);
  const el = h(
    'article',
    { class: 'device-card', 'aria-labelledby': headingId, 'data-udid': d.udid },
    h('header', {}, title, badge),
    model,
    h('dl', { class: 'facts' }, connRow, lastRow, nextRow),
    pairing.root,
    controls.root,
  );
  const update = (x: DeviceStatus, now: number): void => {
    setText(link, deviceTitle(x));
    setText(
      model,
      [x.productType, x.iosVersion && `iOS ${x.iosVersion}`].filter(Boolean).join(' · ') || x.udid,
    );
    const line = deviceStatusLine(x, now, state.staleAfterMs);
    setText(badge, line.text);
    badge.className = `badge tone-${line.tone}`;
    setText(conn, reachableText(x.reachable));
    setText(last, x.lastSuccess === null ? 'Never' : formatRelative(x.lastSuccess, now));
    last.title = x.lastSuccess === null ? '' : formatTimestamp(x.lastSuccess);
    const n = nextRunText(x, now);
    setText(next, n.headline.replace(/^Next backup: /, ''));
    // The reason only when nothing is planned: then it says what stands in the way.
    setText(nextWhy, /not planned$/.test(n.headline) ? n.why : '');
    next.title = n.why;
    controls.update(x);
    pairing.update(x);
  };
  update(d, Date.now());
  return { el, update, dispose: pairing.dispose };
}

export function deviceListView(state: AppState): View {
  const list = h('div', { class: 'device-grid' });
  const empty = h(
    'p',
    { class: 'empty' },
    'No devices yet. Connect an iPhone or iPad by USB and unlock it; it appears here, and Pair asks it to trust this computer.',
  );
  // Decided once, when the page opens: pairing from the guide must not make it vanish mid-way.
  const guide = showGuide(state.list(), guideDismissed())
    ? setupGuide(state, {
        onDismiss: () => {
          guide?.root.remove();
          sync();
          // Its button went with it: keep the keyboard on the page.
          document.getElementById('main')?.focus();
        },
      })
    : undefined;
  const reopen = h('p', { class: 'guide-link' }, h('a', { href: '#/welcome' }, 'Setup guide'));
  const notices = agentNotices(state);
  const root = h(
    'section',
    { class: 'page', 'aria-labelledby': 'devices-title' },
    h('h1', { id: 'devices-title' }, 'Devices'),
    notices.root,
    guide?.root,
    empty,
    list,
    reopen,
  );
  const cards = new Map<string, Card>();

  const sync = (): void => {
    const now = Date.now();
    const devices = state.list();
    for (const [udid, c] of cards) {
      if (!state.devices.has(udid)) {
        c.el.remove();
        c.dispose();
        cards.delete(udid);
      }
    }
    devices.forEach((d, i) => {
      let c = cards.get(d.udid);
      if (!c) {
        c = card(state, d);
        cards.set(d.udid, c);
      } else c.update(d, now);
      if (list.children[i] !== c.el) list.insertBefore(c.el, list.children[i] ?? null);
    });
    // The guide says the same, with more to do.
    empty.hidden = devices.length > 0 || guide?.root.isConnected === true;
  };
  sync();
  const unsubscribe = state.subscribe((c) => {
    if (c.type === 'progress') {
      const d = state.devices.get(c.udid);
      if (d) cards.get(c.udid)?.update(d, Date.now());
    } else if (['device', 'device-removed', 'reloaded', 'agent'].includes(c.type)) {
      sync();
    }
  });
  // Relative times ("3 min ago") age while the page stays open.
  const timer = setInterval(sync, 30_000);
  return {
    root,
    title: 'Devices',
    dispose: () => {
      unsubscribe();
      clearInterval(timer);
      for (const c of cards.values()) c.dispose();
      guide?.dispose();
      notices.dispose();
    },
  };
}
