/**
 * A device's Notifications: the agent's history for it, newest first, with time, severity,
 * reason, message and fix hint; filtered by severity. Pages come by keyset (`before` = the last
 * page's cursor), so the thousandth page costs what the first does; only loaded rows are in the
 * DOM, and more load when the end of the list scrolls into view (or on "Load more"). New
 * notifications from the event stream go on top without a reload. Rows not read before are marked
 * "New"; seeing them (the tab open and visible) marks them read (what `mooring status` counts as
 * unread): with no filter every notification up to the newest shown, with a severity filter
 * exactly the rows shown (the others it hides stay unread).
 */
import type { NotificationRow, Severity } from '../agent-types.js';
import { h, setText } from '../dom.js';
import { formatRelative, formatTimestamp, SEVERITY_LABEL } from '../format.js';
import type { AppState } from '../state.js';
import { errorMessage } from '../transport.js';

export const NOTIFICATION_PAGE = 100;
/** Ids marked read in one call (the agent takes up to 1,000). */
const MARK_BATCH = 500;

/** One notice as a list item: severity, reason, "New" until read, time, message, what to do. */
export function noticeItem(n: NotificationRow, now: number): HTMLElement {
  const time = h('time', { datetime: new Date(n.at).toISOString(), title: formatTimestamp(n.at) });
  time.textContent = `${formatTimestamp(n.at)} · ${formatRelative(n.at, now)}`;
  return h(
    'li',
    {
      class: `notice severity-${n.severity}${n.read ? '' : ' unread'}`,
      'data-id': n.id,
      'data-reason': n.reasonCode,
    },
    h(
      'div',
      { class: 'notice-head' },
      h('span', { class: `badge sev-${n.severity}` }, SEVERITY_LABEL[n.severity]),
      h('span', { class: 'reason' }, n.reasonCode),
      n.read ? null : h('span', { class: 'new' }, 'New'),
      time,
    ),
    h('p', { class: 'message' }, n.message),
    n.fixHint ? h('p', { class: 'fix' }, h('strong', {}, 'What to do: '), n.fixHint) : null,
  );
}

