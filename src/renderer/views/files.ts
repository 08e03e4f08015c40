/**
 * A device's Files: browse a snapshot's files by domain (exact or AppDomain-*) and a path
 * pattern, a page at a time; download one file; and see what changed between two snapshots
 * (exact counts per domain, the first entries). Read-only: the agent never takes the backup lock
 * for this, so a backup may start meanwhile.
 */
import type { DiffSummary, FileEntry, SnapshotSummary } from '../../agent/types';
import { h, setText } from '../dom.js';
import { formatBytes, formatTimestamp } from '../format.js';
import type { SnapshotSource } from '../snapshot-source.js';
import type { AppState } from '../state.js';
import { errorMessage } from '../transport.js';

export const FILE_PAGE = 200;

/**
 * "2026-11-22 05:31:07 · 206 files · 21.2 MB · latest · pinned": what sets a snapshot apart,
 * above all one that is damaged or incomplete, before someone restores from it.
 */
export function snapshotLabel(s: SnapshotSummary): string {
  const parts = [formatTimestamp(s.at), `${s.files} files`, formatBytes(s.size)];
  if (s.encrypted) parts.push('encrypted');
  if (s.isLatest) parts.push('latest');
  if (s.pinned) parts.push('pinned');
  if (s.damaged) parts.push('DAMAGED');
  else if (!s.complete) parts.push('incomplete');
  if (s.adopted) parts.push('made by another program');
  return parts.join(' · ');
}

function labelled(id: string, label: string, control: HTMLElement): HTMLElement {
  control.id = id;
  return h('div', { class: 'inline-field' }, h('label', { for: id }, label), control);
}

/**
 * A file's download control: in the desktop app a button that has the main process save it where
 * the person chooses (the outcome said in `status`); in a browser a plain link.
 */
function downloadControl(
  source: SnapshotSource,
  udid: string,
  snap: string,
  f: FileEntry,
  status: HTMLElement,
): HTMLElement | null {
  if (f.type !== 'file') return null;
  const name = f.relativePath.split('/').pop() ?? 'file';
  const save = source.saveFile?.bind(source);
  if (save) {
    const button = h(
      'button',
      { type: 'button', class: 'link-button', 'aria-label': `Save ${f.domain} ${f.relativePath}` },
      'Save…',
    );
    button.addEventListener('click', () => {
      button.disabled = true;
      save(udid, snap, f.domain, f.relativePath)
        .then((r) =>
          setText(
            status,
            r.saved
              ? `Saved ${name} (${formatBytes(r.bytes)}) to ${r.path ?? 'the chosen folder'}.`
              : `${name} was not saved.`,
          ),
        )
        .catch((e: unknown) => setText(status, `${name} could not be saved: ${errorMessage(e)}`))
        .finally(() => (button.disabled = false));
    });
    return button;
  }
  if (!source.fileUrl) return null;
  return h(
    'a',
    {
      href: source.fileUrl(udid, snap, f.domain, f.relativePath),
      download: name,
      'aria-label': `Download ${f.domain} ${f.relativePath}`,
    },
    'Download',
  );
}

function fileRow(
  source: SnapshotSource,
  udid: string,
  snap: string,
  f: FileEntry,
  status: HTMLElement,
): HTMLElement {
  const download = downloadControl(source, udid, snap, f, status);
  return h(
    'tr',
    { 'data-path': f.relativePath },
    h('td', { class: 'domain' }, f.domain),
    h(
      'td',
      { class: 'path' },
      f.type === 'symlink' ? `${f.relativePath} → ${f.target ?? ''}` : f.relativePath,
    ),
    h(
      'td',
      { class: 'num' },
      f.type === 'file' ? formatBytes(f.size) : f.type === 'dir' ? 'folder' : 'link',
    ),
    h('td', {}, f.mtime ? formatTimestamp(f.mtime) : ''),
    h('td', {}, download),
  );
}

