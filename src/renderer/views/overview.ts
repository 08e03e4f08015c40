/**
 * A device's Overview: its state, last and next backup (with the agent's reason for the time),
 * connection and pairing, Back Up Now with live progress, and the snapshot timeline: one bar per
 * snapshot at its moment, as tall as the data its backup added.
 */
import type { DeviceStatus } from '../../agent/types';
import { h, setText, svg } from '../dom.js';
import {
  deviceStatusLine,
  formatBytes,
  formatRelative,
  formatTimestamp,
  formatWhen,
  nextRunText,
  reachableText,
} from '../format.js';
import type { AppState } from '../state.js';
import { layoutTimeline, snapshotPoints, type TimelinePoint } from '../timeline.js';
import { errorMessage } from '../transport.js';
import { backupControls } from './backup-controls.js';
import { encryptionText } from '../encryption-logic.js'; // H8c

/** Newest snapshots drawn on the timeline. */
const TIMELINE_SNAPSHOTS = 200;
const BOX = { width: 1000, height: 170, padX: 40, padTop: 24, padBottom: 28 };

function row(label: string, ...extra: HTMLElement[]): [HTMLElement, HTMLElement] {
  const dd = h('dd', {}, ...extra);
  const value = h('span');
  dd.prepend(value);
  return [h('div', { class: 'fact' }, h('dt', {}, label), dd), value];
}

export function timelineSvg(points: TimelinePoint[], now: number): SVGSVGElement {
  const layout = layoutTimeline(points, BOX);
  const titleId = 'timeline-title';
  const descId = 'timeline-desc';
  const total = points.reduce((s, p) => s + p.bytes, 0);
  const largest = points.reduce((m, p) => Math.max(m, p.bytes), 0);
  const summary =
    points.length === 0
      ? 'No snapshots yet.'
      : `${points.length} snapshot${points.length === 1 ? '' : 's'} from ${formatWhen(layout.from!, now)} to ${formatWhen(layout.to!, now)}; together they added ${formatBytes(total)}, the largest ${formatBytes(largest)}.`;
  const el = svg(
    'svg',
    {
      class: 'timeline',
      viewBox: `0 0 ${BOX.width} ${BOX.height}`,
      role: 'img',
      'aria-labelledby': `${titleId} ${descId}`,
    },
    svg('title', { id: titleId }, 'Snapshot timeline'),
    svg('desc', { id: descId }, summary),
    svg('line', {
      class: 'axis',
      x1: BOX.padX / 2,
      x2: BOX.width - BOX.padX / 2,
      y1: layout.baseline,
      y2: layout.baseline,
    }),
  );
  for (const b of layout.bars) {
    el.append(
      svg(
        'rect',
        {
          class: 'bar',
          x: b.x,
          y: b.y,
          width: b.width,
          height: b.height,
          rx: 2,
          'data-snapshot': b.id,
        },
        svg('title', {}, `${formatTimestamp(b.at)}: added ${formatBytes(b.bytes)}`),
      ),
    );
  }
  // Sizes above the bars while there is room for them; the newest always.
  const labelled = layout.bars.length <= 8 ? layout.bars : layout.bars.slice(-1);
  for (const b of labelled) {
    el.append(
      svg(
        'text',
        { class: 'bar-label', x: b.x + b.width / 2, y: b.y - 6, 'text-anchor': 'middle' },
        formatBytes(b.bytes),
      ),
    );
  }
  if (layout.from !== null && layout.to !== null) {
    const y = layout.baseline + 18;
    el.append(
      svg('text', { class: 'axis-label', x: BOX.padX / 2, y }, formatWhen(layout.from, now)),
    );
    if (layout.to !== layout.from) {
      el.append(
        svg(
          'text',
          { class: 'axis-label', x: BOX.width - BOX.padX / 2, y, 'text-anchor': 'end' },
          formatWhen(layout.to, now),
        ),
      );
    }
  }
  return el;
}

/**
 * The store's own account (what each snapshot holds alone) where the transport can browse
 * snapshots; else what each successful backup copied, from the attempts.
 */
