/**
 * Mooring's own notices, those about no one device (a webhook that cannot be reached, the backup
 * folder moved), which no device's Notifications tab shows: the unread ones, newest first, on
 * the device list, each with what to do, until "Mark as Read". New ones arrive from the event
 * stream.
 */
import type { NotificationRow } from '../agent-types.js';
import { h } from '../dom.js';
import type { AppState } from '../state.js';
import { errorMessage } from '../transport.js';
import { noticeItem } from './notifications.js';

/** Unread notices shown at most (the rest are in `mooring history`). */
export const AGENT_NOTICES_SHOWN = 5;

export function agentNotices(state: AppState): { root: HTMLElement; dispose(): void } {
  const list = h('ul', { class: 'agent-notices-list' });
  const done = h('button', { type: 'button', class: 'secondary' }, 'Mark as Read');
  const status = h('p', { class: 'hint', role: 'status' });
  const root = h(
    'section',
    { class: 'agent-notices', 'aria-labelledby': 'agent-notices-title', hidden: true },
    h('h2', { id: 'agent-notices-title' }, 'Mooring'),
    list,
    done,
    status,
  );
  let shown: NotificationRow[] = [];

  const render = (): void => {
    shown = shown.slice(0, AGENT_NOTICES_SHOWN);
    const now = Date.now();
    list.replaceChildren(...shown.map((n) => noticeItem(n, now)));
    root.hidden = shown.length === 0;
  };

  const load = (): void => {
    state.bridge
      .call('history', { kind: 'agent', limit: 50 })
      .then((page) => {
        shown = page.items.filter((n) => n.udid === null && !n.read);
        render();
      })
      .catch(() => undefined); // the device list says when the agent is gone
  };

  done.addEventListener('click', () => {
    const upTo = shown[0]?.id;
    if (upTo === undefined) return;
    state.bridge
      .call('markRead', { udid: null, upTo })
      .then(() => {
        shown = shown.filter((n) => n.id > upTo);
        render();
      })
      .catch((e: unknown) => (status.textContent = errorMessage(e)));
  });

  const unsubscribe = state.subscribe((c) => {
    if (c.type === 'notification' && c.notification.udid === null && !c.notification.read) {
      shown = [c.notification, ...shown.filter((n) => n.id !== c.notification.id)];
      render();
    } else if (c.type === 'reloaded') load();
  });
  load();
  return { root, dispose: unsubscribe };
}