export function notificationsPanel(
  state: AppState,
  udid: string,
): { root: HTMLElement; dispose(): void } {
  const filterId = `severity-${udid}`;
  const filter = h(
    'select',
    { id: filterId, name: 'severity' },
    h('option', { value: '' }, 'All'),
    h('option', { value: 'error' }, 'Errors'),
    h('option', { value: 'warning' }, 'Warnings'),
    h('option', { value: 'info' }, 'Info'),
  );
  const count = h('span', { class: 'count', 'aria-live': 'polite' });
  const list = h('ol', { class: 'notices', 'aria-label': 'Notifications, newest first' });
  const more = h('button', { type: 'button', class: 'load-more' }, 'Load more');
  const status = h('p', { class: 'list-status', role: 'status' });
  const sentinel = h('div', { class: 'sentinel', 'aria-hidden': 'true' });
  const root = h(
    'div',
    { class: 'notifications' },
    h('div', { class: 'toolbar' }, h('label', { for: filterId }, 'Severity'), filter, count),
    list,
    sentinel,
    more,
    status,
  );

  let severity: Severity | undefined;
  let cursor: number | null = null;
  let done = false;
  let loading: Promise<void> | null = null;
  /** Bumped on every filter change: answers for an older filter are dropped. */
  let generation = 0;
  const shown = new Set<number>();
  /** The newest notification marked read from here; only newer ones are marked again. */
  let readUpTo = 0;
  /** The newest unread notification shown, to mark once it has been seen. */
  let unreadUpTo = 0;
  /** Unread rows shown under a severity filter, to mark by id once seen. */
  const unreadShown = new Set<number>();

  /**
   * Marks read what has been seen, while the page is visible (a live notice arriving behind
   * another window, or in the tray, has not been read). Unfiltered, "up to the newest shown";
   * filtered, the rows shown by id, since "up to" would also mark the rows the filter hides.
   * Best effort: an answer lost only leaves them unread until the tab is opened again.
   */
  const flushRead = (): void => {
    if (document.visibilityState !== 'visible') return;
    if (unreadUpTo > readUpTo) {
      readUpTo = unreadUpTo;
      state.bridge.call('markRead', { udid, upTo: readUpTo }).catch(() => undefined);
    }
    const ids = [...unreadShown];
    unreadShown.clear();
    for (let i = 0; i < ids.length; i += MARK_BATCH) {
      const batch = ids.slice(i, i + MARK_BATCH);
      state.bridge.call('markRead', { udid, ids: batch }).catch(() => undefined);
    }
  };
  const markRead = (rows: readonly NotificationRow[]): void => {
    for (const n of rows) {
      if (n.read) continue;
      if (severity !== undefined) unreadShown.add(n.id);
      else if (n.id > unreadUpTo) unreadUpTo = n.id;
    }
    flushRead();
  };
  document.addEventListener('visibilitychange', flushRead);

  const refreshControls = (): void => {
    more.hidden = done;
    setText(count, `${shown.size}${done ? '' : '+'} shown`);
    if (done && shown.size === 0) setText(status, 'Nothing here yet.');
    else if (done) setText(status, 'That is everything.');
    else setText(status, '');
  };

  const loadMore = (): Promise<void> => {
    if (loading || done) return loading ?? Promise.resolve();
    const gen = generation;
    loading = state.bridge
      .call('history', {
        udid,
        limit: NOTIFICATION_PAGE,
        ...(severity ? { severity } : {}),
        ...(cursor !== null ? { before: cursor } : {}),
      })
      .then((page) => {
        if (gen !== generation) return;
        const now = Date.now();
        const frag = document.createDocumentFragment();
        for (const n of page.items) {
          if (shown.has(n.id)) continue;
          shown.add(n.id);
          frag.append(noticeItem(n, now));
        }
        list.append(frag);
        markRead(page.items);
        cursor = page.nextCursor;
        done = page.nextCursor === null;
        refreshControls();
      })
      .catch((e: unknown) => {
        if (gen === generation) setText(status, `Could not load notifications: ${errorMessage(e)}`);
      })
      .finally(() => {
        if (gen === generation) loading = null;
        // Still room on screen (short pages): keep filling until the sentinel leaves the view.
        if (gen === generation && !done && sentinelOnScreen()) void loadMore();
      });
    return loading;
  };

  const reset = (): void => {
    generation++;
    loading = null;
    cursor = null;
    done = false;
    shown.clear();
    // Rows waiting to be seen (the page hidden) are gone from the list: not seen after all.
    unreadUpTo = readUpTo;
    unreadShown.clear();
    list.replaceChildren();
    setText(status, 'Loading…');
    void loadMore();
  };

  filter.addEventListener('change', () => {
    severity = (filter.value || undefined) as Severity | undefined;
    reset();
  });
  more.addEventListener('click', () => void loadMore());

  const sentinelOnScreen = (): boolean => {
    if (sentinel.offsetParent === null) return false; // detached or hidden
    const r = sentinel.getBoundingClientRect();
    return r.top < window.innerHeight && r.bottom >= 0;
  };
  // An entry is measured at a frame and delivered later: by then the first page may have pushed the
  // sentinel off the screen, so where it is now decides.
  const observer = new IntersectionObserver((entries) => {
    if (entries.some((e) => e.isIntersecting) && sentinelOnScreen()) void loadMore();
  });
  observer.observe(sentinel);

  const unsubscribe = state.subscribe((c) => {
    if (c.type === 'notification') {
      const n = c.notification;
      if (n.udid !== udid || (severity && n.severity !== severity) || shown.has(n.id)) return;
      shown.add(n.id);
      list.prepend(noticeItem(n, Date.now()));
      markRead([n]);
      refreshControls();
    } else if (c.type === 'reloaded') {
      reset();
    }
  });
  reset();
  return {
    root,
    dispose: () => {
      unsubscribe();
      observer.disconnect();
      document.removeEventListener('visibilitychange', flushRead);
    },
  };
}