function diffView(d: DiffSummary): HTMLElement {
  const total = d.added + d.removed + d.changed;
  return h(
    'div',
    { class: 'diff' },
    h(
      'p',
      { class: 'diff-summary', role: 'status' },
      total === 0
        ? 'No differences.'
        : `${d.added} added, ${d.removed} removed, ${d.changed} changed.`,
    ),
    d.domains.length
      ? h(
          'table',
          { class: 'data' },
          h('caption', {}, 'Changes per domain'),
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              h('th', { scope: 'col' }, 'Domain'),
              h('th', { scope: 'col', class: 'num' }, 'Added'),
              h('th', { scope: 'col', class: 'num' }, 'Removed'),
              h('th', { scope: 'col', class: 'num' }, 'Changed'),
            ),
          ),
          h(
            'tbody',
            {},
            ...d.domains.map((x) =>
              h(
                'tr',
                {},
                h('td', {}, x.domain),
                h('td', { class: 'num' }, String(x.added)),
                h('td', { class: 'num' }, String(x.removed)),
                h('td', { class: 'num' }, String(x.changed)),
              ),
            ),
          ),
        )
      : null,
    d.entries.length
      ? h(
          'ul',
          { class: 'diff-entries', 'aria-label': 'Changed files' },
          ...d.entries.map((e) =>
            h(
              'li',
              { class: `change-${e.change}`, 'data-change': e.change },
              h('span', { class: `badge change-badge ${e.change}` }, e.change),
              ` ${e.domain} `,
              h('span', { class: 'path' }, e.relativePath),
              e.change === 'changed' && e.changes.length ? ` (${e.changes.join(', ')})` : '',
            ),
          ),
        )
      : null,
    d.truncated
      ? h(
          'p',
          { class: 'hint' },
          'Only the first changes are listed; the counts above are complete.',
        )
      : null,
    d.invalidRows
      ? h('p', { class: 'error' }, `${d.invalidRows} damaged entries were left out.`)
      : null,
  );
}

