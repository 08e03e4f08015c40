/**
 * One device: its name and state on top, then tabs (Overview, Notifications, Settings). Tabs
 * follow the WAI-ARIA pattern: arrow keys, Home and End move between them, Tab enters the panel.
 * Only the chosen tab's panel exists, and the address (#/device/UDID/TAB) names it, so Back and
 * reload keep the place.
 */
import { h, setText } from '../dom.js';
import { deviceStatusLine, deviceTitle } from '../format.js';
import type { AppState } from '../state.js';
import { filesPanel } from './files.js';
import { notificationsPanel } from './notifications.js';
import { overviewPanel } from './overview.js';
import { pairControl } from './pair-control.js';
import { settingsPanel } from './settings.js';
import type { View } from './view.js';

export const TABS = [
  { id: 'overview', label: 'Overview', panel: overviewPanel },
  { id: 'notifications', label: 'Notifications', panel: notificationsPanel },
  { id: 'settings', label: 'Settings', panel: settingsPanel },
  { id: 'files', label: 'Files', panel: filesPanel },
] as const;
export type TabId = (typeof TABS)[number]['id'];

export function isTab(s: string | undefined): s is TabId {
  return TABS.some((t) => t.id === s);
}

export function deviceView(
  state: AppState,
  udid: string,
  tab: TabId,
  navigate: (hash: string) => void,
): View {
  const title = h('h1', { id: 'device-title' });
  const badge = h('span', { class: 'badge' });
  const back = h('a', { href: '#/', class: 'back' }, '← All devices');
  const pairing = pairControl(state, udid);
  const tablist = h('div', { role: 'tablist', 'aria-labelledby': 'device-title', class: 'tabs' });
  const panel = h('section', { role: 'tabpanel', id: 'device-panel', tabindex: 0, class: 'panel' });
  const missing = h(
    'p',
    { class: 'empty', hidden: true },
    'This device is not known to the agent (any more).',
  );
  const root = h(
    'section',
    { class: 'page device-page' },
    back,
    h('header', { class: 'device-head' }, title, badge),
    pairing.root,
    missing,
    tablist,
    panel,
  );
  // Snapshot browsing only where the transport offers it.
  const tabs = TABS.filter((t) => t.id !== 'files' || state.snapshots !== undefined);
  const current = tabs.find((t) => t.id === tab) ?? tabs[0]!;
  const buttons = tabs.map((t) =>
    h(
      'button',
      {
        type: 'button',
        role: 'tab',
        id: `tab-${t.id}`,
        'aria-controls': 'device-panel',
        'aria-selected': String(t.id === current.id),
        tabindex: t.id === current.id ? 0 : -1,
        'data-tab': t.id,
      },
      t.label,
    ),
  );
  tablist.append(...buttons);
  const select = (id: TabId, focus: boolean): void => {
    navigate(`#/device/${encodeURIComponent(udid)}/${id}`);
    if (focus) document.getElementById(`tab-${id}`)?.focus();
  };
  buttons.forEach((b, i) => {
    b.addEventListener('click', () => select(tabs[i]!.id, false));
    b.addEventListener('keydown', (ev) => {
      const n = tabs.length;
      const to =
        ev.key === 'ArrowRight'
          ? (i + 1) % n
          : ev.key === 'ArrowLeft'
            ? (i - 1 + n) % n
            : ev.key === 'Home'
              ? 0
              : ev.key === 'End'
                ? n - 1
                : -1;
      if (to < 0) return;
      ev.preventDefault();
      select(tabs[to]!.id, true);
    });
  });
  panel.setAttribute('aria-labelledby', `tab-${current.id}`);
  const content = current.panel(state, udid);
  panel.append(content.root);

  const update = (): void => {
    const d = state.devices.get(udid);
    missing.hidden = d !== undefined;
    if (!d) {
      setText(title, udid);
      return;
    }
    setText(title, deviceTitle(d));
    const line = deviceStatusLine(d, Date.now(), state.staleAfterMs);
    setText(badge, line.text);
    badge.className = `badge tone-${line.tone}`;
    pairing.update(d);
  };
  update();
  const unsubscribe = state.subscribe((c) => {
    if (
      c.type === 'reloaded' ||
      c.type === 'agent' ||
      (c.type === 'device' && c.device.udid === udid) ||
      (c.type === 'progress' && c.udid === udid) ||
      (c.type === 'device-removed' && c.udid === udid)
    ) {
      update();
    }
  });
  const d = state.devices.get(udid);
  return {
    root,
    title: `${d ? deviceTitle(d) : udid} — ${current.label}`,
    dispose: () => {
      unsubscribe();
      pairing.dispose();
      content.dispose();
    },
  };
}