async function timelinePoints(state: AppState, udid: string): Promise<TimelinePoint[]> {
  if (state.snapshots) {
    try {
      const list = await state.snapshots.snapshots(udid);
      return list
        .slice(-TIMELINE_SNAPSHOTS)
        .map((x) => ({ id: x.id, at: x.at, bytes: x.addedBytes }));
    } catch {
      // An agent without snapshot browsing: fall back to the attempts.
    }
  }
  const page = await state.bridge.call('attempts', {
    udid,
    outcome: 'success',
    limit: TIMELINE_SNAPSHOTS,
  });
  return snapshotPoints(page.items);
}

export function overviewPanel(
  state: AppState,
  udid: string,
): { root: HTMLElement; dispose(): void } {
  const status = h('span', { class: 'badge' });
  const [stateRow, stateValue] = row('State', status);
  stateValue.remove();
  const [lastRow, last] = row('Last backup');
  const why = h('span', { class: 'why' });
  const [nextRow, next] = row('Next backup', why);
  const [sizeRow, size] = row('Last backup added');
  const [connRow, conn] = row('Connection');
  const pairingNote = h('span', { class: 'why' });
  const [pairRow, pairing] = row('Pairing', pairingNote);
  const encNote = h('span', { class: 'why' }); // H8c
  const [encRow, enc] = row('Encryption', encNote);
  const controls = backupControls(state, udid);
  const timelineBox = h('div', { class: 'timeline-box' });
  const timelineError = h('p', { class: 'error', role: 'alert', hidden: true });
  const root = h(
    'div',
    { class: 'overview' },
    h('dl', { class: 'facts wide' }, stateRow, lastRow, nextRow, sizeRow, connRow, pairRow, encRow),
    controls.root,
    h('h3', {}, 'Snapshots'),
    timelineError,
    timelineBox,
  );
  let lastPoints: TimelinePoint[] = [];

  const update = (d: DeviceStatus): void => {
    const now = Date.now();
    const line = deviceStatusLine(d, now, state.staleAfterMs);
    setText(status, line.text);
    status.className = `badge tone-${line.tone}`;
    setText(
      last,
      d.lastSuccess === null
        ? 'Never'
        : `${formatWhen(d.lastSuccess, now)} (${formatRelative(d.lastSuccess, now)})`,
    );
    const n = nextRunText(d, now);
    setText(next, n.headline.replace(/^Next backup: /, ''));
    setText(why, n.why);
    const newest = lastPoints[lastPoints.length - 1];
    setText(size, newest ? formatBytes(newest.bytes) : '—');
    setText(conn, reachableText(d.reachable) + (d.address ? ` (${d.address})` : ''));
    setText(
      pairing,
      {
        ok: 'Trusted',
        expiring: 'Expiring soon',
        invalid: 'Not trusted',
        unknown: 'Not checked yet',
      }[d.pairing.health],
    );
    setText(pairingNote, d.pairing.message ?? '');
    const et = encryptionText(d.encryption); // H8c
    setText(enc, et.state);
    enc.setAttribute('data-testid', 'overview-encryption');
    setText(encNote, et.detail);
    controls.update(d);
  };

  const loadTimeline = async (): Promise<void> => {
    try {
      lastPoints = (await timelinePoints(state, udid)).sort((a, b) => a.at - b.at);
      timelineBox.replaceChildren(timelineSvg(lastPoints, Date.now()));
      timelineError.hidden = true;
      const d = state.devices.get(udid);
      if (d) update(d);
    } catch (e) {
      timelineError.hidden = false;
      setText(timelineError, `The snapshots could not be loaded: ${errorMessage(e)}`);
    }
  };

  const d = state.devices.get(udid);
  if (d) update(d);
  void loadTimeline();
  const unsubscribe = state.subscribe((c) => {
    if (
      c.type === 'agent' ||
      (c.type === 'device' && c.device.udid === udid) ||
      (c.type === 'progress' && c.udid === udid)
    ) {
      const x = state.devices.get(udid);
      if (x) update(x);
    } else if (c.type === 'attempt' && c.attempt.udid === udid && c.attempt.outcome === 'success') {
      void loadTimeline();
    } else if (c.type === 'reloaded') {
      const x = state.devices.get(udid);
      if (x) update(x);
      void loadTimeline();
    }
  });
  const timer = setInterval(() => {
    const x = state.devices.get(udid);
    if (x) update(x);
  }, 30_000);
  return {
    root,
    dispose: () => {
      unsubscribe();
      clearInterval(timer);
    },
  };
}