export function filesPanel(state: AppState, udid: string): { root: HTMLElement; dispose(): void } {
  const source = state.snapshots;
  if (!source) {
    return {
      root: h('p', { class: 'empty' }, 'Browsing snapshots is not available here.'),
      dispose: () => undefined,
    };
  }
  const snapSelect = h('select', { name: 'snapshot' });
  // Pinned snapshots are never removed by retention (as `mooring pin`).
  const pin = h('button', { type: 'button', disabled: true }, 'Pin');
  const pinStatus = h('p', { class: 'hint', role: 'status' });
  let snapshots: SnapshotSummary[] = [];
  const selected = (): SnapshotSummary | undefined =>
    snapshots.find((s) => s.id === snapSelect.value);
  const showPin = (): void => {
    const s = selected();
    pin.disabled = s === undefined;
    setText(pin, s?.pinned ? 'Unpin' : 'Pin');
  };
  snapSelect.addEventListener('change', showPin);
  const domain = h('input', {
    type: 'text',
    name: 'domain',
    placeholder: 'e.g. HomeDomain or AppDomain-*',
    autocomplete: 'off',
  });
  const pattern = h('input', {
    type: 'text',
    name: 'pattern',
    placeholder: '*.jpg, or part of a path',
    autocomplete: 'off',
  });
  const browse = h(
    'form',
    { class: 'toolbar wrap', 'aria-label': 'Browse a snapshot' },
    labelled(`files-snap-${udid}`, 'Snapshot', snapSelect),
    labelled(`files-domain-${udid}`, 'Domain', domain),
    labelled(`files-pattern-${udid}`, 'Path', pattern),
    h('button', { type: 'submit', class: 'primary' }, 'Show Files'),
    pin,
  );
  const rows = h('tbody');
  const table = h(
    'table',
    { class: 'data files-table' },
    h('caption', { class: 'visually-hidden' }, 'Files in the snapshot'),
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        ...['Domain', 'Path', 'Size', 'Modified', ''].map((t) =>
          h('th', { scope: 'col', class: t === 'Size' ? 'num' : null }, t),
        ),
      ),
    ),
    rows,
  );
  const more = h('button', { type: 'button', hidden: true }, 'Load more files');
  const listStatus = h('p', { class: 'list-status', role: 'status' });

  const fromSelect = h('select', { name: 'from' });
  const toSelect = h('select', { name: 'to' });
  const compare = h(
    'form',
    { class: 'toolbar wrap', 'aria-label': 'Compare two snapshots' },
    labelled(`diff-from-${udid}`, 'From', fromSelect),
    labelled(`diff-to-${udid}`, 'To', toSelect),
    h('button', { type: 'submit' }, 'Compare'),
  );
  const diffBox = h('div', { class: 'diff-box' });
  const root = h(
    'div',
    { class: 'files' },
    browse,
    pinStatus,
    table,
    more,
    listStatus,
    h('h3', {}, 'Changes between snapshots'),
    compare,
    diffBox,
  );

  let cursor: string | null = null;
  let query = { snap: '', domain: '', pattern: '' };
  let generation = 0;

  const loadPage = async (): Promise<void> => {
    const gen = generation;
    more.disabled = true;
    try {
      const page = await source.files(udid, query.snap, {
        limit: FILE_PAGE,
        ...(query.domain ? { domain: query.domain } : {}),
        ...(query.pattern ? { pattern: query.pattern } : {}),
        ...(cursor ? { after: cursor } : {}),
      });
      if (gen !== generation) return;
      const frag = document.createDocumentFragment();
      for (const f of page.items) frag.append(fileRow(source, udid, query.snap, f, listStatus));
      rows.append(frag);
      cursor = page.nextCursor;
      more.hidden = cursor === null;
      const n = rows.children.length;
      setText(
        listStatus,
        (n === 0 && cursor === null
          ? 'No files match.'
          : `${n} ${n === 1 ? 'entry' : 'entries'} shown${cursor ? '' : ', that is all'}.`) +
          (page.invalidRows ? ` ${page.invalidRows} damaged entries left out.` : ''),
      );
    } catch (e) {
      if (gen === generation) setText(listStatus, errorMessage(e));
    } finally {
      more.disabled = false;
    }
  };

  browse.addEventListener('submit', (ev) => {
    ev.preventDefault();
    generation++;
    query = { snap: snapSelect.value, domain: domain.value.trim(), pattern: pattern.value.trim() };
    cursor = null;
    rows.replaceChildren();
    setText(listStatus, 'Loading…');
    void loadPage();
  });
  more.addEventListener('click', () => void loadPage());
  compare.addEventListener('submit', (ev) => {
    ev.preventDefault();
    setText(diffBox, 'Comparing…');
    source
      .diff(udid, fromSelect.value, toSelect.value)
      .then((d) => diffBox.replaceChildren(diffView(d)))
      .catch((e: unknown) =>
        diffBox.replaceChildren(h('p', { class: 'error', role: 'alert' }, errorMessage(e))),
      );
  });

  /** The pickers from `list`, keeping what each had chosen (the newest, for a first fill). */
  const fill = (list: SnapshotSummary[]): SnapshotSummary[] => {
    snapshots = list;
    const newestFirst = [...list].sort((a, b) => b.at - a.at);
    const options = (sel: HTMLSelectElement, pick: string | undefined): void => {
      const keep = sel.value;
      sel.replaceChildren(
        ...newestFirst.map((s) => h('option', { value: s.id }, snapshotLabel(s))),
      );
      sel.value = newestFirst.some((s) => s.id === keep) ? keep : (pick ?? '');
    };
    options(snapSelect, newestFirst[0]?.id);
    options(toSelect, newestFirst[0]?.id);
    options(fromSelect, (newestFirst[1] ?? newestFirst[0])?.id);
    showPin();
    return newestFirst;
  };
  pin.addEventListener('click', () => {
    const s = selected();
    if (!s) return;
    pin.disabled = true;
    state.bridge
      .call('pinSnapshot', udid, s.id, !s.pinned)
      .then((list) => {
        fill(list);
        setText(
          pinStatus,
          s.pinned
            ? `Snapshot ${s.id} is no longer pinned: retention may remove it in time.`
            : `Snapshot ${s.id} is pinned: retention will never remove it.`,
        );
      })
      .catch((e: unknown) => {
        setText(pinStatus, errorMessage(e));
        showPin();
      });
  });

  const load = async (): Promise<void> => {
    let list: SnapshotSummary[];
    try {
      list = await source.snapshots(udid);
    } catch (e) {
      setText(listStatus, `The snapshots could not be listed: ${errorMessage(e)}`);
      return;
    }
    const newestFirst = fill(list);
    if (newestFirst.length === 0) {
      setText(listStatus, 'No snapshots yet: back the device up first.');
      return;
    }
    browse.requestSubmit();
  };
  void load();
  return { root, dispose: () => generation++ };
}
